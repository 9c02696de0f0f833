"""Transfers between zones: dispatched goods are in transit until received or explained."""

from __future__ import annotations

import pytest

from tests.samples import book_body, line
from tests.support import admit, declaration_body, new_key, onboard, running_ledger


@pytest.fixture
def ledger(database_url):
    with running_ledger(database_url) as ledger:
        ledger.issue("gate-xcbz", "operator", zone="XCBZ")
        ledger.issue("gate-xepz", "operator", zone="XEPZ")
        yield ledger


def _item(ledger, who, book, item_no=1):
    view = ledger.get(f"/v1/account-books/{book}", who).json()
    i = next(x for x in view["items"] if x["item_no"] == item_no)
    return i["on_hand"], i["pending_out"], i["in_transit_out"], i["available"]


def _move(ledger, who, kind, ref, quantity, key=None):
    body = {"kind": kind, "declaration": ref, "lines": [{"line_no": 1, "quantity": quantity}]}
    return ledger.post("/v1/movements", who, body, key=key or new_key())


@pytest.fixture
def transfer(ledger):
    """10 bonded laptops in XCBZ, a transfer of 8 to the same enterprise's XEPZ book, released."""
    t = onboard(ledger)
    xepz_book = f"{t.book_no}-EPZ"
    r = ledger.post("/v1/account-books", "admin", book_body(xepz_book, t.uscc, zone="XEPZ"))
    assert r.status_code == 201, r.text
    admit(ledger, t, 1, "10")
    body = declaration_body(
        t.uscc,
        t.book_no,
        flow="transfer",
        trade_mode="5034",
        country="CN",
        destination_zone="XEPZ",
        destination_account_book=xepz_book,
        lines=[line(1, quantity="8", origin_country=None)],
    )
    d = ledger.post("/v1/declarations", t.token_name, body, key=new_key())
    assert d.status_code == 201 and d.json()["status"] == "released", d.text
    return t, xepz_book, d.json()


def test_dispatched_goods_are_in_transit_until_received_as_child_lots(ledger, transfer):
    t, xepz_book, d = transfer
    assert _item(ledger, t.token_name, t.book_no) == ("10", "8", "0", "2")
    out = _move(ledger, "gate-xcbz", "transfer_dispatch", d["id"], "8")
    assert out.status_code == 201, out.text
    assert _item(ledger, t.token_name, t.book_no) == ("2", "0", "8", "2")
    got = _move(ledger, "gate-xepz", "transfer_receipt", d["id"], "5")
    assert got.status_code == 201, got.text
    # A shortfall of 3 stays in transit on the source book.
    assert _item(ledger, t.token_name, t.book_no) == ("2", "0", "3", "2")
    assert _item(ledger, t.token_name, xepz_book) == ("5", "0", "0", "5")
    child = ledger.get(f"/v1/lots/{got.json()['lots'][0]['lot_id']}", "officer").json()
    parent = out.json()["lots"][0]["lot_id"]
    # The chain of custody survives the transfer: the child lot names its parent and keeps
    # its customs status.
    assert child["zone"] == "XEPZ" and child["parents"] == [parent]
    assert ledger.get(f"/v1/lots/{parent}", "officer").json()["children"] == [child["lot_id"]]
    assert child["goods_status"] == "bonded"
    # Never more received than dispatched.
    r = _move(ledger, "gate-xepz", "transfer_receipt", d["id"], "4")
    assert r.status_code == 409 and r.json()["rule"] == "exceeds_dispatched_quantity"


def test_each_side_has_its_own_gate(ledger, transfer):
    _, _, d = transfer
    r = _move(ledger, "gate-xepz", "transfer_dispatch", d["id"], "1")
    assert r.status_code == 409 and r.json()["rule"] == "zone_mismatch"
    assert _move(ledger, "gate-xcbz", "transfer_dispatch", d["id"], "1").status_code == 201
    r = _move(ledger, "gate-xcbz", "transfer_receipt", d["id"], "1")
    assert r.status_code == 409 and r.json()["rule"] == "zone_mismatch"
    r = _move(ledger, "gate-xcbz", "transfer_dispatch", d["id"], "8")
    assert r.status_code == 409 and r.json()["rule"] == "exceeds_declared_quantity"


def test_a_dispatch_needs_a_released_transfer(ledger, transfer):
    t, _, _ = transfer
    imported = ledger.post(
        "/v1/declarations", t.token_name, declaration_body(t.uscc, t.book_no), key=new_key()
    ).json()
    r = _move(ledger, "gate-xcbz", "transfer_dispatch", imported["id"], "1")
    assert r.status_code == 409 and r.json()["rule"] == "wrong_flow"


