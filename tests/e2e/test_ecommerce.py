"""Cross-border e-commerce retail lists (9610 / 1210 / 1239 with flow second_line_out), over HTTP.

The three-document match, one figure (the order: lines + freight + insurance, in CNY) for
the limits, the quota and the tax, the 70% retail rate within the limits, the full tax on a
single indivisible item over CNY 5,000, the positive list, the buyer's CNY 26,000 a calendar
year (China time) kept on the write side and updated atomically with the list - also against
concurrent threads and processes - and bonded e-commerce only from zones that permit it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest

from domain import quota
from domain.declaration import SHANGHAI
from tests.samples import line, make_resident_id
from tests.support import Ledger, Tenant, admit, declaration_body, new_key, onboard, running_ledger

REPO = Path(__file__).resolve().parents[2]


BUYER = make_resident_id(1)
CONSIGNEE = make_resident_id(2)  # the buyer's relative who receives the parcel


class _Drop:
    def __repr__(self) -> str:
        return "DROP"


DROP: Any = _Drop()  # an override that removes the field, as a client that forgets it sends


def _changed(fields: dict[str, Any], changes: Mapping[str, Any] | None) -> dict[str, Any]:
    """`fields` with `changes` applied: a value replaces, DROP removes."""
    out = {**fields, **(changes or {})}
    return {k: v for k, v in out.items() if v is not DROP}


def retail_body(
    tenant: Tenant,
    amount: str = "4000.00",
    *,
    buyer: str = BUYER,
    payer: str | None = None,
    paid: str | None = None,
    lines: list[dict[str, Any]] | None = None,
    trade_mode: str = "1210",
    zone: str = "XCBZ",
    order_amount: str | None = None,
    currency: str = "CNY",
    order: Mapping[str, Any] | None = None,
    payment: Mapping[str, Any] | None = None,
    waybill: Mapping[str, Any] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A retail list of one laptop at `amount` CNY (DAP: the price reaches the buyer), with its
    order, the buyer's payment and a waybill to another consignee.

    The overrides build what a careless client sends: `order_amount` (default `amount`, the
    goods' value; the payment follows it unless `paid` is given), `currency`, field changes
    of the `order`, `payment` and `waybill` documents and of the list itself (`fields`), where
    DROP leaves a field out. Without them the body is the consistent one."""
    order_no = f"JD{new_key()[:12].replace('-', '')}"
    ordered = order_amount if order_amount is not None else amount
    body = declaration_body(
        tenant.uscc,
        tenant.book_no,
        flow="second_line_out",
        trade_mode=trade_mode,
        zone=zone,
        country="CN",
        currency=currency,
        incoterm="DAP",
        freight=None,
        insurance=None,
        transport={"mode": "express", "reference": f"SF{order_no}"},
        lines=lines or [line(1, quantity="1", unit_price=amount)],
        client_ref=order_no,
        ecommerce={
            "order": _changed(
                {
                    "order_no": order_no,
                    "buyer_id": buyer,
                    "buyer_name": "Li Hua",
                    "amount": ordered,
                },
                order,
            ),
            "payment": _changed(
                {
                    "payment_no": f"PAY-{order_no}",
                    "payer_id": payer or buyer,
                    "amount": paid or ordered,
                },
                payment,
            ),
            "waybill": _changed(
                {"waybill_no": f"WB-{order_no}", "consignee_id": CONSIGNEE}, waybill
            ),
        },
    )
    return _changed(body, fields)


def submit(ledger: Ledger, tenant: Tenant, body: dict[str, Any]) -> Any:
    return ledger.post("/v1/declarations", tenant.token_name, body, key=new_key())


def pay(ledger: Ledger, tenant: Tenant, ref: str, amount: str, currency: str = "CNY") -> Any:
    body = {"amount": amount, "currency": currency, "reference": f"UNIONPAY-{new_key()[:8]}"}
    return ledger.post(f"/v1/declarations/{ref}/payments", tenant.token_name, body)


def quota_used(ledger: Ledger, buyer: str, year: int) -> Decimal:
    """The buyer's yearly total as the write side keeps it (not a read model)."""
    state = ledger.services.app.load(quota_stream(ledger.services.app, buyer, year))
    return state.used if state is not None else Decimal(0)


def quota_stream(app: Any, buyer: str, year: int) -> Any:
    """The buyer's quota stream of `year`: named by the buyer's pseudonym, which the key
    store beside the log gives (domain/quota.py), never by the identity number."""
    from ledger.buyer_keys import BuyerKeys

    vault = BuyerKeys.beside(app.database, app.factory.datastore)
    try:
        return quota.pseudonymous_quota_id(vault.pseudonym(buyer), year)
    finally:
        vault.close()


