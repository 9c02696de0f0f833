"""A buyer's yearly cross-border e-commerce quota: CNY 26,000 per calendar year.

The total is a write-side fact, checked and updated in the same atomic write as the retail list
that uses it: two concurrent lists of one buyer can never both squeeze under the limit,
because both record an event on this stream and only one can take its next version.

The stream is named by the buyer's keyed pseudonym (domain/privacy.py), never by the identity
number: an 18-character resident identity number is a small space (region, birth date, serial
and check digit), and a plain hash of it - the name of the streams of lists written before
sealing - is found again by trying them all. Those older streams still count: a buyer's
year is what both hold (`carried_over`).
"""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

import msgspec

from domain.errors import Conflict
from domain.events import AggregateState, DomainEvent, Pending, stream_id
from domain.privacy import parse_token
from domain.unit_of_work import UnitOfWork

ANNUAL_LIMIT_CNY = Decimal("26000")
TRANSACTION_LIMIT_CNY = Decimal("5000")


class BuyerQuota(AggregateState, frozen=True, kw_only=True):
    """What one buyer has used of one calendar year's quota, per retail list."""

    used: Decimal
    by_declaration: dict[UUID, Decimal]


class QuotaUsed(DomainEvent, frozen=True, kw_only=True):
    """A retail list counted its order amount against the buyer's yearly quota."""

    declaration_id: UUID
    amount: Decimal

    def apply(self, state: BuyerQuota | None) -> BuyerQuota:
        used = (state.used if state else Decimal(0)) + self.amount
        by = dict(state.by_declaration) if state else {}
        by[self.declaration_id] = self.amount
        return BuyerQuota(
            id=self.originator_id, version=self.originator_version, used=used, by_declaration=by
        )


class QuotaReturned(DomainEvent, frozen=True, kw_only=True):
    """A withdrawn or rejected retail list gave its amount back to the buyer's quota."""

    declaration_id: UUID
    amount: Decimal

    def apply(self, state: BuyerQuota) -> BuyerQuota:
        by = dict(state.by_declaration)
        by.pop(self.declaration_id, None)
        return msgspec.structs.replace(
            state, version=self.originator_version, used=state.used - self.amount, by_declaration=by
        )


class QuotaRestored(DomainEvent, frozen=True, kw_only=True):
    """A buyer returned goods of a released retail list: the returned share of its order
    amount is the buyer's quota again (domain/returns.py)."""

    declaration_id: UUID
    return_id: UUID
    amount: Decimal

    def apply(self, state: BuyerQuota) -> BuyerQuota:
        by = dict(state.by_declaration)
        by[self.declaration_id] = by.get(self.declaration_id, Decimal(0)) - self.amount
        return msgspec.structs.replace(
            state, version=self.originator_version, used=state.used - self.amount, by_declaration=by
        )


class QuotaStanding(msgspec.Struct, frozen=True, kw_only=True):
    """A buyer's year as the write side holds it (GET /v1/buyers/{buyer_id}/quota)."""

    year: int
    limit: Decimal
    used: Decimal
    remaining: Decimal


def standing(year: int, *streams: BuyerQuota | None) -> QuotaStanding:
    """What the buyer has used of `year` over its streams (the pseudonym's and, for lists
    written before sealing, the one named by the number), and what is left of the limit."""
    fen = Decimal("0.01")
    used = sum((s.used for s in streams if s is not None), Decimal(0)).quantize(fen)
    return QuotaStanding(
        year=year,
        limit=ANNUAL_LIMIT_CNY.quantize(fen),
        used=used,
        remaining=max(ANNUAL_LIMIT_CNY - used, Decimal(0)).quantize(fen),
    )


def quota_id(buyer: str, year: int) -> UUID:
    """The buyer's quota stream of `year`, from a list's `order.buyer_id` as the log keeps it:
    sealed, by the seal's pseudonym; in clear (a list written before sealing), by the number."""
    token = parse_token(buyer)
    if token is not None:
        return pseudonymous_quota_id(token.pseudonym, year)
    return stream_id("buyer-quota", f"{buyer}:{year}")


def pseudonymous_quota_id(pseudonym: str, year: int) -> UUID:
    """The quota stream of `year` of the buyer with this pseudonym (domain/privacy.py)."""
    return stream_id("buyer-quota", f"pseudonym:{pseudonym}:{year}")


def carried_over(uow: UnitOfWork, resident_id: str, year: int) -> Decimal:
    """What the buyer's lists written before sealing used of `year` (their stream is named
    by the identity number in clear): it counts against the same limit."""
    before = uow.load(quota_id(resident_id, year), BuyerQuota)
    return before.used if before is not None else Decimal(0)


def use(
    quota: Pending[BuyerQuota],
    declaration_id: UUID,
    amount: Decimal,
    carried: Decimal = Decimal(0),
    **event: object,
) -> None:
    """Count an order against the year's quota (with what the buyer's older stream `carried`),
    or refuse it (409 `quota_exceeded`)."""
    used = (quota.state.used if quota.state else Decimal(0)) + carried
    if used + amount > ANNUAL_LIMIT_CNY:
        raise Conflict(
            f"the buyer has used CNY {used} of CNY {ANNUAL_LIMIT_CNY} this year; "
            f"an order of CNY {amount} goes over the limit (general trade applies)",
            rule="quota_exceeded",
        )
    quota.record(QuotaUsed, declaration_id=declaration_id, amount=amount, **event)


def give_back(quota: Pending[BuyerQuota], declaration_id: UUID, **event: object) -> None:
    """Return what a retail list used, once (nothing if it never counted)."""
    if quota.state is None or declaration_id not in quota.state.by_declaration:
        return
    amount = quota.state.by_declaration[declaration_id]
    quota.record(QuotaReturned, declaration_id=declaration_id, amount=amount, **event)
