"""P1: declarations submitted, through the application layer (P1a) and over HTTP (P1b)."""

from __future__ import annotations

import sqlite3
import sys
import time
from pathlib import Path

from bench import loadgen
from bench.common import (
    Config,
    Figure,
    Result,
    Server,
    free_port,
    latency_figures,
    median,
    progress,
)
from bench.fixtures import body_bytes, onboard, open_ledger, prepare_server_database
from domain.declaration import SubmitDeclaration
from domain.events import Actor
from ledger.commands import Idempotency, Ledger

PATH = "/v1/declarations"
P1_RATE = 1500.0
P1_P99_MS = 20.0
# The P1 target: >= 1,500/s with p99 <= 20 ms, and >= 0.5 of the bare endpoint measured in the
# same run (docs/benchmarks.md, "Targets").
P1_RATIO = 0.5


# -- P1a: Ledger.submit_declaration called directly ------------------------------------------


def _reference_inserts(path: Path, body: bytes, n: int) -> float:
    """One INSERT + COMMIT of the request bytes per declaration (WAL, FULL): rows/s."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("CREATE TABLE requests (id INTEGER PRIMARY KEY, k TEXT UNIQUE, body BLOB)")
        started = time.perf_counter()
        for i in range(n):
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO requests (k, body) VALUES (?, ?)", (f"k{i}", body))
            conn.execute("COMMIT")
        return n / (time.perf_counter() - started)
    finally:
        conn.close()


def _submit(ledger: Ledger, cmd: SubmitDeclaration, actor: Actor, key: str) -> None:
    outcome = ledger.submit_declaration(cmd, actor, Idempotency(actor.name, key, "POST", PATH))
    if outcome.status_code != 201 or outcome.replayed:
        raise RuntimeError(f"submission answered {outcome.status_code}: {outcome.body}")


def app_layer(cfg: Config) -> Result:
    result = Result("P1a", "declarations through the application layer (one thread, SQLite)")
    n = 300 if cfg.quick else 1000
    warmup = 20
    tenth = max(1, n // 10)
    decl_rates: list[float] = []
    event_rates: list[float] = []
    first_rates: list[float] = []
    last_rates: list[float] = []
    ref_rates: list[float] = []
    for r in range(cfg.repeats):
        directory = cfg.workdir / f"p1a-{r}"
        directory.mkdir()
        app, ledger = open_ledger(f"sqlite:///{directory / 'ledger.sqlite3'}")
        try:
            tenant = onboard(ledger)
            cmd = tenant.command()
            for i in range(warmup):
                _submit(ledger, cmd, tenant.actor, f"warm-{r}-{i}")
            events_before = app.log.count()
            marks = []
            started = time.perf_counter()
            for i in range(n):
                _submit(ledger, cmd, tenant.actor, f"run-{r}-{i}")
                if (i + 1) % tenth == 0:
                    marks.append(time.perf_counter())
            elapsed = time.perf_counter() - started
            events = app.log.count() - events_before
        finally:
            app.close()
        decl_rates.append(n / elapsed)
        event_rates.append(events / elapsed)
        first_rates.append(tenth / (marks[0] - started))
        last_rates.append(tenth / (marks[-1] - marks[-2]))
        ref_rates.append(_reference_inserts(directory / "reference.sqlite3", tenant.body, n))
        progress(
            f"P1a repeat {r + 1}/{cfg.repeats}: {decl_rates[-1]:,.0f} declarations/s "
            f"({event_rates[-1]:,.0f} events/s; first {tenth}: {first_rates[-1]:,.0f}/s, "
            f"last {tenth}: {last_rates[-1]:,.0f}/s); reference inserts {ref_rates[-1]:,.0f}/s"
        )
    result.figures = [
        Figure(
            "P1a.declarations",
            f"declarations/s over {n} submissions",
            "/s",
            decl_rates,
            reference=ref_rates,
            reference_what="one INSERT+COMMIT of the same body bytes per declaration "
            "(WAL, synchronous=FULL, same process)",
        ),
        Figure("P1a.events", f"events/s over {n} submissions", "events/s", event_rates),
        Figure("P1a.first", f"declarations/s, first {tenth} of the run", "/s", first_rates),
        Figure("P1a.last", f"declarations/s, last {tenth} of the run", "/s", last_rates),
    ]
    result.notes.append(
        f"Each repeat: a new database, one enterprise and book, {warmup} warm-up submissions, "
        f"then {n} submissions with distinct Idempotency-Keys from one thread; events are "
        "counted in the store. The reference is measured right after, on the same disk."
    )
    slowdown = median(first_rates) / median(last_rates) if median(last_rates) else 0.0
    if slowdown > 1.5:
        result.notes.append(
            f"Throughput falls {slowdown:.1f}x between the first and the last {tenth} "
            "submissions of a run: the cost per declaration grows with the number of "
            "declarations already in the log."
        )
    return result


# -- P1b: over HTTP against `customs-ledger serve`, and the bare reference endpoint ---------


def _ledger_argv(port: int) -> list[str]:
    script = Path(sys.executable).with_name("customs-ledger")
    head = [str(script)] if script.exists() else [sys.executable, "-m", "api.cli"]
    return [*head, "serve", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]


def _reference_argv(port: int, factory: str = "bench.reference_server:create_app") -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        factory,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]


def ledger_server(port: int, directory: Path, database_url: str) -> Server:
    """`customs-ledger serve` on `database_url` (not yet started), its log in `directory`.
    Also M1's and M2's (bench/movements.py, bench/passages.py)."""
    return Server(
        "customs-ledger serve",
        _ledger_argv(port),
        port,
        directory / "server.log",
        {"LEDGER_DATABASE_URL": database_url, "PYTHONUNBUFFERED": "1"},
    )


def reference_server(port: int, directory: Path) -> Server:
    """The reference endpoint (not yet started), its SQLite database and log in `directory`.
    Also M1's and M2's."""
    return Server(
        "reference endpoint",
        _reference_argv(port),
        port,
        directory / "server.log",
        {"BENCH_REFERENCE_DB": str(directory / "reference.sqlite3")},
    )


def _phase(
    cfg: Config, generator: str, kind: str, r: int, body: bytes
) -> tuple[loadgen.LoadResult, int, dict[str, object]]:
    """Start one server, warm it up, load it, stop it: the load result and rows written."""
    directory = cfg.workdir / f"p1b-{r}-{kind}"
    directory.mkdir()
    port = free_port()
    if kind == "ledger":
        url = f"sqlite:///{directory / 'ledger.sqlite3'}"
        tenant = prepare_server_database(url)
        token = tenant.token
        assert tenant.body == body
        server = ledger_server(port, directory, url)
    else:
        token = "reference-ignores-the-token"
        server = reference_server(port, directory)
    return load_server(cfg, generator, server, token, body, f"{r}{kind[0]}", directory)


def load_server(
    cfg: Config,
    generator: str,
    server: Server,
    token: str | None,
    body: bytes,
    tag: str,
    directory: Path,
) -> tuple[loadgen.LoadResult, int, dict[str, object]]:
    """Wait for a started server, warm it up, load it (POST `body` to PATH), stop it: the
    load result, the events it wrote (its /healthz log_position before and after) and what
    /healthz said of its read models. Also P7's (bench/p7.py), on PostgreSQL."""
    extra: dict[str, object] = {}
    try:
        server.wait_ready()
        target = server.base + PATH
        if cfg.warmup_seconds > 0:
            loadgen.run_load(
                generator,
                target,
                body,
                token,
                f"warm{tag}",
                cfg.warmup_seconds,
                cfg.connections,
                directory,
            )
        before = int(server.get_json("/healthz")["log_position"])
        load = loadgen.run_load(
            generator,
            target,
            body,
            token,
            f"run{tag}",
            cfg.load_seconds,
            cfg.connections,
            directory,
        )
        health = server.get_json("/healthz")
        written = int(health["log_position"]) - before
        extra["lag"] = health.get("projection_lag_events")
        extra["projection_error"] = health.get("projection_error")
    finally:
        server.stop()
    return load, written, extra


