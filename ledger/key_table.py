"""The key table's SQL on both stores: a projection of the key streams, kept in the event
store's database and written in the same transaction as the events it follows.

`api_keys (name, token_hash, role, enterprise, zone, created_at, revoked_at, stream_id)`:
one row per key, exactly the fold of its stream (domain/api_keys.py); `stream_id` is the
key's stream as the events table stores it, so that one statement reads a row and its events
(a request's authentication). A key's events and its row are written under the events
table's write lock in one transaction: no reader ever sees one without the other.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any, NamedTuple, cast
from uuid import UUID

from eventsourcing.persistence import IntegrityError, StoredEvent

from domain.api_keys import ApiKeyState, api_key_id, fold
from domain.events import DomainEvent
from ledger.application import LedgerApplication
from ledger.database import schema_creation_lock
from ledger.mapper import decode_event
from ledger.store import StoreBusy

# The columns a row shares with ApiKeyState, in the table's order.
COLUMNS = ("name", "role", "enterprise", "zone", "token_hash", "created_at", "revoked_at")

DDL = (
    "CREATE TABLE IF NOT EXISTS {keys} ("
    " name TEXT PRIMARY KEY, token_hash TEXT NOT NULL UNIQUE, role TEXT NOT NULL,"
    " enterprise TEXT, zone TEXT, created_at TEXT NOT NULL, revoked_at TEXT, stream_id {id})"
)
UPSERT = (
    "INSERT INTO {keys} (name, role, enterprise, zone, token_hash, created_at, revoked_at,"
    " stream_id) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (name) DO UPDATE SET"
    " role = excluded.role, enterprise = excluded.enterprise, zone = excluded.zone,"
    " token_hash = excluded.token_hash, created_at = excluded.created_at,"
    " revoked_at = excluded.revoked_at, stream_id = excluded.stream_id"
)
SELECT_ROWS = f"SELECT {', '.join(COLUMNS)}, stream_id FROM {{keys}}"
# A row by its token hash, with its stream's events (none: a row the ledger never wrote).
AUTHENTICATE = (
    "SELECT k.name, k.role, k.enterprise, k.zone, k.token_hash, k.created_at, k.revoked_at,"
    " k.stream_id, e.originator_version AS version, e.topic, e.state"
    " FROM {keys} k LEFT JOIN {events} e ON e.originator_id = k.stream_id"
    " WHERE k.{by} = ? ORDER BY e.originator_version"
)
SELECT_STREAM = (
    "SELECT originator_version AS version, topic, state FROM {events}"
    " WHERE originator_id = ? ORDER BY originator_version"
)


class KeyRow(NamedTuple):
    """A row of the key table as stored (anything a hand may have put there)."""

    name: str
    role: str
    enterprise: str | None
    zone: str | None
    token_hash: str
    created_at: str
    revoked_at: str | None
    stream_id: Any  # the store's form: 32 hex digits (SQLite), a UUID (PostgreSQL), or None


def row_of(state: ApiKeyState) -> tuple[Any, ...]:
    return tuple(getattr(state, c) for c in COLUMNS)


def differing_columns(row: KeyRow, state: ApiKeyState | None, stream: Any) -> list[str]:
    """The columns in which a row differs from what the log says (every one when the log
    has no such key); [] when it is exactly the log's."""
    if state is None:
        return list(COLUMNS)
    out = [c for c in COLUMNS if getattr(row, c) != getattr(state, c)]
    if row.stream_id != stream:
        out.append("stream_id")
    return out


