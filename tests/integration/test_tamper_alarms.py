"""The tamper drill (issue #14 item 3): a server verifies its own log in the background; on an
edited, cut, reordered or rechained log, or a key table changed by hand, it refuses writes
(503 with the reason), `/healthz` says why (503), `/metrics` raises `ledger_tamper_alarm`, and
nothing more is written; `verify` names the first bad event (or the key)."""

from __future__ import annotations

import dataclasses
import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from ledger.chain import link_hash
from ledger.keys import token_hash
from tests.samples import rules_without_draws
from tests.support import RAISED_LIMITS, Ledger, admit, declaration_body, new_key, onboard

PERIOD = 0.05  # seconds between the watch's checks in these tests


@contextmanager
def watched_ledger(path: Path, digest_file: Path | None = None) -> Iterator[Ledger]:
    settings = Settings(
        database_url=f"sqlite:///{path}",
        verify_seconds=PERIOD,
        digest_file=str(digest_file) if digest_file else None,
        rate_limits=RAISED_LIMITS,  # the tests poll /healthz as fast as they can
    )
    app = create_app(settings, rules=rules_without_draws())
    with TestClient(app) as client:
        services = app.state.services
        ledger = Ledger(client=client, services=services, tokens={})
        for role in ("admin", "auditor"):
            ledger.tokens[role] = services.keys.issue(name=f"{role}-{new_key()[:8]}", role=role)
        yield ledger


def _checked(ledger: Ledger) -> None:
    """Wait for the watch's first round (the whole chain) and one round after a write."""
    position = ledger.services.app.log.head().position
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        checkpoint = ledger.services.watch.checkpoint
        if checkpoint is not None and checkpoint.position >= position:
            return
        time.sleep(0.01)
    raise AssertionError("the watch did not check the log")


def _alarm(ledger: Ledger) -> str:
    deadline = time.monotonic() + 10
    while ledger.services.alarm is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert ledger.services.alarm is not None, "no alarm"
    return ledger.services.alarm


def _sql(ledger: Ledger, statement: str, *params: Any) -> list[tuple[Any, ...]]:
    table = ledger.services.app.recorder.events_table_name
    with sqlite3.connect(ledger.services.database.path) as conn:
        return conn.execute(statement.format(t=table), params).fetchall()


def _edit(ledger: Ledger, sequence: int, old: bytes, new: bytes) -> None:
    """Change a stored event's bytes in place, as someone with the database file could."""
    ((state,),) = _sql(ledger, "SELECT state FROM {t} WHERE sequence = ?", sequence)
    assert old in state
    _sql(ledger, "UPDATE {t} SET state = ? WHERE sequence = ?", state.replace(old, new), sequence)


@contextmanager
def _watch_paused(ledger: Ledger) -> Iterator[None]:
    """The watch's thread stopped while the block writes and tampers, then started again: its
    next round checks the tail from its last checkpoint, with the tampering in it (a watch
    left running could check the new events before they are tampered with, and then, by
    design, only a full verify finds a change before its checkpoint)."""
    watch = ledger.services.watch
    watch.stop()
    try:
        yield
    finally:
        watch._stop.clear()
        watch.start()


def _last_sequence(ledger: Ledger) -> int:
    return _sql(ledger, "SELECT max(sequence) FROM {t}")[0][0]


def _refuses_writes_and_says_why(ledger: Ledger, tenant: Any, reason: str) -> None:
    count = _last_sequence(ledger)
    r = ledger.post(
        "/v1/declarations",
        tenant.token_name,
        declaration_body(tenant.uscc, tenant.book_no),
        key=new_key(),
    )
    assert r.status_code == 503, r.text
    assert r.json()["type"].endswith("/tampered") and reason in r.json()["detail"]
    health = ledger.client.get("/healthz")
    assert health.status_code == 503 and reason in health.json()["detail"], health.text
    assert "ledger_tamper_alarm 1.0" in ledger.client.get("/metrics").text
    assert _last_sequence(ledger) == count  # nothing more was written
    # Reads still answer: the auditors and officers need them to find out what happened.
    assert ledger.get("/v1/audit/verify", "auditor").status_code == 200


@pytest.fixture
def busy(tmp_path) -> Iterator[tuple[Ledger, Any]]:
    with watched_ledger(tmp_path / "ledger.sqlite3") as ledger:
        tenant = onboard(ledger)
        admit(ledger, tenant, 1, "10")
        _checked(ledger)
        assert ledger.services.alarm is None
        assert ledger.client.get("/healthz").status_code == 200
        assert "ledger_tamper_alarm 0.0" in ledger.client.get("/metrics").text
        yield ledger, tenant


