"""P7: the suite on PostgreSQL - P1 (declarations over HTTP) and P3 (a full replay).

P1 on PostgreSQL: `customs-ledger serve` on a new schema of the PostgreSQL server named by
LEDGER_TEST_POSTGRES_URL, loaded exactly as P1b loads the SQLite server (bench/p1.py: the same
body, load generator, 16 connections, warm-up and measured phase), against a reference
measured in the same run: a bare FastAPI endpoint doing one PostgreSQL INSERT (and its
commit) of the same bytes per POST, served by uvicorn the same way (`create_reference_app`
below). Also with two server processes on the same schema, each taking half of the
connections (the first runs the read models' runner, the second does not: one runner feeds
one set of views).

P3 on PostgreSQL: P3's 100k-event store (bench/p3.py, when P3 ran first in this run; else
one built the same way) copied into a new schema and replayed there as `customs-ledger
replay` rebuilds (bench/p3.py's child process), against the same rows read from PostgreSQL
and decoded by msgspec.

Without a reachable PostgreSQL the benchmark fails with that reason (no figure is invented).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from bench import loadgen, p1, p3
from bench.common import Config, Figure, Result, Server, free_port, median, progress
from bench.fixtures import body_bytes, prepare_server_database
from bench.postgres import conninfo, fresh_schema, unreachable

P7_P1_RATE = 800.0
P7_P3_RATE = 50_000.0
P3_SIZE = 100_000
SERVERS = 2  # the several-process phase


# -- the reference: one PostgreSQL INSERT + COMMIT of the request's bytes per POST -------------


def create_reference_app() -> FastAPI:
    """P7's reference endpoint (`uvicorn --factory bench.p7:create_reference_app`): each POST
    inserts its body and Idempotency-Key into a table of BENCH_REFERENCE_SCHEMA at
    BENCH_REFERENCE_PG in its own transaction (autocommit, synchronous_commit as the server
    has it: durable), from the thread pool, over a pool of as many connections as the load
    has (BENCH_REFERENCE_CONNECTIONS), so that concurrent commits share the server's WAL
    flushes as they would for any plain endpoint."""
    from psycopg_pool import ConnectionPool

    schema = os.environ["BENCH_REFERENCE_SCHEMA"]
    size = int(os.environ.get("BENCH_REFERENCE_CONNECTIONS", "16"))

    def configure(conn: Any) -> None:
        conn.execute(f'SET search_path TO "{schema}"')

    pool = ConnectionPool(
        os.environ["BENCH_REFERENCE_PG"],
        min_size=size,
        max_size=size,
        kwargs={"autocommit": True},
        configure=configure,
        open=True,
    )
    with pool.connection() as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS requests (id BIGSERIAL PRIMARY KEY,"
            " idempotency_key TEXT UNIQUE, body BYTEA NOT NULL)"
        )

    def insert(key: str | None, body: bytes) -> int:
        with pool.connection() as conn:
            row = conn.execute(
                "INSERT INTO requests (idempotency_key, body) VALUES (%s, %s) RETURNING id",
                (key, body),
            ).fetchone()
        return int(row[0]) if row else 0

    def count() -> int:
        with pool.connection() as conn:
            row = conn.execute("SELECT count(*) FROM requests").fetchone()
        return int(row[0]) if row else 0

    app = FastAPI()

    @app.post("/v1/declarations")
    async def submit(request: Request) -> Response:
        body = await request.body()
        rowid = await run_in_threadpool(insert, request.headers.get("idempotency-key"), body)
        return Response(b'{"id":%d}' % rowid, status_code=201, media_type="application/json")

    @app.get("/healthz")
    def healthz() -> dict[str, int]:
        return {"log_position": count()}

    return app


# -- P1 on PostgreSQL ------------------------------------------------------------------------------


def _ports(n: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < n:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


def _ledger_servers(url: str, directory: Path, n: int) -> list[Server]:
    """`customs-ledger serve` on `url`, n processes; only the first runs the read models'
    runner (two runners on one set of views would fight over its tracking row)."""
    servers = []
    for i, port in enumerate(_ports(n)):
        env = {"LEDGER_DATABASE_URL": url, "PYTHONUNBUFFERED": "1"}
        if i > 0:
            env["LEDGER_PROJECTIONS"] = "off"
        servers.append(
            Server(
                f"customs-ledger serve ({i + 1} of {n})",
                p1._ledger_argv(port),
                port,
                directory / f"server{i + 1}.log",
                env,
            )
        )
    return servers


def _phase(
    cfg: Config, generator: str, kind: str, r: int, body: bytes
) -> tuple[loadgen.LoadResult, int, dict[str, object]]:
    """One server (the ledger or the reference) on a new schema, loaded as P1b loads it."""
    directory = cfg.workdir / f"p7-{r}-{kind}"
    directory.mkdir()
    with fresh_schema(f"bench_p7_{kind}") as (schema, url):
        if kind == "ledger":
            tenant = prepare_server_database(url)
            assert tenant.body == body
            token = tenant.token
            (server,) = _ledger_servers(url, directory, 1)
        else:
            token = "reference-ignores-the-token"
            port = free_port()
            server = Server(
                "reference endpoint (PostgreSQL)",
                p1._reference_argv(port, "bench.p7:create_reference_app"),
                port,
                directory / "server.log",
                {
                    "BENCH_REFERENCE_PG": conninfo(),
                    "BENCH_REFERENCE_SCHEMA": schema,
                    "BENCH_REFERENCE_CONNECTIONS": str(cfg.connections),
                },
            )
        return p1.load_server(cfg, generator, server, token, body, f"{r}{kind[0]}", directory)


def _split_load(
    generator: str,
    servers: list[Server],
    body: bytes,
    token: str | None,
    tag: str,
    seconds: float,
    connections: int,
    directory: Path,
) -> loadgen.LoadResult:
    """The load spread over the servers at once (connections shared out evenly), as one
    result: requests and errors added up; the slowest server's latencies (percentiles of
    two runs cannot be merged)."""
    results: list[loadgen.LoadResult | BaseException] = [RuntimeError("no result")] * len(servers)
    share = max(1, connections // len(servers))

    def drive(i: int) -> None:
        own = directory / f"load{i + 1}"
        own.mkdir(exist_ok=True)
        try:
            results[i] = loadgen.run_load(
                generator,
                servers[i].base + p1.PATH,
                body,
                token,
                f"{tag}s{i + 1}",
                seconds,
                share,
                own,
            )
        except BaseException as e:  # raised below, in the caller's thread
            results[i] = e

    threads = [threading.Thread(target=drive, args=(i,)) for i in range(len(servers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    loads: list[loadgen.LoadResult] = []
    for x in results:
        if isinstance(x, BaseException):
            raise x
        loads.append(x)
    return loadgen.LoadResult(
        generator=generator,
        requests=sum(x.requests for x in loads),
        errors=sum(x.errors for x in loads),
        seconds=max(x.seconds for x in loads),
        p50_ms=max(x.p50_ms for x in loads),
        p99_ms=max(x.p99_ms for x in loads),
        max_ms=max(x.max_ms for x in loads),
        p90_ms=max(x.p90_ms for x in loads),
    )


def _statuses(server: Server) -> dict[str, int]:
    """How many POSTs of the declarations' route the server answered, by status, from its
    GET /metrics (empty when it has none)."""
    import urllib.request

    found: dict[str, int] = {}
    try:
        with urllib.request.urlopen(server.base + "/metrics", timeout=10) as answer:
            text = answer.read().decode()
    except OSError:
        return found
    for line in text.splitlines():
        if line.startswith("ledger_http_requests_total{") and f'route="{p1.PATH}"' in line:
            labels, _, value = line.rpartition(" ")
            if 'method="POST"' in labels and 'status="' in labels:
                status = labels.split('status="', 1)[1].split('"', 1)[0]
                found[status] = found.get(status, 0) + int(float(value))
    return found


def _phase_servers(
    cfg: Config, generator: str, r: int, body: bytes, n: int
) -> tuple[loadgen.LoadResult, int, dict[str, int]]:
    """n ledger servers on one new schema, the load split between them."""
    directory = cfg.workdir / f"p7-{r}-ledger{n}"
    directory.mkdir()
    with fresh_schema(f"bench_p7_x{n}") as (_schema, url):
        tenant = prepare_server_database(url)
        assert tenant.body == body
        servers = _ledger_servers(url, directory, n)
        try:
            for server in servers:
                server.wait_ready()
            tag = f"{r}x{n}"
            if cfg.warmup_seconds > 0:
                _split_load(
                    generator,
                    servers,
                    body,
                    tenant.token,
                    f"warm{tag}",
                    cfg.warmup_seconds,
                    cfg.connections,
                    directory,
                )
            before = int(servers[0].get_json("/healthz")["log_position"])
            load = _split_load(
                generator,
                servers,
                body,
                tenant.token,
                f"run{tag}",
                cfg.load_seconds,
                cfg.connections,
                directory,
            )
            written = int(servers[0].get_json("/healthz")["log_position"]) - before
            statuses: dict[str, int] = {}
            for server in servers:
                for status, count in _statuses(server).items():
                    statuses[status] = statuses.get(status, 0) + count
        finally:
            for server in servers:
                server.stop()
    return load, written, statuses


def _p1(cfg: Config, result: Result) -> list[Figure]:
    generator, description = loadgen.announce(cfg, "P7")
    body = body_bytes()
    led: list[loadgen.LoadResult] = []
    ref: list[loadgen.LoadResult] = []
    several: list[loadgen.LoadResult] = []
    statuses: dict[str, int] = {}
    per_request: list[float] = []
    lags: list[object] = []
    for r in range(cfg.repeats):
        # Alternate the order, as P1b does, so that no side always runs on a warmer server.
        order = ("reference", "ledger", "servers")
        for kind in order if r % 2 == 0 else order[::-1]:
            if kind == "servers":
                load, written, answered = _phase_servers(cfg, generator, r, body, SERVERS)
                several.append(load)
                for status, count in answered.items():
                    statuses[status] = statuses.get(status, 0) + count
                label = f"{SERVERS} servers"
            else:
                load, written, extra = _phase(cfg, generator, kind, r, body)
                label = kind
                if kind == "ledger":
                    led.append(load)
                    ok = load.requests - load.errors
                    per_request.append(written / ok if ok else 0.0)
                    lags.append(extra.get("lag"))
                    if extra.get("projection_error"):
                        result.notes.append(f"projection error: {extra['projection_error']}")
                else:
                    ref.append(load)
            loadgen.progress_load(
                f"P7 repeat {r + 1}/{cfg.repeats} {label}", load, f", {written} rows written"
            )
    reference_what = (
        "bare FastAPI endpoint, one PostgreSQL INSERT+COMMIT of the same body per POST "
        f"(a pool of {cfg.connections} connections, synchronous_commit on), same uvicorn and load"
    )
    figures = [
        Figure(
            "P7.p1",
            "declarations/s over HTTP, PostgreSQL, one server process (2xx responses)",
            "/s",
            [x.throughput for x in led],
            reference=[x.throughput for x in ref],
            reference_what=reference_what,
            target=f">= {P7_P1_RATE:,.0f}/s",
            check=lambda v, _ratio: v >= P7_P1_RATE,
        ),
        *[
            Figure(
                f"P7.p1.p{q}",
                f"p{q} latency, one server process",
                "ms",
                [getattr(x, f"p{q}_ms") for x in led],
                reference=[getattr(x, f"p{q}_ms") for x in ref],
                reference_what="the same reference endpoint",
                higher_is_better=False,
            )
            for q in (50, 90, 99)
        ],
        Figure(
            f"P7.p1x{SERVERS}",
            f"declarations/s over HTTP, PostgreSQL, {SERVERS} server processes sharing the load",
            "/s",
            [x.throughput for x in several],
            reference=[x.throughput for x in ref],
            reference_what="the same reference endpoint (one process)",
        ),
        Figure(
            f"P7.p1x{SERVERS}.p99",
            f"p99 latency, {SERVERS} server processes (the slower one's)",
            "ms",
            [x.p99_ms for x in several],
            higher_is_better=False,
        ),
    ]
    errors = sum(x.errors for x in led)
    total = sum(x.requests for x in led)
    result.notes.append(f"Load generator: {description}.")
    result.notes.append(
        "P1 on PostgreSQL: each phase on a new schema of the PostgreSQL server named by "
        f"LEDGER_TEST_POSTGRES_URL (on this machine), a {cfg.warmup_seconds:g} s warm-up, then "
        f"{cfg.load_seconds:g} s measured, the same body and load as P1b; the reference, the "
        f"ledger and {SERVERS} ledger processes alternate order from one repeat to the next. "
        f"With {SERVERS} processes each gets {cfg.connections // SERVERS} of the "
        f"{cfg.connections} connections; the first runs the read models' runner, the others "
        "run with LEDGER_PROJECTIONS=off (one runner per set of views); their p99 is the "
        "slower process's."
    )
    several_errors = sum(x.errors for x in several)
    by_status = ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items())) or "no /metrics"
    result.notes.append(
        f"Ledger, one process: {errors} non-2xx or failed responses of {total}; reference: "
        f"{sum(x.errors for x in ref)}. Events written per accepted request (one process): "
        f"{median(per_request):.2f}; read-model lag right after the load: "
        f"{', '.join(str(x) for x in lags)} events. {SERVERS} processes: {several_errors} "
        f"non-2xx or failed responses of {sum(x.requests for x in several)}, the warm-up "
        f"included by status ({by_status}): a 409 `concurrent_update` is a submission that "
        "lost the race for a stream both processes write 12 times. Number series and "
        "unit-value histories are not such streams: each process numbers from a block of "
        "serials it reserved (decision 0035) and appends released prices to its own shard "
        "of the item's history (decision 0040)."
    )
    if total and errors / total > 0.01:
        result.error = f"{errors} of {total} ledger requests failed: the figures are not valid"
    elif any(status.startswith("5") for status in statuses):
        result.error = f"server errors with {SERVERS} processes ({by_status})"
    return figures


# -- P3 on PostgreSQL ------------------------------------------------------------------------------


def _replay_store(cfg: Config) -> tuple[Path, int]:
    """P3's 100k-event SQLite store when P3 ran first in this run, else one built alike:
    (its file, its events)."""
    from bench.p5 import build_store

    existing = cfg.workdir / "p3" / f"s{P3_SIZE}" / "ledger.sqlite3"
    if existing.exists():
        from ledger.application import LedgerApplication
        from ledger.database import parse_database_url

        app = LedgerApplication(parse_database_url(f"sqlite:///{existing}"))
        try:
            return existing, int(app.log.count())
        finally:
            app.close()
    store = build_store(cfg.workdir / "p7" / f"s{P3_SIZE}", P3_SIZE, f"p7-{P3_SIZE // 1000}k")
    progress(f"P7 built {store.events:,} events in {store.build_seconds:.0f}s")
    return store.directory / "ledger.sqlite3", store.events


def _p3(cfg: Config, result: Result) -> list[Figure]:
    path, events = _replay_store(cfg)
    rates: list[float] = []
    references: list[float] = []
    runs: list[p3.Run] = []
    with p3.postgres_copy(str(path)) as copied:
        if copied is None:
            raise RuntimeError("PostgreSQL went away while P7 ran")
        url, conninfo, table = copied
        p3.decode_rate_postgres(conninfo, table)  # not counted: the first read of new rows
        for r in range(cfg.repeats):
            run = p3.replay_in_child(url)
            if run.events != events:
                raise RuntimeError(f"replayed {run.events} events of {events}")
            runs.append(run)
            rates.append(run.rate)
            references.append(p3.decode_rate_postgres(conninfo, table))
            progress(
                f"P7 P3 on PostgreSQL, {events:,} events, repeat {r + 1}/{cfg.repeats}: replay "
                f"{run.rate:,.0f} events/s (CPU {run.events / run.cpu:,.0f}/s of this process), "
                f"peak RSS {run.rss_mb:.0f} MB; reference {references[-1]:,.0f} rows decoded/s"
            )
    result.notes.append(
        f"P3 on PostgreSQL: {'P3' if 'p3' in path.parts else 'a'} {events:,}-event store "
        "(movement traffic written by real commands, bench/p5.py's builder) copied into a new "
        "schema (chained again by the recorder), then replayed in a child process as "
        "`customs-ledger replay` rebuilds (bench/p3.py): a scratch schema of unlogged tables, "
        "pages of 20,000 events, each read as one packed value, a writer thread committing "
        "each page while the next is folded, the trace graph, declarations and enterprises "
        "rebuilt by a second process. The PostgreSQL server runs on the same 2 cores. Peak RSS "
        f"of both processes: {median([x.rss_mb for x in runs]):.0f} MB."
    )
    return [
        Figure(
            "P7.p3",
            f"replay throughput, {events:,} events (PostgreSQL)",
            "events/s",
            rates,
            reference=references,
            reference_what="the same rows read from PostgreSQL in log order (server-side "
            "cursor) and each state decoded by msgspec.json into a dict",
            target=f">= {P7_P3_RATE:,.0f} events/s",
            check=lambda v, _ratio: v >= P7_P3_RATE,
        )
    ]


# -- the benchmark -----------------------------------------------------------------------------


def postgres_suite(cfg: Config) -> Result:
    result = Result("P7", "the suite on PostgreSQL: P1 over HTTP and P3 replay")
    why = unreachable()
    if why is not None:
        result.error = why
        return result
    result.figures = _p1(cfg, result) + _p3(cfg, result)
    return result
