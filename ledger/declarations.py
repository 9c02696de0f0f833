"""Declaration commands: submission with its assessment, and every later decision.

Each handler runs one domain decision (domain/submission.py, domain/clearance.py) in a unit
of work and saves what it returns in one atomic write.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import msgspec

from domain import clearance, quota, returns, values
from domain import declaration as decl
from domain.assessment import ClearanceRules
from domain.events import Actor
from domain.reference import Zone
from domain.scope import Scope
from domain.submission import Submission, decide_submission
from domain.unit_of_work import Decision, UnitOfWork
from domain.views import DeclarationView
from ledger.application import LedgerApplication
from ledger.buyer_keys import BuyerKeys
from ledger.requests import (
    Execute,
    Idempotency,
    Outcome,
    Prepare,
    Prepared,
    Run,
    RunBatch,
)
from ledger.selection_seed import SelectionSeed


class DeclarationCommands:
    """Mixed into `Ledger`, which provides the zones, rules and `_execute`."""

    zones: dict[str, Zone]
    rules: ClearanceRules
    app: LedgerApplication
    vault: BuyerKeys
    seeds: SelectionSeed
    _execute: Execute
    _prepare: Prepare
    _run: Run
    _batch: RunBatch

    # The rules last given the seed, kept while neither the rules nor the seed change: a new
    # RiskRules object per submission would hash its version again every time.
    _seeded: tuple[ClearanceRules, str, ClearanceRules] | None = None

    def seeded_rules(self) -> ClearanceRules:
        """The rules with the store's secret seed; rules given with a seed of their own (tests,
        the golden log) keep it."""
        if self.rules.risk.seed:
            return self.rules
        seed = self.seeds.current()
        kept = self._seeded
        if kept is not None and kept[0] is self.rules and kept[1] == seed:
            return kept[2]
        risk = msgspec.structs.replace(self.rules.risk, seed=seed)
        seeded = dataclasses.replace(self.rules, risk=risk)
        self._seeded = (self.rules, seed, seeded)
        return seeded

    def submit_declaration(
        self, cmd: decl.SubmitDeclaration, actor: Actor, idem: Idempotency
    ) -> Outcome:
        return self._run(self._prepare_submission(cmd, actor, idem))

    def submit_declarations(
        self,
        items: Sequence[tuple[decl.SubmitDeclaration, Idempotency]],
        actor: Actor,
    ) -> list[Outcome | BaseException]:
        """A batch of submissions (`POST /v1/declarations/batch`): each as `submit_declaration`
        would answer it, in order, committed together as far as they fit; an item refused
        never stops the others."""
        return self._batch(
            items, lambda cmd, idem: self._prepare_submission(cmd, actor, idem), None
        )

    def _prepare_submission(
        self, cmd: decl.SubmitDeclaration, actor: Actor, idem: Idempotency
    ) -> Prepared:
        Scope.of(actor).act_as(cmd.declarant, "$.declarant")
        submission = Submission(
            cmd=cmd,
            declaration_id=decl.declaration_id(idem.principal, idem.key),
            zones=self.zones,
            rules=self.seeded_rules(),
            actor=actor,
            vault=self.vault,
        )

        def decide(uow: UnitOfWork, now: datetime) -> Decision[DeclarationView]:
            return decide_submission(uow, submission, now)

        return self._prepare(201, idem, cmd, decide, actor)

    def decide_on(
        self,
        action: str,
        ref: str,
        cmd: Any,
        actor: Actor,
        idem: Idempotency | None = None,
    ) -> Outcome:
        """One decision on an existing declaration (domain/clearance.py `DECISIONS`)."""

        def decide(uow: UnitOfWork, now: datetime) -> Decision[DeclarationView]:
            return clearance.decide_on_declaration(uow, action, ref, cmd, actor, now)

        return self._execute(200, idem, cmd, decide, actor)

    def return_goods(
        self, ref: str, cmd: returns.ReturnGoods, actor: Actor, idem: Idempotency
    ) -> Outcome:
        """A buyer's return of a released retail list's goods (domain/returns.py); the answer
        (first or replayed) says where the return stands in the log."""
        stream = returns.return_id(idem.principal, idem.key)

        def decide(uow: UnitOfWork, now: datetime) -> Decision[returns.ReturnView]:
            return returns.decide_return(uow, ref, cmd, stream, actor, now)

        outcome = self._execute(201, idem, cmd, decide, actor)
        body = outcome.body
        records = self.app.log.select_stream(stream)
        position = records[0].position if records else None
        if isinstance(body, returns.ReturnView):
            body = returns.answer(body, position)
        elif isinstance(body, dict):  # a replay answers the stored response
            body = {**body, "position": position}
        return dataclasses.replace(outcome, body=body)

    def buyer_quota(self, buyer_id: str, year: int) -> quota.QuotaStanding:
        """A buyer's yearly quota as the next retail list would be checked against it (the
        write side's streams, not a view); 422 at `path.buyer_id` for a wrong check digit."""
        number = values.resident_id("path.buyer_id", buyer_id)
        own = quota.pseudonymous_quota_id(self.vault.pseudonym(number), year)
        return quota.standing(
            year,
            self.app.load(own, quota.BuyerQuota),
            self.app.load(quota.quota_id(number, year), quota.BuyerQuota),
        )

    def withdraw_declaration(
        self, ref: str, cmd: decl.WithdrawDeclaration, actor: Actor, idem: Idempotency | None = None
    ) -> Outcome:
        return self.decide_on("withdrawal", ref, cmd, actor, idem)
