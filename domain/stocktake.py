"""Stocktake adjustments: counted against booked, the difference becomes events, never edits.

A shortage draws on lots (the one named, or first-in first-out among lots of one customs status,
never mixing bonded and domestic); a surplus without a lot creates a new bonded lot whose origin
is the adjustment. Stock never goes negative.

Losses with liability (issue #18 item 3): a decrease of bonded goods is judged lot by lot, and
a lot's shortage is **flagged** when it is at least 1% of the lot's quantity **and** the duty it
would bear is at least the threshold (`DutyTables.shortage_threshold`, USD 100 at the month's
customs rate by default: 19 CFR 146.53 reports a shortage of 1% of the lot and USD 100 of
duty). A flagged shortage creates a duty liability for the flagged quantity
(domain/liabilities.py, a tax bill) unless an officer accepts a force-majeure reason for it
(`POST /v1/tax-bills/{id}/force-majeure`); the bill is issued the day the shortage is recorded
(customs' own time never earns a late fee), even when the count's business time is earlier.
Goods the ledger cannot value (the item was never released, so it has no price) are flagged on
the 1% rule alone, for an officer, and bear no liability [not built: an officer valuing such
a shortage afterwards]. Domestic goods bear no duty and are never flagged.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any, cast
from uuid import UUID, uuid5

import msgspec

from domain import liabilities as li
from domain import values
from domain.account_book import AccountBook
from domain.declaration import SHANGHAI, AwareDatetime, Declaration, GoodsStatus, Str64, Str255
from domain.duties import DutyTables, rate_month
from domain.errors import Conflict, ValidationFailed
from domain.events import Actor, DomainEvent, Pending
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
from domain.reference_rules import duty_tables, read_registers
from domain.transfers import explain_shortfall
from domain.unit_of_work import Decision, LazyPendings, UnitOfWork
from domain.write_offs import AssessedShortage

FLAG_RATIO = Decimal("0.01")


class ShortageJudge:
    """Judges a bonded decrease lot by lot: the 1% rule on the lot, and the duty its shortage
    would bear against the threshold at the month's rate (None: it cannot be valued)."""

    def __init__(
        self, uow: UnitOfWork, tables: DutyTables, book: AccountBook, item_no: int, day: date
    ) -> None:
        self.uow, self.tables, self.book, self.item_no, self.day = uow, tables, book, item_no, day
        self.threshold = _threshold_cny(tables, day)

    def value(self, quantity: Decimal) -> AssessedShortage | None:
        try:
            return li.assess_shortage(
                uow=self.uow,
                tables=self.tables,
                book=self.book,
                item_no=self.item_no,
                quantity=quantity,
                on=self.day,
                given=None,
            )
        except ValidationFailed:  # no tariff table or rate for the day: not valued
            return None

    def flagged(self, lot: Lot, short: Decimal) -> bool:
        if short < lot.quantity_in * FLAG_RATIO:
            return False
        duty = self.value(short)
        if duty is None or self.threshold is None:
            return True  # cannot be valued: the 1% rule alone
        return li.total_tax([duty]) >= self.threshold


def _threshold_cny(tables: DutyTables, day: date) -> Decimal | None:
    amount, currency = tables.shortage_threshold, tables.shortage_threshold_currency
    try:
        return amount * tables.cny_per_unit(currency, rate_month(day))
    except ValidationFailed:
        return None


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


