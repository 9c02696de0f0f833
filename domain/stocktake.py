"""Stocktake adjustments: counted against booked, the difference becomes events, never edits.

A shortage draws on lots (the one named, or first-in first-out among lots of one customs status,
never mixing bonded and domestic); a surplus without a lot creates a new bonded lot whose origin
is the adjustment. Stock never goes negative. A decrease of at least 1% of what the item held is
flagged for an officer (the US foreign-trade-zone rule reports shortages of 1% or more; the
threshold is a constant here until reference data carries it).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import cast
from uuid import UUID

import msgspec

from domain import values
from domain.account_book import AccountBook
from domain.declaration import AwareDatetime, Declaration, GoodsStatus, Str64, Str255
from domain.errors import Conflict, ValidationFailed
from domain.events import DomainEvent, Pending
from domain.movements import (
    ItemStock,
    Lot,
    LotBalance,
    LotCreated,
    LotView,
    MovementRecorded,
    MovementState,
    MovementView,
    Paper,
    fifo,
    item_stock_id,
)
from domain.movements import lot_id as new_lot_id
from domain.papers import MovementRequest, own_book
from domain.transfers import explain_shortfall
from domain.unit_of_work import Decision, LazyPendings, UnitOfWork

FLAG_RATIO = Decimal("0.01")


class Adjustment(
    msgspec.Struct,
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
    tag_field="kind",
    tag="adjustment",
):
    """Body of POST /v1/movements with `kind: adjustment` (the book's enterprise)."""

    account_book: Str64
    item_no: int
    quantity_delta: Decimal
    reason: Str255
    lot_id: UUID | None = None
    explains: Str64 | None = None
    occurred_at: AwareDatetime | None = None


class StockAdjusted(DomainEvent, frozen=True, kw_only=True):
    """A stocktake changed a book item's stock by `delta`, lot by lot, for a reason."""

    book_no: str
    item_no: int
    movement_id: UUID
    delta: Decimal
    by_lot: dict[UUID, Decimal]
    goods_status: str
    reason: str
    flagged: bool

    def apply(self, state: ItemStock | None) -> ItemStock:
        assert state is not None or self.delta > 0
        lots = dict(state.lots) if state else {}
        for lot, change in self.by_lot.items():
            before = lots[lot].quantity if lot in lots else Decimal(0)
            after = before + change
            if after == 0:
                lots.pop(lot, None)
            else:
                # Stored as text (the field predates the literal); only ever one of the two.
                status = cast(GoodsStatus, self.goods_status)
                lots[lot] = LotBalance(quantity=after, goods_status=status)
        return ItemStock(
            id=self.originator_id,
            version=self.originator_version,
            book_no=self.book_no,
            item_no=self.item_no,
            on_hand=(state.on_hand if state else Decimal(0)) + self.delta,
            lots=lots,
            reserved=dict(state.reserved) if state else {},
            in_transit=dict(state.in_transit) if state else {},
            held=dict(state.held) if state else {},
        )


class LotAdjusted(DomainEvent, frozen=True, kw_only=True):
    """A stocktake found this lot holding more or less than booked."""

    movement_id: UUID
    delta: Decimal
    reason: str

    def apply(self, state: Lot) -> Lot:
        return msgspec.structs.replace(
            state, version=self.originator_version, on_hand=state.on_hand + self.delta
        )


def plan(
    cmd: Adjustment, book: AccountBook, stock: ItemStock | None
) -> tuple[Decimal, dict[UUID, Decimal], str]:
    """Check the adjustment and decide which lots change: (delta, by lot, customs status)."""
    item = book.items.get(cmd.item_no)
    if item is None:
        raise ValidationFailed.at("$.item_no", f"item {cmd.item_no} is not in book {book.book_no}")
    values.text("$.reason", cmd.reason)
    magnitude = values.quantity("$.quantity_delta", abs(cmd.quantity_delta), item.unit)
    delta = magnitude if cmd.quantity_delta > 0 else -magnitude
    lots = stock.lots if stock else {}
    if cmd.lot_id is not None:
        balance = lots.get(cmd.lot_id)
        if balance is None:
            raise ValidationFailed.at("$.lot_id", "no open lot of this item with that id")
        if balance.quantity + delta < 0:
            raise Conflict(
                f"lot {cmd.lot_id} holds {balance.quantity}; it cannot lose {magnitude}",
                rule="insufficient_stock",
            )
        if delta < 0 and stock is not None and stock.available_of(balance.goods_status) < magnitude:
            # Released declarations have reserved the item's goods: a shortage named on a lot
            # may not take what they hold (available never goes below zero, invariant 1).
            raise Conflict(
                f"the item's {balance.goods_status} stock not reserved is less than {magnitude}",
                rule="insufficient_stock",
            )
        return delta, {cmd.lot_id: delta}, balance.goods_status
    if delta > 0:
        return delta, {}, "bonded"
    if not lots:
        raise Conflict("the item has no stock to adjust down", rule="insufficient_stock")
    # First in, first out, among lots of the oldest lot's status only; never below what
    # released declarations have reserved of that status.
    status = next(iter(lots.values())).goods_status
    taken = fifo(lots, status, magnitude) if stock is not None else None
    if taken is None or stock is None or stock.available_of(status) < magnitude:
        raise Conflict(
            f"the item's {status} lots hold less than {magnitude} that is not reserved",
            rule="insufficient_stock",
        )
    by_lot = {lot: -q for lot, q in taken.items()}
    return delta, by_lot, status


def adjust(
    *,
    cmd: Adjustment,
    book: AccountBook,
    stock: Pending[ItemStock],
    lots: dict[UUID, Pending[Lot]],
    new_lot: Pending[Lot],
    movement: Pending[MovementState],
    actor: object,
    occurred_at: datetime,
) -> MovementView:
    """Record the adjustment on the item's stock, the lots and the movement, in one write."""
    delta, by_lot, status = plan(cmd, book, stock.state)
    common = {"actor": actor, "occurred_at": occurred_at}
    created: list[LotView] = []
    if delta > 0 and not by_lot:
        new_lot.record(
            LotCreated,
            zone=book.zone,
            account_book=book.book_no,
            item_no=cmd.item_no,
            goods_status="bonded",
            quantity=delta,
            parents=[],
            documents=[Paper("adjustment", str(movement.id), cmd.reason)],
            movement_id=movement.id,
            **common,
        )
        by_lot = {new_lot.id: delta}
        created.append(LotView(lot_id=new_lot.id, item_no=cmd.item_no, quantity=delta))
    else:
        for lot_id, change in by_lot.items():
            lots[lot_id].record(
                LotAdjusted, movement_id=movement.id, delta=change, reason=cmd.reason, **common
            )
            created.append(LotView(lot_id=lot_id, item_no=cmd.item_no, quantity=change))
    held = stock.state.on_hand if stock.state else Decimal(0)
    flagged = delta < 0 and held > 0 and -delta >= held * FLAG_RATIO
    stock.record(
        StockAdjusted,
        book_no=book.book_no,
        item_no=cmd.item_no,
        movement_id=movement.id,
        delta=delta,
        by_lot=by_lot,
        goods_status=status,
        reason=cmd.reason,
        flagged=flagged,
        **common,
    )
    view = MovementView(
        movement_id=movement.id,
        kind="adjustment",
        zone=book.zone,
        account_book=book.book_no,
        occurred_at=occurred_at,
        lots=created,
        flagged=flagged,
        reason=cmd.reason,
    )
    movement.record(MovementRecorded, view=view, **common)
    return view


def decide_adjustment(
    uow: UnitOfWork, req: MovementRequest[Adjustment], now: datetime
) -> Decision[MovementView]:
    """A stocktake adjusts the caller's own book item: a surplus is a new lot, a shortage
    draws named or first-in first-out lots; with `explains`, a shortage is goods of a
    transfer out of this book lost in transit."""
    cmd = req.cmd
    occurred = values.business_time("$.occurred_at", cmd.occurred_at, now)
    book = own_book(uow, cmd.account_book, req.scope)
    stock = uow.pending(item_stock_id(book.book_no, cmd.item_no), ItemStock)
    movement = uow.new(req.movement_id, MovementState)
    if cmd.explains is not None:
        transfer = explained_transfer(uow, cmd, book)
        values.text("$.reason", cmd.reason)
        view = explain_shortfall(
            stock=stock,
            declaration=transfer,
            item_no=cmd.item_no,
            unit=book.items[cmd.item_no].unit,
            quantity_delta=cmd.quantity_delta,
            reason=cmd.reason,
            movement=movement,
            actor=req.actor,
            occurred_at=occurred,
        )
        return Decision([movement, stock], view)
    # Only the lots the adjustment changes are read (a book item may hold thousands of open
    # lots; reading them all made every stocktake O(open lots), issue #14).
    lots = LazyPendings(uow, Lot)
    new_lot = uow.new(new_lot_id(movement.id, 0), Lot)
    view = adjust(
        cmd=cmd,
        book=book,
        stock=stock,
        lots=lots,
        new_lot=new_lot,
        movement=movement,
        actor=req.actor,
        occurred_at=occurred,
    )
    changed = [p for p in (*lots.values(), new_lot) if p.events]
    return Decision([movement, stock, *changed], view)


def explained_transfer(uow: UnitOfWork, cmd: Adjustment, book: AccountBook) -> Declaration:
    """The transfer declaration a shortfall explains: the book's enterprise's own, of an item
    of the book. Another enterprise's reads as unknown (never reveal that it exists)."""
    assert cmd.explains is not None
    stream = uow.declaration_id(cmd.explains)
    transfer = uow.load(stream, Declaration) if stream else None
    if (
        transfer is None
        or transfer.facts.declarant != book.enterprise
        or cmd.item_no not in book.items
    ):
        raise ValidationFailed.at("$.explains", "no such transfer declaration")
    return transfer
