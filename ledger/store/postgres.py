"""PostgreSQL event store: the library's table lock, plus chain columns computed under it."""

from __future__ import annotations

import struct
from base64 import b64encode
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.persistence import IntegrityError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresFactory
from psycopg import errors
from psycopg.rows import args_row, tuple_row
from psycopg.sql import SQL, Composed, Identifier

from ledger.store import Head, LogEntry, LogRecord, StoreBusy, chain_rows
from ledger.store.sqlite import ImportRow, StoreNotEmpty

# One event of a packed page (`select_entries`): position, version, then the byte lengths of
# the topic, the state and recorded_at; the canonical id text (36 bytes); the three values.
_PACKED_HEAD = struct.Struct(">qqiii36s")
# The same with the chain columns (`select_log`): position, sequence, version, the lengths of
# the topic, state, recorded_at and hash, the id; then the four values.
_PACKED_RECORD = struct.Struct(">qqqiiii36s")
# What a packed page cannot be built for: more than PostgreSQL's 1 GB value (huge states).
_TOO_BIG = (errors.ProgramLimitExceeded, errors.OutOfMemory, errors.InternalError_)
_JSON = msgspec.json.Encoder()


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
        # The events as one JSON document (an array of rows, bytes in base64), inserted in its
        # order: psycopg's pure-Python build adapts a list of parameters value by value (the
        # states and links escaped through ctypes), a few milliseconds per group commit.
        self.chained_insert_statement = SQL(
            "INSERT INTO {schema}.{table} (originator_id, originator_version, topic, state, "
            "sequence, recorded_at, hash) SELECT (r->>0)::uuid, (r->>1)::bigint, r->>2, "
            "decode(r->>3, 'base64'), (r->>4)::bigint, r->>5, decode(r->>6, 'base64') "
            "FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS e(r, n) ORDER BY n "
            "RETURNING notification_id"
        ).format(schema=schema, table=table)
        # The last version of each stream, one primary-key probe per stream (the newest entry
        # of (originator_id, originator_version), read backwards): `= ANY(ids)` with
        # max() was planned as a parallel sequential scan of the whole log - 2.5 s for 100
        # ids on a 73k-event log - while the table lock was held (issue #14).
        self.select_versions_statement = SQL(
            "SELECT s.id AS originator_id, (SELECT e.originator_version FROM {schema}.{table} e "
            "WHERE e.originator_id = s.id ORDER BY e.originator_version DESC LIMIT 1) AS version "
            "FROM unnest(%s::text::uuid[]) AS s(id)"
        ).format(schema=schema, table=table)
        self.select_head_statement = SQL(
            "SELECT notification_id, sequence, recorded_at, hash FROM {schema}.{table} "
            "ORDER BY notification_id DESC LIMIT 1"
        ).format(schema=schema, table=table)
        # A page of the log as projections read it, as one binary value: each event's fixed
        # head then its topic, state and recorded_at bytes (see `select_entries`). The
        # aggregate has no ORDER BY (a sort of the page's bytes, a third of the statement's
        # time): the rows come in the subquery's order, and `unpack_entries` puts them in
        # position order should they ever not.
        page = SQL(
            "FROM (SELECT notification_id AS position, sequence, originator_version AS version, "
            "convert_to(originator_id::text, 'UTF8') AS i, convert_to(topic, 'UTF8') AS t, "
            "state AS s, convert_to(recorded_at, 'UTF8') AS r, hash AS h FROM {schema}.{table} "
        ).format(schema=schema, table=table)
        self.select_packed = (
            SQL(
                "SELECT string_agg(int8send(position) || int8send(version) || "
                "int4send(length(t)) || int4send(length(s)) || int4send(length(r)) || i || t "
                "|| s || r, ''::bytea), count(*) "
            )
            + page
        )
        # The same with the chain columns, in LogRecord's order (`select_log`).
        self.select_packed_records = (
            SQL(
                "SELECT string_agg(int8send(position) || int8send(sequence) || "
                "int8send(version) || int4send(length(t)) || int4send(length(s)) || "
                "int4send(length(r)) || int4send(length(h)) || i || t || s || r || h, "
                "''::bytea), count(*) "
            )
            + page
        )
        # Columns in LogRecord order, the id as canonical UUID text (what the chain hashes).
        self.select_log_columns = SQL(
            "SELECT notification_id, sequence, originator_id::text, originator_version, "
            "topic, state, recorded_at, hash FROM {schema}.{table} "
        ).format(schema=schema, table=table)

    def _insert_stored_events(
        self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        """Insert under the table lock. With `expected_versions` (stream -> version, 0 for
        none), insert nothing and raise IntegrityError unless each of those streams is at
        that version: the streams a write was decided on without writing them. A lock not
        had within the lock timeout is `StoreBusy` (the statements are pipelined: its error
        can surface at any of them)."""
        try:
            self._insert_locked(curs, stored_events, kwargs.get("expected_versions") or {})
        except errors.LockNotAvailable as e:
            seconds = self.datastore.lock_timeout
            raise StoreBusy(f"the events table stayed locked for {seconds} s") from e

    def _insert_locked(
        self, curs: Any, stored_events: Sequence[StoredEvent], expected: dict[UUID, int]
    ) -> None:
        self._lock_table(curs)
        if expected:
            stored = self._versions(curs, expected)
            for stream, version in expected.items():
                if stored.get(stream, 0) != version:
                    msg = (
                        f"stream {stream} is at version {stored.get(stream, 0)}, the write "
                        f"was decided on version {version}"
                    )
                    raise IntegrityError(msg)
        self._notify_channel(curs)
        curs.execute(self.select_head_statement)
        row = curs.fetchone()
        head = (row["sequence"], row["recorded_at"], bytes(row["hash"])) if row else None
        links = chain_rows(head, stored_events)
        rows = [
            (
                str(s.originator_id),
                s.originator_version,
                s.topic,
                b64encode(s.state).decode(),
                sequence,
                recorded_at,
                b64encode(link).decode(),
            )
            for s, (sequence, recorded_at, link) in zip(stored_events, links, strict=True)
        ]
        curs.execute(self.chained_insert_statement, (_JSON.encode(rows).decode(),))

    def _versions(self, curs: Any, streams: Collection[UUID]) -> dict[UUID, int]:
        ids = "{" + ",".join(str(stream) for stream in streams) + "}"  # a uuid[] literal
        curs.execute(self.select_versions_statement, (ids,))
        return {
            row["originator_id"]: row["version"]
            for row in curs.fetchall()
            if row["version"] is not None  # a stream with no event yet
        }

    def stream_versions(self, streams: Collection[UUID]) -> dict[UUID, int]:
        """The last version of each stream in one query (0 for a stream with no event)."""
        if not streams:
            return {}
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            stored = self._versions(curs, streams)
        return {stream: stored.get(stream, 0) for stream in streams}

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
        where, params = _log_filter(after, until, topics)
        return self.select_log_columns + where + SQL("ORDER BY notification_id LIMIT %s"), [
            *params,
            limit,
        ]

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

    def select_entries(
        self, after: int | None, limit: int, topics: Collection[str] | None = None
    ) -> list[LogEntry]:
        """The log after `after` as projections read it (no chain columns), only `topics`
        when given: what a replay reads.

        The page comes as one binary value built by the server (each event's lengths, then
        its bytes) and is cut up here: psycopg's pure-Python build spends a few microseconds
        in ctypes on every value of a row-by-row result, which was most of a replay's reading
        on PostgreSQL (one value per page instead: about a fifth of the time). A page too big
        for one value (over 1 GB of states), or with an event it cannot pack (a NULL column,
        only by tampering: the count would differ), is read row by row."""
        entries = self._packed(self.select_packed, unpack_entries, after, limit, None, topics)
        if entries is not None:
            return entries
        return [
            LogEntry(r.position, r.stream_id, r.version, r.topic, r.state, r.recorded_at)
            for r in self._select_records(*self._log_statement(after, limit, None, topics))
        ]

    def _packed(
        self,
        head: Any,
        unpack: Callable[[bytes], list[Any]],
        after: int | None,
        limit: int,
        until: str | None,
        topics: Collection[str] | None,
    ) -> list[Any] | None:
        """A page of the log read as one packed value and unpacked; None when it cannot be
        (too big for one value, or an event with a NULL column: the count differs)."""
        where, params = _log_filter(after, until, topics)
        statement = head + where + SQL("ORDER BY notification_id LIMIT %s) AS page")
        params.append(limit)
        with self.datastore.get_connection() as conn:
            try:
                with conn.cursor(row_factory=tuple_row, binary=True) as curs:
                    curs.execute(statement, params)
                    packed, count = curs.fetchone() or (None, 0)
            except _TOO_BIG:
                return None
        unpacked = unpack(bytes(packed)) if packed is not None else []
        return unpacked if len(unpacked) == count else None

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
        """Read packed, as `select_entries` (the live runner reads this, page after page)."""
        records = self._packed(
            self.select_packed_records, unpack_records, after, limit, until, topics
        )
        if records is not None:
            return records
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


def unpack_entries(packed: bytes) -> list[LogEntry]:
    """The entries of a page packed by `select_entries`' statement."""
    head, size = _PACKED_HEAD.unpack_from, _PACKED_HEAD.size
    make = LogEntry._make
    topics: dict[bytes, str] = {}  # a page has a few dozen topics: each decoded once
    entries = []
    at, end, last, ordered = 0, len(packed), -1, True
    while at < end:
        position, version, t, s, r, stream_id = head(packed, at)
        at += size
        topic = packed[at : at + t]
        at += t
        state = packed[at : at + s]
        at += s
        recorded_at = packed[at : at + r].decode()
        at += r
        text = topics.get(topic)
        if text is None:
            text = topics[topic] = topic.decode()
        entries.append(make((position, stream_id.decode(), version, text, state, recorded_at)))
        if position < last:
            ordered = False
        last = position
    if not ordered:
        entries.sort()  # by position: positions are unique, so nothing else is compared
    return entries


def unpack_records(packed: bytes) -> list[LogRecord]:
    """The records of a page packed by `select_log`'s statement, in position order."""
    head, size = _PACKED_RECORD.unpack_from, _PACKED_RECORD.size
    make = LogRecord._make
    topics: dict[bytes, str] = {}
    records = []
    at, end, last, ordered = 0, len(packed), -1, True
    while at < end:
        position, sequence, version, t, s, r, h, stream_id = head(packed, at)
        at += size
        topic = packed[at : at + t]
        at += t
        state = packed[at : at + s]
        at += s
        recorded_at = packed[at : at + r].decode()
        at += r
        link = packed[at : at + h]
        at += h
        text = topics.get(topic)
        if text is None:
            text = topics[topic] = topic.decode()
        records.append(
            make((position, sequence, stream_id.decode(), version, text, state, recorded_at, link))
        )
        if position < last:
            ordered = False
        last = position
    if not ordered:
        records.sort()
    return records


class LedgerPostgresFactory(PostgresFactory):
    """PostgreSQL infrastructure with the chained recorder."""

    application_recorder_class = ChainedPostgresRecorder


Factory = LedgerPostgresFactory


def _log_filter(
    after: int | None, until: str | None, topics: Collection[str] | None
) -> tuple[Any, list[Any]]:
    """The WHERE clause of a log page: past a position, up to a recorded time, some topics."""
    where: SQL | Composed = SQL("WHERE notification_id > %s ")
    params: list[Any] = [after or 0]
    if until is not None:
        where += SQL("AND recorded_at <= %s ")
        params.append(until)
    if topics is not None:
        where += SQL("AND topic = ANY(%s) ")
        params.append(sorted(topics))
    return where, params
