"""Transfers between zones: two-sided, with the goods in transit in between.

The source zone's gate dispatches under a released transfer declaration (the release reserved
the stock); the goods leave the source book item's stock and stay `in_transit_out` there. The
destination zone's gate receives them into the destination book (each line's
`destination_item_no`) as child lots whose parents are the dispatched lots, keeping their
customs status. What is received never exceeds what was dispatched; a shortfall stays in
transit until a stocktake adjustment `explains` it (lost in transit).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar
from uuid import UUID

import msgspec

from domain import values
from domain.declaration import Declaration, GoodsStatus
from domain.errors import Conflict, ValidationFailed
from domain.events import DomainEvent, Pending
from domain.exits import decide_leave
from domain.movements import (
    ExitBody,
    GateBody,
    ItemStock,
    Lot,
    MovementRecorded,
    MovementState,
    MovementView,
    Paper,
    held_key,
    item_stock_id,
    lot_id,
    new_lot_in_stock,
    record_gate_movement,
    release_reservation,
    without,
)
from domain.papers import MovementRequest, check_lines, declaration_for, line_stocks
from domain.unit_of_work import Decision, LazyPendings, UnitOfWork

LotKey = TypeVar("LotKey")


class TransferDispatch(
    ExitBody, frozen=True, kw_only=True, tag_field="kind", tag="transfer_dispatch"
):
    """Body of POST /v1/movements with `kind: transfer_dispatch` (an operator of the source)."""


class TransferReceipt(
    GateBody, frozen=True, kw_only=True, tag_field="kind", tag="transfer_receipt"
):
    """Body of POST /v1/movements with `kind: transfer_receipt` (an operator of the destination)."""


class TransferDispatched(DomainEvent, frozen=True, kw_only=True):
    """Goods left the source zone under a transfer: out of stock, into transit."""

    declaration_id: UUID
    movement_id: UUID
    quantity: Decimal
    by_lot: dict[UUID, Decimal]

    def apply(self, state: ItemStock) -> ItemStock:
        lots = without(state.lots, self.by_lot)
        reserved = release_reservation(state.reserved, self.declaration_id, state.lots, self.by_lot)
        transit = dict(state.in_transit)
        for lot, taken in self.by_lot.items():
            key = held_key(self.declaration_id, state.lots[lot].goods_status)
            moving = dict(transit.get(key, {}))
            moving[lot] = moving.get(lot, Decimal(0)) + taken
            transit[key] = moving
        return msgspec.structs.replace(
            state,
            version=self.originator_version,
            on_hand=state.on_hand - self.quantity,
            lots=lots,
            reserved=reserved,
            in_transit=transit,
        )


class TransitSettled(DomainEvent, frozen=True, kw_only=True):
    """Goods in transit under a transfer arrived (`received`) or were lost (`lost`)."""

    declaration_id: UUID
    quantity: Decimal
    outcome: str
    # In transit per customs status: a line receives from the lots of its own status.
    goods_status: GoodsStatus = "bonded"

    def apply(self, state: ItemStock) -> ItemStock:
        transit = dict(state.in_transit)
        key = held_key(self.declaration_id, self.goods_status)
        moving = dict(transit.pop(key))
        for lot, take in settled(moving, self.quantity).items():
            moving[lot] -= take
            if moving[lot] == 0:
                del moving[lot]
        if moving:
            transit[key] = moving
        return msgspec.structs.replace(state, version=self.originator_version, in_transit=transit)


def settled(moving: dict[LotKey, Decimal], quantity: Decimal) -> dict[LotKey, Decimal]:
    """Which in-transit lots `quantity` settles, and how much of each: in dispatch order (the
    trace's fold settles its own copy, keyed by lot id as text, by the same rule)."""
    left, taken = quantity, {}
    for lot, held in moving.items():
        if left <= 0:
            break
        take = min(left, held)
        if take > 0:
            taken[lot] = take
            left -= take
    return taken


class GoodsReceived(DomainEvent, frozen=True, kw_only=True):
    """The destination zone received goods of a transfer, per line."""

    movement_id: UUID
    quantities: dict[int, Decimal]

    def apply(self, state: Declaration) -> Declaration:
        lines = [
            msgspec.structs.replace(
                line,
                quantity_received=line.quantity_received + self.quantities.get(line.line_no, 0),
            )
            for line in state.facts.lines
        ]
        facts = msgspec.structs.replace(state.facts, lines=lines)
        return msgspec.structs.replace(state, version=self.originator_version, facts=facts)


def check_transfer(d: Declaration, released: bool, gate_zone: str | None, side: str) -> None:
    f = d.facts
    if f.flow != "transfer":
        raise Conflict(f"a {f.flow} declaration is not a transfer", rule="wrong_flow")
    if released and d.status != "released":
        raise Conflict(
            "goods are dispatched only under a released transfer declaration",
            rule="declaration_not_released",
            current_status=d.status,
        )
    zone = f.zone if side == "source" else f.destination_zone
    if gate_zone is not None and gate_zone != zone:
        raise Conflict(
            f"this is the source gate of {zone}, not {gate_zone}"
            if side == "source"
            else f"this is the destination gate of {zone}, not {gate_zone}",
            rule="zone_mismatch",
        )


def receivable(d: Declaration, quantities: dict[int, Decimal]) -> None:
    """What is received never exceeds what was dispatched (and not yet received)."""
    by_no = {line.line_no: line for line in d.facts.lines}
    for line_no, q in quantities.items():
        line = by_no[line_no]
        waiting = line.quantity_moved - line.quantity_received
        if q > waiting:
            raise Conflict(
                f"line {line_no}: {line.quantity_moved} dispatched, {line.quantity_received} "
                f"received; {q} is more than the {waiting} in transit",
                rule="exceeds_dispatched_quantity",
            )


def receive(
    *,
    declaration: Pending[Declaration],
    quantities: dict[int, Decimal],
    sources: dict[int, Pending[ItemStock]],
    destinations: dict[int, Pending[ItemStock]],
    new_lots: dict[int, Pending[Lot]],
    parent_lots: dict[UUID, Pending[Lot]],
    movement: Pending[MovementState],
    cmd: TransferReceipt,
    actor: object,
    occurred_at: datetime,
) -> MovementView:
    d = declaration.state
    assert d is not None
    f = d.facts
    if f.destination_zone is None or f.destination_account_book is None:
        raise ValidationFailed.at("$.declaration", "the transfer names no destination")
    receivable(d, quantities)
    common: dict[str, Any] = {"actor": actor, "occurred_at": occurred_at}
    by_no = {line.line_no: line for line in f.lines}
    declaration.record(GoodsReceived, movement_id=movement.id, quantities=quantities, **common)
    documents = [Paper("declaration", str(d.id), f.declaration_no)]
    if cmd.gate_note:
        documents.append(Paper("gate_note", cmd.gate_note, cmd.gate_note))
    created = []
    for line_no, quantity in quantities.items():
        line = by_no[line_no]
        source = sources[line.item_no]
        assert source.state is not None
        # Never more than is still in transit: a shortfall explained as lost is gone.
        status = line.goods_status or "bonded"
        moving = source.state.in_transit.get(held_key(d.id, status), {})
        waiting = sum(moving.values(), Decimal(0))
        if quantity > waiting:
            raise Conflict(
                f"line {line_no}: only {waiting} of item {line.item_no} is still in transit under "
                f"this transfer (the rest was received or written off as lost); {quantity} is "
                "more",
                rule="exceeds_dispatched_quantity",
            )
        # The lots this quantity came from: in transit, settled in dispatch order.
        parents = settled(moving, quantity)
        source.record(
            TransitSettled,
            declaration_id=d.id,
            quantity=quantity,
            outcome="received",
            goods_status=status,
            **common,
        )
        item = line.destination_item_no or line.item_no
        lot = new_lots[line_no]
        status = line.goods_status or "bonded"
        created.append(
            new_lot_in_stock(
                lot,
                destinations[item],
                zone=f.destination_zone,
                book_no=f.destination_account_book,
                item_no=item,
                goods_status=status,
                quantity=quantity,
                parents=parents,
                documents=documents,
                movement_id=movement.id,
                parent_lots=parent_lots,
                **common,
            )
        )
    return record_gate_movement(
        movement,
        kind="transfer_receipt",
        declaration=d,
        zone=f.destination_zone,
        account_book=f.destination_account_book,
        cmd=cmd,
        container=cmd.container,
        lots=created,
        **common,
    )


def explain_shortfall(
    *,
    stock: Pending[ItemStock],
    declaration: Declaration,
    item_no: int,
    unit: str,
    quantity_delta: Decimal,
    reason: str,
    movement: Pending[MovementState],
    actor: object,
    occurred_at: datetime,
) -> MovementView:
    """A stocktake explains a transfer's shortfall: that much was lost in transit."""
    f = declaration.facts
    held_stock = stock.state
    if f.flow != "transfer" or held_stock is None or f.account_book != held_stock.book_no:
        raise ValidationFailed.at("$.explains", "not a transfer out of this book")
    if quantity_delta >= 0:
        raise ValidationFailed.at("$.quantity_delta", "a shortfall is a negative quantity")
    values.quantity("$.quantity_delta", -quantity_delta, unit)
    waiting = {
        status: sum(held_stock.in_transit.get(held_key(declaration.id, status), {}).values())
        for status in ("bonded", "domestic")
    }
    if -quantity_delta > sum(waiting.values()):
        raise Conflict(
            f"only {sum(waiting.values())} of item {item_no} is in transit under this transfer",
            rule="exceeds_dispatched_quantity",
        )
    common = {"actor": actor, "occurred_at": occurred_at}
    lost = -quantity_delta
    for status, held in waiting.items():  # bonded first, then domestic
        if lost > 0 and held > 0:
            stock.record(
                TransitSettled,
                declaration_id=declaration.id,
                quantity=min(lost, held),
                outcome="lost",
                goods_status=status,
                **common,
            )
            lost -= min(lost, held)
    view = MovementView(
        movement_id=movement.id,
        kind="adjustment",
        declaration=declaration.id,
        declaration_no=f.declaration_no,
        zone=f.zone,
        account_book=f.account_book,
        occurred_at=occurred_at,
        lots=[],
        reason=reason,
    )
    movement.record(MovementRecorded, view=view, **common)
    return view


def decide_dispatch(
    uow: UnitOfWork, req: MovementRequest[TransferDispatch], now: datetime
) -> Decision[MovementView]:
    """A released transfer's goods leave the source zone: they stay in the source book as
    goods in transit until the destination receives them."""
    zone = req.actor.zone
    return decide_leave(
        uow,
        req,
        now,
        kind="transfer_dispatch",
        stock_event=TransferDispatched,
        check=lambda d: check_transfer(d, True, zone, "source"),
    )


def decide_receipt(
    uow: UnitOfWork, req: MovementRequest[TransferReceipt], now: datetime
) -> Decision[MovementView]:
    """The destination zone receives goods in transit: the transit settled in the source
    book, new lots (children of the dispatched ones) in the destination book."""
    cmd = req.cmd
    occurred = values.business_time("$.occurred_at", cmd.occurred_at, now)
    movement = uow.new(req.movement_id, MovementState)
    declaration = declaration_for(uow, cmd.declaration, req.scope)
    d = declaration.state
    assert d is not None
    check_transfer(d, False, req.actor.zone, "destination")
    quantities = check_lines(cmd, d, within_declared=False)
    by_no = {line.line_no: line for line in d.facts.lines}
    sources = line_stocks(uow, d, quantities)
    destination_items = {by_no[n].destination_item_no or by_no[n].item_no for n in quantities}
    destination_book = d.facts.destination_account_book
    destinations = {
        item: uow.pending(item_stock_id(str(destination_book), item), ItemStock)
        for item in destination_items
    }
    new_lots = {n: uow.new(lot_id(movement.id, n), Lot) for n in quantities}
    parent_lots = LazyPendings(uow, Lot)
    view = receive(
        declaration=declaration,
        quantities=quantities,
        sources=sources,
        destinations=destinations,
        new_lots=new_lots,
        parent_lots=parent_lots,
        movement=movement,
        cmd=cmd,
        actor=req.actor,
        occurred_at=occurred,
    )
    saves: list[Pending[Any]] = [movement, declaration, *sources.values()]
    saves += destinations.values()
    return Decision([*saves, *new_lots.values(), *parent_lots.values()], view)
