"""Submitting a declaration, decided directly (domain/submission.py, domain/assessment.py):
numbering, validation, the retail quota and mode, the zone's permits, the CNY value."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.assessment import check_zone_permits, is_retail, retail_mode, value_cny
from domain.clearance import DeclarationAssessed
from domain.declaration import (
    DeclaredLine,
    NumberSeries,
    WithdrawDeclaration,
    number_series_id,
)
from domain.documents import series_id
from domain.duty_tables import DEFAULT_TABLES
from domain.errors import Conflict, FieldError, ValidationFailed
from domain.quota import BuyerQuota
from domain.reference import DatedPermit, Zone
from domain.submission import decide_submission
from domain.unit_values import UnitValues, unit_values_id
from tests.samples import declaration_body, make_uscc
from tests.unit.domain_world import (
    BUYER,
    NOW,
    ZONES,
    World,
    buyer_quota_id,
    company,
    line,
    retail_body,
)

D = Decimal


def _world() -> tuple[World, str]:
    w = World()
    uscc = w.enterprise(1)
    w.book("B1", uscc)
    return w, uscc


def _assessed(w: World, declaration: object) -> DeclarationAssessed:
    stream = w.uow.declaration_id(str(declaration))
    assert stream is not None
    found = [e for e in w.uow.events_of(stream) if isinstance(e, DeclarationAssessed)]
    assert len(found) == 1
    return found[0]


def test_a_submission_takes_the_next_serial_of_its_series_in_the_same_write():
    w, uscc = _world()
    sub = w.submission(declaration_body(uscc, "B1"))
    decision = decide_submission(w.uow, sub, NOW)
    series = number_series_id("9007", 2026, "1")
    history = unit_values_id("B1", 1, "EUR")
    # Released at once, it files its checklist from the checklist series in the same write.
    checklists = series_id("checklist", "9007", 2026, "I")
    assert [p.id for p in decision.saves] == [series, sub.declaration_id, history, checklists]
    assert decision.answer.declaration_no == "900720261000000001"
    assert decision.answer.status == "released" and decision.answer.channel == "green"
    w.uow.commit(decision)
    second = w.submit(uscc, "B1")
    assert second.declaration_no == "900720261000000002"
    assert w.uow.load(series, NumberSeries) == NumberSeries(id=series, version=2, last_serial=2)
    # The number names the declaration: version n of the series issued serial n.
    assert w.uow.declaration_id("900720261000000001") == sub.declaration_id
    assert w.uow.declaration_id("900720261000000002") == second.id
    assert w.uow.declaration_id("900720261000000003") is None
    # Another direction (second_line_in is an export from China's market) has its own series.
    assert w.submit(uscc, "B1", flow="second_line_in").declaration_no == "900720260000000001"
    # Every line of a released declaration is observed in its item's unit-value history.
    observed = w.uow.load(history, UnitValues)
    assert observed is not None
    assert (observed.released, observed.prices) == (3, [D("420.00")] * 3)


def test_the_number_and_the_rate_month_take_the_date_in_shanghai():
    w, uscc = _world()
    new_year_in_xian = datetime(2026, 12, 31, 16, 30, tzinfo=UTC)  # 2027-01-01 00:30 there
    view = w.submit(uscc, "B1", now=new_year_in_xian)
    assert view.declaration_no == "900720271000000001"
    # January 2027 has no customs rates: the statistic stays at zero (nothing to pay here).
    assert _assessed(w, view.id).value_cny == 0
    november = w.submit(uscc, "B1")
    # 1000 x EUR 420.00 at November's customs rate 8.2437.
    assert _assessed(w, november.id).value_cny == D("3462354.00")


def test_value_cny_uses_the_months_customs_rate_and_is_zero_without_one():
    lines = [
        DeclaredLine(
            line_no=1,
            item_no=1,
            hs_code="8471300000",
            description="Laptop computers",
            quantity=D(3),
            unit="C62",
            unit_price=D("10.50"),
            origin_country="DE",
            destination_item_no=None,
            goods_status=None,
        )
    ]
    assert value_cny(lines, "USD", date(2026, 10, 31), DEFAULT_TABLES) == D("224.30")  # 7.1205
    assert value_cny(lines, "USD", date(2026, 12, 1), DEFAULT_TABLES) == D("223.94")  # 7.1092
    assert value_cny(lines, "CNY", date(2026, 11, 2), DEFAULT_TABLES) == D("31.50")
    assert value_cny(lines, "USD", date(2025, 11, 2), DEFAULT_TABLES) == 0  # no table
    assert value_cny(lines, "CHF", date(2026, 11, 2), DEFAULT_TABLES) == 0  # no rate in it


def test_an_unregistered_declarant_is_refused_at_declarant_and_nothing_is_saved():
    w = World()
    stranger = make_uscc(99)
    w.book("B9", stranger)
    before = w.snapshot()
    with pytest.raises(ValidationFailed) as refused:
        w.submit(stranger, "B9")
    assert refused.value.errors == [FieldError("$.declarant", "enterprise is not registered")]
    assert w.snapshot() == before


def test_one_refusal_names_every_bad_field_and_saves_nothing():
    w, uscc = _world()
    other = w.enterprise(2)
    w.book("B2", other)
    body = declaration_body(
        uscc,
        "B2",  # another enterprise's book
        trade_mode="9999",
        lines=[line(1, quantity="1.5", origin_country=None), line(2, line_no=1)],
    )
    before = w.snapshot()
    with pytest.raises(ValidationFailed) as refused:
        w.uow.run(decide_submission, w.submission(body), NOW)
    assert [e.loc for e in refused.value.errors] == [
        "$.trade_mode",
        "$.account_book",
        "$.lines[0].quantity",
        "$.lines[0].origin_country",
        "$.lines[1].line_no",
    ]
    assert w.snapshot() == before


@pytest.mark.parametrize(
    ("item_no", "status", "channel"),
    [(1, "released", "green"), (3, "document_review", "yellow"), (4, "inspection", "red")],
)
def test_the_risk_channel_decides_where_a_new_declaration_waits(item_no, status, channel):
    w, uscc = _world()
    view = w.submit(uscc, "B1", lines=[line(item_no)])
    assert (view.status, view.channel) == (status, channel)


def test_a_dishonest_declarant_never_gets_green():
    w = World()
    uscc = w.enterprise(3, credit_class="dishonest")
    w.book("B3", uscc)
    view = w.submit(uscc, "B3")
    assert (view.status, view.risk_reasons) == ("document_review", ["credit_class:dishonest"])


@pytest.mark.parametrize(
    ("flow", "trade_mode", "retail"),
    [
        ("direct_in", "9610", True),
        ("second_line_out", "9610", False),
        ("second_line_out", "1210", True),
        ("second_line_out", "1239", True),
        ("direct_in", "1210", False),
        ("first_line_out", "9610", False),
        ("second_line_out", "0110", False),
        ("first_line_in", "1210", False),
    ],
)
def test_a_retail_list_is_a_9610_parcel_arriving_or_bonded_stock_leaving(flow, trade_mode, retail):
    assert is_retail(flow, trade_mode) is retail


def test_the_retail_mode_is_full_tax_only_over_cny_5000():
    assert retail_mode(D("5000")) == "within_limits"
    assert retail_mode(D("5000.01")) == "full_tax"


def test_a_retail_list_uses_the_buyers_quota_in_the_same_write_and_pays_70_percent():
    w, uscc = _world()
    sub = w.submission(retail_body(uscc, "B1", "2000.00"))
    decision = decide_submission(w.uow, sub, NOW)
    quota = buyer_quota_id(BUYER, 2026)
    assert quota in [p.id for p in decision.saves]
    w.uow.commit(decision)
    used = w.uow.load(quota, BuyerQuota)
    assert used is not None and used.used == D("2000.00")
    assert used.by_declaration == {sub.declaration_id: D("2000.00")}
    assessed = _assessed(w, sub.declaration_id)
    assert (assessed.duties.mode, assessed.quota_year) == ("retail_within_limits", 2026)
    # Laptops: tariff 0, VAT 13% at 70%: 2000 x 0.13 x 0.7.
    assert decision.answer.duties is not None and decision.answer.duties.total == D("182.00")
    assert decision.answer.status == "awaiting_payment"


def test_a_single_item_over_cny_5000_pays_full_tax_and_still_counts_against_the_quota():
    w, uscc = _world()
    view = w.submit_body(retail_body(uscc, "B1", "6000.00"))
    assert _assessed(w, view.id).duties.mode == "retail_full_tax"
    assert view.duties is not None and view.duties.vat == D("780.00")  # 13%, no reduction
    assert w.uow.load(buyer_quota_id(BUYER, 2026), BuyerQuota).used == D("6000.00")  # type: ignore[union-attr]


def test_several_items_over_cny_5000_are_not_a_retail_list():
    w, uscc = _world()
    body = retail_body(uscc, "B1", "6000.00", lines=[line(1, quantity="2", unit_price="3000")])
    with pytest.raises(ValidationFailed) as refused:
        w.uow.run(decide_submission, w.submission(body), NOW)
    assert [e.loc for e in refused.value.errors] == ["$.ecommerce.order.amount"]


def test_the_buyers_yearly_quota_refuses_a_list_that_goes_over_cny_26000():
    w, uscc = _world()
    w.submit_body(retail_body(uscc, "B1", "20000.00"))
    before = w.snapshot()
    with pytest.raises(Conflict) as refused:
        w.submit_body(retail_body(uscc, "B1", "6000.01"))
    assert refused.value.rule == "quota_exceeded"
    assert w.snapshot() == before  # not even a number was taken
    assert w.submit_body(retail_body(uscc, "B1", "6000.00")).status == "awaiting_payment"


def _late_permit_zones() -> dict[str, Zone]:
    """XCBZ, permitted bonded e-commerce only from 2026-12-01 (Xi'an's date)."""
    xcbz = ZONES["XCBZ"]
    permits = [p for p in xcbz.permits if p.permit != "bonded_ecommerce"]
    permits.append(DatedPermit(permit="bonded_ecommerce", valid_from=date(2026, 12, 1)))
    return ZONES | {"XCBZ": msgspec.structs.replace(xcbz, permits=permits)}


def test_a_bonded_retail_list_before_the_zones_permit_is_refused_zone_not_permitted():
    w, uscc = _world()
    zones = _late_permit_zones()
    before = w.snapshot()
    sub = w.submission(retail_body(uscc, "B1", "100.00"), zones=zones)
    with pytest.raises(Conflict) as refused:
        w.uow.run(decide_submission, sub, NOW)
    assert refused.value.rule == "zone_not_permitted"
    assert w.snapshot() == before
    # The permit's first day in Xi'an, still November 30th in UTC: accepted.
    first_day = datetime(2026, 11, 30, 16, 30, tzinfo=UTC)
    sub = w.submission(retail_body(uscc, "B1", "100.00"), zones=zones)
    assert w.uow.run(decide_submission, sub, first_day).status == "awaiting_payment"
    # A direct (9610) list does not draw on the zone's bonded stock: no permit needed.
    direct = w.submission(
        retail_body(uscc, "B1", "100.00", trade_mode="9610", flow="direct_in", account_book=None)
    )
    check_zone_permits(direct.cmd, zones["XCBZ"], date(2026, 11, 20))


def test_a_green_outbound_declaration_reserves_its_stock_at_submission_or_is_refused_whole():
    w, uscc = _world()
    export = {"flow": "first_line_out", "lines": [line(1, quantity="30")]}
    before = w.snapshot()
    with pytest.raises(Conflict) as refused:
        w.submit(uscc, "B1", **export)
    assert (refused.value.rule, refused.value.current_status) == ("insufficient_stock", None)
    assert w.snapshot() == before
    w.admit(uscc, "B1", "100")
    view = w.submit(uscc, "B1", **export)
    assert view.status == "released"
    stock = w.stock("B1")
    assert (stock.pending_out, stock.available_of("bonded")) == (D(30), D(70))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(["first_line_in", "second_line_in", "refused"]), max_size=8))
def test_serials_run_without_gaps_and_a_refused_submission_takes_no_number(flows):
    w, uscc = _world()
    numbered: dict[str, list[object]] = {"1": [], "0": []}
    for flow in flows:
        if flow == "refused":
            with pytest.raises(ValidationFailed):
                w.submit(uscc, "B1", trade_mode="0000")
            continue
        view = w.submit(uscc, "B1", flow=flow)
        direction = "1" if flow == "first_line_in" else "0"
        numbered[direction].append(view.id)
        assert view.declaration_no == f"90072026{direction}{len(numbered[direction]):09d}"
    for direction, ids in numbered.items():
        for serial, declaration in enumerate(ids, 1):
            assert w.uow.declaration_id(f"90072026{direction}{serial:09d}") == declaration


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(1, 9000).map(lambda n: D(n)), st.booleans()),
        min_size=1,
        max_size=10,
    )
)
def test_the_quota_counts_exactly_the_lists_not_withdrawn_and_never_passes_cny_26000(orders):
    w, uscc = _world()
    quota = buyer_quota_id(BUYER, 2026)
    counted = D(0)
    for amount, withdrawn in orders:
        try:
            view = w.submit_body(retail_body(uscc, "B1", f"{amount}.00"))
        except Conflict as refused:
            assert refused.rule == "quota_exceeded" and counted + amount > 26000
            continue
        counted += amount
        if withdrawn:
            w.decide("withdrawal", view.id, WithdrawDeclaration(reason="cancelled"), company(uscc))
            counted -= amount
        state = w.uow.load(quota, BuyerQuota)
        assert state is not None and state.used == counted <= 26000
        assert sum(state.by_declaration.values(), D(0)) == counted
