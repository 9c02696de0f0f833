"""M1: movements recorded over HTTP, 16 connections; and the movement traffic P5 builds on.

The traffic (shared with P5): enterprises each with an account book of 20 items in XCBZ, goods
admitted under released first-line imports (`gate_in`), counted (stocktake adjustments, +/-),
reserved by released exports and let out (`gate_out`) - every step a real command of the
ledger's command layer (`Ledger`), with an Idempotency-Key as over HTTP.

M1 posts `POST /v1/movements` over HTTP: stocktake adjustments (-1 first-in first-out, +1 on
the item's lot) on one book and 20-line `gate_in` admissions against pre-released declarations
of another, in turn, against `customs-ledger serve`; the reference is P1b's bare FastAPI
endpoint doing one SQLite insert per POST, loaded with the same bodies.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections import Counter
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

from bench import loadgen
from bench.common import (
    Config,
    Figure,
    Result,
    free_port,
    latency_figures,
    median,
)
from bench.fixtures import ADMIN, ZONE, book_no_of
from domain.account_book import OpenAccountBook
from domain.declaration import ReleaseDeclaration, SubmitDeclaration
from domain.enterprise import RegisterEnterprise
from domain.events import Actor
from domain.exits import GateOut
from domain.gate_passes import FileGatePass
from domain.movements import GateIn
from domain.reference import DEFAULT_ZONES
from domain.stocktake import Adjustment
from ledger.application import LedgerApplication
from ledger.commands import Idempotency, Ledger, Outcome
from ledger.database import parse_database_url
from ledger.keys import ApiKeys
from tests.samples import declaration_body, make_uscc, rules_without_draws

PATH = "/v1/movements"
ITEMS = 20
# The M1 target (docs/benchmarks.md, "Targets").
M1_RATE = 1000.0
M1_P99_MS = 25.0
# (HS code, name, unit, unit price): the book's items alternate between the two goods the
# tests use (green under the built-in rules: no watched HS code, a steady unit price).
GOODS = (
    ("8471300000", "Laptop computers", "C62", "420.00"),
    ("0901210000", "Roasted coffee", "KGM", "8.50"),
)
GATE = Actor(name="gate-xcbz", role="operator", zone=ZONE)
OFFICER = Actor(name="bench-officer", role="officer")
M1_DECLARATIONS = 4  # pre-released imports the gate_in requests of M1 draw on, in turn
M1_STOCK = "1000000"  # admitted per item before M1's adjustments


def _goods(item_no: int) -> tuple[str, str, str, str]:
    return GOODS[(item_no - 1) % len(GOODS)]


def book_items() -> list[dict[str, Any]]:
    return [
        {"item_no": n, "hs_code": _goods(n)[0], "name": _goods(n)[1], "unit": _goods(n)[2]}
        for n in range(1, ITEMS + 1)
    ]


def declaration_lines(quantity: str, *, outbound: bool = False) -> list[dict[str, Any]]:
    """One line per item of the book, each `quantity`."""
    return [
        {
            "line_no": n,
            "item_no": n,
            "hs_code": _goods(n)[0],
            "description": _goods(n)[1],
            "quantity": quantity,
            "unit": _goods(n)[2],
            "unit_price": _goods(n)[3],
            "origin_country": None if outbound else "DE",
        }
        for n in range(1, ITEMS + 1)
    ]


@dataclass(frozen=True)
class Book:
    uscc: str
    book_no: str
    actor: Actor  # its enterprise, as its key authenticates it


@dataclass
class Writer:
    """The ledger's command layer, called as the HTTP routes call it (with Idempotency-Keys).

    Asserts every answer is the expected success and remembers the last log position.
    """

    ledger: Ledger
    prefix: str = "w"
    commands: int = 0
    position: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)

    def _idem(self, actor: Actor, path: str) -> Idempotency:
        self.commands += 1
        return Idempotency(actor.name, f"{self.prefix}-{self.commands}", "POST", path)

    def _done(self, kind: str, outcome: Outcome) -> Outcome:
        if outcome.status_code != 201 or outcome.replayed:
            raise RuntimeError(f"{kind} answered {outcome.status_code}: {outcome.body}")
        self.by_kind[kind] += 1
        if outcome.position is not None:
            self.position = max(self.position, outcome.position)
        return outcome

    def open_book(self, serial: int) -> Book:
        """Register an enterprise and open its 20-item book in XCBZ."""
        code = make_uscc(serial)
        self.ledger.register_enterprise(
            RegisterEnterprise(
                uscc=code,
                customs_code="6101340001",
                name=f"Xi'an Silk Road Trading Co., Ltd. {serial}",
                credit_class="regular",
            ),
            ADMIN,
        )
        book_no = book_no_of(code)
        self.ledger.open_account_book(
            msgspec.convert(
                {"book_no": book_no, "enterprise": code, "zone": ZONE, "items": book_items()},
                OpenAccountBook,
            ),
            ADMIN,
        )
        return Book(code, book_no, Actor(name=f"ent-{code}", role="enterprise", enterprise=code))

    def declare(self, book: Book, quantity: str, *, outbound: bool = False) -> str:
        """A first-line import (or export abroad) of `quantity` of every item, released green;
        an export reserves its quantities. Returns the declaration's id."""
        extra: dict[str, Any] = (
            {"flow": "first_line_out", "trade_mode": "0110", "country": "KZ"} if outbound else {}
        )
        body = declaration_body(
            book.uscc,
            book.book_no,
            lines=declaration_lines(quantity, outbound=outbound),
            **extra,
        )
        cmd = msgspec.convert(body, SubmitDeclaration)
        kind = "export" if outbound else "import"
        outcome = self._done(
            kind,
            self.ledger.submit_declaration(
                cmd, book.actor, self._idem(book.actor, "/v1/declarations")
            ),
        )
        status, number = outcome.body.status, str(outcome.body.id)
        if status == "document_review":
            # An item's first declaration over the first-value bound (CNY 10 million) waits for
            # an officer's review (domain/value_checks.py); the officer releases it, as at a
            # real first arrival (tests/support.py `admit` does the same).
            released = self.ledger.decide_on(
                "release",
                number,
                ReleaseDeclaration(),
                OFFICER,
                self._idem(OFFICER, f"/v1/declarations/{number}/release"),
            )
            if released.status_code != 200 or released.replayed:
                raise RuntimeError(f"release answered {released.status_code}: {released.body}")
            self.by_kind["release"] += 1
            status = released.body.status
        if status != "released":
            raise RuntimeError(f"{kind} declaration is {status}, not released")
        return number

    def gate(self, kind: str, declaration: str, quantity: str) -> Outcome:
        """`gate_in` or `gate_out` of `quantity` on every line of a declaration."""
        body = {
            "kind": kind,
            "declaration": declaration,
            "lines": [{"line_no": n, "quantity": quantity} for n in range(1, ITEMS + 1)],
        }
        cmd: GateIn | GateOut = (
            msgspec.convert(body, GateIn) if kind == "gate_in" else msgspec.convert(body, GateOut)
        )
        return self._done(kind, self.ledger.record_movement(cmd, GATE, self._idem(GATE, PATH)))

    def file_pass(self, book: Book, cmd: FileGatePass) -> Outcome:
        """File a gate pass (核放单) as the book's enterprise (bench/passages.py)."""
        idem = self._idem(book.actor, "/v1/gate-passes")
        return self._done("gate_pass", self.ledger.file_gate_pass(cmd, book.actor, idem))

    def adjust(self, book: Book, item_no: int, delta: int, lot_id: str | None = None) -> Outcome:
        cmd = Adjustment(
            account_book=book.book_no,
            item_no=item_no,
            quantity_delta=Decimal(delta),
            reason="stocktake",
            lot_id=None if lot_id is None else uuid.UUID(lot_id),
        )
        return self._done(
            "adjustment",
            self.ledger.record_movement(cmd, book.actor, self._idem(book.actor, PATH)),
        )


