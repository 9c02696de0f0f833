"""GET /v1/stats counts movements, over HTTP on both stores.

Every recorded movement counts once, whatever its kind and however many lines it moved: on its
business day in China, under the flow and trade mode of the declaration it moved goods under
(`within_zone` for processing and stocktake adjustments, which have none), in its own zone and
book. The ledger runs on the test's clock (from 27 November 2026), so the days are the same
whatever day the suite runs. A replay as of a past instant counts what the route answered then,
and views built by the previous inventory version are rebuilt with the movements counted.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.replaying import replay_log, replay_runners, scratch_views
from api.services import open_views
from domain.declaration import SHANGHAI
from domain.scope import Scope
from ledger.database import parse_database_url
from projections.columns import utc_text
from projections.inventory.fold import InventoryProjection
from projections.replay import rebuild
from projections.stats import StatsQueries
from tests.e2e.test_credit_and_stats import START, TestClock, at, open_second_book
from tests.samples import line
from tests.stories import KIT
from tests.support import Ledger, Tenant, declaration_body, new_key, onboard, running_ledger

GROUPS = ("day", "month", "trade_mode", "flow")
# 27 November 2026 10:00 in China is START; four days earlier.
D1 = date(2026, 11, 23)


@dataclass(frozen=True)
class Moved:
    """A movement as the test recorded it, with what the statistics should file it under."""

    kind: str
    zone: str
    enterprise: str
    occurred_at: str
    flow: str
    trade_mode: str

    @property
    def day(self) -> str:
        return datetime.fromisoformat(self.occurred_at).astimezone(SHANGHAI).date().isoformat()

    def key(self, group_by: str) -> str:
        return {
            "day": self.day,
            "month": self.day[:7],
            "trade_mode": self.trade_mode,
            "flow": self.flow,
        }[group_by]


@dataclass
class World:
    ledger: Ledger
    a: Tenant
    b: Tenant
    books: dict[str, str]  # book -> its enterprise
    moved: list[Moved] = field(default_factory=list)
    # (instant, GET /v1/stats by each group as the auditor read it then)
    noted: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


def stats(ledger: Ledger, who: str, **params: Any) -> list[dict[str, Any]]:
    r = ledger.get("/v1/stats", who, params=params)
    assert r.status_code == 200, r.text
    return r.json()["items"]  # type: ignore[no-any-return]


def movements_by_key(rows: list[dict[str, Any]]) -> dict[str, int]:
    return {row["key"]: row["movements"] for row in rows if row["movements"]}


def _note(world: World) -> None:
    """The statistics as they stand now, and the instant; the next write comes strictly later."""
    answers = {g: stats(world.ledger, "auditor", group_by=g) for g in GROUPS}
    world.noted.append((datetime.now(UTC).isoformat(), answers))
    time.sleep(0.003)


def _tell(ledger: Ledger) -> World:
    """Eight movements of six kinds in two zones, by two enterprises, over three China days."""
    a, b = onboard(ledger), onboard(ledger)
    a_htz = open_second_book(ledger, a, "XHTZ")
    r = ledger.post(f"/v1/account-books/{a.book_no}/items", "admin", {"items": [KIT]})
    assert r.status_code == 201, r.text
    ledger.issue("gate-xcbz", "operator", zone="XCBZ")
    ledger.issue("gate-xhtz", "operator", zone="XHTZ")
    books = {a.book_no: a.uscc, a_htz.book_no: a.uscc, b.book_no: b.uscc}
    world = World(ledger, a, b, books)

    def declare(tenant: Tenant, **overrides: Any) -> dict[str, Any]:
        body = declaration_body(tenant.uscc, tenant.book_no, **overrides)
        r = ledger.post("/v1/declarations", tenant.token_name, body, key=new_key())
        assert r.status_code == 201 and r.json()["status"] == "released", r.text
        return r.json()  # type: ignore[no-any-return]

    def move(who: str, tenant: Tenant, body: dict[str, Any], d: dict[str, Any] | None) -> None:
        r = ledger.post("/v1/movements", who, body, key=new_key())
        assert r.status_code == 201, r.text
        view = r.json()
        flow = d["flow"] if d else "within_zone"
        mode = d["trade_mode"] if d else "within_zone"
        moved = Moved(view["kind"], view["zone"], tenant.uscc, body["occurred_at"], flow, mode)
        world.moved.append(moved)

    def gate(kind: str, d: dict[str, Any], quantity: str, occurred_at: str) -> dict[str, Any]:
        lines = [{"line_no": 1, "quantity": quantity}]
        return {"kind": kind, "declaration": d["id"], "lines": lines, "occurred_at": occurred_at}

    _note(world)
    imports_a = declare(a, lines=[line(1, quantity="100")], occurred_at=at(D1, 8))
    imports_b = declare(b, lines=[line(1, quantity="10")], occurred_at=at(D1, 8))
    _note(world)
    move("gate-xcbz", a, gate("gate_in", imports_a, "60", at(D1, 10)), imports_a)
    # 17:30Z is 01:30 the next day in China.
    move("gate-xcbz", a, gate("gate_in", imports_a, "40", at(D1, 17, 30, "Z")), imports_a)
    move("gate-xcbz", b, gate("gate_in", imports_b, "10", at(D1, 12)), imports_b)
    _note(world)
    d2 = D1 + timedelta(days=1)
    adjustment = {
        "kind": "adjustment",
        "account_book": a.book_no,
        "item_no": 1,
        "quantity_delta": "-2",
        "reason": "two damaged, stocktake 2026-11-24",
        "occurred_at": at(d2, 9),
    }
    move(a.token_name, a, adjustment, None)
    processing = {
        "kind": "processing",
        "zone": "XCBZ",
        "account_book": a.book_no,
        "inputs": [{"item_no": 1, "quantity": "5"}],
        "outputs": [{"item_no": 6, "quantity": "5"}],
        "occurred_at": at(d2, 11),
    }
    move(a.token_name, a, processing, None)
    transfer = declare(
        a,
        flow="transfer",
        trade_mode="5034",
        country="CN",
        destination_zone="XHTZ",
        destination_account_book=a_htz.book_no,
        lines=[{**line(1, quantity="20"), "origin_country": None}],
        occurred_at=at(d2, 12),
    )
    move("gate-xcbz", a, gate("transfer_dispatch", transfer, "20", at(d2, 15)), transfer)
    _note(world)
    d3 = D1 + timedelta(days=2)
    move("gate-xhtz", a, gate("transfer_receipt", transfer, "20", at(d3, 9)), transfer)
    export = declare(
        a,
        flow="first_line_out",
        trade_mode="0110",
        country="NL",
        transport={"mode": "air", "reference": "CK-XIY-AMS-1125"},
        lines=[line(1, quantity="10")],
        occurred_at=at(d3, 8),
    )
    move("gate-xcbz", a, gate("gate_out", export, "10", at(d3, 10)), export)
    _note(world)
    return world


@pytest.fixture
def world(database_url):
    with running_ledger(database_url) as ledger:
        ledger.services.ledger.clock = TestClock(START)
        yield _tell(ledger)


def expect(world: World, group_by: str, keep: Callable[[Moved], bool] = bool) -> dict[str, int]:
    return dict(Counter(m.key(group_by) for m in world.moved if keep(m)))


def test_each_movement_counts_once_by_its_china_day_and_its_declarations_flow_and_mode(world):
    ledger = world.ledger
    assert [m.kind for m in world.moved] == [
        "gate_in",
        "gate_in",
        "gate_in",
        "adjustment",
        "processing",
        "transfer_dispatch",
        "transfer_receipt",
        "gate_out",
    ]
    for group_by in GROUPS:
        for who in ("officer", "auditor", "admin"):
            got = movements_by_key(stats(ledger, who, group_by=group_by))
            assert got == expect(world, group_by), (group_by, who)
    # Explicit figures, so the test does not only agree with itself. By flow: the two
    # declarations into the zone and their three gate entries; processing and the stocktake
    # under no declaration; the transfer's dispatch and receipt.
    by_flow = {row["key"]: row for row in stats(ledger, "officer", group_by="flow")}
    assert by_flow == {
        "first_line_in": {**by_flow["first_line_in"], "declarations": 2, "movements": 3},
        "first_line_out": {**by_flow["first_line_out"], "declarations": 1, "movements": 1},
        "transfer": {**by_flow["transfer"], "declarations": 1, "movements": 2},
        "within_zone": {
            "key": "within_zone",
            "declarations": 0,
            "movements": 2,
            "value_cny": "0",
            "overdue_cny": "0",
        },
    }
    by_mode = movements_by_key(stats(ledger, "officer", group_by="trade_mode"))
    assert by_mode == {"5034": 5, "0110": 1, "within_zone": 2}
    # By China day: the entry at 17:30Z counts on the 24th, with the stocktake, the
    # processing and the dispatch; the declarations count on their own days.
    by_day = {
        row["key"]: (row["declarations"], row["movements"])
        for row in stats(ledger, "officer", group_by="day")
    }
    assert by_day == {"2026-11-23": (2, 2), "2026-11-24": (1, 4), "2026-11-25": (1, 2)}
    (month,) = stats(ledger, "officer", group_by="month")
    assert (month["key"], month["declarations"], month["movements"]) == ("2026-11", 4, 8)


def test_movements_count_in_their_zone_and_for_their_books_enterprise(world):
    ledger, a, b = world.ledger, world.a, world.b
    for group_by in GROUPS:
        for tenant in (a, b):
            got = movements_by_key(stats(ledger, tenant.token_name, group_by=group_by))
            assert got == expect(world, group_by, lambda m, t=tenant: m.enterprise == t.uscc)
        for zone in ("XCBZ", "XHTZ"):
            got = movements_by_key(stats(ledger, f"gate-{zone.lower()}", group_by=group_by))
            assert got == expect(world, group_by, lambda m, z=zone: m.zone == z), zone
            got = movements_by_key(stats(ledger, "officer", group_by=group_by, zone=zone))
            assert got == expect(world, group_by, lambda m, z=zone: m.zone == z), zone
    (row,) = stats(ledger, b.token_name, group_by="flow")
    assert (row["key"], row["declarations"], row["movements"]) == ("first_line_in", 1, 1)
    # The receipt happened in XHTZ; the transfer declaration is XCBZ's (its destination is
    # XHTZ, so XHTZ's operator counts it too, as in the declarations list).
    (row,) = stats(ledger, "officer", group_by="flow", zone="XHTZ")
    assert (row["key"], row["declarations"], row["movements"]) == ("transfer", 0, 1)
    (row,) = stats(ledger, "gate-xhtz", group_by="flow")
    assert (row["key"], row["declarations"], row["movements"]) == ("transfer", 1, 1)


def test_movements_count_by_business_time_in_a_half_open_window(world):
    # [D1 10:00, D1+1 15:00) China time: the first entry (at the bound itself), b's entry at
    # 12:00, the entry at 01:30, the stocktake and the processing; not the dispatch at 15:00
    # (the excluded end), nor the receipt and the exit after it.
    since, until = at(D1, 10), at(D1 + timedelta(days=1), 15)
    lo, hi = datetime.fromisoformat(since), datetime.fromisoformat(until)
    ledger = world.ledger
    for group_by in GROUPS:
        got = movements_by_key(
            stats(ledger, "officer", group_by=group_by, **{"from": since, "to": until})
        )
        in_window = expect(
            world, group_by, lambda m: lo <= datetime.fromisoformat(m.occurred_at) < hi
        )
        assert got == in_window, group_by
    # The transfer declaration (12:00 on the 24th) is in the window, its movements are not;
    # the imports (08:00 on the 23rd) are not, their entries are.
    rows = stats(ledger, "officer", group_by="flow", **{"from": since, "to": until})
    assert [(r["key"], r["declarations"], r["movements"]) for r in rows] == [
        ("first_line_in", 0, 3),
        ("transfer", 1, 0),
        ("within_zone", 0, 2),
    ]


def _movement_events(ledger: Ledger) -> list[dict[str, Any]]:
    """Every `MovementRecorded` in the log, as GET /v1/events gives it (the oracle)."""
    found, cursor = [], None
    while True:
        params = {"limit": 1000} | ({"cursor": cursor} if cursor else {})
        r = ledger.get("/v1/events", "auditor", params=params)
        assert r.status_code == 200, r.text
        found += [
            e["payload"]["view"] for e in r.json()["items"] if e["type"] == "MovementRecorded"
        ]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            return found


WHO = ("officer", "a", "b", "gate-xcbz", "gate-xhtz")
INSTANTS = [
    datetime(2026, 11, 23, 10, tzinfo=SHANGHAI) + timedelta(minutes=30 * n) for n in range(-6, 90)
]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    group_by=st.sampled_from(GROUPS),
    who=st.sampled_from(WHO),
    bounds=st.lists(st.sampled_from(INSTANTS) | st.none(), min_size=2, max_size=2),
)
def test_the_groups_movements_add_up_to_the_movement_events_the_caller_sees_in_the_window(
    world, group_by, who, bounds
):
    since, until = bounds
    if since is not None and until is not None and until < since:
        since, until = until, since
    token = {"a": world.a.token_name, "b": world.b.token_name}.get(who, who)
    params: dict[str, Any] = {"group_by": group_by}
    if since is not None:
        params["from"] = since.isoformat()
    if until is not None:
        params["to"] = until.isoformat()
    rows = stats(world.ledger, token, **params)

    def seen(view: dict[str, Any]) -> bool:
        occurred = datetime.fromisoformat(view["occurred_at"])
        if (since is not None and occurred < since) or (until is not None and occurred >= until):
            return False
        if who in ("a", "b"):
            return world.books[view["account_book"]] == getattr(world, who).uscc
        if who.startswith("gate-"):
            return view["zone"] == who.removeprefix("gate-").upper()
        return True

    events = [v for v in _movement_events(world.ledger) if seen(v)]
    assert sum(row["movements"] for row in rows) == len(events)
    assert [row["key"] for row in rows] == sorted({row["key"] for row in rows})
    assert all(row["movements"] >= 0 and row["declarations"] >= 0 for row in rows)


def test_a_replay_as_of_a_past_instant_counts_what_the_stats_answered_then(world):
    services = world.ledger.services
    assert len(world.noted) == 5
    assert world.noted[0][1]["flow"] == []
    assert [sum(r["movements"] for r in answered["flow"]) for _, answered in world.noted] == [
        0,
        0,
        3,
        6,
        8,
    ]
    for instant, answered in world.noted:
        with scratch_views(services) as scratch:
            rebuild(
                scratch,
                replay_runners(services.app),
                replay_log(services.app),
                until=utc_text(datetime.fromisoformat(instant)),
            )
            for group_by, items in answered.items():
                rows = StatsQueries(scratch).stats(
                    group_by=group_by,
                    zone=None,
                    since=None,
                    until=None,
                    scope=Scope(role="auditor"),
                )
                assert msgspec.to_builtins(rows) == items, (instant, group_by)


def test_views_of_the_previous_inventory_version_are_rebuilt_and_count_movements(
    database_url, caplog
):
    caplog.set_level(logging.WARNING, logger="customs_ledger.projections")
    with running_ledger(database_url) as ledger:
        ledger.services.ledger.clock = TestClock(START)
        world = _tell(ledger)
        head = ledger.services.app.log.head().position
        assert ledger.services.runner.wait_for(head, 10)
        answered = {g: stats(ledger, "officer", group_by=g) for g in GROUPS}
    # The views as the release before left them: view_movements without a declaration or a
    # business time, built by inventory version 1.
    views = open_views(parse_database_url(database_url))
    try:
        with views.transaction() as cur:
            cur.execute("DROP TABLE view_movements")
            cur.execute(
                "CREATE TABLE view_movements (movement_id TEXT PRIMARY KEY, kind TEXT NOT NULL,"
                " zone TEXT NOT NULL, account_book TEXT NOT NULL, documents TEXT NOT NULL,"
                " position BIGINT NOT NULL)"
            )
            cur.execute("UPDATE view_versions SET version = 1 WHERE projection = 'inventory'")
    finally:
        views.close()

    with running_ledger(database_url) as ledger:
        for group_by in GROUPS:
            got = stats(ledger, "officer", group_by=group_by)
            assert got == answered[group_by], group_by
            assert movements_by_key(got) == expect(world, group_by)
        with ledger.services.views.read() as cur:
            cur.execute("SELECT version FROM view_versions WHERE projection = 'inventory'")
            assert int(cur.fetchone()["version"]) == InventoryProjection.version
    rebuilt = [r.getMessage() for r in caplog.records if "rebuilt from the log" in r.getMessage()]
    assert len(rebuilt) == 1
    assert f"inventory stored 1 -> code {InventoryProjection.version}" in rebuilt[0]
