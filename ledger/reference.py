"""Reference-data commands: publishing a table, the first start's publication, the reads.

Publications are events on one stream per kind (domain/reference_data.py). Reads go to the
store (fresh: another server's publication is seen at once); submissions read the registers
in their own unit of work (domain/reference_rules.py).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Collection
from datetime import date, datetime
from typing import Any

import msgspec

from domain.assessment import ClearanceRules
from domain.declaration import SHANGHAI
from domain.duties import DutyTables
from domain.events import Actor, Pending
from domain.reference_data import (
    KINDS,
    Kind,
    Publish,
    Published,
    PublishPositiveList,
    ReferenceRegister,
    checked_content,
    digest_of,
    effective_date,
    publish,
    register_id,
)
from domain.reference_rules import builtin_publications, duty_tables, risk_rules
from domain.unit_of_work import Decision, UnitOfWork
from ledger.application import LedgerApplication
from ledger.requests import Execute, Idempotency, Outcome

log = logging.getLogger("customs_ledger")

SYSTEM = Actor(name="system", role="system")
# The built-in risk rules are in force from before any declaration this ledger can take.
BUILTIN_RULES_SINCE = date(2000, 1, 1)


class ReferenceCommands:
    """Mixed into `Ledger`, which provides the application, the clock and `_execute`."""

    app: LedgerApplication
    rules: ClearanceRules
    clock: Callable[[], datetime]
    _execute: Execute

    def publish_reference(
        self, kind: Kind, body: Publish, actor: Actor, idem: Idempotency | None = None
    ) -> Outcome:
        """Publish a version of `kind`'s table (201 {kind, version, effective_from, digest})."""
        # Checked before the command runs: a bad table is refused without taking the lock.
        effective_date(body)
        checked_content(body)

        def decide(uow: UnitOfWork, now: datetime) -> Decision[Published]:
            pending = uow.pending(register_id(kind), ReferenceRegister)
            return Decision([pending], publish(pending, kind, body, actor, now))

        outcome = self._execute(201, idem, body, decide, actor)
        answer = outcome.body
        if isinstance(answer, Published):
            answer = msgspec.structs.replace(answer, position=outcome.position)
        elif isinstance(answer, dict):  # a replay answers the recorded answer
            answer = {**answer, "position": outcome.position}
        return dataclasses.replace(outcome, body=answer)

    def register(self, kind: str) -> ReferenceRegister | None:
        """Every publication of `kind`, read from the store."""
        return self.app.load(register_id(kind), ReferenceRegister)

    def published_tables(self) -> DutyTables:
        """The duty tables as published now (what `/healthz` looks ahead in)."""
        registers: dict[str, ReferenceRegister | None] = {
            k: self.register(k) for k in ("tariff", "exchange-rates")
        }
        return duty_tables(registers, self.rules.duties)

    def positive_list_rows(self, day: date) -> int:
        register = self.register("positive-list")
        p = register.in_force(day) if register is not None else None
        return len(p.content.hs_codes or []) if p is not None else 0

    def credit_classes(self) -> Collection[str]:
        """The credit classes of the risk rules in force today (China's day)."""
        today = self.clock().astimezone(SHANGHAI).date()
        return risk_rules(self.register("risk-rules"), self.rules.risk, today).classes

    def publish_builtins(
        self,
        positive_list: list[PublishPositiveList],
        subheadings: Callable[[str], list[str]],
        now: datetime | None = None,
    ) -> list[Published]:
        """On a ledger whose registers are empty, publish the configured tables as version 1
        (actor `system`), in one write. Kinds published already are left as they are; when
        two processes start at once, one writes and the other finds it done."""
        bodies: dict[str, list[Any]] = builtin_publications(
            self.rules, BUILTIN_RULES_SINCE, subheadings
        )
        bodies["positive-list"] = list(positive_list)

        def decide(uow: UnitOfWork, at: datetime) -> Decision[list[Published]]:
            saves: list[Pending[ReferenceRegister]] = []
            answers: list[Published] = []
            for kind in KINDS:
                pending = uow.pending(register_id(kind), ReferenceRegister)
                if pending.state is not None or not bodies.get(kind):
                    continue
                for body in bodies[kind]:
                    answers.append(publish(pending, kind, body, SYSTEM, now or at))
                saves.append(pending)
            return Decision(list(saves), answers)

        outcome = self._execute(201, None, None, decide, SYSTEM)
        published: list[Published] = outcome.body
        for p in published:
            log.info(
                "published the built-in %s of %s as version %d (digest %s)",
                p.kind,
                p.month or p.effective_from,
                p.version,
                p.digest[:12],
            )
        return published

    def differs_from_published(self, kind: Kind, bodies: list[Publish]) -> bool:
        """Whether a configured table (a LEDGER_*_FILE) has figures no publication has."""
        register = self.register(kind)
        if register is None:
            return False
        digests = {p.digest for p in register.publications}
        for body in bodies:
            day, _ = effective_date(body)
            if digest_of(kind, day, checked_content(body)) not in digests:
                return True
        return False
