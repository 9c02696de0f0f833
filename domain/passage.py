"""The passage of a gate pass (domain/gate_passes.py): the zone's operator records the vehicle
through the gate with the weight it measured, and one write records, for every checklist the
pass carries, the gate movement its declaration calls for - through that kind's own decision
(domain/movement_kinds.py) - or, under no declaration yet, the admission of goods entering
first (domain/enter_first.py) or the exit of collected goods (domain/collected.py); then the
pass as passed.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from domain import collected, enter_first, values
from domain.checklist_docs import find
from domain.errors import Conflict, NotFound
from domain.events import Actor, Pending
from domain.exits import GateOut
from domain.gate_passes import (
    WEIGHT_TOLERANCE,
    Carried,
    GatePass,
    GatePassPassed,
    GatePassView,
    PassDirection,
    RecordPassage,
    check_open,
    check_within,
    find_pass,
    movement_id_of,
    sees_pass,
    view,
    weight,
)
from domain.movement_kinds import KINDS
from domain.movements import ExitLine, GateIn, MovementKind, MovementLine, MovementView
from domain.papers import MovementRequest
from domain.reference import Zone
from domain.scope import Scope
from domain.standalone_checklists import Checklist
from domain.transfers import TransferDispatch
from domain.unit_of_work import Decision, UnitOfWork


def movement_of(direction: PassDirection, flow: str) -> MovementKind:
    """The gate movement a checklist's declaration calls for at a pass of this direction."""
    if direction == "in":
        return "gate_in"
    return "transfer_dispatch" if flow == "transfer" else "gate_out"


def movement_body(
    kind: MovementKind, c: Carried, state: GatePass, occurred: datetime
) -> GateIn | GateOut | TransferDispatch:
    assert c.declaration is not None
    common: dict[str, Any] = {
        "declaration": str(c.declaration),
        "occurred_at": occurred,
        "vehicle": state.vehicle.plate,
    }
    if kind == "gate_in":
        lines = [MovementLine(line_no=x.line_no, quantity=x.quantity) for x in c.lines]
        return GateIn(lines=lines, **common)
    exit_lines = [ExitLine(line_no=x.line_no, quantity=x.quantity) for x in c.lines]
    if kind == "transfer_dispatch":
        return TransferDispatch(lines=exit_lines, **common)
    return GateOut(lines=exit_lines, **common)


def check_weight(state: GatePass, measured: Decimal) -> None:
    declared = state.gross_weight_kg
    off = abs(measured - declared)
    if off > declared * WEIGHT_TOLERANCE:
        raise Conflict(
            f"the gate measured {measured} kg; pass {state.pass_no} declares {declared} kg, "
            f"{off} kg apart (the tolerance is {WEIGHT_TOLERANCE * 100:.0f}%)",
            rule="weight_mismatch",
        )


def decide_passage(
    uow: UnitOfWork,
    number: str,
    cmd: RecordPassage,
    zones: Mapping[str, Zone],
    actor: Actor,
    now: datetime,
) -> Decision[GatePassView]:
    """The vehicle passes: every checklist's movement, its lots and book entries, and the pass
    as passed - one write, or nothing (the movement decisions refuse as they would alone)."""
    scope = Scope.of(actor)
    found = find_pass(uow, number)
    if found is None or not sees_pass(scope, found.current):
        raise NotFound(f"no gate pass {number}")
    state = found.current
    measured = weight("$.measured_gross_weight_kg", cmd.measured_gross_weight_kg)
    occurred = values.business_time("$.occurred_at", cmd.occurred_at, now)
    if state.status == "passed":
        raise Conflict(f"gate pass {number} has already passed", rule="already_passed")
    check_weight(state, measured)
    movements: list[Pending[Any]] = []
    others: dict[int, Pending[Any]] = {}
    views: list[MovementView] = []
    for n, carried in enumerate(state.checklists):
        doc = find(uow, carried.checklist_no)
        assert doc is not None
        check_open(doc)
        listed = {line.line_no: line for line in doc.lines}
        for line in carried.lines:
            check_within(carried.checklist_no, listed[line.line_no], line.quantity)
        if doc.flow is None:  # goods entering first, or collected: under no declaration yet
            checklist = uow.pending(doc.stream, Checklist)
            decide = (
                collected.dispatch if checklist.current.kind == "collected" else enter_first.admit
            )
            movement, touched, moved = decide(
                uow,
                checklist,
                {x.line_no: x.quantity for x in carried.lines},
                movement_id=movement_id_of(found.id, n),
                pass_no=number,
                vehicle=state.vehicle.plate,
                actor=actor,
                occurred_at=occurred,
            )
            movements.append(movement)
            for pending in touched:
                others.setdefault(id(pending), pending)
            views.append(moved)
            continue
        kind = movement_of(state.direction, doc.flow)
        req = MovementRequest(
            cmd=movement_body(kind, carried, state, occurred),
            movement_id=movement_id_of(found.id, n),
            actor=actor,
            zones=zones,
            gate_pass=number,
        )
        decision = KINDS[kind].decide(uow, req, now)
        movements.append(decision.saves[0])
        for pending in decision.saves[1:]:
            others.setdefault(id(pending), pending)
        views.append(decision.answer)
    found.record(
        GatePassPassed,
        measured_gross_weight_kg=measured,
        movements=[m.id for m in movements],
        actor=actor,
        occurred_at=occurred,
    )
    # Every movement first: the lot and stock events that name them come after in the write.
    saves = [*movements, *others.values(), found]
    return Decision(saves, view(found.current, movements=views))
