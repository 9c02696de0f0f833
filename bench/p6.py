"""P6: `verify` over the whole log, against raw reads of the same rows."""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Callable
from typing import Any

import msgspec
from eventsourcing.persistence import StoredEvent

from bench.common import Config, Figure, Result, progress
from bench.fixtures import onboard, open_ledger
from ledger.chain import GENESIS, link_hash
from ledger.commands import Idempotency

P6_RATE = 300_000.0
BATCH = 5_000
SERIES_BLOCK = 1_000  # declarations numbered per synthetic number-series stream


def _templates(app: Any, ledger: Any) -> dict[str, bytes]:
    """Stored states of real events, by topic, from a few real submissions."""
    tenant = onboard(ledger)
    cmd = tenant.command()
    for i in range(3):
        ledger.submit_declaration(
            cmd, tenant.actor, Idempotency(tenant.actor.name, f"t{i}", "POST", "/v1/declarations")
        )
    return {r.topic: bytes(r.state) for r in app.log.select_log(0, 100)}


def build_log(app: Any, ledger: Any, total: int) -> int:
    """Fill the log to about `total` events shaped like real submissions; returns the count."""
    return fill_log(app, _templates(app, ledger), total)


def fill_log(app: Any, states: dict[str, bytes], total: int) -> int:
    """Add events to the log up to about `total`; returns the count.

    Each declaration is three events, as the command writes them: the next number of a
    series stream, the declaration's submission and the idempotency record. States are real
    stored events' bytes (`_templates`); the recorder chains every row (sequence,
    recorded_at, hash).
    """
    by_name = {topic.rpartition(":")[2]: (topic, state) for topic, state in states.items()}
    number = by_name["DeclarationNumberIssued"]
    submitted = by_name["DeclarationSubmitted"]
    completed = by_name["RequestCompleted"]
    insert = app.recorder.insert_events
    count = app.log.count()
    batch: list[StoredEvent] = []
    series = uuid.uuid4()
    version = 0
    while count + len(batch) < total:
        if version == SERIES_BLOCK:
            series, version = uuid.uuid4(), 0
        version += 1
        batch.append(StoredEvent(series, version, *number))
        batch.append(StoredEvent(uuid.uuid4(), 1, *submitted))
        batch.append(StoredEvent(uuid.uuid4(), 1, *completed))
        if len(batch) >= BATCH:
            insert(batch)
            count += len(batch)
            batch = []
    if batch:
        insert(batch)
    return int(app.log.count())


# The rows as stored, in log order: independent of how the recorder's reader shapes them.
SELECT_ROWS = (
    "SELECT rowid, sequence, originator_id, originator_version, topic, state, recorded_at, hash "
    "FROM stored_events ORDER BY rowid"
)


def _rows(path: str) -> sqlite3.Cursor:
    conn = sqlite3.connect(path)
    cursor = conn.execute(SELECT_ROWS)
    cursor.arraysize = 1000
    return cursor


def read_rows(path: str) -> int:
    n = 0
    cursor = _rows(path)
    while page := cursor.fetchmany():
        n += len(page)
    cursor.connection.close()
    return n


_DECODE = msgspec.json.Decoder(dict[str, Any]).decode


def read_and_decode(path: str) -> int:
    n = 0
    cursor = _rows(path)
    while page := cursor.fetchmany():
        for row in page:
            _DECODE(row[5])
        n += len(page)
    cursor.connection.close()
    return n


def read_and_hash(path: str) -> int:
    """The chain recomputed with ledger.chain.link_hash and compared, nothing else."""
    n = 0
    previous = GENESIS
    cursor = _rows(path)
    while page := cursor.fetchmany():
        for _pos, _seq, i, version, topic, state, recorded_at, link in page:
            # The id is stored as 32 hex digits; the chain hashes its canonical text.
            stream = f"{i[:8]}-{i[8:12]}-{i[12:16]}-{i[16:20]}-{i[20:]}" if len(i) == 32 else i
            previous = link_hash(previous, stream, version, topic, recorded_at, state)
            if previous != link:
                raise RuntimeError(f"reference chain check failed at row {n}")
            n += 1
    cursor.connection.close()
    return n


def _timed(fn: Callable[[], int]) -> tuple[int, float]:
    """The count `fn` returns and the seconds it took."""
    started = time.perf_counter()
    n = fn()
    return n, time.perf_counter() - started


SIZES = (100_000, 300_000, 1_000_000)


