"""P1L: P1b's load with the rate limits on and off in the same run (issue #14 item 5,
"load with limits on: P1 within 5% of without"), and the limiter's own time per request."""

from __future__ import annotations

import time
from typing import Any

from bench import loadgen
from bench.common import (
    LIMITS_OFF,
    LIMITS_RAISED,
    Config,
    Figure,
    Result,
    Server,
    free_port,
    median,
    progress,
)
from bench.fixtures import body_bytes, prepare_server_database
from bench.p1 import PATH, _ledger_argv

P1L_RATIO = 0.95


def _limits_server(cfg: Config, r: int, state: str) -> tuple[Server, str]:
    """A ledger server on a new database with the rate limits `state` ("on": every check, the
    rates out of the load's reach; "off": LEDGER_RATE_*=0), and its tenant's token."""
    directory = cfg.workdir / f"p1l-{r}-{state}"
    directory.mkdir()
    url = f"sqlite:///{directory / 'ledger.sqlite3'}"
    tenant = prepare_server_database(url)
    port = free_port()
    limits = LIMITS_OFF if state == "off" else LIMITS_RAISED
    env = {"LEDGER_DATABASE_URL": url, "PYTHONUNBUFFERED": "1", **limits}
    log = directory / "server.log"
    assert tenant.token is not None  # prepare_server_database issues the tenant's key
    server = Server(f"customs-ledger serve (limits {state})", _ledger_argv(port), port, log, env)
    return server, tenant.token


def _slices(cfg: Config, generator: str, r: int, body: bytes) -> dict[str, loadgen.LoadResult]:
    """Both servers up side by side; P1b's load in short slices, on and off in turn (the
    order flipping each slice), so that the machine's noise falls on both alike: per state,
    the requests and seconds of its slices summed, the median of their percentiles."""
    servers = {state: _limits_server(cfg, r, state) for state in ("off", "on")}
    slice_seconds = 2.0
    count = max(2, round(cfg.load_seconds / slice_seconds))
    taken: dict[str, list[loadgen.LoadResult]] = {"off": [], "on": []}
    try:
        for server, _ in servers.values():
            server.wait_ready()
        for n in range(-1, count):  # slice -1: the warm-up of both
            order = ("off", "on") if (n + r) % 2 == 0 else ("on", "off")
            for state in order:
                server, token = servers[state]
                seconds = cfg.warmup_seconds if n < 0 else slice_seconds
                load = loadgen.run_load(
                    generator,
                    server.base + PATH,
                    body,
                    token,
                    f"l{r}{state}{n + 1}",
                    seconds,
                    cfg.connections,
                    cfg.workdir,
                )
                if n >= 0:
                    taken[state].append(load)
    finally:
        for server, _ in servers.values():
            server.stop()
    return {state: _summed(loads) for state, loads in taken.items()}


def _summed(loads: list[loadgen.LoadResult]) -> loadgen.LoadResult:
    return loadgen.LoadResult(
        generator=loads[0].generator,
        requests=sum(x.requests for x in loads),
        errors=sum(x.errors for x in loads),
        seconds=sum(x.seconds for x in loads),
        p50_ms=median([x.p50_ms for x in loads]),
        p99_ms=median([x.p99_ms for x in loads]),
        max_ms=max(x.max_ms for x in loads),
        p90_ms=median([x.p90_ms for x in loads]),
    )


