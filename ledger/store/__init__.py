"""Event stores: the library's SQLite and PostgreSQL recorders, extended with the chain columns.

Both recorders append `sequence` (1, 2, 3 ... with no gaps), `recorded_at` (UTC text, never
decreasing) and `hash` (the chain link, see ledger.chain) to every stored event, computed where
the log order is decided: inside the writer's lock, in the same transaction as the insert.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from ledger.chain import link_hash, next_recorded_at


class StoreBusy(Exception):
    """The events table's lock was not free within the lock timeout: nothing was written.

    Not one of the library's retried errors on purpose: its insert retries a lock timeout ten
    times (about ten lock timeouts in all), holding every command of the group, and then
    fails as an internal error. The ledger answers 503 with Retry-After at once instead."""


class LogRecord(NamedTuple):
    """One stored event with its place in the log and its chain link.

    A named tuple rather than a frozen dataclass: a page of database rows becomes records
    without a Python call per field, which is most of what `verify` spends per event.
    `stream_id` is the canonical hyphenated UUID text, exactly the bytes the chain hashes.
    """

    position: int
    sequence: int
    stream_id: str
    version: int
    topic: str
    state: bytes
    recorded_at: str
    hash: bytes


class LogEntry(NamedTuple):
    """What a projection reads of a stored event: a LogRecord without its chain link (a
    replay reads a million of them, and only these)."""

    position: int
    stream_id: str
    version: int
    topic: str
    state: bytes
    recorded_at: str


@dataclass(frozen=True, slots=True)
class Head:
    """The last link of the chain: what an auditor writes down."""

    sequence: int
    position: int
    recorded_at: str
    hash: bytes


class ChainedLog(Protocol):
    """What the ledger needs from a recorder beyond the library's interface."""

    def select_log(
        self,
        after: int | None,
        limit: int,
        *,
        until: str | None = None,
        topics: Collection[str] | None = None,
    ) -> Sequence[LogRecord]:
        """The log after position `after` in log order, at most `limit` events; with `until`
        only events recorded at or before it, with `topics` only events of those topics."""
        ...

    def select_stream(self, stream_id: UUID | str) -> Sequence[LogRecord]: ...

    def head(self) -> Head | None: ...

    def count(self) -> int: ...


def last_at_or_before(log: Any, position: int | None, until: str | None) -> LogRecord | None:
    """The last event of `log` at or before `position` and recorded at or before `until`
    (either may be None): where a replay bounded by both ends. `recorded_at` never decreases
    along the log, so the events recorded by `until` are a prefix of it."""
    at: LogRecord | None = log.record_at_or_before(position if position is not None else 2**62)
    if until is None or at is None:
        return at
    by: LogRecord | None = log.record_recorded_by(until)
    if by is None:
        return None
    return at if at.position < by.position else by


def chain_rows(
    head: tuple[int, str, bytes] | None, stored_events: Sequence[StoredEvent]
) -> list[tuple[int, str, bytes]]:
    """(sequence, recorded_at, hash) for each new event, continuing from the head."""
    sequence, last_time, previous = head if head else (0, None, bytes(32))
    recorded_at = next_recorded_at(last_time)
    rows = []
    for s in stored_events:
        sequence += 1
        previous = link_hash(
            previous, s.originator_id, s.originator_version, s.topic, recorded_at, s.state
        )
        rows.append((sequence, recorded_at, previous))
    return rows
