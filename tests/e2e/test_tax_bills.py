"""Tax bills (issue #18 item 4, first part), over HTTP on both stores, on the test's clock: a
declaration's duties become a bill the day it awaits payment, due 15 days later past the
weekend, accruing 0.05% a day of what is unpaid after that; paying stops the fee; tenancy."""

from __future__ import annotations

from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from uuid import UUID

import pytest

from tests import samples
from tests.support import (
    Clock,
    admit,
    china,
    clocked_ledger,
    laptop_exit,
    new_key,
    onboard,
)

# A Friday: 15 days on is Saturday 19 December, so the bill is due on Monday 21 December.
FRIDAY = china("2026-12-04T09:00")


@pytest.fixture
def world(database_url):
    clock = Clock(FRIDAY)
    with clocked_ledger(database_url, clock, samples.rules_without_draws()) as ledger:
        ledger.issue("gate-bills", "operator", zone="XCBZ")
        ledger.issue("gate-elsewhere", "operator", zone="XEPZ")
        yield ledger, clock


def bills(ledger, who, **params):
    r = ledger.get("/v1/tax-bills", who, params=params)
    assert r.status_code == 200, r.text
    return r.json()["items"]


def test_a_bill_falls_due_accrues_a_late_fee_and_stops_when_paid(world):
    ledger, clock = world
    t, other = onboard(ledger), onboard(ledger)
    admit(ledger, t, 1, "100")
    body = laptop_exit(t)
    body["lines"][0]["quantity"] = "100"
    r = ledger.post("/v1/declarations", t.token_name, body, key=new_key())
    assert r.status_code == 201, r.text
    d = r.json()
    assert d["status"] == "awaiting_payment", d
    # 100 x 420 EUR x 8.2601 = 346,924.20 CNY; VAT 13% = 45,100.15 (MFN 0%).
    tax = Decimal(d["duties"]["total"])
    assert tax == Decimal("45100.15")

    (bill,) = bills(ledger, t.token_name)
    assert (bill["bill_id"], bill["declaration_no"]) == (d["id"], d["declaration_no"])
    assert (bill["issued_on"], bill["due_by"]) == ("2026-12-04", "2026-12-21")
    assert (bill["status"], Decimal(bill["late_fee"]), Decimal(bill["unpaid"])) == (
        "unpaid",
        0,
        tax,
    )
    assert bills(ledger, "officer") == [bill]
    assert bills(ledger, "gate-bills") == [bill]  # its zone's operator
    assert bills(ledger, other.token_name) == []
    assert bills(ledger, "gate-elsewhere") == []
    assert bills(ledger, t.token_name, status="overdue") == []
    # A declaration withdrawn while it awaits payment owes nothing: its bill is cancelled.
    dropped = ledger.post("/v1/declarations", t.token_name, laptop_exit(t), key=new_key()).json()
    assert dropped["status"] == "awaiting_payment", dropped
    assert len(bills(ledger, t.token_name)) == 2
    r = ledger.post(
        f"/v1/declarations/{dropped['id']}/withdrawal", t.token_name, {"reason": "order cancelled"}
    )
    assert r.status_code == 200, r.text
    assert [b["bill_id"] for b in bills(ledger, t.token_name)] == [d["id"]]

    # On the due day, still no fee; the day after, one day's.
    clock.at = china("2026-12-21T18:00")
    assert bills(ledger, t.token_name)[0]["status"] == "unpaid"
    clock.at = china("2027-01-05T10:00")  # 15 days late
    (late,) = bills(ledger, t.token_name, status="overdue")
    assert Decimal(late["late_fee"]) == (tax * Decimal("0.0005") * 15).quantize(
        Decimal("0.01"), ROUND_HALF_UP
    )
    assert Decimal(late["late_fee"]) == Decimal("338.25")
    # The statistics add what is overdue, by the declarations' month, within tenancy.
    (december,) = [
        row
        for row in ledger.get("/v1/stats", "officer", params={"group_by": "month"}).json()["items"]
        if row["key"] == "2026-12"
    ]
    assert Decimal(december["overdue_cny"]) == tax
    mine = ledger.get("/v1/stats", other.token_name, params={"group_by": "month"}).json()
    assert all(Decimal(row["overdue_cny"]) == 0 for row in mine["items"])

    # The bill is paid by its own id (the declaration's payment); not by anyone else.
    paid = {"amount": str(tax), "currency": "CNY", "reference": "BANK-0105"}
    before = ledger.log_state()
    r = ledger.post(f"/v1/tax-bills/{bill['bill_id']}/payments", other.token_name, paid)
    assert r.status_code == 404 and ledger.log_state() == before, r.text
    r = ledger.post(f"/v1/tax-bills/{bill['bill_id']}/payments", t.token_name, paid)
    assert r.status_code == 200 and r.json()["status"] == "released", r.text
    # The settling payment fixed the fee owed that day in the declaration's log.
    (fixed,) = [
        e for e in ledger.services.app.events.get(UUID(d["id"]))
        if type(e).__name__ == "LateFeeFixed"
    ]  # fmt: skip
    assert fixed.amount == Decimal("338.25")
    clock.at = clock.at + timedelta(days=30)
    (settled,) = bills(ledger, t.token_name, status="paid")
    assert settled["late_fee"] == late["late_fee"], "paying stops the fee"
    months = ledger.get("/v1/stats", "officer", params={"group_by": "month"}).json()["items"]
    assert all(Decimal(row["overdue_cny"]) == 0 for row in months)
    assert settled["payments"] == [{"on": "2027-01-05", "amount": str(tax)}]
    assert bills(ledger, t.token_name, status="overdue") == []
    assert bills(ledger, t.token_name, status="unpaid") == []


def test_a_declaration_under_review_owes_nothing_until_it_awaits_payment(world):
    """Customs' own review time never counts against the enterprise: the bill is issued the
    day the declaration awaits payment; a rejected declaration owes nothing."""
    ledger, clock = world
    t = onboard(ledger)
    admit(ledger, t, 1, "10")
    # On the negative list: every declaration goes to document review first (yellow).
    body = {"credit_class": "dishonest", "reason": "administrative penalty 2026-88"}
    r = ledger.post(f"/v1/enterprises/{t.uscc}/credit-class", "officer", body)
    assert r.status_code == 200, r.text
    reviewed, rejected = (
        ledger.post("/v1/declarations", t.token_name, laptop_exit(t), key=new_key()).json()
        for _ in range(2)
    )
    assert reviewed["status"] == rejected["status"] == "document_review", reviewed
    assert bills(ledger, "officer") == []
    clock.at = china("2026-12-10T09:00")  # a Thursday: due 25 December, a Friday
    r = ledger.post(f"/v1/declarations/{reviewed['id']}/release", "officer", {})
    assert r.status_code == 200 and r.json()["status"] == "awaiting_payment", r.text
    r = ledger.post(
        f"/v1/declarations/{rejected['id']}/rejection", "officer", {"reason": "no licence"}
    )
    assert r.status_code == 200, r.text
    (bill,) = bills(ledger, "officer")
    assert bill["bill_id"] == reviewed["id"]
    assert (bill["issued_on"], bill["due_by"]) == ("2026-12-10", "2026-12-25")
