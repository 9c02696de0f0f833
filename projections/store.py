"""Where views live: SQLite (a file beside the event store) or PostgreSQL (the same database).

SQL is written once with `?` placeholders; the PostgreSQL store rewrites them to `%s`.
Every write goes through `transaction()`, so view rows and the tracking position of a batch
commit together or not at all: that shared transaction is what makes the runner exactly-once.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol


class Cursor(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


class ViewStore(Protocol):
    kind: str

    def transaction(self) -> Any: ...
    def read(self) -> Any: ...
    def close(self) -> None: ...


class SQLiteViews:
    """Views in their own SQLite file: their writes never queue behind the event writer's lock."""

    kind = "sqlite"

    def __init__(self, path: str) -> None:
        self.path = path
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []

    def _connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=30
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
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

    def close(self) -> None:
        for conn in self._connections:
            conn.close()
        self._connections.clear()


class _PgCursor:
    """A psycopg cursor that takes `?` placeholders."""

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._cursor.execute(sql.replace("?", "%s"), params)

    def executemany(self, sql: str, params: Sequence[Sequence[Any]]) -> Any:
        return self._cursor.executemany(sql.replace("?", "%s"), params)

    def fetchone(self) -> Any:
        return self._cursor.fetchone()

    def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    @property
    def rowcount(self) -> int:
        return int(self._cursor.rowcount)


class PostgresViews:
    """Views in the event store's PostgreSQL database and schema, tables prefixed `view_`."""

    kind = "postgresql"

    def __init__(self, conninfo: str, schema: str = "public", pool_size: int = 4) -> None:
        from psycopg.rows import dict_row
        from psycopg_pool import ConnectionPool

        def configure(conn: Any) -> None:
            conn.execute(f'SET search_path TO "{schema}"')
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
            yield _PgCursor(cur)

    @contextmanager
    def read(self) -> Iterator[_PgCursor]:
        with self.pool.connection() as conn, conn.cursor() as cur:
            yield _PgCursor(cur)
            conn.rollback()

    def close(self) -> None:
        self.pool.close()