def year_of(declaration: dict[str, Any]) -> int:
    """The calendar year in China of the recorded time: digits 5-8 of the number."""
    return int(declaration["declaration_no"][4:8])


def assessed(ledger: Ledger, declaration_id: str) -> dict[str, Any]:
    """The payload of the declaration's DeclarationAssessed event, as an auditor reads it."""
    events = ledger.get(f"/v1/streams/{declaration_id}/events", "auditor").json()["items"]
    (event,) = [e for e in events if e["type"] == "DeclarationAssessed"]
    return event["payload"]  # type: ignore[no-any-return]


@pytest.fixture
def ledger(database_url):
    with running_ledger(database_url) as ledger:
        yield ledger


# -- duties and payments -----------------------------------------------------------------


def test_a_4000_cny_retail_laptop_pays_70_percent_of_the_vat_and_is_released_when_paid(ledger):
    tenant = onboard(ledger)
    # Bonded stock in the zone: the release reserves the laptop.
    admit(ledger, tenant, 1, "5")
    r = submit(ledger, tenant, retail_body(tenant, "4000.00"))
    assert r.status_code == 201, r.text
    created = r.json()
    # The consignee may differ from the buyer and the payer.
    assert created["ecommerce"]["waybill"]["consignee_id"] == CONSIGNEE != BUYER
    # A regular enterprise, laptops are not watched, no random draw: green; duties are due,
    # so it waits for the payment.
    assert created["channel"] == "green" and created["risk_reasons"] == []
    assert created["status"] == "awaiting_payment"
    # Within the limits: tariff 0 (and 0% anyway for 8471.30), consumption tax none,
    # VAT = 4000.00 x 13% = 520.00, x 70% = 364.00.
    assert created["duties"] == {
        "tariff": "0.00",
        "vat": "364.00",
        "consumption_tax": "0.00",
        "total": "364.00",
        "paid": "0.00",
        "outstanding": "364.00",
        "currency": "CNY",
        "refunded": "0.00",
    }
    payload = assessed(ledger, created["id"])
    assert payload["duties"]["mode"] == "retail_within_limits"
    assert payload["quota_year"] == year_of(created)
    assert Decimal(payload["duties"]["lines"][0]["vat_rate"]) == Decimal("0.13")
    assert quota_used(ledger, BUYER, year_of(created)) == Decimal("4000.00")

    ref = created["id"]
    r = pay(ledger, tenant, ref, "100.00")
    assert r.status_code == 200, r.text
    # 364.00 - 100.00 = 264.00 still outstanding.
    assert r.json()["status"] == "awaiting_payment"
    assert (r.json()["duties"]["paid"], r.json()["duties"]["outstanding"]) == ("100.00", "264.00")

    before = ledger.log_state()
    r = pay(ledger, tenant, ref, "264.01")  # one fen more than is due
    assert r.status_code == 409, r.text
    assert r.json()["rule"] == "payment_exceeds_outstanding"
    assert r.json()["current_status"] == "awaiting_payment"
    r = pay(ledger, tenant, ref, "264.00", currency="USD")
    assert r.status_code == 422, r.text
    assert [e["loc"] for e in r.json()["errors"]] == ["$.currency"]
    assert ledger.log_state() == before

    r = pay(ledger, tenant, created["declaration_no"], "264.00")
    assert r.status_code == 200, r.text
    # 100.00 + 264.00 = 364.00 = the total: released, nothing outstanding.
    assert r.json()["status"] == "released"
    assert (r.json()["duties"]["paid"], r.json()["duties"]["outstanding"]) == ("364.00", "0.00")
    again = pay(ledger, tenant, ref, "0.01")
    assert again.status_code == 409
    assert again.json()["rule"] == "invalid_transition"
    assert again.json()["current_status"] == "released"

    detail = ledger.get(f"/v1/declarations/{ref}", tenant.token_name).json()
    assert [h["type"] for h in detail["history"]] == [
        "DeclarationSubmitted",
        "DeclarationAssessed",
        "DutiesPaid",
        "DutiesPaid",
    ]
    assert detail["duties"]["paid"] == "364.00" and detail["duties"]["outstanding"] == "0.00"


