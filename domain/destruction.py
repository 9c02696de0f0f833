"""Destruction (销毁) of goods in a book, witnessed by customs (issue #18 item 2, part).

Bonded goods that cannot be sold or exported (spoiled, obsolete, defective, scrap) may be
destroyed under customs supervision and leave the book **without duty** [verify: GACC rules on
the destruction of bonded goods in special supervision zones; the goods' value is not assessed
when customs witness the destruction]. The officer who witnesses it records it: the movement
is the officer's confirmation itself (recorded by an officer, never by the enterprise), naming
the book, the goods (first-in first-out within a customs status, or named lots), the reason and
the destruction certificate if there is one. Goods reserved for a declaration or held by a
checklist cannot be destroyed (409 `insufficient_stock` on what is free).

Or the enterprise applies first: a `destruction` checklist (销毁核注清单 [verify: the Golden
Customs II checklist for 料件销毁 / 边角料销毁]) lists the bonded goods, which it pre-decreases
when filed (domain/outbound_checklists.py); the officer's approval is the witness's confirmation,
and the goods leave the book in the approval's write (a `destruction` movement recorded by that
officer, drawn first-in first-out from what the checklist held; the checklist closes). No gate
pass carries it (409 `stays_in_zone`).

The book records a `destruction` entry per lot; the trace shows the lots `destroyed`; EPCIS says
`DELETE` with the GS1 CBV bizStep `destroying` and disposition `destroyed`.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

import msgspec

from domain import standalone_checklists as sc
from domain import values
from domain.account_book import AccountBook, account_book_id
from domain.checklists import ChecklistView
from domain.declaration import AwareDatetime, GoodsStatus, Str64, Str255
from domain.errors import Conflict, ValidationFailed
from domain.events import Actor, Pending, stream_id
from domain.exits import GoodsExited, LotDrawn
from domain.movements import (
    ItemStock,
    Lot,
    LotView,
    MovementRecorded,
    MovementState,
    MovementView,
    fifo,
    item_stock_id,
)
from domain.outbound_checklists import ChecklistLinesMoved, decide_on_checklist, draw_held
from domain.papers import MovementRequest
from domain.processing import InputsConsumed
from domain.unit_of_work import Decision, LazyPendings, UnitOfWork
from domain.values import Problems


class DestroyedLine(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Goods destroyed: first-in first-out among the item's lots of `goods_status` (default
    bonded), or the lot named."""

    item_no: int
    quantity: Decimal
    goods_status: GoodsStatus | None = None
    lot_id: UUID | None = None


class Destruction(
    msgspec.Struct,
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
    tag_field="kind",
    tag="destruction",
):
    """Body of POST /v1/movements with `kind: destruction` (the officer who witnessed it)."""

    account_book: Str64
    lines: Annotated[list[DestroyedLine], msgspec.Meta(max_length=99)]
    reason: Str255
    certificate: Str64 | None = None
    occurred_at: AwareDatetime | None = None


class GoodsDestroyed(InputsConsumed, frozen=True, kw_only=True):
    """Goods of this item were destroyed under customs supervision, lot by lot: off the book,
    without duty."""


class HeldGoodsDestroyed(GoodsExited, frozen=True, kw_only=True):
    """Goods a destruction checklist held (`declaration_id`: its stream) were destroyed when an
    officer approved it: the holding became the decrease."""


def _taken(
    n: int, line: DestroyedLine, stock: ItemStock | None
) -> tuple[GoodsStatus, dict[UUID, Decimal]]:
    """The customs status and the quantity per lot a line destroys, within the free stock."""
    status: GoodsStatus = line.goods_status or "bonded"
    if line.lot_id is not None:
        balance = stock.lots.get(line.lot_id) if stock else None
        if balance is None or line.goods_status not in (None, balance.goods_status):
            raise ValidationFailed.at(
                f"$.lines[{n}].lot_id", f"no open lot {line.lot_id} of item {line.item_no}"
            )
        status = balance.goods_status
        taken = {line.lot_id: line.quantity} if balance.quantity >= line.quantity else None
    else:
        taken = fifo(stock.lots, status, line.quantity) if stock else None
    free = stock.available_of(status) if stock else Decimal(0)
    if taken is None or line.quantity > free:
        raise Conflict(
            f"item {line.item_no} has {free} {status} free to destroy (what declarations or "
            f"checklists hold is not); the destruction needs {line.quantity}",
            rule="insufficient_stock",
        )
    return status, taken


