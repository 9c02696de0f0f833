"""Retail lists decided directly (domain/retail.py): one figure - the order amount - for the
limits, the quota and the tax; the positive list in force on the day."""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.clearance import DeclarationAssessed
from domain.errors import Conflict, ValidationFailed
from domain.quota import BuyerQuota, standing
from domain.reference_data import (
    PublishPositiveList,
    ReferenceRegister,
    publish,
    register_id,
)
from domain.retail import on_positive_list
from domain.unit_of_work import Decision
from tests.unit.domain_world import (
    ADMIN,
    BUYER,
    NOW,
    World,
    buyer_quota_id,
    ecommerce,
    line,
    retail_body,
)

D = Decimal
CENT = D("0.01")


def _world() -> tuple[World, str]:
    w = World()
    uscc = w.enterprise(1)
    w.book("B1", uscc)
    return w, uscc


def _publish(w: World, hs_codes: list[str], effective_from: date = date(2026, 1, 1)) -> None:
    pending = w.uow.pending(register_id("positive-list"), ReferenceRegister)
    body = PublishPositiveList(effective_from=effective_from, hs_codes=hs_codes, source="test")
    answer = publish(pending, "positive-list", body, ADMIN, NOW)
    w.uow.commit(Decision([pending], answer))


def _assessed(w: World, declaration: object) -> DeclarationAssessed:
    stream = w.uow.declaration_id(str(declaration))
    assert stream is not None
    (found,) = [e for e in w.uow.events_of(stream) if isinstance(e, DeclarationAssessed)]
    return found


def _list(uscc: str, lines: list[dict[str, Any]], order: str, **fields: Any) -> dict[str, Any]:
    return retail_body(uscc, "B1", order, lines=lines, ecommerce=ecommerce(order), **fields)


def _rule(refused: pytest.ExceptionInfo[ValidationFailed]) -> list[tuple[str, str | None]]:
    return [(e.loc, e.rule) for e in refused.value.errors]


# -- one figure --------------------------------------------------------------------------


def test_the_order_must_be_the_lines_plus_freight_plus_insurance_to_the_fen():
    w, uscc = _world()
    goods = [line(1, quantity="3", unit_price="333.3333")]  # 999.9999 -> 1,000.00
    before = w.snapshot()
    for order in ("999.99", "1000.01", "1050.00"):
        with pytest.raises(ValidationFailed) as refused:
            w.submit_body(_list(uscc, goods, order))
        assert _rule(refused) == [("$.ecommerce.order.amount", "order_amount_mismatch")]
    assert w.snapshot() == before
    view = w.submit_body(_list(uscc, goods, "1050.00", freight="49.99", insurance="0.01"))
    assert w.uow.load(buyer_quota_id(BUYER, 2026), BuyerQuota).used == D("1050.00")  # type: ignore[union-attr]
    # 1,050.00 x 13% x 70% = 95.55
    assert view.duties is not None and view.duties.vat == D("95.55")


def test_a_retail_list_in_a_foreign_currency_is_refused_at_its_currency():
    w, uscc = _world()
    with pytest.raises(ValidationFailed) as refused:
        w.submit_body(
            _list(uscc, [line(1, quantity="1", unit_price="100")], "100.00", currency="EUR")
        )
    assert _rule(refused) == [("$.currency", "retail_currency_not_cny")]


# What a platform may send: honest orders, and orders that say less (or more) than the goods.
lists = st.fixed_dictionaries(
    {
        "prices": st.lists(
            st.tuples(st.integers(1, 3), st.decimals(min_value=1, max_value=3000, places=2)),
            min_size=1,
            max_size=3,
        ),
        "freight": st.decimals(min_value=0, max_value=100, places=2),
        "insurance": st.decimals(min_value=0, max_value=20, places=2),
        "lie": st.sampled_from([D(0), D(0), D(0), D("-0.01"), D("-1000"), D("0.01")]),
    }
)


