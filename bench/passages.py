"""M2: gate-pass passages (核放单) over HTTP, 16 connections, SQLite.

The traffic: one enterprise's 20-item book in XCBZ (bench/movements.py's book), released
first-line imports of 20 lines - each files its checklist (核注清单) in the write that releases
it - and one gate pass filed per checklist carrying all 20 lines; every step a real command of
the ledger's command layer (`Ledger`), with an Idempotency-Key as over HTTP.

M2 posts `POST /v1/gate-passes/{pass_no}/passage` with an XCBZ operator key against
`customs-ledger serve`, each pass once (the pool holds more passes than the load can pass in
its warm-up and measured seconds; a load that outruns it is told by 404s, which invalidate
the run). A passage records, in one write, the gate_in of the checklist's 20 lines (the
movement, 20 lots, 20 stock entries) and the pass as passed. The reference is P1b's bare
FastAPI endpoint doing one SQLite insert per POST, loaded with the same bodies.

The write count: in-process, on each prepared database, a few passages (not in the pool) are
recorded through `Ledger.record_passage` with the recorder's `insert_events` wrapped, which
counts the transactions (one `BEGIN IMMEDIATE ... COMMIT` each) and their events. Under load,
the server commits concurrent commands in groups (one transaction for the commands that
arrived together: ledger/application.py `run`), so a transaction may hold several passages;
the log shows the transactions (each gives all its events one `recorded_at`,
ledger/store/__init__.py `chain_rows`), and every one must hold whole passages: 20 lots and
20 stock entries, one movement, per pass passed.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

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
from bench.fixtures import ZONE
from bench.movements import GATE, ITEMS, Book, Writer, open_ledger
from domain import gate_passes as gp
from domain.declaration import Declaration
from ledger.commands import Idempotency, Ledger
from ledger.keys import ApiKeys

# The pool is sized for at most this many passages a second (warm-up and measured phase).
CEILING = 400.0
QUANTITY = "10"  # per line: CNY 4,200 a laptop line, under the first-value review bound
GROSS_KG = Decimal("1000")
MEASURED_KG = Decimal("1010")  # 1% over: within the 5% tolerance
CHECKED = 3  # passages recorded in-process, recorder wrapped, on each prepared database
REFERENCE_PATH = "/v1/declarations"  # the reference's one route; it stores any bytes
EXHAUSTED = "/v1/gate-passes/none-left/passage"  # 404: the pool was too small


def passage_path(pass_no: str) -> str:
    return f"/v1/gate-passes/{pass_no}/passage"


def passage_body() -> bytes:
    return json.dumps({"measured_gross_weight_kg": str(MEASURED_KG)}).encode()


def file_passes(w: Writer, book: Book, count: int) -> list[str]:
    """`count` released 20-line imports on `book`, each with its checklist, and one gate pass
    filed per checklist carrying all 20 lines; the pass numbers."""
    passes = []
    for n in range(count):
        declaration = w.ledger.app.load(UUID(w.declare(book, QUANTITY)), Declaration)
        assert declaration is not None and declaration.checklist_no is not None
        cmd = gp.FileGatePass(
            zone=ZONE,
            direction="in",
            vehicle=gp.Vehicle(plate=f"陕A{n % 100000:05d}"),
            gross_weight_kg=GROSS_KG,
            checklists=[
                gp.PassChecklist(
                    checklist_no=declaration.checklist_no,
                    lines=[
                        gp.PassLine(line_no=i, quantity=Decimal(QUANTITY))
                        for i in range(1, ITEMS + 1)
                    ],
                )
            ],
        )
        outcome = w.file_pass(book, cmd)
        passes.append(str(outcome.body.pass_no))
    return passes


@dataclass(frozen=True)
class Written:
    """Transactions of passages recorded in-process: the events each inserted."""

    per_passage: list[list[int]]  # for each passage, the events of each insert_events call


def count_writes(ledger: Ledger, passes: Sequence[str]) -> Written:
    """Record a passage of each pass through the command layer, one at a time, with the
    recorder's `insert_events` (one transaction per call) wrapped to count its calls."""
    recorder: Any = ledger.app.recorder
    calls: list[int] = []
    original = recorder.insert_events

    def counting(stored_events: Sequence[Any], **kwargs: Any) -> Any:
        calls.append(len(stored_events))
        return original(stored_events, **kwargs)

    recorder.insert_events = counting
    per_passage = []
    try:
        for n, number in enumerate(passes):
            calls.clear()
            outcome = ledger.record_passage(
                number,
                gp.RecordPassage(measured_gross_weight_kg=MEASURED_KG),
                GATE,
                Idempotency(GATE.name, f"check-{n}", "POST", passage_path(number)),
            )
            if outcome.status_code != 200:
                raise RuntimeError(f"passage answered {outcome.status_code}: {outcome.body}")
            per_passage.append(list(calls))
    finally:
        del recorder.insert_events  # the class's method again
    return Written(per_passage)


