"""The read side of the books: inventory, entries, statements, and balances as of a past instant.

Everything here is answered from the views the catch-up runner keeps (never a replay per
request) and must agree with the write side and with a rebuild from the log.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from api.services import read_models_runner
from projections.store import SQLiteViews
from tests.samples import line
from tests.support import declaration_body, new_key, onboard, running_ledger


@pytest.fixture
def ledger(database_url):
    with running_ledger(database_url) as ledger:
        ledger.issue("gate-xcbz", "operator", zone="XCBZ")
        ledger.issue("gate-xhtz", "operator", zone="XHTZ")
        yield ledger


def _admit(ledger, t, quantity: str, occurred_at: datetime | None = None, item: int = 1) -> dict:
    d = ledger.post(
        "/v1/declarations",
        t.token_name,
        declaration_body(t.uscc, t.book_no, lines=[line(item, quantity=quantity)]),
        key=new_key(),
    ).json()
    body = {
        "kind": "gate_in",
        "declaration": d["id"],
        "lines": [{"line_no": 1, "quantity": quantity}],
    }
    if occurred_at is not None:
        body["occurred_at"] = occurred_at.isoformat()
    r = ledger.post("/v1/movements", "gate-xcbz", body, key=new_key())
    assert r.status_code == 201, r.text
    return r.json()


def _adjust(ledger, t, delta: str, occurred_at: datetime | None = None):
    body = {
        "kind": "adjustment",
        "account_book": t.book_no,
        "item_no": 1,
        "quantity_delta": delta,
        "reason": "stocktake",
    }
    if occurred_at is not None:
        body["occurred_at"] = occurred_at.isoformat()
    r = ledger.post("/v1/movements", t.token_name, body, key=new_key())
    assert r.status_code == 201, r.text
    return r.json()


def _now() -> str:
    instant = datetime.now(UTC).isoformat()
    time.sleep(0.002)  # what is written next is recorded after this instant
    return instant


def _item(book: dict, item_no: int = 1) -> dict:
    return next(i for i in book["items"] if i["item_no"] == item_no)


def test_entries_carry_signed_quantities_and_a_running_balance_in_log_order(ledger):
    t = onboard(ledger)
    first = _admit(ledger, t, "30")
    _admit(ledger, t, "20")
    _adjust(ledger, t, "-35")  # FIFO: all of the first lot, 5 of the second
    _adjust(ledger, t, "4")  # a new surplus lot
    r = ledger.get(f"/v1/account-books/{t.book_no}/entries", t.token_name)
    assert r.status_code == 200, r.text
    rows = [(e["entry_kind"], e["quantity"], e["balance_after"]) for e in r.json()["items"]]
    assert rows == [
        ("receipt", "30", "30"),
        ("receipt", "20", "50"),
        ("adjustment", "-30", "20"),
        ("adjustment", "-5", "15"),
        ("adjustment", "4", "19"),
    ]
    entries = r.json()["items"]
    assert entries[0]["lot_id"] == first["lots"][0]["lot_id"] == entries[2]["lot_id"]
    positions = [e["position"] for e in entries]
    assert positions == sorted(positions)
    # The last balance is the book's on_hand.
    book = ledger.get(f"/v1/account-books/{t.book_no}", t.token_name).json()
    assert _item(book)["on_hand"] == entries[-1]["balance_after"]


def test_entries_page_with_a_cursor_and_filter_by_item_and_business_time(ledger):
    t = onboard(ledger)
    now = datetime.now(UTC)
    old = now - timedelta(days=10)
    _admit(ledger, t, "5", occurred_at=old.astimezone(timezone(timedelta(hours=8))))  # +08:00 kept
    _admit(ledger, t, "6")
    _admit(ledger, t, "7", item=2)
    path = f"/v1/account-books/{t.book_no}/entries"
    first = ledger.get(path, "officer", params={"limit": 2}).json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    rest = ledger.get(path, "officer", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert [e["quantity"] for e in first["items"] + rest["items"]] == ["5", "6", "7"]
    assert rest["next_cursor"] is None
    only_two = ledger.get(path, "officer", params={"item_no": 2}).json()["items"]
    assert [e["quantity"] for e in only_two] == ["7"]
    # [from, to) on business time, across offsets: the +08:00 entry of ten days ago only.
    window = {"from": (old - timedelta(hours=1)).isoformat(), "to": (old + timedelta(hours=1))}
    window["to"] = window["to"].isoformat()
    early = ledger.get(path, "officer", params=window).json()["items"]
    assert [e["quantity"] for e in early] == ["5"]
    assert early[0]["occurred_at"].endswith("+08:00")


def test_balances_as_of_past_instants_come_from_the_stored_history(ledger):
    t = onboard(ledger)
    before_any = _now()
    _admit(ledger, t, "10")
    after_first = _now()
    _admit(ledger, t, "15")
    after_second = _now()
    _adjust(ledger, t, "-3")
    path = f"/v1/account-books/{t.book_no}"
    for instant, expected in ((after_first, "10"), (after_second, "25")):
        r = ledger.get(path, t.token_name, params={"as_of": instant})
        assert r.status_code == 200, r.text
        assert _item(r.json())["on_hand"] == expected
        assert _item(r.json())["available"] == expected
    assert _item(ledger.get(path, t.token_name).json())["on_hand"] == "22"
    # The book existed before its first movement: zero then.
    then = ledger.get(path, t.token_name, params={"as_of": before_any}).json()
    assert _item(then)["on_hand"] == "0"
    # Before the book was opened there was no book.
    r = ledger.get(path, t.token_name, params={"as_of": "2020-01-01T00:00:00Z"})
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")
    # The inventory list answers the same question across books.
    inv = ledger.get(
        "/v1/inventory", "officer", params={"account_book": t.book_no, "as_of": after_first}
    ).json()["items"]
    assert {(i["item_no"], i["on_hand"]) for i in inv} >= {(1, "10")}


def test_items_registered_later_are_not_in_the_book_as_of_before(ledger):
    t = onboard(ledger)
    instant = _now()
    extra = {"item_no": 77, "hs_code": "8504401400", "name": "Adapters", "unit": "C62"}
    r = ledger.post(f"/v1/account-books/{t.book_no}/items", "admin", {"items": [extra]})
    assert r.status_code == 201, r.text
    path = f"/v1/account-books/{t.book_no}"
    then = ledger.get(path, "officer", params={"as_of": instant}).json()
    assert 77 not in {i["item_no"] for i in then["items"]}
    assert 77 in {i["item_no"] for i in ledger.get(path, "officer").json()["items"]}


def test_reservations_and_transit_follow_into_the_views(ledger):
    t = onboard(ledger)
    _admit(ledger, t, "10")
    export = ledger.post(
        "/v1/declarations",
        t.token_name,
        declaration_body(
            t.uscc,
            t.book_no,
            flow="first_line_out",
            trade_mode="0110",
            country="NL",
            lines=[{**line(1, quantity="4"), "origin_country": None}],
        ),
        key=new_key(),
    ).json()
    assert export["status"] == "released"
    inv = ledger.get("/v1/inventory", "officer", params={"account_book": t.book_no}).json()
    laptops = next(i for i in inv["items"] if i["item_no"] == 1)
    assert (laptops["on_hand"], laptops["pending_out"], laptops["available"]) == ("10", "4", "6")
    body = {
        "kind": "gate_out",
        "declaration": export["id"],
        "lines": [{"line_no": 1, "quantity": "3"}],
    }
    assert ledger.post("/v1/movements", "gate-xcbz", body, key=new_key()).status_code == 201
    inv = ledger.get("/v1/inventory", "officer", params={"account_book": t.book_no}).json()
    laptops = next(i for i in inv["items"] if i["item_no"] == 1)
    assert (laptops["on_hand"], laptops["pending_out"], laptops["available"]) == ("7", "1", "6")


def test_statement_reconciles_and_answers_bitemporally(ledger):
    t = onboard(ledger)
    now = datetime.now(UTC)
    period_start, period_end = now - timedelta(days=20), now - timedelta(days=5)
    _admit(ledger, t, "50", occurred_at=now - timedelta(days=30))  # before the period: opening
    _admit(ledger, t, "20", occurred_at=now - timedelta(days=10))  # in the period
    _adjust(ledger, t, "-2", occurred_at=now - timedelta(days=9))
    closed = _now()  # "the statement as it stood" here
    _adjust(ledger, t, "-1", occurred_at=now - timedelta(days=8))  # late: recorded after
    _admit(ledger, t, "9")  # after the period
    path = f"/v1/account-books/{t.book_no}/statement"
    period = {"from": period_start.isoformat(), "to": period_end.isoformat()}
    lines = {x["item_no"]: x for x in ledger.get(path, "auditor", params=period).json()["items"]}
    assert lines[1] == {
        "item_no": 1,
        "opening": "50",
        "receipts": "20",
        "issues": "0",
        "adjustments": "-3",
        "closing": "67",
    }
    assert lines[2]["closing"] == "0"
    as_stood = ledger.get(path, "auditor", params={**period, "as_of": closed}).json()["items"]
    assert next(x for x in as_stood if x["item_no"] == 1)["adjustments"] == "-2"
    for x in lines.values():
        total = (
            Decimal(x["opening"])
            + Decimal(x["receipts"])
            - Decimal(x["issues"])
            + Decimal(x["adjustments"])
        )
        assert Decimal(x["closing"]) == total
    bad = ledger.get(
        path, "auditor", params={"from": period_end.isoformat(), "to": period_start.isoformat()}
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["loc"] == "query.to"


def test_other_tenants_books_and_zones_stay_out_of_sight(ledger):
    a, b = onboard(ledger), onboard(ledger)
    other_zone = onboard(ledger, zone="XHTZ")
    _admit(ledger, a, "3")
    for path in ("", "/entries", "/statement"):
        r = ledger.get(f"/v1/account-books/{a.book_no}{path}", b.token_name)
        assert r.status_code == 404, (path, r.text)
        r = ledger.get(f"/v1/account-books/{a.book_no}{path}", "gate-xhtz")
        assert r.status_code == 404, (path, r.text)
    mine = ledger.get("/v1/inventory", b.token_name, params={"limit": 1000}).json()["items"]
    assert {i["account_book"] for i in mine} == {b.book_no}
    zone = ledger.get("/v1/inventory", "gate-xhtz", params={"limit": 1000}).json()["items"]
    assert {i["zone"] for i in zone} == {"XHTZ"} and other_zone.book_no in {
        i["account_book"] for i in zone
    }
    # Asking for another tenant's book by filter gives nothing, not an error that reveals it.
    theirs = ledger.get("/v1/inventory", b.token_name, params={"account_book": a.book_no})
    assert theirs.status_code == 200 and theirs.json()["items"] == []


@pytest.mark.parametrize("param", ["as_of", "from", "to"])
def test_a_naive_or_garbled_time_is_422_naming_the_parameter(ledger, param):
    t = onboard(ledger)
    path = "/v1/inventory" if param == "as_of" else f"/v1/account-books/{t.book_no}/statement"
    for value in ("2026-11-01T00:00:00", "yesterday"):
        r = ledger.get(path, "officer", params={param: value})
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["loc"] == f"query.{param}"


def test_a_rebuild_from_the_log_equals_the_live_views(ledger, tmp_path):
    t = onboard(ledger)
    _admit(ledger, t, "8")
    _adjust(ledger, t, "-1")
    _adjust(ledger, t, "2")
    services = ledger.services
    head = services.app.log.head().position
    assert services.runner.wait_for(head, timeout=10)
    fresh = SQLiteViews(str(tmp_path / "replay.views.sqlite3"))
    try:
        read_models_runner("replay", fresh, services.app).catch_up()
        for table in (
            "view_books",
            "view_book_items",
            "view_stock_history",
            "view_book_entries",
            "view_movements",
            "view_reservations",
            "view_transit",
        ):
            assert _rows(fresh, table) == _rows(services.views, table), table
    finally:
        fresh.close()


def _rows(views, table: str) -> list[tuple[str, ...]]:
    with views.read() as cur:
        cur.execute(f"SELECT * FROM {table}")
        return sorted(tuple(str(v) for v in dict(r).values()) for r in cur.fetchall())
