"""Numbers of the zone documents: checklists (核注清单) and gate passes (核放单).

A checklist number is `QD` + customs office (4) + 2-digit year + `I`/`E` + 9-digit serial
(DOMAIN.md, identifier formats). A gate pass number follows the same shape with `HF`
[verify: the prefix and layout Golden Customs II gives SAS121 gate passes were not confirmed
from a public specification; the ledger's pass numbers are its own]. Serials come from one
number series per (document, office, year, direction), as declaration numbers do, straight
(serial n is version n of the series stream) or, where several processes write the store,
from blocks of the series (domain/numbering.py: serial b * BLOCK_SIZE + v is version v of
block b's stream). Either way the event that issued a serial names the document it numbered,
so a number finds its document with one or two indexed reads, and two processes never share a
serial (the version of the stream it is issued on is checked at commit).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from domain.declaration import SHANGHAI, NumberSeries
from domain.events import Actor, DomainEvent, Pending, stream_id
from domain.numbering import take_serial
from domain.unit_of_work import UnitOfWork

DocumentKind = Literal["checklist", "gate_pass"]
PREFIX: dict[DocumentKind, str] = {"checklist": "QD", "gate_pass": "HF"}
NUMBER = re.compile(r"^(QD|HF)(\d{4})(\d{2})([IE])(\d{9})$")


class DocumentNumberIssued(DomainEvent, frozen=True, kw_only=True):
    """The next serial of a checklist or gate-pass series went to a document (its stream).

    Like `DeclarationNumberIssued`, recorded on the series or on one of its blocks, whose state
    is its last event alone."""

    serial: int
    document_id: UUID

    def apply(self, state: NumberSeries | None) -> NumberSeries:
        return NumberSeries(
            id=self.originator_id, version=self.originator_version, last_serial=self.serial
        )


def series_id(kind: DocumentKind, office: str, year: int, direction: str) -> UUID:
    return stream_id(f"{kind}-number", f"{office}:{year % 100:02d}:{direction}")


def number_of(kind: DocumentKind, office: str, year: int, direction: str, serial: int) -> str:
    if serial > 999_999_999:
        msg = f"{kind} number series {office}{year % 100:02d}{direction} is exhausted"
        raise OverflowError(msg)
    return f"{PREFIX[kind]}{office}{year % 100:02d}{direction}{serial:09d}"


def issue_number(
    uow: UnitOfWork,
    kind: DocumentKind,
    where: tuple[str, int, str],
    document: UUID,
    actor: Actor,
    occurred_at: datetime,
) -> tuple[str, Sequence[Pending[Any]]]:
    """Number a checklist or gate pass (`document`) of the series of `where` (customs office,
    year, direction) from the series or this process's block of it (domain/numbering.py),
    recording `DocumentNumberIssued`: its number, and the streams to save for it."""
    office, year, direction = where
    taken = take_serial(uow, series_id(kind, office, year, direction), actor, occurred_at)
    number = number_of(kind, office, year, direction, taken.serial)
    taken.issue_on.record(
        DocumentNumberIssued,
        actor=actor,
        occurred_at=occurred_at,
        serial=taken.serial,
        document_id=document,
    )
    return number, taken.saves


def parse(number: str) -> tuple[DocumentKind, UUID, int] | None:
    """(kind, series stream, serial) of a document number; None when it is not one."""
    found = NUMBER.match(number)
    if found is None:
        return None
    prefix, office, year, direction, serial = found.groups()
    kind: DocumentKind = "checklist" if prefix == "QD" else "gate_pass"
    return kind, series_id(kind, office, int(year), direction), int(serial)


def stream_of(uow: UnitOfWork, number: str, kind: DocumentKind) -> UUID | None:
    """The stream a checklist or gate-pass number names (None: not such a number, or never
    issued), read through the decision's unit of work."""
    parsed = parse(number)
    if parsed is None or parsed[0] != kind:
        return None
    return uow.numbered(parsed[1], parsed[2])


def china_year(moment: datetime) -> int:
    return moment.astimezone(SHANGHAI).year
