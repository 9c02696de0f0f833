"""Returns of cross-border retail goods: the buyer sends back part of a released list within
the return window; the list's taxes are refunded pro rata, the returned share of the order goes
back to the buyer's quota, and bonded goods (1210/1239) come back into the zone as lots whose
parents are the lots that left. See docs/decisions/0024-retail-returns.md.

Every refund and quota figure is a difference of cumulative figures: what all returns so far
come to, minus what the returns before this one came to. Each cumulative figure of a line is
its share (of a tax, of the order) times the returned fraction, rounded to the fen half-up, and
is the whole share when the whole line is back: so the returns of a list never refund more
than its taxes, and the last return of everything takes the remainder.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Annotated
from uuid import UUID

import msgspec

from domain import quota, values
from domain.assessment import is_retail
from domain.declaration import SHANGHAI, Declaration, Str255
from domain.duties import apportion, cents
from domain.errors import Conflict, NotFound
from domain.events import Actor, AggregateState, DomainEvent, stream_id
from domain.unit_of_work import Decision, UnitOfWork
from domain.values import Problems

# The return window after release, in calendar days in China. E-commerce platforms owe a
# 7-day no-reason return (Law on the Protection of Consumer Rights and Interests, art. 25);
# GACC lets returned cross-border retail imports back within 30 days of release
# [verify: GACC Announcement 2020 No. 45, on the return of cross-border retail imports].
RETURN_WINDOW_DAYS = 30
ZERO = Decimal("0.00")


class ReturnLine(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How much of one line of the list the buyer sent back."""

    line_no: int
    quantity: Decimal


