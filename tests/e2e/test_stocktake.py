"""Stocktake adjustments: differences become events on the item and its lots, never edits."""

from __future__ import annotations

import pytest

from domain.movements import item_stock_id
from tests.samples import line
from tests.support import declaration_body, new_key, onboard, running_ledger


@pytest.fixture
def ledger(database_url):
    with running_ledger(database_url) as ledger:
        ledger.issue("gate-xcbz", "operator", zone="XCBZ")
        yield ledger


def _admit(ledger, t, quantity: str, **overrides) -> str:
    overrides.setdefault("lines", [line(1, quantity=quantity)])
    d = ledger.post(
        "/v1/declarations",
        t.token_name,
        declaration_body(t.uscc, t.book_no, **overrides),
        key=new_key(),
    ).json()
    body = {
        "kind": "gate_in",
        "declaration": d["id"],
        "lines": [{"line_no": 1, "quantity": quantity}],
    }
    r = ledger.post("/v1/movements", "gate-xcbz", body, key=new_key())
    assert r.status_code == 201, r.text
    return r.json()["lots"][0]["lot_id"]


def _adjust(ledger, t, delta: str, key=None, **extra):
    body = {
        "kind": "adjustment",
        "account_book": t.book_no,
        "item_no": 1,
        "quantity_delta": delta,
        "reason": "stocktake 2026-11",
        **extra,
    }
    return ledger.post("/v1/movements", t.token_name, body, key=key or new_key())


def _on_hand(ledger, t) -> str:
    book = ledger.get(f"/v1/account-books/{t.book_no}", t.token_name).json()
    return next(i for i in book["items"] if i["item_no"] == 1)["on_hand"]


def test_a_shortage_draws_first_in_first_out_and_large_ones_are_flagged(ledger):
    t = onboard(ledger)
    first = _admit(ledger, t, "10")
    second = _admit(ledger, t, "10")
    r = _adjust(ledger, t, "-12")
    assert r.status_code == 201, r.text
    moved = r.json()
    # 12 of 20: the whole first lot, then 2 of the second. 12/20 >= 1%: flagged for an officer.
    assert [(x["lot_id"], x["quantity"]) for x in moved["lots"]] == [(first, "-10"), (second, "-2")]
    assert moved["flagged"] is True and moved["reason"] == "stocktake 2026-11"
    assert _on_hand(ledger, t) == "8"
    assert ledger.get(f"/v1/lots/{first}", "officer").json()["on_hand"] == "0"
    assert ledger.get(f"/v1/lots/{second}", "officer").json()["on_hand"] == "8"


def test_a_small_shortage_is_not_flagged(ledger):
    t = onboard(ledger)
    _admit(ledger, t, "1000")
    r = _adjust(ledger, t, "-2")
    assert r.status_code == 201 and r.json()["flagged"] is False  # 2 of 1000 is under 1%


def test_a_surplus_without_a_lot_becomes_a_new_bonded_lot(ledger):
    t = onboard(ledger)
    r = _adjust(ledger, t, "3")
    assert r.status_code == 201, r.text
    lot = ledger.get(f"/v1/lots/{r.json()['lots'][0]['lot_id']}", "officer").json()
    assert lot["goods_status"] == "bonded" and lot["quantity_in"] == "3"
    assert lot["documents"][0]["kind"] == "adjustment"
    assert _on_hand(ledger, t) == "3"


def test_stock_never_goes_negative(ledger):
    t = onboard(ledger)
    lot = _admit(ledger, t, "5")
    before = ledger.log_state()
    r = _adjust(ledger, t, "-6")
    assert r.status_code == 409 and r.json()["rule"] == "insufficient_stock"
    r = _adjust(ledger, t, "-6", lot_id=lot)
    assert r.status_code == 409 and r.json()["rule"] == "insufficient_stock"
    assert ledger.log_state() == before


def test_fifo_never_mixes_bonded_and_domestic_lots(ledger):
    t = onboard(ledger)
    _admit(ledger, t, "2")
    _admit(
        ledger,
        t,
        "5",
        flow="second_line_in",
        country="CN",
        lines=[line(1, quantity="5", origin_country="CN")],
    )
    # The oldest lot is bonded and holds 2: a shortage of 3 cannot be taken from it alone.
    r = _adjust(ledger, t, "-3")
    assert r.status_code == 409 and r.json()["rule"] == "insufficient_stock"
    stock = ledger.services.app.load(item_stock_id(t.book_no, 1))
    assert stock.on_hand_of("bonded") == 2 and stock.on_hand_of("domestic") == 5


def test_only_the_books_enterprise_adjusts_and_bad_bodies_name_their_field(ledger):
    t, other = onboard(ledger), onboard(ledger)
    _admit(ledger, t, "5")
    body = {
        "kind": "adjustment",
        "account_book": t.book_no,
        "item_no": 1,
        "quantity_delta": "-1",
        "reason": "count",
    }
    assert ledger.post("/v1/movements", "gate-xcbz", body, key=new_key()).status_code == 403
    assert ledger.post("/v1/movements", "officer", body, key=new_key()).status_code == 403
    r = ledger.post("/v1/movements", other.token_name, body, key=new_key())
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == "$.account_book"
    for extra, loc in [
        ({"quantity_delta": "0"}, "$.quantity_delta"),
        ({"quantity_delta": "1.5"}, "$.quantity_delta"),
        ({"item_no": 99}, "$.item_no"),
        ({"reason": " "}, "$.reason"),
        ({"explains": "900720260000000001"}, "$.explains"),
        ({"lot_id": "00000000-0000-0000-0000-000000000000"}, "$.lot_id"),
    ]:
        r = ledger.post("/v1/movements", t.token_name, body | extra, key=new_key())
        assert r.status_code == 422, (extra, r.text)
        assert r.json()["errors"][0]["loc"] == loc, (extra, r.json())


def test_a_retried_adjustment_counts_once(ledger):
    t = onboard(ledger)
    _admit(ledger, t, "5")
    key = new_key()
    assert _adjust(ledger, t, "-1", key=key).status_code == 201
    again = _adjust(ledger, t, "-1", key=key)
    assert again.status_code == 201 and again.headers["Idempotency-Replayed"] == "true"
    assert _on_hand(ledger, t) == "4"


def test_a_shortage_named_on_a_lot_cannot_take_what_a_release_reserved(ledger):
    t = onboard(ledger)
    lot = _admit(ledger, t, "10")
    export = ledger.post(
        "/v1/declarations",
        t.token_name,
        declaration_body(
            t.uscc,
            t.book_no,
            flow="first_line_out",
            trade_mode="0110",
            country="NL",
            lines=[{**line(1, quantity="8"), "origin_country": None}],
        ),
        key=new_key(),
    ).json()
    assert export["status"] == "released"
    before = ledger.log_state()
    r = _adjust(ledger, t, "-3", lot_id=lot)
    assert r.status_code == 409 and r.json()["rule"] == "insufficient_stock"
    assert ledger.log_state() == before
    assert _adjust(ledger, t, "-2", lot_id=lot).status_code == 201
    book = ledger.get(f"/v1/account-books/{t.book_no}", t.token_name).json()
    laptops = next(i for i in book["items"] if i["item_no"] == 1)
    assert (laptops["on_hand"], laptops["pending_out"], laptops["available"]) == ("8", "8", "0")
