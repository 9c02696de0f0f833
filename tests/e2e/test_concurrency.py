"""Declaration numbers stay unique when many clients submit at once: gapless from one process,
from a block per process when several write one PostgreSQL store (domain/numbering.py)."""

from __future__ import annotations

import threading

from tests.support import declaration_body, new_key, onboard, running_ledger


def test_concurrent_submissions_get_distinct_consecutive_numbers(database_url):
    with running_ledger(database_url) as ledger:
        tenants = [onboard(ledger) for _ in range(4)]
        results: list = []
        lock = threading.Lock()
        barrier = threading.Barrier(8)

        def submit(n: int) -> None:
            t = tenants[n % len(tenants)]
            barrier.wait()
            for _ in range(5):
                r = ledger.post(
                    "/v1/declarations",
                    t.token_name,
                    declaration_body(t.uscc, t.book_no),
                    key=new_key(),
                )
                with lock:
                    results.append(r)

        threads = [threading.Thread(target=submit, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert [r.status_code for r in results] == [201] * 40, [
            r.text for r in results if r.status_code != 201
        ][:2]
        serials = sorted(int(r.json()["declaration_no"][9:]) for r in results)
        assert serials == list(range(1, 41))
        report = ledger.get("/v1/audit/verify", "auditor").json()
        assert report["ok"] is True


def test_two_writers_on_one_store_never_share_a_number(database_url):
    """Two applications (as two server processes would) number from the same series: on
    SQLite they race for its versions (gapless); on PostgreSQL each takes a block of its own
    and numbers from it without racing. Every number names the declaration it was given to,
    read by either application."""
    import msgspec

    from api.services import load_zones
    from domain.declaration import SubmitDeclaration
    from domain.events import Actor
    from domain.numbering import BLOCK_SIZE
    from ledger.application import LedgerApplication
    from ledger.commands import Idempotency, Ledger
    from ledger.database import parse_database_url
    from ledger.unit_of_work import CommandUnitOfWork
    from tests.samples import rules_without_draws

    with running_ledger(database_url) as ledger:
        t = onboard(ledger)
    apps = [LedgerApplication(parse_database_url(database_url)) for _ in range(2)]
    try:
        ledgers = [Ledger(app, load_zones(None), rules=rules_without_draws()) for app in apps]
        actor = Actor(name=t.token_name, role="enterprise", enterprise=t.uscc)
        body = msgspec.convert(declaration_body(t.uscc, t.book_no), SubmitDeclaration)
        numbers: list[tuple[int, str, str]] = []
        lock = threading.Lock()

        def submit(n: int) -> None:
            for i in range(10):
                idem = Idempotency(t.token_name, f"w{n}-{i}", "POST", "/v1/declarations")
                out = ledgers[n % 2].submit_declaration(body, actor, idem)
                with lock:
                    numbers.append((n % 2, out.body.declaration_no, str(out.body.id)))

        threads = [threading.Thread(target=submit, args=(n,)) for n in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        serials = sorted(int(x[9:]) for _, x, _ in numbers)
        assert len(set(serials)) == 40
        if apps[0].database.kind == "sqlite":
            assert serials == list(range(1, 41))
        else:  # one block each, in the order they reserved them
            for writer in (0, 1):
                own = sorted(int(x[9:]) for w, x, _ in numbers if w == writer)
                first = own[0]
                assert first % BLOCK_SIZE == 1 and own == list(range(first, first + 20))
        for app in apps:
            uow = CommandUnitOfWork(app, None)
            assert all(str(uow.declaration_id(no)) == id_ for _, no, id_ in numbers)
    finally:
        for app in apps:
            app.close()
