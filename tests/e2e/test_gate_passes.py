"""Checklists (核注清单) filed by declarations and gate passes (核放单), over HTTP on both stores.

A train's goods under two released first-line imports come in on two vehicles: the first pass
carries part of one checklist and all of the other, the second the rest. Each passage is one
write of gate_in movements that name the pass and the checklist; the checklists count what
passed and close; the book holds what passed. Refusals (weight, a second passage, more than
a checklist lists, another zone's gate, another enterprise's checklist) change nothing in the
log. Then goods leave on an outbound pass, and a trace from a QD number or a pass number finds
the goods, with both documents in its EPCIS bizTransactionList.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tests.samples import declaration_body, line
from tests.support import Ledger, Tenant, admit, new_key, onboard, running_ledger


@pytest.fixture
def ledger(database_url):
    with running_ledger(database_url) as ledger:
        yield ledger


def released(ledger: Ledger, tenant: Tenant, **overrides: Any) -> dict[str, Any]:
    body = declaration_body(tenant.uscc, tenant.book_no, **overrides)
    r = ledger.post("/v1/declarations", tenant.token_name, body, key=new_key())
    assert r.status_code == 201, r.text
    d = r.json()
    if d["status"] == "document_review":  # an item's first value review (value_checks.py)
        r = ledger.post(f"/v1/declarations/{d['id']}/release", "officer", {})
        assert r.status_code == 200, r.text
        d = r.json()
    assert d["status"] == "released", d
    return d


def gate_pass(ledger: Ledger, tenant: Tenant, body: dict[str, Any], key: str | None = None):
    return ledger.post("/v1/gate-passes", tenant.token_name, body, key=key or new_key())


def stock(ledger: Ledger, tenant: Tenant, item_no: int) -> dict[str, Any]:
    r = ledger.get(f"/v1/account-books/{tenant.book_no}", tenant.token_name)
    assert r.status_code == 200, r.text
    return next(i for i in r.json()["items"] if i["item_no"] == item_no)


def passage(ledger: Ledger, gate: str, pass_no: str, weight: str):
    return ledger.post(
        f"/v1/gate-passes/{pass_no}/passage", gate, {"measured_gross_weight_kg": weight}
    )


def test_two_vehicles_bring_two_checklists_in_and_the_books_follow(ledger):
    tenant = onboard(ledger)
    other = onboard(ledger)
    gate = "gate-xcbz"
    ledger.issue(gate, "operator", zone="XCBZ")
    ledger.issue("gate-xian", "operator", zone="XHTZ")
    lines = [line(1, quantity="1000"), {**line(2, quantity="500"), "line_no": 2}]
    first = released(ledger, tenant, lines=lines)
    second = released(ledger, tenant, lines=[line(1, quantity="50")])
    qd1, qd2 = first["checklist_no"], second["checklist_no"]
    assert qd1[:2] == "QD" and qd1[8] == "I" and int(qd2[9:]) == int(qd1[9:]) + 1

    r = ledger.get(f"/v1/checklists/{qd1}", tenant.token_name)
    assert r.status_code == 200, r.text
    c = r.json()
    assert (c["kind"], c["direction"], c["status"]) == ("first_line", "I", "approved")
    assert c["declaration_no"] == first["declaration_no"]
    assert [(x["line_no"], x["quantity"], x["passed"]) for x in c["lines"]] == [
        (1, "1000", "0"),
        (2, "500", "0"),
    ]
    # Another enterprise neither sees the checklist nor files a pass with it.
    assert ledger.get(f"/v1/checklists/{qd1}", other.token_name).status_code == 404
    body = {
        "zone": "XCBZ",
        "direction": "in",
        "vehicle": {"plate": "陕A12345", "driver": "Wang Wei"},
        "gross_weight_kg": "12000",
        "tare_weight_kg": "8000",
        "checklists": [
            {"checklist_no": qd1, "lines": [{"line_no": 1, "quantity": "600"}]},
            {"checklist_no": qd2},
        ],
    }
    before = ledger.log_state()
    r = gate_pass(ledger, other, body)
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["loc"] == "$.checklists[0].checklist_no"
    for wrong, rule in (
        ({**body, "direction": "out"}, "wrong_direction"),
        ({**body, "zone": "XHTZ"}, "zone_mismatch"),
        (
            {
                **body,
                "checklists": [{"checklist_no": qd2, "lines": [{"line_no": 1, "quantity": "51"}]}],
            },
            "exceeds_checklist_quantity",
        ),
    ):
        r = gate_pass(ledger, tenant, wrong)
        assert r.status_code == 409 and r.json()["rule"] == rule, r.text
    assert ledger.log_state() == before

    key = new_key()
    r = gate_pass(ledger, tenant, body, key=key)
    assert r.status_code == 201, r.text
    p1 = r.json()
    assert p1["pass_no"].startswith("HF") and p1["status"] == "filed"
    assert p1["position"] is not None
    assert [c["checklist_no"] for c in p1["checklists"]] == [qd1, qd2]
    assert p1["checklists"][1]["lines"] == [{"line_no": 1, "item_no": 1, "quantity": "50"}]
    # A retry answers the same pass.
    again = gate_pass(ledger, tenant, body, key=key)
    assert again.status_code == 201 and again.json()["pass_no"] == p1["pass_no"]

    before = ledger.log_state()
    # The gate weighs 12,700 kg: more than 5% over the declared 12,000.
    r = passage(ledger, gate, p1["pass_no"], "12700")
    assert r.status_code == 409 and r.json()["rule"] == "weight_mismatch", r.text
    assert passage(ledger, "gate-xian", p1["pass_no"], "12000").status_code == 404
    r = ledger.post(
        f"/v1/gate-passes/{p1['pass_no']}/passage",
        tenant.token_name,
        {"measured_gross_weight_kg": "12000"},
    )
    assert r.status_code == 403, r.text
    assert ledger.log_state() == before
    assert stock(ledger, tenant, 1)["on_hand"] == "0"

    r = passage(ledger, gate, p1["pass_no"], "11950.5")
    assert r.status_code == 200, r.text
    passed = r.json()
    assert passed["status"] == "passed"
    assert passed["passage"]["measured_gross_weight_kg"] == "11950.5"
    moves = passed["movements"]
    assert [(m["kind"], m["checklist_no"], m["gate_pass"]) for m in moves] == [
        ("gate_in", qd1, p1["pass_no"]),
        ("gate_in", qd2, p1["pass_no"]),
    ]
    assert moves[0]["vehicle"] == "陕A12345"
    assert [lot["quantity"] for m in moves for lot in m["lots"]] == ["600", "50"]
    # One write (its events share their record time), the movements' records first, the
    # pass's last; nothing else was written since the refusals.
    events = ledger.get(f"/v1/events?after={before[0]}&limit=1000", "auditor").json()["items"]
    assert len({e["recorded_at"] for e in events}) == 1, events
    assert [e["type"] for e in events[:2]] == ["MovementRecorded", "MovementRecorded"]
    assert events[-1]["type"] == "GatePassPassed"
    assert stock(ledger, tenant, 1)["on_hand"] == "650"
    r = passage(ledger, gate, p1["pass_no"], "11950.5")
    assert r.status_code == 409 and r.json()["rule"] == "already_passed", r.text

    c = ledger.get(f"/v1/checklists/{qd1}", tenant.token_name).json()
    assert [(x["line_no"], x["passed"]) for x in c["lines"]] == [(1, "600"), (2, "0")]
    assert c["status"] == "approved"
    assert ledger.get(f"/v1/checklists/{qd2}", tenant.token_name).json()["status"] == "closed"

    # The rest on a second vehicle; a third pass for the same rest fails at its passage.
    rest = {**body, "gross_weight_kg": "9000", "checklists": [{"checklist_no": qd1}]}
    r = gate_pass(ledger, tenant, {**rest, "checklists": [{"checklist_no": qd2}]})
    assert r.status_code == 409 and r.json()["rule"] == "exceeds_checklist_quantity", r.text
    p2 = gate_pass(ledger, tenant, rest).json()
    assert [(x["line_no"], x["quantity"]) for x in p2["checklists"][0]["lines"]] == [
        (1, "400"),
        (2, "500"),
    ]
    p3 = gate_pass(ledger, tenant, rest).json()
    assert passage(ledger, gate, p2["pass_no"], "9000").status_code == 200
    r = passage(ledger, gate, p3["pass_no"], "9000")
    assert r.status_code == 409 and r.json()["rule"] == "exceeds_checklist_quantity", r.text
    assert ledger.get(f"/v1/checklists/{qd1}", tenant.token_name).json()["status"] == "closed"
    assert stock(ledger, tenant, 1)["on_hand"] == "1050"
    assert stock(ledger, tenant, 2)["on_hand"] == "500"

    # The lists: the tenant's checklists, closed; its passes, p3 still filed.
    r = ledger.get(f"/v1/checklists?account_book={tenant.book_no}", tenant.token_name)
    assert r.status_code == 200, r.text
    assert [(c["checklist_no"], c["status"]) for c in r.json()["items"]] == [
        (qd1, "closed"),
        (qd2, "closed"),
    ]
    assert (
        ledger.get(f"/v1/checklists?account_book={tenant.book_no}", other.token_name).json()[
            "items"
        ]
        == []
    )
    r = ledger.get("/v1/gate-passes?zone=XCBZ&status=filed", "officer")
    assert p3["pass_no"] in [p["pass_no"] for p in r.json()["items"]]
    assert p2["pass_no"] not in [p["pass_no"] for p in r.json()["items"]]
    assert ledger.get(f"/v1/gate-passes/{p1['pass_no']}", other.token_name).status_code == 404
    assert ledger.get(f"/v1/gate-passes/{p1['pass_no']}", gate).json()["status"] == "passed"

    # A trace from the QD number or the pass number finds the goods.
    for ref, lots in ((qd1, 3), (p1["pass_no"], 2), (qd2, 1)):
        r = ledger.get(f"/v1/trace?ref={ref}", "officer")
        assert r.status_code == 200, r.text
        assert len(r.json()["lots"]) == lots, (ref, r.json())
    epcis = ledger.get(f"/v1/trace/epcis?ref={p1['pass_no']}", "officer").json()
    types = {
        t["type"] for e in epcis["epcisBody"]["eventList"] for t in e.get("bizTransactionList", [])
    }
    assert "https://customs-ledger.dev/epcis/btt/gate_pass" in types
    assert "https://customs-ledger.dev/epcis/btt/customs_checklist" in types


def test_goods_leave_on_an_outbound_pass(ledger):
    tenant = onboard(ledger)
    admit(ledger, tenant, 2, "300")
    gate = "gate-out"
    ledger.issue(gate, "operator", zone="XCBZ")
    exported = released(
        ledger,
        tenant,
        flow="first_line_out",
        trade_mode="5034",
        country="KZ",
        lines=[{**line(2, quantity="120"), "origin_country": "BR"}],
    )
    qd = exported["checklist_no"]
    assert qd[8] == "E"
    assert Decimal(stock(ledger, tenant, 2)["available"]) == 180
    body = {
        "zone": "XCBZ",
        "direction": "out",
        "vehicle": {"plate": "陕A99999"},
        "gross_weight_kg": "5200",
        "checklists": [{"checklist_no": qd}],
    }
    p = gate_pass(ledger, tenant, body)
    assert p.status_code == 201, p.text
    r = passage(ledger, gate, p.json()["pass_no"], "5100")
    assert r.status_code == 200, r.text
    assert [m["kind"] for m in r.json()["movements"]] == ["gate_out"]
    item = stock(ledger, tenant, 2)
    assert (item["on_hand"], item["pending_out"], item["available"]) == ("180", "0", "180")
    assert ledger.get(f"/v1/checklists/{qd}", tenant.token_name).json()["status"] == "closed"
