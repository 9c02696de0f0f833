"""Admission (`gate_in`): goods of a released inbound declaration pass the zone's gate.

Goods of `first_line_in` (from abroad, bonded) and `second_line_in` (from China's market,
domestic) declarations pass the gate; each line becomes a lot, the unit of traceability, and
the book item's stock grows. One atomic write records every fact the decision depends on: the
declaration's moved quantity (never beyond what its line covers), the book item's stock, the
new lots and the movement itself. See docs/decisions/0007-stock-and-lots.md.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from domain import values
from domain.declaration import Declaration, GoodsStatus
from domain.errors import Conflict, ValidationFailed
from domain.events import Pending
from domain.movements import (
    INBOUND,
    GateIn,
    GoodsMoved,
    ItemStock,
    Lot,
    MovementState,
    MovementView,
    Paper,
    lot_id,
    new_lot_in_stock,
    record_gate_movement,
)
from domain.papers import MovementRequest, check_lines, declaration_for, line_stocks
from domain.unit_of_work import Decision, UnitOfWork


def decide_gate_in(
    uow: UnitOfWork, req: MovementRequest[GateIn], now: datetime
) -> Decision[MovementView]:
    """Admit the lines' quantities: the movement, the declaration's moved quantities, the
    items' stock and one new lot per line."""
    cmd = req.cmd
    occurred = values.business_time("$.occurred_at", cmd.occurred_at, now)
    movement = uow.new(req.movement_id, MovementState)
    if cmd.declaration is None:
        raise ValidationFailed.at("$.declaration", "name the declaration (or the return_id)")
    declaration = declaration_for(uow, cmd.declaration, req.scope)
    state = declaration.state
    assert state is not None
    quantities = check_gate_in(cmd, state, req.actor.zone)
    stocks = line_stocks(uow, state, quantities)
    lots = {n: uow.new(lot_id(movement.id, n), Lot) for n in quantities}
    view = admit(
        declaration=declaration,
        stocks=stocks,
        lots=lots,
        movement=movement,
        cmd=cmd,
        quantities=quantities,
        actor=req.actor,
        occurred_at=occurred,
        gate_pass=req.gate_pass,
    )
    return Decision([movement, declaration, *stocks.values(), *lots.values()], view)


def check_gate_in(
    cmd: GateIn, declaration: Declaration, operator_zone: str | None
) -> dict[int, Decimal]:
    """The rules of admission; returns the quantity per line."""
    f = declaration.facts
    if f.flow not in INBOUND:
        raise Conflict(
            f"a {f.flow} declaration does not admit goods through a gate",
            rule="wrong_flow",
        )
    if declaration.status != "released":
        raise Conflict(
            "goods pass the gate only under a released declaration",
            rule="declaration_not_released",
            current_status=declaration.status,
        )
    if operator_zone is not None and operator_zone != f.zone:
        raise Conflict(
            f"the gate of {operator_zone} cannot admit goods declared for {f.zone}",
            rule="zone_mismatch",
        )
    return check_lines(cmd, declaration)


def admit(
    *,
    declaration: Pending[Declaration],
    stocks: dict[int, Pending[ItemStock]],
    lots: dict[int, Pending[Lot]],
    movement: Pending[MovementState],
    cmd: GateIn,
    quantities: dict[int, Decimal],
    actor: object,
    occurred_at: datetime,
    gate_pass: str | None = None,
) -> MovementView:
    """Record the admission: moved quantities, stock, lots and the movement, one write."""
    state = declaration.state
    assert state is not None
    f = state.facts
    goods_status: GoodsStatus = "bonded" if f.flow == "first_line_in" else "domestic"
    documents = [Paper("declaration", str(state.id), f.declaration_no)]
    if state.checklist_no:
        documents.append(Paper("checklist", state.checklist_no, state.checklist_no))
    if gate_pass:
        documents.append(Paper("gate_pass", gate_pass, gate_pass))
    if cmd.gate_note:
        documents.append(Paper("gate_note", cmd.gate_note, cmd.gate_note))
    if f.transport.reference:
        documents.append(Paper("transport", f.transport.reference, f.transport.reference))
    container = cmd.container or f.transport.container
    if container:
        documents.append(Paper("container", container, container))
    common: dict[str, Any] = {"actor": actor, "occurred_at": occurred_at}
    declaration.record(GoodsMoved, movement_id=movement.id, quantities=quantities, **common)
    by_no = {line.line_no: line for line in f.lines}
    created = []
    for line_no, q in quantities.items():
        item_no = by_no[line_no].item_no
        created.append(
            new_lot_in_stock(
                lots[line_no],
                stocks[item_no],
                zone=f.zone,
                book_no=f.book,
                item_no=item_no,
                goods_status=goods_status,
                quantity=q,
                parents={},
                documents=documents,
                movement_id=movement.id,
                parent_lots=None,  # an admission's lots have no parents
                **common,
            )
        )
    view = record_gate_movement(
        movement,
        kind="gate_in",
        declaration=state,
        zone=f.zone,
        account_book=f.book,
        cmd=cmd,
        container=container,
        lots=created,
        gate_pass=gate_pass,
        **common,
    )
    return view
