"""Export the log as JSON Lines, and restore an empty store from such a file, checking the chain.

One line per event, in log order, keys in this order (docs/audit.md, "Export and restore"):

    position       the event's place in the log (not hashed; a restore keeps it)
    sequence       n of the chain, 1, 2, 3 ... (not hashed; checked to run without gaps)
    stream_id      canonical lower-case hyphenated UUID                      (hashed)
    version        the event's version in its stream                         (hashed)
    type           the event class name, the topic's last part (not hashed)
    topic          the event class topic                                     (hashed)
    recorded_at    UTC text YYYY-MM-DDTHH:MM:SS.ffffffZ                      (hashed)
    occurred_at    business time, copied from the payload (not hashed on its own)
    actor          who, copied from the payload (not hashed on its own)
    previous_hash  link(n-1) in hex: 64 zeros for sequence 1
    hash           link(n) in hex
    payload        the stored event bytes as a JSON string: its UTF-8 encoding is exactly the
                   bytes hashed (and stored)                                  (hashed)

An auditor recomputes every `hash` from `previous_hash` and the hashed fields with hashlib and
json alone. `import_events` does the same for each line before a row is written, refuses the
first line that does not check out (naming it), and loads a whole file in one transaction or
nothing at all.
"""

from __future__ import annotations

import hashlib
import re
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import IO, Any

import msgspec

from ledger.chain import GENESIS
from ledger.store import LogRecord
from ledger.store.sqlite import ImportRow, StoreNotEmpty

__all__ = [
    "ExportSummary",
    "ImportRefused",
    "ImportSummary",
    "StoreNotEmpty",
    "export_events",
    "import_events",
]

PAGE = 5000  # events read per query when exporting
BATCH = 5000  # events inserted per statement when importing
_LENGTH = struct.Struct(">Q").pack
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z")
_HASH = re.compile(r"[0-9a-f]{64}")


_NULL = msgspec.Raw(b"null")


class ExportedEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One line of an export file (the keys in this order)."""

    position: int
    sequence: int
    stream_id: str
    version: int
    type: str
    topic: str
    recorded_at: str
    occurred_at: msgspec.Raw  # JSON as in the payload (null when it has none)
    actor: msgspec.Raw
    previous_hash: str
    hash: str
    payload: str


class _Facts(msgspec.Struct):
    """What an export line copies out of the payload for the reader's convenience."""

    occurred_at: msgspec.Raw = _NULL
    actor: msgspec.Raw = _NULL


class _Line(msgspec.Struct, frozen=True):
    """What a restore reads from a line: the hashed fields and the chain (others ignored)."""

    position: int
    sequence: int
    stream_id: str
    version: int
    topic: str
    recorded_at: str
    hash: str
    payload: str
    previous_hash: str | None = None


_FACTS = msgspec.json.Decoder(_Facts)
_LINE = msgspec.json.Decoder(_Line)
_ENCODER = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class ExportSummary:
    events: int
    first_sequence: int | None
    head_sequence: int | None
    head_position: int | None
    head_hash: str | None


@dataclass(frozen=True, slots=True)
class ImportSummary:
    events: int
    head_sequence: int | None
    head_position: int | None
    head_hash: str | None


class ExportError(Exception):
    """An event cannot be written as an export line (only a damaged store has one)."""


class ImportRefused(Exception):
    """A line of the file does not check out; nothing was written."""

    def __init__(self, line: int, reason: str, detail: str) -> None:
        super().__init__(f"line {line}: {reason}: {detail}")
        self.line, self.reason, self.detail = line, reason, detail


def _facts(state: bytes) -> _Facts:
    try:
        return _FACTS.decode(state)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return _Facts()  # not the ledger's JSON: the payload is exported as it is all the same


