"""Declaration commands: submission with its assessment, and every later decision.

Submission decides in one atomic write: the number from its series, the facts, the risk
channel, the duties, the buyer's yearly quota (retail lists) and the items' unit-value history
- every stream the decision depends on records an event, so the version check covers them all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from uuid import UUID

from domain import account_book as books
from domain import clearance, exits, quota
from domain import declaration as decl
from domain import submission as sub
from domain.duties import DutyTables, assess
from domain.duty_tables import DEFAULT_TABLES
from domain.enterprise import enterprise_id
from domain.errors import Conflict, NotFound, ValidationFailed
from domain.events import Actor, Pending
from domain.movements import item_stock_id
from domain.reference import RETAIL_TRADE_MODES, Zone
from domain.risk import LineRisk, RiskRules, assess_risk
from domain.risk_rules import DEFAULT_RULES
from domain.unit_values import UnitValueObserved, unit_values_id
from domain.views import declaration_view
from ledger.access import act_as
from ledger.application import LedgerApplication
from ledger.requests import Idempotency, Outcome

Decide = Callable[[datetime], tuple[list[Pending[Any]], Any]]
BONDED_RETAIL_MODES = ("1210", "1239")
CENT = Decimal("0.01")


@dataclass(frozen=True)
class ClearanceRules:
    """The data clearance decisions are made with (files can replace the defaults)."""

    risk: RiskRules = field(default_factory=lambda: DEFAULT_RULES)
    duties: DutyTables = field(default_factory=lambda: DEFAULT_TABLES)


# action -> (transition, only the declarant may do it, gives a retail list's quota back)
TRANSITIONS: dict[str, tuple[Callable[..., decl.Declaration], bool, bool]] = {
    "withdrawal": (clearance.withdraw, True, True),
    "payment": (clearance.pay, True, False),
    "inspection": (clearance.record_inspection, False, False),
    "release": (clearance.grant_release, False, False),
    "rejection": (clearance.reject, False, True),
}


def is_retail(cmd: decl.SubmitDeclaration) -> bool:
    return cmd.trade_mode in RETAIL_TRADE_MODES and cmd.flow == "second_line_out"


class DeclarationCommands:
    """Mixed into `Ledger`, which provides the application, zones, rules and `_execute`."""

    app: LedgerApplication
    zones: dict[str, Zone]
    rules: ClearanceRules
    _execute: Callable[[int, Idempotency | None, Any, Decide, Actor], Outcome]

    def submit_declaration(
        self, cmd: decl.SubmitDeclaration, actor: Actor, idem: Idempotency
    ) -> Outcome:
        act_as(actor, cmd.declarant, "$.declarant")

        def decide(now: datetime) -> tuple[list[Pending[Any]], Any]:
            enterprise = self.app.load(enterprise_id(cmd.declarant))
            ctx = sub.SubmissionContext(
                zones=self.zones,
                book=self.app.load(books.account_book_id(cmd.account_book)),
                destination_book=self.app.load(books.account_book_id(cmd.destination_account_book))
                if cmd.destination_account_book
                else None,
                declarant_registered=enterprise is not None,
                now=now,
            )
            lines = sub.validate_submission(cmd, ctx)
            day = now.astimezone(decl.SHANGHAI).date()
            zone = self.zones[cmd.zone]
            bonded_retail = is_retail(cmd) and cmd.trade_mode in BONDED_RETAIL_MODES
            if bonded_retail and "bonded_ecommerce" not in zone.permits_on(day):
                raise Conflict(
                    f"zone {zone.code} does not permit bonded e-commerce on {day}",
                    rule="zone_not_permitted",
                )
            office, year, direction = decl.series_of(zone, cmd.flow, now)
            series = self.app.pending_latest(decl.number_series_id(office, year, direction))
            # Its id comes from the same (principal, key) as the idempotency record, written
            # in the same transaction: with no record there is no such declaration either.
            declaration: Pending[decl.Declaration] = Pending(
                None, decl.declaration_id(idem.principal, idem.key)
            )
            state = sub.submit(declaration, series, cmd, lines, ctx, actor)
            occurred = state.submitted_at
            pendings: dict[UUID, Pending[Any]] = {series.id: series, declaration.id: declaration}
            retail_mode, quota_year = None, None
            if is_retail(cmd) and cmd.ecommerce is not None:
                amount = state.facts.ecommerce.order.amount  # type: ignore[union-attr]
                quota_year = day.year
                buyer = self.app.pending(quota.quota_id(cmd.ecommerce.order.buyer_id, quota_year))
                quota.use(buyer, declaration.id, amount, actor=actor, occurred_at=occurred)
                pendings[buyer.id] = buyer
                # Within the per-transaction limit: the 70% retail rate; a single indivisible
                # item over it (allowed by validation) pays the full tax and still counts.
                over = amount > quota.TRANSACTION_LIMIT_CNY
                retail_mode = "full_tax" if over else "within_limits"
            line_risks = []
            for line in lines:
                key = unit_values_id(cmd.account_book, line.item_no, cmd.currency)
                history = pendings.get(key) or self.app.pending(key)
                pendings[key] = history
                seen = history.state
                line_risks.append(
                    LineRisk(
                        line_no=line.line_no,
                        hs_code=line.hs_code,
                        origin_country=line.origin_country,
                        unit_price=line.unit_price,
                        history_count=seen.count if seen else 0,
                        history_mean=seen.mean if seen else None,
                    )
                )
                history.record(
                    UnitValueObserved,
                    actor=actor,
                    occurred_at=occurred,
                    declaration_id=declaration.id,
                    unit_price=line.unit_price,
                )
            assert enterprise is not None
            risk = assess_risk(
                self.rules.risk,
                credit_class=enterprise.credit_class,
                declaration_id=declaration.id,
                lines=line_risks,
            )
            duties = assess(
                flow=cmd.flow,
                trade_mode=cmd.trade_mode,
                currency=cmd.currency,
                incoterm=cmd.incoterm,
                freight=state.facts.freight,
                insurance=state.facts.insurance,
                lines=lines,
                retail=retail_mode,  # type: ignore[arg-type]
                on=day,
                tables=self.rules.duties,
            )
            value_cny = self._value_cny(lines, cmd.currency, day)
            declaration.record(
                clearance.DeclarationAssessed,
                actor=actor,
                occurred_at=occurred,
                credit_class=enterprise.credit_class,
                risk=risk,
                duties=duties,
                status=clearance.status_after_channel(risk.channel, duties.total),
                quota_year=quota_year,
                value_cny=value_cny,
            )
            self._reserve_if_released(None, declaration, pendings, actor, occurred)
            return list(pendings.values()), declaration_view(declaration.state)  # type: ignore[arg-type]

        return self._execute(201, idem, cmd, decide, actor)

    def _reserve_if_released(
        self,
        before: str | None,
        declaration: Pending[decl.Declaration],
        pendings: dict[UUID, Pending[Any]],
        actor: Actor,
        now: datetime,
    ) -> None:
        """An outbound declaration entering `released` reserves its stock in the same write
        (409 `insufficient_stock` refuses the whole decision otherwise)."""
        state = declaration.state
        assert state is not None
        if state.status != "released" or before == "released":
            return
        if state.facts.flow not in exits.OUTBOUND:
            return
        stocks = {}
        for item_no, _status in exits.needs(state):
            key = item_stock_id(state.facts.account_book, item_no)
            stocks[item_no] = pendings.get(key) or self.app.pending(key)
            pendings[key] = stocks[item_no]
        exits.reserve(state, stocks, actor, now, before)

    def _value_cny(self, lines: list[decl.DeclaredLine], currency: str, day: date) -> Decimal:
        """The goods' declared value in CNY at the month's customs rate, for statistics.

        A month without a rate table only leaves the statistic at zero for declarations that
        pay nothing; assessable ones were already refused by the duties engine.
        """
        try:
            rate = self.rules.duties.rates_for(day.strftime("%Y-%m")).rate_of(currency)
        except ValidationFailed:
            return Decimal(0)
        goods = sum((line.quantity * line.unit_price for line in lines), Decimal(0))
        return (goods * rate).quantize(CENT, ROUND_HALF_UP) if rate is not None else Decimal(0)

    def decide_on(
        self,
        action: str,
        ref: str,
        cmd: Any,
        actor: Actor,
        idem: Idempotency | None = None,
    ) -> Outcome:
        """One decision on an existing declaration: `withdrawal` and `payment` (its declarant),
        `inspection`, `release` and `rejection` (an officer; roles are checked by the API).

        Loads it, checks tenancy, makes the transition and, for a withdrawn or rejected retail
        list, gives its amount back to the buyer's quota in the same write.
        """
        transition, declarant_only, gives_quota_back = TRANSITIONS[action]

        def decide(now: datetime) -> tuple[list[Pending[Any]], Any]:
            stream = self.resolve_declaration(ref)
            pending = self.app.pending(stream) if stream else None
            if pending is None or pending.state is None:
                raise NotFound(f"no declaration {ref}")
            if declarant_only and pending.state.facts.declarant != actor.enterprise:
                raise NotFound(f"no declaration {ref}")
            before = pending.state
            state = transition(pending, cmd, actor, now)
            touched: dict[UUID, Pending[Any]] = {pending.id: pending}
            self._reserve_if_released(before.status, pending, touched, actor, now)
            pendings: list[Pending[Any]] = list(touched.values())
            e = before.facts.ecommerce
            if gives_quota_back and before.quota_year is not None and e is not None:
                buyer = self.app.pending(quota.quota_id(e.order.buyer_id, before.quota_year))
                quota.give_back(buyer, pending.id, actor=actor, occurred_at=now)
                pendings.append(buyer)
            return pendings, declaration_view(state)

        return self._execute(200, idem, cmd, decide, actor)

    def withdraw_declaration(
        self, ref: str, cmd: decl.WithdrawDeclaration, actor: Actor, idem: Idempotency | None = None
    ) -> Outcome:
        return self.decide_on("withdrawal", ref, cmd, actor, idem)

    def resolve_declaration(self, ref: str) -> UUID | None:
        """A declaration's id from its id or its 18-digit number (from the number series)."""
        if len(ref) == 18 and ref.isdigit():
            series = decl.number_series_id(ref[:4], int(ref[4:8]), ref[8])
            serial = int(ref[9:])
            # Version n of a series stream issued serial n.
            for event in self.app.events.get(series, gt=serial - 1, lte=serial):
                return event.declaration_id  # type: ignore[attr-defined,no-any-return]
            return None
        try:
            return UUID(ref)
        except ValueError:
            return None
