"""GET /v1/movements lists movements, over HTTP on both stores.

The world is the statistics test's (eight movements of six kinds in two zones, by two
enterprises, over three China days; its stocktake takes 2 of 100 held, which is flagged) and
one more stocktake that finds goods (not flagged). The oracle is the log: every
`MovementRecorded` as GET /v1/events gives it, with its position. A listed movement is what
GET /v1/movements/{id} answers; the list is in log order; an enterprise sees its own books'
movements, an operator its zone's, officers, auditors and admins all of them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.services import open_views
from ledger.database import parse_database_url
from projections.inventory import InventoryProjection
from tests.e2e.test_credit_and_stats import START, TestClock, at
from tests.e2e.test_stats_movements import D1, World, _tell
from tests.support import Ledger, new_key, running_ledger

Movement = dict[str, Any]


@pytest.fixture
def world(database_url):
    with running_ledger(database_url) as ledger:
        ledger.services.ledger.clock = TestClock(START)
        told = _tell(ledger)
        found = {
            "kind": "adjustment",
            "account_book": told.b.book_no,
            "item_no": 1,
            "quantity_delta": "1",
            "reason": "one more found, stocktake 2026-11-25",
            "occurred_at": at(D1 + timedelta(days=2), 16),
        }
        r = ledger.post("/v1/movements", told.b.token_name, found, key=new_key())
        assert r.status_code == 201, r.text
        yield told


def logged(ledger: Ledger) -> list[Movement]:
    """Every `MovementRecorded` in the log with its position, as GET /v1/events gives it."""
    found, cursor = [], None
    while True:
        params = {"limit": 1000} | ({"cursor": cursor} if cursor else {})
        r = ledger.get("/v1/events", "auditor", params=params)
        assert r.status_code == 200, r.text
        found += [
            {**e["payload"]["view"], "position": e["position"]}
            for e in r.json()["items"]
            if e["type"] == "MovementRecorded"
        ]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            return found


def listed(ledger: Ledger, who: str, **params: Any) -> list[Movement]:
    """Every page of GET /v1/movements, concatenated."""
    found: list[Movement] = []
    cursor = None
    while True:
        r = ledger.get("/v1/movements", who, params=params | ({"cursor": cursor} if cursor else {}))
        assert r.status_code == 200, r.text
        assert int(r.headers["X-Ledger-Position"]) >= 1
        page = r.json()
        assert len(page["items"]) <= params.get("limit", 100)
        found += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return found


def token(world: World, who: str) -> str:
    return {"a": world.a.token_name, "b": world.b.token_name}.get(who, who)


def sees(world: World, who: str) -> Callable[[Movement], bool]:
    """Whether `who` may see a movement (the rule of GET /v1/movements/{id})."""
    if who in ("a", "b"):
        uscc = getattr(world, who).uscc
        return lambda m: world.books[m["account_book"]] == uscc
    if who.startswith("gate-"):
        zone = who.removeprefix("gate-").upper()
        return lambda m: m["zone"] == zone
    return lambda m: True


def ids(movements: list[Movement]) -> list[str]:
    return [m["movement_id"] for m in movements]


def test_everyone_of_the_state_lists_every_movement_as_its_own_route_answers_it(world):
    ledger = world.ledger
    every = logged(ledger)
    assert len(every) == 9
    for who in ("officer", "auditor", "admin"):
        got = listed(ledger, who)
        assert got == every, who
    positions = [m["position"] for m in every]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    for m in every:
        r = ledger.get(f"/v1/movements/{m['movement_id']}", "officer")
        assert r.status_code == 200 and r.json() == m


def test_tenants_list_only_their_own_books_or_zones_movements(world):
    ledger = world.ledger
    every = logged(ledger)
    counts = {}
    for who in ("a", "b", "gate-xcbz", "gate-xhtz"):
        got = listed(ledger, token(world, who))
        assert got == [m for m in every if sees(world, who)(m)], who
        counts[who] = len(got)
        # An account book or zone outside the tenant's reach lists nothing, never a 403.
        other = world.b.book_no if who == "a" else world.a.book_no
        if who in ("a", "b"):
            assert listed(ledger, token(world, who), account_book=other) == []
    # a: six movements on its two books; b: its entry and its stocktake; XCBZ: all but the
    # receipt in XHTZ.
    assert counts == {"a": 7, "b": 2, "gate-xcbz": 8, "gate-xhtz": 1}


def test_flagged_finds_the_stocktake_decrease_flagged_for_an_officer(world):
    ledger = world.ledger
    (flagged,) = listed(ledger, "officer", flagged="true")
    assert (flagged["kind"], flagged["flagged"], flagged["account_book"]) == (
        "adjustment",
        True,
        world.a.book_no,
    )
    assert flagged["reason"] == "two damaged, stocktake 2026-11-24"
    unflagged = listed(ledger, "officer", flagged="false")
    assert len(unflagged) == 8 and not any(m["flagged"] for m in unflagged)
    assert [m["reason"] for m in unflagged if m["kind"] == "adjustment"] == [
        "one more found, stocktake 2026-11-25"
    ]
    # The flagged decrease is a's: b and XHTZ's operator do not see it.
    assert listed(ledger, world.b.token_name, flagged="true") == []
    assert listed(ledger, "gate-xhtz", flagged="true") == []
    assert ids(listed(ledger, world.a.token_name, flagged="true")) == [flagged["movement_id"]]


def test_kind_account_book_and_zone_select_exactly(world):
    ledger = world.ledger
    every = logged(ledger)
    for kind in ("gate_in", "gate_out", "adjustment", "processing", "transfer_receipt"):
        assert listed(ledger, "auditor", kind=kind) == [m for m in every if m["kind"] == kind]
    assert [m["kind"] for m in listed(ledger, "auditor", kind="gate_in")] == ["gate_in"] * 3
    for book in world.books:
        got = listed(ledger, "officer", account_book=book)
        assert got == [m for m in every if m["account_book"] == book]
    assert ids(listed(ledger, "officer", zone="XHTZ")) == ids(
        [m for m in every if m["kind"] == "transfer_receipt"]
    )
    got = listed(ledger, "officer", zone="XCBZ", kind="adjustment", account_book=world.a.book_no)
    assert [m["reason"] for m in got] == ["two damaged, stocktake 2026-11-24"]
    # A registered kind nothing moved under lists nothing; a book nobody opened neither.
    assert listed(ledger, "officer", kind="gate_out", zone="XHTZ") == []
    assert listed(ledger, "officer", account_book="B00000000XCBZ") == []


def test_from_and_to_select_on_business_time_half_open(world):
    ledger = world.ledger
    every = logged(ledger)
    # [D1 10:00, D1+1 15:00) China time: the first entry (at the bound), b's entry at 12:00,
    # the entry at 01:30 the next day, the stocktake and the processing; not the dispatch at
    # 15:00 (the bound), whose own time the window excludes.
    since, until = at(D1, 10), at(D1 + timedelta(days=1), 15)
    got = listed(ledger, "officer", **{"from": since, "to": until})
    assert [m["kind"] for m in got] == [
        "gate_in",
        "gate_in",
        "gate_in",
        "adjustment",
        "processing",
    ]
    lo, hi = datetime.fromisoformat(since), datetime.fromisoformat(until)
    assert got == [m for m in every if lo <= datetime.fromisoformat(m["occurred_at"]) < hi]
    # The same instant in UTC selects the same.
    utc = {"from": lo.astimezone(UTC).isoformat(), "to": hi.astimezone(UTC).isoformat()}
    assert listed(ledger, "officer", **utc) == got


@pytest.mark.parametrize(
    ("params", "loc"),
    [
        ({"kind": "teleport"}, "query.kind"),
        ({"kind": ""}, "query.kind"),
        ({"flagged": "maybe"}, "query.flagged"),
        ({"from": "2026-11-23T10:00:00"}, "query.from"),
        ({"to": "yesterday"}, "query.to"),
        ({"cursor": "-1"}, "query.cursor"),
        ({"limit": "0"}, "query.limit"),
        ({"limit": "1001"}, "query.limit"),
    ],
)
def test_a_bad_parameter_is_422_at_its_place(database_url, params, loc):
    with running_ledger(database_url) as ledger:
        r = ledger.get("/v1/movements", "officer", params=params)
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["loc"] == loc
        assert ledger.get("/v1/movements", "officer").json() == {
            "items": [],
            "next_cursor": None,
        }
        assert ledger.client.get("/v1/movements").status_code == 401


WHO = ("officer", "a", "b", "gate-xcbz", "gate-xhtz")
FILTERS = st.fixed_dictionaries(
    {},
    optional={
        "kind": st.sampled_from(("gate_in", "adjustment", "transfer_dispatch", "gate_out")),
        "flagged": st.sampled_from(("true", "false")),
        "zone": st.sampled_from(("XCBZ", "XHTZ")),
    },
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(who=st.sampled_from(WHO), limit=st.integers(1, 10), filters=FILTERS)
def test_pages_concatenated_are_the_filtered_movements_the_caller_sees_once_each(
    world, who, limit, filters
):
    every = logged(world.ledger)
    got = listed(world.ledger, token(world, who), limit=limit, **filters)

    def kept(m: Movement) -> bool:
        return (
            sees(world, who)(m)
            and m["kind"] == filters.get("kind", m["kind"])
            and m["zone"] == filters.get("zone", m["zone"])
            and str(m["flagged"]).lower() == filters.get("flagged", str(m["flagged"]).lower())
        )

    assert got == [m for m in every if kept(m)]
    assert len(set(ids(got))) == len(got)


def test_views_of_the_previous_inventory_version_are_rebuilt_and_list_movements(
    database_url, caplog
):
    caplog.set_level(logging.WARNING, logger="customs_ledger.projections")
    with running_ledger(database_url) as ledger:
        ledger.services.ledger.clock = TestClock(START)
        world = _tell(ledger)
        every = logged(ledger)
        assert listed(ledger, "officer") == every
    # The views as version 2 left them: view_movements without `flagged` or the view.
    views = open_views(parse_database_url(database_url))
    try:
        with views.transaction() as cur:
            cur.execute("DROP TABLE view_movements")
            cur.execute(
                "CREATE TABLE view_movements (movement_id TEXT PRIMARY KEY, kind TEXT NOT NULL,"
                " zone TEXT NOT NULL, account_book TEXT NOT NULL, documents TEXT NOT NULL,"
                " position BIGINT NOT NULL, declaration TEXT NOT NULL,"
                " occurred_at_utc TEXT NOT NULL, business_day TEXT NOT NULL)"
            )
            cur.execute("UPDATE view_versions SET version = 2 WHERE projection = 'inventory'")
    finally:
        views.close()
    with running_ledger(database_url) as ledger:
        assert listed(ledger, "officer") == every
        (flagged,) = listed(ledger, "officer", flagged="true")
        assert flagged["account_book"] == world.a.book_no
    rebuilt = [r.getMessage() for r in caplog.records if "rebuilt from the log" in r.getMessage()]
    code = InventoryProjection.version
    assert len(rebuilt) == 1 and f"inventory stored 2 -> code {code}" in rebuilt[0]
