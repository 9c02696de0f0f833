"""Goods leaving: stock reserved when an outbound declaration is released, then `gate_out`.

API.md: an outbound declaration (`first_line_out`, `second_line_out`, `transfer`) reserves its
quantities (`pending_out`) when it enters `released`, in the same write, and a release beyond
the book's available stock is refused (409 `insufficient_stock`). The gate movement turns the
reservation into a decrease, drawing lots first-in first-out within the line's customs status.
Second-line exit to China's market needs the duties settled: a declaration is `released` only
once nothing is outstanding.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from decimal import Decimal
from uuid import UUID

import msgspec

from domain.declaration import Declaration, GoodsStatus
from domain.errors import Conflict
from domain.events import DomainEvent, Pending
from domain.movements import (
    GateBody,
    GoodsMoved,
    ItemStock,
    Lot,
    LotView,
    MovementRecorded,
    MovementState,
    MovementView,
    Reservation,
    fifo,
    release_reservation,
    without,
)

OUTBOUND = ("first_line_out", "second_line_out", "transfer")
GATE_EXITS = ("first_line_out", "second_line_out")


class GateOut(GateBody, frozen=True, kw_only=True, tag_field="kind", tag="gate_out"):
    """Body of POST /v1/movements with `kind: gate_out` (an operator of the zone)."""


class StockReserved(DomainEvent, frozen=True, kw_only=True):
    """A released outbound declaration reserved this much of the item (its pending_out)."""

    declaration_id: UUID
    quantity: Decimal
    goods_status: GoodsStatus

    def apply(self, state: ItemStock) -> ItemStock:
        reserved = dict(state.reserved)
        held = reserved[self.declaration_id].quantity if self.declaration_id in reserved else 0
        reserved[self.declaration_id] = Reservation(
            quantity=held + self.quantity, goods_status=self.goods_status
        )
        return msgspec.structs.replace(state, version=self.originator_version, reserved=reserved)


class GoodsExited(DomainEvent, frozen=True, kw_only=True):
    """Goods left the zone under a declaration: its reservation became a decrease."""

    declaration_id: UUID
    movement_id: UUID
    quantity: Decimal
    by_lot: dict[UUID, Decimal]

    def apply(self, state: ItemStock) -> ItemStock:
        lots = without(state.lots, self.by_lot)
        reserved = release_reservation(state.reserved, self.declaration_id, self.quantity)
        return msgspec.structs.replace(
            state,
            version=self.originator_version,
            on_hand=state.on_hand - self.quantity,
            lots=lots,
            reserved=reserved,
        )


class LotDrawn(DomainEvent, frozen=True, kw_only=True):
    """Goods of this lot left (or were consumed) by a movement."""

    movement_id: UUID
    quantity: Decimal

    def apply(self, state: Lot) -> Lot:
        return msgspec.structs.replace(
            state, version=self.originator_version, on_hand=state.on_hand - self.quantity
        )


def needs(d: Declaration) -> dict[tuple[int, GoodsStatus], Decimal]:
    """What an outbound declaration takes from its book: per item and customs status."""
    total: dict[tuple[int, GoodsStatus], Decimal] = defaultdict(Decimal)
    for line in d.facts.lines:
        total[(line.item_no, line.goods_status or "bonded")] += line.quantity
    return dict(total)


def reserve(
    d: Declaration,
    stocks: dict[int, Pending[ItemStock]],
    actor: object,
    occurred_at: datetime,
    status_before: str | None = None,
) -> None:
    """Reserve a released outbound declaration's quantities, or refuse the release."""
    for (item_no, status), quantity in needs(d).items():
        stock = stocks[item_no].state
        available = stock.available_of(status) if stock is not None else Decimal(0)
        if quantity > available:
            raise Conflict(
                f"item {item_no} has {available} {status} available in book "
                f"{d.facts.account_book}; the declaration needs {quantity}",
                rule="insufficient_stock",
                current_status=status_before,
            )
        stocks[item_no].record(
            StockReserved,
            actor=actor,
            occurred_at=occurred_at,
            declaration_id=d.id,
            quantity=quantity,
            goods_status=status,
        )


def check_gate_out(d: Declaration, operator_zone: str | None) -> None:
    f = d.facts
    if f.flow not in GATE_EXITS:
        raise Conflict(f"a {f.flow} declaration does not exit through a gate", rule="wrong_flow")
    if d.status != "released":
        raise Conflict(
            "goods leave only under a released declaration (duties settled)",
            rule="declaration_not_released",
            current_status=d.status,
        )
    if operator_zone is not None and operator_zone != f.zone:
        raise Conflict(
            f"the gate of {operator_zone} cannot let out goods declared in {f.zone}",
            rule="zone_mismatch",
        )


def leave(
    *,
    kind: str,
    stock_event: type[DomainEvent],
    declaration: Pending[Declaration],
    quantities: dict[int, Decimal],
    stocks: dict[int, Pending[ItemStock]],
    lots: dict[UUID, Pending[Lot]],
    movement: Pending[MovementState],
    cmd: GateBody,
    actor: object,
    occurred_at: datetime,
) -> MovementView:
    """Goods leave a book under a released declaration (`gate_out`, or `transfer_dispatch`
    with `TransferDispatched`): moved quantities, the item's stock event, lots drawn FIFO
    within each line's status, and the movement - one write."""
    d = declaration.state
    assert d is not None
    common = {"actor": actor, "occurred_at": occurred_at}
    by_no = {line.line_no: line for line in d.facts.lines}
    declaration.record(GoodsMoved, movement_id=movement.id, quantities=quantities, **common)
    drawn: list[LotView] = []
    for line_no, quantity in quantities.items():
        line = by_no[line_no]
        stock = stocks[line.item_no]
        assert stock.state is not None  # the release reserved it
        taken = fifo(stock.state.lots, line.goods_status or "bonded", quantity)
        if taken is None:  # only if stock was changed behind the ledger's back
            raise Conflict(
                f"the lots of item {line.item_no} do not hold {quantity}", rule="insufficient_stock"
            )
        stock.record(
            stock_event,
            declaration_id=d.id,
            movement_id=movement.id,
            quantity=quantity,
            by_lot=taken,
            **common,
        )
        for lot_id, q in taken.items():
            lots[lot_id].record(LotDrawn, movement_id=movement.id, quantity=q, **common)
            drawn.append(LotView(lot_id=lot_id, item_no=line.item_no, quantity=q))
    view = MovementView(
        movement_id=movement.id,
        kind=kind,
        declaration=d.id,
        declaration_no=d.facts.declaration_no,
        zone=d.facts.zone,
        account_book=d.facts.account_book,
        occurred_at=occurred_at,
        gate_note=cmd.gate_note,
        vehicle=cmd.vehicle,
        container=cmd.container or d.facts.transport.container,
        lots=drawn,
    )
    movement.record(MovementRecorded, view=view, **common)
    return view
