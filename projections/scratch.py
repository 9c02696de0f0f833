"""Scratch stores for a replay: a temporary SQLite file next to the live views (no fsync,
thrown away) or a temporary PostgreSQL schema (unlogged tables, dropped)."""

from __future__ import annotations

import contextlib
import glob
import os
import uuid
from collections.abc import Iterator

from projections.store import PostgresViews, SQLiteViews, ViewStore


@contextlib.contextmanager
def scratch_sqlite(beside: str) -> Iterator[SQLiteViews]:
    """A temporary views file next to `beside` (the live views' file), deleted afterwards."""
    path = f"{beside}.replay-{uuid.uuid4().hex[:12]}.sqlite3"
    views = SQLiteViews(path, scratch=True)
    try:
        yield views
    finally:
        views.close()
        for name in glob.glob(glob.escape(path) + "*"):  # with any helper's file (`Helper`)
            with contextlib.suppress(FileNotFoundError):
                os.remove(name)


@contextlib.contextmanager
def scratch_postgres(conninfo: str) -> Iterator[PostgresViews]:
    """A temporary schema in the views' database (unlogged tables), dropped afterwards."""
    import psycopg

    schema = f"replay_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    views = PostgresViews(conninfo, schema=schema, pool_size=2, scratch=True)
    try:
        yield views
    finally:
        views.close()
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def unlog_tables(views: ViewStore) -> None:
    """Scratch PostgreSQL tables need no write-ahead log (they are dropped afterwards). A
    scratch store creates its tables unlogged; this turns any other table of its schema so."""
    if not isinstance(views, PostgresViews):
        return
    with views.transaction() as cur:
        cur.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = current_schema() AND c.relkind = 'r' AND c.relpersistence = 'p'"
        )
        for name in [r["relname"] for r in cur.fetchall()]:
            cur.execute(f'ALTER TABLE "{name}" SET UNLOGGED')