@dataclass(frozen=True)
class Prepared:
    token: str  # the XCBZ operator's key
    warm: list[str]  # pass numbers for the warm-up
    run: list[str]  # pass numbers for the measured phase
    written: Written


def prepare_database(database_url: str, warm: int, run: int) -> Prepared:
    """One enterprise and its book; `warm + run` passes filed and not passed, an operator key;
    CHECKED more passes recorded in-process (`count_writes`)."""
    app, ledger = open_ledger(database_url)
    try:
        w = Writer(ledger, prefix="setup")
        book = w.open_book(3)
        passes = file_passes(w, book, warm + run + CHECKED)
        written = count_writes(ledger, passes[-CHECKED:])
        token = ApiKeys(app).issue(name=GATE.name, role="operator", zone=ZONE)
    finally:
        app.close()
    return Prepared(token, passes[:warm], passes[warm : warm + run], written)


# -- the log -----------------------------------------------------------------------------------

PASSAGE_EVENTS = ("GatePassPassed", "MovementRecorded", "GoodsMoved", "LotCreated", "GoodsAdmitted")


@dataclass(frozen=True)
class Transactions:
    """The events written after a log position, by transaction (one `recorded_at` each)."""

    events: Counter[str]
    count: int  # transactions
    with_passage: int  # transactions holding at least one passage
    most: int  # the most passages one transaction holds
    split: int  # transactions whose events are not whole passages


def transactions(store: Path, after: int) -> Transactions:
    conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT recorded_at, topic FROM stored_events WHERE rowid > ? ORDER BY rowid",
            (after,),
        ).fetchall()
    finally:
        conn.close()
    events: Counter[str] = Counter()
    by_write: dict[str, Counter[str]] = {}
    for recorded_at, topic in rows:
        name = topic.rpartition(":")[2]
        events[name] += 1
        by_write.setdefault(recorded_at, Counter())[name] += 1
    passages = [c["GatePassPassed"] for c in by_write.values()]
    split = sum(
        1
        for c in by_write.values()
        if c["MovementRecorded"] != c["GatePassPassed"]
        or c["GoodsMoved"] != c["GatePassPassed"]
        or c["LotCreated"] != ITEMS * c["GatePassPassed"]
        or c["GoodsAdmitted"] != ITEMS * c["GatePassPassed"]
    )
    return Transactions(
        events=events,
        count=len(by_write),
        with_passage=sum(1 for p in passages if p),
        most=max(passages, default=0),
        split=split,
    )


# -- M2 ----------------------------------------------------------------------------------------


def settled(server: Server, quiet: float = 0.3, timeout: float = 15.0) -> int:
    """The log position once it has stopped moving: the warm-up's requests still in flight
    when its load generator stopped commit before the measured phase is counted from it."""
    position = int(server.get_json("/healthz")["log_position"])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = int(server.get_json("/healthz")["log_position"])
        if now == position:
            break
        position = now
    return position


