"""Exits that name their lots: exactly those lots leave, FIFO otherwise, nothing on refusal."""

from __future__ import annotations

import uuid

import pytest

from tests.samples import book_body, line
from tests.support import declaration_body, new_key, onboard, running_ledger


@pytest.fixture
def ledger(database_url):
    with running_ledger(database_url) as ledger:
        ledger.issue("gate-xcbz", "operator", zone="XCBZ")
        ledger.issue("gate-xepz", "operator", zone="XEPZ")
        yield ledger


def _admit(ledger, t, quantity, **overrides):
    """Goods in through the XCBZ gate; the new lot's id."""
    overrides.setdefault("lines", [line(1, quantity=quantity)])
    body = declaration_body(t.uscc, t.book_no, **overrides)
    d = ledger.post("/v1/declarations", t.token_name, body, key=new_key())
    assert d.status_code == 201 and d.json()["status"] == "released", d.text
    moved = ledger.post(
        "/v1/movements",
        "gate-xcbz",
        {
            "kind": "gate_in",
            "declaration": d.json()["id"],
            "lines": [{"line_no": 1, "quantity": quantity}],
        },
        key=new_key(),
    )
    assert moved.status_code == 201, moved.text
    return moved.json()["lots"][0]["lot_id"]


def _export(ledger, t, *lines):
    """A released export abroad (reserves the stock) of `(line_no, quantity, goods_status?)`."""
    body = declaration_body(
        t.uscc,
        t.book_no,
        flow="first_line_out",
        trade_mode="0110",
        country="KZ",
        lines=[
            line(
                1, line_no=n, quantity=q, origin_country=None, **({"goods_status": s} if s else {})
            )
            for n, q, s in lines
        ],
    )
    r = ledger.post("/v1/declarations", t.token_name, body, key=new_key())
    assert r.status_code == 201 and r.json()["status"] == "released", r.text
    return r.json()["id"]


def _out(ledger, ref, *lines, kind="gate_out", who="gate-xcbz"):
    """`lines` are `(line_no, quantity, lots)`; lots `[(lot_id, quantity)]` or None."""
    body = {
        "kind": kind,
        "declaration": ref,
        "lines": [
            {"line_no": n, "quantity": q}
            | ({} if lots is None else {"lots": [{"lot_id": i, "quantity": x} for i, x in lots]})
            for n, q, lots in lines
        ],
    }
    return ledger.post("/v1/movements", who, body, key=new_key())


def _on_hand(ledger, lot_id):
    return ledger.get(f"/v1/lots/{lot_id}", "officer").json()["on_hand"]


def _laptops(ledger, t):
    book = ledger.get(f"/v1/account-books/{t.book_no}", t.token_name).json()
    i = next(i for i in book["items"] if i["item_no"] == 1)
    return i["on_hand"], i["pending_out"], i["available"]


def test_an_exit_draws_exactly_the_lots_it_names(ledger):
    t = onboard(ledger)
    a, b, c = (_admit(ledger, t, "6") for _ in range(3))
    d = _export(ledger, t, (1, "8", None))
    assert _laptops(ledger, t) == ("18", "8", "10")
    r = _out(ledger, d, (1, "8", [(c, "5"), (b, "3")]))
    assert r.status_code == 201, r.text
    assert [(x["lot_id"], x["quantity"]) for x in r.json()["lots"]] == [(c, "5"), (b, "3")]
    assert [_on_hand(ledger, x) for x in (a, b, c)] == ["6", "3", "1"]
    # The reservation is released exactly as a FIFO exit releases it.
    assert _laptops(ledger, t) == ("10", "0", "10")


def test_lines_without_lots_draw_fifo_and_never_what_a_named_line_took(ledger):
    t = onboard(ledger)
    a, b = _admit(ledger, t, "6"), _admit(ledger, t, "6")
    d = _export(ledger, t, (1, "5", None), (2, "6", None))
    # Line 1 draws FIFO, line 2 names lot a in full: FIFO must take b, not a again.
    r = _out(ledger, d, (1, "5", None), (2, "6", [(a, "6")]))
    assert r.status_code == 201, r.text
    assert [(x["lot_id"], x["quantity"]) for x in r.json()["lots"]] == [(b, "5"), (a, "6")]
    assert (_on_hand(ledger, a), _on_hand(ledger, b)) == ("0", "1")
    assert _laptops(ledger, t) == ("1", "0", "1")


def test_an_exit_without_lots_still_draws_first_in_first_out(ledger):
    t = onboard(ledger)
    a, b = _admit(ledger, t, "4"), _admit(ledger, t, "4")
    d = _export(ledger, t, (1, "5", None))
    r = _out(ledger, d, (1, "5", None))
    assert r.status_code == 201, r.text
    assert [(x["lot_id"], x["quantity"]) for x in r.json()["lots"]] == [(a, "4"), (b, "1")]


