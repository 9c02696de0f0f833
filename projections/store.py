"""Where views live: SQLite (a file beside the event store) or PostgreSQL (the same database).

SQL is written once with `?` placeholders; the PostgreSQL store rewrites them to `%s`.
Every write goes through `transaction()`, so view rows and the tracking position of a batch
commit together or not at all: that shared transaction is what makes the runner exactly-once.
`snapshot()` reads several tables as of one instant (digests, replay comparisons), streaming
plain tuples so that a table of millions of rows never sits in memory at once.
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import msgspec

from projections.leader import PostgresLeader


class Cursor(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


class ViewStore(Protocol):
    kind: str

    def transaction(self) -> Any: ...
    def read(self) -> Any: ...
    def reader(self) -> Any: ...
    def snapshot(self) -> Any: ...
    def close(self) -> None: ...


class Snapshot(Protocol):
    """Reads that all see the views as of one instant (one read transaction)."""

    kind: str

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None: ...

    def batches(
        self, sql: str, params: Sequence[Any] = (), size: int = 5000
    ) -> Iterator[list[tuple[Any, ...]]]: ...


class _EagerCursor:
    """A cursor whose every statement runs to its end when executed (rows kept here)."""

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor
        self._rows: list[Any] = []

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._rows = self._cursor.execute(sql, params).fetchall()

    def fetchone(self) -> Any:
        return self._rows.pop(0) if self._rows else None

    def fetchall(self) -> list[Any]:
        rows, self._rows = self._rows, []
        return rows


class _SQLiteSnapshot:
    kind = "sqlite"

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def _cursor(self, sql: str, params: Sequence[Any]) -> sqlite3.Cursor:
        cur = self._conn.cursor()
        cur.row_factory = None  # plain tuples
        cur.execute(sql, params)
        return cur

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        cur = self._cursor(sql, params)
        try:
            row: tuple[Any, ...] | None = cur.fetchone()
            return row
        finally:
            cur.close()

    def batches(
        self, sql: str, params: Sequence[Any] = (), size: int = 5000
    ) -> Iterator[list[tuple[Any, ...]]]:
        cur = self._cursor(sql, params)
        try:
            while batch := cur.fetchmany(size):
                yield batch
        finally:
            cur.close()


DURABLE_PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL")
SCRATCH_PRAGMAS = (
    "PRAGMA journal_mode=OFF",
    "PRAGMA synchronous=OFF",
    "PRAGMA cache_size=-16384",  # 16 MiB of page cache (per process: a replay has two)
    "PRAGMA temp_store=MEMORY",
)


class SQLiteViews:
    """Views in their own SQLite file: their writes never queue behind the event writer's lock."""

    kind = "sqlite"

    def __init__(self, path: str, *, scratch: bool = False) -> None:
        self.path = path
        # A scratch store (a replay's, deleted afterwards whatever happens) needs neither
        # durability nor rollback: no fsync, no journal. Never for the live views.
        self.pragmas = SCRATCH_PRAGMAS if scratch else DURABLE_PRAGMAS
        if path != ":memory:":
            # Owner only, like the log (ledger/database.py private_file): the views hold the
            # same papers.
            Path(path).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self.attached: list[str] = []  # files whose tables read as this store's (`attach`)

    def attach(self, path: str) -> None:
        """Read the tables of another views file as this store's own, in every connection
        opened from now on (a replay's scratch store: read models a helper process rebuilt in
        a file of its own). Table names must not clash; this store's own come first."""
        self.attached.append(path)

    def _attach(self, conn: sqlite3.Connection) -> None:
        for n, path in enumerate(self.attached):
            conn.execute(f"ATTACH DATABASE ? AS attached_{n}", (path,))

    def _connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=30
            )
            for pragma in self.pragmas:
                conn.execute(pragma)
            self._attach(conn)
            conn.row_factory = sqlite3.Row
            self._local.conn = conn
            self._connections.append(conn)
        return conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Cursor]:
        conn = self._connection()
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn.cursor()
            except BaseException:
                conn.rollback()
                raise
            conn.commit()

    @contextmanager
    def read(self) -> Iterator[sqlite3.Cursor]:
        conn = self._connection()
        conn.execute("BEGIN")
        try:
            yield conn.cursor()
        finally:
            conn.rollback()

    @contextmanager
    def reader(self) -> Iterator[_EagerCursor]:
        """Reads outside any transaction, each seeing what is committed when it runs, and each
        finished at once (no lock held between reads): a replay's lookups while its writer
        thread commits."""
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.row_factory = sqlite3.Row
        try:
            yield _EagerCursor(conn.cursor())
        finally:
            conn.close()

    @contextmanager
    def snapshot(self) -> Iterator[_SQLiteSnapshot]:
        # Its own connection: a snapshot may stay open while this thread writes elsewhere.
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            self._attach(conn)
            conn.execute("BEGIN")  # WAL: the first read fixes what every later one sees
            yield _SQLiteSnapshot(conn)
        finally:
            conn.close()

    def close(self) -> None:
        for conn in self._connections:
            conn.close()
        self._connections.clear()