def _line(r: LogRecord, previous: bytes) -> ExportedEvent:
    state = bytes(r.state)
    try:
        payload = state.decode("utf-8")
    except UnicodeDecodeError as e:
        detail = f"event {r.sequence} (position {r.position}): its stored state is not UTF-8"
        raise ExportError(f"{detail} text ({e}); run `verify`") from None
    facts = _facts(state)
    return ExportedEvent(
        position=r.position,
        sequence=r.sequence,
        stream_id=str(r.stream_id),
        version=r.version,
        type=r.topic.rpartition(":")[2],
        topic=r.topic,
        recorded_at=r.recorded_at,
        occurred_at=facts.occurred_at,
        actor=facts.actor,
        previous_hash=bytes(previous).hex(),
        hash=bytes(r.hash).hex(),
        payload=payload,
    )


def export_events(
    log: Any,
    out: IO[bytes],
    *,
    after: int | None = None,
    until: str | None = None,
    progress: Callable[[int], None] | None = None,
    page: int = PAGE,
) -> ExportSummary:
    """Write the events after position `after` up to the last one recorded at or before
    `until` (stored UTC text) to `out`, one JSON line each, a page at a time."""
    previous = GENESIS
    if after:
        before = log.record_at_or_before(after)
        previous = before.hash if before is not None else GENESIS
    count, first, last = 0, None, None
    position = after
    while records := log.select_log(position, page, until=until):
        lines = []
        for r in records:
            lines.append(_line(r, previous))
            previous = r.hash
        out.write(_ENCODER.encode_lines(lines))
        count += len(records)
        first = first if first is not None else records[0].sequence
        last = records[-1]
        position = last.position
        if progress is not None:
            progress(count)
    return ExportSummary(
        events=count,
        first_sequence=first,
        head_sequence=last.sequence if last else None,
        head_position=last.position if last else None,
        head_hash=bytes(last.hash).hex() if last else None,
    )


def _decode(number: int, raw: bytes) -> _Line:
    try:
        return _LINE.decode(raw)
    except msgspec.ValidationError as e:
        reason = "missing_field" if "missing required field" in str(e) else "bad_field"
        raise ImportRefused(number, reason, str(e)) from None
    except msgspec.DecodeError as e:
        raise ImportRefused(number, "bad_json", f"not a JSON object on one line ({e})") from None


class _Restore:
    """What a restore carries from one line to the next: the chain so far, each stream's
    version, and the rows checked but not yet written."""

    __slots__ = (
        "count",
        "expected",
        "last_position",
        "last_time",
        "previous",
        "previous_hex",
        "rows",
        "versions",
    )

    def __init__(self) -> None:
        self.versions: dict[str, int] = {}
        self.previous, self.previous_hex = GENESIS, GENESIS.hex()
        self.expected, self.last_position, self.last_time = 1, 0, ""
        self.count = 0
        self.rows: list[ImportRow] = []

    def add(self, number: int, e: _Line) -> None:
        """Check line `number` against the lines before it and keep its row; the first thing
        that does not check out raises ImportRefused."""
        self.check_order(number, e)
        _check_forms(number, e)
        try:
            state = e.payload.encode("utf-8")
        except UnicodeEncodeError as error:
            raise ImportRefused(number, "bad_field", f"payload: {error}") from None
        link = _link(self.previous, e, state)
        if link.hex() != e.hash:
            why = f"the line's fields do not give its hash {e.hash} (they give {link.hex()})"
            raise ImportRefused(number, "hash_mismatch", f"{why}: the line was altered")
        self.check_stream_and_time(number, e)
        self.versions[e.stream_id] = e.version
        row = (e.position, e.stream_id, e.version, e.topic, state, e.sequence, e.recorded_at)
        self.rows.append((*row, link))
        self.previous, self.previous_hex, self.expected = link, e.hash, e.sequence + 1
        self.last_position, self.last_time = e.position, e.recorded_at
        self.count += 1

    def check_order(self, number: int, e: _Line) -> None:
        """The line's sequence, position and previous hash follow the line before it."""
        expected = self.expected
        if e.sequence != expected:
            if expected == 1:
                why = f"the file starts at sequence {e.sequence}: a restore needs a full "
                raise ImportRefused(number, "not_from_start", why + "export, from sequence 1")
            reason = "sequence_gap" if e.sequence > expected else "sequence_out_of_order"
            why = f"sequence {e.sequence} where {expected} was due"
            raise ImportRefused(number, reason, why + " (a line is missing or moved)")
        if not self.last_position < e.position < 2**63:
            why = f"position {e.position} does not come after {self.last_position}"
            raise ImportRefused(number, "position_out_of_order", why)
        if e.previous_hash is not None and e.previous_hash != self.previous_hex:
            why = f"previous_hash {e.previous_hash} is not the hash of the line before"
            raise ImportRefused(number, "previous_hash_mismatch", f"{why} ({self.previous_hex})")

    def check_stream_and_time(self, number: int, e: _Line) -> None:
        """The event is its stream's next version, recorded no earlier than the line before."""
        due = self.versions.get(e.stream_id, 0) + 1
        if e.version != due:
            why = f"stream {e.stream_id} at version {e.version} where {due} was due"
            raise ImportRefused(number, "version_gap", why)
        if e.recorded_at < self.last_time:
            why = f"recorded_at {e.recorded_at} is before the previous {self.last_time}"
            raise ImportRefused(number, "recorded_at_decreased", why)

    def summary(self) -> ImportSummary:
        count = self.count
        return ImportSummary(
            events=count,
            head_sequence=self.expected - 1 if count else None,
            head_position=self.last_position if count else None,
            head_hash=self.previous_hex if count else None,
        )


