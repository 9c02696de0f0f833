"""The PostgreSQL server the benchmarks run on (LEDGER_TEST_POSTGRES_URL, as for the tests):
whether it answers, and new schemas or databases on it, dropped afterwards (bench/p7.py,
bench/areas.py, tests/e2e/test_pilot_areas.py)."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

PG_URL = os.environ.get(
    "LEDGER_TEST_POSTGRES_URL", "postgresql://postgres:postgres@127.0.0.1:5432/test"
)


def conninfo(url: str = PG_URL) -> str:
    """libpq's keywords for the ledger's PostgreSQL URL (tests/support.py `pg_conninfo`)."""
    from ledger.database import parse_database_url
    from tests.support import pg_conninfo

    return pg_conninfo(parse_database_url(url))


def unreachable(url: str = PG_URL) -> str | None:
    """None when PostgreSQL answers, else why not."""
    try:
        import psycopg

        with psycopg.connect(conninfo(url), connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as e:
        return f"PostgreSQL at LEDGER_TEST_POSTGRES_URL not reachable ({type(e).__name__}: {e})"
    return None


def _admin(url: str, **options: Any) -> Any:
    """A connection of its own, each statement committed (CREATE/DROP DATABASE need that)."""
    import psycopg

    return psycopg.connect(conninfo(url), autocommit=True, **options)


@contextlib.contextmanager
def fresh_schema(prefix: str, url: str = PG_URL) -> Iterator[tuple[str, str]]:
    """A new schema `{prefix}_...` in the URL's database, dropped afterwards: (its name, the
    ledger's URL for it)."""
    schema = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with _admin(url, connect_timeout=5) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield schema, f"{url}{'&' if '?' in url else '?'}schema={schema}"
    finally:
        with _admin(url) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@contextlib.contextmanager
def fresh_databases(names: list[str], prefix: str, url: str = PG_URL) -> Iterator[dict[str, str]]:
    """A new database `{prefix}_{name}_...` per name on the URL's server (its user must be
    allowed to create databases), dropped afterwards: {name: the ledger's URL for it, the
    URL's query kept}."""
    made = {n: f"{prefix}_{n}_{uuid.uuid4().hex[:8]}" for n in names}
    parts = urlsplit(url)
    with _admin(url, connect_timeout=5) as conn:
        for db in made.values():
            conn.execute(f'CREATE DATABASE "{db}"')
    try:
        yield {n: urlunsplit(parts._replace(path=f"/{db}")) for n, db in made.items()}
    finally:
        with _admin(url) as conn:
            for db in made.values():
                conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
