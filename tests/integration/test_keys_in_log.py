"""API keys in the log (issue #14 item 2, docs/decisions/0016): issuing, rotating and
revoking are events with the token's hash and the actor; the key table is their projection; a
request is admitted only with a row that matches its stream; verify, replay and the tamper
watch name a key whose row was substituted, un-revoked, inserted or deleted by hand; the keys
of a table of before #14 are adopted once at the upgrade, and never again."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.api_keys import api_key_id
from domain.events import Actor
from ledger.application import LedgerApplication
from ledger.database import parse_database_url
from ledger.key_audit import KeyCheck
from ledger.keys import ApiKeys, KeyError_, token_hash
from tests.support import (
    Ledger,
    enterprise_body,
    make_uscc,
    publications_in,
    running_ledger,
)

ALICE = Actor(name="alice@ledger-1", role="cli")
OLD_DDL = (  # the key table as issue #14 found it
    "CREATE TABLE IF NOT EXISTS {keys} ("
    " name TEXT PRIMARY KEY, token_hash TEXT NOT NULL UNIQUE, role TEXT NOT NULL,"
    " enterprise TEXT, zone TEXT, created_at TEXT NOT NULL, revoked_at TEXT)"
)


def by_hand(keys: ApiKeys, statement: str, *params: Any) -> None:
    """What someone with write access to the database does, beside the ledger's code."""
    table = keys.table
    with table.datastore.transaction(commit=True) as cur:
        cur.execute(table.sql(statement), params)


def payloads(ledger: Ledger, name: str) -> list[tuple[str, dict[str, Any]]]:
    records = ledger.services.app.log.select_stream(api_key_id(name))
    return [(r.topic.rpartition(":")[2], msgspec.json.decode(r.state)) for r in records]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def verify_failures(ledger: Ledger) -> list[dict[str, Any]]:
    r = ledger.get("/v1/audit/verify", "auditor")
    assert r.status_code == 200, r.text
    return r.json()["failures"]  # type: ignore[no-any-return]


def test_issue_rotate_and_revoke_are_events_with_the_hash_and_the_actor(database_url):
    with running_ledger(database_url) as ledger:
        keys = ledger.services.keys
        name = f"gate-{uuid.uuid4().hex[:6]}"
        first = keys.issue(name=name, role="operator", zone="XCBZ", actor=ALICE)
        second = keys.rotate(name, actor=ALICE)
        inventory = "/v1/inventory"
        assert ledger.client.get(inventory, headers=bearer(first)).status_code == 401
        assert ledger.client.get(inventory, headers=bearer(second)).status_code == 200
        keys.revoke(name, actor=ALICE)
        assert ledger.client.get(inventory, headers=bearer(second)).status_code == 401

        events = payloads(ledger, name)
        assert [t for t, _ in events] == ["ApiKeyIssued", "ApiKeyRotated", "ApiKeyRevoked"]
        issued, rotated, _ = (p for _, p in events)
        assert issued["name"] == name and issued["role"] == "operator"
        assert issued["zone"] == "XCBZ" and issued["enterprise"] is None
        assert issued["token_hash"] == token_hash(first)
        assert rotated["token_hash"] == token_hash(second)
        assert all(p["actor"] == {"name": "alice@ledger-1", "role": "cli"} for _, p in events)
        stored = b"".join(r.state for r in ledger.services.app.log.select_log(0, 1000))
        assert first.encode() not in stored and second.encode() not in stored
        # The row is the fold of the stream, and the log verifies with it.
        (row,) = [k for k in keys.list() if k.name == name]
        assert row.revoked_at is not None and row.role == "operator" and row.zone == "XCBZ"
        assert verify_failures(ledger) == []


def test_rotate_and_revoke_need_an_active_key_and_a_name_is_used_once(sqlite_url):
    with running_ledger(sqlite_url) as ledger:
        keys = ledger.services.keys
        with pytest.raises(KeyError_, match="no active key named 'nobody'"):
            keys.rotate("nobody")
        keys.issue(name="once", role="auditor")
        keys.revoke("once")
        with pytest.raises(KeyError_, match="no active key named 'once'"):
            keys.rotate("once")
        with pytest.raises(KeyError_, match="no active key named 'once'"):
            keys.revoke("once")
        with pytest.raises(KeyError_, match="a key named 'once' exists already"):
            keys.issue(name="once", role="auditor")
        assert [t for t, _ in payloads(ledger, "once")] == ["ApiKeyIssued", "ApiKeyRevoked"]


# -- rows changed by hand ------------------------------------------------------------------


