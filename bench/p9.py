"""P9: receipts under the P1 load - commit to webhook delivery, and what one subscription costs
P1 (issue #19, docs/receipts.md, docs/decisions/0030).

Each repeat runs four phases, each on a new database with a new `customs-ledger serve` exactly as
P1b starts it (bench/p1.py; LEDGER_WEBHOOK_ALLOWED_HOSTS=127.0.0.1 on both), loaded with P1b's
load (the same body, load generator, connections, warm-up and measured phase). `serve` runs the
views and the dispatcher in a child process by default (LEDGER_PROJECTIONS=process, api/feeder.py);
`LEDGER_PROJECTIONS=inline python -m bench.run --only P9` measures them in the server:

- **without**: no subscription (the dispatcher idles, one query a second);
- **with**: one officer's subscription to every receipt (`["*"]`) pointing at a receiver this
  process runs on 127.0.0.1, made before the warm-up. The receiver answers 204 at once and
  records, per delivery, the time it arrived (`time.time()`, the same clock as the server's)
  and the body; the receipt's lag is its arrival minus its `recorded_at` (stamped in the
  transaction that commits the receipt's event). After the load the benchmark waits (bounded)
  until the views have caught up with the log and `/metrics` shows no backlog, then stops the
  server and checks every receipt of the subscription's outbox against what arrived;
- **apart**: as `with`, but the server runs with LEDGER_PROJECTIONS=off beside a
  `customs-ledger project --follow` process, which feeds the views and delivers (its own
  interpreter: the dispatcher no longer waits for the lock behind the request threads);
- **apart_without**: as `apart`, without a subscription (apart's reference).

The order of the phases alternates from one repeat to the next, as P1b's does.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import sqlite3
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench import loadgen
from bench.common import (
    Config,
    Figure,
    Result,
    Server,
    free_port,
    median,
    percentile,
)
from bench.fixtures import body_bytes, onboard, open_ledger
from bench.p1 import PATH, _ledger_argv
from ledger.keys import ApiKeys

P9_LAG_P99_MS = 1000.0
P9_RATIO = 0.9
ALLOWED_HOSTS = "127.0.0.1"
EVENTS = ["*"]
# How long to wait after the load for the last receipt (the backlog drained).
DRAIN_SECONDS = 120.0
DRAIN_SECONDS_QUICK = 60.0


# -- the receiver -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    arrived: float  # time.time() once the body was read
    headers: dict[str, str]
    body: bytes


class Receiver:
    """An HTTP server on 127.0.0.1 that answers every POST 204 at once (keep-alive, as the
    dispatcher's client expects of a receiver) and keeps what arrived."""

    def __init__(self) -> None:
        self.got: list[Delivery] = []  # list.append is atomic: no lock on the hot path
        got = self.got

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                arrived = time.time()
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()
                got.append(Delivery(arrived, {k.lower(): v for k, v in self.headers.items()}, body))

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/receipts"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def signed(secret: str, d: Delivery) -> bool:
    """Whether a delivery carries a valid Standard Webhooks signature (checked here, after the
    run, with hmac: not with the ledger's own code)."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    message = f"{d.headers.get('webhook-id')}.{d.headers.get('webhook-timestamp')}.".encode()
    digest = base64.b64encode(hmac.new(key, message + d.body, hashlib.sha256).digest()).decode()
    given = [s.partition(",")[2] for s in d.headers.get("webhook-signature", "").split()]
    return any(hmac.compare_digest(digest, s) for s in given)


def _timestamp(recorded_at: str) -> float:
    return datetime.fromisoformat(recorded_at.replace("Z", "+00:00")).timestamp()


# -- one phase ----------------------------------------------------------------------------------


@dataclass
class Phase:
    load: loadgen.LoadResult
    written: int  # events the measured load wrote (/healthz log_position)
    projection_lag: object = None
    # With a subscription:
    lags_ms: list[float] = field(default_factory=list)  # the measured phase's, by position
    receipts: int = 0  # receipts of the measured phase delivered (distinct positions)
    types: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    unsigned: int = 0
    outbox: int = 0  # the subscription's outbox rows (all phases), read after the stop
    missing: int = 0  # outbox rows that never arrived
    drained: bool = True
    drain_s: float = 0.0  # end of the load to the last receipt's arrival
    backlog_at_end: int | None = None
    recorded_rate: float = 0.0  # receipts recorded per second during the measured load
    delivered_rate: float = 0.0  # deliveries arriving per second during the measured load
    attempts: dict[str, int] = field(default_factory=dict)
    drain_rate: float = 0.0  # deliveries arriving per second after the load
    # The dispatcher's own time per HTTP attempt (dispatch_attempts.latency_ms), median,
    # during the load and after it.
    send_ms_during: float = float("nan")
    send_ms_after: float = float("nan")


def _prepare(url: str) -> tuple[str, str]:
    """A new database with P1b's tenant (its enterprise key) and an officer's key: both
    tokens. Both phases get the same, so that only the subscription differs."""
    app, ledger = open_ledger(url)
    try:
        keys = ApiKeys(app)
        tenant = onboard(ledger, keys=keys)
        officer = keys.issue(name="bench-officer", role="officer")
    finally:
        app.close()
    assert tenant.token is not None
    return tenant.token, officer


def _env(url: str, apart: bool) -> dict[str, str]:
    env = {
        "LEDGER_DATABASE_URL": url,
        "PYTHONUNBUFFERED": "1",
        "LEDGER_WEBHOOK_ALLOWED_HOSTS": ALLOWED_HOSTS,
    }
    if apart:  # the views and the dispatcher in a `project --follow` process
        env["LEDGER_PROJECTIONS"] = "off"
    return env


def _server(directory: Path, url: str, apart: bool = False) -> Server:
    port = free_port()
    argv = _ledger_argv(port)
    return Server("customs-ledger serve", argv, port, directory / "server.log", _env(url, apart))


def _follower(directory: Path, url: str) -> Server:
    """`customs-ledger project --follow` beside the server (no port: never asked over HTTP)."""
    head = _ledger_argv(0)
    argv = [*head[: head.index("serve")], "project", "--follow"]
    log = directory / "follower.log"
    return Server("customs-ledger project --follow", argv, 0, log, _env(url, True))


def _subscribe(server: Server, officer: str, receiver: Receiver, tag: str) -> dict[str, Any]:
    body = {"url": receiver.url, "events": EVENTS, "description": "P9 receiver"}
    request = urllib.request.Request(
        server.base + "/v1/subscriptions",
        data=json.dumps(body).encode(),
        method="POST",
        headers={
            "Authorization": f"Bearer {officer}",
            "Content-Type": "application/json",
            "Idempotency-Key": f"p9-subscription-{tag}",
        },
    )
    with urllib.request.urlopen(request, timeout=10) as r:
        if r.status != 201:
            raise RuntimeError(f"POST /v1/subscriptions answered {r.status}")
        return dict(json.loads(r.read()))


_BACKLOG = re.compile(r'^ledger_webhook_backlog\{subscription="([^"]+)"\} (\S+)$', re.M)


def _backlog(server: Server, sub_id: str) -> int | None:
    """The subscription's backlog as /metrics shows it (None: not shown)."""
    with urllib.request.urlopen(server.base + "/metrics", timeout=10) as r:
        text = r.read().decode()
    for found_id, value in _BACKLOG.findall(text):
        if found_id == sub_id:
            return int(float(value))
    return None


def _drain(server: Server, sub_id: str, bound: float) -> tuple[bool, int | None]:
    """Wait until the views have caught up with the log and the subscription has no backlog
    (at most `bound` seconds): whether it drained, and the backlog at the first look."""
    deadline = time.monotonic() + bound
    first: int | None = None
    looked = False
    while True:
        lag = server.get_json("/healthz").get("projection_lag_events")
        backlog = _backlog(server, sub_id)
        if not looked:
            first, looked = backlog, True
        if lag == 0 and backlog == 0:
            return True, first
        if time.monotonic() >= deadline:
            return False, first
        time.sleep(0.2)


def _after_stop(
    views: Path, sub_id: str
) -> tuple[set[int], dict[str, int], list[tuple[float, float]]]:
    """The subscription's outbox positions, its attempts by result, and each attempt's time
    and HTTP latency (ms), from the stopped server's views (read-only)."""
    conn = sqlite3.connect(f"file:{views}?mode=ro", uri=True)
    try:
        positions = {
            int(p)
            for (p,) in conn.execute(
                "SELECT position FROM view_outbox WHERE subscription_id = ?", (sub_id,)
            )
        }
        attempts = {
            ("ok" if ok else "failed"): int(n)
            for ok, n in conn.execute(
                "SELECT ok, count(*) FROM dispatch_attempts WHERE subscription_id = ? GROUP BY ok",
                (sub_id,),
            )
        }
        sends = [
            (_timestamp(at), float(ms))
            for at, ms in conn.execute(
                "SELECT at, latency_ms FROM dispatch_attempts WHERE subscription_id = ?",
                (sub_id,),
            )
        ]
    finally:
        conn.close()
    return positions, attempts, sends


SUBSCRIBED = ("with", "apart")


def _phase(cfg: Config, generator: str, kind: str, r: int, body: bytes) -> Phase:
    """One phase (`with` or `without` a subscription): a new database and server, warmed up,
    loaded; with, drained, then its receipts checked against its outbox."""
    directory = cfg.workdir / f"p9-{r}-{kind}"
    directory.mkdir()
    url = f"sqlite:///{directory / 'ledger.sqlite3'}"
    token, officer = _prepare(url)
    apart = kind.startswith("apart")
    server = _server(directory, url, apart=apart)
    follower = _follower(directory, url) if apart else None
    receiver = Receiver() if kind in SUBSCRIBED else None
    sub: dict[str, Any] | None = None
    tag = f"{r}{kind}"
    try:
        server.wait_ready()
        if receiver is not None:
            sub = _subscribe(server, officer, receiver, tag)
        target = server.base + PATH
        if cfg.warmup_seconds > 0:
            loadgen.run_load(
                generator,
                target,
                body,
                token,
                f"p9warm{tag}",
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
            f"p9run{tag}",
            cfg.load_seconds,
            cfg.connections,
            directory,
        )
        ended = time.time()
        health = server.get_json("/healthz")
        phase = Phase(
            load, int(health["log_position"]) - before, health.get("projection_lag_events")
        )
        if sub is not None:
            bound = DRAIN_SECONDS_QUICK if cfg.quick else DRAIN_SECONDS
            phase.drained, phase.backlog_at_end = _drain(server, str(sub["id"]), bound)
    finally:
        server.stop()
        if follower is not None:
            follower.stop()
        if receiver is not None:
            receiver.close()
    if receiver is None or sub is None:
        return phase
    outbox, phase.attempts, sends = _after_stop(directory / "ledger.views.sqlite3", str(sub["id"]))
    _receipts(phase, receiver.got, str(sub["secret"]), before, outbox, ended)
    started = ended - load.seconds
    phase.send_ms_during = median([ms for at, ms in sends if started <= at <= ended])
    phase.send_ms_after = median([ms for at, ms in sends if at > ended])
    return phase


def _receipts(
    phase: Phase,
    got: list[Delivery],
    secret: str,
    before: int,
    outbox: set[int],
    ended: float,
) -> None:
    """Fill `phase`'s receipt figures from what arrived: each receipt's first arrival, those of
    the measured phase (log position after `before`) for the lags."""
    first: dict[int, tuple[float, float, str]] = {}  # position -> arrival, recorded, type
    for d in got:
        receipt = json.loads(d.body)
        position = int(receipt["position"])
        if not signed(secret, d):
            phase.unsigned += 1
        if position in first:
            phase.duplicates += 1
            continue
        first[position] = (d.arrived, _timestamp(receipt["recorded_at"]), receipt["type"])
    measured = sorted((p, v) for p, v in first.items() if p > before)
    phase.lags_ms = [(arrived - recorded) * 1000 for _, (arrived, recorded, _) in measured]
    phase.receipts = len(measured)
    phase.types = Counter(t for _, (_, _, t) in measured)
    phase.outbox = len(outbox)
    phase.missing = len(outbox - first.keys())
    if measured:
        phase.drain_s = max(0.0, max(a for _, (a, _, _) in measured) - ended)
    started = ended - phase.load.seconds
    seconds = phase.load.seconds or 1.0
    phase.recorded_rate = sum(1 for _, (_, rec, _) in measured if started <= rec <= ended) / seconds
    phase.delivered_rate = sum(1 for d in got if started <= d.arrived <= ended) / seconds
    after = sum(1 for d in got if d.arrived > ended)
    phase.drain_rate = after / phase.drain_s if phase.drain_s > 0 else 0.0


# -- the benchmark ------------------------------------------------------------------------------


def _tenths(lags: list[float]) -> tuple[float, float]:
    """The median lag of the first and of the last tenth of the receipts, in log order."""
    tenth = max(1, len(lags) // 10)
    return median(lags[:tenth]), median(lags[-tenth:])


def receipts_lag(cfg: Config) -> Result:
    result = Result(
        "P9",
        f"receipts under the P1 load: commit to webhook delivery, {cfg.connections} "
        "connections, SQLite",
    )
    generator, description = loadgen.announce(cfg, "P9")
    body = body_bytes()
    kinds = ("without", "with", "apart", "apart_without")
    phases: dict[str, list[Phase]] = {kind: [] for kind in kinds}
    for r in range(cfg.repeats):
        order = kinds if r % 2 == 0 else kinds[::-1]
        for kind in order:
            phase = _phase(cfg, generator, kind, r, body)
            phases[kind].append(phase)
            detail = f", {phase.written} events written"
            if kind in SUBSCRIBED:
                lags = sorted(phase.lags_ms)
                detail += (
                    f"; {phase.receipts} receipts, lag p50 {percentile(lags, 50):,.0f} ms,"
                    f" p99 {percentile(lags, 99):,.0f} ms; drained {phase.drained}"
                    f" ({phase.drain_s:.1f} s after the load), {phase.missing} missing"
                )
            loadgen.progress_load(f"P9 repeat {r + 1}/{cfg.repeats} {kind}", phase.load, detail)
    without, with_, apart = phases["without"], phases["with"], phases["apart"]
    apart_without = phases["apart_without"]
    complete = all(p.drained and p.missing == 0 for p in with_)
    complete_apart = all(p.drained and p.missing == 0 for p in apart)
    lag = {q: [percentile(sorted(p.lags_ms), q) for p in with_] for q in (50, 90, 99)}
    lag_figures = [
        Figure(
            f"P9.p{q}",
            f"p{q} receipt lag (arrival at the receiver - recorded_at)",
            "ms",
            lag[q],
            reference=[getattr(p.load, f"p{q}_ms") for p in without],
            reference_what=f"P1's p{q} request latency, the phase without a subscription "
            "(same server setup and load, this run)",
            higher_is_better=False,
        )
        for q in (50, 90, 99)
    ]
    lag_figures[-1].target = f"<= {P9_LAG_P99_MS:,.0f} ms, every receipt delivered"
    lag_figures[-1].check = lambda v, _ratio: v <= P9_LAG_P99_MS and complete
    result.figures = [
        *lag_figures,
        Figure(
            "P9.throughput",
            "declarations/s (2xx responses) with one subscription",
            "/s",
            [p.load.throughput for p in with_],
            reference=[p.load.throughput for p in without],
            reference_what="the same server setup and load without a subscription (a new "
            "database and server each phase, alternating order), this run",
            target=f"with/without >= {P9_RATIO}",
            check=lambda _v, ratio: ratio is not None and ratio >= P9_RATIO,
        ),
        Figure(
            "P9.request99",
            "p99 request latency with one subscription",
            "ms",
            [p.load.p99_ms for p in with_],
            reference=[p.load.p99_ms for p in without],
            reference_what="the phase without a subscription",
            higher_is_better=False,
        ),
        Figure(
            "P9.delivery_rate",
            "receipts delivered/s while the load ran",
            "/s",
            [p.delivered_rate for p in with_],
            reference=[p.recorded_rate for p in with_],
            reference_what="receipts recorded/s in the same window (below 1: the dispatcher "
            "falls behind)",
        ),
        Figure(
            "P9.apart_p99",
            "p99 receipt lag, the views and the dispatcher in a `project --follow` process",
            "ms",
            [percentile(sorted(p.lags_ms), 99) for p in apart],
            reference=lag[99],
            reference_what="the p99 lag with everything in the server (P9.p99), this run",
            higher_is_better=False,
            target=f"<= {P9_LAG_P99_MS:,.0f} ms, every receipt delivered",
            check=lambda v, _ratio: v <= P9_LAG_P99_MS and complete_apart,
        ),
        Figure(
            "P9.apart_throughput",
            "declarations/s with one subscription, views and dispatcher in their own process",
            "/s",
            [p.load.throughput for p in apart],
            reference=[p.load.throughput for p in apart_without],
            reference_what="the same setup (views and dispatcher apart) without a subscription,"
            " this run",
            target=f"with/without >= {P9_RATIO}",
            check=lambda _v, ratio: ratio is not None and ratio >= P9_RATIO,
        ),
        Figure(
            "P9.apart_delivery_rate",
            "receipts delivered/s while the load ran, dispatcher in its own process",
            "/s",
            [p.delivered_rate for p in apart],
            reference=[p.recorded_rate for p in apart],
            reference_what="receipts recorded/s in the same window",
        ),
        Figure(
            "P9.delivered",
            "receipts of the measured phase delivered",
            "receipts",
            [float(p.receipts) for p in with_],
        ),
        Figure(
            "P9.drain",
            "end of the load to the last receipt delivered",
            "s",
            [p.drain_s for p in with_],
            higher_is_better=False,
        ),
    ]
    result.notes.append(f"Load generator: {description}.")
    result.notes.append(
        f"Each repeat: four phases, each a new database and `customs-ledger serve` as P1b "
        f"starts it (rate limits raised; projections as `serve` runs them by default, in a "
        f"child process it supervises - LEDGER_PROJECTIONS=process - unless the environment "
        f"sets LEDGER_PROJECTIONS; except in the phases `apart` and `apart_without`, "
        f"where the server runs with LEDGER_PROJECTIONS=off beside a `customs-ledger project "
        f"--follow` process that feeds the views and delivers), `LEDGER_WEBHOOK_ALLOWED_HOSTS="
        f"{ALLOWED_HOSTS}` on both, one enterprise with its book and key and an officer's key; "
        f"{cfg.warmup_seconds:g} s warm-up, then {cfg.load_seconds:g} s measured of P1b's "
        "load; the order of the phases alternates from one repeat to the next. With and "
        "apart: one "
        f"officer's subscription to {json.dumps(EVENTS)} made before the warm-up, pointing at "
        "a receiver in the benchmark's process on 127.0.0.1 (http.server, HTTP/1.1 keep-alive, "
        "204 at once) that records each delivery's arrival (time.time(), the server's clock)."
    )
    result.notes.append(
        "Lag: a receipt's first arrival minus its `recorded_at` (stamped in the transaction "
        "that commits its event, just before the commit), over the receipts of the measured "
        "phase (log positions after the warm-up), those delivered after the load included. "
        "After the load the benchmark waits (at most "
        f"{DRAIN_SECONDS_QUICK if cfg.quick else DRAIN_SECONDS:g} s) for /healthz to show the "
        "views caught up and /metrics no backlog for the subscription, stops the server, and "
        "checks the subscription's outbox (view_outbox) against what arrived."
    )
    for n, p in enumerate(with_):
        first, last = _tenths(p.lags_ms)
        types = ", ".join(f"{t} {c}" for t, c in p.types.most_common())
        result.notes.append(
            f"With, repeat {n + 1}: {p.receipts} receipts of the measured phase ({types}); "
            f"outbox {p.outbox} rows, {p.missing} never delivered, {p.duplicates} duplicates, "
            f"{p.unsigned} with a bad signature; attempts {p.attempts}; backlog at the load's "
            f"end {p.backlog_at_end}; drained {'yes' if p.drained else 'NO'}, the last receipt "
            f"{p.drain_s:.1f} s after the load; recorded {p.recorded_rate:,.0f}/s, delivered "
            f"{p.delivered_rate:,.0f}/s during the load, {p.drain_rate:,.0f}/s after it; the "
            f"dispatcher's HTTP attempt (its own latency_ms, median) {p.send_ms_during:.1f} ms "
            f"during the load, {p.send_ms_after:.1f} ms after; median lag of the first tenth "
            f"{first:,.0f} ms, of the last tenth {last:,.0f} ms."
        )
    delivered = median([p.delivered_rate for p in with_])
    recorded = median([p.recorded_rate for p in with_])
    if delivered < 0.9 * recorded:
        result.notes.append(
            f"The dispatcher does not keep up under the load: it delivered {delivered:,.0f} "
            f"receipts/s while the load ran against {recorded:,.0f}/s recorded, and "
            f"{median([p.drain_rate for p in with_]):,.0f}/s once it stopped. The backlog "
            "grows for as long as the load lasts, so the lag figures grow with the measured "
            f"phase ({cfg.load_seconds:g} s here): they are not a steady state, which under a "
            "sustained load this high would not exist. Not the dispatcher's polling (a round "
            "every 0.1 s while a subscription is active): it delivers one receipt after "
            f"another, each taking {1000 / delivered if delivered else float('nan'):,.0f} ms "
            "during the load, of which its HTTP attempt "
            f"{median([p.send_ms_during for p in with_]):.1f} ms."
        )
    if not complete:
        result.notes.append(
            "NOT every receipt was delivered within the wait: the lag percentiles cover the "
            "delivered ones only and understate the lag; the p99 target is not met."
        )
    if not complete_apart:
        result.notes.append(
            "Apart: NOT every receipt was delivered within the wait (P9.apart_p99 covers the "
            "delivered ones only)."
        )
    loads = [p.load for p in without + with_ + apart + apart_without]
    errors = sum(x.errors for x in loads)
    total = sum(x.requests for x in loads)
    result.notes.append(
        f"{errors} non-2xx or failed responses of {total}; read-model lag right after the "
        f"load: {', '.join(str(p.projection_lag) for p in without + with_)} events "
        "(without phases first)."
    )
    if total and errors / total > 0.01:
        result.error = f"{errors} of {total} requests failed: the figures are not valid"
    return result
