"""Where the buyers' data keys are kept (ledger/buyer_keys.py): a SQLite file of its own
beside a SQLite log, or two tables in a PostgreSQL log's schema. Both give transactions on
cursors with rows by column name, and statements with `{keys}`, `{master}` and `{blob}`.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ledger.database import private_file

DDL = (
    "CREATE TABLE IF NOT EXISTS {keys} ("
    " pseudonym TEXT NOT NULL, generation INTEGER NOT NULL, wrapped {blob},"
    " created_at TEXT NOT NULL, erased_at TEXT, PRIMARY KEY (pseudonym, generation))",
    "CREATE TABLE IF NOT EXISTS {master} ("
    " id INTEGER PRIMARY KEY, master {blob}, fingerprint TEXT NOT NULL, created_at TEXT NOT NULL)",
)


class SQLiteTables:
    """The key store in a SQLite file of its own: one connection, one thread at a time."""

    postgres = False

    def __init__(self, path: str) -> None:
        memory = path.startswith(":memory:") or "mode=memory" in path
        if not memory:
            private_file(path)
        self.conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10)
        self.conn.row_factory = sqlite3.Row
        # A destroyed key's bytes are overwritten with zeros in the file, not just unlinked.
        self.conn.execute("PRAGMA secure_delete = ON")
        if not memory:
            self.conn.execute("PRAGMA journal_mode = DELETE")
            self.conn.execute("PRAGMA synchronous = FULL")
        self.lock = threading.Lock()
        self.keys, self.master = "buyer_keys", "buyer_key_master"

    @contextmanager
    def transaction(self, *, write: bool) -> Iterator[Any]:
        with self.lock:
            cur = self.conn.cursor()
            cur.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")

    def sql(self, text: str) -> str:
        return text.format(keys=self.keys, master=self.master, blob="BLOB")

    def compact(self) -> None:
        """Nothing to do: `secure_delete` zeroed the destroyed keys' bytes in place."""

    def close(self) -> None:
        self.conn.close()


class PostgresTables:
    """The key store as two tables in the log's schema, through the application's pool."""

    postgres = True

    def __init__(self, datastore: Any, schema: str) -> None:
        self.datastore = datastore
        self.keys, self.master = f'"{schema}".buyer_keys', f'"{schema}".buyer_key_master'

    @contextmanager
    def transaction(self, *, write: bool) -> Iterator[Any]:
        with self.datastore.transaction(commit=write) as cur:
            yield cur

    def sql(self, text: str) -> str:
        return text.format(keys=self.keys, master=self.master, blob="BYTEA").replace("?", "%s")

    def compact(self) -> None:
        """Rewrite the table, so the destroyed keys' old row versions leave its files."""
        with self.datastore.get_connection() as conn:
            conn.execute(f"VACUUM FULL {self.keys}")

    def close(self) -> None:
        """The pool is the application's."""
