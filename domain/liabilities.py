"""Duty liabilities (issue #18 items 1 and 3): duties an enterprise owes on bonded goods missing
from its book, as a record of their own that it pays like a declaration's duties.

Two things make one: a write-off whose officer assessed its differences (each bonded shortage,
domain/write_offs.py), and a stocktake decrease flagged on a lot (domain/stocktake.py), unless an
officer accepts a force-majeure reason for it (`LiabilityWaived`). The operator of a zone is
liable for the duty on goods missing from it (the US rule 19 CFR 146.53; in China bonded goods
lost other than by force majeure pay duty, Customs Law art. 37 and the Regulations on the
Supervision of Special Customs Supervision Zones [verify: article]).

- **Value.** A shortage is valued at the median of the item's last released unit prices (the
  history the risk engine keeps, domain/unit_values.py) in the currency it has most of, at the
  customs exchange rate of the month of the day assessed; an officer may give the unit value
  instead (and must, for an item never released). Valuation on the transaction value of
  identical goods: GACC Order No. 213 art. 6 [verify].
- **Taxes.** Tariff, consumption tax and import VAT at the rates in force on the day assessed
  (a write-off's period's last day; a stocktake's business day), as a general-trade line
  (domain/duties.py).
- **Bill.** Issued when the liability is recorded, due 15 days on, with the late fee of
  domain/tax_bills.py; the payment that settles it fixes the fee owed then in its event, so a
  later change of the fee rules never rewrites a settled bill.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal
from uuid import UUID

import msgspec

from domain import tax_bills as tb
from domain import values
from domain.account_book import AccountBook
from domain.declaration import SHANGHAI, PayDuties
from domain.duties import CENT, NOTHING, DutyTables, cents, line_duty, rate_month
from domain.errors import Conflict, InvalidTransition, ValidationFailed
from domain.events import Actor, AggregateState, DomainEvent, Pending
from domain.unit_of_work import UnitOfWork
from domain.unit_values import ReleasedPrices, released_prices
from domain.write_offs import AssessedShortage, UnitValue

SubjectKind = Literal["write_off", "shortage"]
LiabilityStatus = Literal["unpaid", "paid", "waived"]


class LiabilityPayment(msgspec.Struct, frozen=True, kw_only=True):
    on: date
    amount: Decimal
    reference: str


class LiabilityView(msgspec.Struct, frozen=True, kw_only=True):
    """A liability as the API answers it (`POST /v1/tax-bills/{id}/payments` on one)."""

    bill_id: UUID
    subject_kind: SubjectKind
    subject_id: UUID
    subject_ref: str
    enterprise: str
    zone: str
    account_book: str
    lines: list[AssessedShortage]
    tax: Decimal
    paid: Decimal
    outstanding: Decimal
    issued_on: date
    due_by: date
    status: LiabilityStatus
    payments: list[LiabilityPayment] = []
    # Fixed by the payment that settled the tax (None until then).
    late_fee: Decimal | None = None
    waived_reason: str | None = None
    waived_by: str | None = None


class Liability(AggregateState, frozen=True, kw_only=True):
    view: LiabilityView


class LiabilityAssessed(DomainEvent, frozen=True, kw_only=True):
    view: LiabilityView

    def apply(self, state: None) -> Liability:
        return Liability(id=self.originator_id, version=self.originator_version, view=self.view)


class LiabilityPaid(DomainEvent, frozen=True, kw_only=True):
    """A payment on the liability, in CNY; the one that settles it fixes the late fee."""

    amount: Decimal
    reference: str
    late_fee: Decimal | None

    def apply(self, state: Liability) -> Liability:
        v = state.view
        paid = v.paid + self.amount
        payment = LiabilityPayment(
            on=self.occurred_at.astimezone(SHANGHAI).date(),
            amount=self.amount,
            reference=self.reference,
        )
        view = msgspec.structs.replace(
            v,
            paid=paid,
            outstanding=v.tax - paid,
            payments=[*v.payments, payment],
            status="paid" if paid >= v.tax else "unpaid",
            late_fee=self.late_fee if self.late_fee is not None else v.late_fee,
        )
        return Liability(id=state.id, version=self.originator_version, view=view)


class LiabilityWaived(DomainEvent, frozen=True, kw_only=True):
    """An officer accepted a force-majeure reason for the shortage: nothing is owed."""

    reason: str

    def apply(self, state: Liability) -> Liability:
        view = msgspec.structs.replace(
            state.view, status="waived", waived_reason=self.reason, waived_by=self.actor.name
        )
        return Liability(id=state.id, version=self.originator_version, view=view)


def median(prices: list[Decimal]) -> Decimal:
    ordered = sorted(prices)
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[mid]
    return (ordered[mid - 1] + ordered[mid]) / 2


def price_basis(
    uow: UnitOfWork, tables: DutyTables, book_no: str, item_no: int, month: str
) -> tuple[Decimal, str] | None:
    """(median released unit price, currency) of the item, in the currency of the month's
    published rates (or CNY) it was released in most; None when it has no released price."""
    try:
        currencies = ["CNY", *sorted(tables.rates_for(month).to_cny)]
    except ValidationFailed:
        currencies = ["CNY"]
    best: tuple[int, str, ReleasedPrices] | None = None
    for currency in currencies:
        history = released_prices(uow, book_no, item_no, currency)
        if not history.prices:
            continue
        if best is None or history.released > best[0]:
            best = (history.released, currency, history)
    if best is None:
        return None
    return median(best[2].prices), best[1]


def assess_shortage(
    *,
    uow: UnitOfWork,
    tables: DutyTables,
    book: AccountBook,
    item_no: int,
    quantity: Decimal,
    on: date,
    given: UnitValue | None,
) -> AssessedShortage | None:
    """The duties `quantity` of the item would bear on `on`; None when it cannot be valued
    (no released price and no unit value given)."""
    month = rate_month(on)
    if given is not None:
        price, currency, by = given.unit_price, given.currency, "officer"
    else:
        basis = price_basis(uow, tables, book.book_no, item_no, month)
        if basis is None:
            return None
        (price, currency), by = basis, "price_history"
    exchange = tables.cny_per_unit(currency, month)
    value = cents(quantity * price * exchange)
    hs_code = book.items[item_no].hs_code
    rate = tables.tariff_on(on).rate_of(hs_code)
    if rate is None:
        raise ValidationFailed.at("$.result", f"no tariff rate for HS {hs_code} on {on}")
    d = line_duty(item_no, value, rate)
    return AssessedShortage(
        item_no=item_no,
        hs_code=hs_code,
        quantity=quantity,
        unit_price=price,
        currency=currency,
        exchange_rate=exchange,
        customs_value_cny=value,
        tariff_rate=d.tariff_rate,
        tariff=d.tariff,
        consumption_rate=d.consumption_rate,
        consumption_tax=d.consumption_tax,
        vat_rate=d.vat_rate,
        vat=d.vat,
        valued_by=by,
    )


def total_tax(lines: list[AssessedShortage]) -> Decimal:
    return sum((s.tariff + s.consumption_tax + s.vat for s in lines), NOTHING)


def record(
    pending: Pending[Liability],
    *,
    subject: tuple[SubjectKind, UUID, str],
    book: AccountBook,
    lines: list[AssessedShortage],
    actor: Actor,
    now: datetime,
) -> LiabilityView:
    """The liability, issued today (China time), due 15 days on past a weekend."""
    issued = now.astimezone(SHANGHAI).date()
    tax = total_tax(lines)
    kind, subject_id, ref = subject
    view = LiabilityView(
        bill_id=pending.id,
        subject_kind=kind,
        subject_id=subject_id,
        subject_ref=ref,
        enterprise=book.enterprise,
        zone=book.zone,
        account_book=book.book_no,
        lines=lines,
        tax=tax,
        paid=NOTHING,
        outstanding=tax,
        issued_on=issued,
        due_by=tb.due_by(issued),
        status="unpaid" if tax > 0 else "paid",
    )
    pending.record(LiabilityAssessed, view=view, actor=actor, occurred_at=now)
    return view


def pay(pending: Pending[Liability], cmd: PayDuties, actor: Actor, now: datetime) -> LiabilityView:
    """A payment in CNY, never more than is outstanding, by the liable enterprise; the one
    that settles the tax fixes the late fee owed on that day."""
    state = pending.state
    assert state is not None
    v = state.view
    if v.status != "unpaid":
        raise InvalidTransition(
            f"the bill is {v.status}: it takes no payment", current_status=v.status
        )
    amount = cmd.amount_within(v.outstanding, v.status)
    fee = None
    if amount == v.outstanding:
        today = now.astimezone(SHANGHAI).date()
        paid = [tb.Payment(p.on, p.amount) for p in v.payments]
        fee = tb.late_fee(v.tax, v.due_by, [*paid, tb.Payment(today, amount)], today)
    pending.record(
        LiabilityPaid,
        amount=amount.quantize(CENT),
        reference=cmd.reference,
        late_fee=fee,
        actor=actor,
        occurred_at=now,
    )
    return pending.current.view


def waive(pending: Pending[Liability], reason: str, actor: Actor, now: datetime) -> LiabilityView:
    """An officer accepts force majeure for a stocktake shortage not yet paid."""
    state = pending.state
    assert state is not None
    v = state.view
    if v.subject_kind != "shortage":
        raise Conflict(
            "a write-off's assessment is the officer's own decision: force majeure is judged"
            " on the stocktake that found the shortage",
            rule="not_a_shortage",
        )
    if v.status != "unpaid" or v.paid > 0:
        raise InvalidTransition(
            f"the liability is {v.status} and partly paid"
            if v.paid > 0
            else f"the liability is {v.status}",
            current_status=v.status,
        )
    pending.record(
        LiabilityWaived, reason=values.text("$.reason", reason), actor=actor, occurred_at=now
    )
    return pending.current.view
