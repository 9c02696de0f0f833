"""A checklist as a gate pass sees it, whoever filed it: its declaration when it entered
`released` (domain/checklists.py), or its enterprise on its own (domain/standalone_checklists.py).
A number finds its stream through its series (domain/documents.py)."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from domain.checklists import (
    FILED_BY_FLOW,
    ChecklistLine,
    ChecklistStatus,
    Direction,
    checklist_status,
    lines_of,
)
from domain.declaration import Declaration
from domain.documents import stream_of
from domain.standalone_checklists import Checklist
from domain.unit_of_work import UnitOfWork


@dataclass(frozen=True)
class ChecklistDoc:
    number: str
    stream: UUID
    zone: str
    enterprise: str
    direction: Direction
    status: ChecklistStatus
    lines: list[ChecklistLine]
    # The declaration's flow, for a checklist a declaration filed; None for one filed alone.
    flow: str | None
    declaration: UUID | None
    declaration_no: str | None
    kind: str


def find(uow: UnitOfWork, number: str) -> ChecklistDoc | None:
    """The checklist `number` names, as it stands (its stream read for the decision)."""
    stream = stream_of(uow, number, "checklist")
    if stream is None:
        return None
    d = uow.load(stream, Declaration)
    if d is not None:
        if d.checklist_no != number:
            return None
        kind, direction = FILED_BY_FLOW[d.facts.flow]
        return ChecklistDoc(
            number=number,
            stream=stream,
            zone=d.facts.zone,
            enterprise=d.facts.declarant,
            direction=direction,
            status=checklist_status(d),
            lines=lines_of(d),
            flow=d.facts.flow,
            declaration=d.id,
            declaration_no=d.facts.declaration_no,
            kind=kind,
        )
    c = uow.load(stream, Checklist)
    if c is None or c.checklist_no != number:
        return None
    return ChecklistDoc(
        number=number,
        stream=stream,
        zone=c.zone,
        enterprise=c.enterprise,
        direction=c.direction,
        status=c.status,
        lines=list(c.lines),
        flow=None,
        declaration=c.declaration,
        declaration_no=c.declaration_no,
        kind=c.kind,
    )
