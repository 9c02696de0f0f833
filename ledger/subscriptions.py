"""Webhook subscriptions on the write side (domain/subscriptions.py, docs/decisions/0030)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime
from uuid import UUID, uuid4

import msgspec

from domain import subscriptions as subs
from domain.errors import NotFound
from domain.events import Actor
from domain.unit_of_work import Decision, UnitOfWork
from ledger.application import LedgerApplication
from ledger.buyer_keys import BuyerKeys
from ledger.requests import Execute, Idempotency, Outcome


class SubscriptionCommands:
    """Mixed into `Ledger`, which provides the application, the vault and `_execute`."""

    app: LedgerApplication
    vault: BuyerKeys
    clock: Callable[[], datetime]
    _execute: Execute

    def create_subscription(
        self,
        cmd: subs.CreateSubscription,
        url_problem: str | None,
        secret: str,
        actor: Actor,
        idem: Idempotency | None,
    ) -> Outcome:
        """A subscription for the caller's receipts; the answer carries its signing secret
        (sealed in the log: a retry with the same key shows the same secret again)."""
        subs.owner_of(actor)  # 403 before anything else
        stream = subs.subscription_id(idem.principal, idem.key) if idem else uuid4()
        sealed = self.vault.seal_secret(str(stream), secret)

        def decide(uow: UnitOfWork, now: datetime) -> Decision[subs.SubscriptionView]:
            pending = uow.pending(stream, subs.Subscription)
            view = subs.create(pending, cmd, url_problem, sealed, actor, now)
            return Decision([pending] if pending.events else [], view)

        outcome = self._execute(201, idem, cmd, decide, actor)
        body = {**msgspec.to_builtins(outcome.body), "secret": self.subscription_secret(stream)}
        return dataclasses.replace(outcome, body=body)

    def subscription_secret(self, stream: UUID) -> str:
        state = self.app.load(stream, subs.Subscription)
        if state is None:
            raise NotFound("no such subscription")
        return self.vault.open_secret(str(stream), state.sealed_secret)

    def subscription(self, ref: str, actor: Actor) -> subs.SubscriptionView:
        return subs.visible(self.app.load(_stream(ref), subs.Subscription), actor).view

    def set_subscription_status(
        self, ref: str, status: subs.SubscriptionStatus, actor: Actor, idem: Idempotency | None
    ) -> Outcome:
        """Pause, resume or delete one of the caller's subscriptions."""
        stream = _stream(ref)

        def decide(uow: UnitOfWork, now: datetime) -> Decision[subs.SubscriptionView]:
            pending = uow.pending(stream, subs.Subscription)
            subs.visible(pending.state, actor)
            return Decision([pending], subs.change_status(pending, status, actor, now))

        return self._execute(200, idem, {"status": status}, decide, actor)

    def redeliver(
        self, ref: str, cmd: subs.Redeliver, actor: Actor, idem: Idempotency | None
    ) -> Outcome:
        """Send the subscription's receipts again from a log position."""
        stream = _stream(ref)
        head = self.app.log.head()

        def decide(uow: UnitOfWork, now: datetime) -> Decision[subs.SubscriptionView]:
            pending = uow.pending(stream, subs.Subscription)
            subs.visible(pending.state, actor)
            top = head.position if head else 0
            return Decision([pending], subs.redeliver(pending, cmd, top, actor, now))

        return self._execute(200, idem, cmd, decide, actor)


def _stream(ref: str) -> UUID:
    try:
        return UUID(ref)
    except ValueError:
        raise NotFound("no such subscription") from None
