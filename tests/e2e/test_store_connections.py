"""A store with no free connection in time (a machine far past its load) answers 503
problem+json with Retry-After, in the caller's language, and records nothing; never a 500.

Found by a CI run on a machine with a load of 10 on 2 cores: eight concurrent reads waited out
the library's 5 s for one of its 15 SQLite connections and the server answered 500.
"""

from __future__ import annotations

from typing import Any

import pytest
from eventsourcing.persistence import ConnectionUnavailableError, OperationalError

from ledger.store import sqlite as store
from tests.support import admit, onboard, running_ledger


def test_the_sqlite_pool_has_a_connection_for_every_worker_thread(sqlite_url):
    with running_ledger(sqlite_url) as ledger:
        pool = ledger.services.app.recorder.datastore.pool
        # anyio runs at most 40 worker threads; the runner, the group commit, the dispatcher
        # and import jobs read beside them.
        assert pool.pool_size + pool.max_overflow == store.POOL_SIZE + store.POOL_OVERFLOW >= 48
        assert pool.pool_timeout == store.POOL_TIMEOUT_SECONDS >= 30


def _entries(ledger: Any, tenant: Any, language: str) -> Any:
    # The book's entries are read from the log (the account book's stream).
    return ledger.client.get(
        f"/v1/account-books/{tenant.book_no}/entries",
        headers={**ledger.headers(tenant.token_name), "Accept-Language": language},
    )


def _unavailable(r: Any, language: str) -> dict[str, Any]:
    assert r.status_code == 503, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.headers["retry-after"] == "1"
    assert r.headers["content-language"] == language
    problem = r.json()
    assert problem["type"].endswith("/unavailable") and problem["status"] == 503
    return problem


@pytest.mark.parametrize("language", ["en", "zh-CN"])
def test_no_free_connection_is_a_503_that_records_nothing(sqlite_url, monkeypatch, language):
    with running_ledger(sqlite_url) as ledger:
        tenant = onboard(ledger)
        admit(ledger, tenant, 1, "10")
        before = ledger.log_state()
        pool = ledger.services.app.recorder.datastore.pool

        def exhausted(*args: Any, **kwargs: Any) -> Any:
            raise ConnectionUnavailableError("Timed out waiting for connection pool semaphore")

        monkeypatch.setattr(pool, "get_connection", exhausted)
        r = _entries(ledger, tenant, language)
        monkeypatch.undo()
        problem = _unavailable(r, language)
        want = "存储连接" if language == "zh-CN" else "no free store connection"
        assert want in problem["detail"], problem
        assert ledger.log_state() == before


@pytest.mark.parametrize("language", ["en", "zh-CN"])
def test_a_store_that_does_not_answer_is_a_503(database_url, monkeypatch, language):
    """PostgreSQL's pool timeout (psycopg_pool.PoolTimeout) and a lost connection reach the
    app as the library's OperationalError: 503, a retry with the same key is safe."""
    with running_ledger(database_url) as ledger:
        tenant = onboard(ledger)
        admit(ledger, tenant, 1, "10")
        datastore = ledger.services.app.recorder.datastore

        def gone(*args: Any, **kwargs: Any) -> Any:
            raise OperationalError("couldn't get a connection after 30.00 sec")

        monkeypatch.setattr(datastore, "get_connection", gone)
        r = _entries(ledger, tenant, language)
        monkeypatch.undo()
        problem = _unavailable(r, language)
        want = "重新发送" if language == "zh-CN" else "Idempotency-Key"
        assert want in problem["detail"], problem
        assert _entries(ledger, tenant, "en").status_code == 200
