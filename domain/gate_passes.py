"""Gate passes (核放单, Golden Customs II message SAS121): one vehicle through a zone's gate.

A pass is filed by the enterprise whose checklists it carries: one vehicle, one or more
checklists, each with all it still lists or part of it (a checklist may need several
vehicles). The zone's operator records the passage with the weight the gate measured: one
write records, for every checklist on the pass, the gate movement its declaration calls for
(`gate_in`, `gate_out`, `transfer_dispatch`) through the same decisions a movement posted on
its own goes through (domain/movement_kinds.py), its lots and book entries, and the pass as
passed. A measured gross weight outside the tolerance refuses the passage (409
`weight_mismatch`) and nothing moves; a pass passes once (409 `already_passed`); a checklist
never passes more than it lists (409 `exceeds_checklist_quantity`), checked when the pass is
filed and again at its passage (another pass may have carried the goods meanwhile).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec

from domain import values
from domain.checklist_docs import ChecklistDoc, find
from domain.checklists import ChecklistLine, require_open
from domain.declaration import AwareDatetime, Str64
from domain.documents import china_year, issue_number, stream_of
from domain.errors import Conflict, ValidationFailed
from domain.events import Actor, AggregateState, DomainEvent, Pending, stream_id
from domain.movements import MovementView
from domain.reference import Zone
from domain.scope import Scope
from domain.standalone_checklists import STAYS_IN_ZONE
from domain.unit_of_work import Decision, UnitOfWork
from domain.values import Problems

# How far the gate's measured gross weight may lie from the pass's declared one, as a share of
# the declared weight. [verify: no national figure found; zones set their own tolerance in
# their gate systems. 5% is the figure the issue gives as an example.]
WEIGHT_TOLERANCE = Decimal("0.05")
PassDirection = Literal["in", "out"]
# The checklist direction a pass of each direction carries.
CHECKLIST_DIRECTION = {"in": "I", "out": "E"}


class Vehicle(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    plate: Str64
    driver: Str64 | None = None


class PassLine(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    line_no: int
    quantity: Decimal


class PassChecklist(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A checklist on a pass: the lines it carries (all it still lists when left out)."""

    checklist_no: Str64
    lines: Annotated[list[PassLine], msgspec.Meta(max_length=999)] | None = None


