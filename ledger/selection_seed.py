"""The risk engine's random-selection seed: secret, outside the log, made on first start.

The draw of a declaration is SHA-256 of `<seed>:<declaration id>` (domain/risk.py `draw_for`)
and the declaration id follows from the declarant's own Idempotency-Key, so whoever holds the
seed can search for keys whose draw escapes selection. The seed is therefore:

- made with `secrets` (256 bits, hex) by the first process that opens the store, and kept in a
  table of its own, `selection_seed` (one row), never chained and never in `export-events`:
  on SQLite a file beside the log (`<db>.seed.sqlite3`, 0600), on PostgreSQL a table in the
  log's schema, so every server on one database draws with the same seed;
- never logged, printed or answered by a route; only `customs-ledger risk rotate-seed`
  (admin) replaces it, and says only when it did;
- re-read every `refresh_seconds` (10 by default): a rotation reaches every server within that
  time, without a restart.

Each decision records its draw, so replay and audit never need the seed
(docs/decisions/0021-secret-selection-seed.md).
"""

from __future__ import annotations

import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from ledger.database import Database, private_file, schema_creation_lock

SEED_BYTES = 32
REFRESH_SECONDS = 10.0
DDL = (
    "CREATE TABLE IF NOT EXISTS {table} ("
    " id INTEGER PRIMARY KEY, seed TEXT NOT NULL, created_at TEXT NOT NULL)"
)


def new_seed() -> str:
    return secrets.token_hex(SEED_BYTES)


class _SQLiteTable:
    def __init__(self, path: str) -> None:
        if not (path.startswith(":memory:") or "mode=memory" in path):
            private_file(path)
        self.conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10)
        self.lock = threading.Lock()
        self.table = "selection_seed"

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        with self.lock:
            cur = self.conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")

    def sql(self, text: str) -> str:
        return text.format(table=self.table)

    def close(self) -> None:
        self.conn.close()


class _PostgresTable:
    def __init__(self, datastore: Any, schema: str) -> None:
        self.datastore = datastore
        self.table = f'"{schema}".selection_seed'

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        with self.datastore.transaction(commit=True) as cur:
            yield cur

    def sql(self, text: str) -> str:
        return text.format(table=self.table).replace("?", "%s")

    def close(self) -> None:
        """The pool is the application's."""


def _value(row: Any) -> str:
    return str(row["seed"] if isinstance(row, dict) else row[0])


class SelectionSeed:
    """The seed store: `current()` for the draws, `rotate()` for the admin's command."""

    def __init__(
        self,
        table: _SQLiteTable | _PostgresTable,
        refresh_seconds: float = REFRESH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.table = table
        self.refresh_seconds = refresh_seconds
        self.clock = clock
        self._cached: tuple[str, float] | None = None
        with table.transaction() as cur:
            cur.execute(table.sql(DDL))
        self.current()  # made on first start, not at the first declaration

    @classmethod
    def beside(cls, database: Database, datastore: Any = None) -> SelectionSeed:
        """The seed of a database: a file beside a SQLite log, a table beside a PostgreSQL one
        (`datastore`: the application's, for its pool)."""
        if database.kind == "sqlite":
            path = database.path
            if not (path.startswith(":memory:") or "mode=memory" in path):
                stem = path[: -len(".sqlite3")] if path.endswith(".sqlite3") else path
                path = stem + ".seed.sqlite3"
            return cls(_SQLiteTable(path))
        with schema_creation_lock(database, "selection seed"):
            return cls(_PostgresTable(datastore, database.schema))

    def _read_or_make(self) -> str:
        t = self.table
        with t.transaction() as cur:
            cur.execute(t.sql("SELECT seed FROM {table} WHERE id = 1"))
            row = cur.fetchone()
            if row is not None:
                return _value(row)
            # Two processes starting at once: the first insert wins, the other reads it.
            cur.execute(
                t.sql("INSERT INTO {table} VALUES (1, ?, ?) ON CONFLICT (id) DO NOTHING"),
                (new_seed(), datetime.now(UTC).isoformat()),
            )
            cur.execute(t.sql("SELECT seed FROM {table} WHERE id = 1"))
            return _value(cur.fetchone())

    def current(self) -> str:
        """The seed in force: read again when the last read is `refresh_seconds` old."""
        now = self.clock()
        cached = self._cached
        if cached is not None and now - cached[1] < self.refresh_seconds:
            return cached[0]
        seed = self._read_or_make()
        self._cached = (seed, now)
        return seed

    def rotate(self) -> str:
        """Replace the seed; answers when (never the seed). Recorded draws stay as they are."""
        t = self.table
        at = datetime.now(UTC).isoformat()
        self.current()
        with t.transaction() as cur:
            cur.execute(
                t.sql("UPDATE {table} SET seed = ?, created_at = ? WHERE id = 1"), (new_seed(), at)
            )
        self._cached = None
        return at

    def close(self) -> None:
        self.table.close()

    def __repr__(self) -> str:
        return "SelectionSeed(<secret>)"