def test_a_single_indivisible_6000_cny_laptop_pays_the_full_tax_and_counts(ledger):
    tenant = onboard(ledger)
    r = submit(ledger, tenant, retail_body(tenant, "6000.00"))
    assert r.status_code == 201, r.text
    created = r.json()
    # Over CNY 5,000 but one line of quantity 1: general-trade tax, no 70%:
    # tariff 6000.00 x 0% = 0.00; VAT 6000.00 x 13% = 780.00.
    duties = created["duties"]
    assert (duties["tariff"], duties["vat"], duties["total"]) == ("0.00", "780.00", "780.00")
    assert duties["outstanding"] == "780.00"
    assert assessed(ledger, created["id"])["duties"]["mode"] == "retail_full_tax"
    # ... and it still counts against the buyer's year.
    assert quota_used(ledger, BUYER, year_of(created)) == Decimal("6000.00")


def test_two_laptops_totalling_6000_cny_are_over_the_transaction_limit(ledger):
    tenant = onboard(ledger)
    before = ledger.log_state()
    two_of_one_line = [line(1, quantity="2", unit_price="3000.00")]
    two_lines = [
        line(1, line_no=1, quantity="1", unit_price="3000.00"),
        line(1, line_no=2, quantity="1", unit_price="3000.00"),
    ]
    for lines in (two_of_one_line, two_lines):
        r = submit(ledger, tenant, retail_body(tenant, "6000.00", lines=lines))
        assert r.status_code == 422, r.text
        assert [e["loc"] for e in r.json()["errors"]] == ["$.ecommerce.order.amount"]
    assert ledger.log_state() == before
    # Exactly CNY 5,000 for two laptops is within the limit:
    # VAT 5000.00 x 13% = 650.00, x 70% = 455.00.
    body = retail_body(tenant, "5000.00", lines=[line(1, quantity="2", unit_price="2500.00")])
    r = submit(ledger, tenant, body)
    assert r.status_code == 201, r.text
    assert r.json()["duties"]["vat"] == "455.00" and r.json()["duties"]["tariff"] == "0.00"


# -- the three-document match ------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "overrides", "loc"),
    [
        ("payer is not the buyer", {"payer": make_resident_id(3)}, "$.ecommerce.payment.payer_id"),
        ("payment differs from order", {"paid": "3999.99"}, "$.ecommerce.payment.amount"),
        (
            "buyer id check digit",
            # The right check digit of make_resident_id(1) is X: 1 is wrong.
            {"buyer": BUYER[:17] + "1", "payer": BUYER[:17] + "1"},
            "$.ecommerce.order.buyer_id",
        ),
    ],
)
def test_a_three_document_mismatch_is_a_field_level_422(ledger, case, overrides, loc):
    assert BUYER.endswith("X")
    tenant = onboard(ledger)
    before = ledger.log_state()
    r = submit(ledger, tenant, retail_body(tenant, "4000.00", **overrides))
    assert r.status_code == 422, r.text
    assert loc in [e["loc"] for e in r.json()["errors"]], (case, r.json())
    assert ledger.log_state() == before


# -- what a careless client sends (the ledger's answers as they are today) -----------------


@pytest.mark.parametrize(
    ("case", "overrides", "loc"),
    [
        ("no e-commerce documents", {"ecommerce": DROP}, "$.ecommerce"),
        (
            "consignee left out",
            {"waybill": {"consignee_id": DROP}},
            "$.ecommerce.waybill.consignee_id",
        ),
        ("order amount left out", {"order": {"amount": DROP}}, "$.ecommerce.order.amount"),
        ("no transport", {"transport": DROP}, "$.transport"),
        ("general trade with e-commerce documents", {"trade_mode": "0110"}, "$.ecommerce"),
        ("a currency without a customs rate", {"currency": "XXX"}, "$.currency"),
    ],
)
def test_an_incomplete_retail_list_is_a_field_level_422(ledger, case, overrides, loc):
    tenant = onboard(ledger)
    before = ledger.log_state()
    r = submit(ledger, tenant, retail_body(tenant, "4000.00", **overrides))
    assert r.status_code == 422, (case, r.text)
    assert [e["loc"] for e in r.json()["errors"]] == [loc], (case, r.json())
    assert ledger.log_state() == before


def refused(r: Any, loc: str, rule: str) -> None:
    """A 422 naming the field and the rule, in the field's error and at the top level."""
    assert r.status_code == 422, r.text
    problem = r.json()
    assert [(e["loc"], e.get("rule")) for e in problem["errors"]] == [(loc, rule)], problem
    assert problem["rule"] == rule


