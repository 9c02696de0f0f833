"""PostgreSQL event store: the library's table lock, plus chain columns computed under it."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresFactory
from psycopg.rows import args_row, tuple_row
from psycopg.sql import SQL, Identifier

from ledger.store import Head, LogRecord, chain_rows
from ledger.store.sqlite import ImportRow, StoreNotEmpty


class ChainedPostgresRecorder(PostgresApplicationRecorder):
    """The library's application recorder plus `sequence`, `recorded_at` and `hash`.

    The library's insert takes `LOCK TABLE ... IN EXCLUSIVE MODE` so positions commit in
    order; the head is read and the new links computed after that lock, in the same
    transaction. The database insert function (POSTGRES_ENABLE_DB_FUNCTIONS) skips that
    lock, so this recorder refuses to run with it.
    """

    def __init__(self, datastore: Any, *, events_table_name: str = "stored_events") -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        if self.datastore.enable_db_functions:
            msg = "POSTGRES_ENABLE_DB_FUNCTIONS skips the table lock; the chain needs it"
            raise ValueError(msg)
        schema, table = Identifier(self.datastore.schema), Identifier(self.events_table_name)
        self.sql_create_statements[self.create_table_statement_index] = SQL(
            "CREATE TABLE IF NOT EXISTS {schema}.{table} ("
            "originator_id uuid NOT NULL, originator_version bigint NOT NULL, "
            "topic text, state bytea, notification_id bigserial, "
            "sequence bigint NOT NULL, recorded_at text NOT NULL, hash bytea NOT NULL, "
            "PRIMARY KEY (originator_id, originator_version))"
        ).format(schema=schema, table=table)
        self.sql_create_statements.append(
            SQL("CREATE UNIQUE INDEX IF NOT EXISTS {index} ON {schema}.{table} (sequence)").format(
                index=Identifier(f"{self.events_table_name}_sequence_idx"),
                schema=schema,
                table=table,
            )
        )
        self.sql_create_statements.append(
            SQL("CREATE INDEX IF NOT EXISTS {index} ON {schema}.{table} (recorded_at)").format(
                index=Identifier(f"{self.events_table_name}_recorded_at_idx"),
                schema=schema,
                table=table,
            )
        )
        self.chained_insert_statement = SQL(
            "INSERT INTO {schema}.{table} (originator_id, originator_version, topic, state, "
            "sequence, recorded_at, hash) SELECT * FROM unnest("
            "%s::uuid[], %s::bigint[], %s::text[], %s::bytea[], %s::bigint[], %s::text[], "
            "%s::bytea[]) RETURNING notification_id"
        ).format(schema=schema, table=table)
        self.select_head_statement = SQL(
            "SELECT notification_id, sequence, recorded_at, hash FROM {schema}.{table} "
            "ORDER BY notification_id DESC LIMIT 1"
        ).format(schema=schema, table=table)
        # Columns in LogRecord order, the id as canonical UUID text (what the chain hashes).
        self.select_log_columns = SQL(
            "SELECT notification_id, sequence, originator_id::text, originator_version, "
            "topic, state, recorded_at, hash FROM {schema}.{table} "
        ).format(schema=schema, table=table)

    def _insert_stored_events(
        self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        self._lock_table(curs)
        self._notify_channel(curs)
        curs.execute(self.select_head_statement)
        row = curs.fetchone()
        head = (row["sequence"], row["recorded_at"], bytes(row["hash"])) if row else None
        links = chain_rows(head, stored_events)
        curs.execute(
            self.chained_insert_statement,
            (
                [s.originator_id for s in stored_events],
                [s.originator_version for s in stored_events],
                [s.topic for s in stored_events],
                [s.state for s in stored_events],
                [x[0] for x in links],
                [x[1] for x in links],
                [x[2] for x in links],
            ),
        )

    def _select_records(self, statement: Any, params: Sequence[Any]) -> list[LogRecord]:
        with (
            self.datastore.get_connection() as conn,
            conn.cursor(row_factory=args_row(LogRecord)) as curs,
        ):
            curs.execute(statement, params)
            return curs.fetchall()

    def _log_statement(
        self, after: int | None, limit: int, until: str | None, topics: Collection[str] | None
    ) -> Any:
        statement = self.select_log_columns + SQL("WHERE notification_id > %s ")
        params: list[Any] = [after or 0]
        if until is not None:
            statement += SQL("AND recorded_at <= %s ")
            params.append(until)
        if topics is not None:
            statement += SQL("AND topic = ANY(%s) ")
            params.append(sorted(topics))
        statement += SQL("ORDER BY notification_id LIMIT %s")
        params.append(limit)
        return statement, params

    def select_log_rows(
        self,
        after: int | None,
        limit: int,
        *,
        until: str | None = None,
        topics: Collection[str] | None = None,
    ) -> list[tuple[Any, ...]]:
        """`select_log` as plain tuples in LogRecord's order (the id already canonical text):
        what `verify` and `export-events` read."""
        statement, params = self._log_statement(after, limit, until, topics)
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
            curs.execute(statement, params)
            return curs.fetchall()

    def log_records(self, rows: Sequence[tuple[Any, ...]]) -> list[LogRecord]:
        return [LogRecord._make(row) for row in rows]

    def select_log(
        self,
        after: int | None,
        limit: int,
        *,
        until: str | None = None,
        topics: Collection[str] | None = None,
    ) -> list[LogRecord]:
        return self._select_records(*self._log_statement(after, limit, until, topics))

    def record_at_or_before(self, position: int) -> LogRecord | None:
        """The last event at or before `position` (the link an `--after` export starts from)."""
        statement = self.select_log_columns + SQL(
            "WHERE notification_id <= %s ORDER BY notification_id DESC LIMIT 1"
        )
        records = self._select_records(statement, (position,))
        return records[0] if records else None

    def record_recorded_by(self, until: str) -> LogRecord | None:
        """The last event recorded at or before `until`."""
        statement = self.select_log_columns + SQL(
            "WHERE recorded_at <= %s ORDER BY recorded_at DESC, notification_id DESC LIMIT 1"
        )
        records = self._select_records(statement, (until,))
        return records[0] if records else None

    def select_stream(self, stream_id: UUID | str) -> list[LogRecord]:
        statement = self.select_log_columns + SQL(
            "WHERE originator_id = %s ORDER BY originator_version"
        )
        return self._select_records(statement, (stream_id,))

    def head(self) -> Head | None:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self.select_head_statement)
            row = curs.fetchone()
        if row is None:
            return None
        return Head(row["sequence"], row["notification_id"], row["recorded_at"], bytes(row["hash"]))

    @contextmanager
    def bulk_load(self) -> Iterator[Callable[[Sequence[ImportRow]], None]]:
        """Load whole events, chain columns and positions as given, into an empty table.

        One transaction holding the recorders' table lock: the loader inserts a batch with one
        statement (arrays unnested, as the recorder inserts); at the block's end the position
        sequence moves past the last position loaded and everything commits, and any exception
        rolls everything back. Raises StoreNotEmpty when the table holds any event.
        """
        schema, table = Identifier(self.datastore.schema), Identifier(self.events_table_name)
        insert = SQL(
            "INSERT INTO {schema}.{table} (notification_id, originator_id, originator_version, "
            "topic, state, sequence, recorded_at, hash) SELECT * FROM unnest("
            "%s::bigint[], %s::uuid[], %s::bigint[], %s::text[], %s::bytea[], %s::bigint[], "
            "%s::text[], %s::bytea[])"
        ).format(schema=schema, table=table)
        with self.datastore.get_connection() as conn, conn.transaction(), conn.cursor() as curs:
            self._lock_table(curs)
            curs.execute(
                SQL("SELECT 1 FROM {schema}.{table} LIMIT 1").format(schema=schema, table=table)
            )
            if curs.fetchone() is not None:
                raise StoreNotEmpty("the event store already holds events")
            loaded = False

            def load(rows: Sequence[ImportRow]) -> None:
                nonlocal loaded
                if rows:
                    curs.execute(insert, [list(column) for column in zip(*rows, strict=True)])
                    loaded = True

            yield load
            if loaded:
                curs.execute(
                    SQL(
                        "SELECT setval(pg_get_serial_sequence(%s, 'notification_id'), "
                        "(SELECT max(notification_id) FROM {schema}.{table}))"
                    ).format(schema=schema, table=table),
                    (Identifier(self.datastore.schema, self.events_table_name).as_string(conn),),
                )
                self._notify_channel(curs)

    def count(self) -> int:
        statement = SQL("SELECT count(*) AS n FROM {schema}.{table}").format(
            schema=Identifier(self.datastore.schema), table=Identifier(self.events_table_name)
        )
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(statement)
            row = curs.fetchone()
            assert row is not None  # count(*) always answers one row
            return int(row["n"])


class LedgerPostgresFactory(PostgresFactory):
    """PostgreSQL infrastructure with the chained recorder."""

    application_recorder_class = ChainedPostgresRecorder


Factory = LedgerPostgresFactory
