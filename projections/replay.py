"""Replay: rebuild every read model from the log into a scratch store and compare with live.

A full replay compares at one log position: the live views are read from one snapshot taken
first (their tracked position P and every table's digest), the log is replayed up to P into
fresh tables, and each read model's digest is compared; where they differ, the first rows that
differ are named. A replay `as_of` T rebuilds the read models from the log up to the last event
recorded at or before T; the live views cannot answer as of T except the inventory, whose
history rows give books, items' balances, stock history, entries and movements as they stood
(`Projection.tables_as_of`): those are compared, the rest is reported with no live digest.

The scratch store is a temporary SQLite file next to the views (no fsync, thrown away) or a
temporary PostgreSQL schema (unlogged tables, dropped); the live views are only read.
One replay at a time per process (`ReplayBusy`): it is an auditor's tool, and a long one.

A rebuild may hand some read models to a `Helper`, another process that rebuilds them from the
same log into the scratch store (on SQLite, a file of its own the scratch store attaches) while
this one rebuilds the rest: the read models read no table but their own, so the two halves
meet only in the digests. Each side reads only the events of the topics its projections read
(docs/decisions/0011).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from projections.columns import utc_text
from projections.digest import Difference, differences, read_model_digest, table_digest
from projections.folding import LogEntry, Projection, TableSource, ViewTable
from projections.read_models import read_model_projections
from projections.runner import CatchUpRunner, LogSource, paused_gc
from projections.scratch import unlog_tables
from projections.store import Snapshot, ViewStore

REPLAY_BATCH = 20_000  # events per page: large pages, bounded memory (pages are streamed)
LIVE_TRACKING = "read-models"  # the live runner's tracking row
_RUNNING = threading.Lock()

HELPER_MIN_EVENTS = 50_000  # below this, starting a second process costs more than it saves


@dataclass(frozen=True)
class ReplayLog:
    """What a replay reads of the log."""

    # (after, limit, topics or None for every topic) -> the next events in log order
    page: Callable[[int, int, Collection[str] | None], Sequence[LogEntry]]
    # (up to position, up to recorded_at; either None) -> (position, sequence) of the last
    # event within both bounds, None when there is none
    last: Callable[[int | None, str | None], tuple[int, int] | None]


# (scratch views, source, read models left out) -> a runner feeding the other read models
RunnerFactory = Callable[[ViewStore, LogSource, Collection[str]], CatchUpRunner]


class Helper(Protocol):
    """Read models rebuilt by another process into the same scratch store."""

    @property
    def names(self) -> tuple[str, ...]:
        """The read models it rebuilds (this process leaves them out)."""
        ...

    def prepare(self) -> None:
        """Get ready (start the process) before the rebuild begins; `start` does it if not."""
        ...

    def start(self, scratch: ViewStore, up_to: int) -> None:
        """Begin rebuilding from the start of the log up to position `up_to`."""
        ...

    def position(self) -> int:
        """How far it has come."""
        ...

    def finish(self, scratch: ViewStore, tick: Callable[[], None] | None = None) -> None:
        """Wait until it is done (calling `tick` now and then) and make its tables part of
        `scratch`; raise if it failed."""
        ...

    def stop(self) -> None:
        """Stop it if it still runs (this side failed)."""
        ...


class BoundedPages:
    """The log up to position `end` a page at a time, as a runner reads it: only `topics`
    (those of the projections it feeds, set once the runner exists; None: every topic)."""

    def __init__(
        self, read: Callable[[int, int, Collection[str] | None], Sequence[LogEntry]], end: int
    ) -> None:
        self.read, self.end = read, end
        self.topics: Collection[str] | None = None

    def __call__(self, after: int, limit: int) -> Sequence[LogEntry]:
        if after >= self.end:
            return []
        entries = self.read(after, limit, self.topics)
        if entries and entries[-1].position > self.end:
            entries = [e for e in entries if e.position <= self.end]
        return entries


def topics_of(projections: Sequence[Any]) -> frozenset[str]:
    """The stored topics of every event class the projections read (subclasses included, and
    any old topic registered for one of those classes with eventsourcing's register_topic)."""
    from eventsourcing import utils

    handled: set[type] = set()
    todo = [c for p in projections for c in p.handles]
    while todo:
        cls = todo.pop()
        if cls not in handled:
            handled.add(cls)
            todo.extend(cls.__subclasses__())
    topics = {utils.get_topic(c) for c in handled}
    registered = dict(getattr(utils, "_topic_cache", {}))
    topics.update(t for t, obj in registered.items() if obj in handled)
    return frozenset(topics)


class ReplayBusy(RuntimeError):
    """Another replay is running in this process."""


@dataclass
class TableResult:
    live_digest: str | None
    replayed_digest: str
    equal: bool | None


@dataclass
class ReadModelResult:
    live_digest: str | None
    replayed_digest: str
    equal: bool | None
    tables: dict[str, TableResult]


@dataclass
class ReplayReport:
    events_replayed: int
    position: int  # the last log position replayed (the live views' position when compared)
    as_of: str | None
    seconds: float  # the whole replay: rebuild, digests, comparison
    rebuild_seconds: float
    projections: dict[str, ReadModelResult]
    differences: list[Difference] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def equal(self) -> bool:
        """No read model that could be compared differs."""
        return all(r.equal is not False for r in self.projections.values())


Progress = Callable[[int, int], None]  # (position reached, last position to reach)


def replay(
    live: ViewStore,
    scratch: ViewStore,
    make_runner: RunnerFactory,
    log: ReplayLog,
    *,
    as_of: datetime | None = None,
    wait_for_live: Callable[[int], bool] | None = None,
    progress: Progress | None = None,
    batch_size: int = REPLAY_BATCH,
    live_name: str = LIVE_TRACKING,
    helper: Helper | None = None,
    read_models: Sequence[Projection] | None = None,
) -> ReplayReport:
    """Rebuild every read model into `scratch` and compare with `live` (see the module doc).

    `wait_for_live(position)` waits (bounded) until the live views reach a position; with
    `as_of` it decides whether the live inventory can be compared. `helper`: see `rebuild`.
    `read_models`: the projections whose tables are compared (None: every read model's)."""
    if not _RUNNING.acquire(blocking=False):
        if helper is not None:
            helper.stop()
        raise ReplayBusy("a replay is already running in this process")
    models = list(read_models) if read_models is not None else read_model_projections()
    work = _Rebuild(scratch, make_runner, log, progress, batch_size, helper)
    try:
        if as_of is None:
            return _full(live, work, live_name, models)
        return _as_of(live, work, live_name, models, as_of, wait_for_live)
    finally:
        if helper is not None:
            helper.stop()
        _RUNNING.release()


@dataclass(frozen=True)
class _Rebuild:
    """What a replay rebuilds with (`rebuild`'s arguments)."""

    scratch: ViewStore
    make_runner: RunnerFactory
    log: ReplayLog
    progress: Progress | None
    batch_size: int
    helper: Helper | None

    def run(self, *, up_to: int | None = None, until: str | None = None) -> tuple[int, int, float]:
        return rebuild(
            self.scratch,
            self.make_runner,
            self.log,
            up_to=up_to,
            until=until,
            progress=self.progress,
            batch_size=self.batch_size,
            helper=self.helper,
        )


def _full(
    live: ViewStore, work: _Rebuild, live_name: str, models: list[Projection]
) -> ReplayReport:
    started = time.perf_counter()
    if work.helper is not None:
        work.helper.prepare()  # its start-up overlaps with the live digests
    with live.snapshot() as seen:
        row = seen.one("SELECT position FROM view_tracking WHERE name = ?", (live_name,))
        position = int(row[0]) if row else 0
        live_digests = {
            t.name: table_digest(seen, TableSource(t)) for p in models for t in p.tables
        }
        events, _last, rebuild_seconds = work.run(up_to=position)
        report = ReplayReport(
            events_replayed=events,
            position=position,
            as_of=None,
            seconds=0.0,
            rebuild_seconds=rebuild_seconds,
            projections={},
        )
        with work.scratch.snapshot() as replayed:
            for projection in models:
                tables = {t.name: t for t in projection.tables}
                result = _compare(replayed, tables, {t: live_digests[t] for t in tables})
                report.projections[projection.name] = result
                for name, r in result.tables.items():
                    if r.equal is False:
                        source = TableSource(tables[name])
                        report.differences += differences(seen, source, replayed, source)
    report.seconds = time.perf_counter() - started
    return report


def _as_of(
    live: ViewStore,
    work: _Rebuild,
    live_name: str,
    models: list[Projection],
    as_of: datetime,
    wait_for_live: Callable[[int], bool] | None,
) -> ReplayReport:
    started = time.perf_counter()
    events, position, rebuild_seconds = work.run(until=utc_text(as_of))
    report = ReplayReport(
        events_replayed=events,
        position=position,
        as_of=as_of.isoformat(),
        seconds=0.0,
        rebuild_seconds=rebuild_seconds,
        projections={},
    )
    if wait_for_live is not None:
        wait_for_live(position)
    with live.snapshot() as seen, work.scratch.snapshot() as replayed:
        row = seen.one("SELECT position FROM view_tracking WHERE name = ?", (live_name,))
        live_position = int(row[0]) if row else 0
        for projection in models:
            name = projection.name
            tables = {t.name: t for t in projection.tables}
            as_of_sources = getattr(projection, "tables_as_of", None)
            if as_of_sources is None:  # the live views keep no history of it
                report.projections[name] = _compare(replayed, tables, dict.fromkeys(tables))
                continue
            if live_position < position:
                report.notes.append(
                    f"the live views are at position {live_position}, before the cut "
                    f"({position}): the {name} was not compared"
                )
                report.projections[name] = _compare(replayed, tables, dict.fromkeys(tables))
                continue
            sources: dict[str, TableSource] = as_of_sources(position)
            live_digests: dict[str, str | None] = {
                t: table_digest(seen, sources[t]) if t in sources else None for t in tables
            }
            result = _compare(replayed, tables, live_digests, compared=sources)
            report.projections[name] = result
            for table, r in result.tables.items():
                if r.equal is False:
                    report.differences += differences(
                        seen, sources[table], replayed, TableSource(tables[table])
                    )
    report.seconds = time.perf_counter() - started
    return report


def _compare(
    replayed: Snapshot,
    tables: dict[str, ViewTable],
    live_digests: dict[str, str | None],
    compared: Collection[str] | None = None,
) -> ReadModelResult:
    """A read model's result: each table's replayed digest against its live one (None: the
    live views cannot say). The read model's digests cover the tables compared (all of them,
    or `compared`); with nothing live to compare, its live digest and `equal` are None."""
    results = {
        t: TableResult(
            live_digest=d,
            replayed_digest=(replayed_digest := table_digest(replayed, TableSource(tables[t]))),
            equal=None if d is None else d == replayed_digest,
        )
        for t, d in live_digests.items()
    }
    covered = [t for t in results if compared is None or t in compared]
    replayed_digest = read_model_digest({t: results[t].replayed_digest for t in covered})
    if any(results[t].live_digest is None for t in covered):
        return ReadModelResult(None, replayed_digest, None, results)
    live_digest = read_model_digest({t: str(results[t].live_digest) for t in covered})
    return ReadModelResult(live_digest, replayed_digest, live_digest == replayed_digest, results)


def rebuild(
    scratch: ViewStore,
    make_runner: RunnerFactory,
    log: ReplayLog,
    *,
    up_to: int | None = None,
    until: str | None = None,
    progress: Progress | None = None,
    batch_size: int = REPLAY_BATCH,
    pipeline: bool | None = None,
    helper: Helper | None = None,
) -> tuple[int, int, float]:
    """Feed fresh read models in `scratch` from the start of the log, up to position `up_to`
    and/or the last event recorded at or before `until`: (events, last position, seconds).

    Each runner reads only the topics its projections read. With a `helper` (and a log of at
    least HELPER_MIN_EVENTS events to replay) the helper's read models are rebuilt by it, in
    another process, while this one rebuilds the others. With `pipeline` a writer thread
    commits each page while the next one is folded. By default on PostgreSQL only: there the
    writer waits on the server, out of the interpreter lock; SQLite's `executemany` needs the
    lock for every row it binds, and the two threads took turns at it (measured slower)."""
    if pipeline is None:
        pipeline = scratch.kind == "postgresql"
    started = time.perf_counter()
    try:
        last = log.last(up_to, until)
        end, events = last if last is not None else (0, 0)
        if helper is not None and events < HELPER_MIN_EVENTS:
            helper.stop()
            helper = None
        _rebuild(scratch, make_runner, log, end, progress, batch_size, pipeline, helper)
    finally:
        if helper is not None:
            helper.stop()  # done already, or this side failed: either way it runs no more
    if progress is not None:
        progress(end, end)
    return events, end, time.perf_counter() - started


def _rebuild(
    scratch: ViewStore,
    make_runner: RunnerFactory,
    log: ReplayLog,
    end: int,
    progress: Progress | None,
    batch_size: int,
    pipeline: bool,
    helper: Helper | None,
) -> None:
    pages = BoundedPages(log.page, end)
    runner = make_runner(scratch, pages, helper.names if helper is not None else ())
    pages.topics = topics_of(runner.projections)
    unlog_tables(scratch)
    runner.batch_size = batch_size
    report: Callable[[int], None] | None = None
    if progress is not None:
        if helper is not None:
            shown = helper
            report = lambda _: progress(min(runner.position, shown.position()), end)  # noqa: E731
        else:
            report = lambda _: progress(runner.position, end)  # noqa: E731
    if helper is not None:
        helper.start(scratch, end)
    with paused_gc():  # the whole rebuild: its pages hold no cycles (see paused_gc)
        runner.replay(report) if pipeline else runner.catch_up(report)
    if helper is not None:
        helper.finish(scratch, (lambda: report(0)) if report is not None else None)
