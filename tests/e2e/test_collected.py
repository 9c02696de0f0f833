"""Collect then declare (分送集报), over HTTP on both stores, on the test's clock.

An officer permits a book to collect; the enterprise files a `collected` checklist, which
pre-decreases its book at once; the goods leave for domestic buyers on two gate passes in
December under no declaration; a January passage is refused (the period ended); after the
deadline officers see the checklist overdue; the consolidated declaration names it, declares
exactly what left, is assessed at December's rates (January has none in the built-in
tables), and its release closes the checklist and gives back what never left. Rejection and
withdrawal give stock back; a book without the permission is 409. Every refusal changes
nothing in the log.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from domain.duty_tables import DEFAULT_TABLES
from ledger.reassess import reassess
from tests import samples
from tests.support import (
    Clock,
    Ledger,
    Tenant,
    admit,
    china,
    clocked_ledger,
    laptop_exit,
    new_key,
    onboard,
)

START = china("2026-12-01T09:00")
GATE = "gate-xcbz"


@pytest.fixture
def world(database_url):
    clock = Clock(START)
    with clocked_ledger(database_url, clock, samples.rules_without_draws()) as ledger:
        ledger.issue(GATE, "operator", zone="XCBZ")
        yield ledger, clock


def book_item(ledger: Ledger, t: Tenant, item_no: int = 1) -> tuple[str, str, str]:
    r = ledger.get(f"/v1/account-books/{t.book_no}", t.token_name)
    found = next(i for i in r.json()["items"] if i["item_no"] == item_no)
    return found["on_hand"], found["pending_out"], found["available"]


def refused(ledger: Ledger, before: Any, r: Any, status: int, rule: str | None = None, loc=None):
    assert r.status_code == status, r.text
    if rule is not None:
        assert r.json()["rule"] == rule, r.text
    if loc is not None:
        assert loc in [e["loc"] for e in r.json()["errors"]], r.text
    assert ledger.log_state() == before


def collected_body(t: Tenant, quantity: str, **over: Any) -> dict[str, Any]:
    body = {
        "direction": "E",
        "account_book": t.book_no,
        "kind": "collected",
        "lines": [{"item_no": 1, "quantity": quantity}],
    }
    return {**body, **over}


def file(ledger: Ledger, t: Tenant, quantity: str) -> str:
    r = ledger.post("/v1/checklists", t.token_name, collected_body(t, quantity), key=new_key())
    assert r.status_code == 201, r.text
    return str(r.json()["checklist_no"])


def out_pass(ledger: Ledger, t: Tenant, qd: str, quantity: str) -> str:
    body = {
        "zone": "XCBZ",
        "direction": "out",
        "vehicle": {"plate": "陕A12345"},
        "gross_weight_kg": "800",
        "checklists": [{"checklist_no": qd, "lines": [{"line_no": 1, "quantity": quantity}]}],
    }
    r = ledger.post("/v1/gate-passes", t.token_name, body, key=new_key())
    assert r.status_code == 201, r.text
    return str(r.json()["pass_no"])


def consolidated(t: Tenant, numbers: list[str], quantity: str, **over: Any) -> dict[str, Any]:
    body = laptop_exit(t)
    body["lines"][0]["quantity"] = quantity
    return {**body, "collected_checklists": numbers, **over}


def permit(ledger: Ledger, t: Tenant) -> None:
    r = ledger.post(
        f"/v1/account-books/{t.book_no}/collection-permission", "officer", {"permitted": True}
    )
    assert r.status_code == 200 and r.json()["permitted"] is True, r.text


def test_goods_leave_collected_in_a_month_and_are_declared_together(world):
    ledger, clock = world
    t, other = onboard(ledger), onboard(ledger)
    admit(ledger, t, 1, "100")
    assert book_item(ledger, t) == ("100", "0", "100")
    path = f"/v1/account-books/{t.book_no}/collection-permission"

    # No permission yet: the filing is 409 and writes nothing; only an officer grants it.
    before = ledger.log_state()
    r = ledger.post("/v1/checklists", t.token_name, collected_body(t, "60"), key=new_key())
    refused(ledger, before, r, 409, "collection_not_permitted")
    assert ledger.get(path, t.token_name).json()["permitted"] is False
    r = ledger.post(path, t.token_name, {"permitted": True})
    refused(ledger, before, r, 403)
    assert ledger.get(path, other.token_name).status_code == 404
    r = ledger.post(path, "officer", {"permitted": False, "reason": "never granted"})
    refused(ledger, before, r, 409, "invalid_transition")
    permit(ledger, t)
    assert ledger.get(path, t.token_name).json()["permitted"] is True

    # Bad filings: 422 at the field; more than available: 409; nothing written.
    before = ledger.log_state()
    for wrong, loc in (
        (collected_body(t, "60", direction="I"), "$.direction"),
        (collected_body(t, "60", declaration="D1"), "$.declaration"),
        (
            collected_body(
                t, "60", lines=[{"item_no": 1, "quantity": "1", "goods_status": "domestic"}]
            ),
            "$.lines[0].goods_status",
        ),
    ):
        r = ledger.post("/v1/checklists", t.token_name, wrong, key=new_key())
        refused(ledger, before, r, 422, loc=loc)
    r = ledger.post("/v1/checklists", t.token_name, collected_body(t, "101"), key=new_key())
    refused(ledger, before, r, 409, "insufficient_stock")

    # Filing pre-decreases the book at once.
    qd = file(ledger, t, "60")
    assert book_item(ledger, t) == ("100", "60", "40")
    before = ledger.log_state()
    r = ledger.post("/v1/checklists", t.token_name, collected_body(t, "41"), key=new_key())
    refused(ledger, before, r, 409, "insufficient_stock")
    # A withdrawal and a rejection give their stock back.
    for action, who in (("withdrawal", t.token_name), ("rejection", "officer")):
        spare = file(ledger, t, "10")
        assert book_item(ledger, t) == ("100", "70", "30")
        r = ledger.post(f"/v1/checklists/{spare}/{action}", who, {"reason": "not needed"})
        assert r.status_code == 200, r.text
        assert book_item(ledger, t) == ("100", "60", "40")

    r = ledger.post(f"/v1/checklists/{qd}/approval", "officer", {})
    assert r.status_code == 200, r.text
    clock.at = china("2026-12-05T10:00")
    first = out_pass(ledger, t, qd, "25")
    r = ledger.post(f"/v1/gate-passes/{first}/passage", GATE, {"measured_gross_weight_kg": "805"})
    assert r.status_code == 200, r.text
    (moved,) = r.json()["movements"]
    assert moved["kind"] == "gate_out" and moved["declaration"] is None
    assert (moved["checklist_no"], moved["gate_pass"]) == (qd, first)
    assert sum(Decimal(lot["quantity"]) for lot in moved["lots"]) == 25
    assert book_item(ledger, t) == ("75", "35", "40")
    c = ledger.get(f"/v1/checklists/{qd}", t.token_name).json()
    assert c["period"] == "2026-12" and c["status"] == "approved"
    assert c["declaration_due_by"] == "2027-01-10T16:00:00Z"  # 11 January 00:00 in China

    clock.at = china("2026-12-28T16:00")
    second = out_pass(ledger, t, qd, "20")
    r = ledger.post(f"/v1/gate-passes/{second}/passage", GATE, {"measured_gross_weight_kg": "800"})
    assert r.status_code == 200, r.text
    assert book_item(ledger, t) == ("55", "15", "40")

    # January: the period ended; the rest cannot leave on this checklist.
    clock.at = china("2027-01-03T09:00")
    late = out_pass(ledger, t, qd, "15")
    before = ledger.log_state()
    r = ledger.post(f"/v1/gate-passes/{late}/passage", GATE, {"measured_gross_weight_kg": "800"})
    refused(ledger, before, r, 409, "collection_period_ended")

    # Past the deadline, officers see it overdue, with its period.
    clock.at = china("2027-01-11T09:00")
    listed = ledger.get(
        "/v1/checklists", "officer", params={"kind": "collected", "overdue": "true"}
    ).json()
    assert [(x["checklist_no"], x["period"], x["overdue"]) for x in listed["items"]] == [
        (qd, "2026-12", True)
    ]

    # The consolidated declaration: exactly what left, of this book, a second_line_out.
    before = ledger.log_state()
    for wrong, status, loc in (
        (consolidated(t, [qd], "60"), 422, "$.lines"),
        (consolidated(t, [qd, qd], "45"), 422, "$.collected_checklists"),
        (consolidated(t, ["QD900726E000000999"], "45"), 422, "$.collected_checklists[0]"),
        (
            consolidated(t, [qd], "45", flow="first_line_out", country="DE"),
            422,
            "$.collected_checklists",
        ),
    ):
        r = ledger.post("/v1/declarations", t.token_name, wrong, key=new_key())
        refused(ledger, before, r, status, loc=loc)
    r = ledger.post(
        "/v1/declarations", other.token_name, consolidated(other, [qd], "45"), key=new_key()
    )
    refused(ledger, before, r, 422, loc="$.collected_checklists[0]")
    r = ledger.post("/v1/declarations", t.token_name, consolidated(t, [qd], "45"), key=new_key())
    assert r.status_code == 201, r.text
    d = r.json()
    assert d["collected_checklists"] == [qd] and d["checklist_no"] is None
    # At December's rates: 45 x 420 EUR x 8.2601 = 156,115.89 CNY; VAT 13% = 20,295.07
    # (HS 8471.30: MFN 0%). The built-in tables have no January rates at all.
    assert Decimal(d["duties"]["vat"]) == Decimal("20295.07"), d["duties"]
    assert Decimal(d["duties"]["tariff"]) == 0
    assert d["status"] == "awaiting_payment", d
    paid = {"amount": d["duties"]["outstanding"], "currency": "CNY", "reference": "COLLECTED-12"}
    r = ledger.post(f"/v1/declarations/{d['id']}/payments", t.token_name, paid)
    assert r.status_code == 200 and r.json()["status"] == "released", r.text

    # Released: the checklist is declared and closed, what never left is given back.
    c = ledger.get(f"/v1/checklists/{qd}", t.token_name).json()
    assert c["status"] == "closed" and c["declaration_no"] == d["declaration_no"]
    assert c["overdue"] is False
    assert [x["passed"] for x in c["lines"]] == ["45"]
    assert book_item(ledger, t) == ("55", "0", "55")
    # The trace from the consolidated declaration's number finds the goods that left.
    r = ledger.get(f"/v1/trace?ref={d['declaration_no']}", "officer")
    assert r.status_code == 200, r.text
    exits = [e for e in r.json()["events"] if e["type"] == "exited"]
    assert sorted(Decimal(e["quantity"]) for e in exits) == [-25, -20], exits
    overdue = ledger.get("/v1/checklists", "officer", params={"overdue": "true"}).json()
    assert qd not in [x["checklist_no"] for x in overdue["items"]]
    # Its goods left already: no gate_out may move them again; no second declaration.
    before = ledger.log_state()
    r = ledger.post(
        "/v1/movements",
        GATE,
        {"kind": "gate_out", "declaration": d["id"], "lines": [{"line_no": 1, "quantity": "1"}]},
        key=new_key(),
    )
    refused(ledger, before, r, 409, "exceeds_declared_quantity")
    r = ledger.post("/v1/declarations", t.token_name, consolidated(t, [qd], "45"), key=new_key())
    refused(ledger, before, r, 409, "already_declared")


def test_the_permission_withdrawn_refuses_new_filings_only(world):
    ledger, _clock = world
    t = onboard(ledger)
    admit(ledger, t, 1, "10")
    permit(ledger, t)
    kept = file(ledger, t, "4")
    path = f"/v1/account-books/{t.book_no}/collection-permission"
    before = ledger.log_state()
    r = ledger.post(path, "officer", {"permitted": False})
    refused(ledger, before, r, 422, loc="$.reason")
    r = ledger.post(path, "officer", {"permitted": False, "reason": "credit downgraded"})
    assert r.status_code == 200 and r.json()["permitted"] is False, r.text
    before = ledger.log_state()
    r = ledger.post("/v1/checklists", t.token_name, collected_body(t, "1"), key=new_key())
    refused(ledger, before, r, 409, "collection_not_permitted")
    # The checklist filed before keeps its course.
    r = ledger.post(f"/v1/checklists/{kept}/approval", "officer", {})
    assert r.status_code == 200, r.text
    assert book_item(ledger, t) == ("10", "4", "6")


def test_goods_leaving_under_a_new_tariff_go_on_a_checklist_of_their_own(world):
    """All goods of a collected checklist leave under one tariff: a passage after a new tariff
    took effect is 409 `tariff_changed`, those goods go on a new checklist, and each tariff's
    checklists are declared apart, each at the rates of the days its goods left."""
    ledger, clock = world
    t = onboard(ledger)
    admit(ledger, t, 1, "100")
    permit(ledger, t)
    before_change = file(ledger, t, "30")
    r = ledger.post(f"/v1/checklists/{before_change}/approval", "officer", {})
    assert r.status_code == 200, r.text
    clock.at = china("2026-12-05T10:00")
    first = out_pass(ledger, t, before_change, "10")
    r = ledger.post(f"/v1/gate-passes/{first}/passage", GATE, {"measured_gross_weight_kg": "800"})
    assert r.status_code == 200, r.text

    # Customs publish a tariff in force from 20 December: laptops 5%.
    rows = [{"hs_prefix": "847130", "tariff_rate": "0.05", "vat_rate": "0.13"}]
    tariff = {"effective_from": "2026-12-20", "rows": rows, "source": "test: a mid-month change"}
    r = ledger.post("/v1/reference/tariff", "officer", tariff)
    assert r.status_code == 201, r.text

    clock.at = china("2026-12-21T10:00")
    late = out_pass(ledger, t, before_change, "10")
    before = ledger.log_state()
    r = ledger.post(f"/v1/gate-passes/{late}/passage", GATE, {"measured_gross_weight_kg": "800"})
    refused(ledger, before, r, 409, "tariff_changed")
    assert "2026-12-20" in r.json()["detail"], r.text
    after_change = file(ledger, t, "10")
    r = ledger.post(f"/v1/checklists/{after_change}/approval", "officer", {})
    assert r.status_code == 200, r.text
    second = out_pass(ledger, t, after_change, "10")
    r = ledger.post(f"/v1/gate-passes/{second}/passage", GATE, {"measured_gross_weight_kg": "800"})
    assert r.status_code == 200, r.text

    # Declared together: refused; declared apart, each at its own tariff.
    clock.at = china("2027-01-02T09:00")
    before = ledger.log_state()
    both = consolidated(t, [before_change, after_change], "20")
    r = ledger.post("/v1/declarations", t.token_name, both, key=new_key())
    refused(ledger, before, r, 422, loc="$.collected_checklists")
    answers = {}
    for qd in (before_change, after_change):
        body = consolidated(t, [qd], "10")
        r = ledger.post("/v1/declarations", t.token_name, body, key=new_key())
        assert r.status_code == 201, r.text
        answers[qd] = r.json()
    used = {qd: {u["kind"]: u for u in a["assessed_with"]} for qd, a in answers.items()}
    assert used[before_change]["tariff"]["effective_from"] == "2026-01-01"
    assert used[after_change]["tariff"]["effective_from"] == "2026-12-20"
    # 10 x 420 EUR x 8.2601 (December) = 34,692.42 CNY: MFN 0% before, 5% after.
    assert Decimal(answers[before_change]["duties"]["tariff"]) == 0
    assert Decimal(answers[after_change]["duties"]["tariff"]) == Decimal("1734.62")
    assert Decimal(answers[after_change]["duties"]["vat"]) == Decimal("4735.52")
    # An auditor's reassessment reproduces both from the log's own publications.
    found = reassess(ledger.services.app.log, DEFAULT_TABLES)
    assert found.assessments >= 2 and found.reproduced == found.assessments, found.differences
