"""The key table compared with the log: what `verify`, replay and the tamper watch report.

The key streams of the log are folded (`KeyFold`, a page of key events at a time, then only
what was appended since: the watch keeps one between its rounds) and the key table is read
after them, so every key event folded is already in the table read (a key's events and its
row commit together). A row that differs from its fold is looked at again in one statement
with its stream (it may have been written since the log was read); only a row that differs
from its own stream then, a row of a key the log does not have, or a key of the log without a
row, is reported: `key_table_mismatch`, naming the key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from uuid import UUID

import msgspec
from eventsourcing.utils import get_topic

from domain.api_keys import KEY_EVENTS, ApiKeyState, api_key_id
from ledger.audit import Failure
from ledger.key_table import COLUMNS, KeyRow, KeyTable, differing_columns
from ledger.mapper import decode_event
from ledger.store import ChainedLog, LogRecord

KEY_TOPICS = frozenset(get_topic(cls) for cls in KEY_EVENTS)
REASON = "key_table_mismatch"
_LINE = msgspec.json.Encoder()
PAGE = 5000


class KeyFold:
    """The key streams of a log, folded up to the position it has read."""

    def __init__(self, log: ChainedLog) -> None:
        self.log = log
        self.states: dict[UUID, ApiKeyState] = {}
        self.last: dict[UUID, LogRecord] = {}  # each stream's last event read
        self.unreadable: dict[UUID, str] = {}  # streams whose events do not fold
        self.after = 0

    def advance(self) -> None:
        """Fold the key events appended since the last call (all of them the first time)."""
        head = self.log.head()
        end = head.position if head is not None else 0
        while records := self.log.select_log(self.after, PAGE, topics=KEY_TOPICS):
            for r in records:
                self._apply(r)
            self.after = records[-1].position
        self.after = max(self.after, end)

    def _apply(self, r: LogRecord) -> None:
        stream = UUID(str(r.stream_id))
        self.last[stream] = r
        if stream in self.unreadable:
            return
        state = self.states.get(stream)
        try:
            if r.version != (state.version if state is not None else 0) + 1:
                raise ValueError(f"version {r.version} follows version {state and state.version}")
            self.states[stream] = decode_event(r.topic, r.stream_id, r.version, r.state).apply(
                state
            )
        except Exception as e:  # damage; the chain check names the event
            self.states.pop(stream, None)
            self.unreadable[stream] = f"its events in the log cannot be read ({e})"


def fold_log(log: ChainedLog) -> dict[UUID, ApiKeyState]:
    """Every key as the whole log says it is."""
    fold = KeyFold(log)
    fold.advance()
    return fold.states


@dataclass(frozen=True)
class Mismatch:
    name: str
    stream: UUID
    detail: str
    row: KeyRow | None  # None: the table has no row for a key of the log
    state: ApiKeyState | None  # None: the log has no such key


class KeyCheck:
    """Compares the key table with the log's key streams; keep one to check incrementally."""

    def __init__(self, table: KeyTable, log: ChainedLog) -> None:
        self.table = table
        self.fold = KeyFold(log)

    def mismatches(self) -> list[Mismatch]:
        fold, table = self.fold, self.table
        fold.advance()
        rows = table.rows()  # after the log: every key folded has its row in this read
        out = []
        for row in rows:
            stream = api_key_id(row.name)
            state = fold.states.get(stream)
            if stream not in fold.unreadable and not differing_columns(
                row, state, table.stream(row.name)
            ):
                continue
            # Written since the log was read? The row and its stream, in one statement.
            found = table.snapshot(name=row.name)
            if found is None:
                continue  # gone since (a rebuild)
            problem = table.problem(*found)
            if problem is not None:
                out.append(Mismatch(row.name, stream, problem, found[0], state))
        names = {r.name for r in rows}
        for stream, state in fold.states.items():
            if state.name not in names:
                detail = "the log has it, the key table has no row for it"
                out.append(Mismatch(state.name, stream, detail, None, state))
        return out

    def failures(self) -> list[Failure]:
        """The mismatches as `verify` reports them: one failure per key, named, with its
        stream (no sequence: no event is wrong, the table is; the detail says where the key's
        last event is)."""
        out = []
        for m in self.mismatches():
            last = self.fold.last.get(m.stream)
            where = f" (its last event: sequence {last.sequence})" if last is not None else ""
            detail = f"key {m.name!r}{where}: {m.detail}"
            version = last.version if last is not None else None
            out.append(Failure(None, None, str(m.stream), version, REASON, detail))
        return out


def digest(keys: Iterable[KeyRow | ApiKeyState]) -> str:
    """The key table's digest as docs/audit.md defines a view table's: SHA-256 over its rows
    in primary-key order (the name, in byte order), each row its values as text (NULL as
    `null`) in column-name order, encoded as a JSON array and a newline."""
    h = hashlib.sha256()
    for key in sorted(keys, key=lambda k: k.name.encode()):
        h.update(_LINE.encode([getattr(key, c) for c in sorted(COLUMNS)]) + b"\n")
    return h.hexdigest()


def row_values(key: KeyRow | ApiKeyState | None) -> dict[str, str | None] | None:
    if key is None:
        return None
    return {c: getattr(key, c) for c in COLUMNS}