@settings(max_examples=60, deadline=None)
@given(st.lists(lists, min_size=1, max_size=10))
def test_tax_is_the_formula_on_the_order_and_the_quota_sums_accepted_orders(drawn):
    """For any lists of laptops (13% VAT, 0% tariff) with freight and insurance, honest or
    not: a list is accepted only when its order is goods + freight + insurance, its VAT is
    that order x 13% (x 70% within the CNY 5,000), and the buyer's `used` is the sum of the
    accepted orders, never over CNY 26,000."""
    w, uscc = _world()
    counted = D(0)
    for n, drawn_list in enumerate(drawn):
        goods = [
            line(1, line_no=k + 1, quantity=str(q), unit_price=str(p))
            for k, (q, p) in enumerate(drawn_list["prices"])
        ]
        value = sum((q * p for q, p in drawn_list["prices"]), D(0))
        total = value + drawn_list["freight"] + drawn_list["insurance"]
        order = total + drawn_list["lie"]
        if order <= 0:
            continue
        body = _list(
            uscc,
            goods,
            str(order),
            freight=str(drawn_list["freight"]),
            insurance=str(drawn_list["insurance"]),
        )
        single = len(goods) == 1 and goods[0]["quantity"] == "1"
        try:
            view = w.submit_body(body)
        except ValidationFailed as refused:
            rules = {e.rule for e in refused.errors}
            if order != total:
                assert "order_amount_mismatch" in rules, (n, refused.errors)
                assert rules <= {"order_amount_mismatch", "over_transaction_limit"}
            else:
                assert rules == {"over_transaction_limit"} and order > 5000 and not single
            continue
        except Conflict as refused:
            assert refused.rule == "quota_exceeded" and counted + order > 26000
            continue
        assert order == total
        counted += order
        within = order <= 5000
        vat = (order * D("0.13") * (D("0.7") if within else D(1))).quantize(CENT, ROUND_HALF_UP)
        assert view.duties is not None and (view.duties.tariff, view.duties.vat) == (0, vat)
        assert _assessed(w, view.id).duties.customs_value_cny == order
        used = w.uow.load(buyer_quota_id(BUYER, 2026), BuyerQuota)
        assert used is not None and used.used == counted <= 26000


def test_the_standing_adds_the_sealed_and_the_older_stream_and_never_goes_below_zero():
    assert standing(2026) == standing(2026, None)
    assert (standing(2026).used, standing(2026).remaining) == (D("0.00"), D("26000.00"))
    sealed = BuyerQuota(id=register_id("a"), version=1, used=D("20000.00"), by_declaration={})
    older = BuyerQuota(id=register_id("b"), version=1, used=D("7000.00"), by_declaration={})
    both = standing(2026, sealed, older)
    assert (both.year, both.limit, both.used, both.remaining) == (
        2026,
        D("26000.00"),
        D("27000.00"),
        D("0.00"),
    )


# -- the positive list -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefixes", "code", "listed"),
    [
        (["847130"], "8471300000", True),
        (["84713000"], "8471300000", True),
        (["8471300000"], "8471300000", True),
        (["847141"], "8471300000", False),
        (["8471300010"], "8471300000", False),  # a longer prefix admits only its own codes
        ([], "8471300000", False),
    ],
)
def test_a_code_is_on_the_list_when_a_listed_prefix_covers_it(prefixes, code, listed):
    assert on_positive_list(prefixes, code) is listed


def test_goods_off_the_list_in_force_are_refused_at_each_line_and_the_list_is_recorded():
    w, uscc = _world()
    _publish(w, ["090121"])  # roasted coffee only
    coffee = line(2, line_no=1, quantity="10", unit_price="8.50")
    laptop = line(1, line_no=2, quantity="1", unit_price="100.00")
    before = w.snapshot()
    with pytest.raises(ValidationFailed) as refused:
        w.submit_body(_list(uscc, [coffee, laptop, {**laptop, "line_no": 3}], "285.00"))
    assert _rule(refused) == [
        ("$.lines[1].hs_code", "not_on_positive_list"),
        ("$.lines[2].hs_code", "not_on_positive_list"),
    ]
    assert w.snapshot() == before
    view = w.submit_body(_list(uscc, [coffee], "85.00"))
    used = {t.kind: t for t in _assessed(w, view.id).tables_used}
    assert (used["positive-list"].effective_from, used["positive-list"].version) == (
        date(2026, 1, 1),
        1,
    )
    # General trade reads no positive list: laptops are declared as ever.
    general = w.submit(uscc, "B1")
    assert "positive-list" not in {t.kind for t in _assessed(w, general.id).tables_used}


def test_no_list_in_force_refuses_nothing():
    w, uscc = _world()
    laptop = [line(1, quantity="1", unit_price="100.00")]
    assert w.submit_body(_list(uscc, laptop, "100.00")).status == "awaiting_payment"
    _publish(w, ["090121"], effective_from=date(2027, 1, 1))  # not yet in force on NOW
    view = w.submit_body(_list(uscc, laptop, "100.00"))
    assert view.status == "awaiting_payment"
    assert "positive-list" not in {t.kind for t in _assessed(w, view.id).tables_used}