def http(cfg: Config) -> Result:
    result = Result("P1b", f"declarations over HTTP, {cfg.connections} connections, SQLite")
    generator, description = loadgen.announce(cfg, "P1b")
    led: list[loadgen.LoadResult] = []
    ref: list[loadgen.LoadResult] = []
    events_per_request: list[float] = []
    lags: list[object] = []
    body = body_bytes()  # the same bytes for both servers
    for r in range(cfg.repeats):
        # Alternate the order so that neither side always runs on a warmer (or fuller) disk.
        order = ("reference", "ledger") if r % 2 == 0 else ("ledger", "reference")
        for kind in order:
            load, written, extra = _phase(cfg, generator, kind, r, body)
            ok = load.requests - load.errors
            if kind == "ledger":
                led.append(load)
                events_per_request.append(written / ok if ok else 0.0)
                lags.append(extra.get("lag"))
                if extra.get("projection_error"):
                    result.notes.append(f"projection error: {extra['projection_error']}")
            else:
                ref.append(load)
            loadgen.progress_load(
                f"P1b repeat {r + 1}/{cfg.repeats} {kind}", load, f", {written} rows written"
            )
    result.figures = [
        Figure(
            "P1b.throughput",
            "declarations/s (2xx responses)",
            "/s",
            [x.throughput for x in led],
            reference=[x.throughput for x in ref],
            reference_what="bare FastAPI endpoint, one SQLite INSERT+COMMIT of the same body "
            "per POST (WAL, synchronous=FULL), same uvicorn and load",
            target=f">= {P1_RATE:,.0f}/s and >= {P1_RATIO} of the reference",
            check=lambda v, ratio: v >= P1_RATE and ratio is not None and ratio >= P1_RATIO,
        ),
        Figure(
            "P1b.p99",
            "p99 latency",
            "ms",
            [x.p99_ms for x in led],
            reference=[x.p99_ms for x in ref],
            reference_what="the same reference endpoint",
            target=f"<= {P1_P99_MS:.0f} ms",
            check=lambda v, _ratio: v <= P1_P99_MS,
            higher_is_better=False,
        ),
        *latency_figures("P1b", led, ref),
    ]
    errors = sum(x.errors for x in led)
    total = sum(x.requests for x in led)
    ref_errors = sum(x.errors for x in ref)
    result.notes.append(f"Load generator: {description}.")
    result.notes.append(
        "Clearance is on: every declaration is assessed by the risk engine (the built-in rules,"
        " random selection included) and the duties engine; the body is a first-line import"
        " (5034), so the duties engine finds it not assessable and the declaration is released"
        " green unless selected. Events per request include the assessment and the item's"
        " unit-value history."
    )
    result.notes.append(
        f"Each phase: a new database and server process, {cfg.warmup_seconds:g} s warm-up, "
        f"then {cfg.load_seconds:g} s measured; the reference and the ledger alternate order "
        "from one repeat to the next. Both servers run uvicorn with --log-level warning."
    )
    result.notes.append(
        f"Ledger: {errors} non-2xx or failed responses of {total}; reference: {ref_errors}. "
        f"Events written per accepted request (from /healthz log_position): "
        f"{median(events_per_request):.2f} (requests still in flight when the load stops are "
        "written but not counted); read-model lag right after the load: "
        f"{', '.join(str(x) for x in lags)} events."
    )
    if total and errors / total > 0.01:
        result.error = f"{errors} of {total} ledger requests failed: the figures are not valid"
    return result
