"""Turn a LEDGER_DATABASE_URL into the eventsourcing environment for our event stores."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit


class DatabaseUrlError(ValueError):
    """The database URL is not one this ledger understands."""


@dataclass(frozen=True)
class Database:
    """A parsed database URL."""

    url: str
    kind: str  # "sqlite" or "postgresql"
    path: str = ""
    host: str = ""
    port: str = "5432"
    user: str = ""
    password: str = ""
    dbname: str = ""
    schema: str = "public"
    # PostgreSQL connection settings from the URL's query (POSTGRES_OPTIONS: name -> default).
    pool_size: int = 5
    max_overflow: int = 10
    pool_timeout: int = 30
    lock_timeout: int = 5
    idle_in_transaction_timeout: int = 5
    views_pool_size: int = 4

    @property
    def conninfo(self) -> str:
        """A PostgreSQL connection string for a connection of our own (not the pool's)."""
        info = f"host={self.host} port={self.port} user={self.user} dbname={self.dbname}"
        return f"{info} password={self.password}" if self.password else info

    def advisory_key(self, purpose: str) -> int:
        """A PostgreSQL advisory lock key for `purpose` in this schema (a signed 64-bit
        integer, as the lock functions take)."""
        name = f"customs-ledger:{self.schema}:{purpose}"
        key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big")
        return key - (1 << 63)

    @property
    def display(self) -> str:
        """The URL without its password, for logs."""
        if self.kind == "sqlite":
            return f"sqlite:///{self.path}"
        url = f"postgresql://{self.user}@{self.host}:{self.port}/{self.dbname}"
        return url if self.schema == "public" else f"{url}?schema={self.schema}"


# The query parameters a PostgreSQL URL may carry besides `schema`, each a whole number:
# name -> (smallest value allowed, what it sets). docs/operations.md explains them.
POSTGRES_OPTIONS: dict[str, tuple[int, str]] = {
    "pool_size": (1, "event-store connections each process keeps open"),
    "max_overflow": (0, "event-store connections opened beyond pool_size under load"),
    "pool_timeout": (1, "seconds a request waits for a free event-store connection"),
    "lock_timeout": (0, "seconds an append waits for the events table lock (0: no limit)"),
    "idle_in_transaction_timeout": (0, "seconds a session may idle inside a transaction"),
    "views_pool_size": (1, "connections to the views each process may open"),
}


def parse_database_url(url: str) -> Database:
    """Parse `sqlite:///path` or `postgresql://user[:pw]@host[:port]/db[?schema=name&...]`
    (the other query parameters: POSTGRES_OPTIONS)."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        path = url[len("sqlite:///") :] if url.startswith("sqlite:///") else ""
        if not path:
            raise DatabaseUrlError(f"expected sqlite:///<path>, got {url!r}")
        return Database(url=url, kind="sqlite", path=path)
    if parts.scheme in ("postgresql", "postgres"):
        dbname = parts.path.lstrip("/")
        if not parts.hostname or not dbname:
            raise DatabaseUrlError(f"expected postgresql://user@host/db, got {url!r}")
        schema = "public"
        options: dict[str, Any] = {}  # int settings named in POSTGRES_OPTIONS
        for pair in parts.query.split("&") if parts.query else []:
            key, _, value = pair.partition("=")
            if key == "schema":
                schema = value or schema
            elif key in POSTGRES_OPTIONS:
                least = POSTGRES_OPTIONS[key][0]
                if not (value.isascii() and value.isdigit() and int(value) >= least):
                    raise DatabaseUrlError(
                        f"{key} in the database URL must be a whole number >= {least},"
                        f" got {value!r}"
                    )
                options[key] = int(value)
            else:
                known = ", ".join(["schema", *POSTGRES_OPTIONS])
                raise DatabaseUrlError(
                    f"unknown parameter {key!r} in the database URL (known: {known})"
                )
        database = Database(
            url=url,
            kind="postgresql",
            host=parts.hostname,
            port=str(parts.port or 5432),
            user=unquote(parts.username or "postgres"),
            password=unquote(parts.password or ""),
            dbname=dbname,
            schema=schema,
        )
        return dataclasses.replace(database, **options)
    raise DatabaseUrlError(f"unsupported database URL scheme {parts.scheme!r} in {url!r}")


def private_file(path: str) -> None:
    """Create a store's file readable by its owner only (0600), in a directory made 0700 if
    this makes it; SQLite gives the -wal and -shm files the database file's permissions.
    Existing files and directories keep theirs (an operator's choice)."""
    file = Path(path)
    file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(file, os.O_CREAT | os.O_RDWR, 0o600))


def eventsourcing_env(db: Database) -> dict[str, str]:
    """The environment that points the library at our chained recorders for this database."""
    if db.kind == "sqlite":
        if not db.path.startswith(":memory:") and "mode=memory" not in db.path:
            private_file(db.path)
        return {
            "PERSISTENCE_MODULE": "ledger.store.sqlite:LedgerSQLiteFactory",
            "SQLITE_DBNAME": db.path,
            "SQLITE_LOCK_TIMEOUT": "10",
        }
    return {
        "PERSISTENCE_MODULE": "ledger.store.postgres:LedgerPostgresFactory",
        "POSTGRES_DBNAME": db.dbname,
        "POSTGRES_HOST": db.host,
        "POSTGRES_PORT": db.port,
        "POSTGRES_USER": db.user,
        "POSTGRES_PASSWORD": db.password,
        "POSTGRES_SCHEMA": db.schema,
        "POSTGRES_LOCK_TIMEOUT": str(db.lock_timeout),
        "POSTGRES_POOL_SIZE": str(db.pool_size),
        "POSTGRES_MAX_OVERFLOW": str(db.max_overflow),
        # The library uses it as the wait for a free pooled connection.
        "POSTGRES_CONNECT_TIMEOUT": str(db.pool_timeout),
        "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": str(db.idle_in_transaction_timeout),
        "POSTGRES_ENABLE_DB_FUNCTIONS": "n",
    }


@contextmanager
def schema_creation_lock(db: Database, purpose: str) -> Iterator[None]:
    """Hold a PostgreSQL advisory lock (per schema and purpose) while tables are created.

    `CREATE ... IF NOT EXISTS` is not safe against itself in PostgreSQL: two sessions creating
    the same table or type at once can fail on the catalogue's unique index. Session-level
    locks do not nest across connections, hence one key per purpose, taken one after another.
    """
    import psycopg

    key = db.advisory_key(purpose)
    with psycopg.connect(db.conninfo, autocommit=True, connect_timeout=10) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (key,))
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
