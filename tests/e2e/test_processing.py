"""Processing: only where the zone permits it; outputs descend from the consumed lots."""

from __future__ import annotations

import pytest

from tests.support import admit, new_key, onboard, running_ledger


@pytest.fixture
def ledger(database_url):
    with running_ledger(database_url) as ledger:
        yield ledger


def _process(ledger, t, zone, operation="processing", quantity="4", out="2"):
    body = {
        "kind": "processing",
        "zone": zone,
        "account_book": t.book_no,
        "inputs": [{"item_no": 1, "quantity": quantity}],
        "outputs": [{"item_no": 3, "quantity": out}],
        "operation": operation,
    }
    return ledger.post("/v1/movements", t.token_name, body, key=new_key())


def test_an_export_processing_zone_turns_inputs_into_bonded_outputs(ledger):
    t = onboard(ledger, zone="XEPZ")
    admit(ledger, t, 1, "6", zone="XEPZ")
    r = _process(ledger, t, "XEPZ")
    assert r.status_code == 201, r.text
    lots = r.json()["lots"]
    consumed = [x for x in lots if x["quantity"].startswith("-")]
    produced = [x for x in lots if not x["quantity"].startswith("-")]
    assert [x["quantity"] for x in consumed] == ["-4"] and [x["quantity"] for x in produced] == [
        "2"
    ]
    child = ledger.get(f"/v1/lots/{produced[0]['lot_id']}", "officer").json()
    assert child["parents"] == [consumed[0]["lot_id"]] and child["goods_status"] == "bonded"
    parent = ledger.get(f"/v1/lots/{consumed[0]['lot_id']}", "officer").json()
    assert parent["children"] == [child["lot_id"]] and parent["on_hand"] == "2"
    book = {
        i["item_no"]: i
        for i in ledger.get(f"/v1/account-books/{t.book_no}", "officer").json()["items"]
    }
    assert book[1]["on_hand"] == "2" and book[3]["on_hand"] == "2"


def test_the_logistics_centre_may_repack_but_not_manufacture(ledger):
    t = onboard(ledger, zone="XXLC")
    admit(ledger, t, 1, "6", zone="XXLC")
    before = ledger.log_state()
    r = _process(ledger, t, "XXLC")
    assert r.status_code == 409 and r.json()["rule"] == "zone_not_permitted"
    assert ledger.log_state() == before
    assert _process(ledger, t, "XXLC", operation="simple_processing").status_code == 201


def test_processing_cannot_consume_what_is_not_there(ledger):
    t = onboard(ledger, zone="XEPZ")
    admit(ledger, t, 1, "3", zone="XEPZ")
    r = _process(ledger, t, "XEPZ", quantity="4")
    assert r.status_code == 409 and r.json()["rule"] == "insufficient_stock"
    r = _process(ledger, t, "XCBZ")
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == "$.zone"


def test_an_input_may_name_its_lot(ledger):
    t = onboard(ledger, zone="XEPZ")
    admit(ledger, t, 1, "5", zone="XEPZ")
    admit(ledger, t, 1, "5", zone="XEPZ")
    lots = ledger.get(f"/v1/account-books/{t.book_no}/entries", "officer").json()["items"]
    first, second = (e["lot_id"] for e in lots)
    body = {
        "kind": "processing",
        "zone": "XEPZ",
        "account_book": t.book_no,
        "inputs": [{"item_no": 1, "quantity": "3", "lot_id": second}],
        "outputs": [{"item_no": 3, "quantity": "1"}],
    }
    r = ledger.post("/v1/movements", t.token_name, body, key=new_key())
    assert r.status_code == 201, r.text
    assert ledger.get(f"/v1/lots/{second}", "officer").json()["on_hand"] == "2"
    assert ledger.get(f"/v1/lots/{first}", "officer").json()["on_hand"] == "5"
    before = ledger.log_state()
    too_much = {**body, "inputs": [{"item_no": 1, "quantity": "3", "lot_id": second}]}
    r = ledger.post("/v1/movements", t.token_name, too_much, key=new_key())
    assert r.status_code == 409 and r.json()["rule"] == "insufficient_stock"
    for lot, extra in ((first, {"goods_status": "domestic"}), (t.book_no, {})):
        wrong = {**body, "inputs": [{"item_no": 1, "quantity": "1", "lot_id": lot, **extra}]}
        r = ledger.post("/v1/movements", t.token_name, wrong, key=new_key())
        assert r.status_code == 422 and r.json()["errors"][0]["loc"] == "$.inputs[0].lot_id"
    assert ledger.log_state() == before


