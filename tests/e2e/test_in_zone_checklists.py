"""Checklists whose goods stay in the zone, over HTTP on both stores: `in_zone_transfer`
(区内流转, bonded goods to another book of the zone, no declaration, no gate) and `processing`
(the bonded materials a processing movement consumes).

Both are outbound: filing pre-decreases the sender's book at once, a rejection or withdrawal
gives it back, and no gate pass carries them. An in-zone transfer's receipt is recorded by the
receiving enterprise: one write draws the sender's lots, creates the receiver's as their
children and counts the lines; a processing movement naming its checklist consumes what the
checklist holds. Every refusal changes nothing in the log.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.test_collected import refused
from tests.e2e.test_epcis import assert_valid_epcis
from tests.support import Ledger, Tenant, admit, new_key, onboard, running_ledger


@pytest.fixture
def ledger(database_url):
    with running_ledger(database_url) as ledger:
        yield ledger


def item(ledger: Ledger, t: Tenant, item_no: int) -> tuple[str, str, str]:
    r = ledger.get(f"/v1/account-books/{t.book_no}", t.token_name)
    assert r.status_code == 200, r.text
    found = next(i for i in r.json()["items"] if i["item_no"] == item_no)
    return found["on_hand"], found["pending_out"], found["available"]


def transfer_body(t: Tenant, to: Tenant | str, *lines: dict[str, Any], **over: Any) -> dict:
    body = {
        "direction": "E",
        "account_book": t.book_no,
        "kind": "in_zone_transfer",
        "destination_account_book": to if isinstance(to, str) else to.book_no,
        "lines": list(lines) or [{"item_no": 1, "quantity": "60"}],
    }
    return {**body, **over}


def file(ledger: Ledger, t: Tenant, body: dict[str, Any]) -> dict[str, Any]:
    r = ledger.post("/v1/checklists", t.token_name, body, key=new_key())
    assert r.status_code == 201, r.text
    return dict(r.json())


def approve(ledger: Ledger, qd: str) -> None:
    r = ledger.post(f"/v1/checklists/{qd}/approval", "officer", {}, key=new_key())
    assert r.status_code == 200 and r.json()["status"] == "approved", r.text


def receive(ledger: Ledger, t: Tenant, qd: str, lines: list[dict] | None = None) -> Any:
    body: dict[str, Any] = {"kind": "in_zone_transfer", "checklist": qd}
    if lines is not None:
        body["lines"] = lines
    return ledger.post("/v1/movements", t.token_name, body, key=new_key())


def test_bonded_goods_pass_to_another_book_of_the_zone(ledger):
    sender, receiver, stranger = onboard(ledger), onboard(ledger), onboard(ledger)
    elsewhere = onboard(ledger, zone="XEPZ")
    admit(ledger, sender, 1, "100")
    admit(ledger, sender, 2, "50")
    lot_of_sender = ledger.get(
        f"/v1/account-books/{sender.book_no}/entries?item_no=1", "officer"
    ).json()["items"][0]["lot_id"]

    # Bad filings: 422 at the field, nothing written; more than available: 409.
    before = ledger.log_state()
    for body, loc in (
        (
            transfer_body(sender, receiver, destination_account_book=None),
            "$.destination_account_book",
        ),
        (transfer_body(sender, sender), "$.destination_account_book"),
        (transfer_body(sender, elsewhere), "$.destination_account_book"),
        (transfer_body(sender, "BNOSUCHBOOK"), "$.destination_account_book"),
        (
            transfer_body(
                sender, receiver, {"item_no": 1, "quantity": "1", "destination_item_no": 9}
            ),
            "$.lines[0].destination_item_no",
        ),
        (
            transfer_body(
                sender, receiver, {"item_no": 1, "quantity": "1", "destination_item_no": 2}
            ),
            "$.lines[0].destination_item_no",
        ),
        (transfer_body(sender, receiver, declaration="D1"), "$.declaration"),
        (transfer_body(sender, receiver, direction="I"), "$.direction"),
        (
            transfer_body(
                sender, receiver, {"item_no": 1, "quantity": "1", "goods_status": "domestic"}
            ),
            "$.lines[0].goods_status",
        ),
    ):
        r = ledger.post("/v1/checklists", sender.token_name, body, key=new_key())
        refused(ledger, before, r, 422, loc=loc)
    collected = {
        **transfer_body(
            sender, receiver, {"item_no": 1, "quantity": "1", "destination_item_no": 1}
        ),
        "kind": "collected",
        "destination_account_book": None,
    }
    r = ledger.post("/v1/checklists", sender.token_name, collected, key=new_key())
    refused(ledger, before, r, 422, loc="$.lines[0].destination_item_no")
    r = ledger.post(
        "/v1/checklists",
        sender.token_name,
        transfer_body(sender, receiver, {"item_no": 1, "quantity": "101"}),
        key=new_key(),
    )
    refused(ledger, before, r, 409, "insufficient_stock")

    # Filed: the sender's book is pre-decreased at once.
    filed = file(
        ledger,
        sender,
        transfer_body(
            sender,
            receiver,
            {"item_no": 1, "quantity": "60"},
            {"item_no": 2, "quantity": "20", "destination_item_no": 2},
        ),
    )
    qd = filed["checklist_no"]
    assert filed["status"] == "filed" and filed["kind"] == "in_zone_transfer"
    assert filed["destination_account_book"] == receiver.book_no
    assert filed["destination_enterprise"] == receiver.uscc
    assert [(x["item_no"], x["destination_item_no"]) for x in filed["lines"]] == [(1, None), (2, 2)]
    assert item(ledger, sender, 1) == ("100", "60", "40")
    assert item(ledger, sender, 2) == ("50", "20", "30")

    # The receiving enterprise sees it (by number and listed); a stranger does not.
    assert ledger.get(f"/v1/checklists/{qd}", receiver.token_name).status_code == 200
    listed = ledger.get("/v1/checklists?kind=in_zone_transfer", receiver.token_name).json()
    assert [x["checklist_no"] for x in listed["items"]] == [qd]
    assert ledger.get(f"/v1/checklists/{qd}", stranger.token_name).status_code == 404
    assert ledger.get("/v1/checklists", stranger.token_name).json()["items"] == []

    before = ledger.log_state()
    # Only the sender withdraws; no gate pass carries it; nothing is received before approval.
    r = ledger.post(
        f"/v1/checklists/{qd}/withdrawal", receiver.token_name, {"reason": "x"}, key=new_key()
    )
    refused(ledger, before, r, 403)
    gate_pass = {
        "zone": "XCBZ",
        "direction": "out",
        "vehicle": {"plate": "陕A12345"},
        "gross_weight_kg": "500",
        "checklists": [{"checklist_no": qd}],
    }
    r = ledger.post("/v1/gate-passes", sender.token_name, gate_pass, key=new_key())
    refused(ledger, before, r, 409, "stays_in_zone")
    refused(ledger, before, receive(ledger, receiver, qd), 409, "checklist_not_approved")
    approve(ledger, qd)

    # Only the receiving enterprise records the receipt.
    before = ledger.log_state()
    refused(ledger, before, receive(ledger, sender, qd), 422, loc="$.checklist")
    refused(ledger, before, receive(ledger, stranger, qd), 422, loc="$.checklist")
    r = ledger.post(
        "/v1/movements", "officer", {"kind": "in_zone_transfer", "checklist": qd}, key=new_key()
    )
    refused(ledger, before, r, 403)
    for lines, loc in (
        ([], "$.lines"),
        ([{"line_no": 3, "quantity": "1"}], "$.lines[0].line_no"),
        ([{"line_no": 1, "quantity": "0"}], "$.lines[0].quantity"),
        ([{"line_no": 1, "quantity": "1.5"}], "$.lines[0].quantity"),
    ):
        refused(ledger, before, receive(ledger, receiver, qd, lines), 422, loc=loc)
    r = receive(ledger, receiver, qd, [{"line_no": 1, "quantity": "61"}])
    refused(ledger, before, r, 409, "exceeds_checklist_quantity")

    # Part of line 1: the sender's lot drawn, a child lot in the receiving book.
    r = receive(ledger, receiver, qd, [{"line_no": 1, "quantity": "25"}])
    assert r.status_code == 201, r.text
    moved = r.json()
    assert moved["kind"] == "in_zone_transfer" and moved["account_book"] == receiver.book_no
    assert moved["checklist_no"] == qd and moved["declaration"] is None
    drawn = [x for x in moved["lots"] if x["quantity"].startswith("-")]
    made = [x for x in moved["lots"] if not x["quantity"].startswith("-")]
    assert [(x["lot_id"], x["quantity"]) for x in drawn] == [(lot_of_sender, "-25")]
    assert [(x["item_no"], x["quantity"]) for x in made] == [(1, "25")]
    child = ledger.get(f"/v1/lots/{made[0]['lot_id']}", "officer").json()
    assert child["parents"] == [lot_of_sender] and child["goods_status"] == "bonded"
    assert child["account_book"] == receiver.book_no
    assert item(ledger, sender, 1) == ("75", "35", "40")
    assert item(ledger, receiver, 1) == ("25", "0", "25")
    c = ledger.get(f"/v1/checklists/{qd}", "officer").json()
    assert [x["passed"] for x in c["lines"]] == ["25", "0"] and c["status"] == "approved"

    # The rest (no lines: all that is left); the checklist closes.
    r = receive(ledger, receiver, qd)
    assert r.status_code == 201, r.text
    assert sorted((x["item_no"], x["quantity"]) for x in r.json()["lots"]) == [
        (1, "-35"),
        (1, "35"),
        (2, "-20"),
        (2, "20"),
    ]
    assert item(ledger, sender, 1) == ("40", "0", "40")
    assert item(ledger, sender, 2) == ("30", "0", "30")
    assert item(ledger, receiver, 1) == ("60", "0", "60")
    assert item(ledger, receiver, 2) == ("20", "0", "20")
    c = ledger.get(f"/v1/checklists/{qd}", receiver.token_name).json()
    assert c["status"] == "closed" and [x["passed"] for x in c["lines"]] == ["60", "20"]
    before = ledger.log_state()
    refused(ledger, before, receive(ledger, receiver, qd), 409, "exceeds_checklist_quantity")

    # The books: transfer_out in the sender's, transfer_in in the receiver's.
    def kinds(t: Tenant) -> list[tuple[str, str]]:
        r = ledger.get(f"/v1/account-books/{t.book_no}/entries?item_no=1", t.token_name)
        return [(e["entry_kind"], e["quantity"]) for e in r.json()["items"]]

    assert kinds(sender) == [("receipt", "100"), ("transfer_out", "-25"), ("transfer_out", "-35")]
    assert kinds(receiver) == [("transfer_in", "25"), ("transfer_in", "35")]

    # The movements are the receiving book's; the trace from the checklist finds the goods.
    r = ledger.get("/v1/movements?kind=in_zone_transfer", receiver.token_name)
    assert [m["checklist_no"] for m in r.json()["items"]] == [qd, qd]
    trace = ledger.get(f"/v1/trace?ref={qd}", "officer").json()
    books = {lot["account_book"] for lot in trace["lots"]}
    assert {sender.book_no, receiver.book_no} <= books
    types = {e["type"] for e in trace["events"]}
    assert {"transferred_out", "transferred_in"} <= types

    # EPCIS: valid against GS1's schema; the sender's side departs, the receiver's is received,
    # both in the zone and under the checklist.
    r = ledger.get(f"/v1/trace/epcis?ref={qd}", "officer")
    assert r.status_code == 200, r.text
    document = r.json()
    assert_valid_epcis(document)
    events = document["epcisBody"]["eventList"]
    steps = [(e["action"], e["bizStep"], e.get("disposition")) for e in events]
    assert ("OBSERVE", "departing", "in_progress") in steps
    assert ("ADD", "receiving", "in_progress") in steps
    for e in events:
        if e["bizStep"] in ("departing", "receiving"):
            assert e["bizLocation"]["id"].endswith("/zone/XCBZ"), e
            papers = [t["bizTransaction"] for t in e["bizTransactionList"]]
            assert any(p.endswith(qd) for p in papers), e


def test_a_withdrawn_or_rejected_transfer_gives_its_stock_back(ledger):
    sender, receiver = onboard(ledger), onboard(ledger)
    admit(ledger, sender, 1, "10")
    qd = file(ledger, sender, transfer_body(sender, receiver, {"item_no": 1, "quantity": "4"}))[
        "checklist_no"
    ]
    assert item(ledger, sender, 1) == ("10", "4", "6")
    r = ledger.post(
        f"/v1/checklists/{qd}/withdrawal", sender.token_name, {"reason": "sold"}, key=new_key()
    )
    assert r.status_code == 200 and r.json()["status"] == "withdrawn", r.text
    assert item(ledger, sender, 1) == ("10", "0", "10")
    qd = file(ledger, sender, transfer_body(sender, receiver, {"item_no": 1, "quantity": "7"}))[
        "checklist_no"
    ]
    r = ledger.post(f"/v1/checklists/{qd}/rejection", "officer", {"reason": "no"}, key=new_key())
    assert r.status_code == 200 and r.json()["status"] == "rejected", r.text
    assert item(ledger, sender, 1) == ("10", "0", "10")


def processing(t: Tenant, quantity: str, item_no: int = 1, **over: Any) -> dict[str, Any]:
    body = {
        "kind": "processing",
        "zone": "XEPZ",
        "account_book": t.book_no,
        "inputs": [{"item_no": item_no, "quantity": quantity}],
        "outputs": [{"item_no": 3, "quantity": "1"}],
    }
    return {**body, **over}


def test_processing_consumes_what_its_checklist_pre_decreased(ledger):
    t, other = onboard(ledger, zone="XEPZ"), onboard(ledger, zone="XEPZ")
    admit(ledger, t, 1, "10", zone="XEPZ")
    admit(ledger, t, 2, "10", zone="XEPZ")
    body = {
        "direction": "E",
        "account_book": t.book_no,
        "kind": "processing",
        "lines": [{"item_no": 1, "quantity": "6"}],
    }
    before = ledger.log_state()
    r = ledger.post(
        "/v1/checklists",
        t.token_name,
        {**body, "destination_account_book": other.book_no},
        key=new_key(),
    )
    refused(ledger, before, r, 422, loc="$.destination_account_book")
    qd = file(ledger, t, body)["checklist_no"]
    assert item(ledger, t, 1) == ("10", "6", "4")

    before = ledger.log_state()
    post = ledger.post
    r = post("/v1/movements", t.token_name, processing(t, "4", checklist=qd), key=new_key())
    refused(ledger, before, r, 409, "checklist_not_approved")
    approve(ledger, qd)
    before = ledger.log_state()
    for wrong, status, rule, loc in (
        (processing(t, "1", 2, checklist=qd), 422, None, "$.inputs[0].item_no"),
        (processing(t, "7", checklist=qd), 409, "exceeds_checklist_quantity", None),
        (processing(t, "5"), 409, "insufficient_stock", None),  # 4 free; 6 held
        (processing(t, "1", checklist="QD6101260E000000999"), 422, None, "$.checklist"),
    ):
        r = post("/v1/movements", t.token_name, wrong, key=new_key())
        refused(ledger, before, r, status, rule, loc)
    r = post("/v1/movements", other.token_name, processing(other, "1", checklist=qd), key=new_key())
    refused(ledger, before, r, 422, loc="$.checklist")

    # Under the checklist: what it held is consumed, and counted on its line.
    r = post("/v1/movements", t.token_name, processing(t, "4", checklist=qd), key=new_key())
    assert r.status_code == 201, r.text
    assert r.json()["checklist_no"] == qd
    assert item(ledger, t, 1) == ("6", "2", "4")
    c = ledger.get(f"/v1/checklists/{qd}", t.token_name).json()
    assert c["lines"][0]["passed"] == "4" and c["status"] == "approved"
    # A bonded input beyond what is left on the checklist is refused; the free stock is not
    # its to take.
    before = ledger.log_state()
    r = post("/v1/movements", t.token_name, processing(t, "3", checklist=qd), key=new_key())
    refused(ledger, before, r, 409, "exceeds_checklist_quantity")
    # Domestic inputs need no place on it... (none here: the book holds only bonded goods).
    r = post("/v1/movements", t.token_name, processing(t, "2", checklist=qd), key=new_key())
    assert r.status_code == 201, r.text
    assert item(ledger, t, 1) == ("4", "0", "4")
    c = ledger.get(f"/v1/checklists/{qd}", t.token_name).json()
    assert c["status"] == "closed"
    kinds = [
        e["entry_kind"]
        for e in ledger.get(
            f"/v1/account-books/{t.book_no}/entries?item_no=1", t.token_name
        ).json()["items"]
    ]
    assert kinds == ["receipt", "consumption", "consumption"]
    trace = ledger.get(f"/v1/trace?ref={qd}", "officer").json()
    assert {"consumed", "produced"} <= {e["type"] for e in trace["events"]}
    # Processing without a checklist works as before, on the free stock.
    r = post("/v1/movements", t.token_name, processing(t, "4"), key=new_key())
    assert r.status_code == 201, r.text
    assert item(ledger, t, 1) == ("0", "0", "0")
