"""API keys as events: issued, rotated, revoked, or adopted from the table of before #14.

A key's stream is named by the key's name (`api_key_id`); its events carry what a request is
authenticated with - the SHA-256 hash of the token (never the token), the role and the
enterprise or zone it is bound to - and who did it (the CLI's operator). The key table that
requests look tokens up in (ledger/keys.py) is a projection of these streams: `fold` is what
its row must say, and a row that says anything else was not written by the ledger.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec

from domain.errors import AlreadyExists, Conflict, NotFound
from domain.events import Actor, AggregateState, DomainEvent, Pending, stream_id

ROLES = ("admin", "enterprise", "operator", "officer", "auditor")


def api_key_id(name: str) -> UUID:
    """The stream of the key named `name` (a name is used once, ever)."""
    return stream_id("api-key", name)


class ApiKeyState(AggregateState, frozen=True, kw_only=True):
    """A key as the log says it is: exactly the columns of its key-table row.

    `created_at` and `revoked_at` are the texts the row holds (ISO 8601, UTC)."""

    name: str
    role: str
    enterprise: str | None
    zone: str | None
    token_hash: str
    created_at: str
    revoked_at: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class ApiKeyIssued(DomainEvent, frozen=True, kw_only=True):
    """A key was issued: its token's SHA-256 hash, its role and its binding."""

    name: str
    role: str
    enterprise: str | None = None
    zone: str | None = None
    token_hash: str

    def apply(self, state: None) -> ApiKeyState:
        return ApiKeyState(
            id=self.originator_id,
            version=self.originator_version,
            name=self.name,
            role=self.role,
            enterprise=self.enterprise,
            zone=self.zone,
            token_hash=self.token_hash,
            created_at=self.occurred_at.isoformat(),
        )


class ApiKeyAdopted(DomainEvent, frozen=True, kw_only=True):
    """A key of the key table from before keys were events (#14), recorded into the log
    once, at the upgrade, as the table held it then (its times are the table's texts)."""

    name: str
    role: str
    enterprise: str | None = None
    zone: str | None = None
    token_hash: str
    created_at: str
    revoked_at: str | None = None

    def apply(self, state: None) -> ApiKeyState:
        return ApiKeyState(
            id=self.originator_id,
            version=self.originator_version,
            name=self.name,
            role=self.role,
            enterprise=self.enterprise,
            zone=self.zone,
            token_hash=self.token_hash,
            created_at=self.created_at,
            revoked_at=self.revoked_at,
        )


class ApiKeyRotated(DomainEvent, frozen=True, kw_only=True):
    """The key got a new token (same name, role and binding); the old token stops working."""

    token_hash: str

    def apply(self, state: ApiKeyState) -> ApiKeyState:
        return msgspec.structs.replace(
            state, version=self.originator_version, token_hash=self.token_hash
        )


class ApiKeyRevoked(DomainEvent, frozen=True, kw_only=True):
    """The key was revoked: its token stops working, for good."""

    def apply(self, state: ApiKeyState) -> ApiKeyState:
        return msgspec.structs.replace(
            state, version=self.originator_version, revoked_at=self.occurred_at.isoformat()
        )


KEY_EVENTS: tuple[type[DomainEvent], ...] = (
    ApiKeyIssued,
    ApiKeyAdopted,
    ApiKeyRotated,
    ApiKeyRevoked,
)


def fold(events: Iterable[Any]) -> ApiKeyState | None:
    """The state after a key stream's events, in version order."""
    state: ApiKeyState | None = None
    for event in events:
        state = event.apply(state)
    return state


def issue(
    pending: Pending[ApiKeyState],
    actor: Actor,
    now: datetime,
    *,
    name: str,
    role: str,
    enterprise: str | None,
    zone: str | None,
    token_hash: str,
) -> ApiKeyState:
    """Issue a key under a name never used before (a revoked key's name stays taken)."""
    if pending.state is not None:
        raise AlreadyExists(f"a key named {name!r} exists already")
    pending.record(
        ApiKeyIssued,
        actor=actor,
        occurred_at=now,
        name=name,
        role=role,
        enterprise=enterprise,
        zone=zone,
        token_hash=token_hash,
    )
    return pending.current


def rotate(
    pending: Pending[ApiKeyState], actor: Actor, now: datetime, *, name: str, token_hash: str
) -> ApiKeyState:
    """A new token for an active key; its name, role and binding stay."""
    _active(pending, name)
    pending.record(ApiKeyRotated, actor=actor, occurred_at=now, token_hash=token_hash)
    return pending.current


def revoke(pending: Pending[ApiKeyState], actor: Actor, now: datetime, *, name: str) -> ApiKeyState:
    _active(pending, name)
    pending.record(ApiKeyRevoked, actor=actor, occurred_at=now)
    return pending.current


def adopt(pending: Pending[ApiKeyState], actor: Actor, now: datetime, row: ApiKeyState) -> None:
    """Record a key of the old table (`row`, as the table holds it) into the log."""
    if pending.state is not None:
        raise Conflict(f"key {row.name!r} is in the log already", rule="key_in_log")
    pending.record(
        ApiKeyAdopted,
        actor=actor,
        occurred_at=now,
        name=row.name,
        role=row.role,
        enterprise=row.enterprise,
        zone=row.zone,
        token_hash=row.token_hash,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


def _active(pending: Pending[ApiKeyState], name: str) -> None:
    if pending.state is None or not pending.state.active:
        raise NotFound(f"no active key named {name!r}")
