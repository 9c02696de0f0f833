"""An item's own history of released unit prices, per currency: what the risk engine compares to.

A line's price enters the history when its declaration is released, in the same write as the
decision that releases it (green at submission, a release after review, the payment that
clears it, a transfer's acceptance), and never when the assessment found its figures absurd.
A pending, withdrawn, rejected or refused declaration never moves the baseline
(docs/decisions/0023). The assessment reads the history; the commit checks it has not moved.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING
from uuid import UUID

from domain.events import Actor, AggregateState, DomainEvent, Pending, stream_id
from domain.unit_of_work import UnitOfWork

if TYPE_CHECKING:  # domain.declaration reaches this module through the risk rules
    from domain.declaration import Declaration

# The last released prices kept per item and currency: the median of a hundred follows a
# genuine change of price within fifty releases, and the state stays small.
HISTORY_KEPT = 100


class UnitValues(AggregateState, frozen=True, kw_only=True):
    # Released observations ever counted; the last HISTORY_KEPT of them, oldest first.
    released: int = 0
    prices: list[Decimal] = []
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
            observed_at_submission=before.observed_at_submission,
        )


def unit_values_id(book_no: str, item_no: int, currency: str) -> UUID:
    return stream_id("unit-values", f"{book_no}:{item_no}:{currency}")


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
        stream = unit_values_id(owner, line.item_no, facts.currency)
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
