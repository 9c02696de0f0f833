"""Movements of goods through the zones' gates. This first part: admission (`gate_in`).

Goods of a released inbound declaration (`first_line_in` from abroad, `second_line_in` from
China's market) pass the zone's gate; each line becomes a lot, the unit of traceability, and
the book item's stock grows. One atomic write records every fact the decision depends on:
the declaration's moved quantity (never beyond what its line covers), the book item's stock,
the new lots and the movement itself. See docs/decisions/0007-stock-and-lots.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID, uuid5

import msgspec

from domain.declaration import AwareDatetime, Declaration, GoodsStatus, Str64
from domain.events import AggregateState, DomainEvent, Pending, stream_id

INBOUND = ("first_line_in", "second_line_in")
# Every kind of movement; each is registered in domain/movement_kinds.py.
MovementKind = Literal[
    "gate_in",
    "gate_out",
    "transfer_dispatch",
    "transfer_receipt",
    "processing",
    "adjustment",
    "in_zone_transfer",
    "destruction",
]


class MovementLine(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A line of `gate_in` and `transfer_receipt`: they create lots, so they name none
    (`lots` there is an unknown field, 422 at `$.lines[n].lots`)."""

    line_no: int
    quantity: Decimal


class LotPick(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How much to draw from one named lot."""

    lot_id: UUID
    quantity: Decimal


class ExitLine(MovementLine, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A line of `gate_out` and `transfer_dispatch`: without `lots` the line draws first-in
    first-out; with them, exactly those lots, their quantities adding up to the line's."""

    lots: Annotated[list[LotPick], msgspec.Meta(max_length=99)] | None = None


class GateBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What every gate movement says: under which declaration, how much per line, and the
    gate's own papers."""

    declaration: Str64
    lines: Annotated[list[MovementLine], msgspec.Meta(max_length=999)]
    occurred_at: AwareDatetime | None = None
    gate_note: Str64 | None = None
    vehicle: Str64 | None = None
    container: Str64 | None = None


class ExitBody(GateBody, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A gate movement that takes goods out of a book (`gate_out`, `transfer_dispatch`): its
    lines may name the lots to draw."""

    # Narrows the parent's field, as msgspec allows; mypy takes any field override for a clash.
    lines: Annotated[list[ExitLine], msgspec.Meta(max_length=999)]  # type: ignore[assignment]


class GateIn(GateBody, frozen=True, kw_only=True, tag_field="kind", tag="gate_in"):
    """Body of POST /v1/movements with `kind: gate_in` (an operator of the zone): goods under
    a released inbound `declaration`, or a retail list's returned goods under `return_id`
    (domain/readmission.py); exactly one of the two."""

    # Optional here only: a gate_in names its declaration or its return (422 otherwise).
    declaration: Str64 | None = None  # type: ignore[assignment]
    return_id: UUID | None = None


class LotView(msgspec.Struct, frozen=True, kw_only=True):
    lot_id: UUID
    item_no: int
    quantity: Decimal


class MovementView(msgspec.Struct, frozen=True, kw_only=True):
    """What POST /v1/movements and GET /v1/movements/{id} answer."""

    movement_id: UUID
    kind: MovementKind
    zone: str
    account_book: str
    occurred_at: datetime
    lots: list[LotView]
    declaration: UUID | None = None
    declaration_no: str | None = None
    gate_note: str | None = None
    vehicle: str | None = None
    container: str | None = None
    # Stocktake adjustments: why, and whether a decrease is flagged for an officer.
    reason: str | None = None
    flagged: bool = False
    # Processing under a registered bill of materials.
    bom_ref: str | None = None
    # The checklist (核注清单) its declaration filed, and the gate pass (核放单) whose passage
    # recorded it (domain/checklists.py, domain/gate_passes.py).
    checklist_no: str | None = None
    gate_pass: str | None = None


class MovementAnswer(MovementView, frozen=True, kw_only=True):
    """A movement as the API answers it: the recorded view and its position in the log."""

    position: int | None = None


def answer(view: MovementView, position: int | None) -> MovementAnswer:
    return MovementAnswer(**msgspec.structs.asdict(view), position=position)


# -- declarations: what has moved under each line -------------------------------------------


class GoodsMoved(DomainEvent, frozen=True, kw_only=True):
    """Goods passed the gate under a declaration: how much, per line, by which movement."""

    movement_id: UUID
    quantities: dict[int, Decimal]

    def apply(self, state: Declaration) -> Declaration:
        lines = [
            msgspec.structs.replace(
                line, quantity_moved=line.quantity_moved + self.quantities.get(line.line_no, 0)
            )
            for line in state.facts.lines
        ]
        facts = msgspec.structs.replace(state.facts, lines=lines)
        return msgspec.structs.replace(
            state,
            version=self.originator_version,
            facts=facts,
            movement_ids=(*state.movement_ids, self.movement_id),
        )


# -- book items: stock ------------------------------------------------------------------------


class LotBalance(msgspec.Struct, frozen=True, kw_only=True):
    """What is left of one lot in its book item, and its customs status (FIFO never mixes)."""

    quantity: Decimal
    goods_status: GoodsStatus


class Reservation(msgspec.Struct, frozen=True, kw_only=True):
    """What a released outbound declaration holds back of this item until it leaves."""

    quantity: Decimal
    goods_status: GoodsStatus


class ItemStock(AggregateState, frozen=True, kw_only=True):
    """One account-book item's stock: on hand, its open lots in FIFO (admission) order, and
    what released outbound declarations have reserved (`pending_out`)."""

    book_no: str
    item_no: int
    on_hand: Decimal
    lots: dict[UUID, LotBalance]
    reserved: dict[UUID, Reservation] = {}
    # Dispatched by transfer declarations and not yet received (or explained): per lot.
    in_transit: dict[UUID, dict[UUID, Decimal]] = {}
    # Of `reserved`, what holds goods that entered first until their declaration, by checklist
    # (domain/enter_first.py): no outbound declaration may reserve them meanwhile.
    held: dict[UUID, Decimal] = {}

    def held_of(self, goods_status: GoodsStatus) -> Decimal:
        """Goods of this status waiting for their declaration (entered first: bonded)."""
        return sum(self.held.values(), Decimal(0)) if goods_status == "bonded" else Decimal(0)

    @property
    def in_transit_out(self) -> Decimal:
        return sum((q for lots in self.in_transit.values() for q in lots.values()), Decimal(0))

    def on_hand_of(self, goods_status: GoodsStatus) -> Decimal:
        return sum(
            (b.quantity for b in self.lots.values() if b.goods_status == goods_status), Decimal(0)
        )

    def reserved_of(self, goods_status: GoodsStatus) -> Decimal:
        return sum(
            (r.quantity for r in self.reserved.values() if r.goods_status == goods_status),
            Decimal(0),
        )

    @property
    def pending_out(self) -> Decimal:
        return sum((r.quantity for r in self.reserved.values()), Decimal(0))

    def available_of(self, goods_status: GoodsStatus) -> Decimal:
        return self.on_hand_of(goods_status) - self.reserved_of(goods_status)


def without(lots: dict[UUID, LotBalance], by_lot: dict[UUID, Decimal]) -> dict[UUID, LotBalance]:
    """The open lots after taking `by_lot` from them (emptied lots close)."""
    left = dict(lots)
    for lot, taken in by_lot.items():
        rest = left[lot].quantity - taken
        if rest == 0:
            del left[lot]
        else:
            left[lot] = msgspec.structs.replace(left[lot], quantity=rest)
    return left


def held_key(declaration_id: UUID, goods_status: str) -> UUID:
    """What a declaration holds of an item (reserved, or in transit) is kept per customs status:
    one declaration may move bonded and domestic goods of the same item."""
    return declaration_id if goods_status == "bonded" else uuid5(declaration_id, goods_status)


def by_status(lots: dict[UUID, LotBalance], by_lot: dict[UUID, Decimal]) -> dict[str, Decimal]:
    """How much of `by_lot` (drawn from open `lots`) was of each customs status."""
    total: dict[str, Decimal] = {}
    for lot, q in by_lot.items():
        status = lots[lot].goods_status
        total[status] = total.get(status, Decimal(0)) + q
    return total


def release_reservation(
    reserved: dict[UUID, Reservation],
    declaration_id: UUID,
    lots: dict[UUID, LotBalance],
    by_lot: dict[UUID, Decimal],
) -> dict[UUID, Reservation]:
    """A declaration's reservations after the goods of `by_lot` left (or went into transit),
    each status's from its own reservation."""
    left = dict(reserved)
    for status, quantity in by_status(lots, by_lot).items():
        key = held_key(declaration_id, status)
        held = left.pop(key, None)
        if held is not None and held.quantity > quantity:
            left[key] = msgspec.structs.replace(held, quantity=held.quantity - quantity)
    return left


def fifo(
    lots: dict[UUID, LotBalance], goods_status: GoodsStatus, quantity: Decimal
) -> dict[UUID, Decimal] | None:
    """How much to take from each lot, oldest first, among lots of one customs status only;
    None when they do not hold enough."""
    left, taken = quantity, {}
    for lot, balance in lots.items():
        if left == 0:
            break
        if balance.goods_status != goods_status:
            continue
        take = min(left, balance.quantity)
        taken[lot] = take
        left -= take
    return taken if left == 0 else None


class GoodsAdmitted(DomainEvent, frozen=True, kw_only=True):
    """Goods entered the zone into this book item, as a new lot."""

    book_no: str
    item_no: int
    lot_id: UUID
    quantity: Decimal
    goods_status: GoodsStatus
    movement_id: UUID

    def apply(self, state: ItemStock | None) -> ItemStock:
        lots = dict(state.lots) if state else {}
        lots[self.lot_id] = LotBalance(quantity=self.quantity, goods_status=self.goods_status)
        return ItemStock(
            id=self.originator_id,
            version=self.originator_version,
            book_no=self.book_no,
            item_no=self.item_no,
            on_hand=(state.on_hand if state else Decimal(0)) + self.quantity,
            lots=lots,
            reserved=dict(state.reserved) if state else {},
            in_transit=dict(state.in_transit) if state else {},
            held=dict(state.held) if state else {},
        )


def item_stock_id(book_no: str, item_no: int) -> UUID:
    return stream_id("item-stock", f"{book_no}:{item_no}")


# -- lots ---------------------------------------------------------------------------------------


class Paper(msgspec.Struct, frozen=True):
    """A paper goods moved under, as the trace shows it: its kind (declaration, gate_note,
    transport, container, processing, adjustment), its id and its number. Stored in lot
    events with the field order of the dicts it replaced (kind, id, number), so the encoded
    bytes are the same (tests/unit/test_paper.py)."""

    kind: str
    id: str
    number: str


class Lot(AggregateState, frozen=True, kw_only=True):
    zone: str
    account_book: str
    item_no: int
    goods_status: GoodsStatus
    quantity_in: Decimal
    on_hand: Decimal
    parents: list[UUID]
    documents: list[Paper]
    children: list[UUID] = []


class ChildLotCreated(DomainEvent, frozen=True, kw_only=True):
    """A lot made from this one (received after a transfer, or produced by processing)."""

    child: UUID
    movement_id: UUID

    def apply(self, state: Lot) -> Lot:
        return msgspec.structs.replace(
            state, version=self.originator_version, children=[*state.children, self.child]
        )


class LotCreated(DomainEvent, frozen=True, kw_only=True):
    """A lot came into being: where, what, how much, from which parents, under which papers."""

    zone: str
    account_book: str
    item_no: int
    goods_status: GoodsStatus
    quantity: Decimal
    parents: list[UUID]
    documents: list[Paper]
    # How much of each parent went into this lot (the trace's edge quantities).
    parent_quantities: dict[UUID, Decimal] = {}
    # The movement that made it.
    movement_id: UUID | None = None

    def apply(self, state: None) -> Lot:
        return Lot(
            id=self.originator_id,
            version=self.originator_version,
            zone=self.zone,
            account_book=self.account_book,
            item_no=self.item_no,
            goods_status=self.goods_status,
            quantity_in=self.quantity,
            on_hand=self.quantity,
            parents=list(self.parents),
            documents=list(self.documents),
        )


def new_lot_in_stock(
    lot: Pending[Lot],
    stock: Pending[ItemStock],
    *,
    zone: str,
    book_no: str,
    item_no: int,
    goods_status: GoodsStatus,
    quantity: Decimal,
    parents: dict[UUID, Decimal],
    documents: list[Paper],
    movement_id: UUID,
    parent_lots: Mapping[UUID, Pending[Lot]] | None = None,
    admitted: type[GoodsAdmitted] | None = None,
    **common: Any,
) -> LotView:
    """A new lot and the book item's stock it joins (admission, receipt, processing output,
    readmission); `parents` says how much of each parent lot went into it, and each parent
    in `parent_lots` records the child (`ChildLotCreated`), so a trace walks both ways."""
    lot.record(
        LotCreated,
        zone=zone,
        account_book=book_no,
        item_no=item_no,
        goods_status=goods_status,
        quantity=quantity,
        parents=list(parents),
        parent_quantities=dict(parents),
        documents=documents,
        movement_id=movement_id,
        **common,
    )
    stock.record(
        admitted or GoodsAdmitted,
        book_no=book_no,
        item_no=item_no,
        lot_id=lot.id,
        quantity=quantity,
        goods_status=goods_status,
        movement_id=movement_id,
        **common,
    )
    for parent in parents if parent_lots is not None else ():
        assert parent_lots is not None
        parent_lots[parent].record(ChildLotCreated, child=lot.id, movement_id=movement_id, **common)
    return LotView(lot_id=lot.id, item_no=item_no, quantity=quantity)


def lot_id(movement_id: UUID, line_no: int) -> UUID:
    """A retried movement creates the same lots, so it collides instead of duplicating them."""
    return stream_id("lot", f"{movement_id}:{line_no}")


# -- movements ------------------------------------------------------------------------------


class MovementRecorded(DomainEvent, frozen=True, kw_only=True):
    """A movement as the gate recorded it (its own stream, for GET /v1/movements/{id})."""

    view: MovementView

    def apply(self, state: None) -> MovementState:
        return MovementState(id=self.originator_id, version=self.originator_version, view=self.view)


class MovementState(AggregateState, frozen=True, kw_only=True):
    view: MovementView


def record_gate_movement(
    movement: Pending[MovementState],
    *,
    kind: MovementKind,
    declaration: Declaration,
    zone: str,
    account_book: str,
    cmd: GateBody,
    container: str | None,
    lots: list[LotView],
    gate_pass: str | None = None,
    **common: Any,
) -> MovementView:
    """Record a gate movement (admission, exit, dispatch, receipt) with the gate's papers: a
    movement out of (or into) the declaration's own book names its checklist; a transfer's
    receipt is the destination's, which the source's checklist does not cover."""
    view = MovementView(
        movement_id=movement.id,
        kind=kind,
        declaration=declaration.id,
        declaration_no=declaration.facts.declaration_no,
        zone=zone,
        account_book=account_book,
        occurred_at=common["occurred_at"],
        gate_note=cmd.gate_note,
        vehicle=cmd.vehicle,
        container=container,
        lots=lots,
        checklist_no=declaration.checklist_no if kind != "transfer_receipt" else None,
        gate_pass=gate_pass,
    )
    movement.record(MovementRecorded, view=view, **common)
    return view


def movement_id(principal: str, idempotency_key: str) -> UUID:
    return stream_id("movement", f"{principal}\x00{idempotency_key}")
