"""The clearance workflow: assessment, inspection, release, rejection, payment, withdrawal,
and a transfer's acceptance or refusal by the destination book's enterprise.

Every decision is an event that says who decided, when and why, and carries its outcome, so
a replay rebuilds the same status and figures even after the rules and tables change. The
transition table is API.md's; anything else is 409 `invalid_transition` with the status.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

import msgspec

from domain import collected, quota, values
from domain import tax_bills as tb
from domain.checklists import file_on_release
from domain.declaration import (
    FINAL_STATUSES,
    SHANGHAI,
    AcceptTransfer,
    Declaration,
    DeclarationWithdrawn,
    Duties,
    LineTaxes,
    PaidOn,
    PayDuties,
    RecordInspection,
    RefuseTransfer,
    RejectDeclaration,
    ReleaseDeclaration,
    Status,
    WithdrawDeclaration,
    billed_on,
    released_at,
)
from domain.duties import Assessment
from domain.enter_first import declare_on_release
from domain.errors import InvalidTransition, NotFound, ValidationFailed
from domain.events import Actor, DomainEvent, Pending
from domain.exits import reserve_on_release
from domain.reference_data import TableUsed
from domain.risk import RiskOutcome
from domain.unit_of_work import Decision, UnitOfWork
from domain.unit_values import observe_on_release
from domain.views import DeclarationView, declaration_view

ZERO = Decimal("0.00")


def cleared(outstanding: Decimal) -> Status:
    """Released when nothing is outstanding, else waiting for the payment."""
    return "released" if outstanding <= 0 else "awaiting_payment"


def status_after_channel(channel: str, outstanding: Decimal) -> Status:
    """Green is released (or awaits payment); yellow goes to document review; red to inspection."""
    if channel == "green":
        return cleared(outstanding)
    return "document_review" if channel == "yellow" else "inspection"


class DeclarationAssessed(DomainEvent, frozen=True, kw_only=True):
    """The ledger assessed a new declaration: its risk channel and its duties, with the rule
    and table versions that produced them."""

    credit_class: str
    risk: RiskOutcome
    duties: Assessment
    status: Status
    quota_year: int | None = None
    # The goods' value in CNY at the month's customs rate (what statistics add up).
    value_cny: Decimal = ZERO
    # The published reference tables (version and digest) the assessment read.
    tables_used: list[TableUsed] = []

    def apply(self, state: Declaration) -> Declaration:
        return msgspec.structs.replace(
            state,
            version=self.originator_version,
            assessed_with=tuple(self.tables_used),
            status=self.status,
            channel=self.risk.channel,
            risk_reasons=tuple(self.risk.reasons),
            duties=Duties(
                tariff=self.duties.tariff,
                vat=self.duties.vat,
                consumption_tax=self.duties.consumption_tax,
                total=self.duties.total,
                paid=ZERO,
                outstanding=self.duties.total,
            ),
            quota_year=self.quota_year,
            outlier_lines=tuple(self.risk.outlier_lines),
            released_at=released_at(state, self.status, self.occurred_at),
            billed_on=billed_on(state, self.status, self.occurred_at),
            line_taxes={
                d.line_no: LineTaxes(vat=d.vat, consumption_tax=d.consumption_tax)
                for d in self.duties.lines
            },
        )


class InspectionRecorded(DomainEvent, frozen=True, kw_only=True):
    """An officer recorded the result of a physical inspection, with the findings."""

    result: Literal["conform", "nonconform"]
    findings: str
    status: Status

    def apply(self, state: Declaration) -> Declaration:
        return msgspec.structs.replace(
            state,
            version=self.originator_version,
            status=self.status,
            released_at=released_at(state, self.status, self.occurred_at),
            billed_on=billed_on(state, self.status, self.occurred_at),
        )


class ReleaseGranted(DomainEvent, frozen=True, kw_only=True):
    """An officer released a declaration after document review (it may still await payment)."""

    status: Status

    def apply(self, state: Declaration) -> Declaration:
        return msgspec.structs.replace(
            state,
            version=self.originator_version,
            status=self.status,
            released_at=released_at(state, self.status, self.occurred_at),
            billed_on=billed_on(state, self.status, self.occurred_at),
        )


class DeclarationRejected(DomainEvent, frozen=True, kw_only=True):
    """An officer rejected a declaration, saying why."""

    reason: str

    def apply(self, state: Declaration) -> Declaration:
        return msgspec.structs.replace(state, version=self.originator_version, status="rejected")


class DutiesPaid(DomainEvent, frozen=True, kw_only=True):
    """The declarant paid duties (in CNY); the amount is exact and never more than is due."""

    amount: Decimal
    currency: str
    reference: str
    status: Status

    def apply(self, state: Declaration) -> Declaration:
        assert state.duties is not None
        paid = state.duties.paid + self.amount
        duties = msgspec.structs.replace(
            state.duties, paid=paid, outstanding=state.duties.total - paid
        )
        day = self.occurred_at.astimezone(SHANGHAI).date()
        return msgspec.structs.replace(
            state,
            version=self.originator_version,
            status=self.status,
            duties=duties,
            released_at=released_at(state, self.status, self.occurred_at),
            billed_on=billed_on(state, self.status, self.occurred_at),
            paid_on=(*state.paid_on, PaidOn(on=day, amount=self.amount)),
        )


class LateFeeFixed(DomainEvent, frozen=True, kw_only=True):
    """The payment that settled the duties after their due date fixed the late fee owed then
    (domain/tax_bills.py), so a later change of the fee's rules never rewrites it."""

    amount: Decimal

    def apply(self, state: Declaration) -> Declaration:
        return msgspec.structs.replace(state, version=self.originator_version, late_fee=self.amount)


