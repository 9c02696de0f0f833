"""P2: bulk load of events - `import-events` of an export into an empty SQLite store.

The source store is P5's: movement traffic written through the command layer (bench/p5.py's
builder; when P5 ran earlier in the same run, its big store is reused). Each repeat exports it
(`ledger.export.export_events`, what `customs-ledger export-events` runs), then restores the
file into a new empty store (`import_events`, what `customs-ledger import-events` runs: every
line parsed and its hash recomputed, rows bulk-inserted in one transaction). The reference is
the floor of any load: the same rows read from the source with a plain sqlite3 cursor and
inserted with executemany into a bare table (no key, no index) in one transaction, in the same
run. The restored store's digest must equal the source's; one restore through the real CLI
checks the chain with `verify` and reports the importer's peak memory.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from bench.common import ROOT, Config, Figure, Result, progress
from bench.p5 import build_store
from ledger import audit
from ledger.application import LedgerApplication
from ledger.database import parse_database_url
from ledger.export import export_events, import_events

P2_RATE = 25_000.0
BATCH = 5_000

# The columns the recorder writes, in the order its bulk loader inserts them.
SOURCE_ROWS = (
    "SELECT rowid, originator_id, originator_version, topic, state, sequence, recorded_at, hash "
    "FROM stored_events ORDER BY rowid"
)
BARE_TABLE = (
    "CREATE TABLE events (position INTEGER, originator_id TEXT, originator_version INTEGER, "
    "topic TEXT, state BLOB, sequence INTEGER, recorded_at TEXT, hash BLOB)"
)


def _remove(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def source_store(cfg: Config, target: int) -> tuple[str, int]:
    """The URL and event count of a store of about `target` events of P5's traffic."""
    p5 = cfg.workdir / "p5" / "big" / "ledger.sqlite3"
    if p5.exists():
        app = LedgerApplication(parse_database_url(f"sqlite:///{p5}"))
        try:
            events = int(app.log.count())
        finally:
            app.close()
        if events >= target:
            progress(f"P2 reuses P5's store: {events:,} events")
            return f"sqlite:///{p5}", events
    started = time.perf_counter()
    store = build_store(cfg.workdir / "p2" / "source", target, "p2")
    progress(
        f"P2 built the source store: {store.events:,} events in "
        f"{time.perf_counter() - started:.0f}s (through the command layer)"
    )
    return store.url, store.events


def raw_load(source: str, target: Path) -> int:
    """The same rows, plain cursor to executemany into a bare table, one transaction."""
    _remove(target)
    src = sqlite3.connect(source)
    dst = sqlite3.connect(target, isolation_level=None)
    try:
        dst.execute("PRAGMA journal_mode=WAL")
        dst.execute("PRAGMA synchronous=FULL")
        dst.execute(BARE_TABLE)
        dst.execute("BEGIN IMMEDIATE")
        cursor = src.execute(SOURCE_ROWS)
        n = 0
        while rows := cursor.fetchmany(BATCH):
            dst.executemany("INSERT INTO events VALUES (?,?,?,?,?,?,?,?)", rows)
            n += len(rows)
        dst.execute("COMMIT")
        return n
    finally:
        src.close()
        dst.close()