def verify_throughput(cfg: Config) -> Result:
    """verify at 100k, 300k and 1M events (quick: 50k), the same log grown between sizes; at
    the largest, verify in one process and the three references too."""
    from ledger import audit

    sizes = (50_000,) if cfg.quick else SIZES
    result = Result("P6", f"verify over logs of {', '.join(f'{n:,}' for n in sizes)} events")
    directory = cfg.workdir / "p6"
    directory.mkdir()
    path = str(directory / "ledger.sqlite3")
    app, ledger = open_ledger(f"sqlite:///{path}")
    rates_at: dict[int, list[float]] = {}
    raw_at: dict[int, list[float]] = {}
    events = 0
    try:
        states = _templates(app, ledger)
        for size in sizes:
            started = time.perf_counter()
            events = fill_log(app, states, size)
            took = time.perf_counter() - started
            progress(f"P6 grew the log to {events:,} events in {took:.1f}s")
            verify_rates: list[float] = []
            single_rates: list[float] = []
            raw_rates: list[float] = []
            decode_rates: list[float] = []
            hash_rates: list[float] = []
            largest = size == sizes[-1]
            # Not counted: the first pass over rows just written (the references read it warm).
            audit.verify(app.log)
            for r in range(cfg.repeats):
                started = time.perf_counter()
                report = audit.verify(app.log)
                seconds = time.perf_counter() - started
                if not report.ok or report.events_checked != events:
                    raise RuntimeError(f"verify on the benchmark log of {events} events: {report}")
                verify_rates.append(events / seconds)
                m, seconds = _timed(lambda: read_rows(path))
                raw_rates.append(m / seconds)
                if largest:
                    started = time.perf_counter()
                    report = audit.verify(app.log, parallel=False)
                    single_rates.append(events / (time.perf_counter() - started))
                    if not report.ok:
                        raise RuntimeError(f"verify in one process: {report}")
                    for rates, fn in ((decode_rates, read_and_decode), (hash_rates, read_and_hash)):
                        m, seconds = _timed(lambda fn=fn: fn(path))  # type: ignore[misc]
                        if m != events:
                            raise RuntimeError(f"{fn.__name__} read {m} rows of {events}")
                        rates.append(m / seconds)
                progress(
                    f"P6 {events:,} events, repeat {r + 1}/{cfg.repeats}: verify "
                    f"{verify_rates[-1]:,.0f} events/s; rows {raw_rates[-1]:,.0f}/s"
                    + (
                        f"; in one process {single_rates[-1]:,.0f}, rows+decode "
                        f"{decode_rates[-1]:,.0f}/s, rows+link_hash {hash_rates[-1]:,.0f}/s"
                        if largest
                        else ""
                    )
                )
            rates_at[events], raw_at[events] = verify_rates, raw_rates
    finally:
        app.close()
    smallest = min(rates_at)
    scale = [
        Figure(
            f"P6.verify.{n // 1000}k",
            f"verify throughput, {n:,} events",
            "events/s",
            rates_at[n],
            reference=raw_at[n],
            reference_what="the same plain reads of the rows (as P6.verify's reference)",
        )
        for n in sorted(rates_at)
        if n != events
    ]
    if len(rates_at) > 1:
        scale.append(
            Figure(
                "P6.linear",
                f"verify throughput at {events:,} events against at {smallest:,}",
                "events/s",
                rates_at[events],
                reference=rates_at[smallest],
                reference_what=f"verify of the {smallest:,}-event log: a ratio near 1 is a "
                "cost linear in the log",
            )
        )
    result.figures = [
        Figure(
            "P6.verify",
            f"verify throughput, {events:,} events",
            "events/s",
            verify_rates,
            reference=raw_rates,
            reference_what="the same rows read from SQLite in log order (plain sqlite3 "
            "cursor, pages of 1,000, no per-row work): what any verify must at least do",
            target=f">= {P6_RATE:,.0f} events/s",
            check=lambda v, _ratio: v >= P6_RATE,
        ),
        Figure(
            "P6.single",
            "verify in one process (parallel=False) vs the rows read",
            "events/s",
            single_rates,
            reference=raw_rates,
            reference_what="the same plain reads as P6.verify",
        ),
        Figure(
            "P6.decode",
            "verify vs rows read + msgspec.json decode of each state",
            "events/s",
            verify_rates,
            reference=decode_rates,
            reference_what="the same rows, each state decoded by msgspec.json into a dict",
        ),
        Figure(
            "P6.hash",
            "verify vs rows read + ledger.chain.link_hash per row",
            "events/s",
            verify_rates,
            reference=hash_rates,
            reference_what="the same rows, the chain recomputed row by row with link_hash "
            "and compared (the straightforward verify loop)",
        ),
        *scale,
    ]
    result.notes.append(
        f"The log: {events:,} events shaped like real submissions (number issued, declaration "
        f"submitted, request completed; real stored states) inserted in batches of {BATCH:,} "
        "through the chained recorder, so every row carries its real sequence and hash. "
        "The log grows from one size to the next; at each, a first verify, not counted, warms "
        "the file as the references find it; each repeat then runs verify and the plain read "
        "(at the largest also verify in one process and the other two references)."
    )
    result.notes.append(
        f"verify reads pages of plain rows and checks each in one tight loop (ledger/audit.py "
        f"`clean_page`); from {audit.PARALLEL_MIN:,} events on, when a CPU is free "
        "(ledger/machine.py: a CPU free of other work now), a second Python process checks "
        "the end of the log with the same loop while the rest is checked here "
        "(P6.verify; P6.single is the same walk in one process). The machine's other load "
        "decides how much it gains."
    )
    return result
