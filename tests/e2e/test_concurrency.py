"""Declaration numbers stay unique when many clients submit at once: gapless from one process,
from a block per process when several write one PostgreSQL store (domain/numbering.py)."""

from __future__ import annotations

import threading

import pytest

from domain.numbering import BLOCK_SIZE
from tests.samples import line
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


@pytest.mark.postgres
def test_two_servers_number_from_their_own_blocks_and_find_every_number(postgres_url):
    """Two servers on one PostgreSQL store, each with its enterprise in the same zone (one
    series): each numbers from a block of its own, and either finds every declaration and
    checklist by its number (GET), and acts on a declaration by its number (withdrawal)."""
    with running_ledger(postgres_url) as a, running_ledger(postgres_url) as b:
        tenants = {id(a): onboard(a), id(b): onboard(b)}
        made: list[dict] = []
        for server in (a, a, b, b, b, a):
            t = tenants[id(server)]
            body = declaration_body(t.uscc, t.book_no)
            r = server.post("/v1/declarations", t.token_name, body, key=new_key())
            assert r.status_code == 201, r.text
            made.append({**r.json(), "server": id(server)})
        serials = {
            s: [int(x["declaration_no"][9:]) for x in made if x["server"] == s]
            for s in (id(a), id(b))
        }
        # A block each (which is first depends on who reserved first), numbered in order.
        first_a, first_b = serials[id(a)][0], serials[id(b)][0]
        assert {first_a, first_b} == {1, 1 + BLOCK_SIZE}
        assert serials[id(a)] == [first_a, first_a + 1, first_a + 2]
        assert serials[id(b)] == [first_b, first_b + 1, first_b + 2]
        for server in (a, b):
            for x in made:
                r = server.get(f"/v1/declarations/{x['declaration_no']}", "officer")
                assert r.status_code == 200 and r.json()["id"] == x["id"], r.text
                r = server.get(f"/v1/checklists/{x['checklist_no']}", "officer")
                assert r.status_code == 200, r.text
                assert r.json()["checklist_no"] == x["checklist_no"]
        # Medicaments wait in document review: withdrawn by its number, from its block.
        t = tenants[id(b)]
        body = declaration_body(t.uscc, t.book_no, lines=[line(3)])
        created = b.post("/v1/declarations", t.token_name, body, key=new_key()).json()
        assert int(created["declaration_no"][9:]) == first_b + 3
        r = b.post(
            f"/v1/declarations/{created['declaration_no']}/withdrawal",
            t.token_name,
            {"reason": "wrong container"},
        )
        assert r.status_code == 200 and r.json()["status"] == "withdrawn", r.text
