"""Readmission (`gate_in` naming a `return_id`): a bonded retail list's returned goods pass the
zone's gate back into its book as new bonded lots, whose parents are the lots the list's exit
drew, so the trace shows the goods' round trip (docs/decisions/0024-retail-returns.md).

Each returned line takes, from the lots its item left by, the slice after what earlier
readmissions of the list took: the lots drawn by the list's exits, in exit order, are one
sequence per item, and readmissions consume it from the start.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from domain import values
from domain.declaration import Declaration
from domain.errors import Conflict, ValidationFailed
from domain.events import Pending
from domain.movements import (
    GateIn,
    ItemStock,
    Lot,
    LotView,
    MovementState,
    MovementView,
    Paper,
    item_stock_id,
    lot_id,
    new_lot_in_stock,
    record_gate_movement,
)
from domain.papers import MovementRequest
from domain.returns import RetailReturn, ReturnedGoodsReadmitted, ReturnReadmitted
from domain.unit_of_work import Decision, LazyPendings, UnitOfWork
from domain.values import Problems


def the_return(uow: UnitOfWork, cmd: GateIn, zone: str | None) -> Pending[RetailReturn]:
    """The return a gate_in names, seen from the operator's zone (422 at `$.return_id` for an
    unknown one and another zone's alike); 409 `return_not_bonded` for a 9610 return."""
    if cmd.declaration is not None:
        raise ValidationFailed.at(
            "$.return_id", "a gate_in names its declaration or a return, not both"
        )
    assert cmd.return_id is not None
    ret = uow.pending(cmd.return_id, RetailReturn)
    if ret.state is None or (zone is not None and ret.state.zone != zone):
        raise ValidationFailed.at("$.return_id", "no such return")
    if ret.state.account_book is None:
        raise Conflict(
            "a 9610 parcel's return goes back to no zone book: there is nothing to admit",
            rule="return_not_bonded",
        )
    return ret


def readmitted_quantities(cmd: GateIn, ret: RetailReturn, d: Declaration) -> dict[int, Decimal]:
    """The body's quantities per line, within what the return brought back and is not yet
    admitted (409 `exceeds_returned_quantity`)."""
    returned = {line.line_no: line for line in ret.view.lines}
    p = Problems()
    if not cmd.lines:
        p.add("$.lines", "name at least one line")
    quantities: dict[int, Decimal] = {}
    for n, line in enumerate(cmd.lines):
        if line.line_no not in returned or line.line_no in quantities:
            p.add(f"$.lines[{n}].line_no", f"the return has no (other) line {line.line_no}")
            continue
        unit = next(x.unit for x in d.facts.lines if x.line_no == line.line_no)
        q = p.check(f"$.lines[{n}].quantity", values.quantity, line.quantity, unit)
        if q is not None:
            quantities[line.line_no] = q
    p.raise_if_any()
    for line_no, q in quantities.items():
        left = returned[line_no].quantity - ret.readmitted.get(line_no, Decimal(0))
        if q > left:
            raise Conflict(
                f"line {line_no} of the return has {left} still to admit; {q} is more",
                rule="exceeds_returned_quantity",
            )
    return quantities


def drawn_lots(uow: UnitOfWork, d: Declaration) -> dict[int, list[tuple[UUID, Decimal]]]:
    """The lots the list's exits drew, per item, in exit order."""
    drawn: dict[int, list[tuple[UUID, Decimal]]] = {}
    for movement_id in d.movement_ids:
        movement = uow.load(movement_id, MovementState)
        for lot in movement.view.lots if movement is not None else []:
            drawn.setdefault(lot.item_no, []).append((lot.lot_id, lot.quantity))
    return drawn


def parents_of(
    drawn: list[tuple[UUID, Decimal]], before: Decimal, quantity: Decimal
) -> dict[UUID, Decimal] | None:
    """The slice [before, before + quantity) of the drawn lots, per lot; None when the lots
    drawn do not reach that far (the goods have not all left the zone)."""
    parents: dict[UUID, Decimal] = {}
    start, end = before, before + quantity
    at = Decimal(0)
    for lot, q in drawn:
        lo, hi = max(at, start), min(at + q, end)
        if hi > lo:
            parents[lot] = parents.get(lot, Decimal(0)) + hi - lo
        at += q
    return parents if at >= end else None


def decide_return_gate_in(
    uow: UnitOfWork, req: MovementRequest[GateIn], now: datetime
) -> Decision[MovementView]:
    """Admit a return's goods: the movement, the return's and the list's readmitted
    quantities, the items' stock, one new bonded lot per line and its parents' children."""
    cmd, actor = req.cmd, req.actor
    occurred = values.business_time("$.occurred_at", cmd.occurred_at, now)
    movement = uow.new(req.movement_id, MovementState)
    ret = the_return(uow, cmd, actor.zone)
    r = ret.state
    assert r is not None and r.account_book is not None
    declaration = uow.pending(r.declaration_id, Declaration)
    d = declaration.state
    assert d is not None
    quantities = readmitted_quantities(cmd, r, d)
    by_no = {line.line_no: line for line in d.facts.lines}
    drawn = drawn_lots(uow, d)
    common: dict[str, Any] = {"actor": actor, "occurred_at": occurred}
    documents = [
        Paper("declaration", str(d.id), d.facts.declaration_no),
        Paper("return", str(r.id), str(r.id)),
    ]
    stocks: dict[int, Pending[ItemStock]] = {}
    parent_lots = LazyPendings(uow, Lot)
    lots: list[Pending[Lot]] = []
    created: list[LotView] = []
    taken: dict[int, Decimal] = {}
    for line_no, q in quantities.items():
        item = by_no[line_no].item_no
        before = taken.get(item, Decimal(0)) + sum(
            (x for n, x in d.readmitted.items() if by_no[n].item_no == item), Decimal(0)
        )
        parents = parents_of(drawn.get(item, []), before, q)
        if parents is None:
            raise Conflict(
                f"line {line_no}: the list's goods of item {item} have not left the zone as far"
                " as this return: nothing of them is out to come back",
                rule="returned_goods_not_exited",
            )
        taken[item] = taken.get(item, Decimal(0)) + q
        if item not in stocks:
            stocks[item] = uow.pending(item_stock_id(r.account_book, item), ItemStock)
        lot = uow.new(lot_id(movement.id, line_no), Lot)
        lots.append(lot)
        created.append(
            new_lot_in_stock(
                lot,
                stocks[item],
                zone=r.zone,
                book_no=r.account_book,
                item_no=item,
                goods_status="bonded",
                quantity=q,
                parents=parents,
                documents=documents,
                movement_id=movement.id,
                parent_lots=parent_lots,
                **common,
            )
        )
    ret.record(ReturnReadmitted, movement_id=movement.id, quantities=quantities, **common)
    declaration.record(
        ReturnedGoodsReadmitted,
        return_id=r.id,
        movement_id=movement.id,
        quantities=quantities,
        **common,
    )
    view = record_gate_movement(
        movement,
        kind="gate_in",
        declaration=d,
        zone=r.zone,
        account_book=r.account_book,
        cmd=cmd,
        container=cmd.container,
        lots=created,
        **common,
    )
    saves: list[Pending[Any]] = [movement, ret, declaration, *stocks.values(), *lots]
    return Decision([*saves, *parent_lots.values()], view)
