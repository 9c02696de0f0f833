"""A train's goods through the zone documents, over HTTP on both stores (issue #17's story).

Day 1: a China-Europe train's containers (600 laptops) enter the Xi'an Comprehensive Bonded
Zone first, on two gate passes of one `enter_first` checklist (two trucks, 350 and 250). Day 3:
the first-line declaration naming the checklist is released: the goods are declared. Day 4:
200 go on to the export processing zone (a transfer: its checklist on an `out` gate pass, the
receipt at the destination gate); day 5: 150 are exported (a first-line exit on an `out` gate
pass). Then the rest goes to domestic buyers, collected: an officer permits the book to
collect then declare, a `collected` checklist of 200 pre-decreases it on day 6, two trucks take
80 and 70 in December, and on 5 January the consolidated declaration of the 150 that left is
filed on time, assessed at December's rates; its release closes the checklist and gives the 50
that never left back. Every figure is checked on both books and in the trace (from the QD
numbers, the pass numbers and the train).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests import samples
from tests.samples import declaration_body, line
from tests.support import (
    Clock,
    Ledger,
    Tenant,
    china,
    clocked_ledger,
    laptop_exit,
    new_key,
    onboard,
)

DAY1 = china("2026-12-07T08:30")


@pytest.fixture
def world(database_url):
    clock = Clock(DAY1)
    with clocked_ledger(database_url, clock, samples.rules_without_draws()) as ledger:
        yield ledger, clock


def laptops(ledger: Ledger, t: Tenant, book: str) -> tuple[str, str, str, str]:
    r = ledger.get(f"/v1/account-books/{book}", t.token_name)
    x = next(i for i in r.json()["items"] if i["item_no"] == 1)
    return x["on_hand"], x["pending_out"], x["in_transit_out"], x["available"]


def ok(r: Any, status: int = 200) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    return body


def released(ledger: Ledger, t: Tenant, body: dict[str, Any]) -> dict[str, Any]:
    d = ok(ledger.post("/v1/declarations", t.token_name, body, key=new_key()), 201)
    if d["status"] == "document_review":  # an item's first value review
        d = ok(ledger.post(f"/v1/declarations/{d['id']}/release", "officer", {}))
    assert d["status"] == "released", d
    return d


def gate_pass(ledger: Ledger, t: Tenant, zone: str, direction: str, checklists: Any) -> str:
    body = {
        "zone": zone,
        "direction": direction,
        "vehicle": {"plate": f"陕A{new_key()[:5].upper()}", "driver": "Li Ming"},
        "gross_weight_kg": "9000",
        "tare_weight_kg": "7000",
        "checklists": checklists,
    }
    return str(
        ok(ledger.post("/v1/gate-passes", t.token_name, body, key=new_key()), 201)["pass_no"]
    )


def passage(ledger: Ledger, gate: str, pass_no: str) -> dict[str, Any]:
    body = {"measured_gross_weight_kg": "9040"}
    return ok(ledger.post(f"/v1/gate-passes/{pass_no}/passage", gate, body))


def test_a_train_enters_first_is_declared_and_goes_on(world):
    ledger, clock = world
    t = onboard(ledger)  # its book in XCBZ
    epz_book = f"{t.book_no}-EPZ"
    r = ledger.post("/v1/account-books", "admin", samples.book_body(epz_book, t.uscc, "XEPZ"))
    ok(r, 201)
    ledger.issue("gate-xcbz", "operator", zone="XCBZ")
    ledger.issue("gate-xepz", "operator", zone="XEPZ")

    # Day 1: the train's goods enter first on two trucks.
    ef = {
        "direction": "I",
        "account_book": t.book_no,
        "kind": "enter_first",
        "lines": [{"item_no": 1, "quantity": "600"}],
    }
    qd = ok(ledger.post("/v1/checklists", t.token_name, ef, key=new_key()), 201)["checklist_no"]
    ok(ledger.post(f"/v1/checklists/{qd}/approval", "officer", {}))
    truck1 = gate_pass(
        ledger,
        t,
        "XCBZ",
        "in",
        [{"checklist_no": qd, "lines": [{"line_no": 1, "quantity": "350"}]}],
    )
    # Both trucks are booked at once, each with its share (a pass without `lines` carries all
    # that has not passed yet when it is filed: 600 here, too much once truck 1 has passed).
    truck2 = gate_pass(
        ledger,
        t,
        "XCBZ",
        "in",
        [{"checklist_no": qd, "lines": [{"line_no": 1, "quantity": "250"}]}],
    )
    lot1 = passage(ledger, "gate-xcbz", truck1)["movements"][0]["lots"][0]
    clock.at = DAY1 + timedelta(hours=2)
    lot2 = passage(ledger, "gate-xcbz", truck2)["movements"][0]["lots"][0]
    assert (lot1["quantity"], lot2["quantity"]) == ("350", "250")
    assert laptops(ledger, t, t.book_no) == ("600", "600", "0", "0")
    checklist = ok(ledger.get(f"/v1/checklists/{qd}", t.token_name))
    assert checklist["status"] == "closed" and not checklist["overdue"]

    # Day 3: declared, on time.
    clock.at = DAY1 + timedelta(days=2)
    arrival = released(
        ledger,
        t,
        declaration_body(
            t.uscc,
            t.book_no,
            lines=[line(1, quantity="600")],
            checklist=qd,
            transport={"mode": "rail", "reference": "X8024-20261207", "container": "TGHU1234567"},
        ),
    )
    assert arrival["checklist_no"] == qd
    assert laptops(ledger, t, t.book_no) == ("600", "0", "0", "600")
    assert ledger.get("/v1/checklists?overdue=true", "officer").json()["items"] == []

    # Day 4: 200 go on to the export processing zone.
    clock.at = DAY1 + timedelta(days=3)
    transfer = released(
        ledger,
        t,
        declaration_body(
            t.uscc,
            t.book_no,
            flow="transfer",
            trade_mode="5034",
            country="CN",
            destination_zone="XEPZ",
            destination_account_book=epz_book,
            lines=[line(1, quantity="200", origin_country=None)],
        ),
    )
    assert laptops(ledger, t, t.book_no) == ("600", "200", "0", "400")
    out1 = gate_pass(ledger, t, "XCBZ", "out", [{"checklist_no": transfer["checklist_no"]}])
    moved = passage(ledger, "gate-xcbz", out1)["movements"]
    assert [(m["kind"], m["checklist_no"]) for m in moved] == [
        ("transfer_dispatch", transfer["checklist_no"])
    ]
    # First in, first out: the first truck's lot.
    assert [(x["lot_id"], x["quantity"]) for x in moved[0]["lots"]] == [(lot1["lot_id"], "200")]
    assert laptops(ledger, t, t.book_no) == ("400", "0", "200", "400")
    receipt = {
        "kind": "transfer_receipt",
        "declaration": transfer["id"],
        "lines": [{"line_no": 1, "quantity": "200"}],
    }
    received = ok(ledger.post("/v1/movements", "gate-xepz", receipt, key=new_key()), 201)
    assert laptops(ledger, t, epz_book) == ("200", "0", "0", "200")
    assert laptops(ledger, t, t.book_no) == ("400", "0", "0", "400")

    # Day 5: 150 are exported on one truck.
    clock.at = DAY1 + timedelta(days=4)
    export = released(
        ledger,
        t,
        declaration_body(
            t.uscc,
            t.book_no,
            flow="first_line_out",
            trade_mode="0110",
            country="KZ",
            lines=[{**line(1, quantity="150"), "origin_country": None}],
        ),
    )
    out2 = gate_pass(ledger, t, "XCBZ", "out", [{"checklist_no": export["checklist_no"]}])
    exited = passage(ledger, "gate-xcbz", out2)["movements"][0]
    assert exited["kind"] == "gate_out"
    # 150 left: 150 of the first truck's lot remains first in line.
    assert [(x["lot_id"], x["quantity"]) for x in exited["lots"]] == [(lot1["lot_id"], "150")]
    assert laptops(ledger, t, t.book_no) == ("250", "0", "0", "250")
    for number in (transfer["checklist_no"], export["checklist_no"]):
        assert ok(ledger.get(f"/v1/checklists/{number}", t.token_name))["status"] == "closed"

    # The trace: from the QD number, both trucks' lots and where they went.
    trace = ok(ledger.get(f"/v1/trace?ref={qd}&direction=downstream", "officer"))
    lots = {x["lot_id"]: x for x in trace["lots"]}
    assert lots[lot1["lot_id"]]["on_hand"] == "0" and lots[lot2["lot_id"]]["on_hand"] == "250"
    child = received["lots"][0]["lot_id"]
    assert lots[child]["zone"] == "XEPZ" and lots[child]["on_hand"] == "200"
    edges = {(e["from"], e["to"], e["kind"]) for e in trace["edges"]}
    assert (lot1["lot_id"], child, "transfer") in edges
    kinds = [e["type"] for e in trace["events"] if e["lot_id"] == lot1["lot_id"]]
    assert kinds == ["admitted", "dispatched", "exited"]
    # From each pass number: the lots its passage moved.
    for number, expected in ((truck1, {lot1["lot_id"]}), (out2, {lot1["lot_id"]})):
        found = ok(ledger.get(f"/v1/trace?ref={number}&direction=both", "officer"))
        assert expected <= {x["lot_id"] for x in found["lots"]}
    # The chain's papers name the checklist and the pass.
    papers = {
        (d["kind"], d["number"])
        for e in trace["events"]
        if e["lot_id"] == lot1["lot_id"]
        for d in e["documents"]
    }
    assert {("checklist", qd), ("gate_pass", truck1), ("gate_pass", out2)} <= papers

    # Day 6: the rest goes to domestic buyers, collected. The checklist pre-decreases the book.
    clock.at = DAY1 + timedelta(days=5)
    permit = f"/v1/account-books/{t.book_no}/collection-permission"
    assert ok(ledger.post(permit, "officer", {"permitted": True}))["permitted"] is True
    body = {
        "direction": "E",
        "account_book": t.book_no,
        "kind": "collected",
        "lines": [{"item_no": 1, "quantity": "200"}],
    }
    collected = ok(ledger.post("/v1/checklists", t.token_name, body, key=new_key()), 201)
    qd_e = collected["checklist_no"]
    assert qd_e[8] == "E" and collected["status"] == "filed"
    assert laptops(ledger, t, t.book_no) == ("250", "200", "0", "50")
    ok(ledger.post(f"/v1/checklists/{qd_e}/approval", "officer", {}))
    trucks = []
    for day, quantity in ((8, "80"), (21, "70")):  # 15 and 28 December
        clock.at = DAY1 + timedelta(days=day)
        lines = [{"line_no": 1, "quantity": quantity}]
        truck = gate_pass(ledger, t, "XCBZ", "out", [{"checklist_no": qd_e, "lines": lines}])
        left = passage(ledger, "gate-xcbz", truck)["movements"][0]
        assert (left["kind"], left["declaration"], left["checklist_no"]) == ("gate_out", None, qd_e)
        assert [(x["lot_id"], x["quantity"]) for x in left["lots"]] == [(lot2["lot_id"], quantity)]
        trucks.append(truck)
    assert laptops(ledger, t, t.book_no) == ("100", "50", "0", "50")
    collected = ok(ledger.get(f"/v1/checklists/{qd_e}", t.token_name))
    assert (collected["period"], collected["declaration_due_by"]) == (
        "2026-12",
        "2027-01-10T16:00:00Z",
    )

    # 5 January: the consolidated declaration, on time, at December's rates.
    clock.at = china("2027-01-05T10:00")
    body = laptop_exit(t)
    body["lines"][0]["quantity"] = "150"
    body["collected_checklists"] = [qd_e]
    consolidated = ok(ledger.post("/v1/declarations", t.token_name, body, key=new_key()), 201)
    # 150 x 420 EUR x 8.2601 (December) = 520,386.30 CNY; VAT 13% = 67,650.22; MFN 0%.
    assert consolidated["duties"]["vat"] == "67650.22", consolidated["duties"]
    assert consolidated["status"] == "awaiting_payment"
    assert ledger.get("/v1/checklists?overdue=true", "officer").json()["items"] == []
    paid = {"amount": consolidated["duties"]["outstanding"], "currency": "CNY", "reference": "B1"}
    r = ledger.post(f"/v1/declarations/{consolidated['id']}/payments", t.token_name, paid)
    assert ok(r)["status"] == "released"
    collected = ok(ledger.get(f"/v1/checklists/{qd_e}", t.token_name))
    assert (collected["status"], collected["declaration_no"]) == (
        "closed",
        consolidated["declaration_no"],
    )
    assert laptops(ledger, t, t.book_no) == ("100", "0", "0", "100")
    assert laptops(ledger, t, epz_book) == ("200", "0", "0", "200")

    # The trace from the collected checklist: the second truck's lot of the train, left twice.
    found = ok(ledger.get(f"/v1/trace?ref={qd_e}&direction=both", "officer"))
    assert lot2["lot_id"] in {x["lot_id"] for x in found["lots"]}
    lot = next(x for x in found["lots"] if x["lot_id"] == lot2["lot_id"])
    assert lot["on_hand"] == "100"
    exits = [e for e in found["events"] if e["lot_id"] == lot2["lot_id"] and e["type"] == "exited"]
    assert [e["quantity"] for e in exits] == ["-80", "-70"]  # what left the lot
    papers = {(d["kind"], d["number"]) for e in exits for d in e["documents"]}
    assert {("checklist", qd_e), ("gate_pass", trucks[0]), ("gate_pass", trucks[1])} <= papers
