"""Destruction witnessed by customs (issue #18 item 2, part), over HTTP on both stores: the
officer records it, the goods leave the book without duty lot by lot, what declarations hold
cannot be destroyed, and the book, the statement, the trace and EPCIS say so."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.test_collected import refused
from tests.e2e.test_epcis import assert_valid_epcis
from tests.support import admit, laptop_exit, new_key, onboard, running_ledger


@pytest.fixture
def ledger(database_url):
    with running_ledger(database_url) as ledger:
        yield ledger


def destruction(book: str, *lines: dict[str, Any], **over: Any) -> dict[str, Any]:
    body = {
        "kind": "destruction",
        "account_book": book,
        "lines": list(lines) or [{"item_no": 1, "quantity": "3"}],
        "reason": "water damage in storage",
        "certificate": "XA-DESTR-2026-0042",
    }
    return {**body, **over}


def test_an_officer_witnesses_a_destruction_and_the_goods_leave_the_book(ledger):
    t = onboard(ledger)
    admit(ledger, t, 1, "10")
    ledger.issue("gate-d", "operator", zone="XCBZ")
    # Seven laptops reserved by a released export: only three are free to destroy.
    export = laptop_exit(t)
    export["lines"][0]["quantity"] = "7"
    export.update(flow="first_line_out", country="KZ", trade_mode="0110")
    r = ledger.post("/v1/declarations", t.token_name, export, key=new_key())
    assert r.status_code == 201 and r.json()["status"] == "released", r.text

    before = ledger.log_state()
    for who in (t.token_name, "gate-d", "auditor"):
        r = ledger.post("/v1/movements", who, destruction(t.book_no), key=new_key())
        refused(ledger, before, r, 403)
    for wrong, loc in (
        (destruction("NOBOOK"), "$.account_book"),
        (destruction(t.book_no, {"item_no": 9, "quantity": "1"}), "$.lines[0].item_no"),
        (destruction(t.book_no, {"item_no": 1, "quantity": "0.5"}), "$.lines[0].quantity"),
        (destruction(t.book_no, reason=""), "$.reason"),
        (destruction(t.book_no, lines=[]), "$.lines"),
    ):
        r = ledger.post("/v1/movements", "officer", wrong, key=new_key())
        refused(ledger, before, r, 422, loc=loc)
    r = ledger.post(
        "/v1/movements",
        "officer",
        destruction(t.book_no, {"item_no": 1, "quantity": "4"}),
        key=new_key(),
    )
    refused(ledger, before, r, 409, "insufficient_stock")

    r = ledger.post("/v1/movements", "officer", destruction(t.book_no), key=new_key())
    assert r.status_code == 201, r.text
    moved = r.json()
    assert moved["kind"] == "destruction" and moved["declaration"] is None
    assert moved["reason"] == "water damage in storage (certificate XA-DESTR-2026-0042)"
    assert [(x["item_no"], x["quantity"]) for x in moved["lots"]] == [(1, "-3")]
    book = ledger.get(f"/v1/account-books/{t.book_no}", t.token_name).json()
    item = next(i for i in book["items"] if i["item_no"] == 1)
    assert (item["on_hand"], item["pending_out"], item["available"]) == ("7", "7", "0")
    entries = ledger.get(f"/v1/account-books/{t.book_no}/entries?item_no=1", t.token_name).json()[
        "items"
    ]
    assert [(e["entry_kind"], e["quantity"]) for e in entries] == [
        ("receipt", "10"),
        ("destruction", "-3"),
    ]
    statement = ledger.get(f"/v1/account-books/{t.book_no}/statement", t.token_name).json()
    line = next(x for x in statement["items"] if x["item_no"] == 1)
    assert (line["receipts"], line["issues"], line["closing"]) == ("10", "3", "7")

    # The trace shows the lot destroyed, and EPCIS says the goods ceased to exist.
    lot = moved["lots"][0]["lot_id"]
    trace = ledger.get(f"/v1/trace?ref={lot}", "officer").json()
    assert [e["type"] for e in trace["events"]] == ["admitted", "destroyed"]
    document = ledger.get(f"/v1/trace/epcis?ref={lot}", "officer").json()
    assert_valid_epcis(document)
    last = document["epcisBody"]["eventList"][-1]
    assert (last["action"], last["bizStep"], last["disposition"]) == (
        "DELETE",
        "destroying",
        "destroyed",
    )
    listed = ledger.get("/v1/movements?kind=destruction", t.token_name).json()["items"]
    assert [m["movement_id"] for m in listed] == [moved["movement_id"]]


def test_a_destruction_checklist_pre_decreases_and_its_approval_destroys(ledger):
    """The enterprise applies on a destruction checklist (pre-decreased when filed); the
    officer's approval is the witness's confirmation: the goods are destroyed in its write."""
    t = onboard(ledger)
    admit(ledger, t, 1, "10")
    body = {
        "direction": "E",
        "account_book": t.book_no,
        "kind": "destruction",
        "lines": [{"item_no": 1, "quantity": "4"}],
    }
    r = ledger.post("/v1/checklists", t.token_name, body, key=new_key())
    assert r.status_code == 201, r.text
    qd = r.json()["checklist_no"]

    def item() -> tuple[str, str, str]:
        book = ledger.get(f"/v1/account-books/{t.book_no}", t.token_name).json()
        found = next(i for i in book["items"] if i["item_no"] == 1)
        return found["on_hand"], found["pending_out"], found["available"]

    assert item() == ("10", "4", "6")
    before = ledger.log_state()
    gate_pass = {
        "zone": "XCBZ",
        "direction": "out",
        "vehicle": {"plate": "陕A54321"},
        "gross_weight_kg": "100",
        "checklists": [{"checklist_no": qd}],
    }
    r = ledger.post("/v1/gate-passes", t.token_name, gate_pass, key=new_key())
    refused(ledger, before, r, 409, "stays_in_zone")

    r = ledger.post(f"/v1/checklists/{qd}/approval", "officer", {}, key=new_key())
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "closed" and r.json()["lines"][0]["passed"] == "4"
    assert item() == ("6", "0", "6")
    (moved,) = ledger.get("/v1/movements?kind=destruction", t.token_name).json()["items"]
    assert moved["checklist_no"] == qd and moved["declaration"] is None
    assert sum(int(x["quantity"]) for x in moved["lots"]) == -4
    trace = ledger.get(f"/v1/trace?ref={qd}", "officer").json()
    assert [e["type"] for e in trace["events"]].count("destroyed") == len(moved["lots"])
    entries = ledger.get(f"/v1/account-books/{t.book_no}/entries?item_no=1", "officer").json()
    assert [e["entry_kind"] for e in entries["items"]] == ["receipt", "destruction"]

    # A rejected application gives its goods back; nothing is destroyed.
    r = ledger.post("/v1/checklists", t.token_name, body, key=new_key())
    assert r.status_code == 201, r.text
    other = r.json()["checklist_no"]
    assert item() == ("6", "4", "2")
    r = ledger.post(f"/v1/checklists/{other}/rejection", "officer", {"reason": "repairable"})
    assert r.status_code == 200 and r.json()["status"] == "rejected", r.text
    assert item() == ("6", "0", "6")
