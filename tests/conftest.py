"""Shared fixtures: every store-backed test runs on SQLite and on the real PostgreSQL server."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from ledger.database import Database, parse_database_url

PG_URL = os.environ.get(
    "LEDGER_TEST_POSTGRES_URL", "postgresql://postgres:postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _postgres_reachable() -> str | None:
    try:
        import psycopg

        with psycopg.connect(_conninfo(parse_database_url(PG_URL)), connect_timeout=3):
            return None
    except Exception as e:  # the reason is shown in the skip message
        return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def _conninfo(db: Database) -> str:
    return f"host={db.host} port={db.port} user={db.user} password={db.password} dbname={db.dbname}"


@pytest.fixture(scope="session")
def postgres_available() -> None:
    reason = _postgres_reachable()
    if reason is not None:
        if IN_CI:
            pytest.fail(f"PostgreSQL is mandatory in CI and unreachable at {PG_URL}: {reason}")
        pytest.skip(f"PostgreSQL unreachable at {PG_URL} ({reason}); CI runs these")


@pytest.fixture
def postgres_url(postgres_available: None) -> Iterator[str]:
    """A fresh schema on the test server, dropped afterwards."""
    import psycopg

    db = parse_database_url(PG_URL)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_conninfo(db), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{sep}schema={schema}"
    with psycopg.connect(_conninfo(db), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path}/ledger.sqlite3"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request) -> str:
    """The same test, once per store."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("postgres_url")
