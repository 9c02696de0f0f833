"""The commit-time read check on PostgreSQL probes the primary key, whatever the log's size
(issue #14 item 0): it runs under the log's EXCLUSIVE table lock, so a sequential scan there
stalls every tenant's writes. `max(originator_version) ... WHERE originator_id = ANY(ids)` was
planned as a (parallel) sequential scan: 2.5 s for 100 ids on a 73k-event log."""

from __future__ import annotations

import json
import uuid

import psycopg
import pytest

from ledger.application import LedgerApplication
from ledger.database import parse_database_url
from tests.support import pg_conninfo

pytestmark = pytest.mark.postgres

STREAMS = 20_000
VERSIONS = 5  # events per stream: 100,000 rows


def _nodes(plan: dict) -> list[dict]:
    found = [plan]
    for child in plan.get("Plans", []):
        found += _nodes(child)
    return found


def test_the_read_check_probes_the_primary_key_at_any_log_size(postgres_url):
    db = parse_database_url(postgres_url)
    app = LedgerApplication(db)
    try:
        recorder = app.recorder
        name = recorder.events_table_name
        table = f'"{db.schema}"."{name}"'
        with psycopg.connect(pg_conninfo(db), autocommit=True) as conn:
            # A large log made in the server (the plan, not the chain, is under test here).
            conn.execute(
                f"INSERT INTO {table} (originator_id, originator_version, topic, state, "
                "sequence, recorded_at, hash) SELECT md5(s::text)::uuid, v, 't', '\\x7b7d', "
                f"(s - 1) * {VERSIONS} + v, '2026-11-27T00:00:00.000000Z', '\\x00' "
                f"FROM generate_series(1, {STREAMS}) s, generate_series(1, {VERSIONS}) v"
            )
            conn.execute(f"ANALYZE {table}")
            present = [
                uuid.UUID(row[0])
                for row in conn.execute(
                    "SELECT md5(s::text) FROM generate_series(1, 1000, 10) s"
                ).fetchall()
            ]
            absent = [uuid.uuid4() for _ in range(100)]
            ids = "{" + ",".join(str(s) for s in [*present, *absent]) + "}"
            statement = recorder.select_versions_statement.as_string(conn)
            (plan,) = conn.execute("EXPLAIN (FORMAT JSON) " + statement, (ids,)).fetchone()
        plan = plan if isinstance(plan, list) else json.loads(plan)
        nodes = _nodes(plan[0]["Plan"])
        on_log = [n for n in nodes if n.get("Relation Name") == name]
        assert on_log, json.dumps(plan, indent=1)
        kinds = {n["Node Type"] for n in on_log}
        assert kinds <= {"Index Scan", "Index Only Scan"}, kinds
        assert all(n.get("Index Name") == f"{name}_pkey" for n in on_log), on_log
        # And it answers what it is asked: the last version of each stream, 0 for none.
        versions = recorder.stream_versions([*present, *absent])
        assert all(versions[s] == VERSIONS for s in present)
        assert all(versions[s] == 0 for s in absent)
    finally:
        app.close()