def test_wrong_lots_are_refused_and_change_nothing(ledger):
    t = onboard(ledger)
    other = onboard(ledger)
    a, b = _admit(ledger, t, "6"), _admit(ledger, t, "6")
    domestic = _admit(
        ledger,
        t,
        "3",
        flow="second_line_in",
        country="CN",
        lines=[line(1, quantity="3", origin_country="CN")],
    )
    theirs = _admit(ledger, other, "6")
    coffee = _admit(ledger, t, "5", lines=[line(2, quantity="5")])
    d = _export(ledger, t, (1, "8", None))
    before = ledger.log_state()
    refused = [
        ([(a, "6"), (b, "1")], "$.lines[0].lots"),  # 7, not 8
        ([], "$.lines[0].lots"),
        ([(a, "6"), (a, "2")], "$.lines[0].lots[1].lot_id"),
        ([(a, "6"), (str(uuid.uuid4()), "2")], "$.lines[0].lots[1].lot_id"),
        ([(a, "6"), (theirs, "2")], "$.lines[0].lots[1].lot_id"),
        ([(domestic, "2"), (a, "6")], "$.lines[0].lots[0].lot_id"),  # bonded line
        ([(coffee, "2"), (a, "6")], "$.lines[0].lots[0].lot_id"),  # another item
        ([(a, "6"), ("not-a-lot", "2")], "$.lines[0].lots[1].lot_id"),
        ([(a, "6"), (b, "0")], "$.lines[0].lots[1].quantity"),
        ([(a, "6"), (b, "1.5"), (b, "0.5")], "$.lines[0].lots[1].quantity"),  # pieces
    ]
    for lots, loc in refused:
        r = _out(ledger, d, (1, "8", lots))
        assert r.status_code == 422, (lots, r.text)
        assert loc in [e["loc"] for e in r.json()["errors"]], (lots, r.json())
    assert ledger.log_state() == before
    # The lots of a line are a list of {lot_id, quantity}, nothing else.
    body = {
        "kind": "gate_out",
        "declaration": d,
        "lines": [
            {"line_no": 1, "quantity": "8", "lots": [{"lot_id": a, "quantity": "8", "x": 1}]}
        ],
    }
    r = ledger.post("/v1/movements", "gate-xcbz", body, key=new_key())
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == "$.lines[0].lots[0].x"
    assert ledger.log_state() == before
    assert _out(ledger, d, (1, "8", [(a, "6"), (b, "2")])).status_code == 201


def test_more_than_a_lot_holds_is_a_conflict_and_changes_nothing(ledger):
    t = onboard(ledger)
    a, b = _admit(ledger, t, "6"), _admit(ledger, t, "6")
    d = _export(ledger, t, (1, "8", None), (2, "2", None))
    before = ledger.log_state()
    r = _out(ledger, d, (1, "8", [(a, "7"), (b, "1")]))
    assert r.status_code == 409 and r.json()["rule"] == "insufficient_stock", r.text
    # Two lines naming the same lot cannot take more of it than it holds together.
    r = _out(ledger, d, (1, "5", [(a, "5")]), (2, "2", [(a, "2")]))
    assert r.status_code == 409 and r.json()["rule"] == "insufficient_stock", r.text
    assert ledger.log_state() == before
    r = _out(ledger, d, (1, "5", [(a, "5")]), (2, "1", [(a, "1")]))
    assert r.status_code == 201, r.text
    assert _on_hand(ledger, a) == "0" and _on_hand(ledger, b) == "6"
    assert _laptops(ledger, t) == ("6", "4", "2")


def test_a_domestic_line_names_domestic_lots(ledger):
    t = onboard(ledger)
    bonded = _admit(ledger, t, "4")
    domestic = _admit(
        ledger,
        t,
        "3",
        flow="second_line_in",
        country="CN",
        lines=[line(1, quantity="3", origin_country="CN")],
    )
    d = _export(ledger, t, (1, "2", "domestic"))
    before = ledger.log_state()
    r = _out(ledger, d, (1, "2", [(bonded, "2")]))
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == "$.lines[0].lots[0].lot_id"
    assert ledger.log_state() == before
    r = _out(ledger, d, (1, "2", [(domestic, "2")]))
    assert r.status_code == 201, r.text
    assert (_on_hand(ledger, bonded), _on_hand(ledger, domestic)) == ("4", "1")


def test_a_dispatch_names_lots_and_lot_creating_kinds_refuse_them(ledger):
    t = onboard(ledger)
    xepz_book = f"{t.book_no}-EPZ"
    r = ledger.post("/v1/account-books", "admin", book_body(xepz_book, t.uscc, zone="XEPZ"))
    assert r.status_code == 201, r.text
    a, b = _admit(ledger, t, "5"), _admit(ledger, t, "5")
    body = declaration_body(
        t.uscc,
        t.book_no,
        flow="transfer",
        trade_mode="5034",
        country="CN",
        destination_zone="XEPZ",
        destination_account_book=xepz_book,
        lines=[line(1, quantity="4", origin_country=None)],
    )
    d = ledger.post("/v1/declarations", t.token_name, body, key=new_key()).json()
    assert d["status"] == "released", d
    out = _out(ledger, d["id"], (1, "4", [(b, "4")]), kind="transfer_dispatch")
    assert out.status_code == 201, out.text
    assert [(x["lot_id"], x["quantity"]) for x in out.json()["lots"]] == [(b, "4")]
    assert (_on_hand(ledger, a), _on_hand(ledger, b)) == ("5", "1")
    item = next(
        i
        for i in ledger.get(f"/v1/account-books/{t.book_no}", t.token_name).json()["items"]
        if i["item_no"] == 1
    )
    assert (item["on_hand"], item["pending_out"], item["in_transit_out"]) == ("6", "0", "4")

    imported = ledger.post(
        "/v1/declarations", t.token_name, declaration_body(t.uscc, t.book_no), key=new_key()
    ).json()
    before = ledger.log_state()
    r = _out(ledger, d["id"], (1, "4", [(b, "4")]), kind="transfer_receipt", who="gate-xepz")
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == "$.lines[0].lots", r.text
    r = _out(ledger, imported["id"], (1, "1", [(a, "1")]), kind="gate_in")
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == "$.lines[0].lots", r.text
    assert ledger.log_state() == before
    received = _out(ledger, d["id"], (1, "4", None), kind="transfer_receipt", who="gate-xepz")
    assert received.status_code == 201, received.text
    child = ledger.get(f"/v1/lots/{received.json()['lots'][0]['lot_id']}", "officer").json()
    assert child["parents"] == [b]