def _phase(
    cfg: Config, generator: str, kind: str, r: int, requests: list[loadgen.Request] | None
) -> tuple[loadgen.LoadResult, dict[str, Any]]:
    """Start one server (on a new prepared database for the ledger), warm it up, load it,
    stop it. The reference reuses the ledger's request bodies (`requests`)."""
    from bench.p1 import ledger_server, reference_server

    directory = cfg.workdir / f"m2-{r}-{kind}"
    directory.mkdir()
    port = free_port()
    store = directory / "ledger.sqlite3"
    extra: dict[str, Any] = {}
    body = passage_body()
    if kind == "ledger":
        url = f"sqlite:///{store}"
        warm = math.ceil(cfg.warmup_seconds * CEILING)
        run = math.ceil(cfg.load_seconds * CEILING)
        t0 = time.monotonic()
        prepared = prepare_database(url, warm, run)
        progress(
            f"M2 repeat {r + 1}: {warm + run + CHECKED} passes filed through the command layer "
            f"in {time.monotonic() - t0:.0f}s"
        )
        extra["written_in_process"] = prepared.written
        warm_requests = [
            loadgen.Request(prepared.token, passage_path(p), body) for p in prepared.warm
        ]
        requests = [loadgen.Request(prepared.token, passage_path(p), body) for p in prepared.run]
        extra["requests"] = requests
        order: loadgen.Order = "once"
        server = ledger_server(port, directory, url)
    else:
        assert requests is not None
        requests = [replace(x, path=REFERENCE_PATH) for x in requests]
        warm_requests = requests
        order = "shared"
        server = reference_server(port, directory)
    try:
        server.wait_ready()
        load, before = loadgen.warm_then_load(
            cfg,
            generator,
            server.base,
            warm_requests,
            requests,
            f"{r}{kind[0]}",
            directory,
            lambda: settled(server),
            order=order,
            exhausted=EXHAUSTED,
        )
        health = server.get_json("/healthz")
        extra["lag"] = health.get("projection_lag_events")
        extra["projection_error"] = health.get("projection_error")
    finally:
        server.stop()
    if kind == "ledger":
        extra["transactions"] = transactions(store, before)
    return load, extra


def _tally(alone: list[list[int]]) -> list[str]:
    """`9 x 1 transaction of 44 events` for the in-process passages' transactions."""
    shapes = Counter(tuple(calls) for calls in alone)
    return [
        f"{n} x {len(calls)} transaction{'s' if len(calls) != 1 else ''} of "
        f"{'+'.join(map(str, calls))} events"
        for calls, n in shapes.items()
    ]


