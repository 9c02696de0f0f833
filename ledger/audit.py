"""Verify the tamper-evidence chain over the whole log, and state its head (the digest).

`verify` walks the log in position order, a page at a time (constant memory), and checks each
event against the event stored before it: its link recomputed from the previous row's *stored*
hash must equal its own stored hash, its sequence must be the previous one plus one (from 1),
and its `recorded_at` must not go back. Chaining from the stored hash, not from the recomputed
one, is what makes a failure name the altered row itself rather than every row after it.
A consistent rewrite (an event changed and every later hash recomputed) or a cut tail leaves a
chain that checks out: only a digest published earlier (`against`) exposes those.

Speed (QUALITY.md P6): a page is read as plain tuples (`select_log_rows`) and checked in one
tight loop (`clean_page`) that makes no Python object per event beyond the bytes it hashes;
only a page where something is wrong is read as records and walked row by row, which names
the events. Both passes compute the same bytes, so the report does not depend on the pages.
On a long SQLite log a second process checks the second half with the same tight loop while
this one checks the first; unless both halves are clean, this process walks the second half
itself, so the report is the same as a walk in one process.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import struct
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ledger import machine
from ledger.chain import GENESIS, link_hash
from ledger.store import ChainedLog, LogRecord

MAX_FAILURES = 10  # enough to see the shape of the damage; the first one is what matters
_LENGTH = struct.Struct(">Q").pack  # F(x)'s 8-byte big-endian length
_MIDDLES = 100_000  # most cached F(version) || F(topic) fields before the cache starts again
# A log at least this long is checked in two processes where the store allows it (a second
# Python process costs about 0.1 s to start; it then checks the second half of the log).
PARALLEL_MIN = 100_000
HELPER_START_EVENTS = 25_000  # what this process checks while a helper's interpreter starts
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


RecordsOf = Callable[[Sequence[tuple[Any, ...]]], Sequence[LogRecord]]


def clean_page(
    rows: Sequence[tuple[Any, ...]],
    previous: bytes,
    expected: int,
    last_time: str,
    middles: dict[tuple[int, str], bytes],
) -> tuple[bytes, int, str] | None:
    """(previous link, next sequence, last record time) after a page in which every event
    checks out, or None as soon as one does not, or has a value of an unexpected type.

    Rows are LogRecord-ordered tuples: (position, sequence, stream id, version, topic, state,
    recorded_at, hash), the stream id canonical or as SQLite stores it (32 hex digits). Each
    link is computed exactly as `link_hash` computes it, with the encoded F(version) ||
    F(topic) of exact int/str pairs kept in `middles` and F(recorded_at) computed once per
    record time. None sends the page to the row-by-row pass, which decides and names events;
    this pass only ever agrees with it that a page is clean.
    """
    sha256, join, length = hashlib.sha256, b"".join, _LENGTH
    encoded = last_time.encode()
    time_field = length(len(encoded)) + encoded
    if len(middles) > _MIDDLES:
        middles.clear()
    try:
        for _position, sequence, stream, version, topic, state, recorded_at, stored in rows:
            if sequence != expected or type(version) is not int:  # 1.0 would hit 1's entry
                return None
            expected += 1
            middle = middles.get((version, topic))
            if middle is None:
                v, t = str(version).encode(), topic.encode()
                middle = middles[version, topic] = length(len(v)) + v + length(len(t)) + t
            if recorded_at != last_time:
                if not last_time < recorded_at:  # also refuses a time that is not text
                    return None
                encoded = recorded_at.encode()
                time_field, last_time = length(len(encoded)) + encoded, recorded_at
            s = stream
            if len(s) == 32:
                s = f"{s[:8]}-{s[8:12]}-{s[12:16]}-{s[16:20]}-{s[20:]}"
            s = s.encode()
            link = sha256(
                join((previous, length(len(s)), s, middle, time_field, length(len(state)), state))
            ).digest()
            if link != stored:
                return None
            previous = stored
    except _BAD_VALUE:
        return None
    return previous, expected, last_time


class _Walk:
    """What is carried from one event to the next, and what has been found so far."""

    def __init__(self, against: tuple[int, bytes] | None) -> None:
        self.previous, self.expected, self.last_time = GENESIS, 1, ""
        self.anchor = against or (0, b"")
        self.anchor_seen = against is None
        self.failures: list[Failure] = []
        self.middles: dict[tuple[int, str], bytes] = {}

    def fail(self, r: LogRecord | None, reason: str, detail: str) -> None:
        if len(self.failures) < MAX_FAILURES:
            if r is None:  # about the log as a whole, not one event
                self.failures.append(Failure(None, None, "", None, reason, detail))
            else:
                event = (r.sequence, r.position, str(r.stream_id), r.version)
                self.failures.append(Failure(*event, reason, detail))

    def page_is_clean(self, rows: Sequence[tuple[Any, ...]], records: RecordsOf) -> bool:
        """One tight pass over a page of rows: the common case, every event as it should be."""
        after = clean_page(rows, self.previous, self.expected, self.last_time, self.middles)
        if after is None:
            return False  # the row-by-row pass names the event
        if not self.anchor_seen and self.expected <= self.anchor[0] < self.expected + len(rows):
            self.check_anchor(records([rows[self.anchor[0] - self.expected]])[0])
        self.previous, self.expected, self.last_time = after
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


_WORKER = "from ledger.audit import _range_worker; _range_worker()"


def _range_worker() -> None:
    """The second process of a parallel `verify`: reads the job (JSON) on stdin, checks its
    range of the log page by page with `clean_page`, writes the outcome (JSON) on stdout."""
    job = json.loads(sys.stdin.read())
    previous, expected, last_time = bytes.fromhex(job["previous"]), job["expected"], job["time"]
    anchor, middles, count, after = job["anchor"], {}, 0, job["after"]
    seen, last = None, None
    conn = sqlite3.connect(job["path"])
    try:
        while rows := conn.execute(job["statement"], (after, job["until"], job["page"])).fetchall():
            state = clean_page(rows, previous, expected, last_time, middles)
            if state is None:
                print(json.dumps({"clean": False}))
                return
            if anchor and expected <= anchor < expected + len(rows):
                row = rows[anchor - expected]
                seen = [row[0], bytes(row[7]).hex()]
            previous, expected, last_time = state
            count, last = count + len(rows), rows[-1]
            after = last[0]
    finally:
        conn.close()
    end = [last[0], last[1], last[6], bytes(last[7]).hex()] if last else None
    print(json.dumps({"clean": True, "count": count, "last": end, "anchor": seen}))


class _Helper:
    """A second process checking the log after position `start` up to `end` (the head when
    verify began); this process checks up to `start`, then takes the helper's result only if
    both halves are clean and meet exactly."""

    def __init__(self, start: LogRecord, end: int, process: subprocess.Popen[str]) -> None:
        self.start, self.end, self.process = start, end, process

    @classmethod
    def launch(cls, log: Any, page: int, anchor: int) -> _Helper | None:
        source = getattr(log, "verify_source", None)
        if not machine.cpu_to_spare():
            return None  # no CPU to spare: a second process would only take turns with this one
        if source is None or (found := source()) is None:
            return None
        head = log.head()
        count = log.count() if head is not None else 0
        if head is None or type(head.position) is not int or count < PARALLEL_MIN:
            return None
        # This process checks its part while the helper's interpreter starts: it takes that
        # much more of the log, so that both halves end together.
        share = min(0.75, 0.5 + HELPER_START_EVENTS / (2 * count))
        start = log.record_at_or_before(int(head.position * share))
        if start is None or not (
            type(start.sequence) is int
            and type(start.recorded_at) is str
            and isinstance(start.hash, bytes)
        ):
            return None  # something odd there: the walk in one process will say what
        path, statement = found
        job = {
            "path": path,
            "statement": statement,
            "after": start.position,
            "until": head.position,
            "previous": start.hash.hex(),
            "expected": start.sequence + 1,
            "time": start.recorded_at,
            "page": page,
            "anchor": anchor,
        }
        try:
            process = subprocess.Popen(  # noqa: S603 - this Python, our own code
                [sys.executable, "-c", _WORKER],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            assert process.stdin is not None
            process.stdin.write(json.dumps(job))
            process.stdin.close()
        except OSError:
            return None
        return cls(start, head.position, process)

    def result(self, walk: _Walk, after: int | None, log: Any) -> tuple[int, Any] | None:
        """(events checked, last row) of the helper's half when it can be taken, else None."""
        if walk.failures:  # the walk goes on here and names what is wrong
            self.stop()
            return None
        assert self.process.stdout is not None
        out = self.process.stdout.read()
        self.process.stdout.close()
        self.process.wait()
        if self.process.returncode != 0:
            return None
        start = self.start
        met = (walk.previous, walk.expected, walk.last_time) == (
            start.hash,
            start.sequence + 1,
            start.recorded_at,
        )
        try:
            outcome = json.loads(out)
        except ValueError:
            return None
        if after != start.position or not met or not outcome.get("clean"):
            return None
        if outcome["last"] is None:
            return 0, None
        position, sequence, recorded_at, hexhash = outcome["last"]
        if outcome["anchor"] is not None:
            anchored = log.record_at_or_before(outcome["anchor"][0])
            if anchored is None:
                return None
            walk.check_anchor(anchored)
        walk.previous, walk.expected = bytes.fromhex(hexhash), sequence + 1
        walk.last_time = recorded_at
        return outcome["count"], (position, sequence, *([None] * 4), recorded_at, walk.previous)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


