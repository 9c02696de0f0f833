"""How the ledger replays its read models: the log, the runners, the scratch store, and a
second process. Shared by `customs-ledger replay`, `POST /v1/audit/replay` and the
benchmarks; projections.replay does the rebuilding and comparing.

A replay of a long log on a machine with a CPU to spare rebuilds the trace graph, the
declarations and the enterprises in a second process (`ReplayHelper` and the `worker` below,
over ledger.helper_process) while this one rebuilds the inventory: the two halves read the
same log, write their own tables, and meet in the digests (docs/decisions/0011).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Collection, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ledger.helper_process import (
    HelperFailed,
    HelperProcess,
    peak_rss_kb,
    read_job,
    say_done,
    say_position,
)

if TYPE_CHECKING:
    from api.services import Services
    from ledger.application import LedgerApplication
    from projections.replay import ReplayLog, ReplayReport
    from projections.runner import CatchUpRunner, LogSource
    from projections.store import ViewStore

WAIT_SECONDS = 10.0  # how long a full replay waits for the live views to reach the log head
# What a helper process rebuilds: about half of a replay's work (the inventory is the other).
HELPED = ("declarations", "enterprises", "trace")
_WORKER = "from api.replaying import worker; worker()"


class ReplayFailed(HelperFailed):
    """The helper process could not rebuild its read models (its error is in the message)."""


@contextlib.contextmanager
def scratch_views(services: Services) -> Iterator[ViewStore]:
    """A scratch store beside the live views: never the live views themselves."""
    from projections.scratch import scratch_postgres, scratch_sqlite
    from projections.store import PostgresViews, SQLiteViews

    views = services.views
    if isinstance(views, SQLiteViews):
        with scratch_sqlite(views.path) as scratch:
            yield scratch
    else:
        assert isinstance(views, PostgresViews)
        with scratch_postgres(views.conninfo) as scratch:
            yield scratch


def replay_runners(
    app: LedgerApplication,
) -> Callable[[ViewStore, LogSource, Collection[str]], CatchUpRunner]:
    """How a replay builds its runner: every read model but those left out, fed from `page`,
    with no secondary index (the scratch store is digested and dropped, never queried)."""
    from api.services import read_models_runner

    return lambda views, page, exclude: read_models_runner(
        "replay", views, app, source=page, indexes=False, exclude=exclude
    )


def replay_log(app: LedgerApplication) -> ReplayLog:
    """The ledger's log as a replay reads it."""
    from ledger.store import last_at_or_before
    from projections.replay import ReplayLog

    def last(position: int | None, until: str | None) -> tuple[int, int] | None:
        record = last_at_or_before(app.log, position, until)
        return (record.position, record.sequence) if record is not None else None

    return ReplayLog(page=log_page(app), last=last)


def log_page(app: LedgerApplication) -> Callable[[int, int, Collection[str] | None], Any]:
    """A page of the log as projections read it: without the chain columns where the store
    can (SQLite's `select_entries`), else its records."""
    entries = getattr(app.log, "select_entries", None)
    if entries is not None:
        return lambda after, limit, topics: entries(after, limit, topics)
    return lambda after, limit, topics: app.log.select_log(after, limit, topics=topics)


def helper_for(services: Services, parallel: bool | None) -> ReplayHelper | None:
    """A helper process for HELPED when `parallel` (None: when this machine has a
    CPU to spare and the log is not an in-memory database)."""
    database = services.database
    if parallel is False or (database.kind == "sqlite" and _in_memory(database.path)):
        return None
    if parallel is None:
        from ledger.machine import cpu_to_spare

        if not cpu_to_spare():
            return None
    return ReplayHelper(database.url)


def _in_memory(path: str) -> bool:
    return path.startswith(":memory:") or "mode=memory" in path


def run_replay(
    services: Services,
    as_of: datetime | None = None,
    *,
    wait_seconds: float = WAIT_SECONDS,
    progress: Callable[[int, int], None] | None = None,
    parallel: bool | None = None,
) -> tuple[ReplayReport, int]:
    """Replay into a scratch store and compare: (the report, the log head's position).

    A full replay compares at the live views' position; it first gives them `wait_seconds`
    to reach the log head (the server's runner, or a `project --follow` process, feeds them).
    `parallel`: rebuild HELPED in a second process (None: when it pays)."""
    from projections.replay import replay

    app = services.app
    head = app.log.head()
    log_position = head.position if head else 0
    if as_of is None:
        services.runner.wait_for(log_position, wait_seconds)
    with scratch_views(services) as scratch:
        report = replay(
            services.views,
            scratch,
            replay_runners(app),
            replay_log(app),
            as_of=as_of,
            wait_for_live=lambda position: services.runner.wait_for(position, wait_seconds),
            progress=progress,
            live_name=services.runner.name,
            helper=helper_for(services, parallel),
        )
    if as_of is None:
        compare_keys(services, report)
    if as_of is None and report.position < log_position:
        report.notes.append(
            f"the live views reflect the log up to position {report.position}, the log is at "
            f"{log_position}: both were compared at {report.position} (the server or "
            "`customs-ledger project` brings the views up to date)"
        )
    return report, log_position


