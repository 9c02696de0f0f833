"""P3: a full replay into every read model, against raw msgspec decoding of the same rows.

Stores of about 100k, 300k and 1M events (quick: 100k) are built as P5 builds its store
(bench.p5.build_store: real commands of the ledger's command layer, movement traffic). Each
replay runs in a child process (`python -m bench.p3 replay URL`), exactly as `customs-ledger
replay` rebuilds (the batched runner into a scratch store beside the views, pages of 20,000,
the trace graph, declarations and enterprises in a helper process: docs/decisions/0011), and
reports its events/s and the peak RSS of both processes together (VmHWM each: `os.wait4`'s
ru_maxrss of a forked child also counts the parent's memory at the fork). The reference, in
the same run: the same rows read from the store in log order and each state decoded by
msgspec.json into a dict (P6's and P5's reference). Linearity: events/s at the largest store
against events/s at 100k. On the largest store the server's own runner also builds the live
views from empty (durable, with every index), and `customs-ledger replay` is timed end to
end (both digests and the comparison). The replay on PostgreSQL is P7's (bench/p7.py: the
100k store's events copied into a new schema with `postgres_copy`, replayed with
`replay_in_child`, against `decode_rate_postgres`). A full run draws
docs/img/replay-throughput.png when matplotlib is there.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import ROOT, Config, Figure, Result, median, progress
from bench.postgres import PG_URL

P3_RATE = 100_000.0
P3_STRETCH = 200_000.0
P3_RSS_MB = 300.0
SIZES = (100_000, 300_000, 1_000_000)
PLOT = ROOT / "docs" / "img" / "replay-throughput.png"


# -- the child: one replay, timed --------------------------------------------------------------


def child_replay(url: str, parallel: bool = True) -> dict[str, Any]:
    """Rebuild every read model of the store at `url` into a scratch store, as the replay
    command does, and say how long it took (the parent measures the memory)."""
    from api.replaying import ReplayHelper, replay_log, replay_runners
    from api.services import open_views
    from ledger.application import LedgerApplication
    from ledger.database import parse_database_url
    from projections.replay import rebuild
    from projections.scratch import scratch_postgres, scratch_sqlite
    from projections.store import PostgresViews, SQLiteViews

    database = parse_database_url(url)
    app = LedgerApplication(database)
    live = open_views(database)
    try:
        scratch: contextlib.AbstractContextManager[SQLiteViews | PostgresViews]
        if isinstance(live, SQLiteViews):
            scratch = scratch_sqlite(live.path)
        else:
            assert isinstance(live, PostgresViews)
            scratch = scratch_postgres(live.conninfo)
        with scratch as views:
            helper = ReplayHelper(database.url) if parallel else None
            if helper is not None:
                # Its interpreter starts before the clock, as this one's did (a full replay
                # starts it before digesting the live views).
                helper.prepare()
                time.sleep(0.5)
            started, cpu = time.perf_counter(), time.process_time()
            events, position, _ = rebuild(
                views, replay_runners(app), replay_log(app), helper=helper
            )
            seconds = time.perf_counter() - started
            cpu = time.process_time() - cpu
    finally:
        live.close()
        app.close()
    return {
        "events": events,
        "position": position,
        "seconds": seconds,
        "cpu": cpu,
        "peak_rss_kb": _peak_rss_kb(),
        # The helper's own peak: the two processes' together are the replay's memory.
        "helper_peak_rss_kb": (helper.outcome or {}).get("peak_rss_kb") if helper else None,
    }


def _peak_rss_kb() -> int | None:
    """This process's peak resident set since its exec (VmHWM). The kernel's ru_maxrss of a
    child also counts the memory of the parent it was forked from (the benchmark, which has
    just built a million events), so it is not used when this is there."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


@dataclass
class Run:
    events: int
    seconds: float
    cpu: float
    rss_mb: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds


