"""Verify the tamper-evidence chain over the whole log, and state its head (the digest).

`verify` walks the log in position order, a page at a time (constant memory), and checks each
event against the event stored before it: its link recomputed from the previous row's *stored*
hash must equal its own stored hash, its sequence must be the previous one plus one (from 1),
and its `recorded_at` must not go back. Chaining from the stored hash, not from the recomputed
one, is what makes a failure name the altered row itself rather than every row after it.
A consistent rewrite (an event changed and every later hash recomputed) or a cut tail leaves a
chain that checks out: only a digest published earlier (`against`) exposes those.

Speed (target P6 in docs/benchmarks.md: >= 300,000 events/s): a page is read as plain tuples
(`select_log_rows`) and checked in one tight loop (`clean_page`) that makes no Python object
per event beyond the bytes it hashes; only a page where something is wrong is read as records
and walked row by row, which names the events. Both passes compute the same bytes, so the
report does not depend on the pages. On a long SQLite log a helper process
(ledger.helper_process) checks the second half with the same tight loop while this one checks
the first; unless both halves are clean, this process walks the second half itself, so the
report is the same as a walk in one process.
"""

from __future__ import annotations

import dataclasses
import hashlib
import sqlite3
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ledger import machine
from ledger.chain import GENESIS, link_hash
from ledger.helper_process import HelperFailed, HelperProcess, read_job, say_done
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
    # malformed, digest_mismatch, digest_missing, digest_beyond_head, key_table_mismatch
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


class DigestError(ValueError):
    """A digest that is not `SEQUENCE:HEXHASH` (its message is what a person reads)."""


def parse_digest(text: str) -> tuple[int, bytes]:
    """`SEQUENCE:HEXHASH` (as `digest` gives them) -> (sequence, hash bytes)."""
    sequence, sep, hexhash = text.strip().partition(":")
    if not sep or not sequence.isdigit() or int(sequence) < 1:
        raise DigestError(f"a digest is SEQUENCE:HASH with a SEQUENCE of 1 or more, got {text!r}")
    if len(hexhash) != 64 or any(c not in "0123456789abcdefABCDEF" for c in hexhash):
        raise DigestError(f"a digest's HASH is 64 hex digits (SHA-256), got {hexhash!r}")
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


class ChainWalk:
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

    def check_anchor_reached(self, head: Any) -> None:
        """After the walk: a digest whose event was never met names a cut tail or a log that
        never held it (`head`: the last sequence checked, 0 for none)."""
        if self.anchor_seen:
            return
        sequence = self.anchor[0]
        if type(head) is int and sequence > head:
            cut = f"the digest names event {sequence}, the log ends at {head}: its end was cut"
            self.fail(None, "digest_beyond_head", cut)
        else:
            self.fail(None, "digest_missing", f"no event has the digest's sequence {sequence}")

    def check_anchor(self, r: LogRecord) -> None:
        self.anchor_seen = True
        if r.hash != self.anchor[1]:
            published = f"event {self.anchor[0]} has hash {_hex(r.hash)}, the published "
            rewritten = f"digest says {self.anchor[1].hex()}: the log was rewritten up to there"
            self.fail(r, "digest_mismatch", published + rewritten)


_WORKER = "from ledger.audit import _range_worker; _range_worker()"


def _range_worker() -> None:
    """The helper process of a parallel `verify` (ledger.helper_process): checks its job's
    range of the log page by page with `clean_page`, then says whether it is clean and, if so,
    how many events it checked, its last row and the row of the digest's event."""
    job = read_job()
    if job is None:
        return
    previous, expected, last_time = bytes.fromhex(job["previous"]), job["expected"], job["time"]
    middles: dict[tuple[int, str], bytes] = {}
    anchor, count, after = job["anchor"], 0, job["after"]
    seen, last = None, None
    conn = sqlite3.connect(job["path"])
    try:
        while rows := conn.execute(job["statement"], (after, job["until"], job["page"])).fetchall():
            state = clean_page(rows, previous, expected, last_time, middles)
            if state is None:
                say_done(clean=False)
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
    say_done(clean=True, count=count, last=end, anchor=seen)


def _split_point(log: Any) -> tuple[LogRecord, int] | None:
    """(the last event this process checks, the head's position) when a helper pays: a long
    log, and a well-formed event where the halves meet; else None."""
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
    return start, head.position


