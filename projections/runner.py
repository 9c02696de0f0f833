"""The batched catch-up runner: one loop for SQLite and PostgreSQL, exactly once via tracking.

It reads a page of the log after its tracked position and lets every projection fold the page
in memory (`Projection.begin` gives a per-page fold that caches the rows it reads and
changes), then each fold writes its rows with `executemany`, and the new position is written
with them, in one transaction. A crash before the commit loses the whole page and the next
start reads it again; a crash after it finds the position already moved. The position is
advanced with a compare-and-set, so two runners on the same views (two processes by mistake)
cannot both apply a page. Events no projection reads are not decoded (docs/decisions/0009).
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Protocol

from domain.events import DomainEvent
from projections.folding import LogEntry, PageFold, Projection, Writes, version_of
from projections.page_writer import PageWriter
from projections.store import ViewStore

log = logging.getLogger("customs_ledger.projections")


LogSource = Callable[[int, int], Sequence[LogEntry]]
Decoder = Callable[[LogEntry], DomainEvent]


@contextmanager
def paused_gc() -> Iterator[None]:
    """The cyclic garbage collector paused while a page is read, folded and written: a page's
    thousands of records, decoded events and rows are alive together and hold no cycles, and
    scanning them again and again cost a third of a replay's time (and reading a page with
    the collector on, another tenth; a replay pauses it for the whole rebuild, since
    between pages it still scanned the rows carried over, another tenth)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class Leader(Protocol):
    """Whether this process may feed the views now (one process at a time does; the others
    follow the tracking row and take over when it stops): projections/store.py's
    PostgresLeader."""

    def holds(self) -> bool: ...

    def release(self) -> None: ...


