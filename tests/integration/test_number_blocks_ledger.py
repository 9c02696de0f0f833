"""Number blocks through the ledger: two applications (two server processes) on one store.

Hypothesis draws bursts of concurrent submissions to either application or to both at once,
and restarts (a new application: it holds no block and reserves a fresh one), with a block size
of 3 so that blocks fill up and reservations race. Every declaration and checklist number must
be unique and name, read by either application, the declaration it was given to; a burst on
one application alone (its commands decided in order, committed in groups) numbers from its
blocks without a hole. On PostgreSQL, as deployed; on SQLite with blocks forced (it numbers
straight from the series otherwise, tests/e2e/test_concurrency.py).
"""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from unittest import mock

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.services import load_zones
from domain import numbering
from domain.account_book import OpenAccountBook
from domain.declaration import SubmitDeclaration
from domain.documents import parse
from domain.enterprise import RegisterEnterprise
from domain.events import Actor
from ledger import number_blocks
from ledger.application import LedgerApplication
from ledger.commands import Idempotency, Ledger
from ledger.database import parse_database_url
from ledger.unit_of_work import CommandUnitOfWork, document_numbered
from tests.samples import book_body, declaration_body, enterprise_body, rules_without_draws
from tests.support import make_uscc

ADMIN = Actor(name="admin", role="admin")
IN_2026 = datetime(2026, 12, 6, 2, 0, tzinfo=UTC)
BLOCK = 3


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def new_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], str]]:
    """Makes a fresh store per call (a file, or a schema dropped afterwards)."""
    made: list[str] = []
    if request.param == "sqlite":

        def sqlite() -> str:
            made.append(f"sqlite:///{tmp_path}/ledger-{len(made)}.sqlite3")
            return made[-1]

        with mock.patch.object(number_blocks, "in_blocks", lambda app: True):
            yield sqlite
        return
    import psycopg

    from tests.conftest import PG_URL, pg_conninfo

    request.getfixturevalue("postgres_available")
    conninfo = pg_conninfo(parse_database_url(PG_URL))

    def postgres() -> str:
        schema = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        made.append(schema)
        return f"{PG_URL}{'&' if '?' in PG_URL else '?'}schema={schema}"

    yield postgres
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for schema in made:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


