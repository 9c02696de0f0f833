"""In-zone transfers (区内流转): bonded goods pass from one account book to another of the same
zone, under an `in_zone_transfer` checklist, with no declaration and no gate.

The sending enterprise files the checklist naming the receiving book and, per line, its item
there; filing pre-decreases the sender's book (domain/outbound_checklists.py) and an officer
approves it. The goods never cross the zone's fence, so no gate pass carries them (409
`stays_in_zone`): the **receiving enterprise records their receipt** - a movement of kind
`in_zone_transfer` naming the checklist, for every line or some of them with partial
quantities. One write then:

- draws the sender's lots first-in first-out, its reservation becoming a decrease
  (`TransferredInZone`, a `transfer_out` entry in the sender's book);
- creates the receiver's lots, children of the drawn ones (edge `transfer` in the trace), still
  bonded (a `transfer_in` entry in the receiver's book);
- counts the quantities against the checklist (`ChecklistLinesMoved`), which closes once every
  line is received.

Golden Customs II pairs the sender's outbound checklist with the receiver's inbound one
(关联清单) [verify: the pairing rule of GACC Announcement 2018 No. 23 for 区内流转]; here the
receipt movement, recorded by the receiving enterprise, plays the inbound side: it names the
checklist and lands in the receiving book.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

import msgspec

from domain import values
from domain.declaration import AwareDatetime, Str64
from domain.errors import ValidationFailed
from domain.exits import GoodsExited
from domain.gate_passes import check_within
from domain.movements import (
    ItemStock,
    Lot,
    LotView,
    MovementLine,
    MovementRecorded,
    MovementState,
    MovementView,
    Paper,
    item_stock_id,
    lot_id,
    new_lot_in_stock,
)
from domain.outbound_checklists import ChecklistLinesMoved, draw_held, open_checklist
from domain.papers import MovementRequest
from domain.standalone_checklists import Checklist
from domain.unit_of_work import Decision, LazyPendings, UnitOfWork
from domain.values import Problems


class InZoneTransfer(
    msgspec.Struct,
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
    tag_field="kind",
    tag="in_zone_transfer",
):
    """Body of POST /v1/movements with `kind: in_zone_transfer` (the receiving book's
    enterprise): the checklist, and the lines received (omitted: all that is left)."""

    checklist: Str64
    lines: Annotated[list[MovementLine], msgspec.Meta(max_length=999)] | None = None
    occurred_at: AwareDatetime | None = None


class TransferredInZone(GoodsExited, frozen=True, kw_only=True):
    """Goods passed from this book to another of the zone under an in-zone transfer checklist
    (`declaration_id` is the checklist's stream, which held them): its reservation became a
    decrease."""


def received_lines(cmd: InZoneTransfer, c: Checklist) -> dict[int, Decimal]:
    """The quantity received per checklist line: the body's, each within what the line has
    left (409 `exceeds_checklist_quantity`), or all that is left."""
    by_no = {line.line_no: line for line in c.lines}
    if cmd.lines is None:
        return {
            n: line.quantity - line.passed
            for n, line in by_no.items()
            if line.passed < line.quantity
        }
    p = Problems()
    if not cmd.lines:
        p.add("$.lines", "name at least one line, or leave `lines` out to receive all that is left")
    quantities: dict[int, Decimal] = {}
    for n, line in enumerate(cmd.lines):
        at = f"$.lines[{n}]"
        listed = by_no.get(line.line_no)
        if listed is None:
            p.add(f"{at}.line_no", f"checklist {c.checklist_no} has no line {line.line_no}")
        elif line.line_no in quantities:
            p.add(f"{at}.line_no", f"line {line.line_no} is named twice")
        else:
            q = p.check(f"{at}.quantity", values.quantity, line.quantity, listed.unit)
            if q is not None:
                quantities[line.line_no] = q
    p.raise_if_any()
    for line_no, q in quantities.items():
        check_within(c.checklist_no, by_no[line_no], q)
    return quantities


def decide_in_zone_transfer(
    uow: UnitOfWork, req: MovementRequest[InZoneTransfer], now: datetime
) -> Decision[MovementView]:
    """The receiving enterprise records the receipt: the sender's lots drawn, the receiver's
    created as their children, the checklist counting what moved - one write."""
    cmd = req.cmd
    occurred = values.business_time("$.occurred_at", cmd.occurred_at, now)
    who = req.scope.enterprise or ""
    checklist = open_checklist(uow, cmd.checklist, "in_zone_transfer", loc="$.checklist", who=who)
    c = checklist.current
    receiving = c.destination_account_book
    if receiving is None:
        raise ValidationFailed.at("$.checklist", "the checklist names no receiving book")
    quantities = received_lines(cmd, c)
    movement = uow.new(req.movement_id, MovementState)
    common: dict[str, Any] = {"actor": req.actor, "occurred_at": occurred}
    by_no = {line.line_no: line for line in c.lines}
    stocks: dict[tuple[str, int], Any] = {}
    lots = LazyPendings(uow, Lot)
    new_lots = {n: uow.new(lot_id(movement.id, n), Lot) for n in quantities}
    documents = [Paper("checklist", c.checklist_no, c.checklist_no)]
    view_lots: list[LotView] = []

    def stock(book: str, item_no: int) -> Any:
        key = (book, item_no)
        if key not in stocks:
            stocks[key] = uow.pending(item_stock_id(book, item_no), ItemStock)
        return stocks[key]

    for line_no, quantity in quantities.items():
        line = by_no[line_no]
        taken = draw_held(
            stock(c.account_book, line.item_no),
            lots,
            event=TransferredInZone,
            holder=checklist.id,
            item_no=line.item_no,
            goods_status=line.goods_status,
            quantity=quantity,
            movement_id=movement.id,
            common=common,
        )
        view_lots += [
            LotView(lot_id=lot, item_no=line.item_no, quantity=-q) for lot, q in taken.items()
        ]
        item_no = line.destination_item_no or line.item_no
        view_lots.append(
            new_lot_in_stock(
                new_lots[line_no],
                stock(receiving, item_no),
                zone=c.zone,
                book_no=receiving,
                item_no=item_no,
                goods_status=line.goods_status,
                quantity=quantity,
                parents=taken,
                documents=documents,
                movement_id=movement.id,
                parent_lots=lots,
                **common,
            )
        )
    checklist.record(
        ChecklistLinesMoved, movement_id=movement.id, quantities=dict(quantities), **common
    )
    view = MovementView(
        movement_id=movement.id,
        kind="in_zone_transfer",
        zone=c.zone,
        account_book=receiving,
        occurred_at=occurred,
        lots=view_lots,
        checklist_no=c.checklist_no,
    )
    movement.record(MovementRecorded, view=view, **common)
    saves = [movement, checklist, *stocks.values(), *lots.values(), *new_lots.values()]
    return Decision(saves, view)
