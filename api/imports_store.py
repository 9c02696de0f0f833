"""Where import jobs are kept (docs/decisions/0032-imports.md): beside the log, not in it.

A job's documents are written through the ledger with their own Idempotency-Keys, so every
acknowledged row is in the log (its `RequestCompleted` record and its events) whatever
happens to the job. The job itself - who uploaded which file, how far it got, each row's
outcome, the refusals (which the log never records) - is operational state like the
webhook dispatcher's: a SQLite file of its own beside a SQLite log (`<log>.imports.sqlite3`),
two tables in a PostgreSQL log's schema. It survives a restart; it is not audited, not
hash-chained, and a replay neither rebuilds nor compares it.

`import_jobs (id, enterprise, principal, job, updated_at, zone)`: the job as JSON and its
owner (`zone`: an operator's upload; added to stores made before it, empty for their jobs);
`import_results (job_id, row, outcome, result)`: one row per document (its first row).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from ledger.database import Database, private_file, schema_creation_lock

DDL = (
    "CREATE TABLE IF NOT EXISTS {jobs} ("
    " id TEXT PRIMARY KEY, enterprise TEXT, principal TEXT NOT NULL, job TEXT NOT NULL,"
    " updated_at DOUBLE PRECISION NOT NULL, zone TEXT)",
    "CREATE TABLE IF NOT EXISTS {results} ("
    " job_id TEXT NOT NULL, row BIGINT NOT NULL, outcome TEXT NOT NULL, result TEXT NOT NULL,"
    " PRIMARY KEY (job_id, row))",
)


class ImportStore:
    """The two tables, on either store; every method is one short transaction."""

    def __init__(self, database: Database, datastore: Any = None) -> None:
        self.postgres = database.kind == "postgresql"
        self.lock = threading.Lock()
        self.conn: sqlite3.Connection | None = None
        if self.postgres:
            self.datastore = datastore
            schema = database.schema
            self.names = {
                "jobs": f'"{schema}".import_jobs',
                "results": f'"{schema}".import_results',
            }
            with schema_creation_lock(database, "imports"), self._cursor() as cur:
                for statement in DDL:
                    cur.execute(self.sql(statement))
                # A store made before the column: added, empty for its jobs (looked up
                # first: an ALTER TABLE would lock the table at every start).
                cur.execute(
                    "SELECT 1 FROM information_schema.columns WHERE table_schema = %s"
                    " AND table_name = 'import_jobs' AND column_name = 'zone'",
                    (schema,),
                )
                if cur.fetchone() is None:
                    cur.execute(self.sql("ALTER TABLE {jobs} ADD COLUMN IF NOT EXISTS zone TEXT"))
            return
        path = database.path
        if not (path.startswith(":memory:") or "mode=memory" in path):
            stem = path[: -len(".sqlite3")] if path.endswith(".sqlite3") else path
            path = stem + ".imports.sqlite3"
            private_file(path)
        self.conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA synchronous = NORMAL")
        self.names = {"jobs": "import_jobs", "results": "import_results"}
        with self._cursor() as cur:
            for statement in DDL:
                cur.execute(self.sql(statement))
            # A store made before the column (SQLite has no ADD COLUMN IF NOT EXISTS; the
            # write lock of this transaction keeps two processes from adding it twice).
            cur.execute("PRAGMA table_info(import_jobs)")
            if "zone" not in {r[1] for r in cur.fetchall()}:
                cur.execute("ALTER TABLE import_jobs ADD COLUMN zone TEXT")

    def sql(self, statement: str) -> str:
        text = statement.format(**self.names)
        return text.replace("?", "%s") if self.postgres else text

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        if self.postgres:
            with self.datastore.transaction(commit=True) as cur:
                yield cur
            return
        assert self.conn is not None
        with self.lock:
            cur = self.conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")

    def save(
        self,
        job_id: str,
        enterprise: str | None,
        principal: str,
        job: bytes,
        results: Sequence[tuple[int, str, bytes]] = (),
        *,
        zone: str | None = None,
    ) -> None:
        """The job as it stands now and the results since the last save, in one transaction."""
        with self._cursor() as cur:
            cur.execute(
                self.sql(
                    "INSERT INTO {jobs} (id, enterprise, principal, job, updated_at, zone)"
                    " VALUES (?,?,?,?,?,?) ON CONFLICT (id) DO UPDATE SET job = excluded.job,"
                    " updated_at = excluded.updated_at"
                ),
                (job_id, enterprise, principal, job.decode(), time.time(), zone),
            )
            for row, outcome, result in results:
                cur.execute(
                    self.sql(
                        "INSERT INTO {results} (job_id, row, outcome, result) VALUES (?,?,?,?)"
                        " ON CONFLICT (job_id, row) DO UPDATE SET outcome = excluded.outcome,"
                        " result = excluded.result"
                    ),
                    (job_id, row, outcome, result.decode()),
                )

    def job(self, job_id: str) -> tuple[str | None, str | None, str, float] | None:
        """(enterprise, zone, job JSON, seconds since the epoch of its last save) or None."""
        with self._cursor() as cur:
            cur.execute(
                self.sql("SELECT enterprise, zone, job, updated_at FROM {jobs} WHERE id = ?"),
                (job_id,),
            )
            row = cur.fetchone()
        if row is None:
            return None
        enterprise, zone, job, updated = _values(row, "enterprise", "zone", "job", "updated_at")
        return enterprise, zone, job, float(updated)

    def results(
        self, job_id: str, after: int, limit: int, outcome: str | None = None
    ) -> list[tuple[int, str]]:
        """(row, result JSON) in row order, after row `after`, of one outcome or all."""
        where = "job_id = ? AND row > ?" + (" AND outcome = ?" if outcome else "")
        params: tuple[Any, ...] = (job_id, after, outcome) if outcome else (job_id, after)
        with self._cursor() as cur:
            cur.execute(
                self.sql(f"SELECT row, result FROM {{results}} WHERE {where} ORDER BY row LIMIT ?"),
                (*params, limit),
            )
            found = [_values(r, "row", "result") for r in cur.fetchall()]
        return [(int(row), result) for row, result in found]

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


def _values(row: Any, *names: str) -> tuple[Any, ...]:
    """A row's columns, whether the cursor gives tuples (SQLite) or dicts (the PostgreSQL
    datastore's)."""
    if isinstance(row, dict):
        return tuple(row[name] for name in names)
    return tuple(row)
