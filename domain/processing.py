"""Processing in a zone: inputs consumed, outputs produced with the consumed lots as parents.

Only in zones whose permits include it on the day: `processing` (manufacturing) in the bonded
and export-processing zones, `simple_processing` (repack, label, sort) also in the logistics
centre, which may not manufacture. Outputs are bonded when any input is bonded. With `bom_ref`
the movement is checked against that registered bill of materials of the book (domain/bom.py):
its one output item, its input items, and each input's consumption within the BOM's tolerance.

With `checklist` the movement consumes under an approved `processing` checklist of the book
(domain/outbound_checklists.py): the checklist pre-decreased the bonded materials when it was
filed, so they are drawn from what it holds (`ChecklistInputsConsumed`); every bonded input
must be listed on it and within what its lines have left (409 `exceeds_checklist_quantity`),
and it closes once all it lists is consumed. Domestic inputs need no checklist.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec

from domain import values
from domain.account_book import AccountBook
from domain.bom import Bom, bom_id, check_consumption, valid_ref
from domain.declaration import SHANGHAI, AwareDatetime, GoodsStatus, Str64
from domain.errors import Conflict, ValidationFailed
from domain.events import DomainEvent, Pending
from domain.exits import LotDrawn
from domain.movements import (
    GoodsAdmitted,
    ItemStock,
    Lot,
    LotView,
    MovementRecorded,
    MovementState,
    MovementView,
    Paper,
    fifo,
    item_stock_id,
    new_lot_in_stock,
    release_reservation,
    without,
)
from domain.movements import lot_id as new_lot_id
from domain.outbound_checklists import ChecklistLinesMoved, open_checklist, per_line
from domain.papers import MovementRequest, own_book
from domain.reference import Zone
from domain.standalone_checklists import Checklist
from domain.unit_of_work import Decision, LazyPendings, UnitOfWork
from domain.values import Problems


class Input(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An input: FIFO over the item's lots of `goods_status` (default bonded), or the lot
    named by `lot_id` (then its own status applies)."""

    item_no: int
    quantity: Decimal
    goods_status: GoodsStatus | None = None
    lot_id: UUID | None = None


OutputRole = Literal["product", "by_product", "scrap"]