step = st.one_of(
    st.tuples(st.just("burst"), st.integers(0, 1), st.integers(1, 7)),
    st.tuples(st.just("both"), st.just(0), st.integers(1, 4)),
    st.tuples(st.just("restart"), st.integers(0, 1), st.just(0)),
)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(step, min_size=1, max_size=6))
def test_two_applications_never_share_a_number(
    new_store: Callable[[], str], steps: list[tuple[str, int, int]]
) -> None:
    url = new_store()
    with ExitStack() as stack:
        stack.enter_context(mock.patch.object(numbering, "BLOCK_SIZE", BLOCK))
        apps: list[LedgerApplication] = []

        def start() -> Ledger:
            app = LedgerApplication(parse_database_url(url))
            apps.append(app)
            stack.callback(app.close)
            return Ledger(app, load_zones(None), rules=rules_without_draws())

        ledgers = [start(), start()]
        uscc = make_uscc()
        ledgers[0].register_enterprise(
            msgspec.convert(enterprise_body(uscc), RegisterEnterprise), ADMIN
        )
        book = f"B{uscc[-8:]}XCBZ"
        ledgers[0].open_account_book(
            msgspec.convert(book_body(book, uscc, "XCBZ"), OpenAccountBook), ADMIN
        )
        actor = Actor(name="ent", role="enterprise", enterprise=uscc)
        body = msgspec.convert(declaration_body(uscc, book), SubmitDeclaration)
        given_to: dict[str, str] = {}  # number (declaration's or checklist's) -> declaration
        lock = threading.Lock()

        def submit(which: int, key: str, out: list[int]) -> None:
            idem = Idempotency("ent", key, "POST", "/v1/declarations")
            view = ledgers[which].submit_declaration(body, actor, idem).body
            with lock:
                for no in (view.declaration_no, view.checklist_no):
                    assert no is not None and no not in given_to, no
                    given_to[no] = str(view.id)
                out.append(int(view.declaration_no[9:]))

        for n, (kind, which, count) in enumerate(steps):
            if kind == "restart":
                ledgers[which] = start()
                continue
            targets = [which] * count if kind == "burst" else [0, 1] * count
            serials: list[int] = []
            threads = [
                threading.Thread(target=submit, args=(t, f"s{n}-{i}", serials))
                for i, t in enumerate(targets)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert len(serials) == len(targets)
            if kind == "burst":  # one process: no hole but the rest of a block it left
                ordered = sorted(serials)
                assert all(b - a == 1 or b % BLOCK == 1 for a, b in itertools.pairwise(ordered)), (
                    ordered
                )
        for app in apps[-2:] if len(apps) > 2 else apps:
            uow = CommandUnitOfWork(app, None)
            for no, declaration in given_to.items():
                if no.startswith("QD"):
                    parsed = parse(no)
                    assert parsed is not None
                    found = document_numbered(app, parsed[1], parsed[2])
                else:
                    found = uow.declaration_id(no)
                assert str(found) == declaration, no
            # A serial never issued (a block's unused rest, or past the last) names nothing.
            issued = {int(no[9:]) for no in given_to if not no.startswith("QD")}
            prefix = next((no[:9] for no in given_to if not no.startswith("QD")), "")
            for serial in set(range(1, max(issued, default=0) + BLOCK + 1)) - issued:
                assert uow.declaration_id(f"{prefix}{serial:09d}") is None


def test_a_log_numbered_before_blocks_still_resolves_and_continues(
    database_url: str, tmp_path: Path
) -> None:
    """tests/fixtures/events_v1.jsonl was written before blocks: its series stream holds
    `DeclarationNumberIssued` at version n for serial n. Loaded as it is (bytes and links), its
    numbers still name their declarations; the next number continues it, straight from the
    series on SQLite (serial 3), from the first whole block above it on PostgreSQL (101); the
    log verifies and the read models replay it with the new events."""
    from ledger.audit import verify
    from tests.integration.test_upcast import (
        BOOK,
        A,
        fixture_records,
        insert_raw,
        replay_digest,
    )

    records = fixture_records()
    issued = [r for r in records if r.topic == "domain.declaration:DeclarationNumberIssued"]
    numbers = {
        f"900720261{msgspec.json.decode(r.state)['serial']:09d}": msgspec.json.decode(r.state)[
            "declaration_id"
        ]
        for r in issued
    }
    assert sorted(numbers) == ["900720261000000001", "900720261000000002"]
    app = LedgerApplication(parse_database_url(database_url))
    try:
        insert_raw(app, records, keep_positions=False)
        uow = CommandUnitOfWork(app, None)
        assert {no: str(uow.declaration_id(no)) for no in numbers} == numbers
        assert uow.declaration_id("900720261000000003") is None
        # In the fixture's year (2026), whenever the test runs: its series is the one continued.
        ledger = Ledger(app, load_zones(None), clock=lambda: IN_2026, rules=rules_without_draws())
        actor = Actor(name="ent", role="enterprise", enterprise=A)
        body = msgspec.convert(declaration_body(A, BOOK), SubmitDeclaration)
        views = []
        for key in ("after-1", "after-2"):
            idem = Idempotency("ent", key, "POST", "/v1/declarations")
            views.append(ledger.submit_declaration(body, actor, idem).body)
        first = 101 if app.database.kind == "postgresql" else 3
        assert [int(v.declaration_no[9:]) for v in views] == [first, first + 1]
        uow = CommandUnitOfWork(app, None)
        for v in views:
            assert uow.declaration_id(v.declaration_no) == v.id
        assert {no: str(uow.declaration_id(no)) for no in numbers} == numbers
        assert verify(app.log).ok
        assert replay_digest(app, tmp_path / "views.sqlite3")
    finally:
        app.close()


def test_one_decision_takes_consecutive_serials_across_its_blocks(
    new_store: Callable[[], str],
) -> None:
    """A decision numbering several documents (a batch) takes consecutive serials from the
    block it holds, then from a block it reserves itself, and reserves no block it does not
    use; the next decision goes on where it stopped."""
    from domain.declaration import number_series_id
    from domain.numbering import SerialBlockReserved
    from tests.unit.test_number_blocks import NS, SERIES, number

    app = LedgerApplication(parse_database_url(new_store()))
    try:
        with mock.patch.object(numbering, "BLOCK_SIZE", BLOCK):
            ids = [uuid.uuid5(NS, str(n)) for n in range(7)]
            assert app.run(number(ids[:5]))[0] == [1, 2, 3, 4, 5]
            assert app.run(number(ids[5:]))[0] == [6, 7]
            reserved = [e for e in app.events.get(SERIES) if isinstance(e, SerialBlockReserved)]
            assert [(e.block, e.first, e.last) for e in reserved] == [
                (0, 1, 3),
                (1, 4, 6),
                (2, 7, 9),
            ]
            uow = CommandUnitOfWork(app, None)
            assert number_series_id("9007", 2026, "1") == SERIES
            for serial, one in enumerate(ids, start=1):
                assert uow.declaration_id(f"900720261{serial:09d}") == one
    finally:
        app.close()
