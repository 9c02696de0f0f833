"""Where import jobs are kept (docs/decisions/0032-imports.md): beside the log, not in it.

A job's documents are written through the ledger with their own Idempotency-Keys, so every
acknowledged row is in the log (its `RequestCompleted` record and its events) whatever
happens to the job. The job itself - who uploaded which file, how far it got, each row's
outcome, the refusals (which the log never records) - is operational state like the
webhook dispatcher's: a SQLite file of its own beside a SQLite log (`<log>.imports.sqlite3`),
tables in a PostgreSQL log's schema. It survives a restart; it is not audited, not
hash-chained, and a replay neither rebuilds nor compares it.

`import_jobs (id, enterprise, principal, job, updated_at, zone)`: the job as JSON and its
owner (`zone`: an operator's upload; added to stores made before it, empty for their jobs);
`import_results (job_id, row, outcome, result)`: one row per document (its first row);
`import_contents (content_key, job_id, row, principal, idempotency_key)`: the content key of
each document a real run got into the ledger (accepted, or replayed), the first import and
row that did, saved with its result: a later import of the same content skips it. A store
made before this table gets it when it is opened; its earlier imports have no content keys
(only what is imported from then on is recognised).
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
    "CREATE TABLE IF NOT EXISTS {contents} ("
    " content_key TEXT PRIMARY KEY, job_id TEXT NOT NULL, row BIGINT NOT NULL,"
    " principal TEXT NOT NULL, idempotency_key TEXT NOT NULL)",
)
# Keys looked up per statement (SQLite allows 32,766 parameters; PostgreSQL 65,535).
LOOKUP_CHUNK = 500


class ImportStore:
    """The three tables, on either store; every method is one short transaction."""

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
                "contents": f'"{schema}".import_contents',
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
        self.names = {
            "jobs": "import_jobs",
            "results": "import_results",
            "contents": "import_contents",
        }
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
        contents: Sequence[tuple[str, int, str, str]] = (),
        zone: str | None = None,
    ) -> None:
        """The job as it stands now, the results since the last save and the content keys
        of the documents they got in, in one transaction; a content key saved before keeps
        its first import."""
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
            for key, row, who, idempotency_key in contents:
                cur.execute(
                    self.sql(
                        "INSERT INTO {contents} (content_key, job_id, row, principal,"
                        " idempotency_key) VALUES (?,?,?,?,?) ON CONFLICT (content_key)"
                        " DO NOTHING"
                    ),
                    (key, job_id, row, who, idempotency_key),
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

    def contents(self, keys: Sequence[str]) -> dict[str, tuple[str, int, str, str, str | None]]:
        """Of these content keys, those saved before: key -> (import id, row, principal,
        Idempotency-Key, that row's result JSON or None)."""
        found: dict[str, tuple[str, int, str, str, str | None]] = {}
        for start in range(0, len(keys), LOOKUP_CHUNK):
            chunk = list(dict.fromkeys(keys[start : start + LOOKUP_CHUNK]))
            marks = ",".join("?" * len(chunk))
            with self._cursor() as cur:
                cur.execute(
                    self.sql(
                        "SELECT c.content_key, c.job_id, c.row, c.principal, c.idempotency_key,"
                        " r.result FROM {contents} c LEFT JOIN {results} r"
                        " ON r.job_id = c.job_id AND r.row = c.row"
                        f" WHERE c.content_key IN ({marks})"
                    ),
                    chunk,
                )
                rows = cur.fetchall()
            names = ("content_key", "job_id", "row", "principal", "idempotency_key", "result")
            for r in rows:
                key, job_id, row, principal, idempotency_key, result = _values(r, *names)
                found[key] = (job_id, int(row), principal, idempotency_key, result)
        return found

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


def _values(row: Any, *names: str) -> tuple[Any, ...]:
    """A row's columns, whether the cursor gives tuples (SQLite) or dicts (the PostgreSQL
    datastore's)."""
    if isinstance(row, dict):
        return tuple(row[name] for name in names)
    return tuple(row)