def _substitute(ledger: Ledger) -> tuple[str, str]:
    """The officer's token_hash replaced with the hash of a token the attacker holds."""
    name = f"officer-{uuid.uuid4().hex[:6]}"
    ledger.issue(name, "officer")
    attacker = f"clk_{uuid.uuid4().hex}"
    by_hand(ledger.services.keys, "UPDATE {keys} SET token_hash = ? WHERE name = ?",
            token_hash(attacker), name)  # fmt: skip
    return name, attacker


def _unrevoke(ledger: Ledger) -> tuple[str, str]:
    name = f"auditor-{uuid.uuid4().hex[:6]}"
    token = ledger.issue(name, "auditor")
    ledger.services.keys.revoke(name)
    by_hand(ledger.services.keys, "UPDATE {keys} SET revoked_at = NULL WHERE name = ?", name)
    return name, token


def _ghost(ledger: Ledger) -> tuple[str, str]:
    token = f"clk_{uuid.uuid4().hex}"
    by_hand(
        ledger.services.keys,
        "INSERT INTO {keys} (name, token_hash, role, created_at) VALUES (?, ?, 'admin', ?)",
        "ghost-admin",
        token_hash(token),
        "2026-11-01T00:00:00+00:00",
    )
    return "ghost-admin", token


def _ghost_on_a_real_stream(ledger: Ledger) -> tuple[str, str]:
    """A ghost row that names the stream of a real admin key (whose events then join it)."""
    real = f"admin-{uuid.uuid4().hex[:6]}"
    ledger.issue(real, "admin")
    token = f"clk_{uuid.uuid4().hex}"
    keys = ledger.services.keys
    by_hand(
        keys,
        "INSERT INTO {keys} (name, token_hash, role, created_at, stream_id)"
        " SELECT 'ghost-admin-2', ?, role, created_at, stream_id FROM {keys} WHERE name = ?",
        token_hash(token),
        real,
    )
    return "ghost-admin-2", token


def _promote(ledger: Ledger) -> tuple[str, str]:
    """An auditor key's role changed to admin in its row."""
    name = f"auditor-{uuid.uuid4().hex[:6]}"
    token = ledger.issue(name, "auditor")
    by_hand(ledger.services.keys, "UPDATE {keys} SET role = 'admin' WHERE name = ?", name)
    return name, token


TAMPERINGS = {
    "token_hash replaced": _substitute,
    "revoked_at cleared": _unrevoke,
    "ghost admin inserted": _ghost,
    "ghost admin on a real key's stream": _ghost_on_a_real_stream,
    "role raised to admin": _promote,
}


@pytest.mark.parametrize("tamper", TAMPERINGS.values(), ids=TAMPERINGS.keys())
def test_a_key_row_changed_by_hand_is_refused_and_named(database_url, tamper):
    with running_ledger(database_url) as ledger:
        assert verify_failures(ledger) == []
        name, token = tamper(ledger)
        count = ledger.log_state()
        body = enterprise_body(make_uscc())
        r = ledger.client.post("/v1/enterprises", json=body, headers=bearer(token))
        assert r.status_code == 401, r.text  # never 201, and never 403 (it is no key at all)
        assert ledger.client.get("/v1/events", headers=bearer(token)).status_code == 401
        assert ledger.log_state() == count
        # verify (the route) names the key; so does the alarm raised by the request.
        failures = verify_failures(ledger)
        assert [f["reason"] for f in failures] == ["key_table_mismatch"], failures
        assert f"key {name!r}" in failures[0]["detail"]
        assert failures[0]["stream_id"] == str(api_key_id(name))
        alarm = ledger.services.alarm
        assert alarm is not None and alarm.startswith("key_table_mismatch") and name in alarm


def test_a_deleted_row_is_named_and_rebuild_makes_the_table_the_logs_again(database_url):
    with running_ledger(database_url) as ledger:
        keys = ledger.services.keys
        kept = ledger.issue("kept", "officer")
        ledger.issue("deleted", "officer")
        by_hand(keys, "DELETE FROM {keys} WHERE name = ?", "deleted")
        _, ghost = _ghost(ledger)
        unrevoked, token = _unrevoke(ledger)
        failures = {f["detail"].split("'")[1]: f for f in verify_failures(ledger)}
        assert set(failures) == {"deleted", "ghost-admin", unrevoked}
        assert "no row" in failures["deleted"]["detail"]
        assert "(its last event: sequence " in failures["deleted"]["detail"]
        assert "its last event" not in failures["ghost-admin"]["detail"]  # no event at all
        assert all(f["sequence"] is None for f in failures.values())  # no event is wrong

        assert set(keys.rebuild()) == {"deleted", "ghost-admin", unrevoked}
        assert verify_failures(ledger) == []
        assert keys.authenticate(ghost) is None and keys.authenticate(token) is None
        assert keys.authenticate(kept) is not None
        assert keys.rebuild() == []


