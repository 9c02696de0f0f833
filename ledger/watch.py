"""The tamper watch: a server verifies its own log in the background and raises an alarm.

At start it verifies the whole chain (about 2 s per million events); then, every `period`
seconds, the events appended since its last check, after making sure the event it last
checked still has the hash it had (a rewrite of the chain with every later hash recomputed
changes it; a deleted tail no longer reaches it). With a digest file (`LEDGER_DIGEST_FILE`:
lines `SEQUENCE:HASH` an auditor published, the last one counts) it verifies against that too.
An alarm is final for the process: it stops serving writes (503 with the reason) and
`/healthz` says why, until someone looks (docs/audit.md, "Tamper alarms").
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger.audit import ChainWalk, Failure, LogScan, parse_digest, verify
from ledger.store import ChainedLog

log = logging.getLogger("customs_ledger.watch")


@dataclass(frozen=True)
class Checkpoint:
    """An event the watch has verified: the next check goes on from it."""

    position: int
    sequence: int
    hash: bytes
    recorded_at: str


def verify_tail(
    log: ChainedLog, since: Checkpoint, page: int = 5000
) -> tuple[list[Failure], Checkpoint]:
    """Check that `since` still stands and every event after it: (failures, new checkpoint)."""
    rows = _rows(log, since.position - 1, 1)
    if not rows or rows[0][1] != since.sequence or bytes(rows[0][7]) != since.hash:
        where = "is gone" if not rows else "has another sequence or hash"
        changed = f"event {since.sequence} (position {since.position}) {where} since it was checked"
        failure = Failure(since.sequence, since.position, "", None, "checkpoint_changed", changed)
        return [failure], since
    walk = ChainWalk(None)
    walk.previous, walk.expected, walk.last_time = since.hash, since.sequence + 1, since.recorded_at
    scan = LogScan(log, walk, page, None)
    scan.after = since.position
    scan.run()
    return walk.failures, _checkpoint(scan.last) or since


def _rows(log: ChainedLog, after: int, limit: int) -> Any:
    select = getattr(log, "select_log_rows", log.select_log)
    return select(after, limit)


def _checkpoint(row: Any) -> Checkpoint | None:
    if row is None:
        return None
    return Checkpoint(row[0], row[1], bytes(row[7]), str(row[6]))


class TamperWatch:
    """The background check of one server's log; `alarm` is None until something fails."""

    def __init__(
        self,
        log: ChainedLog,
        *,
        period: float,
        digest_file: str | None = None,
        on_alarm: Callable[[str], None] | None = None,
    ) -> None:
        self.log = log
        self.period = period
        self.digest_file = digest_file
        self.on_alarm = on_alarm
        self.alarm: str | None = None
        self.checkpoint: Checkpoint | None = None
        self.checked_digest: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="tamper-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        while self.alarm is None and not self._stop.is_set():
            try:
                self.check()
            except Exception as e:  # a store that does not answer is /healthz's business
                log.warning("tamper watch: the check could not run: %s", e)
            self._stop.wait(self.period)

    def check(self) -> None:
        """One round: the whole log the first time, then the tail; the digest file's last
        digest whenever it changed."""
        if self.checkpoint is None:
            report = verify(self.log)
            failures = list(report.failures)
            if report.ok and report.head_position is not None:
                row = _rows(self.log, report.head_position - 1, 1)
                self.checkpoint = _checkpoint(row[0] if row else None)
        else:
            failures, self.checkpoint = verify_tail(self.log, self.checkpoint)
        if not failures:
            failures = self._check_digest_file()
        if failures:
            first = failures[0]
            at = f"event {first.sequence}: " if first.sequence is not None else ""
            self.raise_alarm(f"{first.reason}: {at}{first.detail}")

    def _check_digest_file(self) -> list[Failure]:
        if self.digest_file is None:
            return []
        lines = [ln.strip() for ln in Path(self.digest_file).read_text().splitlines()]
        published = next((ln for ln in reversed(lines) if ln and not ln.startswith("#")), None)
        if published is None or published == self.checked_digest:
            return []
        try:
            anchor = parse_digest(published)
        except ValueError as e:
            return [Failure(None, None, "", None, "digest_file", f"{self.digest_file}: {e}")]
        report = verify(self.log, against=anchor)
        if report.ok:
            self.checked_digest = published
        return list(report.failures)

    def raise_alarm(self, reason: str) -> None:
        if self.alarm is not None:
            return
        self.alarm = reason
        log.error("TAMPER ALARM: the log failed verification; writes are refused: %s", reason)
        if self.on_alarm is not None:
            self.on_alarm(reason)