def http_limits(cfg: Config) -> Result:
    """P1b's load on the ledger with the rate limits on (every check made, the rates out of
    the load's reach) and off (LEDGER_RATE_*=0): what the limits cost."""
    generator = loadgen.choose(cfg.loadgen)
    result = Result("P1L", f"P1b with the rate limits on and off, {cfg.connections} connections")
    loads: dict[str, list[loadgen.LoadResult]] = {"on": [], "off": []}
    body = body_bytes()
    for r in range(cfg.repeats):
        found = _slices(cfg, generator, r, body)
        for state, load in found.items():
            loads[state].append(load)
            progress(
                f"P1L repeat {r + 1}/{cfg.repeats} limits {state}: {load.throughput:,.0f} req/s,"
                f" p99 {load.p99_ms:.1f} ms, {load.errors} errors of {load.requests}"
            )
    on, off = loads["on"], loads["off"]
    cost = [limiter_cost() for _ in range(cfg.repeats)]
    result.figures = [
        Figure(
            "P1L.throughput",
            "declarations/s (2xx responses), rate limits on",
            "/s",
            [x.throughput for x in on],
            reference=[x.throughput for x in off],
            reference_what="a second server beside it with the rate limits off "
            "(LEDGER_RATE_ADDRESS_PER_SECOND, LEDGER_RATE_KEY_PER_SECOND and "
            "LEDGER_AUTH_FAILURES_PER_MINUTE 0), loaded in turn in 2 s slices",
            target=f">= {P1L_RATIO} of the limits off",
            check=lambda _v, ratio: ratio is not None and ratio >= P1L_RATIO,
        ),
        Figure(
            "P1L.latency99",
            "p99 latency, rate limits on",
            "ms",
            [x.p99_ms for x in on],
            reference=[x.p99_ms for x in off],
            reference_what="the server beside it with the rate limits off",
            higher_is_better=False,
        ),
    ]
    result.figures.append(
        Figure(
            "P1L.cost",
            "time in the rate limiter per request (in-process, P1's headers, 100,000 requests)",
            "µs",
            cost,
            higher_is_better=False,
        )
    )
    per_request_us = 1e6 / median([x.throughput for x in off]) if off else 0.0
    result.notes.append(
        f"The limiter's own time, {median(cost):.1f} µs a request, is "
        f"{median(cost) / per_request_us:.2%} of the server's time per request at P1's "
        f"throughput with the limits off ({per_request_us:,.0f} µs): the end-to-end ratio "
        "above moves with the machine's noise far more than with the limiter."
        if per_request_us
        else "No throughput with the limits off: no share computed."
    )
    result.notes.append(
        f"Each repeat: two servers on new databases, one with the limits on and one off, both "
        f"warmed {cfg.warmup_seconds:g} s, then {cfg.load_seconds:g} s of load each in 2 s "
        "slices taken in turn (the order flipping each slice); a state's throughput is its "
        "slices' 2xx responses over their seconds, its p99 the median of theirs."
    )
    result.notes.append(
        "Limits on: the per-address and per-key rates raised to 1e9 (one client at full speed "
        "is what they stop; here they must not bind), the failed-authentication limit at its "
        "default; every request goes through every check and bucket as in production."
    )
    errors = sum(x.errors for x in on + off)
    total = sum(x.requests for x in on + off)
    if total and errors / total > 0.01:
        result.error = f"{errors} of {total} requests failed: the figures are not valid"
    return result


def limiter_cost(requests: int = 100_000) -> float:
    """Microseconds per request that `RateLimit` adds, with its default settings but the
    address and key rates raised (P1L's "on"), to a request shaped as P1's (one address, one
    accepted token): the same ASGI app timed with and without it, in turn."""
    import asyncio

    from api.ratelimit import RateLimit, token_digest
    from api.settings import RateLimits

    async def answer(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def ignore(message: Any) -> None:
        return None

    async def nothing() -> Any:
        return {"type": "http.request", "body": b"", "more_body": False}

    raised = RateLimits(
        address_per_second=1e9, address_burst=1e9, key_per_second=1e9, key_burst=1e9
    )
    limited = RateLimit(answer, raised)
    scope: dict[str, Any] = {
        "type": "http",
        "method": "POST",
        "path": PATH,
        "client": ("127.0.0.1", 50000),
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"authorization", b"Bearer clk_" + b"x" * 43),
            (b"idempotency-key", b"run-0-123456"),
            (b"content-type", b"application/json"),
            (b"content-length", b"700"),
        ],
    }

    async def timed(app: Any) -> float:
        started = time.perf_counter()
        for _ in range(requests):
            await app(scope, nothing, ignore)
        return time.perf_counter() - started

    # The token as the server knows it once authentication accepted it: the key's bucket.
    limited.keys.take(token_digest(scope["headers"][1][1].partition(b" ")[2]), time.monotonic())

    async def both() -> float:
        await timed(limited)  # warm: the code paths hot
        bare = await timed(answer)
        with_limits = await timed(limited)
        return (with_limits - bare) / requests * 1e6

    return asyncio.run(both())
