"""A first day that works any day (issue #15, item 6): what a new user tried first."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from ledger.database import parse_database_url
from tests.support import run_cli, running_ledger


def test_head_answers_on_every_get_route_as_its_get_without_a_body(database_url):
    with running_ledger(database_url) as ledger:
        paths = ledger.client.get("/openapi.json").json()["paths"]
        gets = [p for p, operations in paths.items() if "get" in operations]
        assert "/v1/zones" in gets and len(gets) > 10
        headers = ledger.headers("officer")
        for template in gets:
            path = re.sub(r"\{[^}]+\}", "X1", template)
            got = ledger.client.get(path, headers=headers)
            head = ledger.client.head(path, headers=headers)
            assert head.status_code == got.status_code != 405, (path, head.status_code)
            assert head.content == b"", path
            assert head.headers.get("content-type") == got.headers.get("content-type"), path
        zones = ledger.client.get("/v1/zones")
        head = ledger.client.head("/v1/zones")
        assert head.status_code == 200
        assert int(head.headers["content-length"]) == len(zones.content) > 0
        # A HEAD on a path that answers only POST is still 405, naming what it allows.
        refused = ledger.client.head("/v1/account-books", headers=headers)
        assert refused.status_code == 405 and "POST" in refused.headers["allow"]


def test_version_prints_the_installed_version():
    from importlib.metadata import version

    r = subprocess.run(
        [sys.executable, "-m", "api.cli", "--version"], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"customs-ledger {version('customs-ledger')}"


cli = run_cli


@pytest.mark.postgres
def test_a_missing_postgres_schema_is_one_line_and_exit_2(postgres_url):
    missing = re.sub(r"schema=[^&]+", "schema=no_such_schema_15", postgres_url)
    for command in (
        ["serve", "--port", "1"],
        ["keys", "list"],
        ["keys", "issue", "--role", "admin", "--name", "a"],
        ["verify"],
        ["trace", "X"],
        ["replay"],
        ["export-events"],
    ):
        r = cli(missing, *command)
        assert r.returncode == 2, (command, r.stderr)
        assert r.stdout == "", command
        assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, (command, r.stderr)
        assert "schema 'no_such_schema_15' does not exist" in r.stderr, command
    # Nothing was created on the way.
    import psycopg

    from tests.support import pg_conninfo

    with psycopg.connect(pg_conninfo(parse_database_url(postgres_url))) as conn:
        assert (
            conn.execute(
                "SELECT 1 FROM pg_namespace WHERE nspname = 'no_such_schema_15'"
            ).fetchone()
            is None
        )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_database_that_cannot_be_used_is_one_line_and_exit_2(postgres_url):
    """A server that does not answer, a database that does not exist: one line naming the
    database and the server's own reason, exit 2, no traceback (serve too); in zh-CN as well."""
    db = parse_database_url(postgres_url)
    cases = {
        "no_such_database_15": postgres_url.replace(f"/{db.dbname}?", "/no_such_database_15?"),
        "Connection refused": re.sub(r":\d+/", f":{_free_port()}/", postgres_url),
    }
    for reason, url in cases.items():
        for command in (["serve", "--port", "1"], ["verify"], ["trace", "X"], ["keys", "list"]):
            r = cli(url, *command)
            assert r.returncode == 2 and r.stdout == "", (command, r.stderr)
            assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, (command, r.stderr)
            assert r.stderr.startswith("error: cannot use PostgreSQL database"), r.stderr
            assert reason in r.stderr and "LEDGER_DATABASE_URL" in r.stderr, r.stderr
        zh = run_cli(url, "verify", LANG="zh_CN.UTF-8")
        assert zh.returncode == 2 and zh.stderr.startswith("错误：无法"), zh.stderr  # noqa: RUF001
        assert reason in zh.stderr, zh.stderr


def test_the_database_shown_keeps_its_schema():
    shown = parse_database_url("postgresql://u:secret@db:5433/ledger?schema=zone_a").display
    assert shown == "postgresql://u@db:5433/ledger?schema=zone_a"
    assert parse_database_url("postgresql://u@db/ledger").display == "postgresql://u@db:5432/ledger"


@pytest.mark.postgres
def test_the_serve_banner_keeps_the_schema(postgres_url):
    schema = re.search(r"schema=([^&]+)", postgres_url)
    assert schema is not None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, LEDGER_DATABASE_URL=postgres_url)
    server = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "serve", "--port", str(port)],
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert server.stderr is not None
        banner = server.stderr.readline()
        # Then where each page is: the API, its docs, the trace viewer and the dashboard.
        rest = [server.stderr.readline() for _ in range(4)]
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert banner.startswith("customs-ledger on postgresql://")
    pages = "".join(rest)
    for path in ("/v1 ", "/docs ", "/ui/trace?ref=", "/ui/dashboard "):
        assert f"http://127.0.0.1:{port}{path}" in pages, pages
    assert f"?schema={schema.group(1)}" in banner and "postgres:postgres" not in banner


def test_keys_issue_checks_the_zone_and_the_uscc_check_digit(sqlite_url):
    from tests.support import make_uscc

    r = cli(sqlite_url, "keys", "issue", "--role", "operator", "--zone", "XXXX", "--name", "g")
    assert r.returncode == 2 and r.stdout == ""
    assert "no zone 'XXXX'" in r.stderr and "XCBZ" in r.stderr
    good = make_uscc()
    bad = good[:-1] + ("0" if good[-1] != "0" else "1")  # the same code, another check digit
    r = cli(sqlite_url, "keys", "issue", "--role", "enterprise", "--enterprise", bad, "--name", "e")
    assert r.returncode == 2 and r.stdout == "" and "check digit" in r.stderr
    r = cli(
        sqlite_url, "keys", "issue", "--role", "enterprise", "--enterprise", good, "--name", "e"
    )
    assert r.returncode == 0, r.stderr
    r = cli(sqlite_url, "keys", "issue", "--role", "operator", "--zone", "XCBZ", "--name", "g")
    assert r.returncode == 0, r.stderr
    assert cli(sqlite_url, "keys", "list").stdout.count("\n") == 2