def replay_in_child(url: str) -> Run:
    """`python -m bench.p3 replay URL`, with its peak RSS (VmHWM, else os.wait4's)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.p3", "replay", url], cwd=ROOT, stdout=out, stderr=err
        )
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        text, stderr = out.read().decode(), err.read().decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"replay child exited {proc.returncode}: {stderr[-2000:]}")
    found = json.loads(text)
    peak_kb = (found["peak_rss_kb"] or usage.ru_maxrss) + (found["helper_peak_rss_kb"] or 0)
    return Run(found["events"], found["seconds"], found["cpu"], peak_kb / 1024)


# -- the references ----------------------------------------------------------------------------


def decode_rate_sqlite(path: str) -> float:
    from bench.p6 import read_and_decode

    started = time.perf_counter()
    n = read_and_decode(path)
    return n / (time.perf_counter() - started)


def decode_rate_postgres(conninfo: str, table: str) -> float:
    """The same rows read from PostgreSQL in log order, each state decoded into a dict."""
    import msgspec
    import psycopg

    decode = msgspec.json.Decoder(dict[str, Any]).decode
    n = 0
    started = time.perf_counter()
    with psycopg.connect(conninfo) as conn, conn.cursor(name="p3_reference") as cur:
        cur.execute(f"SELECT state FROM {table} ORDER BY notification_id")
        while rows := cur.fetchmany(10_000):
            for (state,) in rows:
                decode(state)
            n += len(rows)
    return n / (time.perf_counter() - started)


# -- PostgreSQL: the same events in a new schema -------------------------------------------------


@contextlib.contextmanager
def postgres_copy(sqlite_path: str) -> Iterator[tuple[str, str, str] | None]:
    """The store's events in a new PostgreSQL schema (chained again by the recorder, as P6
    builds its log): (url, conninfo, the events table), or None when PostgreSQL is not
    reachable."""
    import sqlite3

    from eventsourcing.persistence import StoredEvent

    from ledger.application import LedgerApplication
    from ledger.database import parse_database_url

    try:
        import psycopg

        db = parse_database_url(PG_URL)
        conninfo = f"host={db.host} port={db.port} user={db.user} dbname={db.dbname}" + (
            f" password={db.password}" if db.password else ""
        )
        with psycopg.connect(conninfo, connect_timeout=3, autocommit=True) as conn:
            schema = f"bench_p3_{uuid.uuid4().hex[:10]}"
            conn.execute(f'CREATE SCHEMA "{schema}"')
    except Exception as e:  # no server: the figure is left out, with a note
        progress(f"PostgreSQL not reachable ({type(e).__name__}: {e})")
        yield None
        return
    url = f"{PG_URL}{'&' if '?' in PG_URL else '?'}schema={schema}"
    try:
        app = LedgerApplication(parse_database_url(url))
        from ledger.store.postgres import ChainedPostgresRecorder

        assert isinstance(app.recorder, ChainedPostgresRecorder)  # a postgresql:// URL's
        table = f'"{schema}"."{app.recorder.events_table_name}"'
        try:
            source = sqlite3.connect(sqlite_path)
            cursor = source.execute(
                "SELECT originator_id, originator_version, topic, state FROM stored_events"
                " ORDER BY rowid"
            )
            while rows := cursor.fetchmany(5_000):
                app.recorder.insert_events(
                    [StoredEvent(uuid.UUID(i), v, t, bytes(s)) for i, v, t, s in rows]
                )
            source.close()
        finally:
            app.close()
        yield url, conninfo, table
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


# -- the benchmark -----------------------------------------------------------------------------


def audit_replay(url: str) -> tuple[float, dict[str, Any]]:
    """`customs-ledger replay --json` end to end: (seconds, its answer)."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "api.cli", "replay", "--json"],
        cwd=ROOT,
        env={**os.environ, "LEDGER_DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=3600,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"customs-ledger replay exited {done.returncode}: {done.stderr[-2000:]}")
    return seconds, json.loads(done.stdout)


def replay_throughput(cfg: Config) -> Result:
    from bench.p5 import build_store, catch_up

    sizes = SIZES[:1] if cfg.quick else SIZES
    result = Result("P3", f"full replay into every read model, up to {sizes[-1]:,} events")
    directory = cfg.workdir / "p3"
    rates: dict[int, list[float]] = {}
    references: dict[int, list[float]] = {}
    runs: dict[int, list[Run]] = {}
    events: dict[int, int] = {}
    stores = []
    for size in sizes:
        store = build_store(directory / f"s{size}", size, f"p3-{size // 1000}k")
        stores.append(store)
        events[size] = store.events
        progress(f"P3 built {store.events:,} events in {store.build_seconds:.0f}s")
        path = str(store.directory / "ledger.sqlite3")
        decode_rate_sqlite(path)  # not counted: the first read of a file just written
        for r in range(cfg.repeats):
            run = replay_in_child(store.url)
            if run.events != store.events:
                raise RuntimeError(f"replayed {run.events} events of {store.events}")
            reference = decode_rate_sqlite(path)
            runs.setdefault(size, []).append(run)
            rates.setdefault(size, []).append(run.rate)
            references.setdefault(size, []).append(reference)
            progress(
                f"P3 {store.events:,} events, repeat {r + 1}/{cfg.repeats}: replay "
                f"{run.rate:,.0f} events/s (CPU {run.events / run.cpu:,.0f}/s), peak RSS "
                f"{run.rss_mb:.0f} MB; reference {reference:,.0f} rows decoded/s"
            )
    largest, smallest = sizes[-1], sizes[0]
    label = f"{events[largest]:,} events"
    result.figures = [
        Figure(
            "P3.replay",
            f"replay throughput, {label} (SQLite)",
            "events/s",
            rates[largest],
            reference=references[largest],
            reference_what="the same rows read from SQLite in log order (plain sqlite3 cursor) "
            "and each state decoded by msgspec.json into a dict: no projection at all",
            target=f">= {P3_RATE:,.0f} events/s (stretch {P3_STRETCH:,.0f}) at 1M events",
            check=lambda v, _ratio: v >= P3_RATE,
        ),
        Figure(
            "P3.rss",
            f"peak RSS of the replay (both processes), {label}",
            "MB",
            [run.rss_mb for run in runs[largest]],
            target=f"<= {P3_RSS_MB:.0f} MB at 1M events",
            check=lambda v, _ratio: v <= P3_RSS_MB,
            higher_is_better=False,
        ),
    ]
    for size in sizes[:-1]:
        result.figures.append(
            Figure(
                f"P3.replay{size // 1000}k",
                f"replay throughput, {events[size]:,} events",
                "events/s",
                rates[size],
                reference=references[size],
                reference_what="the same rows read and decoded (as P3.replay's reference)",
            )
        )
    if len(sizes) > 1:
        result.figures.append(
            Figure(
                "P3.linearity",
                f"replay throughput at {label} against at {events[smallest]:,}",
                "events/s",
                rates[largest],
                reference=rates[smallest],
                reference_what=f"the replay of the {events[smallest]:,}-event store: a ratio "
                "near 1 is a cost linear in the log",
            )
        )
    result.figures += _live_and_audit(stores[-1], catch_up, label, cfg)
    result.notes += _notes(sizes, events, runs, stores)
    if len(sizes) > 1:
        result.notes.append(_plot(sizes, events, rates, references))
    return result


def _live_and_audit(store: Any, catch_up: Any, label: str, cfg: Config) -> list[Figure]:
    store = catch_up(store)
    live_rate = store.events / store.catch_up_seconds
    progress(f"P3 live views built from empty: {live_rate:,.0f} events/s")
    seconds, answer = audit_replay(store.url)
    if not answer["equal"] or answer["events_replayed"] != store.events:
        raise RuntimeError(f"customs-ledger replay on the benchmark store: {answer}")
    progress(f"P3 customs-ledger replay end to end: {seconds:.1f}s, equal")
    return [
        Figure(
            "P3.live",
            f"the server's runner building the live views from empty, {label}",
            "events/s",
            [live_rate],
        ),
        Figure(
            "P3.audit",
            f"`customs-ledger replay` end to end (rebuild, both digests, comparison), {label}",
            "events/s",
            [store.events / seconds],
        ),
    ]


def _notes(
    sizes: Any, events: dict[int, int], runs: dict[int, list[Run]], stores: Any
) -> list[str]:
    big = stores[-1]
    cpu = median([r.events / r.cpu for r in runs[sizes[-1]]])
    return [
        "Each store is built like P5's (5 enterprises with a 20-item book; imports and "
        "gate_in, stocktakes, exports and gate_out, every event written by a real command). "
        f"The largest: {big.events:,} events by {big.commands:,} commands in "
        f"{big.build_seconds:.0f} s.",
        "Each replay runs in a child process (`python -m bench.p3 replay URL`) the way "
        "`customs-ledger replay` rebuilds: the batched runner into a scratch SQLite file beside "
        "the views (synchronous=OFF, journal_mode=OFF, no secondary index: it is digested and "
        "deleted), pages of 20,000 events, one page after the other (on PostgreSQL a writer "
        "thread commits each page while the next is folded), the trace graph, declarations "
        "and enterprises rebuilt by a second process at the same time (docs/decisions/0011; "
        "both interpreters start before the clock, as a full replay starts the helper before "
        "digesting the live views). The peak RSS is the sum of both processes' VmHWM "
        "(os.wait4's ru_maxrss of a forked child also counts the parent's memory, here the "
        "store just built). "
        "The reference decodes the same rows in the parent, right after.",
        f"The replay's own CPU time at {events[sizes[-1]]:,} events: {cpu:,.0f} events per "
        "CPU-second (on a shared 2-core machine, wall time also counts other processes' load).",
        "P3.live is the live path (durable WAL, synchronous=FULL, every index, pages of "
        "5,000: the server's runner from empty views); P3.audit adds to the replay the live "
        "and replayed digests of every table and their comparison.",
    ]


def _plot(
    sizes: Any,
    events: dict[int, int],
    rates: dict[int, list[float]],
    references: dict[int, list[float]],
) -> str:
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot as plt
    except ImportError:
        return "matplotlib is not installed: no plot (pip install matplotlib, then re-run P3)."
    xs = [events[s] for s in sizes]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
    ax.plot(xs, [median(rates[s]) for s in sizes], "o-", label="replay into every read model")
    ax.plot(
        xs, [median(references[s]) for s in sizes], "s--", label="reference: rows + msgspec decode"
    )
    ax.axhline(P3_RATE, color="grey", linestyle=":", label="P3 target (100,000 events/s)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("events in the log")
    ax.set_ylabel("events per second")
    ax.set_title("Replay throughput against log size (SQLite, bench/p3.py)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    PLOT.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(PLOT)
    plt.close(fig)
    return f"Plot: {PLOT.relative_to(ROOT)} (events/s against log size, this run's medians)."


if __name__ == "__main__":
    if len(sys.argv) in (3, 4) and sys.argv[1] == "replay":
        print(json.dumps(child_replay(sys.argv[2], parallel=sys.argv[3:] != ["--one-process"])))
    else:
        sys.exit("usage: python -m bench.p3 replay URL  (bench.run runs P3 itself)")
