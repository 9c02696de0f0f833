"""The tamper-evidence chain: one SHA-256 link per stored event, in log order.

link(n) = SHA-256(link(n-1) || F(stream_id) || F(version) || F(topic) || F(recorded_at)
                  || F(state))
where link(0) is 32 zero bytes and F(x) is the 8-byte big-endian length of x's UTF-8 (or raw)
bytes followed by those bytes; stream_id is the canonical hyphenated UUID, version its decimal
digits, recorded_at the stored UTC text (YYYY-MM-DDTHH:MM:SS.ffffffZ), state the stored event
bytes (they carry the actor and the payload). Positions are excluded, so an exported and
re-imported log keeps its hashes. docs/audit.md publishes the same definition.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable
from datetime import UTC, datetime
from uuid import UUID

GENESIS = bytes(32)


def _field(data: bytes) -> bytes:
    return len(data).to_bytes(8, "big") + data


def link_hash(
    previous: bytes, stream_id: UUID | str, version: int, topic: str, recorded_at: str, state: bytes
) -> bytes:
    """The chain link of one event, given the link of the event before it."""
    h = hashlib.sha256(previous)
    h.update(_field(str(stream_id).encode()))
    h.update(_field(str(version).encode()))
    h.update(_field(topic.encode()))
    h.update(_field(recorded_at.encode()))
    h.update(_field(bytes(state)))
    return h.digest()


_length = struct.Struct(">Q").pack  # F(x)'s 8-byte big-endian length


def link_hashes(
    previous: Iterable[bytes],
    stream_ids: Iterable[UUID | str],
    versions: Iterable[int],
    topics: Iterable[str],
    recorded_ats: Iterable[str],
    states: Iterable[bytes],
) -> list[bytes]:
    """`link_hash` of many events, each from the link given for it in `previous`.

    The same bytes as `link_hash`, in the form `verify` needs: it checks every event against
    the link *stored* before it, so the events are independent and one tight loop does a page.
    Versions, topics and record times repeat, so their fields are encoded once per call.
    """
    out: list[bytes] = []
    append, sha256 = out.append, hashlib.sha256
    cached: dict[tuple[int, str], bytes] = {}
    last_time, time_field = None, b""
    for p, s, v, t, r, state in zip(
        previous, stream_ids, versions, topics, recorded_ats, states, strict=True
    ):
        sid = str(s).encode()
        # Only exact int/str keys: 1, 1.0 and True are one dict key but different text.
        key = (v, t) if type(v) is int and type(t) is str else None
        middle = cached.get(key) if key else None
        if middle is None:
            vb, tb = str(v).encode(), t.encode()
            middle = _length(len(vb)) + vb + _length(len(tb)) + tb
            if key:
                cached[key] = middle
        if r != last_time or type(r) is not str:
            rb = r.encode()
            time_field, last_time = _length(len(rb)) + rb, r
        append(
            sha256(
                b"".join(
                    (p, _length(len(sid)), sid, middle, time_field, _length(len(state)), state)
                )
            ).digest()
        )
    return out


def format_recorded_at(moment: datetime) -> str:
    """Record time as stored: UTC, microseconds, `Z` (fixed width, so text order is time order)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def next_recorded_at(last: str | None) -> str:
    """Now, but never before the last record time: `recorded_at` never decreases along the log."""
    now = format_recorded_at(datetime.now(UTC))
    return now if last is None or now > last else last