TRACKING_DDL = (
    "CREATE TABLE IF NOT EXISTS view_tracking (name TEXT PRIMARY KEY, position BIGINT NOT NULL)"
)
# The version of each projection whose views are stored (what `Projection.version` was).
VERSIONS_DDL = (
    "CREATE TABLE IF NOT EXISTS view_versions"
    " (projection TEXT PRIMARY KEY, version BIGINT NOT NULL)"
)
DEFAULT_BATCH = 5000  # events per page: large pages write faster; the live ones are short anyway


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
        batch_size: int = DEFAULT_BATCH,
        poll_interval: float = 0.5,
        indexes: bool = True,
        after_event: Callable[[], None] | None = None,
    ) -> None:
        self.name = name
        self.views = views
        self.projections = list(projections)
        self.source = source
        self.decode = decode
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        # Called after each event a live page applies, when set: a fault injected mid-page
        # (it raises, or ends the process) by a test or `project`'s test hook; the page is
        # then folded one event at a time. None: pages are folded whole.
        self.after_event = after_event
        # topic -> indexes of the projections that read its events (empty: not decoded).
        self._routes: dict[str, tuple[int, ...]] = {}
        self._carried: list[PageFold] | None = None
        self._carried_position = -1
        self._wake = threading.Event()
        self._advanced = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.position = 0
        self.last_error: str | None = None
        # The running loop feeds the views only while `leader` holds (None: always); else it
        # follows the tracking row that the leading process moves.
        self.leader: Leader | None = None
        self.leading = True
        # (position, recorded_at) of the last event the views applied, as last seen (lag).
        self._reached_at: tuple[int, str] | None = None
        self.setup(indexes=indexes)

    def setup(self, *, indexes: bool = True) -> None:
        """Create the tracking row and the projections' tables, in one transaction.

        Views that another release built with a different version of a projection are not
        mixed with this release's rows: every table of this runner's projections is dropped
        (they share one tracking position), the position goes back to 0 and the runner
        rebuilds them from the log. PostgreSQL cannot create one table in two sessions at
        once, so the caller runs one setup at a time across processes (api/services.py holds
        an advisory lock): a server starting during another's setup waits, then finds the
        versions current and rebuilds nothing. SQLite's write lock serializes them anyway."""
        with self.views.transaction() as cur:
            cur.execute(TRACKING_DDL)
            cur.execute(VERSIONS_DDL)
            changed = self._changed_versions(cur)
            if changed:
                for projection in self.projections:
                    retired = getattr(projection, "retired_tables", ())
                    for table in (*(t.name for t in projection.tables), *retired):
                        cur.execute(f"DROP TABLE IF EXISTS {table}")
                cur.execute("UPDATE view_tracking SET position = 0 WHERE name = ?", (self.name,))
            for projection in self.projections:
                projection.create_tables(cur, indexes=indexes)
            cur.execute("SELECT position FROM view_tracking WHERE name = ?", (self.name,))
            row = cur.fetchone()
            if row is None:
                cur.execute(
                    "INSERT INTO view_tracking (name, position) VALUES (?, 0)", (self.name,)
                )
            cur.executemany(
                "INSERT INTO view_versions (projection, version) VALUES (?, ?)"
                " ON CONFLICT (projection) DO UPDATE SET version = excluded.version",
                [(p.name, version_of(p)) for p in self.projections],
            )
        if changed:
            log.warning(
                "read-model versions changed (%s): the views of runner %s (%s) were dropped"
                " and are rebuilt from the log from position 0",
                ", ".join(f"{name} stored {was} -> code {now}" for name, was, now in changed),
                self.name,
                ", ".join(p.name for p in self.projections),
            )
        # Folds carried from an earlier page describe rows a rebuild has just dropped.
        self._carried, self._carried_position = None, -1
        self.position = self.tracked_position()

    def _changed_versions(self, cur: Any) -> list[tuple[str, int, int]]:
        """Each projection whose stored views another version built: (name, stored, code).
        Views built before versions were stored are version 1; no views yet need nothing."""
        cur.execute("SELECT position FROM view_tracking WHERE name = ?", (self.name,))
        row = cur.fetchone()
        legacy = 1 if row is not None and int(row["position"]) > 0 else None
        changed = []
        for projection in self.projections:
            cur.execute(
                "SELECT version FROM view_versions WHERE projection = ?", (projection.name,)
            )
            found = cur.fetchone()
            stored = int(found["version"]) if found is not None else legacy
            if stored is not None and stored != version_of(projection):
                changed.append((projection.name, stored, version_of(projection)))
        return changed

    def create_indexes(self) -> None:
        """The secondary indexes a runner set up without them (a replay) leaves out."""
        with self.views.transaction() as cur:
            for projection in self.projections:
                projection.create_tables(cur, indexes=True)

    def tracked_position(self) -> int:
        with self.views.read() as cur:
            cur.execute("SELECT position FROM view_tracking WHERE name = ?", (self.name,))
            row = cur.fetchone()
        return int(row["position"]) if row else 0

    def run_once(self) -> int:
        """Apply one page; return how many events it applied (0 when caught up)."""
        start = self.tracked_position()
        with paused_gc():  # reading the page too: its thousands of records hold no cycles
            entries = self.source(start, self.batch_size)
            if not entries:
                self.position = start
                return 0
            self.apply_page(entries, start)
        self._reached_at = (entries[-1].position, entries[-1].recorded_at)
        self._advance(entries[-1].position)
        return len(entries)

    def apply_page(self, entries: Sequence[LogEntry], start: int) -> None:
        """Fold `entries` (the log after `start`) into the views and move the tracking row
        from `start` to the last entry, in one transaction."""
        # The folds of this runner's last page know the rows as they are stored, unless
        # something else moved the views since (another runner, a failed page).
        carried = self._carried if start == self._carried_position else None
        self._carried = None
        with paused_gc(), self.views.transaction() as cur:
            folds = self._begin(cur, carried)
            if self.after_event is None:
                self._fold(entries, folds)
            else:
                self._fold_each(entries, folds, self.after_event)
            self._write(
                cur, [w for fold in folds for w in fold.flush()], start, entries[-1].position
            )
        self._carried, self._carried_position = folds, entries[-1].position

    def _begin(self, cur: Any, carried: list[PageFold] | None) -> list[PageFold]:
        return [
            projection.begin(cur, carried[i] if carried else None)
            for i, projection in enumerate(self.projections)
        ]

    def _write(self, cur: Any, writes: Writes | list[Any], start: int, end: int) -> None:
        """A page's rows, and the tracking row moved from `start` to `end` (compare-and-set)."""
        for sql, rows in writes:
            cur.executemany(sql, rows)
        cur.execute(
            "UPDATE view_tracking SET position = ? WHERE name = ? AND position = ?",
            (end, self.name, start),
        )
        if cur.rowcount != 1:
            raise RuntimeError(f"{self.name}: another runner moved the position from {start}")

    def replay(self, progress: Callable[[int], None] | None = None) -> int:
        """Catch up like `catch_up`, folding the next page while a writer thread commits the
        one before (SQLite and psycopg leave the interpreter lock while they work), for a
        replay into a scratch store that only this runner writes.

        Folding page n reads the store only for rows page n-1 did not touch (those it takes
        from page n-1's folds), and page n-2 has committed before page n-1 is handed over:
        every read sees what one-page-at-a-time would. Each page still commits with its
        tracking row."""
        writer = PageWriter(self.views, self._write)
        total = 0
        start = self.tracked_position()
        carried = self._carried if start == self._carried_position else None
        self._carried = None
        try:
            with self.views.reader() as reader:
                while True:
                    with paused_gc():
                        entries = self.source(start, self.batch_size)
                        if not entries:
                            break
                        folds = self._begin(reader, carried)
                        self._fold(entries, folds)
                        writes = [w for fold in folds for w in fold.flush()]
                    end = entries[-1].position
                    writer.submit(writes, start, end)
                    carried, start = folds, end
                    self.position = end  # folded and handed over (for progress reports)
                    total += len(entries)
                    if progress is not None:
                        progress(total)
                writer.finish()
        finally:
            writer.stop()
        self._carried, self._carried_position = carried, start
        self._advance(start)
        return total

    def _fold(self, entries: Sequence[LogEntry], folds: list[PageFold]) -> None:
        """Decode the page (only events some projection reads), let each fold read ahead what
        it will need from the store in a few queries (`prefetch`, optional), then apply."""
        routes = self._routes
        decode = self.decode
        page: list[tuple[tuple[int, ...], LogEntry, DomainEvent]] = []
        for entry in entries:
            targets = routes.get(entry.topic)
            if targets is None:
                targets = self._route(entry)
            if targets:
                page.append((targets, entry, decode(entry)))
        for i, fold in enumerate(folds):
            prefetch = getattr(fold, "prefetch", None)
            if prefetch is not None:
                prefetch([(entry, event) for targets, entry, event in page if i in targets])
        applies = [fold.apply for fold in folds]
        for targets, entry, event in page:
            for i in targets:
                applies[i](entry, event)

    def _fold_each(
        self, entries: Sequence[LogEntry], folds: list[PageFold], after: Callable[[], None]
    ) -> None:
        """The same fold, one event at a time, calling `after` after each (`after_event`)."""
        for entry in entries:
            self._fold([entry], folds)
            after()

    def _route(self, entry: LogEntry) -> tuple[int, ...]:
        """Which projections read events of this entry's topic (decided once per topic)."""
        event = self.decode(entry)
        targets = tuple(i for i, p in enumerate(self.projections) if isinstance(event, p.handles))
        self._routes[entry.topic] = targets
        return targets

    def catch_up(self, progress: Callable[[int], None] | None = None) -> int:
        total = 0
        while n := self.run_once():
            total += n
            if progress is not None:
                progress(total)
        return total

    def _advance(self, position: int) -> None:
        with self._advanced:
            self.position = position
            self._advanced.notify_all()

    def reached(self) -> int:
        """The log position the views reflect now: this runner's when it runs here, else
        (another process feeds the views: `project --follow`) their tracking row."""
        running_here = self._thread is not None and self.leading
        return self.position if running_here else self.tracked_position()

    def lag_seconds(self, head_position: int, head_recorded_at: str, position: int) -> float:
        """How far the views at `position` are behind the log head in recorded time: the
        head's `recorded_at` minus that of the last event the views applied (of the log's
        first event when they applied none); 0 once they reached the head."""
        if position >= head_position:
            return 0.0
        reached = self._reached_at
        if reached is None or reached[0] != position:
            # The event at `position` is the first one after `position - 1` (0: the first).
            entries = self.source(max(position - 1, 0), 1)
            if not entries:
                return 0.0
            reached = (position, entries[0].recorded_at)
            if entries[0].position == position:
                self._reached_at = reached
        behind = datetime.fromisoformat(head_recorded_at) - datetime.fromisoformat(reached[1])
        return max(behind.total_seconds(), 0.0)

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
                self._wake.set()  # read now, even when the caller will not wait (timeout 0)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
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
        if self.leader is not None:
            self.leader.release()

    def leads(self) -> bool:
        """Whether this process fed the views at its last round (what the webhook dispatcher
        asks: one process delivers, the one that feeds)."""
        return self.leading

    def _lead(self) -> bool:
        """Whether this process feeds the views now; logs when that changes."""
        leading = self.leader is None or self.leader.holds()
        if leading != self.leading:
            self.leading = leading
            if leading:
                log.info("runner %s: this process feeds the views now", self.name)
            else:
                log.info(
                    "runner %s: another process feeds the views; this one follows its"
                    " position and takes over when it stops",
                    self.name,
                )
        return leading

    def _loop(self) -> None:
        backoff = 0.1
        while not self._stop.is_set():
            try:
                if not self._lead():
                    # Another process feeds the views: follow its position (reads wait on it).
                    self._advance(self.tracked_position())
                    self.last_error = None
                    self._wake.wait(self.poll_interval)
                    self._wake.clear()
                    continue
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