class TransferAccepted(DomainEvent, frozen=True, kw_only=True):
    """The destination book's enterprise accepted a transfer into its book; the declaration
    goes where its risk channel sends it (and, released, reserves its stock)."""

    status: Status

    def apply(self, state: Declaration) -> Declaration:
        return msgspec.structs.replace(
            state,
            version=self.originator_version,
            status=self.status,
            released_at=released_at(state, self.status, self.occurred_at),
            billed_on=billed_on(state, self.status, self.occurred_at),
        )


class TransferRefused(DomainEvent, frozen=True, kw_only=True):
    """The destination book's enterprise refused a transfer into its book, saying why."""

    reason: str

    def apply(self, state: Declaration) -> Declaration:
        return msgspec.structs.replace(state, version=self.originator_version, status="refused")


# 409 to an officer's or the receiving enterprise's decision the declaration's status
# (`{status}`, its code) does not take.
CANNOT_MESSAGES = {
    "inspection_result": "a declaration in {status} cannot be given an inspection result",
    "release": "a declaration in {status} cannot be released",
    "rejection": "a declaration in {status} cannot be rejected",
    "acceptance": "a declaration in {status} cannot be accepted",
    "refusal": "a declaration in {status} cannot be refused",
}


def _require(
    state: Declaration,
    allowed: tuple[str, ...],
    action: Literal["inspection_result", "release", "rejection", "acceptance", "refusal"],
) -> None:
    if state.status not in allowed:
        raise InvalidTransition(
            CANNOT_MESSAGES[action].format(status=state.status), current_status=state.status
        )


def _outstanding(state: Declaration) -> Decimal:
    return state.duties.outstanding if state.duties is not None else ZERO


def record_inspection(
    d: Pending[Declaration], cmd: RecordInspection, actor: Actor, now: datetime
) -> Declaration:
    state = d.state
    assert state is not None
    _require(state, ("inspection",), "inspection_result")
    findings = cmd.findings.strip()
    if cmd.result == "nonconform" and not findings:
        raise ValidationFailed.at("$.findings", "a nonconforming result needs its findings")
    if findings:
        values.text("$.findings", findings, max_length=2000)  # no control or invisible characters
    status = cleared(_outstanding(state)) if cmd.result == "conform" else "document_review"
    d.record(
        InspectionRecorded,
        actor=actor,
        occurred_at=now,
        result=cmd.result,
        findings=findings,
        status=status,
    )
    return d.current


def grant_release(
    d: Pending[Declaration], cmd: ReleaseDeclaration, actor: Actor, now: datetime
) -> Declaration:
    state = d.state
    assert state is not None
    _require(state, ("document_review",), "release")
    d.record(ReleaseGranted, actor=actor, occurred_at=now, status=cleared(_outstanding(state)))
    return d.current


def reject(
    d: Pending[Declaration], cmd: RejectDeclaration, actor: Actor, now: datetime
) -> Declaration:
    state = d.state
    assert state is not None
    _require(state, ("document_review", "inspection"), "rejection")
    values.text("$.reason", cmd.reason)
    d.record(DeclarationRejected, actor=actor, occurred_at=now, reason=cmd.reason)
    return d.current


def accept_transfer(
    d: Pending[Declaration], cmd: AcceptTransfer, actor: Actor, now: datetime
) -> Declaration:
    """The destination enterprise's consent: from here the transfer proceeds as one between
    two books of one enterprise does from its submission (its channel, its duties)."""
    state = d.state
    assert state is not None
    _require(state, ("awaiting_acceptance",), "acceptance")
    assert state.channel is not None  # assessed in the submission's own write
    status = status_after_channel(state.channel, _outstanding(state))
    d.record(TransferAccepted, actor=actor, occurred_at=now, status=status)
    return d.current


def refuse_transfer(
    d: Pending[Declaration], cmd: RefuseTransfer, actor: Actor, now: datetime
) -> Declaration:
    state = d.state
    assert state is not None
    _require(state, ("awaiting_acceptance",), "refusal")
    values.text("$.reason", cmd.reason)
    d.record(TransferRefused, actor=actor, occurred_at=now, reason=cmd.reason)
    return d.current


