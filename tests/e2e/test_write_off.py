"""Write-off of a book's period (issue #18 item 1), over HTTP on both stores, on the test's clock.

The story: a quarter of processing in the export processing zone under one BOM, a stocktake
shortage, a destruction witnessed by an officer, a write-off whose count falls short, the
officer's assessment of the difference, the bill paid late with its fee; the CSV and the PDF
carry the same figures, and the write-off as of before its certification is as submitted.
"""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tests import samples
from tests.support import Clock, admit, china, clocked_ledger, new_key, onboard

MEDICAMENTS = {
    "bom_ref": "MED-2026-1",
    "output_item_no": 3,
    "inputs": [
        {"item_no": 1, "net_consumption": "1.9", "loss_rate": "0.05"},
        {"item_no": 2, "net_consumption": "0.25", "loss_rate": "0.2"},
    ],
}
QUARTER = {"from": "2026-10-01", "to": "2026-12-31"}
COUNTS = [
    {"item_no": 1, "goods_status": "bonded", "quantity": "66"},
    {"item_no": 2, "goods_status": "bonded", "quantity": "46.875"},
    {"item_no": 3, "goods_status": "bonded", "quantity": "10"},
]


@pytest.fixture
def world(database_url):
    clock = Clock(china("2026-10-05T09:00"))
    with clocked_ledger(database_url, clock, samples.rules_without_draws()) as ledger:
        yield ledger, clock


def _ok(r, status=201):
    assert r.status_code == status, r.text
    return r.json()


def quarter(ledger, clock):
    """The quarter's movements in a processing book of the export processing zone."""
    t = onboard(ledger, zone="XEPZ")
    admit(ledger, t, 1, "100", zone="XEPZ")
    admit(ledger, t, 2, "50", zone="XEPZ")
    _ok(ledger.post(f"/v1/account-books/{t.book_no}/boms", t.token_name, MEDICAMENTS))
    clock.at = china("2026-11-10T10:00")
    processing = {
        "kind": "processing",
        "zone": "XEPZ",
        "account_book": t.book_no,
        "bom_ref": "MED-2026-1",
        # 10 x 1.9 / 0.95 = 20 laptops; 10 x 0.25 / 0.8 = 3.125 kg of coffee.
        "inputs": [{"item_no": 1, "quantity": "20"}, {"item_no": 2, "quantity": "3.125"}],
        "outputs": [{"item_no": 3, "quantity": "10"}],
        "operation": "processing",
    }
    _ok(ledger.post("/v1/movements", t.token_name, processing, key=new_key()))
    clock.at = china("2026-12-01T10:00")
    shortage = {
        "kind": "adjustment",
        "account_book": t.book_no,
        "item_no": 1,
        "quantity_delta": "-1",
        "reason": "stocktake: one laptop missing",
    }
    _ok(ledger.post("/v1/movements", t.token_name, shortage, key=new_key()))
    clock.at = china("2026-12-10T10:00")
    destroyed = {
        "kind": "destruction",
        "account_book": t.book_no,
        "lines": [{"item_no": 1, "quantity": "3"}],
        "reason": "water damage in storage",
        "certificate": "XA-DESTR-2026-0042",
    }
    _ok(ledger.post("/v1/movements", "officer", destroyed, key=new_key()))
    return t