def decide_destruction(
    uow: UnitOfWork, req: MovementRequest[Destruction], now: datetime
) -> Decision[MovementView]:
    """The witnessing officer records the destruction: each line's lots drawn, the book's
    stock down, in one write."""
    cmd = req.cmd
    occurred = values.business_time("$.occurred_at", cmd.occurred_at, now)
    book = uow.load(account_book_id(cmd.account_book), AccountBook)
    if book is None:
        raise ValidationFailed.at("$.account_book", "no such account book")
    p = Problems()
    if not cmd.lines:
        p.add("$.lines", "name at least one line")
    for n, line in enumerate(cmd.lines):
        item = book.items.get(line.item_no)
        if item is None:
            p.add(f"$.lines[{n}].item_no", f"item {line.item_no} is not in the book")
        else:
            p.check(f"$.lines[{n}].quantity", values.quantity, line.quantity, item.unit)
    p.check("$.reason", values.text, cmd.reason)
    if cmd.certificate is not None:
        p.check("$.certificate", values.text, cmd.certificate)
    p.raise_if_any()
    movement = uow.new(req.movement_id, MovementState)
    common: dict[str, Any] = {"actor": req.actor, "occurred_at": occurred}
    stocks = {
        n: uow.pending(item_stock_id(book.book_no, n), ItemStock)
        for n in {x.item_no for x in cmd.lines}
    }
    lots = LazyPendings(uow, Lot)
    view_lots: list[LotView] = []
    for n, line in enumerate(cmd.lines):
        stock = stocks[line.item_no]
        _status, taken = _taken(n, line, stock.state)
        stock.record(
            GoodsDestroyed,
            movement_id=movement.id,
            quantity=line.quantity,
            by_lot=taken,
            **common,
        )
        for lot, q in taken.items():
            lots[lot].record(LotDrawn, movement_id=movement.id, quantity=q, **common)
            view_lots.append(LotView(lot_id=lot, item_no=line.item_no, quantity=-q))
    reason = cmd.reason
    if cmd.certificate is not None:
        reason += f" (certificate {cmd.certificate})"
    view = MovementView(
        movement_id=movement.id,
        kind="destruction",
        zone=book.zone,
        account_book=book.book_no,
        occurred_at=occurred,
        lots=view_lots,
        reason=reason,
    )
    movement.record(MovementRecorded, view=view, **common)
    return Decision([movement, *stocks.values(), *lots.values()], view)


def on_checklist(
    uow: UnitOfWork,
    checklist: Pending[sc.Checklist],
    action: str,
    cmd: sc.DecideChecklist,
    actor: Actor,
    now: datetime,
) -> Decision[ChecklistView]:
    """A decision on a standalone checklist (domain/outbound_checklists.py); an approved
    destruction checklist's goods are destroyed in the approval's write, by the approving
    officer as witness."""
    decision = decide_on_checklist(uow, checklist, action, cmd, actor, now)
    if checklist.current.kind != "destruction" or action != "approval":
        return decision
    c = checklist.current
    movement = uow.new(stream_id("movement", f"destruction:{checklist.id}"), MovementState)
    common: dict[str, Any] = {"actor": actor, "occurred_at": now}
    stocks: dict[int, Pending[ItemStock]] = {}
    lots = LazyPendings(uow, Lot)
    view_lots: list[LotView] = []
    for line in c.lines:
        if line.item_no not in stocks:
            stocks[line.item_no] = uow.pending(
                item_stock_id(c.account_book, line.item_no), ItemStock
            )
        taken = draw_held(
            stocks[line.item_no],
            lots,
            event=HeldGoodsDestroyed,
            holder=checklist.id,
            item_no=line.item_no,
            goods_status=line.goods_status,
            quantity=line.quantity,
            movement_id=movement.id,
            common=common,
        )
        view_lots += [
            LotView(lot_id=lot, item_no=line.item_no, quantity=-q) for lot, q in taken.items()
        ]
    checklist.record(
        ChecklistLinesMoved,
        movement_id=movement.id,
        quantities={line.line_no: line.quantity for line in c.lines},
        **common,
    )
    view = MovementView(
        movement_id=movement.id,
        kind="destruction",
        zone=c.zone,
        account_book=c.account_book,
        occurred_at=now,
        lots=view_lots,
        reason=f"destroyed under checklist {c.checklist_no}",
        checklist_no=c.checklist_no,
    )
    movement.record(MovementRecorded, view=view, **common)
    saves = [movement, *decision.saves, *stocks.values(), *lots.values()]
    return Decision(saves, sc.view(checklist.current, now))
