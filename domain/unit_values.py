"""An item's own history of released unit prices, per currency: what the risk engine compares to.

A line's price enters the history when its declaration is released, in the same write as the
decision that releases it (green at submission, a release after review, the payment that
clears it, a transfer's acceptance), and never when the assessment found its figures absurd.
A pending, withdrawn, rejected or refused declaration never moves the baseline
(docs/decisions/0023). The assessment reads the history; the commit checks it has not moved.

Where several server processes write one store (PostgreSQL), each process appends to its own
shard of an item's history (decision 0040): shard 0 is the stream every history had before
shards, and the only one a single writer (SQLite) uses. The history an assessment reads is the
shards merged by release time: its own shard exactly, the others as the unit of work glances
at them (at most a second old), so that two servers releasing the same goods never collide.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING
from uuid import UUID

import msgspec

from domain.events import Actor, AggregateState, DomainEvent, Pending, stream_id
from domain.unit_of_work import UnitOfWork

if TYPE_CHECKING:  # domain.declaration reaches this module through the risk rules
    from domain.declaration import Declaration

# The last released prices kept per item and currency: the median of a hundred follows a
# genuine change of price within fifty releases, and the state stays small.
HISTORY_KEPT = 100
# The shards of one item's history (decision 0040): one per server process writing the store,
# the first free one claimed at the process's first assessment; processes beyond this many
# share shards (their writes then race on the shard's version and the loser decides again).
# Never lowered: a history is read from every shard up to this number.
SHARDS = 8


class UnitValues(AggregateState, frozen=True, kw_only=True):
    # Released observations ever counted; the last HISTORY_KEPT of them, oldest first.
    released: int = 0
    prices: list[Decimal] = []
    # When each of `prices` was released (the release's time), to merge shards in order.
    released_at: list[datetime] = []
    # Observations of older releases, recorded at submission (`UnitValueObserved`): kept in the
    # log, never counted, since the stream cannot tell whether their declaration was released.
    observed_at_submission: int = 0


def _empty(state: UnitValues | None, stream: UUID, version: int) -> UnitValues:
    return state if state is not None else UnitValues(id=stream, version=version)


class UnitValueObserved(DomainEvent, frozen=True, kw_only=True):
    """A declaration line declared this unit price for the item, recorded at submission (logs
    written before issue #16). Read as a fact of the log, no longer as a price to compare to."""

    declaration_id: UUID
    unit_price: Decimal

    def apply(self, state: UnitValues | None) -> UnitValues:
        before = _empty(state, self.originator_id, self.originator_version)
        return UnitValues(
            id=self.originator_id,
            version=self.originator_version,
            released=before.released,
            prices=before.prices,
            released_at=before.released_at,
            observed_at_submission=before.observed_at_submission + 1,
        )


class UnitValueReleased(DomainEvent, frozen=True, kw_only=True):
    """A released declaration's line declared this unit price: it counts in the history."""

    declaration_id: UUID
    line_no: int
    unit_price: Decimal

    def apply(self, state: UnitValues | None) -> UnitValues:
        before = _empty(state, self.originator_id, self.originator_version)
        return UnitValues(
            id=self.originator_id,
            version=self.originator_version,
            released=before.released + 1,
            prices=[*before.prices, self.unit_price][-HISTORY_KEPT:],
            released_at=[*before.released_at, self.occurred_at][-HISTORY_KEPT:],
            observed_at_submission=before.observed_at_submission,
        )


def unit_values_id(book_no: str, item_no: int, currency: str, shard: int = 0) -> UUID:
    """The stream of one shard of an item's history; shard 0 is the history's stream as it
    was before shards (logs written before them read the same)."""
    key = f"{book_no}:{item_no}:{currency}"
    return stream_id("unit-values", key if shard == 0 else f"{key}#{shard}")


class ReleasedPrices(msgspec.Struct, frozen=True, kw_only=True):
    """An item's history as the risk engine reads it: every shard's releases merged."""

    # Released observations ever counted, in every shard.
    released: int = 0
    # The last HISTORY_KEPT released prices of all shards, oldest first by release time.
    prices: list[Decimal] = []


def merged(shards: Iterable[UnitValues | None]) -> ReleasedPrices:
    """The shards' histories as one: counts added, prices merged by release time, the last
    HISTORY_KEPT of them. Each shard is in its commit order, its process's release order;
    releases at the same instant keep their shard's order, the lower shard's first."""
    present = [s for s in shards if s is not None]
    found = [s for s in present if s.prices]
    released = sum(s.released for s in present)
    if len(found) <= 1:
        return ReleasedPrices(released=released, prices=list(found[0].prices) if found else [])
    runs = [list(zip(s.released_at, s.prices, strict=True)) for s in found]
    prices = [price for _, price in heapq.merge(*runs, key=lambda item: item[0])]
    return ReleasedPrices(released=released, prices=prices[-HISTORY_KEPT:])


def released_prices(uow: UnitOfWork, owner: str, item_no: int, currency: str) -> ReleasedPrices:
    """The item's released history in `currency`: this process's shard read as every read of a
    decision is (checked at commit), the other shards glanced at (decision 0040)."""
    own = uow.history_shard
    streams = [unit_values_id(owner, item_no, currency, k) for k in range(SHARDS)]
    others = iter(uow.glance([s for k, s in enumerate(streams) if k != own], UnitValues))
    # In shard order, so that releases at the same instant merge alike in every process.
    return merged(
        [uow.load(s, UnitValues) if k == own else next(others) for k, s in enumerate(streams)]
    )


def history_owner(account_book: str | None, declarant: str) -> str:
    """Whose unit-value history a line joins: its book's item; a bookless (9610) parcel's line
    the declarant's own item number (`direct:` + USCC cannot be a book number, which is
    capitals, digits and '-')."""
    return account_book or f"direct:{declarant}"


def observe_on_release(
    uow: UnitOfWork,
    status_before: str | None,
    declaration: Pending[Declaration],
    actor: Actor,
    now: datetime,
) -> list[Pending[UnitValues]]:
    """A declaration entering `released` adds each line's price to its item's history, except
    the lines its assessment found absurd; the histories it wrote."""
    state = declaration.state
    assert state is not None
    if state.status != "released" or status_before == "released":
        return []
    facts = state.facts
    histories: dict[UUID, Pending[UnitValues]] = {}
    for line in sorted(facts.lines, key=lambda item: item.line_no):
        if line.line_no in state.outlier_lines:
            continue
        owner = history_owner(facts.account_book, facts.declarant)
        stream = unit_values_id(owner, line.item_no, facts.currency, uow.history_shard)
        history = histories.get(stream) or uow.pending(stream, UnitValues)
        histories[stream] = history
        history.record(
            UnitValueReleased,
            actor=actor,
            occurred_at=now,
            declaration_id=state.id,
            line_no=line.line_no,
            unit_price=line.unit_price,
        )
    return list(histories.values())
