"""Reassessment: every recorded assessment computed again from the log alone.

An auditor's proof that the duties a declaration records are what its published tables give:
the log is read once in order; the reference registers are folded from their
`ReferencePublished` events, each declaration's facts from its submission; at each
`DeclarationAssessed` the duties engine runs again on those facts, on the China day it was
assessed, with exactly the table versions the assessment records (`tables_used`), and its
figures are compared with the recorded ones. Nothing is written; no table file, built-in
default or secret is read, but the configured assessable modes, waiver and retail factor
(which the `assessable` digest of each assessment pins: a difference there is reported).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from uuid import UUID

import msgspec

from domain.clearance import DeclarationAssessed
from domain.declaration import DeclarationFacts, DeclarationSubmitted
from domain.duties import MODES, Assessment, DutyTables, assess
from domain.errors import LedgerError
from domain.reference_data import Publication, ReferencePublished, ReferenceRegister
from domain.reference_rules import exchange_rates, tariff_table
from ledger.mapper import decode_event
from ledger.store import ChainedLog, LogRecord

PAGE = 2_000
# The figures compared (the digests of the tables are compared on their own).
FIGURES = (
    *("mode", "exchange_rate", "customs_value_cny", "lines"),
    *("tariff", "consumption_tax", "vat", "total", "waived"),
)
TOPICS = tuple(
    f"{cls.__module__}:{cls.__qualname__}"
    for cls in (ReferencePublished, DeclarationSubmitted, DeclarationAssessed)
)


@dataclass
class Reassessment:
    """What a pass over the log found."""

    assessments: int = 0
    reproduced: int = 0
    without_tables: int = 0  # assessed before publications were events: nothing to compare
    differences: list[str] = field(default_factory=list)


def _records(log: ChainedLog) -> Iterator[LogRecord]:
    after = 0
    while True:
        page = log.select_log(after, PAGE, topics=TOPICS)
        yield from page
        if len(page) < PAGE:
            return
        after = page[-1].position


def reassess(
    log: ChainedLog,
    base: DutyTables,
    progress: Callable[[int], None] | None = None,
) -> Reassessment:
    """Compare every assessment in `log` with the engine's figures on its recorded tables."""
    found = Reassessment()
    registers: dict[str, ReferenceRegister] = {}
    facts: dict[UUID, DeclarationFacts] = {}
    for record in _records(log):
        event = decode_event(record.topic, record.stream_id, record.version, record.state)
        if isinstance(event, ReferencePublished):
            registers[event.kind] = event.apply(registers.get(event.kind))
        elif isinstance(event, DeclarationSubmitted):
            facts[event.originator_id] = event.facts
        elif isinstance(event, DeclarationAssessed):
            found.assessments += 1
            submitted = facts.get(event.originator_id)
            problem = _compare(event, submitted, registers, base) if submitted else "no facts"
            if problem is None:
                found.reproduced += 1
            elif problem == "":
                found.without_tables += 1
            else:
                found.differences.append(f"position {record.position}: {problem}")
            if progress is not None and found.assessments % 1000 == 0:
                progress(found.assessments)
    return found


def _compare(
    event: DeclarationAssessed,
    f: DeclarationFacts,
    registers: dict[str, ReferenceRegister],
    base: DutyTables,
) -> str | None:
    """None: the figures are reproduced; "": nothing to compare with; else what differs."""
    recorded = event.duties
    used: dict[str, Publication] = {}
    for t in event.tables_used:
        register = registers.get(t.kind)
        match = [
            p
            for p in (register.publications if register else ())
            if p.effective_from == t.effective_from and p.version == t.version
        ]
        if not match or match[0].digest != t.digest:
            return (
                f"{t.kind} of {t.effective_from} version {t.version} is not in the log as recorded"
            )
        used[t.kind] = match[0]
    if recorded.assessable and recorded.lines and "tariff" not in used:
        return ""
    tables = msgspec.structs.replace(
        base,
        tariffs=[tariff_table(used["tariff"])] if "tariff" in used else [],
        exchange_rates=[exchange_rates(used["exchange-rates"])] if "exchange-rates" in used else [],
    )
    retail = {mode: r for r, mode in MODES.items()}.get(recorded.mode)
    try:
        again = assess(
            flow=f.flow,
            trade_mode=f.trade_mode,
            currency=f.currency,
            incoterm=f.incoterm,
            freight=f.freight,
            insurance=f.insurance,
            lines=f.lines,
            retail=retail,
            on=_day(recorded, used.get("tariff")),
            tables=tables,
        )
    except LedgerError as e:
        return f"the recorded tables cannot assess it again: {e}"
    return _differences(recorded, again)


def _day(recorded: Assessment, tariff: Publication | None) -> date:
    """A day the recorded tables give the same figures on as the day of the assessment: in
    its rate month, on or after its tariff's effective date (the server's clock at the
    assessment is not an event field; only those two facts of it matter)."""
    first = date(int(recorded.rate_month[:4]), int(recorded.rate_month[5:]), 1)
    return max(first, tariff.effective_from) if tariff is not None else first


def _differences(recorded: Assessment, again: Assessment) -> str | None:
    wrong = [name for name in FIGURES if getattr(recorded, name) != getattr(again, name)]
    if recorded.tables.get("assessable") != again.tables.get("assessable"):
        wrong.append("assessable (the configured modes, waiver or retail factor differ)")
    if not wrong:
        return None
    return "; ".join(
        f"{name}: recorded {getattr(recorded, name, '?')}, again {getattr(again, name, '?')}"
        for name in wrong
    )
