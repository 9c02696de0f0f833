"""The customs-ledger CLI as an operator uses it: keys and verify, against a live app."""

from __future__ import annotations

import sqlite3

from tests.support import run_cli, running_ledger

cli = run_cli


def test_keys_issue_prints_exactly_the_token_and_revoke_acts_at_once(database_url):
    with running_ledger(database_url) as ledger:
        issued = cli(database_url, "keys", "issue", "--role", "officer", "--name", "officer-2")
        assert issued.returncode == 0, issued.stderr
        token = issued.stdout
        assert token.endswith("\n") and token.count("\n") == 1
        token = token.strip()
        assert token.startswith("clk_") and " " not in token
        headers = {"Authorization": f"Bearer {token}"}
        assert ledger.client.get("/v1/declarations", headers=headers).status_code == 200
        revoked = cli(database_url, "keys", "revoke", "officer-2")
        assert revoked.returncode == 0, revoked.stderr
        assert ledger.client.get("/v1/declarations", headers=headers).status_code == 401
        # Names are unique, and the token itself is nowhere in the database.
        again = cli(database_url, "keys", "issue", "--role", "officer", "--name", "officer-2")
        assert again.returncode == 2 and again.stdout == "" and "exists" in again.stderr
        listing = cli(database_url, "keys", "list").stdout
        assert "officer-2" in listing and token not in listing


def test_keys_issue_refuses_bindings_that_do_not_fit_the_role(sqlite_url):
    r = cli(sqlite_url, "keys", "issue", "--role", "enterprise", "--name", "e")
    assert r.returncode == 2 and r.stdout == "" and "--enterprise" in r.stderr
    r = cli(sqlite_url, "keys", "issue", "--role", "operator", "--name", "o")
    assert r.returncode == 2 and "--zone" in r.stderr


def test_only_the_hash_of_a_token_is_stored(sqlite_url):
    token = cli(sqlite_url, "keys", "issue", "--role", "admin", "--name", "a").stdout.strip()
    path = sqlite_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        dump = "\n".join(conn.iterdump())
    assert token not in dump


def test_verify_exits_1_and_names_the_first_bad_event(sqlite_url):
    from tests.support import onboard

    with running_ledger(sqlite_url) as ledger:
        onboard(ledger)
        digest = ledger.get("/v1/audit/digest", "auditor").json()
    ok = cli(sqlite_url, "verify", "--against", f"{digest['sequence']}:{digest['head_hash']}")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "ok: true" in ok.stdout
    path = sqlite_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE stored_events SET state = replace(state, 'regular', 'dishonest')")
    bad = cli(sqlite_url, "verify")
    assert bad.returncode == 1
    assert "ok: false" in bad.stdout and "FAILED at sequence 1 " in bad.stdout
    wrong = cli(sqlite_url, "verify", "--against", "nonsense")
    assert wrong.returncode == 2 and "error" in wrong.stderr
