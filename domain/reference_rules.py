"""The clearance rules a decision uses: the published reference tables in force, as one object.

A submission reads the registers of the published kinds in its own unit of work, so a
publication committed by another server is seen by the next decision (on PostgreSQL the
commit also checks that no register moved while it decided). The tables built from a set of
register states are kept while those states are the same objects: states are immutable, and a
new publication is a new state.

A register with no publication at all (a ledger that has not made its first start's
publication, or a unit test's in-memory store) falls back to the configured tables.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING

import msgspec

from domain.duties import DutyTables, ExchangeRates, TariffRate, TariffTable
from domain.reference_data import (
    Publication,
    PublishExchangeRates,
    PublishRiskRules,
    PublishTariff,
    ReferenceRegister,
    TableUsed,
    TariffRow,
    register_id,
)
from domain.risk import RiskRules
from domain.unit_of_work import UnitOfWork

if TYPE_CHECKING:  # domain.assessment reads the tables used from here
    from domain.assessment import ClearanceRules

# The kinds an assessment reads (the positive list is read by retail checks).
ASSESSMENT_KINDS = ("exchange-rates", "tariff", "risk-rules")
Registers = dict[str, ReferenceRegister | None]


def read_registers(uow: UnitOfWork, kinds: tuple[str, ...] = ASSESSMENT_KINDS) -> Registers:
    return {kind: uow.load(register_id(kind), ReferenceRegister) for kind in kinds}


def tariff_rate(row: TariffRow, source: str) -> TariffRate:
    """A published row as the duties engine reads it (`source` when the row names none)."""
    return TariffRate(
        hs_prefix=row.hs_prefix,
        tariff_rate=row.tariff_rate,
        vat_rate=row.vat_rate,
        consumption_rate=row.consumption_tax_rate,
        source=row.source or source,
    )


def tariff_table(p: Publication) -> TariffTable:
    rows = p.content.rows or []
    return TariffTable(valid_from=p.effective_from, rates=[tariff_rate(r, p.source) for r in rows])


def exchange_rates(p: Publication) -> ExchangeRates:
    assert p.month is not None
    return ExchangeRates(month=p.month, to_cny=dict(p.content.rates or {}), source=p.source)


def duty_tables(registers: Registers, base: DutyTables) -> DutyTables:
    """The configured assessable modes, waiver and retail factor with the published tariff and
    exchange rates (each kind's newest version of every date); kept per set of states."""
    tariff, rates = registers.get("tariff"), registers.get("exchange-rates")
    key = (id(tariff), id(rates), id(base))
    kept = _TABLES.get(key)
    if kept is not None and all(
        a is b for a, b in zip(kept[0], (tariff, rates, base), strict=True)
    ):
        return kept[1]
    tables = msgspec.structs.replace(
        base,
        tariffs=[tariff_table(p) for p in tariff.current()] if tariff else base.tariffs,
        exchange_rates=[exchange_rates(p) for p in rates.current()]
        if rates
        else base.exchange_rates,
    )
    if len(_TABLES) >= 16:
        _TABLES.clear()
    _TABLES[key] = ((tariff, rates, base), tables)
    return tables


def risk_rules(register: ReferenceRegister | None, base: RiskRules, day: date) -> RiskRules:
    """The risk rules in force on `day`, given the seed of `base` (the ledger's secret)."""
    p = register.in_force(day) if register is not None else None
    if p is None or p.content.rules is None:
        return base
    key = (id(p), base.seed)
    kept = _RULES.get(key)
    if kept is not None and kept[0] is p:
        return kept[1]
    seeded = msgspec.structs.replace(p.content.rules, seed=base.seed)
    if len(_RULES) >= 16:
        _RULES.clear()
    _RULES[key] = (p, seeded)
    return seeded


def rules_in_force(registers: Registers, base: ClearanceRules, day: date) -> ClearanceRules:
    return dataclasses.replace(
        base,
        risk=risk_rules(registers.get("risk-rules"), base.risk, day),
        duties=duty_tables(registers, base.duties),
    )


def tables_used(
    registers: Registers, day: date, *, currency: str, tariff: bool, retail: bool = False
) -> list[TableUsed]:
    """The published tables a decision on `day` read: the risk rules always, the month's
    exchange rates for a foreign currency, the tariff when a line was assessed, the positive
    list for a retail list."""
    wanted = {
        "risk-rules": True,
        "exchange-rates": currency != "CNY",
        "tariff": tariff,
        "positive-list": retail,
    }
    used = []
    for kind in (*ASSESSMENT_KINDS, "positive-list"):
        register = registers.get(kind)
        p = register.in_force(day) if register is not None and wanted[kind] else None
        if p is not None:
            used.append(p.used())
    return used


def digests_in_force(registers: Registers, day: date) -> dict[str, str]:
    """The digest of the tariff and the exchange rates in force on `day`, by kind (those a
    register has), whether or not a decision read them: what an assessment's `tables` name."""
    found = {}
    for kind in ("tariff", "exchange-rates"):
        register = registers.get(kind)
        p = register.in_force(day) if register is not None else None
        if p is not None:
            found[kind] = p.digest
    return found


def builtin_publications(
    base: ClearanceRules, since: date, subheadings: Callable[[str], list[str]]
) -> dict[str, list[object]]:
    """The configured tables as the bodies of their first publications, by kind: every
    tariff table and month of rates, and the risk rules (without their seed) from `since`.
    A configured row of a heading shorter than 6 digits becomes a row for each of its
    `subheadings` (a published row names 6 to 10 digits) that no longer row names."""
    source = "built-in tables of this release (see docs/reference-data.md), illustrative"
    return {
        "tariff": [
            PublishTariff(effective_from=t.valid_from, rows=_rows(t, subheadings), source=source)
            for t in base.duties.tariffs
        ],
        "exchange-rates": [
            PublishExchangeRates(
                month=r.month,
                rates={c: v for c, v in r.to_cny.items() if c != "CNY"},
                source=r.source,
            )
            for r in base.duties.exchange_rates
        ],
        "risk-rules": [
            PublishRiskRules(
                effective_from=since,
                rules=msgspec.structs.replace(base.risk, seed=""),
                source=source,
            )
        ],
    }


def _rows(table: TariffTable, subheadings: Callable[[str], list[str]]) -> list[TariffRow]:
    named = {r.hs_prefix for r in table.rates}
    rows = []
    for r in table.rates:
        prefixes = [r.hs_prefix] if len(r.hs_prefix) >= 6 else subheadings(r.hs_prefix)
        for prefix in prefixes:
            if prefix != r.hs_prefix and prefix in named:
                continue
            rows.append(
                TariffRow(
                    hs_prefix=prefix,
                    tariff_rate=r.tariff_rate,
                    vat_rate=r.vat_rate,
                    consumption_tax_rate=r.consumption_rate,
                    source=r.source,
                )
            )
    return rows


_TABLES: dict[tuple[int, int, int], tuple[tuple[object, object, object], DutyTables]] = {}
_RULES: dict[tuple[int, str], tuple[Publication, RiskRules]] = {}
