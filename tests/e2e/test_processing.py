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
