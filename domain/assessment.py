"""Assessing a submitted declaration: the zone's e-commerce permit, the buyer's quota, the
risk channel, the duties and the CNY value, decided in the submission's own write.

Every stream the assessment depends on records an event in that write (the buyer's quota) or
is read through the unit of work, whose commit checks it has not moved (each item's
unit-value history, which only releases write: domain/unit_values.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, localcontext

import msgspec

from domain import clearance, quota
from domain.declaration import (
    SHANGHAI,
    Declaration,
    DeclaredLine,
    SubmitDeclaration,
    needs_acceptance,
)
from domain.duties import Assessment, DutyTables, Retail, assess
from domain.duty_tables import DEFAULT_TABLES
from domain.enterprise import Enterprise
from domain.errors import Conflict, ValidationFailed
from domain.events import Actor, Pending
from domain.reference import RETAIL_FLOW, RETAIL_TRADE_MODES, Zone
from domain.reference_rules import Registers, digests_in_force, tables_used
from domain.risk import RiskRules, assess_risk
from domain.risk_rules import DEFAULT_RULES
from domain.unit_of_work import UnitOfWork
from domain.unit_values import history_owner, released_prices
from domain.value_checks import PRECISION, LineRisk

# Cross-border e-commerce retail import from a bonded zone's stock ("online bonded import":
# 1210, and 1239 for the cities outside the 2016 pilot list), GACC Announcement 2016 No. 75
# [verify: the announcement that added 1239].
BONDED_RETAIL_MODES = ("1210", "1239")
CENT = Decimal("0.01")


@dataclass(frozen=True)
class ClearanceRules:
    """The data clearance decisions are made with (files can replace the defaults)."""

    risk: RiskRules = field(default_factory=lambda: DEFAULT_RULES)
    duties: DutyTables = field(default_factory=lambda: DEFAULT_TABLES)


def is_retail(flow: str, trade_mode: str) -> bool:
    """A cross-border e-commerce retail list: a 9610 parcel arriving (`direct_in`), or 1210/1239
    bonded stock leaving into China (`second_line_out`); both taxed as retail."""
    return trade_mode in RETAIL_TRADE_MODES and flow == RETAIL_FLOW[trade_mode]


def check_zone_permits(cmd: SubmitDeclaration, zone: Zone, day: date) -> None:
    """A bonded retail list draws on a zone's stock only where the zone is permitted bonded
    e-commerce on that day (409 `zone_not_permitted`)."""
    bonded_retail = is_retail(cmd.flow, cmd.trade_mode) and cmd.trade_mode in BONDED_RETAIL_MODES
    if bonded_retail and "bonded_ecommerce" not in zone.permits_on(day):
        raise Conflict(
            f"zone {zone.code} does not permit bonded e-commerce on {day}",
            rule="zone_not_permitted",
        )


def retail_mode(amount: Decimal) -> Retail:
    """Within the per-transaction limit: the 70% retail rate; a single indivisible item over
    it (allowed by validation) pays the full tax and still counts against the quota
    (Caiguanshui [2018] No. 49)."""
    return "full_tax" if amount > quota.TRANSACTION_LIMIT_CNY else "within_limits"


def value_cny(lines: list[DeclaredLine], currency: str, day: date, tables: DutyTables) -> Decimal:
    """The goods' declared value in CNY at the month's customs rate, for statistics.

    A month without a rate table only leaves the statistic at zero for declarations that
    pay nothing; assessable ones were already refused by the duties engine.
    """
    try:
        rate = tables.cny_per_unit(currency, day.strftime("%Y-%m"))
    except ValidationFailed:
        return Decimal(0)
    with localcontext(prec=PRECISION):  # exact for any figures the grammar admits
        goods = sum((line.quantity * line.unit_price for line in lines), Decimal(0))
        return (goods * rate).quantize(CENT, ROUND_HALF_UP)


def rate_for_bounds(tables: DutyTables, currency: str, day: date) -> Decimal | None:
    """CNY per unit of `currency` for the value checks' bounds: the month's customs rate, else
    the latest published before it (bounds are orders of magnitude, a late publication must
    not blind them); None when the currency never had one."""
    month = day.strftime("%Y-%m")
    known = [r for r in tables.exchange_rates if r.month <= month and r.rate_of(currency)]
    latest = max(known, key=lambda r: r.month, default=None)
    return Decimal(1) if currency == "CNY" else latest.rate_of(currency) if latest else None


def history_book(cmd: SubmitDeclaration) -> str:
    """Whose unit-value history a line joins (domain/unit_values.py `history_owner`)."""
    return history_owner(cmd.account_book, cmd.declarant)


@dataclass(frozen=True)
class AssessmentInputs:
    """What the assessment of one submission reads besides the log."""

    cmd: SubmitDeclaration
    lines: list[DeclaredLine]
    enterprise: Enterprise
    rules: ClearanceRules
    actor: Actor
    now: datetime
    # The reference registers the rules were taken from (domain/reference_rules.py).
    registers: Registers = field(default_factory=dict)
    # The China day whose rates assess it, when not the day of the submission: a consolidated
    # declaration's last exit day (domain/collected.py).
    on: date | None = None


# The key of each published kind in an assessment's `tables` digests.
DIGEST_KEYS = {"tariff": "tariff", "exchange-rates": "exchange_rates"}


def recorded_tables(duties: Assessment, in_force: dict[str, str]) -> Assessment:
    """The assessment with the digests of the published tariff and rates in force: one digest
    per table, the one an auditor reads in `GET /v1/reference/{kind}/versions`."""
    published = {DIGEST_KEYS[kind]: digest for kind, digest in in_force.items()}
    if not published:
        return duties
    return msgspec.structs.replace(duties, tables={**duties.tables, **published})


def line_risks(
    uow: UnitOfWork, cmd: SubmitDeclaration, lines: list[DeclaredLine], rate: Decimal | None
) -> list[LineRisk]:
    """The lines as the risk engine reads them, each with its item's released prices (read
    only: a line enters the history when its declaration is released, domain/unit_values.py)."""
    found = []
    for line in lines:
        history = released_prices(uow, history_book(cmd), line.item_no, cmd.currency)
        found.append(
            LineRisk(
                line_no=line.line_no,
                item_no=line.item_no,
                hs_code=line.hs_code,
                origin_country=line.origin_country,
                quantity=line.quantity,
                unit_price=line.unit_price,
                history=list(history.prices),
                cny_rate=rate,
            )
        )
    return found


def assess_submission(
    uow: UnitOfWork, declaration: Pending[Declaration], inputs: AssessmentInputs
) -> list[Pending[quota.BuyerQuota]]:
    """Count a retail list against the buyer's quota, judge the lines' values against their
    items' released history and the bounds, and record the risk channel, duties and status.
    Returns the other stream the assessment wrote (the buyer's quota, for a retail list)."""
    cmd, actor = inputs.cmd, inputs.actor
    state = declaration.state
    assert state is not None
    occurred = state.submitted_at
    day = inputs.on or inputs.now.astimezone(SHANGHAI).date()
    touched: list[Pending[quota.BuyerQuota]] = []
    mode: Retail | None = None
    quota_year = None
    ecommerce = state.facts.ecommerce
    if is_retail(cmd.flow, cmd.trade_mode) and ecommerce is not None:
        amount = ecommerce.order.amount
        quota_year = day.year
        buyer = uow.pending(quota.quota_id(ecommerce.order.buyer_id, quota_year), quota.BuyerQuota)
        carried = Decimal(0)
        if cmd.ecommerce is not None and cmd.ecommerce.order.buyer_id != ecommerce.order.buyer_id:
            # Sealed: the lists of this year written before sealing count too (domain/quota.py).
            carried = quota.carried_over(uow, cmd.ecommerce.order.buyer_id, quota_year)
        quota.use(buyer, declaration.id, amount, carried, actor=actor, occurred_at=occurred)
        touched.append(buyer)
        mode = retail_mode(amount)
    rules = inputs.rules
    rate = rate_for_bounds(rules.duties, cmd.currency, day)
    risk = assess_risk(
        rules.risk,
        credit_class=inputs.enterprise.credit_class,
        declaration_id=declaration.id,
        lines=line_risks(uow, cmd, inputs.lines, rate),
    )
    duties = assess(
        flow=cmd.flow,
        trade_mode=cmd.trade_mode,
        currency=cmd.currency,
        incoterm=cmd.incoterm,
        freight=state.facts.freight,
        insurance=state.facts.insurance,
        lines=inputs.lines,
        retail=mode,
        on=day,
        tables=rules.duties,
    )
    used = tables_used(
        inputs.registers, day, currency=cmd.currency, tariff=bool(duties.lines), retail=bool(mode)
    )
    duties = recorded_tables(duties, digests_in_force(inputs.registers, day))
    declaration.record(
        clearance.DeclarationAssessed,
        actor=actor,
        occurred_at=occurred,
        credit_class=inputs.enterprise.credit_class,
        risk=risk,
        duties=duties,
        status="awaiting_acceptance"
        if needs_acceptance(state.facts)
        else clearance.status_after_channel(risk.channel, duties.total),
        quota_year=quota_year,
        value_cny=value_cny(inputs.lines, cmd.currency, day, rules.duties),
        tables_used=used,
    )
    return touched