def test_a_quarter_written_off_assessed_and_its_bill_paid_late(world):
    ledger, clock = world
    started = datetime.now(UTC)
    t = quarter(ledger, clock)
    clock.at = china("2027-01-04T09:30")  # a Monday
    path = f"/v1/account-books/{t.book_no}/write-offs"
    body = {"period": QUARTER, "counts": COUNTS, "note": "Q4 2026 write-off"}
    key = new_key()
    w = _ok(ledger.post(path, t.token_name, body, key=key))
    assert w["status"] == "submitted" and w["account_book"] == t.book_no
    rows = {(i["item_no"], i["goods_status"]): i for i in w["items"]}
    laptops = rows[(1, "bonded")]
    columns = ("opening", "receipts", "issues", "consumed", "produced", "scrap", "adjustments",
               "closing_book", "counted", "difference")  # fmt: skip
    figures = {k: Decimal(laptops[k]) for k in columns}
    assert figures == {
        "opening": 0, "receipts": 100, "issues": 0, "consumed": 20, "produced": 0,
        "scrap": 3, "adjustments": -1, "closing_book": 76, "counted": 66, "difference": -10,
    }  # fmt: skip
    coffee, medicaments = rows[(2, "bonded")], rows[(3, "bonded")]
    assert Decimal(coffee["closing_book"]) == Decimal("46.875") == Decimal(coffee["counted"])
    assert Decimal(coffee["difference"]) == 0
    assert (Decimal(medicaments["produced"]), Decimal(medicaments["closing_book"])) == (10, 10)
    (check,) = laptops["consumption_check"]
    assert (check["bom_ref"], Decimal(check["expected"]), Decimal(check["actual"])) == (
        "MED-2026-1", 20, 20,
    )  # fmt: skip
    assert check["beyond_tolerance"] is False and w["consumption_deviations"] == []
    # The figures are the statement's for the same period.
    statement = ledger.get(
        f"/v1/account-books/{t.book_no}/statement",
        t.token_name,
        params={"from": "2026-10-01T00:00:00+08:00", "to": "2027-01-01T00:00:00+08:00"},
    ).json()["items"]
    closing = {s["item_no"]: Decimal(s["closing"]) for s in statement}
    assert closing[1] == 76 and closing[2] == Decimal("46.875") and closing[3] == 10
    # The position and head hash it was computed at are the log's.
    record = ledger.services.app.log.record_at_or_before(w["position"])
    assert record.position == w["position"] and record.hash.hex() == w["head_hash"]
    # A retry answers the same; the same period again, or one overlapping, is 409.
    again = ledger.post(path, t.token_name, body, key=key)
    assert again.status_code == 201 and again.json() == w
    for period in (QUARTER, {"from": "2026-12-01", "to": "2026-12-31"}):
        r = ledger.post(path, t.token_name, {**body, "period": period}, key=new_key())
        assert r.status_code == 409 and r.json()["rule"] == "period_overlaps", r.text
    listed = _ok(ledger.get(path, "officer"), 200)["items"]
    assert [(x["write_off_id"], x["status"]) for x in listed] == [(w["write_off_id"], "submitted")]

    # The officer assesses the difference: VAT 13% (MFN 0%) on 10 laptops at 420 EUR, valued
    # at December's rate 8.2601: 34,692.42 CNY -> 4,510.01.
    time.sleep(0.01)
    between = datetime.now(UTC)  # record time (as_of) is the log's, not the test's clock
    time.sleep(0.01)
    clock.at = china("2027-01-04T15:00")
    c = _ok(
        ledger.post(
            f"/v1/write-offs/{w['write_off_id']}/certification",
            "officer",
            {"result": "differences_assessed", "reason": "shortage unexplained at the count"},
        ),
        200,
    )
    assert c["status"] == "differences_assessed"
    cert = c["certification"]
    (line,) = cert["assessed"]
    assert (line["item_no"], Decimal(line["quantity"]), line["valued_by"]) == (
        1,
        10,
        "price_history",
    )
    assert Decimal(line["customs_value_cny"]) == Decimal("34692.42")
    assert Decimal(line["vat"]) == Decimal("4510.01") and Decimal(cert["tax"]) == Decimal("4510.01")
    assert cert["alignment"] == [
        {"item_no": 1, "goods_status": "bonded", "wanted": "-10", "adjusted": "-10"}
    ]
    book = {
        i["item_no"]: i
        for i in ledger.get(f"/v1/account-books/{t.book_no}", "officer").json()["items"]
    }
    assert Decimal(book[1]["on_hand"]) == 66  # the book brought to the count
    again = ledger.post(
        f"/v1/write-offs/{w['write_off_id']}/certification",
        "officer",
        {"result": "accepted", "reason": "twice"},
    )
    assert again.status_code == 409 and again.json()["rule"] == "invalid_transition"

    # The bill: issued on the certification's day, due 15 days on (Tuesday 19 January).
    bills = _ok(ledger.get("/v1/tax-bills", t.token_name), 200)["items"]
    (bill,) = [b for b in bills if b["subject_kind"] == "write_off"]
    assert bill["bill_id"] == cert["bill_id"] and bill["declaration_no"] is None
    assert (bill["issued_on"], bill["due_by"], bill["status"]) == (
        "2027-01-04",
        "2027-01-19",
        "unpaid",
    )
    clock.at = china("2027-02-18T10:00")
    (overdue,) = [
        b
        for b in _ok(ledger.get("/v1/tax-bills", t.token_name, params={"status": "overdue"}), 200)[
            "items"
        ]
        if b["bill_id"] == bill["bill_id"]
    ]
    # 30 days late (20 January to 18 February): 4,510.01 x 0.05% x 30 = 67.65.
    assert Decimal(overdue["late_fee"]) == Decimal("67.65")
    # The statistics add it by the day it was issued, under no declaration: `within_zone`.
    for group_by, key in (("month", "2027-01"), ("flow", "within_zone")):
        rows = _ok(ledger.get("/v1/stats", "officer", params={"group_by": group_by}), 200)
        (row,) = [r for r in rows["items"] if r["key"] == key]
        assert Decimal(row["overdue_cny"]) == Decimal("4510.01"), (group_by, rows)
    other = onboard(ledger, zone="XEPZ")
    theirs = _ok(ledger.get("/v1/stats", other.token_name, params={"group_by": "flow"}), 200)
    assert all(Decimal(r["overdue_cny"]) == 0 for r in theirs["items"])
    paid = _ok(
        ledger.post(
            f"/v1/tax-bills/{bill['bill_id']}/payments",
            t.token_name,
            {"amount": "4510.01", "currency": "CNY", "reference": "TAX-2027-0001"},
        ),
        200,
    )
    assert paid["status"] == "paid" and Decimal(paid["late_fee"]) == Decimal("67.65")
    clock.at = china("2027-06-01T10:00")  # the fee was fixed when paid: it never grows
    (settled,) = [
        b
        for b in _ok(ledger.get("/v1/tax-bills", t.token_name, params={"status": "paid"}), 200)[
            "items"
        ]
        if b["bill_id"] == bill["bill_id"]
    ]
    assert Decimal(settled["late_fee"]) == Decimal("67.65")

    # The reports carry the same figures.
    wid = w["write_off_id"]
    r = ledger.get(f"/v1/write-offs/{wid}", t.token_name, params={"format": "csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(r.text.lstrip("\ufeff"))))
    (row,) = [x for x in table if x["item_no"] == "1"]
    assert (row["closing_book"], row["counted"], row["difference"]) == ("76", "66", "-10")
    r = ledger.get(f"/v1/write-offs/{wid}", "auditor", params={"format": "pdf"})
    assert r.status_code == 200 and r.content.startswith(b"%PDF")
    pypdf = pytest.importorskip("pypdf")
    text = "\n".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(r.content)).pages)
    for figure in ("76", "66", "-10", "4510.01", "34692.42", str(w["position"]), w["head_hash"]):
        assert figure in text, figure
    # As it stood before the certification: submitted, no certification.
    before = ledger.get(
        f"/v1/write-offs/{wid}",
        "auditor",
        params={"as_of": between.isoformat()},
    )
    assert before.status_code == 200, before.text
    assert before.json()["status"] == "submitted" and before.json()["certification"] is None
    early = ledger.get(f"/v1/write-offs/{wid}", "auditor", params={"as_of": started.isoformat()})
    assert early.status_code == 404

    # An auditor's replay of the whole log rebuilds the write-offs and the bills row for row;
    # as of the instant between submission and certification, the write-off's history too.
    for body in ({}, {"as_of": between.isoformat()}):
        r = ledger.client.post("/v1/audit/replay", json=body, headers=ledger.headers("auditor"))
        assert r.status_code == 200, r.text
        answer = r.json()
        write_offs = answer["projections"]["write_offs"]
        assert write_offs["equal"] is True, (body, write_offs, answer["differences"])
        assert write_offs["tables"]["view_write_off_versions"]["equal"] is True
        if not body:
            assert answer["projections"]["tax_bills"]["equal"] is True
            assert answer["equal"] is True, answer["differences"]


