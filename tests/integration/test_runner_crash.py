"""The catch-up runner is exactly-once: killed mid-batch, restarted, it equals a fresh replay."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime

import msgspec
import pytest

from api.services import load_zones, open_views, read_models_runner
from domain.account_book import BookItem, OpenAccountBook
from domain.declaration import SubmitDeclaration, WithdrawDeclaration
from domain.enterprise import RegisterEnterprise
from domain.events import Actor
from domain.movements import GateIn
from domain.stocktake import Adjustment
from ledger.application import LedgerApplication
from ledger.commands import Idempotency, Ledger
from ledger.database import parse_database_url
from projections.digest import views_digest
from projections.store import SQLiteViews
from tests.samples import line, rules_without_draws
from tests.support import declaration_body, make_uscc

ADMIN = Actor(name="admin", role="admin")


class CrashForTests(Exception):
    """Raised mid-batch by a runner's `after_event` hook (`crash_after`)."""


def crash_after(events: int):
    """An `after_event` hook that raises CrashForTests after `events` events in all."""
    left = [events]

    def countdown() -> None:
        left[0] -= 1
        if left[0] <= 0:
            raise CrashForTests(f"crash after {events} events")

    return countdown


def _populate(app: LedgerApplication, declarations: int) -> int:
    ledger = Ledger(app, load_zones(None), rules=rules_without_draws())
    code = make_uscc()
    ledger.register_enterprise(
        RegisterEnterprise(uscc=code, customs_code="6101340001", name="Co", credit_class="regular"),
        ADMIN,
    )
    book = f"B{code[-8:]}"
    ledger.open_account_book(
        OpenAccountBook(
            book_no=book,
            enterprise=code,
            zone="XCBZ",
            items=[
                BookItem(item_no=3, hs_code="3004900000", name="Medicaments", unit="C62"),
                BookItem(item_no=1, hs_code="8471300000", name="Laptops", unit="C62"),
            ],
        ),
        ADMIN,
    )
    actor = Actor(name="ent", role="enterprise", enterprise=code)
    gate = Actor(name="gate", role="operator", zone="XCBZ")
    # Laptops are released at once: admitted, then adjusted, so the inventory views have rows.
    laptops = msgspec.convert(
        declaration_body(code, book, lines=[line(1, quantity="9")]), SubmitDeclaration
    )
    imported = ledger.submit_declaration(laptops, actor, Idempotency("ent", "imp", "POST", "/d"))
    for n in range(3):
        admission = {
            "kind": "gate_in",
            "declaration": str(imported.body.id),
            "lines": [{"line_no": 1, "quantity": "3"}],
        }
        ledger.record_movement(
            msgspec.convert(admission, GateIn), gate, Idempotency("gate", f"g{n}", "POST", "/m")
        )
        change = {
            "kind": "adjustment",
            "account_book": book,
            "item_no": 1,
            "quantity_delta": "-1" if n % 2 else "2",
            "reason": "stocktake",
        }
        ledger.record_movement(
            msgspec.convert(change, Adjustment), actor, Idempotency("ent", f"a{n}", "POST", "/m")
        )
    # Medicaments are watched: each declaration waits in document review, so it can be withdrawn.
    body = msgspec.convert(declaration_body(code, book, lines=[line(3)]), SubmitDeclaration)
    for n in range(declarations):
        idem = Idempotency("ent", f"k{n}", "POST", "/v1/declarations")
        out = ledger.submit_declaration(body, actor, idem)
        if n % 3 == 0:
            ledger.withdraw_declaration(str(out.body.id), WithdrawDeclaration(reason="test"), actor)
    head = app.log.head()
    assert head is not None
    return head.position


def _replay_digest(app: LedgerApplication, tmp_path) -> dict[str, str]:
    views = SQLiteViews(str(tmp_path / f"replay-{datetime.now(UTC).timestamp()}.sqlite3"))
    runner = read_models_runner("replay", views, app)
    runner.catch_up()
    try:
        return views_digest(views)
    finally:
        views.close()


def _project(url: str, *extra: str, crash_after: int | None = None) -> int:
    env = dict(os.environ, LEDGER_DATABASE_URL=url)
    env.pop("LEDGER_TEST_CRASH_AFTER_EVENTS", None)
    if crash_after is not None:
        env["LEDGER_TEST_CRASH_AFTER_EVENTS"] = str(crash_after)
    cmd = [sys.executable, "-m", "api.cli", "project", "--batch-size", "10", *extra]
    return subprocess.run(cmd, env=env, capture_output=True, timeout=120).returncode


def test_a_runner_killed_mid_batch_resumes_without_double_counting(database_url, tmp_path):
    app = LedgerApplication(parse_database_url(database_url))
    try:
        head = _populate(app, declarations=12)
        # Killed (os._exit, like SIGKILL) in the middle of its third batch of 10.
        assert _project(database_url, crash_after=25) == 137
        views = open_views(parse_database_url(database_url))
        try:
            with views.read() as cur:
                cur.execute("SELECT position FROM view_tracking WHERE name = 'read-models'")
                tracked = cur.fetchone()["position"]
            # Only whole batches were committed: the partial one left no trace.
            with views.read() as cur:
                cur.execute("SELECT max(position) AS m FROM view_declarations")
                assert (cur.fetchone()["m"] or 0) <= tracked
            assert 0 < tracked < head
            assert _project(database_url) == 0
            with views.read() as cur:
                cur.execute("SELECT count(*) AS n FROM view_declarations")
                assert cur.fetchone()["n"] == 13  # 12 medicaments and the laptops
                cur.execute(
                    "SELECT count(*) AS n FROM view_declarations WHERE status = 'withdrawn'"
                )
                assert cur.fetchone()["n"] == 4
            assert views_digest(views) == _replay_digest(app, tmp_path)
            with views.read() as cur:
                cur.execute("SELECT on_hand FROM view_book_items WHERE item_no = 1")
                assert cur.fetchone()["on_hand"] == "12"  # 3 x 3 admitted, +2 -1 +2
        finally:
            views.close()
    finally:
        app.close()


def test_a_failing_batch_rolls_back_and_the_next_run_completes_it(sqlite_url, tmp_path):
    app = LedgerApplication(parse_database_url(sqlite_url))
    try:
        _populate(app, declarations=5)
        views = SQLiteViews(str(tmp_path / "views.sqlite3"))
        runner = read_models_runner("t", views, app, batch_size=4)
        runner.after_event = crash_after(6)
        with pytest.raises(CrashForTests):
            runner.catch_up()
        assert runner.tracked_position() == 4
        runner.after_event = None
        runner.catch_up()
        assert views_digest(views) == _replay_digest(app, tmp_path)
        views.close()
    finally:
        app.close()