def test_the_bypasses_of_the_quota_and_the_limit_are_refused_order_amount_mismatch(ledger):
    """Issue #16: a buyer at CNY 24,000 is refused a 3,000 order, then tried 30 x 300.00 of
    goods with an order of 1.00, and a 6,000 item with an order of 100.00: each is 422
    `order_amount_mismatch`, and nothing is written."""
    shop = onboard(ledger)
    for _ in range(5):  # 5 x 4,800.00 = 24,000.00
        r = submit(ledger, shop, retail_body(shop, "4800.00"))
        assert r.status_code == 201, r.text
    year = year_of(r.json())
    assert quota_used(ledger, BUYER, year) == Decimal("24000.00")
    before = ledger.log_state()
    r = submit(ledger, shop, retail_body(shop, "3000.00"))  # 24,000 + 3,000 > 26,000
    assert r.status_code == 409 and r.json()["rule"] == "quota_exceeded", r.text
    thirty = [line(1, quantity="30", unit_price="300.00")]
    r = submit(ledger, shop, retail_body(shop, "9000.00", lines=thirty, order_amount="1.00"))
    refused(r, "$.ecommerce.order.amount", "order_amount_mismatch")
    assert "9000.00" in r.json()["errors"][0]["msg"]
    r = submit(ledger, shop, retail_body(shop, "6000.00", order_amount="100.00"))
    refused(r, "$.ecommerce.order.amount", "order_amount_mismatch")
    # The goods' value stated honestly, the 30 laptops are over the CNY 5,000 a transaction.
    r = submit(ledger, shop, retail_body(shop, "9000.00", lines=thirty))
    refused(r, "$.ecommerce.order.amount", "over_transaction_limit")
    assert ledger.log_state() == before
    assert quota_used(ledger, BUYER, year) == Decimal("24000.00")


@pytest.mark.parametrize(
    ("case", "overrides"),
    [
        ("order under the goods", {"order_amount": "3999.99"}),
        ("order over the goods", {"order_amount": "4000.01"}),
        ("freight left out of the order", {"freight": "50.00"}),
        ("insurance left out of the order", {"insurance": "0.01"}),
    ],
)
def test_an_order_amount_off_by_a_fen_is_refused(ledger, case, overrides):
    tenant = onboard(ledger)
    before = ledger.log_state()
    r = submit(ledger, tenant, retail_body(tenant, "4000.00", **overrides))
    refused(r, "$.ecommerce.order.amount", "order_amount_mismatch")
    assert ledger.log_state() == before, case


def test_freight_is_in_the_order_the_limits_and_the_tax_whatever_the_incoterm(ledger):
    """CNY 1,000 of goods with CNY 50 freight: the order is 1,050.00, the quota counts
    1,050.00 and VAT is 1,050.00 x 13% x 70% = 95.55 (Caiguanshui [2016] No. 18), with no
    incoterm, FOB (no deemed insurance) or DAP alike."""
    tenant = onboard(ledger)
    used = Decimal(0)
    for incoterm in (DROP, "FOB", "DAP"):
        body = retail_body(tenant, "1000.00", order_amount="1050.00", freight="50.00")
        r = submit(ledger, tenant, _changed(body, {"incoterm": incoterm}))
        assert r.status_code == 201, r.text
        created = r.json()
        assert (created["duties"]["tariff"], created["duties"]["vat"]) == ("0.00", "95.55")
        payload = assessed(ledger, created["id"])
        assert payload["duties"]["customs_value_cny"] == "1050.00"
        used += Decimal("1050.00")
        assert quota_used(ledger, BUYER, year_of(created)) == used
    # CNY 4,990 of goods and 20 freight is CNY 5,010: over the limit, but one item: full tax
    # on the order, 5,010.00 x 13% = 651.30.
    body = retail_body(tenant, "4990.00", order_amount="5010.00", freight="20.00")
    r = submit(ledger, tenant, body)
    assert r.status_code == 201, r.text
    assert r.json()["duties"]["vat"] == "651.30"
    assert assessed(ledger, r.json()["id"])["duties"]["mode"] == "retail_full_tax"
    # An auditor's reassessment from the log alone gives the same figures.
    from domain.duty_tables import DEFAULT_TABLES
    from ledger.reassess import reassess

    found = reassess(ledger.services.app.log, DEFAULT_TABLES)
    assert found.reproduced == found.assessments >= 4 and not found.differences


