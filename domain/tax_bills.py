"""Tax bills that fall due (issue #18 item 4): when a bill's tax is due, and the late fee it
accrues after that, from the bill's issue day and the payments made on it.

This module is the arithmetic only, with its sources. The bills are the declarations' duties
(projections/tax_bills.py) and the duty liabilities of write-offs and stocktake shortages
(domain/liabilities.py); the payment that settles a bill past its due date fixes the fee in an
event (`LateFeeFixed` on a declaration, `LiabilityPaid.late_fee` on a liability).
docs/decisions/0028-tax-bills.md.

- **Due date.** The tax is paid within 15 days of the day customs issue the bill (Customs Law of
  the PRC, Art. 60: 自海关填发税款缴款书之日起十五日内缴纳税款). A last day that falls on a
  Saturday or Sunday moves to the next Monday [verify: the Customs Duties Law (2024) and GACC
  Order No. 124 also move it past statutory holidays, which need the State Council's holiday
  calendar as reference data: not modelled].
- **Late fee.** After the due date, 0.05% of the unpaid tax per day (Customs Law Art. 60, 由
  海关征收滞纳金; the rate 万分之五 per day: Customs Duties Law (2024) [verify: article]), counted
  from the day after the due date up to and including the day of payment [verify: the day
  count of GACC Order No. 124]. With payments in parts, each day's fee is on what was still
  unpaid that day. The fee is rounded to the fen, half up, once, on the total.
- **Threshold.** A total fee below CNY 50 is not collected [verify: GACC Order No. 124 sets the
  threshold for late fees at CNY 50].

Days are China days (the caller converts moments with `domain.declaration.SHANGHAI`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

BILL_DAYS = 15
LATE_FEE_PER_DAY = Decimal("0.0005")
FEE_THRESHOLD = Decimal("50.00")
CENT = Decimal("0.01")
SATURDAY = 5

BillStatus = Literal["unpaid", "overdue", "paid"]


def due_by(issued_on: date) -> date:
    """The last day to pay a bill issued on `issued_on`: 15 days on, past a weekend."""
    last = issued_on + timedelta(days=BILL_DAYS)
    while last.weekday() >= SATURDAY:
        last += timedelta(days=1)
    return last


@dataclass(frozen=True)
class Payment:
    """A payment on a bill: the China day it was made and how much tax it paid."""

    on: date
    amount: Decimal


def unpaid_on(tax: Decimal, payments: Iterable[Payment], day: date) -> Decimal:
    """What of the tax is still unpaid at the end of `day` (never below zero)."""
    paid = sum((p.amount for p in payments if p.on <= day), Decimal(0))
    return max(tax - paid, Decimal(0))


def late_fee(tax: Decimal, due: date, payments: Iterable[Payment], on: date) -> Decimal:
    """The late fee accrued by `on` (inclusive): 0.05% per day of what was unpaid each day
    after `due`, the tax paid on a day counting as unpaid that day; 0 below the threshold."""
    paid = sorted(payments, key=lambda p: p.on)
    day_fee = Decimal(0)
    balance = tax
    day = due + timedelta(days=1)
    for p in paid:
        if p.on > on:
            break
        if p.on >= day and balance > 0:
            # Unpaid from `day` through the payment's day, that day included.
            day_fee += balance * ((p.on - day).days + 1)
            day = p.on + timedelta(days=1)
        balance = max(balance - p.amount, Decimal(0))
    if balance > 0 and on >= day:
        day_fee += balance * ((on - day).days + 1)
    fee = (day_fee * LATE_FEE_PER_DAY).quantize(CENT, rounding=ROUND_HALF_UP)
    return fee if fee >= FEE_THRESHOLD else Decimal("0.00")


def status(tax: Decimal, due: date, payments: Iterable[Payment], on: date) -> BillStatus:
    """`paid` once no tax is left unpaid, `overdue` after the due date, else `unpaid`."""
    if unpaid_on(tax, payments, on) == 0:
        return "paid"
    return "overdue" if on > due else "unpaid"