def _as_records(rows: Sequence[Any]) -> Sequence[LogRecord]:
    return rows  # select_log's records already


def verify(
    log: ChainedLog,
    *,
    against: tuple[int, bytes] | None = None,
    page: int = 5000,
    progress: Callable[[int], None] | None = None,
    parallel: bool = True,
) -> VerifyReport:
    """Check the whole chain, and with `against` (a published digest) that it extends it.

    `parallel`: let a second process check the second half of a long SQLite log (the report
    is the same either way)."""
    walk = _Walk(against)
    # Plain rows when the recorder has them (no Python object per event), else its records.
    select: Callable[[int | None, int], Sequence[tuple[Any, ...]]] = getattr(
        log, "select_log_rows", log.select_log
    )
    records: RecordsOf = getattr(log, "log_records", None) or _as_records
    checked, last, after = 0, None, None
    helper = _Helper.launch(log, page, walk.anchor[0]) if parallel else None
    try:
        while True:
            rows = select(after, page)
            handover = helper is not None and (not rows or rows[-1][0] > helper.start.position)
            if handover and helper is not None:  # this process's half ends here
                rows = [r for r in rows if r[0] <= helper.start.position]
            if rows:
                if not walk.page_is_clean(rows, records):
                    for r in records(rows):
                        walk.check_row(r)
                checked += len(rows)
                last, after = rows[-1], rows[-1][0]
                if progress is not None:
                    progress(checked)
            if handover and helper is not None:
                taken = helper.result(walk, after, log)
                if taken is not None:
                    checked, last = checked + taken[0], taken[1] or last
                    after = helper.end
                    if progress is not None and taken[0]:
                        progress(checked)
                helper = None  # else: this process walks the second half too
                continue
            if not rows:
                break
    finally:
        if helper is not None:
            helper.stop()
    if not walk.anchor_seen:
        sequence, head = walk.anchor[0], last[1] if last else 0
        if type(head) is int and sequence > head:
            cut = f"the digest names event {sequence}, the log ends at {head}: its end was cut"
            walk.fail(None, "digest_beyond_head", cut)
        else:
            walk.fail(None, "digest_missing", f"no event has the digest's sequence {sequence}")
    return VerifyReport(
        ok=not walk.failures,
        events_checked=checked,
        head_sequence=last[1] if last else None,
        head_position=last[0] if last else None,
        head_hash=_hex(last[7]) if last else None,
        failures=walk.failures,
    )
