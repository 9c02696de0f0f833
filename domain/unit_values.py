"""An item's own history of declared unit prices, per currency: what the risk engine compares to.

Recorded in the same write as each declaration that uses it, so the judgement and the history
it was judged against are both in the log.
"""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

from domain.events import AggregateState, DomainEvent, stream_id


class UnitValues(AggregateState, frozen=True, kw_only=True):
    count: int
    total: Decimal

    @property
    def mean(self) -> Decimal:
        return (self.total / self.count).quantize(Decimal("0.0001"))


class UnitValueObserved(DomainEvent, frozen=True, kw_only=True):
    """A declaration line declared this unit price for the item."""

    declaration_id: UUID
    unit_price: Decimal

    def apply(self, state: UnitValues | None) -> UnitValues:
        return UnitValues(
            id=self.originator_id,
            version=self.originator_version,
            count=(state.count if state else 0) + 1,
            total=(state.total if state else Decimal(0)) + self.unit_price,
        )


def unit_values_id(book_no: str, item_no: int, currency: str) -> UUID:
    return stream_id("unit-values", f"{book_no}:{item_no}:{currency}")