def test_the_answer_says_where_the_movement_stands_in_the_log(ledger):
    t = onboard(ledger, zone="XEPZ")
    admit(ledger, t, 1, "6", zone="XEPZ")
    key = new_key()
    body = {
        "kind": "processing",
        "zone": "XEPZ",
        "account_book": t.book_no,
        "inputs": [{"item_no": 1, "quantity": "2"}],
        "outputs": [{"item_no": 3, "quantity": "1"}],
    }
    first = ledger.post("/v1/movements", t.token_name, body, key=key)
    again = ledger.post("/v1/movements", t.token_name, body, key=key)
    assert first.status_code == again.status_code == 201
    position = first.json()["position"]
    assert isinstance(position, int) and position <= int(first.headers["X-Ledger-Position"])
    assert again.json() == first.json()
    got = ledger.get(f"/v1/movements/{first.json()['movement_id']}", t.token_name).json()
    assert got["position"] == position
    events = ledger.get("/v1/events", "auditor", params={"after": position - 1, "limit": 1})
    assert events.json()["items"][0]["type"] == "MovementRecorded"


def test_processing_may_leave_by_products_and_scrap_as_lots_of_their_own(ledger):
    """Each output is a lot of its own, bonded like the product when an input was; by-products
    and scrap have book entries of their own (among the statement's receipts), say what they are
    among their papers, and a BOM checks the product only."""
    t = onboard(ledger, zone="XEPZ")
    admit(ledger, t, 1, "6", zone="XEPZ")
    body = {
        "kind": "processing",
        "zone": "XEPZ",
        "account_book": t.book_no,
        "inputs": [{"item_no": 1, "quantity": "4"}],
        "outputs": [
            {"item_no": 3, "quantity": "2"},
            {"item_no": 2, "quantity": "1.5", "role": "by_product"},
            {"item_no": 4, "quantity": "1", "role": "scrap"},
        ],
    }
    r = ledger.post(
        "/v1/movements",
        t.token_name,
        {**body, "outputs": [{"item_no": 3, "quantity": "2", "role": "waste"}]},
        key=new_key(),
    )
    assert r.status_code == 422, r.text
    r = ledger.post("/v1/movements", t.token_name, body, key=new_key())
    assert r.status_code == 201, r.text
    made = [x for x in r.json()["lots"] if not x["quantity"].startswith("-")]
    assert [(x["item_no"], x["quantity"]) for x in made] == [(3, "2"), (2, "1.5"), (4, "1")]
    roles = {}
    for x in made:
        lot = ledger.get(f"/v1/lots/{x['lot_id']}", "officer").json()
        assert lot["goods_status"] == "bonded"
        roles[x["item_no"]] = [d["number"] for d in lot["documents"] if d["kind"] == "output"]
    assert roles == {3: [], 2: ["by_product"], 4: ["scrap"]}
    entries = ledger.get(f"/v1/account-books/{t.book_no}/entries", t.token_name).json()["items"]
    kinds = {(e["item_no"], e["entry_kind"], e["quantity"]) for e in entries}
    assert {(3, "production", "2"), (2, "by_product", "1.5"), (4, "scrap", "1")} <= kinds
    statement = ledger.get(f"/v1/account-books/{t.book_no}/statement", t.token_name).json()
    receipts = {x["item_no"]: x["receipts"] for x in statement["items"]}
    assert (receipts[2], receipts[4]) == ("1.5", "1")