class ReturnGoods(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Body of POST /v1/declarations/{ref}/returns (the list's declarant)."""

    lines: Annotated[list[ReturnLine], msgspec.Meta(max_length=999)]
    reason: Str255


class Refund(msgspec.Struct, frozen=True, kw_only=True):
    """The taxes a return gives back, in CNY."""

    vat: Decimal
    consumption_tax: Decimal
    total: Decimal


class ReturnedLine(msgspec.Struct, frozen=True, kw_only=True):
    line_no: int
    item_no: int
    quantity: Decimal


class ReturnView(msgspec.Struct, frozen=True, kw_only=True):
    """What POST /v1/declarations/{ref}/returns answers (with the log position)."""

    return_id: UUID
    declaration_no: str
    lines: list[ReturnedLine]
    refund: Refund
    quota_restored: Decimal
    # 1210/1239: the zone's operator admits the goods (`gate_in` with `return_id`); 9610: none.
    readmission: str


class ReturnAnswer(ReturnView, frozen=True, kw_only=True):
    position: int | None = None


def answer(view: ReturnView, position: int | None) -> ReturnAnswer:
    return ReturnAnswer(**msgspec.structs.asdict(view), position=position)


class RetailReturn(AggregateState, frozen=True, kw_only=True):
    """One return: which list, where its goods come back to, and how much is back in."""

    declaration_id: UUID
    zone: str
    # None for a 9610 parcel: nothing is admitted anywhere.
    account_book: str | None
    view: ReturnView
    readmitted: dict[int, Decimal] = {}


class ReturnAccepted(DomainEvent, frozen=True, kw_only=True):
    """The declarant recorded a buyer's return of goods of a released retail list."""

    declaration_id: UUID
    zone: str
    account_book: str | None
    reason: str
    view: ReturnView

    def apply(self, state: None) -> RetailReturn:
        return RetailReturn(
            id=self.originator_id,
            version=self.originator_version,
            declaration_id=self.declaration_id,
            zone=self.zone,
            account_book=self.account_book,
            view=self.view,
        )


class ReturnReadmitted(DomainEvent, frozen=True, kw_only=True):
    """The zone's operator admitted returned goods, per line, by a `gate_in`."""

    movement_id: UUID
    quantities: dict[int, Decimal]

    def apply(self, state: RetailReturn) -> RetailReturn:
        return msgspec.structs.replace(
            state,
            version=self.originator_version,
            readmitted=_added(state.readmitted, self.quantities),
        )


class GoodsReturned(DomainEvent, frozen=True, kw_only=True):
    """Goods of this retail list came back from the buyer: how much per line, the refund."""

    return_id: UUID
    quantities: dict[int, Decimal]
    refund: Refund

    def apply(self, state: Declaration) -> Declaration:
        duties = state.duties
        if duties is not None:
            duties = msgspec.structs.replace(duties, refunded=duties.refunded + self.refund.total)
        return msgspec.structs.replace(
            state,
            version=self.originator_version,
            duties=duties,
            returned=_added(state.returned, self.quantities),
        )


class ReturnedGoodsReadmitted(DomainEvent, frozen=True, kw_only=True):
    """Returned goods of this list passed the zone's gate back in, per line."""

    return_id: UUID
    movement_id: UUID
    quantities: dict[int, Decimal]

    def apply(self, state: Declaration) -> Declaration:
        return msgspec.structs.replace(
            state,
            version=self.originator_version,
            readmitted=_added(state.readmitted, self.quantities),
        )


def _added(before: Mapping[int, Decimal], more: Mapping[int, Decimal]) -> dict[int, Decimal]:
    total = dict(before)
    for line_no, q in more.items():
        total[line_no] = total.get(line_no, Decimal(0)) + q
    return total


def return_id(principal: str, idempotency_key: str) -> UUID:
    """A retried return (same principal and key) collides with its first run."""
    return stream_id("retail-return", f"{principal}\x00{idempotency_key}")


# -- the figures ---------------------------------------------------------------------------


def share_returned(
    shares: Mapping[int, Decimal], sold: Mapping[int, Decimal], returned: Mapping[int, Decimal]
) -> Decimal:
    """What `returned` quantities come to of per-line `shares`: each line's share times its
    returned fraction, to the fen half-up (the whole share when all of the line is back)."""
    return sum(
        (cents(shares[n] * returned.get(n, Decimal(0)) / sold[n]) for n in shares), Decimal(0)
    )


def refund_of(d: Declaration, after: Mapping[int, Decimal]) -> Refund:
    """The refund of a return that brings the list's returned quantities to `after`."""
    sold = {line.line_no: line.quantity for line in d.facts.lines}
    parts = {}
    for tax in ("vat", "consumption_tax"):
        shares = {n: getattr(t, tax) for n, t in d.line_taxes.items()}
        parts[tax] = share_returned(shares, sold, after) - share_returned(shares, sold, d.returned)
    return Refund(
        vat=parts["vat"],
        consumption_tax=parts["consumption_tax"],
        total=parts["vat"] + parts["consumption_tax"],
    )


def order_shares(d: Declaration) -> dict[int, Decimal]:
    """Each line's share of the order amount (goods plus freight and insurance), by value."""
    assert d.facts.ecommerce is not None
    lines = d.facts.lines
    parts = apportion(
        d.facts.ecommerce.order.amount, [line.quantity * line.unit_price for line in lines]
    )
    return {line.line_no: part for line, part in zip(lines, parts, strict=True)}


def quota_restored(d: Declaration, after: Mapping[int, Decimal]) -> Decimal:
    """The returned share of the order a return gives back to the buyer's quota."""
    sold = {line.line_no: line.quantity for line in d.facts.lines}
    shares = order_shares(d)
    return share_returned(shares, sold, after) - share_returned(shares, sold, d.returned)


# -- the decision --------------------------------------------------------------------------


def check_returnable(d: Declaration, now: datetime) -> None:
    """A retail list, released, within the window (409 with the rule otherwise)."""
    f = d.facts
    if not is_retail(f.flow, f.trade_mode) or f.ecommerce is None or d.quota_year is None:
        raise Conflict(
            f"only a cross-border retail list is returned this way, not a {f.flow}"
            f" {f.trade_mode} declaration",
            rule="not_a_retail_list",
        )
    if d.status != "released" or d.released_at is None:
        raise Conflict(
            "only the goods of a released list can be returned",
            rule="declaration_not_released",
            current_status=d.status,
        )
    released = d.released_at.astimezone(SHANGHAI).date()
    days = (now.astimezone(SHANGHAI).date() - released).days
    if days > RETURN_WINDOW_DAYS:
        raise Conflict(
            f"the list was released on {released}, {days} days ago: the return window is"
            f" {RETURN_WINDOW_DAYS} days [verify: GACC Announcement 2020 No. 45]",
            rule="return_window_closed",
            current_status=d.status,
        )


def returned_quantities(d: Declaration, cmd: ReturnGoods) -> dict[int, Decimal]:
    """The body's quantities per line (422 at the field), within what was sold over all
    returns (409 `exceeds_declared_quantity`)."""
    by_no = {line.line_no: line for line in d.facts.lines}
    p = Problems()
    p.check("$.reason", values.text, cmd.reason)
    if not cmd.lines:
        p.add("$.lines", "name at least one line")
    wanted: dict[int, Decimal] = {}
    for n, line in enumerate(cmd.lines):
        declared = by_no.get(line.line_no)
        if declared is None:
            p.add(f"$.lines[{n}].line_no", f"the list has no line {line.line_no}")
            continue
        if line.line_no in wanted:
            p.add(f"$.lines[{n}].line_no", f"line {line.line_no} is named twice")
            continue
        q = p.check(f"$.lines[{n}].quantity", values.quantity, line.quantity, declared.unit)
        if q is not None:
            wanted[line.line_no] = q
    p.raise_if_any()
    for line_no, q in wanted.items():
        before = d.returned.get(line_no, Decimal(0))
        sold = by_no[line_no].quantity
        if before + q > sold:
            raise Conflict(
                f"line {line_no} sold {sold}; {before} came back already, {q} more is too many",
                rule="exceeds_declared_quantity",
                current_status=d.status,
            )
    return wanted


def decide_return(
    uow: UnitOfWork, ref: str, cmd: ReturnGoods, stream: UUID, actor: Actor, now: datetime
) -> Decision[ReturnView]:
    """Record a return: the list's returned quantities and refund, the quota given back and
    the return itself - one write."""
    found = uow.declaration_id(ref)
    declaration = uow.pending(found, Declaration) if found else None
    d = declaration.state if declaration is not None else None
    if declaration is None or d is None or d.facts.declarant != actor.enterprise:
        raise NotFound(f"no declaration {ref}")
    check_returnable(d, now)
    quantities = returned_quantities(d, cmd)
    after = _added(d.returned, quantities)
    refund = refund_of(d, after)
    restored = quota_restored(d, after)
    e, year = d.facts.ecommerce, d.quota_year
    assert e is not None and year is not None
    common = {"actor": actor, "occurred_at": now}
    by_no = {line.line_no: line for line in d.facts.lines}
    view = ReturnView(
        return_id=stream,
        declaration_no=d.facts.declaration_no,
        lines=[
            ReturnedLine(line_no=n, item_no=by_no[n].item_no, quantity=q)
            for n, q in quantities.items()
        ],
        refund=refund,
        quota_restored=restored,
        readmission="none" if d.facts.account_book is None else "gate_in",
    )
    declaration.record(
        GoodsReturned, return_id=stream, quantities=quantities, refund=refund, **common
    )
    buyer = uow.pending(quota.quota_id(e.order.buyer_id, year), quota.BuyerQuota)
    buyer.record(
        quota.QuotaRestored, declaration_id=d.id, return_id=stream, amount=restored, **common
    )
    ret = uow.new(stream, RetailReturn)
    ret.record(
        ReturnAccepted,
        declaration_id=d.id,
        zone=d.facts.zone,
        account_book=d.facts.account_book,
        reason=cmd.reason.strip(),
        view=view,
        **common,
    )
    return Decision([declaration, buyer, ret], view)
