"""The arithmetic of tax bills (domain/tax_bills.py): due dates past weekends, and late fees of
0.05% per day on what is still unpaid, with the CNY 50 threshold."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from hypothesis import given
from hypothesis import strategies as st

from domain.tax_bills import (
    BILL_DAYS,
    FEE_THRESHOLD,
    Payment,
    due_by,
    late_fee,
    status,
    unpaid_on,
)

days = st.dates(min_value=date(2020, 1, 1), max_value=date(2035, 12, 31))
taxes = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("10000000"), places=2)
offsets = st.integers(min_value=-30, max_value=400)


def test_a_worked_example():
    # Issued on Friday 4 December 2026: 15 days on is Saturday 19 December, so Monday 21.
    assert due_by(date(2026, 12, 4)) == date(2026, 12, 21)
    # Paid on 5 January 2027: 15 days late (22 December to 5 January): 100,000 x 0.05% x 15.
    fee = late_fee(
        Decimal("100000.00"),
        date(2026, 12, 21),
        [Payment(date(2027, 1, 5), Decimal("100000.00"))],
        date(2027, 1, 31),
    )
    assert fee == Decimal("750.00")
    # Half paid on time, half 10 days late: 50,000 x 0.05% x 10 = 250.
    paid = [
        Payment(date(2026, 12, 21), Decimal("50000.00")),
        Payment(date(2026, 12, 31), Decimal("50000.00")),
    ]
    assert late_fee(Decimal("100000.00"), date(2026, 12, 21), paid, date(2027, 1, 31)) == Decimal(
        "250.00"
    )
    # Below CNY 50 nothing is collected: 1,000 x 0.05% x 99 = 49.50.
    late = [Payment(date(2027, 3, 30), Decimal("1000.00"))]
    assert late_fee(Decimal("1000.00"), date(2026, 12, 21), late, date(2027, 12, 31)) == 0


@given(days)
def test_the_due_date_is_fifteen_days_on_and_never_a_weekend(issued):
    due = due_by(issued)
    assert due.weekday() < 5
    assert issued + timedelta(days=BILL_DAYS) <= due <= issued + timedelta(days=BILL_DAYS + 2)


@given(taxes, days, offsets)
def test_paid_by_the_due_date_costs_no_fee(tax, due, later):
    paid = [Payment(due - timedelta(days=1), tax)]
    assert late_fee(tax, due, paid, due + timedelta(days=abs(later))) == 0
    assert status(tax, due, paid, due + timedelta(days=abs(later))) == "paid"


@given(taxes, days, st.integers(min_value=1, max_value=400))
def test_unpaid_the_fee_is_the_rate_times_the_days_late(tax, due, late):
    on = due + timedelta(days=late)
    expected = (tax * Decimal("0.0005") * late).quantize(Decimal("0.01"), ROUND_HALF_UP)
    fee = late_fee(tax, due, [], on)
    assert fee == (expected if expected >= FEE_THRESHOLD else 0)
    assert status(tax, due, [], on) == "overdue"
    assert status(tax, due, [], due) == "unpaid"


@given(taxes, days, offsets, offsets)
def test_the_fee_never_falls_as_time_passes(tax, due, a, b):
    first, second = sorted((due + timedelta(days=a), due + timedelta(days=b)))
    assert late_fee(tax, due, [], first) <= late_fee(tax, due, [], second)


@given(taxes, days, st.integers(0, 60), st.integers(0, 60), st.integers(1, 99))
def test_paying_part_never_costs_more_and_splitting_a_payment_changes_nothing(
    tax, due, when, until, percent
):
    part = (tax * percent / 100).quantize(Decimal("0.01"))
    pay_day = due + timedelta(days=when)
    on = pay_day + timedelta(days=until)
    assert late_fee(tax, due, [Payment(pay_day, part)], on) <= late_fee(tax, due, [], on)
    whole = [Payment(pay_day, tax)]
    halves = [Payment(pay_day, part), Payment(pay_day, tax - part)]
    assert late_fee(tax, due, whole, on) == late_fee(tax, due, halves, on)
    assert unpaid_on(tax, halves, on) == 0 and status(tax, due, halves, on) == "paid"