_INSERT = re.compile(
    r"^INSERT INTO (\w+) \(([\w, ]+)\) VALUES \(([?, ]+)\)( ON CONFLICT \([\w, ]+\) DO NOTHING)?$"
)
_UPDATE = re.compile(r"^UPDATE (\w+) SET ((?:\w+ = \?(?:, )?)+) WHERE ((?:\w+ = \?(?: AND )?)+)$")
_DELETE = re.compile(r"^DELETE FROM (\w+) WHERE ((?:\w+ = \?(?: AND )?)+)$")
_ASSIGNED = re.compile(r"(\w+) = \?")


_ROWS = msgspec.json.Encoder()


def _column(rows: Sequence[Sequence[Any]], n: int) -> str:
    """Column n of the row `r` (a JSON array), typed as the rows' values are."""
    for row in rows:
        value = row[n]
        if value is not None:
            if isinstance(value, int) and not isinstance(value, bool):
                return f"(r->>{n})::bigint"
            return f"(r->>{n})"
    return f"(r->>{n})"


def as_array_statement(sql: str, rows: Sequence[Sequence[Any]]) -> tuple[str, list[str]] | None:
    """`INSERT ... VALUES (?, ...)`, `UPDATE t SET a = ? ... WHERE k = ? ...` or
    `DELETE FROM t WHERE k = ? ...` as one PostgreSQL statement over the rows sent as one JSON
    array of arrays (`r` is a row), or None for any other statement or value types."""
    if not rows or any(
        type(v) not in (str, int) and v is not None for row in rows[:1] for v in row
    ):
        return None
    width = len(rows[0])
    try:
        payload = [_ROWS.encode(rows).decode()]
    except TypeError:  # a value JSON cannot carry exactly: row by row
        return None
    columns = [_column(rows, n) for n in range(width)]
    # jsonb, not json: `r->>n` on a json value lexes the row's text again up to column n (every
    # column of a 13-column row re-reads the ones before it); jsonb parses the document once
    # and indexes its arrays. The same text and numbers come out (2.5x less server time for
    # a replay's page).
    source = "jsonb_array_elements(%s::jsonb) AS r"
    if found := _INSERT.match(sql):
        table, names, marks, conflict = found.groups()
        if marks.count("?") != width:
            return None
        select = ", ".join(columns)
        return (
            f"INSERT INTO {table} ({names}) SELECT {select} FROM {source}{conflict or ''}",
            payload,
        )
    if found := _UPDATE.match(sql):
        table, assigned, where = found.groups()
        targets, keys = _ASSIGNED.findall(assigned), _ASSIGNED.findall(where)
        if len(targets) + len(keys) != width:
            return None
        sets = ", ".join(f"{c} = {columns[n]}" for n, c in enumerate(targets))
        match = " AND ".join(f"t.{c} = {columns[len(targets) + n]}" for n, c in enumerate(keys))
        return f"UPDATE {table} AS t SET {sets} FROM {source} WHERE {match}", payload
    if found := _DELETE.match(sql):
        table, where = found.groups()
        keys = _ASSIGNED.findall(where)
        if len(keys) != width:
            return None
        match = " AND ".join(f"t.{c} = {columns[n]}" for n, c in enumerate(keys))
        return f"DELETE FROM {table} AS t USING {source} WHERE {match}", payload
    return None