def test_the_worked_figures_of_the_retail_tax(ledger):
    """1,000 + 50 freight: VAT 95.55 (above); CNY 1,000 of cosmetics at 15% consumption tax:
    123.53 + 107.06 = 230.59; a single 6,000 item: VAT 780.00."""
    tenant = onboard(ledger)
    cosmetics = {"item_no": 5, "hs_code": "3304990000", "name": "Face cream", "unit": "C62"}
    r = ledger.post(f"/v1/account-books/{tenant.book_no}/items", "admin", {"items": [cosmetics]})
    assert r.status_code == 201, r.text
    cream = {**line(1, quantity="2", unit_price="500.00"), "item_no": 5}
    cream |= {"hs_code": "3304990000", "description": "Face cream"}
    r = submit(ledger, tenant, retail_body(tenant, "1000.00", lines=[cream]))
    assert r.status_code == 201, r.text
    # Consumption tax 1,000 / (1 - 15%) x 15% x 70% = 123.53; VAT (1,000 + 176.47) x 13% x
    # 70% = 107.06; tariff 0 within limits.
    duties = r.json()["duties"]
    assert (duties["tariff"], duties["consumption_tax"], duties["vat"]) == (
        "0.00",
        "123.53",
        "107.06",
    )
    assert duties["total"] == "230.59"
    r = submit(ledger, tenant, retail_body(tenant, "6000.00", buyer=make_resident_id(5)))
    assert r.status_code == 201, r.text
    assert (r.json()["duties"]["vat"], r.json()["duties"]["total"]) == ("780.00", "780.00")


def test_a_retail_list_in_another_currency_is_refused_at_its_currency(ledger):
    """The limits and the quota are written in CNY, and the order is the tax base: a list
    priced in EUR would need the month's rate between them, so it is refused."""
    tenant = onboard(ledger)
    before = ledger.log_state()
    r = submit(ledger, tenant, retail_body(tenant, "4000.00", currency="EUR"))
    refused(r, "$.currency", "retail_currency_not_cny")
    assert ledger.log_state() == before


# -- the positive list -------------------------------------------------------------------


def test_goods_off_the_positive_list_are_refused_before_any_tariff_lookup(ledger):
    """Medicaments (3004.90) are on neither the built-in positive list nor the tariff: the
    list is refused as goods that may not be sold retail, not as goods without a rate."""
    tenant = onboard(ledger)
    before = ledger.log_state()
    pills = line(3, quantity="10", unit_price="12.00")
    r = submit(ledger, tenant, retail_body(tenant, "120.00", lines=[pills]))
    refused(r, "$.lines[0].hs_code", "not_on_positive_list")
    assert "3004900000" in r.json()["errors"][0]["msg"]
    assert ledger.log_state() == before


def test_a_new_positive_list_is_used_at_once_and_recorded_on_the_list(ledger):
    tenant = onboard(ledger)
    r = submit(ledger, tenant, retail_body(tenant, "4000.00"))
    assert r.status_code == 201, r.text
    used = {t["kind"]: t for t in assessed(ledger, r.json()["id"])["tables_used"]}
    assert used["positive-list"]["effective_from"] == "2022-03-01"
    assert used["positive-list"]["version"] == 1
    # Customs publish a list without portable computers, in force today in China.
    today = datetime.now(SHANGHAI).date().isoformat()
    body = {"effective_from": today, "hs_codes": ["090121", "330499"], "source": "test list"}
    r = ledger.post("/v1/reference/positive-list", "officer", body, key=new_key())
    assert r.status_code == 201, r.text
    before = ledger.log_state()
    r = submit(ledger, tenant, retail_body(tenant, "4000.00"))
    refused(r, "$.lines[0].hs_code", "not_on_positive_list")
    assert ledger.log_state() == before
    # Coffee is on it (a prefix of 6 digits admits the 10-digit code), and the list says so.
    coffee = line(2, quantity="10", unit_price="8.50")
    r = submit(ledger, tenant, retail_body(tenant, "85.00", lines=[coffee]))
    assert r.status_code == 201, r.text
    used = {t["kind"]: t for t in assessed(ledger, r.json()["id"])["tables_used"]}
    assert (used["positive-list"]["effective_from"], used["positive-list"]["version"]) == (
        today,
        1,
    )
    # A general-trade declaration of laptops reads no positive list.
    r = ledger.post(
        "/v1/declarations",
        tenant.token_name,
        declaration_body(tenant.uscc, tenant.book_no),
        key=new_key(),
    )
    assert r.status_code == 201, r.text
    kinds = {t["kind"] for t in assessed(ledger, r.json()["id"])["tables_used"]}
    assert "positive-list" not in kinds


# -- the buyer's yearly quota ------------------------------------------------------------


