"""Issue #16's value bypasses replayed over HTTP on both stores: a typo of a price and an
absurd quantity go to document review naming the figure, and neither a withdrawn declaration
nor an absurd line moves the item's price history (domain/value_checks.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from domain.unit_values import unit_values_id
from tests.samples import line
from tests.support import Ledger, Tenant, declaration_body, new_key, onboard, running_ledger

TYPO = "999999999999999.9999"


@pytest.fixture
def ledger(database_url: str) -> Iterator[Ledger]:
    with running_ledger(database_url) as ledger:
        yield ledger


def _declare(ledger: Ledger, t: Tenant, price: str = "420.00", quantity: str = "10") -> Any:
    body = declaration_body(t.uscc, t.book_no, lines=[line(1, quantity=quantity, unit_price=price)])
    r = ledger.post("/v1/declarations", t.token_name, body, key=new_key())
    assert r.status_code == 201, r.text
    return r.json()


def _history(ledger: Ledger, t: Tenant) -> list[str]:
    """The prices of the item's history, as the auditor reads its stream."""
    stream = unit_values_id(t.book_no, 1, "EUR")
    r = ledger.get(f"/v1/streams/{stream}/events", "auditor")
    if r.status_code == 404:
        return []
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    return [e["payload"]["unit_price"] for e in items if e["type"] == "UnitValueReleased"]


def test_a_typo_goes_to_review_naming_it_and_once_withdrawn_leaves_no_trace(
    ledger: Ledger,
) -> None:
    t = onboard(ledger)
    for _ in range(3):
        assert _declare(ledger, t)["status"] == "released"
    typo = _declare(ledger, t, TYPO, quantity="1")
    assert (typo["status"], typo["channel"]) == ("document_review", "yellow")
    # The figure, and what it is in CNY at the month's customs rate.
    price, value = typo["risk_reasons"]
    assert price.startswith(f"unit_price_absurd:line 1: {TYPO} (CNY ")
    assert price.endswith(") over CNY 10000000000")
    assert value.startswith("line_value_absurd:line 1: CNY ")
    r = ledger.post(f"/v1/declarations/{typo['id']}/withdrawal", t.token_name, {"reason": "typo"})
    assert r.status_code == 200, r.text
    # The symptom: `unit_value_low: 420.00 vs mean 142857142857502.8571`. No more.
    after = _declare(ledger, t)
    assert (after["status"], after["risk_reasons"]) == ("released", [])
    assert _history(ledger, t) == ["420.00"] * 4


def test_an_absurd_quantity_goes_to_review_and_released_still_moves_no_baseline(
    ledger: Ledger,
) -> None:
    t = onboard(ledger)
    huge = _declare(ledger, t, quantity="999999999999999")
    assert (huge["status"], huge["channel"]) == ("document_review", "yellow")
    assert huge["risk_reasons"][0] == "quantity_absurd:line 1: 999999999999999 over 1000000000"
    r = ledger.post(f"/v1/declarations/{huge['id']}/release", "officer", {})
    assert r.status_code == 200 and r.json()["status"] == "released", r.text
    assert _history(ledger, t) == []
    for _ in range(3):
        assert _declare(ledger, t)["risk_reasons"] == []
    assert _history(ledger, t) == ["420.00"] * 3
    # Now the history speaks: a tenth of the price is low, a thousandth absurd.
    assert _declare(ledger, t, "42.00")["risk_reasons"] == [
        "unit_value_low:line 1: 42.00 vs median 420.00, MAD 0.00"
    ]
    assert _declare(ledger, t, "0.42")["risk_reasons"] == [
        "unit_price_absurd:line 1: 0.42 vs median 420.00, MAD 0.00"
    ]
    assert _history(ledger, t) == ["420.00"] * 3  # both wait for review


def test_a_new_items_first_declaration_above_the_value_goes_to_review(ledger: Ledger) -> None:
    t = onboard(ledger)
    dear = _declare(ledger, t, quantity="5000")  # 5,000 laptops: over CNY 10 million
    assert dear["status"] == "document_review"
    assert dear["risk_reasons"][0].startswith("first_value_high:line 1: item 1 worth CNY ")
