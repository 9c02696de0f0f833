"""Goods leave: a release reserves stock, the gate lets it out first-in first-out."""

from __future__ import annotations

import pytest

from tests.samples import line
from tests.support import admit, declaration_body, new_key, onboard, running_ledger


@pytest.fixture
def ledger(database_url):
    with running_ledger(database_url) as ledger:
        ledger.issue("gate-xcbz", "operator", zone="XCBZ")
        ledger.issue("gate-xepz", "operator", zone="XEPZ")
        yield ledger


def _export(ledger, t, quantity: str):
    """An export abroad (first_line_out): green and nothing to pay, so released at once."""
    body = declaration_body(
        t.uscc,
        t.book_no,
        flow="first_line_out",
        trade_mode="0110",
        country="KZ",
        lines=[line(1, quantity=quantity, origin_country=None)],
    )
    return ledger.post("/v1/declarations", t.token_name, body, key=new_key())


def _laptops(ledger, t):
    book = ledger.get(f"/v1/account-books/{t.book_no}", t.token_name).json()
    return next(i for i in book["items"] if i["item_no"] == 1)


def _gate_out(ledger, who, ref, quantity, key=None):
    body = {"kind": "gate_out", "declaration": ref, "lines": [{"line_no": 1, "quantity": quantity}]}
    return ledger.post("/v1/movements", who, body, key=key or new_key())


def test_a_release_reserves_and_the_gate_turns_the_reservation_into_an_exit(ledger):
    t = onboard(ledger)
    admit(ledger, t, 1, "6")
    admit(ledger, t, 1, "6")
    r = _export(ledger, t, "8")
    assert r.status_code == 201 and r.json()["status"] == "released", r.text
    d = r.json()
    laptops = _laptops(ledger, t)
    assert (laptops["on_hand"], laptops["pending_out"], laptops["available"]) == ("12", "8", "4")

    out = _gate_out(ledger, "gate-xcbz", d["declaration_no"], "8")
    assert out.status_code == 201, out.text
    # First in, first out: all 6 of the first lot, then 2 of the second.
    assert [x["quantity"] for x in out.json()["lots"]] == ["6", "2"]
    laptops = _laptops(ledger, t)
    assert (laptops["on_hand"], laptops["pending_out"], laptops["available"]) == ("4", "0", "4")
    first = out.json()["lots"][0]["lot_id"]
    assert ledger.get(f"/v1/lots/{first}", "officer").json()["on_hand"] == "0"
    decl = ledger.get(f"/v1/declarations/{d['id']}", "officer").json()
    assert decl["lines"][0]["quantity_moved"] == "8"
    # A document cannot let goods out twice.
    again = _gate_out(ledger, "gate-xcbz", d["id"], "1")
    assert again.status_code == 409 and again.json()["rule"] == "exceeds_declared_quantity"


def test_a_release_beyond_available_stock_is_refused_and_changes_nothing(ledger):
    t = onboard(ledger)
    admit(ledger, t, 1, "5")
    assert _export(ledger, t, "4").status_code == 201
    before = ledger.log_state()
    # 5 on hand, 4 reserved: 1 available.
    r = _export(ledger, t, "2")
    assert r.status_code == 409 and r.json()["rule"] == "insufficient_stock"
    assert ledger.log_state() == before
    assert _export(ledger, t, "1").status_code == 201


def test_a_second_line_exit_leaves_only_once_duties_are_paid(ledger):
    t = onboard(ledger)
    admit(ledger, t, 1, "3")
    body = declaration_body(
        t.uscc,
        t.book_no,
        flow="second_line_out",
        trade_mode="0110",
        country="CN",
        lines=[line(1, quantity="2", origin_country=None)],
    )
    d = ledger.post("/v1/declarations", t.token_name, body, key=new_key()).json()
    assert d["status"] == "awaiting_payment"
    # Nothing reserved yet: submission alone reserves nothing.
    assert _laptops(ledger, t)["pending_out"] == "0"
    r = _gate_out(ledger, "gate-xcbz", d["id"], "2")
    assert r.status_code == 409 and r.json()["rule"] == "declaration_not_released"
    paid = ledger.post(
        f"/v1/declarations/{d['id']}/payments",
        t.token_name,
        {"amount": d["duties"]["outstanding"], "currency": "CNY", "reference": "BANK-9"},
    )
    assert paid.status_code == 200 and paid.json()["status"] == "released", paid.text
    assert _laptops(ledger, t)["pending_out"] == "2"
    assert _gate_out(ledger, "gate-xcbz", d["id"], "2").status_code == 201
    assert _laptops(ledger, t)["on_hand"] == "1"


def test_the_gate_of_another_zone_and_other_roles_cannot_let_goods_out(ledger):
    t = onboard(ledger)
    admit(ledger, t, 1, "2")
    d = _export(ledger, t, "1").json()
    r = _gate_out(ledger, "gate-xepz", d["id"], "1")
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == "$.declaration"
    assert _gate_out(ledger, t.token_name, d["id"], "1").status_code == 403
    imported = ledger.post(
        "/v1/declarations", t.token_name, declaration_body(t.uscc, t.book_no), key=new_key()
    ).json()
    r = _gate_out(ledger, "gate-xcbz", imported["id"], "1")
    assert r.status_code == 409 and r.json()["rule"] == "wrong_flow"