class _Helper:
    """A second process checking the log after position `start` up to `end` (the head when
    verify began); this process checks up to `start`, then takes the helper's result only if
    both halves are clean and meet exactly."""

    def __init__(self, start: LogRecord, end: int, process: HelperProcess) -> None:
        self.start, self.end, self.process = start, end, process

    @classmethod
    def launch(cls, log: Any, page: int, anchor: int) -> _Helper | None:
        source = getattr(log, "verify_source", None)
        if not machine.cpu_to_spare():
            return None  # no CPU to spare: a second process would only take turns with this one
        if source is None or (found := source()) is None:
            return None
        split = _split_point(log)
        if split is None:
            return None
        start, end = split
        path, statement = found
        job = {
            "path": path,
            "statement": statement,
            "after": start.position,
            "until": end,
            "previous": start.hash.hex(),
            "expected": start.sequence + 1,
            "time": start.recorded_at,
            "page": page,
            "anchor": anchor,
        }
        process = HelperProcess(_WORKER, "verify-helper")
        try:
            process.send(job)
        except OSError:
            return None
        return cls(start, end, process)

    def result(self, walk: ChainWalk, after: int | None, log: Any) -> tuple[int, Any] | None:
        """(events checked, last row) of the helper's half when it can be taken, else None."""
        if walk.failures:  # the walk goes on here and names what is wrong
            return None
        try:
            outcome = self.process.wait()
        except HelperFailed:
            return None
        start = self.start
        met = (walk.previous, walk.expected, walk.last_time) == (
            start.hash,
            start.sequence + 1,
            start.recorded_at,
        )
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
        self.process.stop()


def _as_records(rows: Sequence[Any]) -> Sequence[LogRecord]:
    return rows  # select_log's records already


class LogScan:
    """This process's pass over the log, a page at a time: the page cursor, the count and the
    last row checked, on top of the walk's chain state."""

    def __init__(
        self, log: ChainedLog, walk: ChainWalk, page: int, progress: Callable[[int], None] | None
    ) -> None:
        self.log, self.walk, self.page, self.progress = log, walk, page, progress
        # Plain rows when the recorder has them (no Python object per event), else its records.
        self.select: Callable[[int | None, int], Sequence[tuple[Any, ...]]] = getattr(
            log, "select_log_rows", log.select_log
        )
        self.records: RecordsOf = getattr(log, "log_records", None) or _as_records
        self.checked = 0
        self.last: tuple[Any, ...] | None = None
        self.after: int | None = None

    def run(self, until: int | None = None) -> None:
        """Check pages from where the scan is up to the end of the log, or up to and including
        position `until`."""
        while rows := self.select(self.after, self.page):
            if until is not None and rows[-1][0] > until:
                self.check([r for r in rows if r[0] <= until])
                return
            self.check(rows)

    def check(self, rows: Sequence[tuple[Any, ...]]) -> None:
        if not rows:
            return
        if not self.walk.page_is_clean(rows, self.records):
            for r in self.records(rows):
                self.walk.check_row(r)
        self.checked += len(rows)
        self.last, self.after = rows[-1], rows[-1][0]
        if self.progress is not None:
            self.progress(self.checked)

    def take(self, helper: _Helper) -> None:
        """The helper's half, when it can be taken: the scan goes on after it (from the head
        when verify began, for anything appended meanwhile); else from where this one is."""
        try:
            taken = helper.result(self.walk, self.after, self.log)
        finally:
            helper.stop()  # done, or of no more use: it runs no more
        if taken is None:
            return
        count, last = taken
        self.checked, self.last = self.checked + count, last or self.last
        self.after = helper.end
        if self.progress is not None and count:
            self.progress(self.checked)

    def report(self) -> VerifyReport:
        last = self.last
        return VerifyReport(
            ok=not self.walk.failures,
            events_checked=self.checked,
            head_sequence=last[1] if last else None,
            head_position=last[0] if last else None,
            head_hash=_hex(last[7]) if last else None,
            failures=self.walk.failures,
        )


def verify(
    log: ChainedLog,
    *,
    against: tuple[int, bytes] | None = None,
    page: int = 5000,
    progress: Callable[[int], None] | None = None,
    parallel: bool = True,
    keys: Callable[[], list[Failure]] | None = None,
) -> VerifyReport:
    """Check the whole chain, and with `against` (a published digest) that it extends it.

    `parallel`: let a second process check the second half of a long SQLite log (the report
    is the same either way). `keys`: the comparison of the key table with the log's key
    streams (ledger/key_audit.py `KeyCheck.failures`), run after the chain; its failures
    (`key_table_mismatch`, naming the key) come after the chain's."""
    walk = ChainWalk(against)
    scan = LogScan(log, walk, page, progress)
    helper = _Helper.launch(log, page, walk.anchor[0]) if parallel else None
    try:
        if helper is not None:
            scan.run(until=helper.start.position)  # this process's half
            scan.take(helper)  # else: this process walks the second half too
        scan.run()
    finally:
        if helper is not None:
            helper.stop()
    walk.check_anchor_reached(scan.last[1] if scan.last else 0)
    report = scan.report()
    found = keys() if keys is not None else []
    if not found:
        return report
    failures = [*report.failures, *found[:MAX_FAILURES]]
    return dataclasses.replace(report, ok=False, failures=failures)
