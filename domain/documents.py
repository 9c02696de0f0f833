"""Numbers of the zone documents: checklists (核注清单) and gate passes (核放单).

A checklist number is `QD` + customs office (4) + 2-digit year + `I`/`E` + 9-digit serial
(DOMAIN.md, identifier formats). A gate pass number follows the same shape with `HF`
[verify: the prefix and layout Golden Customs II gives SAS121 gate passes were not confirmed
from a public specification; the ledger's pass numbers are its own]. Serials come from one
number series per (document, office, year, direction), as declaration numbers do: serial n is
version n of the series stream and names the document it numbered, so a number finds its
document with one indexed read, and two processes never share a serial (the series' version
is checked at commit).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal
from uuid import UUID

from domain.declaration import SHANGHAI, NumberSeries
from domain.events import DomainEvent, stream_id
from domain.unit_of_work import UnitOfWork

DocumentKind = Literal["checklist", "gate_pass"]
PREFIX: dict[DocumentKind, str] = {"checklist": "QD", "gate_pass": "HF"}
NUMBER = re.compile(r"^(QD|HF)(\d{4})(\d{2})([IE])(\d{9})$")


class DocumentNumberIssued(DomainEvent, frozen=True, kw_only=True):
    """The next serial of a checklist or gate-pass series went to a document (its stream).

    Like `DeclarationNumberIssued`, the series' state is its last event alone."""

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