def test_an_edited_event_after_the_last_check_raises_the_alarm(busy):
    ledger, tenant = busy
    with _watch_paused(ledger):
        admit(ledger, tenant, 1, "5")  # events the watch has not checked yet...
        last = _last_sequence(ledger)
        _edit(ledger, last - 1, b'"5"', b'"9"')
    reason = _alarm(ledger)  # ...checked with the edit in them
    assert reason.startswith("hash_mismatch"), reason
    _refuses_writes_and_says_why(ledger, tenant, "hash_mismatch")


def test_a_deleted_tail_raises_the_alarm(busy):
    ledger, tenant = busy
    _sql(ledger, "DELETE FROM {t} WHERE sequence = ?", _last_sequence(ledger))
    assert _alarm(ledger).startswith("checkpoint_changed")
    _refuses_writes_and_says_why(ledger, tenant, "checkpoint_changed")


def test_a_rechained_log_raises_the_alarm(busy):
    """An event changed and every later hash recomputed with the published algorithm: a valid
    chain on its own, but the event the watch last checked no longer has its hash."""
    ledger, tenant = busy
    columns = "sequence, originator_id, originator_version, topic, recorded_at, state, hash"
    rows = _sql(ledger, f"SELECT {columns} FROM {{t}} ORDER BY sequence")
    start = len(rows) // 2
    previous = rows[start - 1][6]
    for n, (sequence, stream, version, topic, recorded_at, state, _) in enumerate(rows):
        if n < start:
            continue
        if n == start:
            state = state.replace(b"10", b"90")
        stream_text = str(uuid.UUID(bytes=stream) if isinstance(stream, bytes) else stream)
        previous = link_hash(previous, stream_text, version, topic, recorded_at, state)
        update = "UPDATE {t} SET state = ?, hash = ? WHERE sequence = ?"
        _sql(ledger, update, state, previous, sequence)
    assert _alarm(ledger).startswith("checkpoint_changed")
    _refuses_writes_and_says_why(ledger, tenant, "checkpoint_changed")


def _publications(ledger: Ledger) -> int:
    rows = _sql(ledger, "SELECT topic FROM {t} ORDER BY sequence")
    return sum(1 for (topic,) in rows if topic.endswith(":ReferencePublished"))


def test_a_server_started_on_an_altered_log_refuses_writes_from_the_start(tmp_path):
    path = tmp_path / "ledger.sqlite3"
    with watched_ledger(path) as ledger:
        tenant = onboard(ledger)
        admit(ledger, tenant, 1, "10")
        # The fifth event after the first start's reference tables; then one of those.
        edited = _publications(ledger) + 5
        _edit(ledger, edited, b'"', b'" ')
        _edit(ledger, 1, b'"', b'" ')
    with watched_ledger(path) as ledger:  # a restart: the whole chain is verified again
        tenant = dataclasses.replace(tenant, token_name=f"again-{tenant.uscc}")
        ledger.issue(tenant.token_name, "enterprise", enterprise=tenant.uscc)
        reason = _alarm(ledger)
        assert reason.startswith("hash_mismatch: event 1"), reason
        _refuses_writes_and_says_why(ledger, tenant, "event 1")


def test_a_published_digest_the_log_no_longer_extends_raises_the_alarm(tmp_path):
    digests = tmp_path / "digests.txt"
    digests.write_text("# published digests, newest last\n")
    with watched_ledger(tmp_path / "ledger.sqlite3", digest_file=digests) as ledger:
        tenant = onboard(ledger)
        admit(ledger, tenant, 1, "10")
        _checked(ledger)
        d = ledger.get("/v1/audit/digest", "auditor").json()
        with digests.open("a") as f:
            f.write(f"{d['sequence']}:{d['head_hash']}\n")
        time.sleep(PERIOD * 4)
        assert ledger.services.alarm is None  # the log extends it
        with digests.open("a") as f:
            f.write(f"{d['sequence']}:{'0' * 64}\n")  # a digest this log never had
        assert _alarm(ledger).startswith("digest_mismatch")