def test_bad_write_offs_are_refused_and_change_nothing(world):
    ledger, clock = world
    t = quarter(ledger, clock)
    other = onboard(ledger, zone="XEPZ")
    path = f"/v1/account-books/{t.book_no}/write-offs"
    clock.at = china("2026-12-31T23:00")
    before = ledger.log_state()
    body = {"period": QUARTER, "counts": COUNTS}
    r = ledger.post(path, t.token_name, body, key=new_key())
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == "$.period.to", r.text
    clock.at = china("2027-01-04T09:30")
    r = ledger.post(path, t.token_name, {**body, "counts": COUNTS[1:]}, key=new_key())
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == "$.counts", r.text
    bad = [*COUNTS, {"item_no": 9, "goods_status": "bonded", "quantity": "1"}]
    r = ledger.post(path, t.token_name, {**body, "counts": bad}, key=new_key())
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == "$.counts[3].item_no"
    r = ledger.post(
        path,
        t.token_name,
        {**body, "period": {"from": "2026-12-31", "to": "2026-10-01"}},
        key=new_key(),
    )
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == "$.period.to"
    assert ledger.post(path, other.token_name, body, key=new_key()).status_code == 404
    assert ledger.post(path, t.token_name, body).status_code == 400  # no Idempotency-Key
    assert ledger.post(path, "officer", body, key=new_key()).status_code == 403
    assert ledger.log_state() == before
    w = _ok(ledger.post(path, t.token_name, body, key=new_key()))
    cert = f"/v1/write-offs/{w['write_off_id']}/certification"
    assert ledger.post(cert, t.token_name, {"result": "accepted", "reason": "x"}).status_code == 403
    r = ledger.post(cert, "officer", {"result": "maybe", "reason": "x"})
    assert r.status_code == 422
    assert ledger.get(f"/v1/write-offs/{w['write_off_id']}", other.token_name).status_code == 404
    assert ledger.get("/v1/write-offs/not-an-id", "officer").status_code == 404