def open_ledger(database_url: str) -> tuple[LedgerApplication, Ledger]:
    """The application and its command layer, with the test rules (no random selection: every
    declaration here is released green, as the traffic needs)."""
    app = LedgerApplication(parse_database_url(database_url))
    return app, Ledger(app, {z.code: z for z in DEFAULT_ZONES}, rules=rules_without_draws())


# -- M1: movements over HTTP ------------------------------------------------------------------


def _encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Prepared:
    requests: list[loadgen.Request]  # to PATH, each with its kind: -1, +1 or gate_in
    stock_book: str
    gate_book: str


def prepare_database(database_url: str) -> Prepared:
    """Two enterprises and books with keys; book 1 holds M1_STOCK of every item in one lot,
    book 2 has M1_DECLARATIONS released imports not yet moved. The requests M1 cycles over:
    per item, an adjustment of -1 (first in, first out: the item's only lot), one of +1 on that
    lot, and a 20-line gate_in of 1 per line (the declarations in turn)."""
    app, ledger = open_ledger(database_url)
    try:
        w = Writer(ledger, prefix="setup")
        stock, gate = w.open_book(1), w.open_book(2)
        admitted = w.gate("gate_in", w.declare(stock, M1_STOCK), M1_STOCK)
        lots = {lot.item_no: str(lot.lot_id) for lot in admitted.body.lots}
        declarations = [w.declare(gate, M1_STOCK) for _ in range(M1_DECLARATIONS)]
        keys = ApiKeys(app)
        ent = keys.issue(name=stock.actor.name, role="enterprise", enterprise=stock.uscc)
        op = keys.issue(name=GATE.name, role="operator", zone=ZONE)
    finally:
        app.close()
    requests = []
    for n in range(1, ITEMS + 1):
        adjustment = {
            "kind": "adjustment",
            "account_book": stock.book_no,
            "item_no": n,
            "reason": "stocktake",
        }
        requests.append(
            loadgen.Request(ent, PATH, _encode({**adjustment, "quantity_delta": "-1"}), "-1")
        )
        requests.append(
            loadgen.Request(
                ent, PATH, _encode({**adjustment, "quantity_delta": "1", "lot_id": lots[n]}), "+1"
            )
        )
        gate_in = {
            "kind": "gate_in",
            "declaration": declarations[(n - 1) % len(declarations)],
            "lines": [{"line_no": i, "quantity": "1"} for i in range(1, ITEMS + 1)],
        }
        requests.append(loadgen.Request(op, PATH, _encode(gate_in), "gate_in"))
    return Prepared(requests, stock.book_no, gate.book_no)