def _swap(ledger: Ledger, a: int, b: int) -> None:
    """Two stored events change places: each row takes the other's event and link, its
    position and sequence staying - the log read in order has them the other way round."""
    columns = ("originator_id", "originator_version", "topic", "state", "recorded_at", "hash")
    select = f"SELECT {', '.join(columns)} FROM {{t}} WHERE sequence = ?"
    (first,), (second,) = _sql(ledger, select, a), _sql(ledger, select, b)
    update = f"UPDATE {{t}} SET {', '.join(c + ' = ?' for c in columns)} WHERE sequence = ?"
    _sql(ledger, "UPDATE {t} SET originator_id = 'moving' WHERE sequence = ?", a)
    _sql(ledger, update, *first, b)
    _sql(ledger, update, *second, a)


def _first_failure(ledger: Ledger) -> dict[str, Any]:
    r = ledger.get("/v1/audit/verify", "auditor")
    assert r.status_code == 200 and r.json()["ok"] is False, r.text
    return r.json()["failures"][0]  # type: ignore[no-any-return]


def test_two_events_swapped_after_the_last_check_raise_the_alarm(busy):
    ledger, tenant = busy
    with _watch_paused(ledger):
        admit(ledger, tenant, 1, "5")  # events the watch has not checked yet
        last = _last_sequence(ledger)
        _swap(ledger, last - 2, last - 1)
    reason = _alarm(ledger)
    assert reason.startswith(f"hash_mismatch: event {last - 2}:"), reason
    _refuses_writes_and_says_why(ledger, tenant, f"event {last - 2}")
    assert _first_failure(ledger)["sequence"] == last - 2


def test_a_server_started_on_a_reordered_log_refuses_writes_from_the_start(tmp_path):
    path = tmp_path / "ledger.sqlite3"
    with watched_ledger(path) as ledger:
        tenant = onboard(ledger)
        admit(ledger, tenant, 1, "10")
        _swap(ledger, 6, 7)
    with watched_ledger(path) as ledger:  # a restart: the whole chain is verified again
        tenant = dataclasses.replace(tenant, token_name=f"again-{tenant.uscc}")
        ledger.issue(tenant.token_name, "enterprise", enterprise=tenant.uscc)
        reason = _alarm(ledger)
        assert reason.startswith("hash_mismatch: event 6:"), reason
        _refuses_writes_and_says_why(ledger, tenant, "event 6")
        assert _first_failure(ledger)["sequence"] == 6


def _keys_sql(ledger: Ledger, statement: str, *params: Any) -> None:
    with sqlite3.connect(ledger.services.database.path) as conn:
        conn.execute(statement, params)


def _hash_replaced(ledger: Ledger) -> str:
    ledger.issue("officer-on-duty", "officer")
    attacker = token_hash("clk_the-attackers-own-token")
    _keys_sql(
        ledger, "UPDATE api_keys SET token_hash = ? WHERE name = ?", attacker, "officer-on-duty"
    )
    return "officer-on-duty"


def _revocation_cleared(ledger: Ledger) -> str:
    ledger.issue("auditor-gone", "auditor")
    ledger.services.keys.revoke("auditor-gone")
    _keys_sql(ledger, "UPDATE api_keys SET revoked_at = NULL WHERE name = 'auditor-gone'")
    return "auditor-gone"


def _ghost_admin(ledger: Ledger) -> str:
    _keys_sql(
        ledger,
        "INSERT INTO api_keys (name, token_hash, role, created_at) VALUES (?, ?, 'admin', ?)",
        "ghost-admin",
        token_hash("clk_ghost"),
        "2026-11-01T00:00:00+00:00",
    )
    return "ghost-admin"


KEY_TAMPERING = {
    "token_hash replaced": _hash_replaced,
    "revoked_at cleared": _revocation_cleared,
    "ghost admin inserted": _ghost_admin,
}


@pytest.mark.parametrize("tamper", KEY_TAMPERING.values(), ids=KEY_TAMPERING.keys())
def test_a_key_table_changed_by_hand_raises_the_alarm(busy, tamper):
    """No request needs to use the key: the watch compares the key table with the log."""
    ledger, tenant = busy
    name = tamper(ledger)
    reason = _alarm(ledger)
    assert reason.startswith(f"key_table_mismatch: key {name!r}"), reason
    _refuses_writes_and_says_why(ledger, tenant, f"key_table_mismatch: key {name!r}")
    failure = _first_failure(ledger)
    assert failure["reason"] == "key_table_mismatch" and f"key {name!r}" in failure["detail"]