def test_a_stocktake_explains_a_shortfall_as_lost_in_transit(ledger, transfer):
    t, xepz_book, d = transfer
    assert _move(ledger, "gate-xcbz", "transfer_dispatch", d["id"], "8").status_code == 201
    assert _move(ledger, "gate-xepz", "transfer_receipt", d["id"], "6").status_code == 201
    body = {
        "kind": "adjustment",
        "account_book": t.book_no,
        "item_no": 1,
        "quantity_delta": "-3",
        "reason": "damaged on the road",
        "explains": d["id"],
    }
    r = ledger.post("/v1/movements", t.token_name, body, key=new_key())
    assert r.status_code == 409 and r.json()["rule"] == "exceeds_dispatched_quantity"
    r = ledger.post("/v1/movements", t.token_name, body | {"quantity_delta": "-2"}, key=new_key())
    assert r.status_code == 201, r.text
    assert _item(ledger, t.token_name, t.book_no) == ("2", "0", "0", "2")
    # Conservation: 10 admitted = 2 left + 6 received + 2 lost in transit.
    assert _item(ledger, t.token_name, xepz_book) == ("6", "0", "0", "6")


def test_a_received_lot_names_only_the_dispatched_lots_its_goods_came_from(ledger):
    """Two lots dispatched (3 then 5); a receipt of 2 came from the first only, the next
    receipt of 4 from the rest of the first and from the second."""
    t = onboard(ledger)
    xepz_book = f"{t.book_no}-EPZ"
    r = ledger.post("/v1/account-books", "admin", book_body(xepz_book, t.uscc, zone="XEPZ"))
    assert r.status_code == 201, r.text
    admit(ledger, t, 1, "3")
    admit(ledger, t, 1, "5")
    body = declaration_body(
        t.uscc,
        t.book_no,
        flow="transfer",
        trade_mode="5034",
        country="CN",
        destination_zone="XEPZ",
        destination_account_book=xepz_book,
        lines=[line(1, quantity="8", origin_country=None)],
    )
    d = ledger.post("/v1/declarations", t.token_name, body, key=new_key()).json()
    out = _move(ledger, "gate-xcbz", "transfer_dispatch", d["id"], "8").json()
    first, second = (x["lot_id"] for x in out["lots"])

    def parents(receipt):
        lot = receipt.json()["lots"][0]["lot_id"]
        return ledger.get(f"/v1/lots/{lot}", "officer").json()["parents"]

    assert parents(_move(ledger, "gate-xepz", "transfer_receipt", d["id"], "2")) == [first]
    assert parents(_move(ledger, "gate-xepz", "transfer_receipt", d["id"], "4")) == [
        first,
        second,
    ]
    assert ledger.get(f"/v1/lots/{second}", "officer").json()["children"] != []


def test_a_lost_in_transit_quantity_obeys_the_unit(ledger, transfer):
    t, _, d = transfer
    assert _move(ledger, "gate-xcbz", "transfer_dispatch", d["id"], "8").status_code == 201
    before = ledger.log_state()
    body = {
        "kind": "adjustment",
        "account_book": t.book_no,
        "item_no": 1,
        "quantity_delta": "-1.5",  # laptops are counted in pieces (C62)
        "reason": "lost in transit",
        "explains": d["id"],
    }
    r = ledger.post("/v1/movements", t.token_name, body, key=new_key())
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == "$.quantity_delta"
    assert ledger.log_state() == before
    assert _item(ledger, t.token_name, t.book_no)[2] == "8"


def test_another_zones_gate_cannot_see_the_transfer(ledger, transfer):
    _, _, d = transfer
    ledger.issue("gate-xhtz", "operator", zone="XHTZ")
    r = _move(ledger, "gate-xhtz", "transfer_dispatch", d["id"], "1")
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == "$.declaration"


def test_another_enterprises_transfer_cannot_be_probed_through_explains(ledger, transfer):
    _, _, d = transfer
    other = onboard(ledger, zone="XCBZ")
    body = {
        "kind": "adjustment",
        "account_book": other.book_no,
        "item_no": 1,
        "quantity_delta": "-1",
        "reason": "probing",
    }
    before = ledger.log_state()
    theirs = ledger.post(
        "/v1/movements", other.token_name, body | {"explains": d["id"]}, key=new_key()
    )
    unknown = ledger.post(
        "/v1/movements", other.token_name, body | {"explains": d["id"][:-4] + "0000"}, key=new_key()
    )
    # The same answer as for a declaration that does not exist: never reveal that it does.
    assert theirs.status_code == unknown.status_code == 422
    assert theirs.json()["errors"] == unknown.json()["errors"]
    assert theirs.json()["errors"][0]["loc"] == "$.explains"
    assert ledger.log_state() == before
