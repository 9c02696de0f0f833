"""Base of every domain event: an immutable msgspec Struct that says who did what, and when.

Events are business facts in the past tense. Their `apply` bodies only assign: they run again
on every replay, so they must never validate, look anything up or read the clock.
Schema evolution follows msgspec's rules: a new field gets a default; an existing field never
changes type. A breaking change bumps `class_version` and adds `upcast_vN_vM(state)`, a static
method that rewrites the stored dict in place before it is converted to the class.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any, ClassVar, Generic, TypeVar
from uuid import UUID, uuid5

import msgspec

# Namespace for deterministic aggregate ids (uuid5 of a business key).
LEDGER_NAMESPACE = UUID("6f1d0c3e-8a51-5b2e-9a63-2f4c1d9e7b10")


def stream_id(kind: str, key: str) -> UUID:
    """The aggregate id of `kind` with business key `key` (the same key gives the same id).

    The same enterprises, books and items come back request after request (and a command
    asks the id of its Idempotency-Key twice), so the ids of keys up to 512 characters are
    kept in a bounded cache; a longer key (any path a client sends) is never kept."""
    if len(key) <= 512:
        return _cached_stream_id(kind, key)
    return uuid5(LEDGER_NAMESPACE, f"{kind}:{key}")


@lru_cache(maxsize=16384)
def _cached_stream_id(kind: str, key: str) -> UUID:
    return uuid5(LEDGER_NAMESPACE, f"{kind}:{key}")


# Events, states and actors are trees of immutable values: none can be part of a reference
# cycle, so the cyclic garbage collector need never look at them (`gc=False`; subclasses
# inherit it). A server keeps up to 100,000 committed states; while they were tracked, each
# full collection walked them all, holding every thread for 60-160 ms (the P1 p99 stall,
# docs/benchmarks.md). Reference counting still frees them as soon as they are dropped.
class Actor(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """Who did it: the API key's name and role, and the enterprise or zone it is bound to."""

    name: str
    role: str
    enterprise: str | None = None
    zone: str | None = None


S = TypeVar("S")


class DomainEvent(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A fact recorded in the ledger. `occurred_at` is business time, with the client's offset."""

    originator_id: UUID
    originator_version: int
    actor: Actor
    occurred_at: datetime

    class_version: ClassVar[int] = 1

    def apply(self, state: Any) -> Any:  # pragma: no cover - every event overrides it
        raise NotImplementedError(type(self).__name__)


class AggregateState(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Immutable state of an aggregate: its id and the version of the last event applied."""

    id: UUID
    version: int


A = TypeVar("A", bound=AggregateState)


class Pending(Generic[A]):
    """An aggregate state plus the events a command decided, not yet saved.

    Each new event gets the next version; the state moves on by applying it, so a command can
    decide several facts in a row and `save` them in one atomic write.
    """

    def __init__(self, state: A | None, stream: UUID) -> None:
        self.state = state
        self.id = stream
        self.events: list[DomainEvent] = []

    @property
    def current(self) -> A:
        """The state after the events recorded so far (a decision that recorded one has it)."""
        if self.state is None:
            raise LookupError(f"stream {self.id} has no events")
        return self.state

    @property
    def next_version(self) -> int:
        return (self.state.version if self.state is not None else 0) + 1

    def record(self, event_class: type[DomainEvent], **fields: Any) -> DomainEvent:
        event = event_class(originator_id=self.id, originator_version=self.next_version, **fields)
        self.state = event.apply(self.state)
        self.events.append(event)
        return event

    def collect_events(self) -> list[DomainEvent]:
        events, self.events = self.events, []
        return events


def project(state: Any, events: Any) -> Any:
    """Fold events into a state: the projector function the repository calls."""
    for event in events:
        state = event.apply(state)
    return state