def http(cfg: Config) -> Result:
    result = Result("M2", f"gate-pass passages over HTTP, {cfg.connections} connections, SQLite")
    generator, description = loadgen.announce(cfg, "M2")
    led: list[loadgen.LoadResult] = []
    ref: list[loadgen.LoadResult] = []
    lines: list[float] = []
    events_per_passage: list[float] = []
    writes_alone: list[float] = []
    per_transaction: list[float] = []
    lags: list[object] = []
    split = 0
    notes: list[str] = []  # under load, by repeat
    alone: list[list[int]] = []  # in-process: each passage's transactions, their events
    requests: list[loadgen.Request] | None = None
    for r in range(cfg.repeats):
        # The reference needs the ledger's request bodies: the ledger goes first in repeat 1.
        order = ("ledger", "reference") if r % 2 == 0 else ("reference", "ledger")
        for kind in order:
            load, extra = _phase(cfg, generator, kind, r, requests)
            if kind == "ledger":
                requests = extra["requests"]
                led.append(load)
                t: Transactions = extra["transactions"]
                written: Written = extra["written_in_process"]
                passed = t.events["GatePassPassed"]
                lines.append(t.events["GoodsAdmitted"] / load.seconds)
                events_per_passage.append(sum(t.events.values()) / passed if passed else 0.0)
                per_transaction.append(passed / t.with_passage if t.with_passage else 0.0)
                writes_alone.append(median([len(calls) for calls in written.per_passage]))
                split += t.split
                lags.append(extra["lag"])
                if extra.get("projection_error"):
                    result.notes.append(f"projection error: {extra['projection_error']}")
                notes.append(
                    f"{passed:,} passages in {t.with_passage:,} transactions (at most {t.most} "
                    f"in one), {t.split} holding part of a passage"
                )
                alone += written.per_passage
                detail = f", {passed} passages written, {t.with_passage} transactions"
            else:
                ref.append(load)
                detail = ""
            loadgen.progress_load(f"M2 repeat {r + 1}/{cfg.repeats} {kind}", load, detail)
    result.figures = [
        Figure(
            "M2.throughput",
            f"passages/s (2xx responses), {ITEMS} lines each",
            "/s",
            [x.throughput for x in led],
            reference=[x.throughput for x in ref],
            reference_what="bare FastAPI endpoint (P1b's), one SQLite INSERT+COMMIT of the same "
            "passage bodies per POST (WAL, synchronous=FULL), same uvicorn and load",
        ),
        Figure(
            "M2.p99",
            "p99 latency",
            "ms",
            [x.p99_ms for x in led],
            reference=[x.p99_ms for x in ref],
            reference_what="the same reference endpoint",
            higher_is_better=False,
        ),
        *latency_figures("M2", led, ref),
        Figure("M2.lines", "gate_in lines/s (from the log, in-flight ones included)", "/s", lines),
        Figure("M2.events", "events written per passage (from the log)", "", events_per_passage),
        Figure(
            "M2.writes",
            "transactions per passage, in-process alone (recorder wrapped)",
            "",
            writes_alone,
        ),
        Figure(
            "M2.grouped",
            "passages per transaction under load (group commit)",
            "",
            per_transaction,
        ),
    ]
    errors = sum(x.errors for x in led)
    total = sum(x.requests for x in led)
    ref_errors = sum(x.errors for x in ref)
    result.notes.append(f"{description}.")
    result.notes.append(
        "M2 is its own benchmark, not part of M1: M1's figures and target are those of single "
        "movements (its mix unchanged keeps its runs comparable), and a passage is a "
        "different request - one write over a whole pass - with figures of its own."
    )
    result.notes.append(
        f"Each phase: a new database prepared through the command layer (one enterprise, its "
        f"{ITEMS}-item book, a released first-line import of {QUANTITY} of every item per "
        f"pass, its checklist, and a gate pass `in` carrying all {ITEMS} lines, declared "
        f"{GROSS_KG} kg), a new server process, {cfg.warmup_seconds:g} s warm-up on passes of "
        f"its own, then {cfg.load_seconds:g} s measured; the pool holds {CEILING:g} passes per "
        "second of load. Each request posts `POST /v1/gate-passes/{pass_no}/passage` "
        f"(`measured_gross_weight_kg` {MEASURED_KG}) with an XCBZ operator key and its own "
        "Idempotency-Key, each pass once; the reference gets the same bodies at its one route. "
        "The ledger and the reference alternate order from one repeat to the next."
    )
    result.notes.append(
        f"One write per passage. Alone (in-process, recorder wrapped), {len(alone)} passages "
        f"took {' and '.join(_tally(alone))}. Under load, by repeat: "
        + "; ".join(notes)
        + ". A transaction is told in the log by its `recorded_at` (all its events share it; "
        "the next transaction's is later). Each passage writes its movement (MovementRecorded, "
        f"GoodsMoved), {ITEMS} LotCreated, {ITEMS} GoodsAdmitted, GatePassPassed and the "
        "Idempotency-Key's RequestCompleted."
    )
    result.notes.append(
        f"Ledger: {errors} non-2xx or failed responses of {total}; reference: {ref_errors}. "
        f"Read-model lag right after the load: {', '.join(str(x) for x in lags)} events."
    )
    if total and errors / total > 0.01:
        result.error = (
            f"{errors} of {total} passages failed (404s mean the pool of passes ran out: raise "
            "CEILING): the figures are not valid"
        )
    elif split or any(w != 1 for w in writes_alone):
        result.error = "a passage was not one write: see the notes"
    return result