def test_a_buyer_has_26000_cny_a_year_and_a_withdrawal_gives_its_amount_back(ledger):
    # The quota is the buyer's, whichever enterprise sells: two shops share it.
    shops = [onboard(ledger), onboard(ledger)]
    lists = []
    for n in range(5):
        shop = shops[n % 2]
        r = submit(ledger, shop, retail_body(shop, "5000.00"))
        assert r.status_code == 201, r.text
        lists.append((shop, r.json()))
    year = year_of(lists[0][1])
    # 5 x 5,000.00 = 25,000.00 used of 26,000.00.
    assert quota_used(ledger, BUYER, year) == Decimal("25000.00")

    before = ledger.log_state()
    r = submit(ledger, shops[0], retail_body(shops[0], "5000.00"))
    # 25,000.00 + 5,000.00 = 30,000.00 > 26,000.00.
    assert r.status_code == 409, r.text
    assert r.json()["rule"] == "quota_exceeded"
    assert ledger.log_state() == before

    # A green list with duties outstanding waits in awaiting_payment: it may be withdrawn.
    shop, first = lists[0]
    assert first["status"] == "awaiting_payment"
    r = ledger.post(
        f"/v1/declarations/{first['id']}/withdrawal", shop.token_name, {"reason": "order cancelled"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "withdrawn"
    # 25,000.00 - 5,000.00 = 20,000.00.
    assert quota_used(ledger, BUYER, year) == Decimal("20000.00")
    again = ledger.post(
        f"/v1/declarations/{first['id']}/withdrawal", shop.token_name, {"reason": "twice"}
    )
    assert again.status_code == 409 and again.json()["current_status"] == "withdrawn"
    assert quota_used(ledger, BUYER, year) == Decimal("20000.00")  # given back once only

    r = submit(ledger, shops[0], retail_body(shops[0], "5000.00"))
    assert r.status_code == 201, r.text
    # 20,000.00 + 5,000.00 = 25,000.00; then 1,000.00 more reaches the limit exactly ...
    r = submit(ledger, shops[1], retail_body(shops[1], "1000.00"))
    assert r.status_code == 201, r.text
    assert quota_used(ledger, BUYER, year) == Decimal("26000.00")
    # ... and one fen more is over it.
    r = submit(ledger, shops[1], retail_body(shops[1], "0.01"))
    assert r.status_code == 409 and r.json()["rule"] == "quota_exceeded"
    # Another buyer is not affected.
    r = submit(ledger, shops[1], retail_body(shops[1], "5000.00", buyer=make_resident_id(4)))
    assert r.status_code == 201, r.text


def test_an_officer_rejection_gives_the_amount_back(ledger):
    # A dishonest enterprise never gets green: its lists wait in document review, where an
    # officer may reject them. (Medicaments, the watched goods of the sample book, are not on
    # the positive list, so a retail list of them is a 422 at its hs_code.)
    shop = onboard(ledger)
    r = ledger.post(
        f"/v1/enterprises/{shop.uscc}/credit-class",
        "officer",
        {"credit_class": "dishonest", "reason": "false declarations, case XA-2026-117"},
    )
    assert r.status_code == 200, r.text
    lists = []
    for _ in range(5):
        r = submit(ledger, shop, retail_body(shop, "5000.00"))
        assert r.status_code == 201, r.text
        assert r.json()["channel"] == "yellow" and r.json()["status"] == "document_review"
        assert "credit_class:dishonest" in r.json()["risk_reasons"]
        lists.append(r.json())
    year = year_of(lists[0])
    assert quota_used(ledger, BUYER, year) == Decimal("25000.00")
    r = submit(ledger, shop, retail_body(shop, "5000.00"))
    assert r.status_code == 409 and r.json()["rule"] == "quota_exceeded"

    r = ledger.post(
        f"/v1/declarations/{lists[0]['declaration_no']}/rejection",
        "officer",
        {"reason": "invoice does not match the goods"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "rejected"
    # 25,000.00 - 5,000.00 = 20,000.00.
    assert quota_used(ledger, BUYER, year) == Decimal("20000.00")

    # Released after review, the list still owes VAT (5000.00 x 13% x 70% = 455.00) and
    # keeps its quota; withdrawn from awaiting_payment, it gives it back too.
    r = ledger.post(f"/v1/declarations/{lists[1]['id']}/release", "officer", {})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "awaiting_payment"
    assert r.json()["duties"]["outstanding"] == "455.00"
    assert quota_used(ledger, BUYER, year) == Decimal("20000.00")
    r = ledger.post(
        f"/v1/declarations/{lists[1]['id']}/withdrawal", shop.token_name, {"reason": "refund"}
    )
    assert r.status_code == 200, r.text
    # 20,000.00 - 5,000.00 = 15,000.00: two more lists of 5,000 fit, a third does not.
    assert quota_used(ledger, BUYER, year) == Decimal("15000.00")
    for _ in range(2):
        r = submit(ledger, shop, retail_body(shop, "5000.00"))
        assert r.status_code == 201, r.text
    r = submit(ledger, shop, retail_body(shop, "5000.00"))
    assert r.status_code == 409 and r.json()["rule"] == "quota_exceeded"
    assert quota_used(ledger, BUYER, year) == Decimal("25000.00")


def fill_to_22000(ledger: Ledger, shop: Tenant) -> int:
    """5 x 4,400.00 = 22,000.00 of the buyer's year used; returns the year."""
    year = 0
    for _ in range(5):
        r = submit(ledger, shop, retail_body(shop, "4400.00"))
        assert r.status_code == 201, r.text
        year = year_of(r.json())
    assert quota_used(ledger, BUYER, year) == Decimal("22000.00")
    return year


def test_two_concurrent_lists_never_both_squeeze_under_the_limit(ledger):
    shop = onboard(ledger)
    year = fill_to_22000(ledger, shop)
    # 22,000.00 + 4,000.00 = 26,000.00 fits once; a second would make 30,000.00.
    barrier = threading.Barrier(8)
    results: list[Any] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def race() -> None:
        body = retail_body(shop, "4000.00")
        barrier.wait()
        try:
            r = submit(ledger, shop, body)
        except BaseException as e:  # re-raised below, in the test's thread
            with lock:
                errors.append(e)
            return
        with lock:
            results.append(r)

    threads = [threading.Thread(target=race) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    codes = sorted(r.status_code for r in results)
    assert codes == [201] + [409] * 7, [r.text for r in results]
    assert {r.json()["rule"] for r in results if r.status_code == 409} == {"quota_exceeded"}
    assert quota_used(ledger, BUYER, year) == Decimal("26000.00")
    assert ledger.get("/v1/audit/verify", "auditor").json()["ok"] is True


RACER = r"""
import json, sys, time
from pathlib import Path

import msgspec

from api.services import load_zones
from domain.declaration import SubmitDeclaration
from domain.errors import Conflict
from domain.events import Actor
from ledger.application import LedgerApplication
from ledger.commands import Idempotency, Ledger
from ledger.database import parse_database_url
from tests.samples import rules_without_draws

job = json.loads(Path(sys.argv[1]).read_text())
app = LedgerApplication(parse_database_url(job["url"]))
try:
    ledger = Ledger(app, load_zones(None), rules=rules_without_draws())
    body = msgspec.convert(job["body"], SubmitDeclaration)
    actor = Actor(name=job["name"], role="enterprise", enterprise=job["uscc"])
    idem = Idempotency(job["name"], job["key"], "POST", "/v1/declarations")
    Path(job["ready"]).touch()
    while not Path(job["go"]).exists():
        time.sleep(0.001)
    try:
        out = ledger.submit_declaration(body, actor, idem)
        print(json.dumps({"status": out.status_code, "number": out.body.declaration_no}))
    except Conflict as e:
        print(json.dumps({"status": 409, "rule": e.rule}))
finally:
    app.close()
"""


@pytest.mark.postgres
def test_two_processes_on_postgresql_never_both_squeeze_under_the_limit(postgres_url, tmp_path):
    with running_ledger(postgres_url) as ledger:
        shop = onboard(ledger)
        year = fill_to_22000(ledger, shop)
    script = tmp_path / "racer.py"
    script.write_text(RACER)
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs: list[subprocess.Popen[str]] = []
    try:
        for n in range(4):
            job = tmp_path / f"job{n}.json"
            ready = tmp_path / f"ready{n}"
            job.write_text(
                json.dumps(
                    {
                        "url": postgres_url,
                        "name": shop.token_name,
                        "uscc": shop.uscc,
                        "key": f"racer-{n}",
                        "body": retail_body(shop, "4000.00"),
                        "ready": str(ready),
                        "go": str(go),
                    }
                )
            )
            proc = subprocess.Popen(
                [sys.executable, str(script), str(job)],
                cwd=REPO,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            procs.append(proc)
            # One at a time up to the start line: applications that open the store at the
            # same instant race on its DDL (see the report), which is not what this tests.
            deadline = time.monotonic() + 60
            while not ready.exists():
                if proc.poll() is not None:
                    pytest.fail(f"racer {n} exited early: {proc.communicate()[1]}")
                assert time.monotonic() < deadline, f"racer {n} never got ready"
                time.sleep(0.01)
        go.touch()  # all four submit at once
        outcomes = []
        for proc in procs:
            out, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err
            outcomes.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert sorted(o["status"] for o in outcomes) == [201, 409, 409, 409], outcomes
    assert {o["rule"] for o in outcomes if o["status"] == 409} == {"quota_exceeded"}

    # The write side agrees: 22,000.00 + 4,000.00 = 26,000.00, one list more and no other.
    from ledger.application import LedgerApplication
    from ledger.database import parse_database_url

    app = LedgerApplication(parse_database_url(postgres_url))
    try:
        state = app.load(quota_stream(app, BUYER, year))
        assert state.used == Decimal("26000.00")
        assert len(state.by_declaration) == 6
    finally:
        app.close()


# -- zones and the calendar year ---------------------------------------------------------


def test_bonded_ecommerce_only_from_zones_that_permit_it(ledger):
    # The export processing zone permits processing and storage only.
    epz = onboard(ledger, zone="XEPZ")
    before = ledger.log_state()
    for mode in ("1210", "1239"):
        r = submit(ledger, epz, retail_body(epz, "4000.00", trade_mode=mode, zone="XEPZ"))
        assert r.status_code == 409, r.text
        assert r.json()["rule"] == "zone_not_permitted"
    assert ledger.log_state() == before
    assert quota_used(ledger, BUYER, datetime.now(SHANGHAI).year) == 0
    # 9610 is direct mail, not bonded: tests/e2e/test_direct_mail.py (no permit needed).
    # The type B logistics centre holds the permit.
    xxlc = onboard(ledger, zone="XXLC")
    r = submit(ledger, xxlc, retail_body(xxlc, "4000.00", zone="XXLC"))
    assert r.status_code == 201, r.text


def test_the_yearly_quota_follows_the_calendar_year_in_china_time(database_url):
    """At 2026-12-31T16:00Z it is already 2027 in China (UTC+8): a fresh year's quota."""
    from api.services import load_zones
    from domain.assessment import ClearanceRules
    from domain.declaration import SubmitDeclaration
    from domain.errors import Conflict
    from domain.events import Actor
    from ledger.application import LedgerApplication
    from ledger.commands import Idempotency
    from ledger.commands import Ledger as Commands
    from ledger.database import parse_database_url
    from tests.samples import rules_without_draws

    with running_ledger(database_url) as ledger:
        shop = onboard(ledger)
    # The default tables end in 2026-12: give January 2027 December's rates for this test.
    base = rules_without_draws()
    december = base.duties.rates_for("2026-12")
    january = msgspec.structs.replace(december, month="2027-01", source="test: copy of 2026-12")
    tables = msgspec.structs.replace(
        base.duties, exchange_rates=[*base.duties.exchange_rates, january]
    )
    now = [datetime(2026, 12, 31, 15, 0, tzinfo=UTC)]
    app = LedgerApplication(parse_database_url(database_url))
    try:
        commands = Commands(
            app,
            load_zones(None),
            clock=lambda: now[0],
            rules=ClearanceRules(risk=base.risk, duties=tables),
        )
        actor = Actor(name=shop.token_name, role="enterprise", enterprise=shop.uscc)

        def submit_at(moment: datetime) -> Any:
            now[0] = moment
            body = msgspec.convert(retail_body(shop, "5000.00"), SubmitDeclaration)
            idem = Idempotency(shop.token_name, new_key(), "POST", "/v1/declarations")
            return commands.submit_declaration(body, actor, idem)

        # 2026-12-31 23:00 to 23:59:59 in China: 5 x 5,000.00 = 25,000.00 of 2026.
        for minute in range(5):
            out = submit_at(datetime(2026, 12, 31, 15, minute * 10, tzinfo=UTC))
            assert out.status_code == 201
            assert out.body.declaration_no[4:8] == "2026"
        with pytest.raises(Conflict) as refused:
            submit_at(datetime(2026, 12, 31, 15, 59, 59, tzinfo=UTC))
        assert refused.value.rule == "quota_exceeded"
        # 16:00:00Z is 2027-01-01 00:00:00 in China (still 2026 in UTC): a new year's quota.
        out = submit_at(datetime(2026, 12, 31, 16, 0, 0, tzinfo=UTC))
        assert out.status_code == 201
        assert out.body.declaration_no[4:8] == "2027"
        used = {
            y: app.load(quota_stream(app, BUYER, y)).used  # type: ignore[union-attr]
            for y in (2026, 2027)
        }
        assert used == {2026: Decimal("25000.00"), 2027: Decimal("5000.00")}
    finally:
        app.close()
