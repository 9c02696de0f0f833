"""Outbound checklists filed on their own pre-decrease their book when they are filed.

GACC Announcement 2018 No. 23 (关于启用保税核注清单的公告): an outbound checklist reduces the
book when it is filed. Three kinds are filed on their own (domain/standalone_checklists.py):

- `collected` (分送集报): goods leave for domestic buyers on gate passes, declared together after
  their month (domain/collected.py); the book needs an officer's permission, else 409
  `collection_not_permitted`;
- `in_zone_transfer` (区内流转): goods pass to another book of the same zone, no declaration, no
  gate; the receiving enterprise records their receipt (domain/in_zone_transfers.py);
- `processing`: the bonded materials a processing movement of the book will consume
  (domain/processing.py, a movement naming the checklist).

Filing reserves what the checklist lists (`StockReserved`, held by the checklist's stream) in the
filing write: 409 `insufficient_stock`, or `declaration_pending` where only goods that entered
first would cover it. A rejection or withdrawal gives back what it still holds
(`ReservationReleased`) in its own write. Every standalone checklist is filed and decided on
through this module, so an outbound one's stock moves with it.

Goods that stay in the zone move under their checklist by a movement, not a gate pass: each
such movement counts against the checklist's lines (`ChecklistLinesMoved`) and the checklist
closes when every line is done.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import msgspec

from domain import standalone_checklists as sc
from domain.account_book import AccountBook, account_book_id
from domain.checklists import ChecklistView, require_open
from domain.declaration import GoodsStatus
from domain.enter_first import ReservationReleased, named_checklist
from domain.errors import Conflict, ValidationFailed
from domain.events import Actor, DomainEvent, Pending
from domain.exits import GoodsExited, LotDrawn, reserve_needs
from domain.movements import ItemStock, fifo, item_stock_id
from domain.reference import Zone
from domain.scope import Scope
from domain.unit_of_work import Decision, LazyPendings, UnitOfWork
from domain.values import Problems

PRE_DECREASED = ("collected", "in_zone_transfer", "processing", "destruction")


def check_destination(uow: UnitOfWork, cmd: sc.FileChecklist, book: AccountBook) -> AccountBook:
    """An in-zone transfer's receiving book: another book of the same zone, each line's
    destination item registered there in the same unit."""
    loc = "$.destination_account_book"
    assert cmd.destination_account_book is not None  # check_kind requires it
    destination = uow.load(account_book_id(cmd.destination_account_book), AccountBook)
    if destination is None:
        raise ValidationFailed.at(loc, "no such account book")
    if destination.book_no == book.book_no:
        raise ValidationFailed.at(loc, "goods transferred in the zone go to another book")
    if destination.zone != book.zone:
        raise ValidationFailed.at(
            loc,
            f"book {destination.book_no} is kept in {destination.zone}, not {book.zone}: goods "
            "between zones move on a transfer declaration",
        )
    p = Problems()
    for n, line in enumerate(cmd.lines):
        sent = book.items.get(line.item_no)
        item_no = line.destination_item_no or line.item_no
        received = destination.items.get(item_no)
        at = f"$.lines[{n}].destination_item_no"
        if received is None:
            p.add(at, f"item {item_no} is not registered in {destination.book_no}")
        elif sent is not None and sent.unit != received.unit:
            p.add(
                at, f"item {item_no} is kept in {received.unit}, item {line.item_no} in {sent.unit}"
            )
    p.raise_if_any()
    return destination


def decide_filing(
    uow: UnitOfWork,
    cmd: sc.FileChecklist,
    stream: UUID,
    zones: dict[str, Zone],
    actor: Actor,
    now: datetime,
) -> Decision[ChecklistView]:
    """File a standalone checklist; an outbound one pre-decreases its book in the same write
    (a collected one needs the permission, an in-zone transfer its receiving book)."""
    sc.check_kind(cmd)
    book = uow.load(account_book_id(cmd.account_book), AccountBook)
    destination = None
    if cmd.kind == "in_zone_transfer" and book and Scope.of(actor).owns(book.enterprise):
        destination = check_destination(uow, cmd, book)
    decision = sc.decide_filing(uow, cmd, stream, zones, actor, now, destination)
    if cmd.kind not in PRE_DECREASED:
        return decision
    assert book is not None  # the filing found it, the caller's own
    if cmd.kind == "collected" and not book.collection_permitted:
        raise Conflict(
            f"book {book.book_no} is not permitted to collect then declare (an officer "
            "grants it per book)",
            rule="collection_not_permitted",
        )
    wanted: dict[tuple[int, Any], Decimal] = defaultdict(Decimal)
    for line in decision.answer.lines:
        wanted[(line.item_no, line.goods_status)] += line.quantity
    stocks = {
        item_no: uow.pending(item_stock_id(book.book_no, item_no), ItemStock)
        for item_no, _status in wanted
    }
    reserve_needs(
        dict(wanted),
        stocks,
        holder=stream,
        book=book.book_no,
        holder_kind="checklist",
        actor=actor,
        occurred_at=now,
    )
    return Decision([*decision.saves, *stocks.values()], decision.answer)


def give_back(
    uow: UnitOfWork, checklist: Pending[sc.Checklist], actor: object, now: datetime
) -> list[Pending[ItemStock]]:
    """What an outbound checklist still holds of its items, released."""
    c = checklist.current
    stocks = []
    for item_no in sorted({line.item_no for line in c.lines}):
        stock = uow.pending(item_stock_id(c.account_book, item_no), ItemStock)
        kept = stock.state.reserved.get(checklist.id) if stock.state is not None else None
        if kept is not None and kept.quantity > 0:
            stock.record(
                ReservationReleased,
                declaration_id=checklist.id,
                quantity=kept.quantity,
                goods_status=kept.goods_status,
                actor=actor,
                occurred_at=now,
            )
            stocks.append(stock)
    return stocks


def decide_on_checklist(
    uow: UnitOfWork,
    checklist: Pending[sc.Checklist],
    action: str,
    cmd: sc.DecideChecklist,
    actor: Actor,
    now: datetime,
) -> Decision[ChecklistView]:
    """Approval, rejection or withdrawal; an outbound checklist rejected or withdrawn gives
    its stock back in the same write."""
    decision = sc.decide_on_checklist(uow, checklist, action, cmd, actor, now)
    if checklist.current.kind not in PRE_DECREASED or action == "approval":
        return decision
    return Decision([*decision.saves, *give_back(uow, checklist, actor, now)], decision.answer)


# -- goods that stay in the zone ---------------------------------------------------------------


class ChecklistLinesMoved(DomainEvent, frozen=True, kw_only=True):
    """Goods of a checklist whose goods pass no gate moved under it (received by the other
    book of an in-zone transfer, or consumed by processing): how much per line, by which
    movement. The checklist closes when every line is done."""

    movement_id: UUID
    quantities: dict[int, Decimal]

    def apply(self, state: sc.Checklist) -> sc.Checklist:
        lines = [
            msgspec.structs.replace(line, passed=line.passed + self.quantities.get(line.line_no, 0))
            for line in state.lines
        ]
        done = all(line.passed >= line.quantity for line in lines)
        return msgspec.structs.replace(
            state,
            version=self.originator_version,
            lines=lines,
            status="closed" if done else state.status,
            movements=[*state.movements, self.movement_id],
            first_passed_at=state.first_passed_at or self.occurred_at,
            last_passed_at=self.occurred_at,
        )


def open_checklist(
    uow: UnitOfWork, number: str, kind: str, *, loc: str, who: str
) -> Pending[sc.Checklist]:
    """The approved checklist of `kind` a movement names, with goods left under it; `who` is
    the enterprise that may name it (unknown or not theirs: 422 at `loc`)."""
    found = named_checklist(uow, number)
    c = found.current if found is not None else None
    if found is None or c is None or c.kind != kind:
        raise ValidationFailed.at(loc, f"no such {kind} checklist for you")
    if who != (c.destination_enterprise if kind == "in_zone_transfer" else c.enterprise):
        raise ValidationFailed.at(loc, f"no such {kind} checklist for you")
    require_open(number, c.status, "move")
    return found


def draw_held(
    stock: Pending[ItemStock],
    lots: LazyPendings,
    *,
    event: type[GoodsExited],
    holder: UUID,
    item_no: int,
    goods_status: GoodsStatus,
    quantity: Decimal,
    movement_id: UUID,
    common: dict[str, Any],
) -> dict[UUID, Decimal]:
    """Goods a checklist held leave its book: lots drawn first-in first-out, the holding
    turned into a decrease (`event`: a gate exit, or an in-zone transfer). The lots taken."""
    taken = fifo(stock.state.lots, goods_status, quantity) if stock.state else None
    if taken is None:  # the checklist reserved them: only if stock changed behind its back
        raise Conflict(
            f"the lots of item {item_no} do not hold {quantity}", rule="insufficient_stock"
        )
    stock.record(
        event,
        declaration_id=holder,
        movement_id=movement_id,
        quantity=quantity,
        by_lot=taken,
        **common,
    )
    for lot, q in taken.items():
        lots[lot].record(LotDrawn, movement_id=movement_id, quantity=q, **common)
    return taken


def per_line(c: sc.Checklist, by_item: dict[int, Decimal]) -> dict[int, Decimal]:
    """Quantities per item spread over the checklist's lines of that item, in line order,
    within what each has left; more than the lines have left is 409
    `exceeds_checklist_quantity`."""
    taken: dict[int, Decimal] = {}
    for item_no, quantity in by_item.items():
        left = quantity
        for line in c.lines:
            if line.item_no != item_no or left <= 0:
                continue
            take = min(left, line.quantity - line.passed)
            if take > 0:
                taken[line.line_no] = taken.get(line.line_no, Decimal(0)) + take
                left -= take
        if left > 0:
            listed = sum(
                (x.quantity - x.passed for x in c.lines if x.item_no == item_no), Decimal(0)
            )
            raise Conflict(
                f"checklist {c.checklist_no} has {listed} of item {item_no} left; "
                f"{quantity} is more",
                rule="exceeds_checklist_quantity",
            )
    return taken