def test_replay_compares_the_key_table_with_the_log(sqlite_url):
    with running_ledger(sqlite_url) as ledger:
        r = ledger.post("/v1/audit/replay", "auditor", {})
        assert r.status_code == 200, r.text
        keys_model = r.json()["projections"]["api_keys"]
        assert keys_model["equal"] is True, keys_model
        assert keys_model["live_digest"] == keys_model["replayed_digest"]
        name, _ = _substitute(ledger)
        answer = ledger.post("/v1/audit/replay", "auditor", {}).json()
        assert answer["equal"] is False and answer["projections"]["api_keys"]["equal"] is False
        (difference,) = [d for d in answer["differences"] if d["table"] == "api_keys"]
        assert difference["key"] == {"name": name}
        assert difference["live"]["token_hash"] != difference["replayed"]["token_hash"]


# -- the upgrade ---------------------------------------------------------------------------


def _old_table(url: str, rows: list[tuple[Any, ...]]) -> None:
    """A database as it was before #14: keys in the table only, no event for any."""
    app = LedgerApplication(parse_database_url(url))
    try:
        datastore: Any = app.factory.datastore  # type: ignore[attr-defined]
        postgres = app.database.kind == "postgresql"
        table = f'"{app.database.schema}".api_keys' if postgres else "api_keys"
        insert = f"INSERT INTO {table} VALUES (?,?,?,?,?,?,?)"
        with datastore.transaction(commit=True) as cur:
            cur.execute(OLD_DDL.format(keys=table))
            for row in rows:
                cur.execute(insert.replace("?", "%s") if postgres else insert, row)
    finally:
        app.close()


def test_keys_of_before_the_upgrade_are_adopted_once_and_keep_working(database_url):
    admin, officer = "clk_old-admin-token", "clk_old-officer-token"
    created = "2026-10-01T08:00:00.123456+00:00"
    _old_table(
        database_url,
        [
            ("admin-1", token_hash(admin), "admin", None, None, created, None),
            ("officer-1", token_hash(officer), "officer", None, None, created, created),
        ],
    )
    app = LedgerApplication(parse_database_url(database_url))
    try:
        keys = ApiKeys(app)
        assert sorted(keys.adopted) == ["admin-1", "officer-1"]
        assert keys.authenticate(admin) is not None  # still works
        assert keys.authenticate(officer) is None  # still revoked
        records = app.log.select_log(0, 100)
        assert [r.topic.rpartition(":")[2] for r in records] == ["ApiKeyAdopted"] * 2
        adopted = {msgspec.json.decode(r.state)["name"]: msgspec.json.decode(r.state)
                   for r in records}  # fmt: skip
        assert adopted["admin-1"]["created_at"] == created
        assert adopted["officer-1"]["revoked_at"] == created
        assert adopted["admin-1"]["token_hash"] == token_hash(admin)
        assert KeyCheck(keys.table, app.log).failures() == []
        # Opened again: nothing more to adopt; a row put there later without a stream (a
        # ghost that looks like an old key) is not adopted, and stays refused.
        ghost = "clk_ghost"
        by_hand(
            keys,
            "INSERT INTO {keys} (name, token_hash, role, created_at) VALUES (?, ?, 'admin', ?)",
            "ghost-admin",
            token_hash(ghost),
            created,
        )
        again = ApiKeys(app)
        assert again.adopted == [] and app.log.count() == 2
        assert again.authenticate(ghost) is None
        (failure,) = KeyCheck(again.table, app.log).failures()
        assert failure.detail.startswith("key 'ghost-admin': the key table has it, the log")
    finally:
        app.close()


