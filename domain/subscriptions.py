"""Webhook subscriptions (issue #19, docs/decisions/0030): who asked for which receipts, sent
where. One stream per subscription: `SubscriptionCreated` (its owner, URL, patterns, and the
signing secret sealed by the master key: the log never holds it in clear), then `Paused`,
`Resumed`, `Deleted`, `RedeliveryRequested`.

Owners: an enterprise's key subscribes for its enterprise (receipts about its own filings,
books and movements); an officer's or an auditor's for customs as a whole (every receipt).
Any key of the owner reads and manages its subscriptions, another enterprise's are unknown
(404); officers read and manage every subscription, auditors read them (customs' oversight of
what is sent where).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec

from domain import receipts, values
from domain.declaration import Str255
from domain.errors import Forbidden, InvalidTransition, NotFound, ValidationFailed
from domain.events import Actor, AggregateState, DomainEvent, Pending, stream_id
from domain.scope import Scope

SubscriptionStatus = Literal["active", "paused", "deleted"]
SUBSCRIBERS = ("enterprise", "officer", "auditor")
MAX_URL = 2048


class CreateSubscription(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Body of POST /v1/subscriptions."""

    url: Annotated[str, msgspec.Meta(max_length=MAX_URL)]
    events: Annotated[
        list[Annotated[str, msgspec.Meta(max_length=64)]], msgspec.Meta(max_length=64)
    ]
    description: Str255 | None = None


class Redeliver(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Body of POST /v1/subscriptions/{id}/redeliver: every receipt from this log position."""

    from_position: int


class Owner(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Whose receipts: an enterprise's (its USCC), or customs' (`role`: officer or auditor)."""

    role: str
    enterprise: str | None = None


class SubscriptionView(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    url: str
    events: list[str]
    description: str | None
    status: SubscriptionStatus
    owner: Owner
    created_by: str
    created_at: datetime
    # Receipts before this log position are not sent again (a redelivery moves it back).
    from_position: int = 0


class Subscription(AggregateState, frozen=True, kw_only=True):
    view: SubscriptionView
    sealed_secret: str


class SubscriptionCreated(DomainEvent, frozen=True, kw_only=True):
    view: SubscriptionView
    sealed_secret: str

    def apply(self, state: None) -> Subscription:
        return Subscription(
            id=self.originator_id,
            version=self.originator_version,
            view=self.view,
            sealed_secret=self.sealed_secret,
        )


class SubscriptionStatusChanged(DomainEvent, frozen=True, kw_only=True):
    """Paused, resumed or deleted by its owner (or an operator of the ledger, by the CLI)."""

    status: SubscriptionStatus

    def apply(self, state: Subscription) -> Subscription:
        view = msgspec.structs.replace(state.view, status=self.status)
        return msgspec.structs.replace(state, version=self.originator_version, view=view)


class RedeliveryRequested(DomainEvent, frozen=True, kw_only=True):
    """Send every receipt from `from_position` again (the same `webhook-id`s)."""

    from_position: int

    def apply(self, state: Subscription) -> Subscription:
        view = msgspec.structs.replace(state.view, from_position=self.from_position)
        return msgspec.structs.replace(state, version=self.originator_version, view=view)


def subscription_id(principal: str, key: str) -> UUID:
    """A subscription made with an Idempotency-Key is the same one when the request is retried."""
    return stream_id("subscription", f"{principal}:{key}")


def owner_of(actor: Actor) -> Owner:
    if actor.role not in SUBSCRIBERS:
        raise Forbidden("enterprises, officers and auditors subscribe to receipts")
    if actor.role == "enterprise":
        return Owner(role="enterprise", enterprise=actor.enterprise)
    return Owner(role=actor.role)


def owns(view: SubscriptionView, actor: Actor) -> bool:
    owner = view.owner
    if actor.role == "enterprise":
        return owner.role == "enterprise" and owner.enterprise == Scope.of(actor).enterprise
    return owner.role == actor.role


def create(
    pending: Pending[Subscription],
    cmd: CreateSubscription,
    url_problem: str | None,
    sealed_secret: str,
    actor: Actor,
    now: datetime,
) -> SubscriptionView:
    """A new subscription (its URL was checked by the caller: `url_problem`, 422 at `$.url`)."""
    owner = owner_of(actor)
    if url_problem is not None:
        raise ValidationFailed.at("$.url", url_problem)
    events = receipts.checked_patterns("$.events", list(cmd.events))
    description = values.text("$.description", cmd.description) if cmd.description else None
    if pending.state is not None:  # the same id: only a retry with its key gets here
        return pending.state.view
    view = SubscriptionView(
        id=pending.id,
        url=cmd.url,
        events=events,
        description=description,
        status="active",
        owner=owner,
        created_by=actor.name,
        created_at=now,
    )
    pending.record(
        SubscriptionCreated, view=view, sealed_secret=sealed_secret, actor=actor, occurred_at=now
    )
    return view


def visible(state: Subscription | None, actor: Actor) -> Subscription:
    """A subscription the caller may read and manage: its owner's; officers' and auditors'
    oversight reaches every subscription (what is sent where); anyone else's is unknown."""
    # Officers and auditors oversee every subscription; `admin` is the ledger's operator at the
    # command line (`customs-ledger subscriptions`: the API refuses admins).
    customs = actor.role in ("officer", "auditor", "admin")
    if state is None or state.view.status == "deleted" or not (customs or owns(state.view, actor)):
        raise NotFound("no such subscription")
    return state


TRANSITIONS: dict[SubscriptionStatus, tuple[SubscriptionStatus, ...]] = {
    "paused": ("active",),
    "active": ("paused",),
    "deleted": ("active", "paused"),
}


def change_status(
    pending: Pending[Subscription], status: SubscriptionStatus, actor: Actor, now: datetime
) -> SubscriptionView:
    state = pending.current
    if state.view.status not in TRANSITIONS[status]:
        raise InvalidTransition(
            f"the subscription is {state.view.status}", current_status=state.view.status
        )
    pending.record(SubscriptionStatusChanged, status=status, actor=actor, occurred_at=now)
    return pending.current.view


def redeliver(
    pending: Pending[Subscription], cmd: Redeliver, head: int, actor: Actor, now: datetime
) -> SubscriptionView:
    if not 0 <= cmd.from_position <= head:
        raise ValidationFailed.at("$.from_position", f"a log position from 0 to {head}")
    pending.record(
        RedeliveryRequested, from_position=cmd.from_position, actor=actor, occurred_at=now
    )
    return pending.current.view
