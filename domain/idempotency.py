"""Idempotent requests: a completed request remembered under its principal's Idempotency-Key."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from domain.events import AggregateState, DomainEvent, stream_id


class IdempotentRequest(AggregateState, frozen=True, kw_only=True):
    """What a key was used for, and the answer the client got."""

    method: str
    path: str
    request_hash: str
    status_code: int
    response: Any


class RequestCompleted(DomainEvent, frozen=True, kw_only=True):
    """A request made with an Idempotency-Key succeeded; a retry gets this answer again."""

    method: str
    path: str
    request_hash: str
    status_code: int
    response: Any

    def apply(self, state: None) -> IdempotentRequest:
        return IdempotentRequest(
            id=self.originator_id,
            version=self.originator_version,
            method=self.method,
            path=self.path,
            request_hash=self.request_hash,
            status_code=self.status_code,
            response=self.response,
        )


def idempotency_id(principal: str, key: str) -> UUID:
    """Keys are scoped per principal: two clients may use the same key for different things."""
    return stream_id("idempotency", f"{principal}\x00{key}")