def withdraw(
    d: Pending[Declaration], cmd: WithdrawDeclaration, actor: Actor, now: datetime
) -> Declaration:
    """The declarant withdraws a declaration that has no final decision yet."""
    state = d.state
    assert state is not None
    if state.status in FINAL_STATUSES:
        raise InvalidTransition(
            f"a {state.status} declaration cannot be withdrawn", current_status=state.status
        )
    values.text("$.reason", cmd.reason)
    d.record(DeclarationWithdrawn, actor=actor, occurred_at=now, reason=cmd.reason)
    return d.current


def pay(d: Pending[Declaration], cmd: PayDuties, actor: Actor, now: datetime) -> Declaration:
    """Payments count in any status before a final one (prepayment included), in CNY, exact."""
    state = d.state
    assert state is not None
    if state.status in FINAL_STATUSES:
        raise InvalidTransition(
            f"a {state.status} declaration takes no payment", current_status=state.status
        )
    outstanding = _outstanding(state)
    amount = cmd.amount_within(outstanding, state.status)
    status: Status = state.status
    if state.status == "awaiting_payment" and amount == outstanding:
        status = "released"
    d.record(
        DutiesPaid,
        actor=actor,
        occurred_at=now,
        amount=amount,
        currency="CNY",
        reference=cmd.reference,
        status=status,
    )
    fix_late_fee(d, actor, now)
    return d.current


def fix_late_fee(d: Pending[Declaration], actor: Actor, now: datetime) -> None:
    """When a payment settles a bill past its due date, the fee owed that day is fixed."""
    state = d.current
    if state.duties is None or state.duties.outstanding != 0 or state.billed_on is None:
        return
    today = now.astimezone(SHANGHAI).date()
    payments = [tb.Payment(p.on, p.amount) for p in state.paid_on]
    fee = tb.late_fee(state.duties.total, tb.due_by(state.billed_on), payments, today)
    if fee > 0:
        d.record(LateFeeFixed, actor=actor, occurred_at=now, amount=fee)


Transition = Callable[[Pending[Declaration], Any, Actor, datetime], Declaration]


# Who may make a decision among the enterprises: the declarant, the destination book's
# enterprise of a transfer, or any caller the API's role check let in (officers).
Party = Literal["declarant", "destination", "any"]


@dataclass(frozen=True)
class DecisionRule:
    """One decision on an existing declaration, and what it brings with it."""

    transition: Transition
    # Who may make it (anyone else: the declaration is unknown to them).
    party: Party
    # A withdrawn or rejected retail list gives its amount back to the buyer's quota.
    gives_quota_back: bool


DECISIONS: dict[str, DecisionRule] = {
    "withdrawal": DecisionRule(withdraw, "declarant", True),
    "payment": DecisionRule(pay, "declarant", False),
    "inspection": DecisionRule(record_inspection, "any", False),
    "release": DecisionRule(grant_release, "any", False),
    "rejection": DecisionRule(reject, "any", True),
    "acceptance": DecisionRule(accept_transfer, "destination", False),
    "refusal": DecisionRule(refuse_transfer, "destination", False),
}


def may_decide(rule: DecisionRule, d: Declaration, actor: Actor) -> bool:
    if rule.party == "declarant":
        return d.facts.declarant == actor.enterprise
    if rule.party == "destination":
        return d.facts.destination_enterprise is not None and (
            d.facts.destination_enterprise == actor.enterprise
        )
    return True


def decide_on_declaration(
    uow: UnitOfWork, action: str, ref: str, cmd: Any, actor: Actor, now: datetime
) -> Decision[DeclarationView]:
    """`withdrawal` and `payment` (its declarant), `acceptance` and `refusal` (a transfer's
    destination enterprise), `inspection`, `release` and `rejection` (an officer; roles are
    checked by the API): the transition, the stock an outbound declaration reserves and the
    prices its lines add to their items' histories when it enters `released`, and for a
    withdrawn or rejected retail list its amount back to the buyer's quota - one write."""
    rule = DECISIONS[action]
    stream = uow.declaration_id(ref)
    pending = uow.pending(stream, Declaration) if stream else None
    if pending is None or pending.state is None:
        raise NotFound(f"no declaration {ref}")
    before = pending.state
    if not may_decide(rule, before, actor):
        raise NotFound(f"no declaration {ref}")
    rule.transition(pending, cmd, actor, now)
    saves: list[Pending[Any]] = [pending]
    saves += reserve_on_release(uow, before.status, pending, actor, now)
    saves += observe_on_release(uow, before.status, pending, actor, now)
    saves += declare_on_release(uow, before.status, pending, actor, now)  # before any filing
    saves += file_on_release(uow, before.status, pending, actor, now)
    saves += collected.declare_on_release(uow, before.status, pending, actor, now)
    e = before.facts.ecommerce
    if rule.gives_quota_back and before.quota_year is not None and e is not None:
        buyer = uow.pending(quota.quota_id(e.order.buyer_id, before.quota_year), quota.BuyerQuota)
        quota.give_back(buyer, pending.id, actor=actor, occurred_at=now)
        saves.append(buyer)
    return Decision(saves, declaration_view(pending.current))
