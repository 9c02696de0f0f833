"""The built-in tariff covers the pilot's trade (issue #15 item 4), over HTTP: toys
(9503.00), which the 7-row tariff did not list, are registered, admitted, and sold into China
under general trade (0110) with their duties assessed at submission - never a `no tariff
rate` 422 that leaves the goods stuck in the zone."""

from __future__ import annotations

import pytest

from tests.support import declaration_body, new_key, onboard, running_ledger

TOYS = {"item_no": 9, "hs_code": "9503009999", "name": "Toys", "unit": "C62"}


def _toys_line(quantity: str) -> dict:
    return {
        "line_no": 1,
        "item_no": 9,
        "hs_code": "9503009999",
        "description": "Plush toys",
        "quantity": quantity,
        "unit": "C62",
        "unit_price": "25.00",
        "origin_country": "DE",
    }


@pytest.fixture
def ledger(sqlite_url):
    with running_ledger(sqlite_url) as ledger:
        yield ledger


def test_toys_registered_as_an_item_are_assessed_when_they_leave_into_china(ledger):
    tenant = onboard(ledger)
    r = ledger.post(f"/v1/account-books/{tenant.book_no}/items", "admin", {"items": [TOYS]})
    assert r.status_code == 201, r.text
    body = declaration_body(tenant.uscc, tenant.book_no, lines=[_toys_line("100")])
    imported = ledger.post("/v1/declarations", tenant.token_name, body, key=new_key())
    assert imported.status_code == 201 and imported.json()["status"] == "released", imported.text
    ledger.issue("gate-toys", "operator", zone="XCBZ")
    gate_in = {
        "kind": "gate_in",
        "declaration": imported.json()["id"],
        "lines": [{"line_no": 1, "quantity": "100"}],
    }
    assert ledger.post("/v1/movements", "gate-toys", gate_in, key=new_key()).status_code == 201

    exit_body = declaration_body(
        tenant.uscc,
        tenant.book_no,
        flow="second_line_out",
        trade_mode="0110",
        country="CN",
        currency="CNY",
        incoterm=None,
        freight="0",
        insurance=None,
        lines=[{**_toys_line("100"), "origin_country": None}],
    )
    domestic = ledger.post("/v1/declarations", tenant.token_name, exit_body, key=new_key())
    assert domestic.status_code == 201, domestic.text
    duties = domestic.json()["duties"]
    # 100 x CNY 25.00 = CNY 2,500.00: tariff 0% (9503), no consumption tax, VAT 13%.
    assert (duties["tariff"], duties["consumption_tax"], duties["vat"]) == (
        "0.00",
        "0.00",
        "325.00",
    )
    assert domestic.json()["status"] == "awaiting_payment"
