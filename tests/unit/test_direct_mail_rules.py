"""9610 direct mail as domain decisions: a parcel declared `direct_in` in no book, taxed as
retail and counted against the buyer's quota; the trade mode bound to its flow."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.assessment import is_retail
from domain.declaration import DeclarationSubmitted, PayDuties
from domain.duty_tables import DEFAULT_TABLES
from domain.errors import Conflict, FieldError, ValidationFailed
from domain.exits import StockReserved
from domain.movements import GateIn, ItemStock, LotCreated, item_stock_id
from domain.quota import BuyerQuota
from domain.reference import FLOWS, RETAIL_TRADE_MODES, TRADE_MODES, mode_allowed
from domain.unit_values import UnitValues, unit_values_id
from tests.unit.domain_world import (
    BUYER,
    NOW,
    World,
    buyer_quota_id,
    company,
    gate,
    line,
    lines,
    retail_body,
)

D = Decimal


def direct_body(uscc: str, amount: str = "2000.00", **overrides: object) -> dict[str, object]:
    """A 9610 parcel of one laptop at `amount` CNY, flown in, in no book."""
    body = retail_body(
        uscc,
        "unused",
        amount,
        flow="direct_in",
        trade_mode="9610",
        transport={"mode": "air", "reference": "CA908-20261120"},
    )
    body.pop("account_book")
    return body | overrides


def _world() -> tuple[World, str]:
    w = World()
    uscc = w.enterprise(1)
    w.book("B1", uscc)
    return w, uscc


def test_a_9610_parcel_is_taxed_as_retail_and_counts_against_the_quota_in_no_book():
    w, uscc = _world()
    view = w.submit_body(direct_body(uscc, "2000.00"))
    assert (view.flow, view.trade_mode, view.account_book) == ("direct_in", "9610", None)
    # 2000.00 x 13% x 70% = 182.00, tariff 0: a retail list like 1210's.
    assert view.duties is not None and view.duties.vat == D("182.00")
    assert view.status == "awaiting_payment"
    quota = w.uow.load(buyer_quota_id(BUYER, NOW.year), BuyerQuota)
    assert quota is not None and quota.used == D("2000.00")
    # An import: direction digit 1 of the number.
    assert view.declaration_no[8] == "1"
    # Its unit value joins the declarant's own history, never a book's, once it is released
    # (by the payment here: domain/unit_values.py).
    own = unit_values_id(f"direct:{uscc}", 1, "CNY")
    assert w.uow.load(own, UnitValues) is None
    pay = PayDuties(amount=D("182.00"), currency="CNY", reference="UP-0")
    assert w.decide("payment", view.id, pay, company(uscc)).status == "released"
    history = w.uow.load(own, UnitValues)
    assert history is not None and history.prices == [D("2000.00")]
    assert w.uow.load(unit_values_id("B1", 1, "CNY"), UnitValues) is None


def test_the_release_of_a_parcel_reserves_no_stock_and_makes_no_lot():
    w, uscc = _world()
    view = w.submit_body(direct_body(uscc, "2000.00"))
    pay = PayDuties(amount=D("182.00"), currency="CNY", reference="UP-1")
    released = w.decide("payment", view.id, pay, company(uscc))
    assert released.status == "released"
    recorded = [e for events in w.uow.streams.values() for e in events]
    assert not [e for e in recorded if isinstance(e, StockReserved | LotCreated)]
    assert w.uow.load(item_stock_id("B1", 1), ItemStock) is None
    # No gate admits it into a book: a parcel is not a first-line import.
    before = w.snapshot()
    with pytest.raises(Conflict) as refused:
        w.move(GateIn(declaration=str(view.id), lines=lines((1, "1"))), gate("XCBZ"))
    assert refused.value.rule == "wrong_flow"
    assert w.snapshot() == before


@pytest.mark.parametrize(
    ("flow", "trade_mode"),
    [
        ("second_line_out", "9610"),
        ("first_line_in", "9610"),
        ("direct_in", "1210"),
        ("direct_in", "1239"),
        ("direct_in", "0110"),
    ],
)
def test_a_mode_on_the_wrong_flow_is_refused_at_trade_mode_with_its_rule(flow, trade_mode):
    w, uscc = _world()
    body = direct_body(uscc, flow=flow, trade_mode=trade_mode)
    if flow != "direct_in":
        body["account_book"] = "B1"
    before = w.snapshot()
    with pytest.raises(ValidationFailed) as refused:
        w.submit_body(body)
    [error] = [e for e in refused.value.errors if e.loc == "$.trade_mode"]
    assert error.rule == "mode_not_allowed_for_flow"
    assert w.snapshot() == before


def test_a_parcel_naming_a_book_is_refused_at_account_book():
    w, uscc = _world()
    before = w.snapshot()
    with pytest.raises(ValidationFailed) as refused:
        w.submit_body(direct_body(uscc, account_book="B1"))
    assert [e.loc for e in refused.value.errors] == ["$.account_book"]
    assert w.snapshot() == before


def test_every_other_flow_still_needs_its_book():
    w, uscc = _world()
    body = direct_body(uscc, flow="first_line_in", trade_mode="5034", ecommerce=None)
    with pytest.raises(ValidationFailed) as refused:
        w.submit_body(body)
    assert refused.value.errors == [
        FieldError("$.account_book", "a first_line_in declaration names its account book")
    ]


def test_a_parcels_lines_come_from_abroad_and_name_their_origin():
    w, uscc = _world()
    body = direct_body(
        uscc, lines=[line(1, quantity="1", unit_price="2000.00", origin_country=None)]
    )
    with pytest.raises(ValidationFailed) as refused:
        w.submit_body(body)
    assert [e.loc for e in refused.value.errors] == ["$.lines[0].origin_country"]


@pytest.mark.parametrize("flow", FLOWS)
@pytest.mark.parametrize("trade_mode", sorted(TRADE_MODES))
def test_every_retail_pair_a_flow_admits_is_assessable_and_9610_only_arrives(flow, trade_mode):
    """Exhaustive over the reference data: the pairs admitted and the pairs taxed agree."""
    allowed = mode_allowed(flow, trade_mode)
    assert (trade_mode == "9610" and allowed) == (trade_mode == "9610" and flow == "direct_in")
    assert not (flow == "direct_in" and allowed and trade_mode != "9610")
    if allowed and is_retail(flow, trade_mode):
        assert trade_mode in RETAIL_TRADE_MODES
        assert DEFAULT_TABLES.is_assessable(flow, trade_mode)


def test_the_submission_event_keeps_no_book_for_a_parcel():
    w, uscc = _world()
    view = w.submit_body(direct_body(uscc))
    stream = w.uow.declaration_id(str(view.id))
    assert stream is not None
    [submitted] = [e for e in w.uow.events_of(stream) if isinstance(e, DeclarationSubmitted)]
    assert submitted.facts.account_book is None
    assert submitted.facts.zone == "XCBZ"


@settings(max_examples=25, deadline=None)
@given(st.lists(st.decimals(min_value=1, max_value=5000, places=2), min_size=1, max_size=12))
def test_parcels_of_one_buyer_fill_the_quota_are_taxed_as_retail_and_touch_no_book(amounts):
    """For any run of 9610 parcels: the quota holds the sum of the accepted ones and never
    passes CNY 26,000, each pays about 13% x 70% of its amount, and none writes a stock or
    a lot."""
    w, uscc = _world()
    accepted = D(0)
    for amount in amounts:
        before = w.snapshot()
        try:
            view = w.submit_body(direct_body(uscc, f"{amount:.2f}"))
        except Conflict as refused:
            assert refused.rule == "quota_exceeded"
            assert accepted + amount > D(26000)
            assert w.snapshot() == before
            continue
        accepted += amount
        assert view.duties is not None
        assert abs(view.duties.vat - amount * D("0.091")) <= D("0.01")
        assert view.duties.tariff == 0
    quota = w.uow.load(buyer_quota_id(BUYER, NOW.year), BuyerQuota)
    assert quota is not None and quota.used == accepted <= D(26000)
    recorded = [e for events in w.uow.streams.values() for e in events]
    assert not [e for e in recorded if isinstance(e, StockReserved | LotCreated)]