class KeyTable:
    """The key table and the key streams, read and written with the store's SQL."""

    def __init__(self, app: LedgerApplication) -> None:
        self.app = app
        # Both of our factories (SQLite, PostgreSQL) have a datastore; the library types the
        # factory as its base, which has none.
        self.datastore: Any = app.factory.datastore  # type: ignore[attr-defined]
        # Our chained recorders; the library types the recorder as its base class.
        self.recorder: Any = cast(Any, app.recorder)
        self.postgres = app.database.kind == "postgresql"
        events = self.recorder.events_table_name
        if self.postgres:
            # The table lives in the event store's schema, like the events.
            schema = app.database.schema
            self.names = {"keys": f'"{schema}".api_keys', "events": f'"{schema}"."{events}"'}
        else:
            self.names = {"keys": "api_keys", "events": events}

    def sql(self, statement: str) -> str:
        statement = statement.format(**self.names, id="uuid" if self.postgres else "TEXT")
        return statement.replace("?", "%s") if self.postgres else statement

    def stream(self, name: str) -> Any:
        """A key's stream as the events table stores it."""
        stream = api_key_id(name)
        return stream if self.postgres else stream.hex

    # -- creating and upgrading ------------------------------------------------------------

    @contextmanager
    def creating(self) -> Iterator[Any]:
        """A transaction for creating or upgrading the table (one process at a time)."""
        lock = schema_creation_lock(self.app.database, "keys") if self.postgres else nullcontext()
        with lock, self.datastore.transaction(commit=True) as cur:
            yield cur

    def create(self, cur: Any) -> None:
        """Create the table, or add `stream_id` to a table of before #14."""
        cur.execute(self.sql(DDL))
        if self.postgres:
            cur.execute(
                "SELECT 1 FROM information_schema.columns WHERE table_schema = %s AND"
                " table_name = 'api_keys' AND column_name = 'stream_id'",
                (self.app.database.schema,),
            )
            has_stream = cur.fetchone() is not None
        else:
            cur.execute("PRAGMA table_info(api_keys)")
            has_stream = any(r["name"] == "stream_id" for r in cur.fetchall())
        if not has_stream:
            cur.execute(self.sql("ALTER TABLE {keys} ADD COLUMN stream_id {id}"))

    def unlinked(self, cur: Any) -> bool:
        """Whether a row has no stream: rows of a table of before #14 (or put there by hand)."""
        cur.execute(self.sql("SELECT 1 FROM {keys} WHERE stream_id IS NULL LIMIT 1"))
        return cur.fetchone() is not None

    # -- reading ---------------------------------------------------------------------------

    def rows(self, cur: Any | None = None) -> list[KeyRow]:
        statement = self.sql(SELECT_ROWS + " ORDER BY name")
        if cur is not None:
            cur.execute(statement)
            return [KeyRow(*(r[k] for k in KeyRow._fields)) for r in cur.fetchall()]
        with self.datastore.transaction(commit=False) as c:
            return self.rows(c)

    def events_in(self, cur: Any, stream: Any) -> list[DomainEvent]:
        cur.execute(self.sql(SELECT_STREAM), (stream,))
        return self.decode(stream, cur.fetchall())

    def decode(self, stream: Any, rows: Sequence[Any]) -> list[DomainEvent]:
        """Events from rows with `version`, `topic` and `state`."""
        text = str(stream) if self.postgres else str(UUID(hex=stream))
        return [decode_event(r["topic"], text, r["version"], bytes(r["state"])) for r in rows]

    def snapshot(self, *, token_hash: str | None = None, name: str | None = None) -> Any:
        """The row of a token hash (or of a name) and the events of the stream it names, as
        one statement reads them (one snapshot, whatever other writers do meanwhile): (the
        row, its events' rows), or None when there is no such row."""
        by, value = ("token_hash", token_hash) if name is None else ("name", name)
        statement = self.sql(AUTHENTICATE.replace("{by}", by))
        if self.postgres:
            with self.datastore.get_connection() as connection:
                found = list(connection.execute(statement, (value,)).fetchall())
        else:
            with self.datastore.get_connection(commit=False) as connection:
                found = connection._sqlite_conn.execute(statement, (value,)).fetchall()
        if not found:
            return None
        row = KeyRow(*(found[0][k] for k in KeyRow._fields))
        return row, [r for r in found if r["version"] is not None]

    def problem(self, row: KeyRow, events: Sequence[Any]) -> str | None:
        """Why a row is not what the events of the stream it names say (rows with `version`,
        `topic`, `state`), or None when it is exactly that."""
        if not events:
            return "the key table has it, the log has no such key"
        versions = [r["version"] for r in events]
        if versions != list(range(1, len(versions) + 1)):
            return "its stream in the log has gaps"
        try:
            state = fold(self.decode(row.stream_id, events))
        except Exception as e:  # a stream that does not decode is no key
            return f"its events in the log cannot be read ({type(e).__name__})"
        differ = differing_columns(row, state, self.stream(row.name))
        if differ:
            verb = "differs" if len(differ) == 1 else "differ"
            return f"the key table's {', '.join(differ)} {verb} from the log's"
        return None

    # -- writing ---------------------------------------------------------------------------

    @contextmanager
    def writing(self) -> Iterator[Any]:
        """One transaction holding the events table's write lock (what appending needs):
        read a key's stream, append its events (`append`) and write its row (`put`)."""
        with self._postgres_writing() if self.postgres else self._sqlite_writing() as cur:
            yield cur

    @contextmanager
    def _postgres_writing(self) -> Iterator[Any]:
        from psycopg import errors

        try:
            with (
                self.datastore.get_connection() as conn,
                conn.transaction(),
                conn.cursor() as curs,
            ):
                self.recorder._lock_table(curs)
                yield curs
        except errors.LockNotAvailable as e:
            seconds = self.datastore.lock_timeout
            raise StoreBusy(f"the events table stayed locked for {seconds} s") from e
        except errors.IntegrityError as e:
            raise IntegrityError(e) from e

    @contextmanager
    def _sqlite_writing(self) -> Iterator[Any]:
        # BEGIN IMMEDIATE, as the recorder's own inserts: the write lock before the head read.
        from ledger.store.sqlite import immediate_transaction

        with immediate_transaction(self.datastore) as cursor:
            yield cursor

    def append(self, cur: Any, events: Sequence[DomainEvent]) -> None:
        """Append events to the log in the `writing` transaction, chained as every write."""
        mapper = self.app.mapper
        stored: list[StoredEvent] = [mapper.to_stored_event(e) for e in events]
        if self.postgres:
            self.recorder._insert_stored_events(cur, stored)
        else:
            self.recorder._insert_events(cur, stored)

    def put(self, cur: Any, state: ApiKeyState) -> None:
        """Write a key's row as its stream now says (in the `writing` transaction)."""
        cur.execute(self.sql(UPSERT), (*row_of(state), self.stream(state.name)))

    def replace_all(self, cur: Any, states: Sequence[ApiKeyState]) -> None:
        """Make the table exactly these rows (a rebuild from the log)."""
        cur.execute(self.sql("DELETE FROM {keys}"))
        for state in states:
            self.put(cur, state)