_UUID_OK, _TIME_OK, _HASH_OK = _UUID.fullmatch, _TIME.fullmatch, _HASH.fullmatch


def _check_forms(number: int, e: _Line) -> None:
    """The hashed text fields are in the one form the chain hashes."""
    if not _UUID_OK(e.stream_id):
        why = f"stream_id {e.stream_id!r} is not a canonical lower-case UUID"
        raise ImportRefused(number, "bad_field", why)
    if not _TIME_OK(e.recorded_at):
        why = f"recorded_at {e.recorded_at!r} is not YYYY-MM-DDTHH:MM:SS.ffffffZ"
        raise ImportRefused(number, "bad_field", why)
    if not _HASH_OK(e.hash):
        why = f"hash {e.hash!r} is not 64 lower-case hex digits"
        raise ImportRefused(number, "bad_field", why)


def _link(previous: bytes, e: _Line, state: bytes) -> bytes:
    """The line's chain link from `previous`, as ledger.chain.link_hash computes it."""
    length = _LENGTH
    fields = [previous]
    for text in (e.stream_id, str(e.version), e.topic, e.recorded_at):
        encoded = text.encode()
        fields += (length(len(encoded)), encoded)
    return hashlib.sha256(b"".join((*fields, length(len(state)), state))).digest()


def import_events(
    log: Any,
    lines: Iterable[bytes],
    *,
    progress: Callable[[int], None] | None = None,
    batch: int = BATCH,
) -> ImportSummary:
    """Load an export file into an empty store, checking every line before it is written.

    A restore needs the whole log: the first event must be sequence 1, chained to the
    genesis link. Each line must give its own hash from the line before it; sequences,
    positions and each stream's versions must run on without gaps. The first line that does
    not raises ImportRefused naming it, and nothing is written (one transaction); a store that
    holds any event raises StoreNotEmpty before anything is read.
    """
    restore = _Restore()
    with log.bulk_load() as load:
        for number, raw in enumerate(lines, start=1):
            if not raw.strip():
                continue  # an empty line (a trailing newline too many) holds no event
            restore.add(number, _decode(number, raw))
            if len(restore.rows) >= batch:
                load(restore.rows)
                restore.rows = []
                if progress is not None:
                    progress(restore.count)
        if restore.rows:
            load(restore.rows)
            if progress is not None:
                progress(restore.count)
    return restore.summary()