def test_an_accepted_write_off_brings_a_surplus_in_and_its_period_stays_closed(world):
    ledger, clock = world
    t = quarter(ledger, clock)
    clock.at = china("2027-01-04T09:30")
    counts = [{**COUNTS[0], "quantity": "80"}, *COUNTS[1:]]  # 4 laptops more than the book
    path = f"/v1/account-books/{t.book_no}/write-offs"
    w = _ok(ledger.post(path, t.token_name, {"period": QUARTER, "counts": counts}, key=new_key()))
    (laptops,) = [i for i in w["items"] if i["item_no"] == 1]
    assert Decimal(laptops["difference"]) == 4
    # Nothing may be dated into the period now: its figures are the book's for good.
    late = {
        "kind": "adjustment",
        "account_book": t.book_no,
        "item_no": 2,
        "quantity_delta": "1",
        "reason": "found in the cold store",
        "occurred_at": "2026-12-20T10:00:00+08:00",
    }
    before = ledger.log_state()
    r = ledger.post("/v1/movements", t.token_name, late, key=new_key())
    assert r.status_code == 409 and r.json()["rule"] == "period_written_off", r.text
    assert ledger.log_state() == before
    _ok(
        ledger.post(
            "/v1/movements",
            t.token_name,
            {**late, "occurred_at": "2027-01-02T10:00:00+08:00"},
            key=new_key(),
        )
    )
    cert = f"/v1/write-offs/{w['write_off_id']}/certification"
    valued = {"item_no": 1, "unit_price": "400.00", "currency": "EUR"}
    r = ledger.post(
        cert, "officer", {"result": "accepted", "reason": "ok", "unit_values": [valued]}
    )
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == "$.unit_values", r.text
    c = _ok(ledger.post(cert, "officer", {"result": "accepted", "reason": "count confirmed"}), 200)
    assert c["status"] == "accepted" and c["certification"]["bill_id"] is None
    assert c["certification"]["alignment"] == [
        {"item_no": 1, "goods_status": "bonded", "wanted": "4", "adjusted": "4"}
    ]
    book = {
        i["item_no"]: i
        for i in ledger.get(f"/v1/account-books/{t.book_no}", "officer").json()["items"]
    }
    assert Decimal(book[1]["on_hand"]) == 80
    movement = _ok(ledger.get(f"/v1/movements/{c['certification']['movement_id']}", "officer"), 200)
    (lot,) = movement["lots"]
    assert movement["kind"] == "adjustment" and Decimal(lot["quantity"]) == 4
    assert _ok(ledger.get(f"/v1/lots/{lot['lot_id']}", "officer"), 200)["goods_status"] == "bonded"
    bills = _ok(ledger.get("/v1/tax-bills", t.token_name), 200)["items"]
    assert not [b for b in bills if b["subject_kind"] == "write_off"]