def compare_keys(services: Services, report: ReplayReport) -> None:
    """The key table rebuilt from the log's key streams and compared with the live one, as
    the read model `api_keys` (a full replay only: the table has no past to compare with)."""
    from ledger.key_audit import KeyCheck, digest, row_values
    from projections.digest import Difference, read_model_digest
    from projections.replay import ReadModelResult, TableResult

    check = KeyCheck(services.keys.table, services.app.log)
    mismatches = check.mismatches()
    live = digest(services.keys.table.rows())
    replayed = digest(check.fold.states.values())
    equal = not mismatches and live == replayed
    model = ReadModelResult(
        read_model_digest({"api_keys": live}),
        read_model_digest({"api_keys": replayed}),
        equal,
        {"api_keys": TableResult(live, replayed, equal)},
    )
    report.projections["api_keys"] = model
    report.differences.extend(
        Difference("api_keys", {"name": m.name}, row_values(m.row), row_values(m.state))
        for m in mismatches
    )


def answer(report: ReplayReport, log_position: int) -> dict[str, Any]:
    """The report as POST /v1/audit/replay answers it."""
    import dataclasses

    body = dataclasses.asdict(report)
    body["seconds"] = round(report.seconds, 3)
    body["rebuild_seconds"] = round(report.rebuild_seconds, 3)
    body["equal"] = report.equal
    body["log_position"] = log_position
    return body


# -- the helper process -----------------------------------------------------------------------


class ReplayHelper:
    """Rebuilds the read models in HELPED (the trace graph, declarations and enterprises) in a
    helper process (ledger.helper_process, running `worker`) into the scratch store: on
    PostgreSQL into the same schema, on SQLite into a file beside the scratch file that the
    scratch store then attaches. It reports its position as it goes."""

    names: tuple[str, ...] = HELPED

    def __init__(self, database_url: str, batch_size: int | None = None) -> None:
        self.database_url = database_url
        self.batch_size = batch_size
        self._process: HelperProcess | None = None
        self._file: str | None = None

    def prepare(self) -> None:
        """Start the process now (its interpreter and imports take a while); it waits for its
        job, which `start` sends. A full replay prepares it before digesting the live views."""
        if self._process is None:
            self._process = HelperProcess(_WORKER, "replay-helper")
            self._process.spawn()

    def start(self, scratch: ViewStore, up_to: int) -> None:
        from projections.replay import REPLAY_BATCH
        from projections.store import PostgresViews, SQLiteViews

        job: dict[str, Any] = {
            "database": self.database_url,
            "names": list(self.names),
            "up_to": up_to,
            "batch": self.batch_size or REPLAY_BATCH,
        }
        if isinstance(scratch, SQLiteViews):
            self._file = f"{scratch.path}-{'-'.join(self.names)}"
            job["scratch"] = {"kind": "sqlite", "path": self._file}
        else:
            assert isinstance(scratch, PostgresViews)
            job["scratch"] = {
                "kind": "postgresql",
                "conninfo": scratch.conninfo,
                "schema": scratch.schema,
            }
        self.prepare()
        assert self._process is not None
        self._process.send(job)

    def position(self) -> int:
        return self._process.position() if self._process is not None else 0

    @property
    def outcome(self) -> dict[str, Any] | None:
        """What the process said when it was done (events, seconds, peak_rss_kb)."""
        return self._process.outcome if self._process is not None else None

    def finish(self, scratch: ViewStore, tick: Callable[[], None] | None = None) -> None:
        """Wait until the process has its tables committed (it need not be gone: `stop` reaps
        it); raises ReplayFailed when it ended without them."""
        from projections.store import SQLiteViews

        assert self._process is not None
        try:
            self._process.wait(tick)
        except HelperFailed as e:
            # HelperFailed's message is quoted as `{detail}`, translated in turn (the CLI's
            # QUOTED_MESSAGES hold it: api/cli_replay.py).
            names, detail = ", ".join(self.names), str(e)
            raise ReplayFailed(f"the replay's second process ({names}) failed: {detail}") from None
        if isinstance(scratch, SQLiteViews) and self._file is not None:
            scratch.attach(self._file)

    def stop(self) -> None:
        """Reap the process: one that is done ends by itself (in the background, so that the
        replay need not wait for it to let go of its memory); any other is killed."""
        if self._process is not None:
            self._process.stop()


def worker() -> None:
    """The helper process: rebuild the job's read models and say so (its position after each
    page, done at the end, with the events, seconds and peak memory)."""
    from api.services import read_models_runner
    from ledger.application import LedgerApplication
    from ledger.database import parse_database_url
    from projections.replay import BoundedPages, topics_of
    from projections.runner import paused_gc
    from projections.scratch import unlog_tables
    from projections.store import PostgresViews, SQLiteViews

    job = read_job()
    if job is None:
        return  # prepared, then not needed (a short log, or this side failed first)
    app = LedgerApplication(parse_database_url(job["database"]))
    spec = job["scratch"]
    views: SQLiteViews | PostgresViews
    if spec["kind"] == "sqlite":
        views = SQLiteViews(spec["path"], scratch=True)
    else:
        views = PostgresViews(spec["conninfo"], schema=spec["schema"], pool_size=2, scratch=True)
    pages = BoundedPages(log_page(app), int(job["up_to"]))

    try:
        started = time.perf_counter()
        runner = read_models_runner(
            "replay-" + "-".join(job["names"]),
            views,
            app,
            source=pages,
            indexes=False,
            only=job["names"],
        )
        pages.topics = topics_of(runner.projections)
        unlog_tables(views)
        runner.batch_size = int(job["batch"])

        def say(_: int) -> None:
            say_position(runner.position)

        with paused_gc():  # the whole rebuild, as in projections.replay
            events = runner.replay(say) if views.kind == "postgresql" else runner.catch_up(say)
        say_done(
            events=events,
            seconds=time.perf_counter() - started,
            position=pages.end,
            peak_rss_kb=peak_rss_kb(),
        )
    finally:
        views.close()
        app.close()