class Change:
    """What an adjustment records of one item, lot by lot, with its reason as the paper: a
    stocktake's, and a write-off certification's bringing the book to the count."""

    def __init__(self, book: AccountBook, item_no: int, movement_id: UUID, reason: str) -> None:
        self.book, self.item_no, self.movement_id, self.reason = book, item_no, movement_id, reason

    def surplus_lot(
        self, lot: Pending[Lot], quantity: Decimal, **common: Any
    ) -> dict[UUID, Decimal]:
        """A new bonded lot whose paper is the adjustment: goods found that the book lacked."""
        lot.record(
            LotCreated,
            zone=self.book.zone,
            account_book=self.book.book_no,
            item_no=self.item_no,
            goods_status="bonded",
            quantity=quantity,
            parents=[],
            documents=[Paper("adjustment", str(self.movement_id), self.reason)],
            movement_id=self.movement_id,
            **common,
        )
        return {lot.id: quantity}

    def lots_adjusted(
        self, lots: Mapping[UUID, Pending[Lot]], by_lot: dict[UUID, Decimal], **common: Any
    ) -> None:
        for lot_id, delta in by_lot.items():
            lots[lot_id].record(
                LotAdjusted, movement_id=self.movement_id, delta=delta, reason=self.reason, **common
            )

    def stock_adjusted(
        self,
        stock: Pending[ItemStock],
        by_lot: dict[UUID, Decimal],
        goods_status: str,
        *,
        flagged: bool,
        **common: Any,
    ) -> None:
        stock.record(
            StockAdjusted,
            book_no=self.book.book_no,
            item_no=self.item_no,
            movement_id=self.movement_id,
            delta=sum(by_lot.values(), Decimal(0)),
            by_lot=by_lot,
            goods_status=goods_status,
            reason=self.reason,
            flagged=flagged,
            **common,
        )

    def views(self, by_lot: dict[UUID, Decimal]) -> list[LotView]:
        return [LotView(lot_id=k, item_no=self.item_no, quantity=q) for k, q in by_lot.items()]


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
    actor: Actor,
    occurred_at: datetime,
    judge: ShortageJudge | None = None,
    liability: Pending[li.Liability] | None = None,
    now: datetime | None = None,
) -> MovementView:
    """Record the adjustment on the item's stock, the lots and the movement, in one write; a
    bonded shortage flagged on any lot makes a liability for the flagged lots' quantity."""
    delta, by_lot, status = plan(cmd, book, stock.state)
    common = {"actor": actor, "occurred_at": occurred_at}
    change = Change(book, cmd.item_no, movement.id, cmd.reason)
    if delta > 0 and not by_lot:
        by_lot = change.surplus_lot(new_lot, delta, **common)
    else:
        change.lots_adjusted(lots, by_lot, **common)
    created = change.views(by_lot)
    flagged_quantity = Decimal(0)
    if delta < 0 and status == "bonded" and judge is not None:
        for lot_id, taken in by_lot.items():
            state = lots[lot_id].state
            assert state is not None
            # The lot's quantity before this decrease was recorded on it.
            if judge.flagged(state, -taken):
                flagged_quantity -= taken
    flagged = flagged_quantity > 0
    if flagged and liability is not None and judge is not None:
        duty = judge.value(flagged_quantity)
        if duty is not None:
            subject: tuple[li.SubjectKind, UUID, str] = ("shortage", movement.id, str(movement.id))
            li.record(
                liability,
                subject=subject,
                book=book,
                lines=[duty],
                actor=actor,
                now=now or occurred_at,
            )
    change.stock_adjusted(stock, by_lot, status, flagged=flagged, **common)
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
    judge = None
    if req.duties is not None and cmd.quantity_delta < 0:
        tables = duty_tables(read_registers(uow), req.duties)
        day = occurred.astimezone(SHANGHAI).date()
        judge = ShortageJudge(uow, tables, book, cmd.item_no, day)
    liability = uow.new(shortage_liability_id(movement.id), li.Liability)
    view = adjust(
        cmd=cmd,
        book=book,
        stock=stock,
        lots=lots,
        new_lot=new_lot,
        movement=movement,
        actor=req.actor,
        occurred_at=occurred,
        judge=judge,
        liability=liability,
        now=now,
    )
    changed = [p for p in (*lots.values(), new_lot, liability) if p.events]
    return Decision([movement, stock, *changed], view)


def shortage_liability_id(movement_id: UUID) -> UUID:
    return uuid5(movement_id, "liability")


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