def test_keys_issue_of_an_existing_name_is_exit_2_or_rotates_it(database_url):
    with running_ledger(database_url) as ledger:
        args = ("keys", "issue", "--role", "operator", "--zone", "XCBZ", "--name", "gate-1")
        first = cli(database_url, *args)
        assert first.returncode == 0, first.stderr
        old = {"Authorization": f"Bearer {first.stdout.strip()}"}
        assert ledger.client.get("/v1/inventory", headers=old).status_code == 200
        before = ledger.log_state()
        again = cli(database_url, *args)
        assert again.returncode == 2 and again.stdout == ""
        assert again.stderr.count("\n") == 1 and "exists already" in again.stderr
        assert "--rotate" in again.stderr and "keys rotate gate-1" in again.stderr
        other = cli(database_url, *args[:3], "officer", "--name", "gate-1", "--rotate")
        assert other.returncode == 2 and "role operator (XCBZ)" in other.stderr
        assert ledger.log_state() == before  # nothing was recorded
        rotated = cli(database_url, *args, "--rotate")
        assert rotated.returncode == 0, rotated.stderr
        token = rotated.stdout.strip()
        assert rotated.stdout == token + "\n" and token.startswith("clk_")
        assert ledger.client.get("/v1/inventory", headers=old).status_code == 401
        new = {"Authorization": f"Bearer {token}"}
        assert ledger.client.get("/v1/inventory", headers=new).status_code == 200
        events = ledger.get("/v1/events?limit=1000", "auditor").json()["items"]
        issued = next(e for e in events if e["type"] == "ApiKeyIssued" and "gate-1" in str(e))
        stream = [e["type"] for e in events if e["stream_id"] == issued["stream_id"]]
        assert stream == ["ApiKeyIssued", "ApiKeyRotated"]
        fresh = cli(database_url, "keys", "issue", "--role", "auditor", "--name", "a-2", "--rotate")
        assert fresh.returncode == 0 and fresh.stdout.startswith("clk_")


def test_registering_items_answers_the_real_balances(database_url):
    from tests.support import admit, onboard

    with running_ledger(database_url) as ledger:
        tenant = onboard(ledger)
        admit(ledger, tenant, 1, "600")
        admit(ledger, tenant, 2, "12.5")
        item = {"item_no": 7, "hs_code": "6109100000", "name": "T-shirts", "unit": "C62"}
        r = ledger.post(
            f"/v1/account-books/{tenant.book_no}/items", tenant.token_name, {"items": [item]}
        )
        assert r.status_code == 201, r.text
        answered = r.json()
        items = {i["item_no"]: i for i in answered["items"]}
        assert (items[1]["on_hand"], items[1]["available"]) == ("600", "600")
        assert (items[2]["on_hand"], items[2]["available"]) == ("12.5", "12.5")
        assert items[7]["on_hand"] == items[7]["available"] == "0"
        # The same as the book reads afterwards.
        shown = ledger.get(f"/v1/account-books/{tenant.book_no}", tenant.token_name).json()
        assert answered == shown


README = Path(__file__).resolve().parents[2] / "README.md"


def readme_session() -> str:
    """The shell block of the README's "A first session with curl", as a user pastes it."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## A first session with curl") :]
    return section[section.index("```sh\n") + 6 : section.index("\n```\n")]


@pytest.mark.skipif(
    shutil.which("bash") is None or shutil.which("curl") is None, reason="needs bash and curl"
)
def test_the_readme_session_runs_as_pasted_twice_in_a_row(database_url):
    from tests.support import serving

    session = readme_session()
    assert session.startswith("BASE=http://127.0.0.1:8000\n")
    shown = re.search(r'# -> \{"id":"\.\.\.","declaration_no":"[^"]+","status":"(\w+)"', session)
    assert shown is not None
    bin_dir = os.path.dirname(sys.executable) + "/"
    with serving(database_url) as (base, _ledger):
        script = session.replace("http://127.0.0.1:8000", base, 1).replace(".venv/bin/", bin_dir)
        env = dict(os.environ, LEDGER_DATABASE_URL=database_url)
        runs = [
            subprocess.run(
                ["bash", "-c", script], env=env, capture_output=True, text=True, timeout=300
            )
            for _ in range(2)
        ]
    checked = []
    for run in runs:
        out = run.stdout
        assert run.returncode == 0, run.stderr
        assert "error" not in run.stderr.lower() and '"status":4' not in out, run.stderr + out
        assert f'"status":"{shown.group(1)}"' in out  # the status the README shows
        assert '"on_hand":"998"' in out and '"closing":"998"' in out
        assert '"status":"passed"' in out and '"status":"closed"' in out
        assert "ok: true" in out and out.rstrip().endswith("exit 0")
        checked.append(int(re.findall(r"^events_checked: (\d+)$", out, re.M)[-1]))
    # The second run replays every write and gives the five keys new tokens: 5 events.
    assert checked[1] == checked[0] + 5
    assert runs[1].stderr.count("rotated key") == 5 and "issued" not in runs[1].stderr
