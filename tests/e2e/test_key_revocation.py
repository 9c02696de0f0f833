"""`customs-ledger keys revoke NAME` takes effect at once in running servers (API.md, "CLI"):
real `customs-ledger serve` processes, keys issued and revoked with the CLI while they run,
and the very next request with the revoked key is 401 - no restart, no wait. On PostgreSQL two
servers share the database, and both refuse the key from the next request on."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

from tests.samples import enterprise_body, make_uscc
from tests.soak.server import LedgerServer, cli, free_port, issue_key, server_env
from tests.support import first_start_events


@contextmanager
def serving(database_url: str, workdir: Path, count: int) -> Iterator[list[httpx.Client]]:
    """`count` servers on the database, each with a client (kept-alive connections)."""
    env = server_env(database_url, workdir)
    servers = [LedgerServer(env, free_port(), workdir / f"server-{n}.log") for n in range(count)]
    with ExitStack() as stack:
        for server in servers:
            stack.callback(server.stop)
            server.start()
            server.wait_healthy()
        clients = [stack.enter_context(httpx.Client(base_url=s.url, timeout=30)) for s in servers]
        yield clients
        for server in servers:
            assert server.logged_errors() == [], server.log_tail()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_refused(r: httpx.Response) -> None:
    assert r.status_code == 401, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.headers["www-authenticate"] == "Bearer"


def test_a_key_revoked_with_the_cli_is_refused_by_running_servers_at_once(
    database_url: str, tmp_path: Path
) -> None:
    count = 2 if database_url.startswith("postgresql") else 1  # SQLite: one server per file
    env = server_env(database_url, tmp_path)
    with serving(database_url, tmp_path, count) as clients:
        # Keys issued while the servers run work at once too.
        admin = issue_key(env, "registrar", "admin")
        auditor = issue_key(env, "auditor-on-duty", "auditor")
        officer = issue_key(env, "officer-on-duty", "officer")
        first = clients[0].post(
            "/v1/enterprises", json=enterprise_body(make_uscc(9_100_001)), headers=bearer(admin)
        )
        assert first.status_code == 201, first.text
        # The first start's reference tables, three keys issued (events since #14) and one
        # enterprise.
        start = first_start_events()
        for client in clients:
            r = client.get("/v1/audit/verify", headers=bearer(auditor))
            assert r.status_code == 200 and r.json()["events_checked"] == start + 4, r.text

        revoked = cli(env, "keys", "revoke", "auditor-on-duty", timeout=60)
        assert revoked.returncode == 0, revoked.stderr
        for client in clients:
            assert_refused(client.get("/v1/audit/verify", headers=bearer(auditor)))
            assert_refused(client.get("/v1/audit/digest", headers=bearer(auditor)))
            # Only that key: another one keeps working, on the same connection.
            r = client.get("/v1/audit/verify", headers=bearer(officer))
            # + revoked
            assert r.status_code == 200 and r.json()["events_checked"] == start + 5, r.text

        # A revoked writer records nothing: the next write is 401 and the log stays as it was.
        assert cli(env, "keys", "revoke", "registrar", timeout=60).returncode == 0
        for n, client in enumerate(clients):
            body = enterprise_body(make_uscc(9_100_100 + n))
            assert_refused(client.post("/v1/enterprises", json=body, headers=bearer(admin)))
        for client in clients:
            r = client.get("/v1/audit/verify", headers=bearer(officer))
            assert r.json()["events_checked"] == start + 6, r.text  # the 2nd revocation, no write

    listing = cli(env, "keys", "list", timeout=60)
    assert listing.returncode == 0, listing.stderr
    lines = {line.split()[0]: line for line in listing.stdout.splitlines() if line.strip()}
    assert "revoked" in lines["auditor-on-duty"] and "revoked" in lines["registrar"], listing.stdout
    assert "revoked" not in lines["officer-on-duty"], listing.stdout


def test_revoking_a_key_that_is_not_active_is_an_error(sqlite_url: str, tmp_path: Path) -> None:
    env = server_env(sqlite_url, tmp_path)
    issue_key(env, "once", "auditor")
    assert cli(env, "keys", "revoke", "once", timeout=60).returncode == 0
    again = cli(env, "keys", "revoke", "once", timeout=60)
    assert again.returncode != 0 and "no active key" in again.stderr
    unknown = cli(env, "keys", "revoke", "nobody", timeout=60)
    assert unknown.returncode != 0 and "no active key" in unknown.stderr