def _written(store: Path, after: int) -> Counter[str]:
    """Events written after log position `after`, by event type (from the store itself)."""
    conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT topic, count(*) FROM stored_events WHERE rowid > ? GROUP BY topic", (after,)
        ).fetchall()
    finally:
        conn.close()
    return Counter({topic.rpartition(":")[2]: int(n) for topic, n in rows})


def _phase(
    cfg: Config, generator: str, kind: str, r: int, prepared: Prepared | None
) -> tuple[loadgen.LoadResult, dict[str, Any]]:
    """Start one server, warm it up, load it, stop it."""
    from bench.p1 import ledger_server, reference_server

    directory = cfg.workdir / f"m1-{r}-{kind}"
    directory.mkdir()
    port = free_port()
    store = directory / "ledger.sqlite3"
    if kind == "ledger":
        url = f"sqlite:///{store}"
        prepared = prepare_database(url)
        server = ledger_server(port, directory, url)
        requests = prepared.requests
    else:
        server = reference_server(port, directory)
        assert prepared is not None
        # The reference's one route; it stores any bytes.
        requests = [replace(x, path="/v1/declarations") for x in prepared.requests]
    extra: dict[str, Any] = {"prepared": prepared}
    try:
        server.wait_ready()
        load, before = loadgen.warm_then_load(
            cfg,
            generator,
            server.base,
            requests,
            requests,
            f"{r}{kind[0]}",
            directory,
            lambda: int(server.get_json("/healthz")["log_position"]),
        )
        health = server.get_json("/healthz")
        extra["written"] = int(health["log_position"]) - before
        extra["lag"] = health.get("projection_lag_events")
        extra["projection_error"] = health.get("projection_error")
        extra["before"] = before
    finally:
        server.stop()
    if kind == "ledger":
        extra["events"] = _written(store, extra["before"])
    return load, extra