class Output(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An output: the product (default), a by-product (副产品) or scrap (边角料), each a lot of
    its own; a BOM checks the product only."""

    item_no: int
    quantity: Decimal
    role: OutputRole = "product"


class ByProductMade(GoodsAdmitted, frozen=True, kw_only=True):
    """Processing made a by-product (副产品) of this item, as a new lot."""


class ScrapMade(GoodsAdmitted, frozen=True, kw_only=True):
    """Processing left scrap (边角料) of this item, as a new lot."""


# The stock event of each output role (a product's is the plain admission).
MADE: dict[str, type[GoodsAdmitted] | None] = {
    "product": None,
    "by_product": ByProductMade,
    "scrap": ScrapMade,
}


class Processing(
    msgspec.Struct,
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
    tag_field="kind",
    tag="processing",
):
    """Body of POST /v1/movements with `kind: processing` (the book's enterprise)."""

    zone: Str64
    account_book: Str64
    inputs: Annotated[list[Input], msgspec.Meta(max_length=99)]
    outputs: Annotated[list[Output], msgspec.Meta(max_length=99)]
    operation: Literal["processing", "simple_processing"] = "processing"
    occurred_at: AwareDatetime | None = None
    # A bill of materials registered in the book (POST /v1/account-books/{book_no}/boms).
    bom_ref: Str64 | None = None
    # An approved `processing` checklist of the book whose materials it consumes.
    checklist: Str64 | None = None


class InputsConsumed(DomainEvent, frozen=True, kw_only=True):
    """Processing consumed this much of the item, lot by lot."""

    movement_id: UUID
    quantity: Decimal
    by_lot: dict[UUID, Decimal]

    def apply(self, state: ItemStock) -> ItemStock:
        lots = without(state.lots, self.by_lot)
        return msgspec.structs.replace(
            state,
            version=self.originator_version,
            on_hand=state.on_hand - self.quantity,
            lots=lots,
        )


class ChecklistInputsConsumed(InputsConsumed, frozen=True, kw_only=True):
    """Processing consumed bonded materials a processing checklist held (pre-decreased at its
    filing): the holding becomes the decrease."""

    checklist_id: UUID

    def apply(self, state: ItemStock) -> ItemStock:
        reserved = release_reservation(state.reserved, self.checklist_id, state.lots, self.by_lot)
        after = super().apply(state)
        return msgspec.structs.replace(after, reserved=reserved)


def under_checklist(
    uow: UnitOfWork, cmd: Processing, book: AccountBook
) -> Pending[Checklist] | None:
    """The processing checklist the movement names, and its lines for the bonded inputs."""
    if cmd.checklist is None:
        return None
    who = book.enterprise
    found = open_checklist(uow, cmd.checklist, "processing", loc="$.checklist", who=who)
    c = found.current
    if c.account_book != book.book_no:
        raise ValidationFailed.at(
            "$.checklist", f"checklist {c.checklist_no} is of {c.account_book}"
        )
    listed = {line.item_no for line in c.lines}
    p = Problems()
    for n, entry in enumerate(cmd.inputs):
        if entry.goods_status in (None, "bonded") and entry.item_no not in listed:
            p.add(
                f"$.inputs[{n}].item_no",
                f"item {entry.item_no} is not on checklist {c.checklist_no}: bonded materials "
                "consumed under it are listed on it",
            )
    p.raise_if_any()
    # Beyond what the checklist has left: refused before any stock is looked at.
    wanted: dict[int, Decimal] = {}
    for entry in cmd.inputs:
        if entry.goods_status in (None, "bonded") and entry.lot_id is None:
            wanted[entry.item_no] = wanted.get(entry.item_no, Decimal(0)) + entry.quantity
    per_line(c, wanted)
    return found


def check(cmd: Processing, book: AccountBook, zone: Zone | None, day: date) -> None:
    if zone is None or book.zone != cmd.zone:
        raise ValidationFailed.at("$.zone", "the book is not kept in this zone")
    if cmd.operation not in zone.permits_on(day):
        raise Conflict(
            f"zone {zone.code} does not permit {cmd.operation} on {day}",
            rule="zone_not_permitted",
        )
    p = Problems()
    if not cmd.inputs:
        p.add("$.inputs", "processing consumes at least one input")
    if not cmd.outputs:
        p.add("$.outputs", "processing produces at least one output")
    sides: tuple[tuple[str, Sequence[Input | Output]], ...] = (
        ("inputs", cmd.inputs),
        ("outputs", cmd.outputs),
    )
    for side, entries in sides:
        for n, entry in enumerate(entries):
            item = book.items.get(entry.item_no)
            if item is None:
                p.add(f"$.{side}[{n}].item_no", f"item {entry.item_no} is not in the book")
                continue
            p.check(f"$.{side}[{n}].quantity", values.quantity, entry.quantity, item.unit)
    if cmd.bom_ref is not None:
        p.check("$.bom_ref", valid_ref, cmd.bom_ref)
    p.raise_if_any()


def check_bom(cmd: Processing, bom: object) -> None:
    """The movement against the BOM it names: `bom` is the state of the stream
    `domain.bom.bom_id(book, bom_ref)`, None when the book has no such BOM (another book's BOM
    is simply not in this one: 422 at `$.bom_ref` as for an unknown one)."""
    if not isinstance(bom, Bom):
        raise ValidationFailed.at("$.bom_ref", "no such bill of materials in this account book")
    consumed: dict[int, Decimal] = {}
    for entry in cmd.inputs:
        consumed[entry.item_no] = consumed.get(entry.item_no, Decimal(0)) + entry.quantity
    produced: dict[int, Decimal] = {}
    for out in cmd.outputs:
        if out.role == "product":  # by-products and scrap are not the BOM's output
            produced[out.item_no] = produced.get(out.item_no, Decimal(0)) + out.quantity
    check_consumption(bom, consumed, produced)


def _draw(
    n: int, entry: Input, held: ItemStock | None
) -> tuple[GoodsStatus, dict[UUID, Decimal] | None]:
    """(customs status, quantity per lot) an input takes: the named lot, or FIFO among the
    lots of its status; None when they do not hold enough."""
    if entry.lot_id is None:
        status: GoodsStatus = entry.goods_status or "bonded"
        return status, fifo(held.lots, status, entry.quantity) if held else None
    balance = held.lots.get(entry.lot_id) if held else None
    if balance is None or entry.goods_status not in (None, balance.goods_status):
        raise ValidationFailed.at(
            f"$.inputs[{n}].lot_id",
            f"no open lot {entry.lot_id} of item {entry.item_no} with status"
            f" {entry.goods_status} in this book"
            if entry.goods_status
            else f"no open lot {entry.lot_id} of item {entry.item_no} in this book",
        )
    enough = balance.quantity >= entry.quantity
    return balance.goods_status, {entry.lot_id: entry.quantity} if enough else None


def process(
    *,
    cmd: Processing,
    book: AccountBook,
    stocks: dict[int, Pending[ItemStock]],
    lots: dict[UUID, Pending[Lot]],
    new_lots: dict[int, Pending[Lot]],
    movement: Pending[MovementState],
    actor: object,
    occurred_at: datetime,
    checklist: Pending[Checklist] | None = None,
) -> MovementView:
    common: dict[str, Any] = {"actor": actor, "occurred_at": occurred_at}
    holder = checklist.id if checklist is not None else None
    bonded_used: dict[int, Decimal] = {}
    consumed: dict[UUID, Decimal] = {}  # lot -> how much of it went in
    view_lots: list[LotView] = []
    statuses: set[str] = set()
    for n, entry in enumerate(cmd.inputs):
        stock = stocks[entry.item_no]
        held = stock.state
        status, taken = _draw(n, entry, held)
        available = held.available_of(status) if held else Decimal(0)
        under = holder is not None and status == "bonded"
        if under and held is not None:  # what the checklist holds is its to consume
            kept = held.reserved.get(holder)  # type: ignore[arg-type]
            available += kept.quantity if kept is not None else Decimal(0)
            used = bonded_used.get(entry.item_no, Decimal(0))
            bonded_used[entry.item_no] = used + entry.quantity
        if taken is None or entry.quantity > available:
            raise Conflict(
                f"item {entry.item_no} has {available} {status} available (lot {entry.lot_id}"
                f" too little); processing needs {entry.quantity}"
                if entry.lot_id
                else f"item {entry.item_no} has {available} {status} available; processing"
                f" needs {entry.quantity}",
                rule="insufficient_stock",
            )
        if under:
            stock.record(
                ChecklistInputsConsumed,
                movement_id=movement.id,
                quantity=entry.quantity,
                by_lot=taken,
                checklist_id=holder,
                **common,
            )
        else:
            stock.record(
                InputsConsumed,
                movement_id=movement.id,
                quantity=entry.quantity,
                by_lot=taken,
                **common,
            )
        for lot_id, q in taken.items():
            lots[lot_id].record(LotDrawn, movement_id=movement.id, quantity=q, **common)
            view_lots.append(LotView(lot_id=lot_id, item_no=entry.item_no, quantity=-q))
            consumed[lot_id] = consumed.get(lot_id, Decimal(0)) + q
        statuses.add(status)
    # Outputs made from any bonded input are bonded (duties stay suspended).
    made: GoodsStatus = "bonded" if "bonded" in statuses else "domestic"
    documents = [Paper("processing", str(movement.id), cmd.operation)]
    if checklist is not None:
        c = checklist.current
        checklist.record(
            ChecklistLinesMoved,
            movement_id=movement.id,
            quantities=per_line(c, bonded_used),
            **common,
        )
        documents.append(Paper("checklist", c.checklist_no, c.checklist_no))
    for n, out in enumerate(cmd.outputs):
        lot = new_lots[n]
        papers = documents
        if out.role != "product":
            papers = [*documents, Paper("output", out.role, out.role)]
        view_lots.append(
            new_lot_in_stock(
                lot,
                stocks[out.item_no],
                zone=cmd.zone,
                book_no=book.book_no,
                item_no=out.item_no,
                goods_status=made,
                quantity=out.quantity,
                parents=consumed,
                documents=papers,
                movement_id=movement.id,
                parent_lots=lots,
                admitted=MADE[out.role],
                **common,
            )
        )
    view = MovementView(
        movement_id=movement.id,
        kind="processing",
        zone=cmd.zone,
        account_book=book.book_no,
        occurred_at=occurred_at,
        lots=view_lots,
        bom_ref=cmd.bom_ref,
        checklist_no=checklist.current.checklist_no if checklist is not None else None,
    )
    movement.record(MovementRecorded, view=view, **common)
    return view


def decide_processing(
    uow: UnitOfWork, req: MovementRequest[Processing], now: datetime
) -> Decision[MovementView]:
    """Processing in the caller's own book, in a zone permitted that operation on the day,
    against the BOM it names: inputs consumed from lots, outputs as new lots."""
    cmd = req.cmd
    occurred = values.business_time("$.occurred_at", cmd.occurred_at, now)
    book = own_book(uow, cmd.account_book, req.scope)
    check(cmd, book, req.zones.get(cmd.zone), now.astimezone(SHANGHAI).date())
    if cmd.bom_ref is not None:
        # The BOM records no event here: it is immutable once registered, so the state read
        # now is still the state at commit (see domain/bom.py check_consumption).
        check_bom(cmd, uow.load(bom_id(book.book_no, cmd.bom_ref), Bom))
    checklist = under_checklist(uow, cmd, book)
    items = {e.item_no for e in cmd.inputs} | {o.item_no for o in cmd.outputs}
    stocks = {i: uow.pending(item_stock_id(book.book_no, i), ItemStock) for i in items}
    movement = uow.new(req.movement_id, MovementState)
    lots = LazyPendings(uow, Lot)
    new_lots = {n: uow.new(new_lot_id(movement.id, n), Lot) for n in range(len(cmd.outputs))}
    view = process(
        cmd=cmd,
        book=book,
        stocks=stocks,
        lots=lots,
        new_lots=new_lots,
        movement=movement,
        actor=req.actor,
        occurred_at=occurred,
        checklist=checklist,
    )
    saves: list[Pending[Any]] = [movement, *stocks.values(), *lots.values(), *new_lots.values()]
    return Decision([*saves, checklist] if checklist else saves, view)
