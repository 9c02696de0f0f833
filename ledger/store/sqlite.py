"""SQLite event store: WAL, synchronous=FULL, chain columns computed under the write lock."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError, OperationalError, StoredEvent
from eventsourcing.sqlite import (
    SQLiteApplicationRecorder,
    SQLiteConnection,
    SQLiteConnectionPool,
    SQLiteCursor,
    SQLiteFactory,
)

from ledger.store import Head, LogEntry, LogRecord, chain_rows

# One imported event: position, stream id (canonical text), version, topic, state, sequence,
# recorded_at, hash - the columns the recorder writes, the position included.
ImportRow = tuple[int, str, int, str, bytes, int, str, bytes]


@contextmanager
def immediate_transaction(datastore: Any) -> Iterator[SQLiteCursor]:
    """One write transaction on the store's file, begun IMMEDIATE: the write lock is taken
    before anything is read (the head, a key's row), so two processes sharing the file never
    chain onto the same link; committed on success, rolled back on any error, the driver's
    errors raised as the library's."""
    with datastore.get_connection(commit=True) as connection:
        conn: sqlite3.Connection = connection._sqlite_conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield SQLiteCursor(conn.cursor())
                conn.commit()
            except BaseException:
                conn.rollback()
                raise
        except sqlite3.IntegrityError as e:
            raise IntegrityError(e) from e
        except sqlite3.OperationalError as e:
            raise OperationalError(e) from e


class StoreNotEmpty(Exception):
    """A bulk load (a restore) goes only into a store without events."""


# The library's pool allows 5 + 10 connections and waits 5 s for one. A server's readers are
# the worker threads (40: anyio's default), the projection runner, the group commit, the
# dispatcher and import jobs: with 15, a burst of reads on a starved machine (the CI run that
# found it had a load of 10 on 2 cores) waited out the 5 s and answered 500. A SQLite
# connection is a file handle and a page cache; with 5 kept and up to 45 more, no worker
# thread waits for one, and a wait, if ever, lasts as long as PostgreSQL's (`pool_timeout`).
POOL_SIZE = 5
POOL_OVERFLOW = 45
POOL_TIMEOUT_SECONDS = 30.0


class DurableSQLitePool(SQLiteConnectionPool):
    """Connections with synchronous=FULL: an acknowledged write survives a power cut."""

    def _create_connection(self) -> SQLiteConnection:
        connection = super()._create_connection()
        connection._sqlite_conn.execute("PRAGMA synchronous=FULL")
        return connection


class ChainedSQLiteRecorder(SQLiteApplicationRecorder):
    """The library's application recorder plus `sequence`, `recorded_at` and `hash`."""

    def __init__(self, datastore: Any, events_table_name: str = "stored_events") -> None:
        super().__init__(datastore, events_table_name)
        t = self.events_table_name
        self.insert_events_statement = (
            f"INSERT INTO {t} (originator_id, originator_version, topic, state, "
            "sequence, recorded_at, hash) VALUES (?,?,?,?,?,?,?)"
        )
        self.select_head_statement = (
            f"SELECT rowid, sequence, recorded_at, hash FROM {t} ORDER BY rowid DESC LIMIT 1"
        )
        # Columns in LogRecord order (plain tuples: verify reads about a million a second).
        self.select_log_columns = (
            "SELECT rowid, sequence, originator_id, originator_version, topic, state, "
            f"recorded_at, hash FROM {t} "
        )

    def construct_create_table_statements(self) -> list[str]:
        t = self.events_table_name
        return [
            f"CREATE TABLE IF NOT EXISTS {t} ("
            "originator_id TEXT, originator_version INTEGER, topic TEXT, state BLOB, "
            "sequence INTEGER NOT NULL, recorded_at TEXT NOT NULL, hash BLOB NOT NULL, "
            "PRIMARY KEY (originator_id, originator_version))",
            f"CREATE UNIQUE INDEX IF NOT EXISTS {t}_sequence_idx ON {t} (sequence)",
            f"CREATE INDEX IF NOT EXISTS {t}_recorded_at_idx ON {t} (recorded_at)",
        ]

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        with immediate_transaction(self.datastore) as cursor:
            return self._insert_events(cursor, stored_events)

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **_: Any
    ) -> Sequence[int] | None:
        c.execute(self.select_head_statement)
        row = c.fetchone()
        head = (row["sequence"], row["recorded_at"], row["hash"]) if row else None
        returning = []
        for s, (sequence, recorded_at, link) in zip(
            stored_events, chain_rows(head, stored_events), strict=True
        ):
            oid = s.originator_id.hex if isinstance(s.originator_id, UUID) else s.originator_id
            c.execute(
                self.insert_events_statement,
                (oid, s.originator_version, s.topic, s.state, sequence, recorded_at, link),
            )
            returning.append(c.lastrowid)
        return returning

    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]:
        # One SELECT is consistent on its own: in autocommit mode it skips the BEGIN and
        # ROLLBACK round trips the library wraps around every read (a command reads several
        # streams, so this is most of the cost of deciding).
        statement = self.select_events_statement
        params: list[Any] = [
            originator_id.hex if isinstance(originator_id, UUID) else originator_id
        ]
        if gt is not None:
            statement += "AND originator_version>? "
            params.append(gt)
        if lte is not None:
            statement += "AND originator_version<=? "
            params.append(lte)
        statement += "ORDER BY originator_version " + ("DESC " if desc else "ASC ")
        if limit is not None:
            statement += "LIMIT ? "
            params.append(limit)
        with self.datastore.get_connection(commit=False) as connection:
            rows = connection._sqlite_conn.execute(statement, params).fetchall()
        return [
            StoredEvent(
                originator_id=self.convert_originator_id(row["originator_id"]),
                originator_version=row["originator_version"],
                topic=row["topic"],
                state=row["state"],
            )
            for row in rows
        ]

    def _select_rows(self, statement: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        # One SELECT is consistent on its own (autocommit, as in select_events); plain tuples.
        with self.datastore.get_connection(commit=False) as connection:
            cursor: sqlite3.Cursor = connection._sqlite_conn.cursor()
            cursor.row_factory = None
            try:
                return cursor.execute(statement, params).fetchall()
            finally:
                cursor.close()

    def log_records(self, rows: Sequence[tuple[Any, ...]]) -> list[LogRecord]:
        """Rows of `select_log_rows` as records, the stream id in its canonical text."""
        # The id is stored as 32 hex digits; records carry the canonical text the chain hashes
        # (formatting it here costs less than UUID objects, or than doing it in SQL).
        make = LogRecord._make
        try:
            # fmt: off
            return [
                make((p, q, f"{i[:8]}-{i[8:12]}-{i[12:16]}-{i[16:20]}-{i[20:]}" if len(i) == 32
                      else i, v, t, s, r, h))
                for p, q, i, v, t, s, r, h in rows
            ]
            # fmt: on
        except TypeError:  # an id that is not text (only by tampering): show it as it is
            return [make((p, q, str(i), v, t, s, r, h)) for p, q, i, v, t, s, r, h in rows]

    def _select_records(self, statement: str, params: Sequence[Any]) -> list[LogRecord]:
        return self.log_records(self._select_rows(statement, params))

    def select_log_rows(
        self,
        after: int | None,
        limit: int,
        *,
        until: str | None = None,
        topics: Collection[str] | None = None,
    ) -> list[tuple[Any, ...]]:
        """`select_log` as plain tuples in LogRecord's order, the stream id as stored (32 hex
        digits): what `verify` and `export-events` read, without a Python object per row."""
        statement = self.select_log_columns + "WHERE rowid > ? "
        params: list[Any] = [after or 0]
        if until is not None:
            statement += "AND recorded_at <= ? "
            params.append(until)
        if topics is not None:
            statement += f"AND topic IN ({','.join('?' * len(topics))}) "
            params.extend(sorted(topics))
        statement += "ORDER BY rowid LIMIT ?"
        params.append(limit)
        return self._select_rows(statement, params)

    def select_entries(
        self, after: int | None, limit: int, topics: Collection[str] | None = None
    ) -> list[LogEntry]:
        """The log after `after` as projections read it (no chain columns), only `topics`
        when given: what a replay reads."""
        statement = (
            "SELECT rowid, originator_id, originator_version, topic, state, recorded_at"
            f" FROM {self.events_table_name} WHERE rowid > ? "
        )
        params: list[Any] = [after or 0]
        if topics is not None:
            statement += f"AND topic IN ({','.join('?' * len(topics))}) "
            params.extend(sorted(topics))
        statement += "ORDER BY rowid LIMIT ?"
        params.append(limit)
        make = LogEntry._make
        try:
            # fmt: off
            return [
                make((p, f"{i[:8]}-{i[8:12]}-{i[12:16]}-{i[16:20]}-{i[20:]}" if len(i) == 32
                      else i, v, t, s, r))
                for p, i, v, t, s, r in self._select_rows(statement, params)
            ]
            # fmt: on
        except TypeError:  # an id that is not text (only by tampering): as select_log says
            return [
                make((r.position, r.stream_id, r.version, r.topic, r.state, r.recorded_at))
                for r in self.select_log(after, limit, topics=topics)
            ]

    def select_log(
        self,
        after: int | None,
        limit: int,
        *,
        until: str | None = None,
        topics: Collection[str] | None = None,
    ) -> list[LogRecord]:
        return self.log_records(self.select_log_rows(after, limit, until=until, topics=topics))

    def verify_source(self) -> tuple[str, str] | None:
        """Where another process can read the log (`verify` checks a long one in two
        processes): the database file, and the statement that reads a page of plain rows
        after a position and up to another, LIMIT rows. None for an in-memory database."""
        pool = self.datastore.pool
        if pool.is_sqlite_memory_mode:
            return None
        statement = (
            self.select_log_columns + "WHERE rowid > ? AND rowid <= ? ORDER BY rowid LIMIT ?"
        )
        return str(pool.db_name), statement

    def record_at_or_before(self, position: int) -> LogRecord | None:
        """The last event at or before `position` (the link an `--after` export starts from)."""
        statement = self.select_log_columns + "WHERE rowid <= ? ORDER BY rowid DESC LIMIT 1"
        records = self._select_records(statement, (position,))
        return records[0] if records else None

    def record_recorded_by(self, until: str) -> LogRecord | None:
        """The last event recorded at or before `until`."""
        statement = self.select_log_columns + (
            "WHERE recorded_at <= ? ORDER BY recorded_at DESC, rowid DESC LIMIT 1"
        )
        records = self._select_records(statement, (until,))
        return records[0] if records else None

    def select_stream(self, stream_id: UUID | str) -> list[LogRecord]:
        oid = stream_id.hex if isinstance(stream_id, UUID) else stream_id
        return self._select_records(
            self.select_log_columns + "WHERE originator_id = ? ORDER BY originator_version", (oid,)
        )

    def head(self) -> Head | None:
        with self.datastore.transaction(commit=False) as c:
            c.execute(self.select_head_statement)
            row = c.fetchone()
        if row is None:
            return None
        return Head(row["sequence"], row["rowid"], row["recorded_at"], bytes(row["hash"]))

    @contextmanager
    def bulk_load(self) -> Iterator[Callable[[Sequence[ImportRow]], None]]:
        """Load whole events, chain columns and positions as given, into an empty table.

        One transaction under the write lock (BEGIN IMMEDIATE): the loader given to the block
        inserts a batch with one executemany; the block's end commits everything, and any
        exception rolls everything back. Raises StoreNotEmpty before loading when the table
        holds any event. The caller checks the chain: rows go in as they are.
        """
        t = self.events_table_name
        insert = (
            f"INSERT INTO {t} (rowid, originator_id, originator_version, topic, state, "
            "sequence, recorded_at, hash) VALUES (?,?,?,?,?,?,?,?)"
        )
        with immediate_transaction(self.datastore) as cursor:
            cursor.execute(f"SELECT 1 FROM {t} LIMIT 1")
            if cursor.fetchone() is not None:
                raise StoreNotEmpty("the event store already holds events")

            def load(rows: Sequence[ImportRow]) -> None:
                # Stored as the recorder stores them: the id as 32 hex digits.
                cursor.executemany(
                    insert,
                    [
                        (p, i.replace("-", ""), v, tp, s, q, r, h)
                        for p, i, v, tp, s, q, r, h in rows
                    ],
                )

            yield load

    def count(self) -> int:
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT count(*) FROM {self.events_table_name}")
            return int(c.fetchone()[0])


class LedgerSQLiteFactory(SQLiteFactory):
    """SQLite infrastructure with durable connections and the chained recorder."""

    application_recorder_class = ChainedSQLiteRecorder

    def __init__(self, env: Any) -> None:
        super().__init__(env)
        old = self.datastore.pool
        self.datastore.pool = DurableSQLitePool(
            db_name=old.db_name,
            lock_timeout=old.lock_timeout,
            pool_size=POOL_SIZE,
            max_overflow=POOL_OVERFLOW,
            pool_timeout=POOL_TIMEOUT_SECONDS,
        )
        old.close()


Factory = LedgerSQLiteFactory