def restore_with_the_cli(path: Path, url: str) -> tuple[str, int]:
    """`customs-ledger import-events FILE` in its own process: its summary and peak RSS (KiB).

    The peak is VmHWM of the process's own memory (ru_maxrss would include the parent's size
    at the fork, which Linux keeps across exec)."""
    code = (
        "import sys\n"
        "from api.cli import main\n"
        "rc = main(['import-events', sys.argv[1]])\n"
        "with open('/proc/self/status') as status:\n"
        "    peak = next(line for line in status if line.startswith('VmHWM:')).split()[1]\n"
        "print('maxrss', peak, file=sys.stderr)\n"
        "sys.exit(rc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(path)],
        cwd=ROOT,
        env={**os.environ, "LEDGER_DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"import-events exited {done.returncode}: {done.stderr[-2000:]}")
    lines = done.stderr.strip().splitlines()
    return lines[-2], int(lines[-1].split()[1])


def bulk_load(cfg: Config) -> Result:
    target = 100_000 if cfg.quick else 1_000_000
    result = Result("P2", f"bulk load: import-events of a {target:,}-event export (SQLite)")
    source_url, events = source_store(cfg, target)
    source_path = parse_database_url(source_url).path
    directory = cfg.workdir / "p2"
    directory.mkdir(exist_ok=True)
    export_path = directory / "events.jsonl"
    restored_path = directory / "restored.sqlite3"
    source = LedgerApplication(parse_database_url(source_url))
    try:
        digest = audit.digest(source.log)
        assert digest is not None
        import_rates: list[float] = []
        export_rates: list[float] = []
        raw_rates: list[float] = []
        for r in range(cfg.repeats):
            started = time.perf_counter()
            with export_path.open("wb") as out:
                summary = export_events(source.log, out)
            export_rates.append(summary.events / (time.perf_counter() - started))
            if summary.events != events or summary.head_hash != digest.head_hash:
                raise RuntimeError(f"the export holds {summary} of {events} events, {digest}")

            _remove(restored_path)
            started = time.perf_counter()
            restored = LedgerApplication(parse_database_url(f"sqlite:///{restored_path}"))
            try:
                with export_path.open("rb") as lines:
                    loaded = import_events(restored.recorder, lines)
                import_rates.append(loaded.events / (time.perf_counter() - started))
                if audit.digest(restored.log) != digest:
                    raise RuntimeError(f"restored digest {audit.digest(restored.log)} != {digest}")
            finally:
                restored.close()

            started = time.perf_counter()
            n = raw_load(source_path, directory / "raw.sqlite3")
            raw_rates.append(n / (time.perf_counter() - started))
            progress(
                f"P2 repeat {r + 1}/{cfg.repeats}: import {import_rates[-1]:,.0f} events/s, "
                f"export {export_rates[-1]:,.0f} events/s; raw executemany {raw_rates[-1]:,.0f} "
                "rows/s"
            )
    finally:
        source.close()

    # Once through the real CLI, in its own process: then the restored chain is verified.
    _remove(restored_path)
    cli_summary, maxrss = restore_with_the_cli(export_path, f"sqlite:///{restored_path}")
    restored = LedgerApplication(parse_database_url(f"sqlite:///{restored_path}"))
    try:
        report = audit.verify(
            restored.log, against=(digest.sequence, bytes.fromhex(digest.head_hash))
        )
    finally:
        restored.close()
    if not report.ok:
        raise RuntimeError(f"verify of the restored store: {report.failures[:3]}")
    progress(f"P2 CLI: {cli_summary}; peak RSS {maxrss / 1024:,.0f} MiB; verify --against ok")
    size = export_path.stat().st_size
    for path in (export_path, restored_path, directory / "raw.sqlite3"):
        _remove(path)

    result.figures = [
        Figure(
            "P2.import",
            f"import-events into an empty store, {events:,} events",
            "events/s",
            import_rates,
            reference=raw_rates,
            reference_what="the same rows read from the source with a plain sqlite3 cursor "
            f"and inserted by executemany ({BATCH:,} per call) into a bare table (no key, no "
            "index) in one transaction: the floor of any load",
            target=f">= {P2_RATE:,.0f} events/s",
            check=lambda v, _ratio: v >= P2_RATE,
        ),
        Figure(
            "P2.export",
            f"export-events, {events:,} events",
            "events/s",
            export_rates,
        ),
    ]
    result.notes.append(
        f"The source: {events:,} events of P5's movement traffic, written through the command "
        f"layer (bench/p5.py's builder). The export file: {size / 2**20:,.0f} MiB of JSON "
        f"Lines. Import: every line parsed and checked (hash recomputed from the line before, "
        f"sequence, position and per-stream version continuity), rows inserted {BATCH:,} per "
        "executemany into the recorder's table (its primary key and indexes) in one "
        "transaction, committed once (WAL, synchronous=FULL). The restored digest equals the "
        "source's in every repeat."
    )
    result.notes.append(
        f"Once more through `customs-ledger import-events` in its own process: {cli_summary}; "
        f"peak RSS {maxrss / 1024:,.0f} MiB; then `verify --against` the source's digest: ok."
    )
    if cfg.quick:
        result.notes.append(f"Quick run: {events:,} events, not 1M.")
    return result
