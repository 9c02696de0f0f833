"""Verify the tamper-evidence chain over the whole log, and state its head (the digest).

`verify` walks the log in position order, a page at a time (constant memory), and checks each
event against the event stored before it: its link recomputed from the previous row's *stored*
hash must equal its own stored hash, its sequence must be the previous one plus one (from 1),
and its `recorded_at` must not go back. Chaining from the stored hash, not from the recomputed
one, is what makes a failure name the altered row itself rather than every row after it.
A consistent rewrite (an event changed and every later hash recomputed) or a cut tail leaves a
chain that checks out: only a digest published earlier (`against`) exposes those.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ledger.chain import GENESIS, link_hash, link_hashes
from ledger.store import ChainedLog, LogRecord

MAX_FAILURES = 10  # enough to see the shape of the damage; the first one is what matters
_COLUMNS = [operator.itemgetter(i) for i in range(1, 8)]  # LogRecord fields after position
# What a value of the wrong type (only tampering puts one there) raises while being checked.
_BAD_VALUE = (TypeError, ValueError, AttributeError, UnicodeError)
_ALTERED = (
    "the stored hash is not this event's link to the one before: its content or order changed"
)


@dataclass(frozen=True, slots=True)
class Failure:
    sequence: int | None
    position: int | None
    stream_id: str
    version: int | None
    reason: str  # hash_mismatch, sequence_gap, sequence_out_of_order, recorded_at_decreased,
    # malformed, digest_mismatch, digest_missing, digest_beyond_head
    detail: str


@dataclass(frozen=True, slots=True)
class VerifyReport:
    ok: bool
    events_checked: int
    head_sequence: int | None
    head_position: int | None
    head_hash: str | None
    failures: list[Failure] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Digest:
    sequence: int
    head_hash: str
    head_position: int
    recorded_at: str


def digest(log: ChainedLog) -> Digest | None:
    """What an auditor writes down: the last link of the chain (None for an empty log)."""
    head = log.head()
    if head is None:
        return None
    return Digest(head.sequence, head.hash.hex(), head.position, head.recorded_at)


def parse_digest(text: str) -> tuple[int, bytes]:
    """`SEQUENCE:HEXHASH` (as `digest` gives them) -> (sequence, hash bytes)."""
    sequence, sep, hexhash = text.strip().partition(":")
    if not sep or not sequence.isdigit() or int(sequence) < 1:
        raise ValueError(f"a digest is SEQUENCE:HASH with a SEQUENCE of 1 or more, got {text!r}")
    if len(hexhash) != 64 or any(c not in "0123456789abcdefABCDEF" for c in hexhash):
        raise ValueError(f"a digest's HASH is 64 hex digits (SHA-256), got {hexhash!r}")
    return int(sequence), bytes.fromhex(hexhash)


def _hex(value: Any) -> str:
    return bytes(value).hex() if isinstance(value, bytes | bytearray | memoryview) else str(value)


class _Walk:
    """What is carried from one event to the next, and what has been found so far."""

    def __init__(self, against: tuple[int, bytes] | None) -> None:
        self.previous, self.expected, self.last_time = GENESIS, 1, ""
        self.anchor = against or (0, b"")
        self.anchor_seen = against is None
        self.failures: list[Failure] = []

    def fail(self, r: LogRecord | None, reason: str, detail: str) -> None:
        if len(self.failures) < MAX_FAILURES:
            if r is None:  # about the log as a whole, not one event
                self.failures.append(Failure(None, None, "", None, reason, detail))
            else:
                event = (r.sequence, r.position, str(r.stream_id), r.version)
                self.failures.append(Failure(*event, reason, detail))

    def page_is_clean(self, rows: Sequence[LogRecord]) -> bool:
        """One check for a whole page: the common case, so no Python work per field."""
        # Columns by itemgetter: zip(*rows) over a 5000-row page costs more than the hashing.
        sequences, streams, versions, topics, states, times, hashes = (
            list(map(column, rows)) for column in _COLUMNS
        )
        try:
            previous = (self.previous, *hashes[:-1])
            if (
                link_hashes(previous, streams, versions, topics, times, states) != hashes
                or sequences != list(range(self.expected, self.expected + len(rows)))
                or not all(map(operator.le, (self.last_time, *times[:-1]), times))
            ):
                return False
        except _BAD_VALUE:
            return False  # the row-by-row pass names the event
        if not self.anchor_seen and self.expected <= self.anchor[0] < self.expected + len(rows):
            self.check_anchor(rows[self.anchor[0] - self.expected])
        self.previous, self.expected, self.last_time = hashes[-1], sequences[-1] + 1, times[-1]
        return True

    def check_row(self, r: LogRecord) -> None:
        problems: list[tuple[str, str]] = []
        try:
            if r.sequence != self.expected:
                reason = "sequence_gap" if r.sequence > self.expected else "sequence_out_of_order"
                problems.append((reason, f"sequence {r.sequence} where {self.expected} was due"))
            link = link_hash(self.previous, r.stream_id, r.version, r.topic, r.recorded_at, r.state)
            if link != r.hash:
                problems.append(("hash_mismatch", _ALTERED))
            if r.recorded_at < self.last_time:
                earlier = f"recorded_at {r.recorded_at} is before the previous {self.last_time}"
                problems.append(("recorded_at_decreased", earlier))
        except _BAD_VALUE as e:
            problems.append(("malformed", f"a stored value has the wrong type or form: {e}"))
        if problems:
            # One failure per event: the first problem names it, the detail lists them all.
            self.fail(r, problems[0][0], "; ".join(detail for _, detail in problems))
        if not self.anchor_seen and r.sequence == self.anchor[0]:
            self.check_anchor(r)
        # Go on from what is stored, so one altered event is reported once, not ever after.
        self.previous = r.hash
        self.expected = r.sequence + 1 if type(r.sequence) is int else self.expected + 1
        self.last_time = r.recorded_at if type(r.recorded_at) is str else self.last_time

    def check_anchor(self, r: LogRecord) -> None:
        self.anchor_seen = True
        if r.hash != self.anchor[1]:
            published = f"event {self.anchor[0]} has hash {_hex(r.hash)}, the published "
            rewritten = f"digest says {self.anchor[1].hex()}: the log was rewritten up to there"
            self.fail(r, "digest_mismatch", published + rewritten)


def verify(
    log: ChainedLog,
    *,
    against: tuple[int, bytes] | None = None,
    page: int = 5000,
    progress: Callable[[int], None] | None = None,
) -> VerifyReport:
    """Check the whole chain, and with `against` (a published digest) that it extends it."""
    walk = _Walk(against)
    checked, last, after = 0, None, None
    while rows := log.select_log(after, page):
        if not walk.page_is_clean(rows):
            for r in rows:
                walk.check_row(r)
        checked += len(rows)
        last, after = rows[-1], rows[-1].position
        if progress is not None:
            progress(checked)
    if not walk.anchor_seen:
        sequence, head = walk.anchor[0], last.sequence if last else 0
        if type(head) is int and sequence > head:
            cut = f"the digest names event {sequence}, the log ends at {head}: its end was cut"
            walk.fail(None, "digest_beyond_head", cut)
        else:
            walk.fail(None, "digest_missing", f"no event has the digest's sequence {sequence}")
    return VerifyReport(
        ok=not walk.failures,
        events_checked=checked,
        head_sequence=last.sequence if last else None,
        head_position=last.position if last else None,
        head_hash=_hex(last.hash) if last else None,
        failures=walk.failures,
    )