class FileGatePass(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Body of POST /v1/gate-passes (the enterprise whose checklists it carries)."""

    zone: Str64
    direction: PassDirection
    vehicle: Vehicle
    gross_weight_kg: Decimal
    tare_weight_kg: Decimal | None = None
    checklists: Annotated[list[PassChecklist], msgspec.Meta(max_length=99)]


class RecordPassage(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Body of POST /v1/gate-passes/{no}/passage (an operator of the pass's zone)."""

    measured_gross_weight_kg: Decimal
    occurred_at: AwareDatetime | None = None


class CarriedLine(msgspec.Struct, frozen=True, kw_only=True):
    line_no: int
    item_no: int
    quantity: Decimal


class Carried(msgspec.Struct, frozen=True, kw_only=True):
    """What a pass carries of one checklist: its number, its stream (the declaration's for a
    checklist a declaration filed), its declaration (none yet for goods entering first) and
    the lines."""

    checklist_no: str
    document: UUID
    declaration: UUID | None
    declaration_no: str | None
    lines: list[CarriedLine]


class Passage(msgspec.Struct, frozen=True, kw_only=True):
    measured_gross_weight_kg: Decimal
    occurred_at: datetime
    movements: list[UUID]


class GatePass(AggregateState, frozen=True, kw_only=True):
    pass_no: str
    zone: str
    direction: PassDirection
    enterprise: str
    vehicle: Vehicle
    gross_weight_kg: Decimal
    tare_weight_kg: Decimal | None
    checklists: list[Carried]
    filed_at: datetime
    status: Literal["filed", "passed"] = "filed"
    passage: Passage | None = None


class GatePassFiled(DomainEvent, frozen=True, kw_only=True):
    """An enterprise filed a gate pass for one vehicle."""

    pass_no: str
    zone: str
    direction: PassDirection
    enterprise: str
    vehicle: Vehicle
    gross_weight_kg: Decimal
    tare_weight_kg: Decimal | None
    checklists: list[Carried]

    def apply(self, state: None) -> GatePass:
        return GatePass(
            id=self.originator_id,
            version=self.originator_version,
            pass_no=self.pass_no,
            zone=self.zone,
            direction=self.direction,
            enterprise=self.enterprise,
            vehicle=self.vehicle,
            gross_weight_kg=self.gross_weight_kg,
            tare_weight_kg=self.tare_weight_kg,
            checklists=list(self.checklists),
            filed_at=self.occurred_at,
        )


class GatePassPassed(DomainEvent, frozen=True, kw_only=True):
    """The vehicle passed the gate: the weight measured and the movements recorded."""

    measured_gross_weight_kg: Decimal
    movements: list[UUID]

    def passage(self) -> Passage:
        return Passage(
            measured_gross_weight_kg=self.measured_gross_weight_kg,
            occurred_at=self.occurred_at,
            movements=list(self.movements),
        )

    def apply(self, state: GatePass) -> GatePass:
        return msgspec.structs.replace(
            state, version=self.originator_version, status="passed", passage=self.passage()
        )


class GatePassView(msgspec.Struct, frozen=True, kw_only=True):
    """GET /v1/gate-passes/{no}; POST answers it with its `position`, the passage also with
    the movements it recorded."""

    pass_no: str
    zone: str
    direction: PassDirection
    status: Literal["filed", "passed"]
    enterprise: str
    vehicle: Vehicle
    gross_weight_kg: Decimal
    tare_weight_kg: Decimal | None
    checklists: list[Carried]
    filed_at: datetime
    passage: Passage | None = None
    movements: list[MovementView] | None = None
    position: int | None = None


def view(state: GatePass, **extra: Any) -> GatePassView:
    return GatePassView(
        pass_no=state.pass_no,
        zone=state.zone,
        direction=state.direction,
        status=state.status,
        enterprise=state.enterprise,
        vehicle=state.vehicle,
        gross_weight_kg=state.gross_weight_kg,
        tare_weight_kg=state.tare_weight_kg,
        checklists=list(state.checklists),
        filed_at=state.filed_at,
        passage=state.passage,
        **extra,
    )


def gate_pass_id(principal: str, idempotency_key: str) -> UUID:
    return stream_id("gate-pass", f"{principal}\x00{idempotency_key}")


def movement_id_of(pass_id: UUID, n: int) -> UUID:
    """The movement a passage records for the pass's n-th checklist (a retry collides)."""
    return stream_id("movement", f"gate-pass:{pass_id}:{n}")


# -- finding documents --------------------------------------------------------------------------


def find_pass(uow: UnitOfWork, number: str) -> Pending[GatePass] | None:
    document = stream_of(uow, number, "gate_pass")
    if document is None:
        return None
    found = uow.pending(document, GatePass)
    state = found.state
    return found if state is not None and state.pass_no == number else None


def sees_pass(scope: Scope, state: GatePass) -> bool:
    """The filing enterprise, the operators of its zone, officers and auditors."""
    if scope.role == "enterprise":
        return scope.enterprise == state.enterprise
    return scope.sees_zone(state.zone)


# -- filing -------------------------------------------------------------------------------------


def check_body(cmd: FileGatePass, zones: Mapping[str, Zone]) -> tuple[Decimal, Decimal | None]:
    """The body's own rules: a known zone, sane weights, at least one checklist, none twice."""
    p = Problems()
    if cmd.zone not in zones:
        p.add("$.zone", f"unknown zone {cmd.zone!r}")
    p.check("$.vehicle.plate", values.text, cmd.vehicle.plate)
    if cmd.vehicle.driver is not None:
        p.check("$.vehicle.driver", values.text, cmd.vehicle.driver)
    gross = p.check("$.gross_weight_kg", weight, cmd.gross_weight_kg)
    tare = None
    if cmd.tare_weight_kg is not None:
        tare = p.check("$.tare_weight_kg", weight, cmd.tare_weight_kg)
        if tare is not None and gross is not None and tare >= gross:
            p.add("$.tare_weight_kg", f"the vehicle's tare {tare} kg is not below its gross")
    if not cmd.checklists:
        p.add("$.checklists", "name at least one checklist")
    seen: set[str] = set()
    for n, entry in enumerate(cmd.checklists):
        if entry.checklist_no in seen:
            p.add(f"$.checklists[{n}].checklist_no", f"{entry.checklist_no} is named twice")
        seen.add(entry.checklist_no)
    p.raise_if_any()
    assert gross is not None
    return gross, tare


def weight(loc: str, value: Decimal) -> Decimal:
    """A weight in kilograms: positive, at most 3 decimals."""
    return values.decimal_value(loc, value, places=3, positive=True)


def carried_lines(entry: PassChecklist, doc: ChecklistDoc, at: str) -> list[CarriedLine]:
    """What the pass carries of one checklist: the lines named (each within what the line
    still lists) or everything not yet passed."""
    listed = {line.line_no: line for line in doc.lines}
    if entry.lines is None:
        left = [
            CarriedLine(line_no=n, item_no=line.item_no, quantity=line.quantity - line.passed)
            for n, line in listed.items()
            if line.quantity > line.passed
        ]
        if not left:
            raise Conflict(
                f"checklist {entry.checklist_no} has nothing left to pass",
                rule="exceeds_checklist_quantity",
            )
        return left
    p = Problems()
    if not entry.lines:
        p.add(f"{at}.lines", "name at least one line, or leave `lines` out to carry them all")
    carried: dict[int, CarriedLine] = {}
    for j, pass_line in enumerate(entry.lines):
        line = listed.get(pass_line.line_no)
        if line is None:
            p.add(f"{at}.lines[{j}].line_no", f"the checklist has no line {pass_line.line_no}")
            continue
        if pass_line.line_no in carried:
            p.add(f"{at}.lines[{j}].line_no", f"line {pass_line.line_no} is named twice")
            continue
        q = p.check(f"{at}.lines[{j}].quantity", values.quantity, pass_line.quantity, line.unit)
        if q is not None:
            carried[line.line_no] = CarriedLine(
                line_no=line.line_no, item_no=line.item_no, quantity=q
            )
    p.raise_if_any()
    for c in carried.values():
        check_within(entry.checklist_no, listed[c.line_no], c.quantity)
    return list(carried.values())


def check_within(checklist_no: str, line: ChecklistLine, quantity: Decimal) -> None:
    left = line.quantity - line.passed
    if quantity > left:
        raise Conflict(
            f"checklist {checklist_no} line {line.line_no} lists {line.quantity}, "
            f"{line.passed} already passed: {quantity} is more than the {left} left",
            rule="exceeds_checklist_quantity",
        )


def carried_checklist(
    uow: UnitOfWork, entry: PassChecklist, n: int, cmd: FileGatePass, scope: Scope
) -> Carried:
    at = f"$.checklists[{n}]"
    doc = find(uow, entry.checklist_no)
    if doc is None or doc.enterprise != scope.enterprise:
        raise ValidationFailed.at(f"{at}.checklist_no", "no such checklist of yours")
    if doc.zone != cmd.zone:
        raise Conflict(
            f"checklist {entry.checklist_no} moves goods of {doc.zone}, not {cmd.zone}",
            rule="zone_mismatch",
        )
    if doc.kind in STAYS_IN_ZONE:
        raise Conflict(
            f"checklist {entry.checklist_no} is a {doc.kind} checklist: its goods stay in the "
            "zone and pass no gate",
            rule="stays_in_zone",
        )
    direction = doc.direction
    if direction != CHECKLIST_DIRECTION[cmd.direction]:
        raise Conflict(
            f"checklist {entry.checklist_no} is inbound; a pass `{cmd.direction}` cannot carry it"
            if direction == "I"
            else f"checklist {entry.checklist_no} is outbound; a pass `{cmd.direction}` cannot"
            " carry it",
            rule="wrong_direction",
        )
    check_open(doc)
    return Carried(
        checklist_no=entry.checklist_no,
        document=doc.stream,
        declaration=doc.declaration,
        declaration_no=doc.declaration_no,
        lines=carried_lines(entry, doc, at),
    )


def check_open(doc: ChecklistDoc) -> None:
    """Only an approved checklist's goods pass; a closed one has nothing left."""
    require_open(doc.number, doc.status, "pass")


def decide_filing(
    uow: UnitOfWork,
    cmd: FileGatePass,
    stream: UUID,
    zones: Mapping[str, Zone],
    actor: Actor,
    now: datetime,
) -> Decision[GatePassView]:
    """File a pass: its number from the zone's office's series, what it carries, one write."""
    scope = Scope.of(actor)
    gross, tare = check_body(cmd, zones)
    carried = [carried_checklist(uow, e, n, cmd, scope) for n, e in enumerate(cmd.checklists)]
    office, year = zones[cmd.zone].customs_office, china_year(now)
    direction = CHECKLIST_DIRECTION[cmd.direction]
    where = (office, year, direction)
    number, numbered = issue_number(uow, "gate_pass", where, stream, actor, now)
    gate_pass = uow.new(stream, GatePass)
    common = {"actor": actor, "occurred_at": now}
    gate_pass.record(
        GatePassFiled,
        pass_no=number,
        zone=cmd.zone,
        direction=cmd.direction,
        enterprise=scope.enterprise or "",
        vehicle=cmd.vehicle,
        gross_weight_kg=gross,
        tare_weight_kg=tare,
        checklists=carried,
        **common,
    )
    return Decision([*numbered, gate_pass], view(gate_pass.current))
