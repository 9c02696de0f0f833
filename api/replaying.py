"""How the ledger replays its read models: the log, the runners, the scratch store, and a
second process. Shared by `customs-ledger replay`, `POST /v1/audit/replay` and the
benchmarks; projections.replay does the rebuilding and comparing.

A replay of a long log on a machine with a CPU to spare rebuilds the trace graph, the
declarations and the enterprises in a second process (`ReplayHelper`, the `worker` below)
while this one rebuilds the inventory: the two halves read the same log, write their own
tables, and meet in the digests (docs/decisions/0011).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Collection, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

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


class ReplayFailed(RuntimeError):
    """The helper process could not rebuild its read models (its error is in the message)."""


@contextlib.contextmanager
def scratch_views(services: Services) -> Iterator[ViewStore]:
    """A scratch store beside the live views: never the live views themselves."""
    from projections.replay import scratch_postgres, scratch_sqlite
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
    if as_of is None and report.position < log_position:
        report.notes.append(
            f"the live views reflect the log up to position {report.position}, the log is at "
            f"{log_position}: both were compared at {report.position} (the server or "
            "`customs-ledger project` brings the views up to date)"
        )
    return report, log_position


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
    second process (`python -c` running `worker`) into the scratch store: on PostgreSQL into
    the same schema, on SQLite into a file beside the scratch file that the scratch store
    then attaches. It reports its position on stdout."""

    names = HELPED

    def __init__(self, database_url: str, batch_size: int | None = None) -> None:
        self.database_url = database_url
        self.batch_size = batch_size
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._position = 0
        self._outcome: dict[str, Any] | None = None
        self._done = threading.Event()
        self._stderr: list[str] = []
        self._file: str | None = None

    def prepare(self) -> None:
        """Start the process now (its interpreter and imports take a while); it waits for its
        job, which `start` sends. A full replay prepares it before digesting the live views."""
        if self._process is not None:
            return
        # The job (with any database password) goes on stdin, never on the command line.
        self._process = subprocess.Popen(  # noqa: S603 - this Python, our own code
            [sys.executable, "-c", _WORKER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

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
        process = self._process
        assert process is not None and process.stdin is not None
        try:
            process.stdin.write(json.dumps(job))
            process.stdin.close()
        except OSError:  # it died already: `finish` says how
            pass
        self._reader = threading.Thread(target=self._read, name="replay-helper", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        process = self._process
        assert process is not None and process.stdout is not None and process.stderr is not None
        errors = threading.Thread(target=lambda: self._stderr.extend(process.stderr or ()))
        errors.start()
        for line in process.stdout:
            with contextlib.suppress(ValueError):
                message = json.loads(line)
                if "position" in message:
                    self._position = int(message["position"])
                if message.get("done"):
                    self._outcome = message
                    self._done.set()
        self._done.set()  # its output ended: done, or dead
        errors.join()

    def position(self) -> int:
        return self._position

    @property
    def outcome(self) -> dict[str, Any] | None:
        """What the process said when it was done (events, seconds, peak_rss_kb)."""
        return self._outcome

    def finish(self, scratch: ViewStore, tick: Callable[[], None] | None = None) -> None:
        from projections.store import SQLiteViews

        process, reader = self._process, self._reader
        assert process is not None and reader is not None
        # Its tables are committed when it says it is done: it need not be gone (letting go
        # of a replay's objects takes a moment, and `stop` reaps it).
        while not self._done.wait(0.5):
            if tick is not None:
                tick()
        if self._outcome is None:
            reader.join()
            process.wait()
            detail = "".join(self._stderr).strip().splitlines()
            last = detail[-1] if detail else f"exit status {process.returncode}"
            names = ", ".join(self.names)
            raise ReplayFailed(f"the replay's second process ({names}) failed: {last}")
        assert self._outcome is not None
        if isinstance(scratch, SQLiteViews) and self._file is not None:
            scratch.attach(self._file)

    def stop(self) -> None:
        """Reap the process: one that is done ends by itself (in the background, so that the
        replay need not wait for it to let go of its memory); any other is killed."""
        process = self._process
        if process is None:
            return
        if self._outcome is not None:
            threading.Thread(target=self._reap, name="replay-helper-reap", daemon=True).start()
            return
        if process.poll() is None:
            process.kill()
        self._reap()

    def _reap(self) -> None:
        process = self._process
        assert process is not None
        process.wait()
        if self._reader is not None:
            self._reader.join(timeout=5)
        for stream in (process.stdin, process.stdout, process.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


def worker() -> None:
    """The helper process: rebuild the job's read models (JSON on stdin) and say so on stdout
    (`{"position": P}` after each page, `{"done": true, ...}` at the end)."""
    from api.services import read_models_runner
    from ledger.application import LedgerApplication
    from ledger.database import parse_database_url
    from projections.replay import BoundedPages, topics_of, unlog_tables
    from projections.runner import paused_gc
    from projections.store import PostgresViews, SQLiteViews

    text = sys.stdin.read()
    if not text.strip():
        return  # prepared, then not needed (a short log, or this side failed first)
    job = json.loads(text)
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
            print(json.dumps({"position": runner.position}), flush=True)

        with paused_gc():  # the whole rebuild, as in projections.replay
            events = runner.replay(say) if views.kind == "postgresql" else runner.catch_up(say)
        done = {
            "done": True,
            "events": events,
            "seconds": time.perf_counter() - started,
            "position": pages.end,
            "peak_rss_kb": _peak_rss_kb(),
        }
        print(json.dumps(done), flush=True)
    finally:
        views.close()
        app.close()


def _peak_rss_kb() -> int | None:
    """This process's peak resident set (VmHWM), where /proc says it."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return None
