"""P8: retail lists through `POST /v1/declarations/batch`, 100 per batch, over HTTP (SQLite).

Each repeat: two new SQLite databases set up alike through the app (one enterprise, one book,
a million laptops admitted under a released first-line import and `gate_in`), each then
served by `customs-ledger serve`, loaded over 4 connections. The measured server gets batches
of 100 retail lists
(bonded retail imports, 1210: one laptop each, each list to its own buyer, every list and key
distinct, none sent twice); the reference server, in the same repeat, gets the same kind of
lists one request each through `POST /v1/declarations` (what a platform pays without
batches). Both under the same load generator and connections; a warm-up first (lists of its
own), then the measured phase. The lists are what `POST /v1/imports` builds from a
spreadsheet's rows (domain/imports.py), so they pass every check a real list does.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from pathlib import Path
from typing import Any

from bench import loadgen
from bench.common import Config, Figure, Result, free_port, latency_figures, progress
from bench.p1 import ledger_server

BATCH = 100
P8_RATE = 10_000.0
P8_P99_MS = 100.0
STOCK = 1_000_000
# Batches in flight at once: a platform's few intake workers, each sending its next batch when
# the last is answered. Each batch keeps the one decider busy for its 100 lists, so more
# connections only queue behind it (a batch's latency grows with each one in flight).
CONNECTIONS = 4
# A path the load generator posts to once its lists ran out: its answer (405) is an error, so
# a phase that ran out of lists shows it instead of counting replays.
EXHAUSTED = "/v1/zones"


def _retail_bodies(tenant: Any, start: int, count: int) -> list[bytes]:
    """`count` retail lists of the tenant's, buyers start.. (as an import builds them)."""
    from domain import imports as im
    from tests.samples import retail_row

    kind = im.KINDS["retail_lists"]
    bodies = []
    for n in range(start, start + count):
        cells = {k: v for k, v in retail_row(tenant, n).items() if v is not None}
        values = {c.name: im.cell_value(c, cells[c.name]) for c in kind.columns if c.name in cells}
        (doc,) = im.documents(kind, [(n + 2, values)])
        built = im.body_of(kind, doc)
        assert not built.errors, built.errors
        bodies.append(json.dumps(built.body, separators=(",", ":"), ensure_ascii=False).encode())
    return bodies


def _prepare(url: str) -> tuple[Any, str]:
    """The tenant with its stock, written into a new database; (tenant, its token)."""
    from tests.support import admit, onboard, running_ledger

    with running_ledger(url) as ledger:
        tenant = onboard(ledger)
        admit(ledger, tenant, 1, str(STOCK))
        return tenant, ledger.tokens[tenant.token_name]


def _batches(token: str, bodies: list[bytes], tag: str) -> list[loadgen.Request]:
    out = []
    for start in range(0, len(bodies), BATCH):
        items = b",".join(
            b'{"idempotency_key":"%s-%d","body":%s}' % (tag.encode(), start + i, body)
            for i, body in enumerate(bodies[start : start + BATCH])
        )
        out.append(loadgen.Request(token, "/v1/declarations/batch", b'{"items":[' + items + b"]}"))
    return out


def _phase(
    cfg: Config, generator: str, directory: Path, batched: bool, lists: int, r: int
) -> tuple[loadgen.LoadResult, int]:
    """One server, its warm-up and measured load: (the load, lists accepted per 2xx)."""
    directory.mkdir()
    url = f"sqlite:///{directory / 'ledger.sqlite3'}"
    tenant, token = _prepare(url)
    per = BATCH if batched else 1
    warm_lists = int(lists * cfg.warmup_seconds / (cfg.warmup_seconds + cfg.load_seconds)) + per
    bodies = _retail_bodies(tenant, 0, lists + warm_lists)
    tag = uuid.uuid4().hex[:8]
    if batched:
        warm = _batches(token, bodies[:warm_lists], f"w{tag}")
        run = _batches(token, bodies[warm_lists:], f"r{tag}")
    else:
        warm = [loadgen.Request(token, "/v1/declarations", b) for b in bodies[:warm_lists]]
        run = [loadgen.Request(token, "/v1/declarations", b) for b in bodies[warm_lists:]]
    server = ledger_server(free_port(), directory, url)
    try:
        server.wait_ready()
        load, _ = loadgen.warm_then_load(
            cfg,
            generator,
            server.base,
            warm,
            run,
            f"{r}{'b' if batched else 's'}",
            directory,
            lambda: int(server.get_json("/healthz")["log_position"]),
            order="once",
            exhausted=EXHAUSTED,
        )
    finally:
        server.stop()
    return load, per


def batch_intake(cfg: Config) -> Result:
    result = Result("P8", "retail lists through POST /v1/declarations/batch (100 per batch)")
    cfg = dataclasses.replace(cfg, connections=CONNECTIONS)
    generator, description = loadgen.announce(cfg, "P8")
    # Lists enough for the target's rate over the whole phase; the single route's far fewer.
    seconds = cfg.warmup_seconds + cfg.load_seconds
    batched_lists = int(P8_RATE * 1.2 * seconds) // BATCH * BATCH
    single_lists = int(3_000 * seconds)
    led: list[loadgen.LoadResult] = []
    ref: list[loadgen.LoadResult] = []
    led_rates: list[float] = []
    ref_rates: list[float] = []
    for r in range(cfg.repeats):
        order = (True, False) if r % 2 == 0 else (False, True)
        for batched in order:
            lists = batched_lists if batched else single_lists
            name = f"p8-{r}-{'batch' if batched else 'single'}"
            load, per = _phase(cfg, generator, cfg.workdir / name, batched, lists, r)
            if load.errors:
                result.notes.append(
                    f"{name}: {load.errors} of {load.requests} requests failed or found the "
                    "lists run out (they are not counted)"
                )
            rate = load.throughput * per
            (led if batched else ref).append(load)
            (led_rates if batched else ref_rates).append(rate)
            loadgen.progress_load(f"P8 repeat {r + 1}/{cfg.repeats} {name}", load)
            progress(f"P8 {name}: {rate:,.0f} lists/s")
    result.figures = [
        Figure(
            "P8.throughput",
            "retail lists/s, 100 per batch",
            "/s",
            led_rates,
            reference=ref_rates,
            reference_what="the same kind of lists one request each through POST "
            "/v1/declarations, on a server set up alike, same load and connections",
            target=f">= {P8_RATE:,.0f} lists/s",
            check=lambda v, _ratio: v >= P8_RATE,
        ),
        Figure(
            "P8.p99",
            "p99 latency per batch",
            "ms",
            [x.p99_ms for x in led],
            reference=[x.p99_ms for x in ref],
            reference_what="p99 latency of one list through POST /v1/declarations",
            target=f"<= {P8_P99_MS:.0f} ms",
            check=lambda v, _ratio: v <= P8_P99_MS,
            higher_is_better=False,
        ),
        *latency_figures("P8", led, ref),
    ]
    result.notes.append(f"Load generator: {description}.")
    result.notes.append(
        "Each repeat: two new SQLite databases, one enterprise with a million laptops admitted "
        "(a released first-line import and gate_in); retail lists (1210, one laptop, each to "
        "its own buyer, built from import rows) never sent twice; the batched server gets 100 "
        "per POST /v1/declarations/batch, the reference server one per POST "
        "/v1/declarations; each warmed, then loaded; the order of the two flips each repeat."
    )
    return result