def test_the_cli_adopts_an_old_table_and_rotates_and_rebuilds(sqlite_url):
    from tests.e2e.test_cli import cli

    old = "clk_old-admin-token"
    created = "2026-10-01T08:00:00+00:00"
    _old_table(sqlite_url, [("admin-1", token_hash(old), "admin", None, None, created, None)])
    listing = cli(sqlite_url, "keys", "list")
    assert listing.returncode == 0 and "admin-1\tadmin\t\tactive" in listing.stdout
    assert "recorded 1 keys of before #14 into the log" in listing.stderr
    rotated = cli(sqlite_url, "keys", "rotate", "admin-1")
    assert rotated.returncode == 0, rotated.stderr
    new = rotated.stdout.strip()
    assert rotated.stdout.count("\n") == 1 and new.startswith("clk_")
    app = LedgerApplication(parse_database_url(sqlite_url))
    try:
        keys = ApiKeys(app)
        assert keys.authenticate(old) is None and keys.authenticate(new) is not None
        topics = [r.topic.rpartition(":")[2] for r in app.log.select_log(0, 100)]
        assert topics == ["ApiKeyAdopted", "ApiKeyRotated"]
        actor = msgspec.json.decode(app.log.select_log(0, 100)[1].state)["actor"]
        assert actor["role"] == "cli" and "@" in actor["name"]
        by_hand(keys, "UPDATE {keys} SET revoked_at = ? WHERE name = 'admin-1'", created)
    finally:
        app.close()
    bad = cli(sqlite_url, "verify")
    assert bad.returncode == 1 and "ok: false" in bad.stdout
    assert "FAILED: key_table_mismatch: key 'admin-1' (its last event: sequence 2)" in bad.stdout
    rebuilt = cli(sqlite_url, "keys", "rebuild")
    assert rebuilt.returncode == 0 and "admin-1" in rebuilt.stderr
    good = cli(sqlite_url, "verify")
    assert good.returncode == 0 and "ok: true" in good.stdout
    unknown = cli(sqlite_url, "keys", "rotate", "nobody")
    assert unknown.returncode == 2 and unknown.stdout == "" and "no active key" in unknown.stderr


# -- races ---------------------------------------------------------------------------------


def test_keys_issued_while_the_server_writes_keep_one_chain(database_url):
    """Key events are appended beside the group commit, under the same write lock: keys and
    writes racing leave one valid chain, and each key's row matches its stream."""
    with running_ledger(database_url) as ledger:
        errors: list[BaseException] = []

        def issue(n: int) -> None:
            try:
                for k in range(8):
                    ledger.services.keys.issue(name=f"race-{n}-{k}", role="auditor")
            except BaseException as e:
                errors.append(e)

        threads = [threading.Thread(target=issue, args=(n,)) for n in range(3)]
        for t in threads:
            t.start()
        for _ in range(8):
            r = ledger.post("/v1/enterprises", "admin", enterprise_body(make_uscc()))
            assert r.status_code == 201, r.text
        for t in threads:
            t.join()
        assert errors == []
        r = ledger.get("/v1/audit/verify", "auditor").json()
        assert r["ok"] is True and r["failures"] == [], r
        assert r["events_checked"] == publications_in(ledger) + 3 + 24 + 8


def test_one_name_issued_twice_at_once_is_one_key(database_url):
    with running_ledger(database_url) as ledger:
        results: list[str] = []
        barrier = threading.Barrier(4)

        def issue() -> None:
            barrier.wait()
            try:
                ledger.services.keys.issue(name="twin", role="officer")
                results.append("issued")
            except KeyError_ as e:
                results.append(str(e))

        threads = [threading.Thread(target=issue) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results) == ["a key named 'twin' exists already"] * 3 + ["issued"]
        assert [t for t, _ in payloads(ledger, "twin")] == ["ApiKeyIssued"]


# -- the invariant -------------------------------------------------------------------------

OPERATIONS = st.lists(
    st.tuples(st.sampled_from(["issue", "rotate", "revoke"]), st.integers(0, 3)),
    min_size=1,
    max_size=12,
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(operations=OPERATIONS)
def test_any_history_of_keys_leaves_a_table_that_is_the_logs_fold(sqlite_url, operations):
    """Whatever is issued, rotated and revoked, in any order: the table equals the log's fold
    (verify finds nothing), and exactly the current token of each active key authenticates."""
    app = LedgerApplication(parse_database_url(sqlite_url))
    try:
        keys = ApiKeys(app)
        run = uuid.uuid4().hex[:6]  # the store is shared by the examples: names of this one
        current: dict[int, str] = {}  # the model: the active key's token, by key number
        spent: list[str] = []  # tokens rotated out or revoked
        used: set[int] = set()
        for operation, n in operations:
            name = f"k{n}-{run}"
            try:
                if operation == "issue":
                    current[n] = keys.issue(name=name, role="officer")
                elif operation == "rotate":
                    token = keys.rotate(name)
                    spent.append(current.pop(n))
                    current[n] = token
                else:
                    keys.revoke(name)
                    spent.append(current.pop(n))
                assert operation != "issue" or n not in used, "a name was issued twice"
                used.add(n)
            except KeyError_:
                # Refused exactly when the model says so: a used name, or no active key.
                assert (n in used) if operation == "issue" else (n not in current)
        assert KeyCheck(keys.table, app.log).failures() == []
        for n, token in current.items():
            key = keys.authenticate(token)
            assert key is not None and key.name == f"k{n}-{run}"
        assert all(keys.authenticate(token) is None for token in spent)
    finally:
        app.close()
