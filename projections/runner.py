"""The batched catch-up runner: one loop for SQLite and PostgreSQL, exactly once via tracking.

It reads a page of the log after its tracked position, applies every event of the page to its
projections, and writes their rows and the new position in one transaction. A crash before
the commit loses the whole page and the next start reads it again; a crash after it finds the
position already moved. The position is advanced with a compare-and-set, so two runners on
the same views (two processes by mistake) cannot both apply a page.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from domain.events import DomainEvent
from projections.store import ViewStore

log = logging.getLogger("customs_ledger.projections")


class LogEntry(Protocol):
    """One stored event as the log source gives it (read-only, like the store's records)."""

    @property
    def position(self) -> int: ...
    @property
    def sequence(self) -> int: ...
    @property
    def stream_id(self) -> str: ...
    @property
    def version(self) -> int: ...
    @property
    def topic(self) -> str: ...
    @property
    def state(self) -> bytes: ...
    @property
    def recorded_at(self) -> str: ...


LogSource = Callable[[int, int], Sequence[LogEntry]]
Decoder = Callable[[LogEntry], DomainEvent]


class Projection(Protocol):
    name: str

    def create_tables(self, cur: Any) -> None: ...

    def apply(self, cur: Any, entry: LogEntry, event: DomainEvent) -> None: ...


class CrashForTests(Exception):
    """Raised mid-batch by tests that kill the runner."""


TRACKING_DDL = (
    "CREATE TABLE IF NOT EXISTS view_tracking (name TEXT PRIMARY KEY, position BIGINT NOT NULL)"
)


class CatchUpRunner:
    """Feeds a set of projections from the log, in batches, resuming from its tracking row."""

    def __init__(
        self,
        name: str,
        views: ViewStore,
        projections: Sequence[Projection],
        source: LogSource,
        decode: Decoder,
        *,
        batch_size: int = 1000,
        poll_interval: float = 0.5,
    ) -> None:
        self.name = name
        self.views = views
        self.projections = list(projections)
        self.source = source
        self.decode = decode
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.crash_after: int | None = None  # tests: crash after applying this many events
        self.on_crash: Callable[[], None] | None = None
        self._wake = threading.Event()
        self._advanced = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.position = 0
        self.last_error: str | None = None
        self.setup()

    def setup(self) -> None:
        with self.views.transaction() as cur:
            cur.execute(TRACKING_DDL)
            for projection in self.projections:
                projection.create_tables(cur)
            cur.execute("SELECT position FROM view_tracking WHERE name = ?", (self.name,))
            row = cur.fetchone()
            if row is None:
                cur.execute(
                    "INSERT INTO view_tracking (name, position) VALUES (?, 0)", (self.name,)
                )
        self.position = self.tracked_position()

    def tracked_position(self) -> int:
        with self.views.read() as cur:
            cur.execute("SELECT position FROM view_tracking WHERE name = ?", (self.name,))
            row = cur.fetchone()
        return int(row["position"]) if row else 0

    def run_once(self) -> int:
        """Apply one page; return how many events it applied (0 when caught up)."""
        start = self.tracked_position()
        entries = self.source(start, self.batch_size)
        if not entries:
            self.position = start
            return 0
        applied = 0
        with self.views.transaction() as cur:
            for entry in entries:
                event = self.decode(entry)
                for projection in self.projections:
                    projection.apply(cur, entry, event)
                applied += 1
                if self.crash_after is not None:
                    self.crash_after -= 1
                    if self.crash_after <= 0:
                        if self.on_crash is not None:
                            self.on_crash()
                        raise CrashForTests(f"crash after {applied} events of a batch")
            cur.execute(
                "UPDATE view_tracking SET position = ? WHERE name = ? AND position = ?",
                (entries[-1].position, self.name, start),
            )
            if cur.rowcount != 1:
                raise RuntimeError(f"{self.name}: another runner moved the position from {start}")
        self._advance(entries[-1].position)
        return applied

    def catch_up(self) -> int:
        total = 0
        while n := self.run_once():
            total += n
        return total

    def _advance(self, position: int) -> None:
        with self._advanced:
            self.position = position
            self._advanced.notify_all()

    def wake(self) -> None:
        self._wake.set()

    def wait_for(self, position: int, timeout: float) -> bool:
        """Block until the views reflect `position` (read-your-writes), at most `timeout` s."""
        deadline = time.monotonic() + timeout
        if self._thread is None:
            # The views are fed by another process (`project --follow`): poll its tracking row.
            while (current := self.tracked_position()) < position:
                if time.monotonic() >= deadline:
                    break
                time.sleep(0.02)
            self.position = max(self.position, current)
            return current >= position
        with self._advanced:
            while self.position < position:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._wake.set()
                self._advanced.wait(min(remaining, 0.05))
        return True

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=f"runner-{self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _loop(self) -> None:
        backoff = 0.1
        while not self._stop.is_set():
            try:
                applied = self.run_once()
                self.last_error = None
                backoff = 0.1
            except Exception as e:
                # A projection error must not stop the read side silently: log, wait, resume
                # from the tracked position (the failed page was rolled back).
                self.last_error = f"{type(e).__name__}: {e}"
                log.exception("projection runner %s failed; retrying", self.name)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if applied == 0:
                self._wake.wait(self.poll_interval)
                self._wake.clear()