def http(cfg: Config) -> Result:
    result = Result("M1", f"movements over HTTP, {cfg.connections} connections, SQLite")
    generator, description = loadgen.announce(cfg, "M1")
    led: list[loadgen.LoadResult] = []
    ref: list[loadgen.LoadResult] = []
    adjustments: list[float] = []
    gate_ins: list[float] = []
    events_per_movement: list[float] = []
    lags: list[object] = []
    prepared: Prepared | None = None
    for r in range(cfg.repeats):
        # The reference needs the ledger's request bodies: the ledger goes first in repeat 1.
        order = ("ledger", "reference") if r % 2 == 0 else ("reference", "ledger")
        for kind in order:
            load, extra = _phase(cfg, generator, kind, r, prepared)
            prepared = extra["prepared"]
            ok = load.requests - load.errors
            if kind == "ledger":
                led.append(load)
                events: Counter[str] = extra["events"]
                adjusted, moved = events["StockAdjusted"], events["GoodsMoved"]
                # Movements written during the measured phase (in-flight ones included).
                adjustments.append(adjusted / load.seconds)
                gate_ins.append(moved / load.seconds)
                events_per_movement.append(extra["written"] / ok if ok else 0.0)
                lags.append(extra["lag"])
                if extra.get("projection_error"):
                    result.notes.append(f"projection error: {extra['projection_error']}")
                detail = f", {adjusted} adjustments and {moved} gate_in written"
            else:
                ref.append(load)
                detail = ""
            loadgen.progress_load(f"M1 repeat {r + 1}/{cfg.repeats} {kind}", load, detail)
    result.figures = [
        Figure(
            "M1.throughput",
            "movements/s (2xx responses)",
            "/s",
            [x.throughput for x in led],
            reference=[x.throughput for x in ref],
            reference_what="bare FastAPI endpoint (P1b's), one SQLite INSERT+COMMIT of the same "
            "movement bodies per POST (WAL, synchronous=FULL), same uvicorn and load",
            target=f">= {M1_RATE:,.0f}/s",
            check=lambda v, _ratio: v >= M1_RATE,
        ),
        Figure(
            "M1.p99",
            "p99 latency",
            "ms",
            [x.p99_ms for x in led],
            reference=[x.p99_ms for x in ref],
            reference_what="the same reference endpoint",
            higher_is_better=False,
            target=f"<= {M1_P99_MS:.0f} ms",
            check=lambda v, _ratio: v <= M1_P99_MS,
        ),
        *latency_figures("M1", led, ref),
        Figure(
            "M1.adjustments", "of which stocktake adjustments/s (from the log)", "/s", adjustments
        ),
        Figure("M1.gate_in", "of which 20-line gate_in/s (from the log)", "/s", gate_ins),
    ]
    errors = sum(x.errors for x in led)
    total = sum(x.requests for x in led)
    ref_errors = sum(x.errors for x in ref)
    result.notes.append(f"{description}.")
    result.notes.append(
        f"The requests, in turn on each connection: for each of the {ITEMS} items of one book, "
        "a stocktake adjustment of -1 (first in, first out), one of +1 naming the item's lot "
        f"(so the item keeps one open lot of about {int(M1_STOCK):,}), and a gate_in of 1 on "
        f"each of the {ITEMS} lines of one of {M1_DECLARATIONS} released first-line imports of "
        "a second book (20 new lots each). Adjustments go with the book's enterprise key, "
        "gate_in with an XCBZ operator key; every request has its own Idempotency-Key. The "
        "reference gets the same bodies at its one route."
    )
    result.notes.append(
        f"Each phase: a new database prepared through the command layer, a new server process, "
        f"{cfg.warmup_seconds:g} s warm-up, then {cfg.load_seconds:g} s measured; the ledger "
        "and the reference alternate order from one repeat to the next."
    )
    result.notes.append(
        f"Ledger: {errors} non-2xx or failed responses of {total}; reference: {ref_errors}. "
        f"Events written per accepted movement: {median(events_per_movement):.2f}; "
        f"read-model lag right after the load: {', '.join(str(x) for x in lags)} events."
    )
    if total and errors / total > 0.01:
        result.error = f"{errors} of {total} movements failed: the figures are not valid"
    return result