class _PgCursor:
    """A psycopg cursor that takes `?` placeholders; in a scratch store its tables are created
    UNLOGGED (`unlogged`)."""

    def __init__(self, cursor: Any, *, unlogged: bool = False) -> None:
        self._cursor = cursor
        self._unlogged = unlogged

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        if self._unlogged and sql.startswith("CREATE TABLE "):
            # No write-ahead log for tables dropped afterwards, from their creation (an ALTER
            # afterwards would take each table's exclusive lock while the other process of a
            # replay may be writing it).
            sql = "CREATE UNLOGGED TABLE " + sql.removeprefix("CREATE TABLE ")
        return self._cursor.execute(sql.replace("?", "%s"), params)

    def executemany(self, sql: str, params: Sequence[Sequence[Any]]) -> Any:
        """One statement over all the rows (sent as one JSON document) where the statement is
        a plain INSERT, UPDATE or DELETE by `?` parameters: the same rows change as with one
        statement per row, without a round trip and a Python adaptation per value (psycopg's
        pure-Python build spends most of a replay there otherwise); anything else row by row."""
        batched = as_array_statement(sql, params)
        if batched is None:
            return self._cursor.executemany(sql.replace("?", "%s"), params)
        statement, payload = batched
        return self._cursor.execute(statement, payload)

    def fetchone(self) -> Any:
        return self._cursor.fetchone()

    def fetchall(self) -> list[Any]:
        rows: list[Any] = self._cursor.fetchall()
        return rows

    def fetchmany(self, size: int) -> list[Any]:
        rows: list[Any] = self._cursor.fetchmany(size)
        return rows

    @property
    def rowcount(self) -> int:
        return int(self._cursor.rowcount)


class _PgSnapshot:
    kind = "postgresql"

    def __init__(self, conn: Any) -> None:
        self._conn = conn
        self._cursors = 0

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        from psycopg.rows import tuple_row

        with self._conn.cursor(row_factory=tuple_row) as cur:
            cur.execute(sql.replace("?", "%s"), params)
            row: tuple[Any, ...] | None = cur.fetchone()
            return row

    def batches(
        self, sql: str, params: Sequence[Any] = (), size: int = 5000
    ) -> Iterator[list[tuple[Any, ...]]]:
        from psycopg.rows import tuple_row

        # A server-side cursor: rows arrive a batch at a time, never the whole table at once.
        self._cursors += 1
        name = f"snapshot_{self._cursors}"
        with self._conn.cursor(name=name, row_factory=tuple_row) as cur:
            cur.execute(sql.replace("?", "%s"), params)
            while batch := cur.fetchmany(size):
                yield batch


class PostgresViews:
    """Views in the event store's PostgreSQL database and schema, tables prefixed `view_`."""

    kind = "postgresql"

    def __init__(
        self, conninfo: str, schema: str = "public", pool_size: int = 4, *, scratch: bool = False
    ) -> None:
        from psycopg.rows import dict_row
        from psycopg_pool import ConnectionPool

        self.conninfo = conninfo
        self.schema = schema
        self.scratch = scratch

        def configure(conn: Any) -> None:
            conn.execute(f'SET search_path TO "{schema}"')
            if scratch:
                # A replay's scratch schema is dropped afterwards: no need to wait for the WAL.
                conn.execute("SET synchronous_commit TO off")
            conn.commit()

        self.pool = ConnectionPool(
            conninfo,
            min_size=1,
            max_size=pool_size,
            kwargs={"row_factory": dict_row},
            configure=configure,
            open=True,
        )

    @contextmanager
    def transaction(self) -> Iterator[_PgCursor]:
        with self.pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            yield _PgCursor(cur, unlogged=self.scratch)

    @contextmanager
    def read(self) -> Iterator[_PgCursor]:
        with self.pool.connection() as conn, conn.cursor() as cur:
            yield _PgCursor(cur, unlogged=self.scratch)
            conn.rollback()

    @contextmanager
    def reader(self) -> Iterator[_PgCursor]:
        """Reads outside any transaction (autocommit), each seeing what is committed."""
        with self.pool.connection() as conn:
            conn.autocommit = True
            try:
                with conn.cursor() as cur:
                    yield _PgCursor(cur, unlogged=self.scratch)
            finally:
                conn.autocommit = False

    @contextmanager
    def snapshot(self) -> Iterator[_PgSnapshot]:
        with self.pool.connection() as conn:
            try:
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                yield _PgSnapshot(conn)
            finally:
                conn.rollback()

    def leader(self, runner: str) -> PostgresLeader:
        """The lock that lets one process at a time feed `runner`'s views
        (projections/leader.py)."""
        return PostgresLeader(self.conninfo, self.schema, runner)

    def close(self) -> None:
        self.pool.close()
