"""A write the store cannot take in time is 503 with Retry-After, never a 500 (issue #14 item
0): on PostgreSQL every append takes the events table's EXCLUSIVE lock; when another session
holds it past the URL's `lock_timeout`, the write answers at once, writes nothing, and the same
request succeeds once the lock is free."""

from __future__ import annotations

import time

import psycopg
import pytest

from ledger.database import parse_database_url
from tests.support import declaration_body, new_key, onboard, pg_conninfo, running_ledger

pytestmark = pytest.mark.postgres


def test_a_write_that_cannot_get_the_table_lock_is_503_with_retry_after(postgres_url):
    url = f"{postgres_url}&lock_timeout=1"
    db = parse_database_url(url)
    with running_ledger(url) as ledger:
        tenant = onboard(ledger)
        table = f'"{db.schema}"."{ledger.services.app.recorder.events_table_name}"'
        body = declaration_body(tenant.uscc, tenant.book_no)
        key = new_key()
        before = ledger.log_state()
        with psycopg.connect(pg_conninfo(db)) as blocker:  # one transaction, until the block ends
            blocker.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")
            started = time.monotonic()
            busy = ledger.post("/v1/declarations", tenant.token_name, body, key=key)
            took = time.monotonic() - started
        assert busy.status_code == 503, busy.text
        assert busy.headers["Retry-After"] == "1"
        assert busy.headers["content-type"].startswith("application/problem+json")
        assert busy.json()["type"].endswith("/unavailable")
        # One lock timeout, not the library's ten retries of it.
        assert took < 4, took
        assert ledger.log_state() == before
        # The lock is free again: the same request, the same key, is taken.
        again = ledger.post("/v1/declarations", tenant.token_name, body, key=key)
        assert again.status_code == 201, again.text
        assert again.headers.get("Idempotency-Replayed") != "true"