def test_an_officer_values_a_shortage_the_ledger_has_no_price_for(world):
    ledger, clock = world
    t, u = quarter(ledger, clock), quarter(ledger, clock)
    clock.at = china("2027-01-04T09:30")
    laptops, coffee, medicaments = (
        {**c, "quantity": q} for c, q in zip(COUNTS, ("76", "45.875", "8"), strict=True)
    )
    assess = {"result": "differences_assessed", "reason": "missing at the count"}

    def write_off(tenant, counts):
        path = f"/v1/account-books/{tenant.book_no}/write-offs"
        w = _ok(
            ledger.post(
                path, tenant.token_name, {"period": QUARTER, "counts": counts}, key=new_key()
            )
        )
        return f"/v1/write-offs/{w['write_off_id']}/certification"

    # t: 2 medicaments missing; they were made here, never released: no price to value by.
    cert = write_off(t, [laptops, COUNTS[1], medicaments])
    r = ledger.post(cert, "officer", assess)
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == "$.unit_values", r.text
    assert "item 3 has no released price" in r.json()["errors"][0]["msg"]
    value = {"item_no": 3, "unit_price": "12.5", "currency": "EUR"}
    r = ledger.post(cert, "officer", {**assess, "unit_values": [{**value, "item_no": 1}]})
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == "$.unit_values[0].item_no"
    r = ledger.post(cert, "officer", {**assess, "unit_values": [{**value, "unit_price": "0"}]})
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == "$.unit_values[0].unit_price"
    # u: 1 kg of coffee missing, valued by the officer instead of its price history:
    # 9.00 EUR x 8.2601 = 74.34 CNY.
    cert = write_off(u, [laptops, coffee, COUNTS[2]])
    valued = {"item_no": 2, "unit_price": "9.00", "currency": "EUR"}
    c = _ok(ledger.post(cert, "officer", {**assess, "unit_values": [valued]}), 200)
    (line,) = c["certification"]["assessed"]
    assert (line["item_no"], line["valued_by"]) == (2, "officer")
    assert Decimal(line["customs_value_cny"]) == Decimal("74.34")


def test_a_flagged_stocktake_shortage_is_a_liability_unless_force_majeure(world):
    ledger, clock = world
    clock.at = china("2026-12-04T09:00")
    t = onboard(ledger)
    admit(ledger, t, 1, "100")

    def short(quantity):
        body = {
            "kind": "adjustment",
            "account_book": t.book_no,
            "item_no": 1,
            "quantity_delta": f"-{quantity}",
            "reason": "stocktake",
        }
        return _ok(ledger.post("/v1/movements", t.token_name, body, key=new_key()))

    def bill_of(movement):
        found = [
            b for b in _ok(ledger.get("/v1/tax-bills", "officer"), 200)["items"]
            if b["subject_ref"] == movement["movement_id"]
        ]  # fmt: skip
        return found[0] if found else None

    # 1 laptop of a lot of 100 is 1%, but its VAT (451.00 CNY) is under USD 100 (710.92).
    small = short("1")
    assert small["flagged"] is False and bill_of(small) is None
    # 5 laptops: 5 x 420 EUR x 8.2601 = 17,346.21 CNY; VAT 13% = 2,255.01.
    storm = short("5")
    assert storm["flagged"] is True
    listed = ledger.get("/v1/movements", "officer", params={"flagged": "true"}).json()["items"]
    assert [m["movement_id"] for m in listed] == [storm["movement_id"]]
    bill = bill_of(storm)
    assert (bill["subject_kind"], Decimal(bill["tax"]), bill["status"]) == (
        "shortage",
        Decimal("2255.01"),
        "unpaid",
    )
    waive = f"/v1/tax-bills/{bill['bill_id']}/force-majeure"
    assert ledger.post(waive, t.token_name, {"reason": "storm"}).status_code == 403
    w = _ok(ledger.post(waive, "officer", {"reason": "roof collapsed in the storm of 3 Dec"}), 200)
    assert (w["status"], w["waived_reason"]) == ("waived", "roof collapsed in the storm of 3 Dec")
    assert bill_of(storm) is None  # nothing is owed
    again = ledger.post(waive, "officer", {"reason": "twice"})
    assert again.status_code == 409 and again.json()["rule"] == "invalid_transition"

    lost = short("5")
    bill = bill_of(lost)
    pay = f"/v1/tax-bills/{bill['bill_id']}/payments"
    part = {"amount": "1000.00", "currency": "CNY", "reference": "PART-1"}
    p = _ok(ledger.post(pay, t.token_name, part), 200)
    assert (p["status"], Decimal(p["outstanding"]), p["late_fee"]) == (
        "unpaid",
        Decimal("1255.01"),
        None,
    )
    r = ledger.post(pay, t.token_name, {**part, "amount": "2000.00"})
    assert r.status_code == 409 and r.json()["rule"] == "payment_exceeds_outstanding"
    other = onboard(ledger)
    assert ledger.post(pay, other.token_name, part).status_code == 404
    p = _ok(ledger.post(pay, t.token_name, {**part, "amount": "1255.01"}), 200)
    assert (p["status"], Decimal(p["late_fee"])) == ("paid", 0)  # paid on time
    r = ledger.post(f"/v1/tax-bills/{bill['bill_id']}/force-majeure", "officer", {"reason": "late"})
    assert r.status_code == 409 and r.json()["rule"] == "invalid_transition"
