"""The PostgreSQL deployment of docs/operations.md, for real: two `customs-ledger serve`
processes with `LEDGER_PROJECTIONS=off` and two `customs-ledger project --follow` processes on
one schema.

One book item holds 60 bonded pieces in three lots of 20. Sixteen clients, eight on each
server, each make ten requests as fast as they can: stocktake adjustments of -1 (movements that
draw the lots first in, first out) and exports of 1 piece (declarations released at once, which
reserve the piece), 160 requests for 60 pieces. Nothing adds stock meanwhile, so the outcome is
known whatever the interleaving (R3): exactly 60 accepted, the rest refused with 409
`insufficient_stock`, no lot below zero; a 409 `concurrent_update` (a race lost to the other
server beyond the ledger's own retries) is sent again with the same Idempotency-Key until it
has a definite answer. Each accepted export is read back at once from the other server with
`X-Ledger-Min-Position` (read-your-writes across processes, the views fed by a follower).

Then the views catch up (`/healthz` lag 0 on both servers) and agree with the write side; the
follower feeding the views is killed and the other one takes over; 5 pieces are found, and
eight refused requests sent again with their own keys: exactly 5 are accepted (a refusal
recorded nothing). `customs-ledger verify` and `customs-ledger replay` pass at the end.

Receipts (issue #19) ride along: an auditor's webhook subscription, made before the race, to a
receiver in the test (loopback, signatures verified with the `standardwebhooks` package). One
dispatcher delivers - the follower that feeds the views - and the one that takes over after
the kill loses nothing: in the end the receiver has every receipt of the log after the
subscription, in log order, at most the one in flight at the kill twice (same `webhook-id`).
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from ledger.database import parse_database_url
from projections.store import PostgresLeader
from tests.e2e.test_receipts import Receiver, verified
from tests.samples import declaration_body, enterprise_body, line, rules_without_draws
from tests.support import (
    RAISED_LIMITS_ENV,
    Tenant,
    admit,
    make_uscc,
    new_key,
    onboard,
    pg_conninfo,
    running_ledger,
)

REPO = Path(__file__).resolve().parents[2]
LOTS, LOT_SIZE = 3, 20
STOCK = LOTS * LOT_SIZE
CLIENTS, REQUESTS_EACH = 16, 10
# Small pools: four processes on one server with other tests beside them (docs/operations.md).
POOLS = "pool_size=2&max_overflow=6&views_pool_size=3"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Process:
    """A `customs-ledger` subprocess; its output goes to a file, shown when a check fails."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], logs: Path) -> None:
        self.name = name
        self.log_path = logs / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "api.cli", *argv],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace")
        return f"--- {self.name} ---\n" + "\n".join(text.splitlines()[-lines:])

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._log.close()


def _export(t: Tenant) -> dict[str, Any]:
    return declaration_body(
        t.uscc,
        t.book_no,
        flow="first_line_out",
        trade_mode="0110",
        country="KZ",
        lines=[line(1, quantity="1", origin_country=None)],
        client_ref="deployment-out",
    )


def _adjustment(t: Tenant) -> dict[str, Any]:
    return {
        "kind": "adjustment",
        "account_book": t.book_no,
        "item_no": 1,
        "quantity_delta": "-1",
        "reason": "damaged",
    }


def _wait(what: str, check: Any, timeout: float, processes: list[Process]) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(
                f"{what} not within {timeout:g} s\n" + "\n".join(p.tail() for p in processes)
            )
        time.sleep(0.1)


def _health(base: str) -> dict[str, Any] | None:
    try:
        r = httpx.get(f"{base}/healthz", timeout=5)
    except httpx.HTTPError:
        return None
    return r.json() if r.status_code == 200 else None  # type: ignore[no-any-return]


def _caught_up(bases: list[str], at_least: int) -> bool:
    health = [_health(b) for b in bases]
    return all(
        h is not None
        and h["projection_lag_events"] == 0
        and h["projection_position"] == h["log_position"] >= at_least
        for h in health
    )


def _leader_pid(url: str) -> int | None:
    """The pid of the process whose session holds the views' leader lock (application_name)."""
    import psycopg

    db = parse_database_url(url)
    key = PostgresLeader("", db.schema, "read-models").key & (2**64 - 1)
    with psycopg.connect(pg_conninfo(db)) as conn:
        row = conn.execute(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %s AND l.objid = %s",
            (key >> 32, key & 0xFFFFFFFF),
        ).fetchone()
    return int(row[0].rsplit(" ", 1)[1]) if row else None


@pytest.mark.postgres
def test_two_servers_and_two_followers_share_one_postgresql(postgres_url, tmp_path):
    url = f"{postgres_url}&{POOLS}"
    with running_ledger(url) as ledger:
        t = onboard(ledger)
        for _ in range(LOTS):
            admit(ledger, t, 1, str(LOT_SIZE))
        tokens = {"enterprise": ledger.tokens[t.token_name], "auditor": ledger.tokens["auditor"]}

    rules = rules_without_draws()
    # A rules file carries no seed (docs/decisions/0021): the servers draw with the store's.
    risk = msgspec.structs.replace(rules.risk, seed="")
    (tmp_path / "risk.json").write_bytes(msgspec.json.encode(risk))
    (tmp_path / "duties.json").write_bytes(msgspec.json.encode(rules.duties))
    env = {
        **os.environ,
        "LEDGER_DATABASE_URL": url,
        "LEDGER_PROJECTIONS": "off",
        "LEDGER_RISK_RULES_FILE": str(tmp_path / "risk.json"),
        "LEDGER_DUTY_TABLES_FILE": str(tmp_path / "duties.json"),
        "LEDGER_READ_WAIT_SECONDS": "5",
        **RAISED_LIMITS_ENV,  # the load below is one address at full speed
        "PYTHONUNBUFFERED": "1",
        "LEDGER_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1",
        "LEDGER_WEBHOOK_RETRY_BASE_SECONDS": "0.2",
    }
    receiver = Receiver()
    ports = [_free_port(), _free_port()]
    bases = [f"http://127.0.0.1:{p}" for p in ports]
    processes: list[Process] = []
    try:
        for n, port in enumerate(ports):
            argv = ["serve", "--port", str(port), "--log-level", "warning", "--log-format", "json"]
            processes.append(Process(f"server{n}", argv, env, tmp_path))
        followers = [
            Process(f"follower{n}", ["project", "--follow"], env, tmp_path) for n in range(2)
        ]
        processes += followers
        _wait("both servers up", lambda: all(_health(b) for b in bases), 60, processes)
        _wait("the views caught up", lambda: _caught_up(bases, 1), 30, processes)
        made = httpx.post(
            f"{bases[1]}/v1/subscriptions",
            json={"url": receiver.url("/customs"), "events": ["*"]},
            headers={"Authorization": f"Bearer {tokens['auditor']}", "Idempotency-Key": new_key()},
        )
        assert made.status_code == 201, made.text
        subscription = made.json()
        subscribed_at = int(made.headers["X-Ledger-Position"])  # receipts after it are sent
        auth = {"Authorization": f"Bearer {tokens['enterprise']}"}
        plans = [(n % 2, _requests(t, n)) for n in range(CLIENTS)]
        records = _race(bases, auth, plans)
        _check_answers(records, processes)
        accepted = [r for r in records if r["status"] == 201]
        refused = [r for r in records if r["status"] == 409]
        assert len(records) == CLIENTS * REQUESTS_EACH
        # No negative stock, no lost update: every piece taken once, and only once.
        assert len(accepted) == STOCK, (len(accepted), len(refused))
        # Both kinds were accepted on both servers.
        assert {(r["kind"], r["server"]) for r in accepted} == {
            (kind, server) for kind in ("adjustment", "export") for server in (0, 1)
        }
        taken = sum(1 for r in accepted if r["kind"] == "adjustment")
        reserved = len(accepted) - taken
        head = max(r["position"] for r in accepted)

        # The write side, on both servers: nothing lost, nothing negative.
        for base in bases:
            book = httpx.get(
                f"{base}/v1/account-books/{t.book_no}",
                headers={"Authorization": f"Bearer {tokens['enterprise']}"},
            ).json()
            item = next(i for i in book["items"] if i["item_no"] == 1)
            assert {k: Decimal(item[k]) for k in ("on_hand", "pending_out", "available")} == {
                "on_hand": STOCK - taken,
                "pending_out": reserved,
                "available": 0,
            }, item

        # The views, fed by the followers, reach the head and say the same.
        _wait("the views at the head", lambda: _caught_up(bases, head), 30, processes)
        for base in bases:
            r = httpx.get(
                f"{base}/v1/inventory",
                params={"account_book": t.book_no, "item_no": 1},
                headers={"Authorization": f"Bearer {tokens['enterprise']}"},
            )
            assert r.status_code == 200 and int(r.headers["X-Ledger-Position"]) >= head, r.text
            [row] = r.json()["items"]
            assert (Decimal(row["on_hand"]), Decimal(row["pending_out"])) == (
                STOCK - taken,
                reserved,
            ), row

        # The lots both servers drew from: each down by its entries, none below zero, first in
        # first out (only the last lot drawn may be partly left).
        entries = httpx.get(
            f"{bases[1]}/v1/account-books/{t.book_no}/entries",
            params={"item_no": 1, "limit": 500},
            headers={"Authorization": f"Bearer {tokens['enterprise']}"},
        ).json()["items"]
        held: dict[str, Decimal] = {}
        for e in entries:
            held[e["lot_id"]] = held.get(e["lot_id"], Decimal(0)) + Decimal(e["quantity"])
        assert len(held) == LOTS and len(entries) == LOTS + taken, entries
        assert Decimal(entries[-1]["balance_after"]) == STOCK - taken, entries[-1]
        for lot_id, quantity in held.items():
            lot = httpx.get(
                f"{bases[0]}/v1/lots/{lot_id}",
                headers={"Authorization": f"Bearer {tokens['enterprise']}"},
            ).json()
            assert Decimal(lot["on_hand"]) == quantity >= 0, (lot, quantity)
        left = [held[e["lot_id"]] for e in entries[:LOTS]]  # the lots in admission order
        opened = [n for n, q in enumerate(left) if q]
        assert not opened or all(q == LOT_SIZE for q in left[opened[0] + 1 :]), left

        # Kill the follower that feeds the views: the other takes over.
        leader = _wait("a follower leading", lambda: _leader_pid(url), 10, processes)
        [killed] = [f for f in followers if f.proc.pid == leader]
        [other] = [f for f in followers if f is not killed]
        killed.stop(signal.SIGKILL)
        r = httpx.post(
            f"{bases[0]}/v1/movements",
            json=_adjustment(t) | {"quantity_delta": "5", "reason": "found in recount"},
            headers={
                "Authorization": f"Bearer {tokens['enterprise']}",
                "Idempotency-Key": new_key(),
            },
        )
        assert r.status_code == 201, r.text
        after = int(r.headers["X-Ledger-Position"])
        _wait("the views after the kill", lambda: _caught_up(bases, after), 30, processes)
        assert _leader_pid(url) == other.proc.pid

        # Refused requests sent again with their own keys, now that 5 pieces were found: a
        # refusal recorded nothing, so exactly 5 of them are accepted, on the other server.
        again = [r for r in refused if r["kind"] == "adjustment"][:4]
        again += [r for r in refused if r["kind"] == "export"][:4]
        retried = _race(bases, auth, [(1 - r["server"], [r]) for r in again])
        _check_answers(retried, processes)
        assert Counter(r["status"] for r in retried) == {201: 5, 409: 3}, retried
        taken += sum(1 for r in retried if r["status"] == 201 and r["kind"] == "adjustment")
        reserved += sum(1 for r in retried if r["status"] == 201 and r["kind"] == "export")
        item = httpx.get(f"{bases[0]}/v1/account-books/{t.book_no}", headers=auth).json()
        assert [
            (Decimal(i["on_hand"]), Decimal(i["pending_out"]), Decimal(i["available"]))
            for i in item["items"]
            if i["item_no"] == 1
        ] == [(STOCK + 5 - taken, reserved, 0)], item
        head = max(r["position"] for r in retried)
        _wait("the views after the retries", lambda: _caught_up(bases, head), 30, processes)

        # Every receipt after the subscription reached the receiver, through the takeover.
        wanted = _receipt_positions(bases[0], tokens["auditor"], subscribed_at, head)
        got = _wait(
            "every receipt delivered",
            lambda: (
                (v := verified(receiver, "/customs", subscription["secret"]))
                and {b["position"] for _, b in v} >= wanted
                and v
            ),
            60,
            processes,
        )
        ids = [webhook_id for webhook_id, _ in got]
        firsts = [body["position"] for n, (_, body) in enumerate(got) if ids[n] not in ids[:n]]
        assert firsts == sorted(firsts), "receipts out of log order"
        assert len(ids) - len(set(ids)) <= 1, Counter(ids).most_common(3)
        for webhook_id, body in got:
            assert webhook_id == f"{subscription['id']}:{body['position']}"
        receipts = len(wanted)

        # Verify and replay, as an operator runs them beside the live processes.
        cli_env = {k: v for k, v in env.items() if k != "LEDGER_PROJECTIONS"}
        verify = _cli(["verify"], cli_env)
        assert verify.returncode == 0 and "ok: true" in verify.stdout, verify.stdout + verify.stderr
        replay = _cli(["replay"], cli_env)
        assert replay.returncode == 0, replay.stdout + replay.stderr

        print(
            f"\n{len(records)} requests: {taken} adjustments and {reserved} exports accepted, "
            f"refused {dict(Counter(r['rule'] for r in records if r['status'] == 409))}, "
            f"concurrent_update retries {sum(r['retries'] for r in records)}; "
            f"log head {head}; {receipts} receipts delivered, {len(ids) - len(set(ids))} twice"
        )
    finally:
        for p in processes:
            p.stop()
        receiver.close()


def _receipt_positions(base: str, token: str, after: int, head: int) -> set[int]:
    """The positions of every receipt after `after` up to `head`, read from the live stream
    (`follow=false`), which reads the receipts' log, not the dispatcher's outbox."""
    r = httpx.get(
        f"{base}/v1/stream",
        params={"after": after, "follow": "false"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    ids = {int(line[4:]) for line in r.text.splitlines() if line.startswith("id: ")}
    assert ids and max(ids) <= head + 10, ids
    return {p for p in ids if p <= head}


def _cli(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "api.cli", "--lang", "en", *argv],  # its text is read
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _send(
    http: httpx.Client, bases: list[str], server: int, request: dict[str, Any], auth: dict[str, str]
) -> dict[str, Any]:
    """One request to `bases[server]` until it has a definite answer (a 409
    `concurrent_update` is sent again, same key: nothing was recorded); an accepted export is
    read back at once from the other server, as a client behind a load balancer would."""
    headers = auth | {"Idempotency-Key": request["key"]}
    t0, retries = time.time(), 0
    while True:
        r = http.post(bases[server] + request["path"], json=request["json"], headers=headers)
        rule = r.json().get("rule") if r.status_code == 409 else None
        if rule != "concurrent_update" or retries >= 30:
            break
        retries += 1
    record = request | {
        "server": server,
        "status": r.status_code,
        "rule": rule,
        "body": r.text,
        "replayed": r.headers.get("Idempotency-Replayed") == "true",
        "retries": retries,
        "t0": t0,
        "t1": time.time(),
        "position": int(r.headers.get("X-Ledger-Position", "0")),
        "reread": None,
    }
    if request["kind"] == "export" and r.status_code == 201:
        got = http.get(
            f"{bases[1 - server]}/v1/declarations/{r.json()['id']}",
            headers=auth | {"X-Ledger-Min-Position": str(record["position"])},
        )
        record["reread"] = (
            got.status_code,
            int(got.headers.get("X-Ledger-Position", "0")),
            got.json().get("status"),
        )
    return record


def _race(
    bases: list[str], auth: dict[str, str], plans: list[tuple[int, list[dict[str, Any]]]]
) -> list[dict[str, Any]]:
    """Each plan (a server, its requests) in a thread of its own, all started at once; every
    final answer."""
    records: list[dict[str, Any]] = []
    failures: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(len(plans))

    def client(server: int, requests: list[dict[str, Any]]) -> None:
        try:
            with httpx.Client(timeout=30) as http:
                start.wait()
                for request in requests:
                    record = _send(http, bases, server, request, auth)
                    with lock:
                        records.append(record)
        except BaseException as e:  # a thread must not end quietly
            with lock:
                failures.append(e)

    threads = [threading.Thread(target=client, args=plan) for plan in plans]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    return records


def _requests(t: Tenant, n: int) -> list[dict[str, Any]]:
    """Client n's REQUESTS_EACH requests: adjustments of -1 and exports of 1, shuffled."""
    kinds = ["adjustment", "export"] * (REQUESTS_EACH // 2)
    random.Random(n).shuffle(kinds)
    return [
        {
            "kind": kind,
            "path": "/v1/movements" if kind == "adjustment" else "/v1/declarations",
            "json": _adjustment(t) if kind == "adjustment" else _export(t),
            "key": new_key(),
        }
        for kind in kinds
    ]


def _check_answers(records: list[dict[str, Any]], processes: list[Process]) -> None:
    """Only 201 and 409 `insufficient_stock`, each accepted request its own (not a replay),
    at a position of its own; every accepted export read back from the other server."""
    odd = [r for r in records if r["status"] != 201 and r["rule"] != "insufficient_stock"]
    assert not odd, [(r["status"], r["body"][:300]) for r in odd[:5]] + [
        p.tail() for p in processes
    ]
    accepted = [r for r in records if r["status"] == 201]
    assert not any(r["replayed"] for r in records)
    for r in accepted:
        if r["kind"] == "export":
            status, position, state = r["reread"]
            assert (status, state) == (200, "released") and position >= r["position"], r
    positions = [r["position"] for r in accepted]
    assert len(set(positions)) == len(positions) and min(positions, default=1) > 0, positions


# -- the pieces the deployment relies on ------------------------------------------------------


def test_the_database_url_sets_pool_sizes_and_timeouts():
    from ledger.database import DatabaseUrlError, eventsourcing_env

    db = parse_database_url(
        "postgresql://ledger:pw@db.internal:5433/customs?schema=ledger&pool_size=8"
        "&max_overflow=0&pool_timeout=12&lock_timeout=3&idle_in_transaction_timeout=20"
        "&views_pool_size=2"
    )
    assert (db.schema, db.views_pool_size) == ("ledger", 2)
    env = eventsourcing_env(db)
    settings = ("POOL_SIZE", "MAX_OVERFLOW", "CONNECT_TIMEOUT", "LOCK_TIMEOUT")
    assert {
        k: env[f"POSTGRES_{k}"] for k in (*settings, "IDLE_IN_TRANSACTION_SESSION_TIMEOUT")
    } == {
        "POOL_SIZE": "8",
        "MAX_OVERFLOW": "0",
        "CONNECT_TIMEOUT": "12",
        "LOCK_TIMEOUT": "3",
        "IDLE_IN_TRANSACTION_SESSION_TIMEOUT": "20",
    }
    defaults = eventsourcing_env(parse_database_url("postgresql://u@h/d"))
    assert (defaults["POSTGRES_POOL_SIZE"], defaults["POSTGRES_LOCK_TIMEOUT"]) == ("5", "5")
    for bad, says in (
        (
            "postgresql://u@h/d?pool_size=0",
            "pool_size in the database URL must be a whole number >= 1",
        ),
        ("postgresql://u@h/d?lock_timeout=-1", "lock_timeout in the database URL must be a whole"),
        ("postgresql://u@h/d?sslmode=require", "unknown parameter 'sslmode' in the database URL"),
    ):
        with pytest.raises(DatabaseUrlError, match=says):
            parse_database_url(bad)


@pytest.mark.postgres
def test_the_url_settings_reach_the_sessions(postgres_url):
    from ledger.application import LedgerApplication

    app = LedgerApplication(
        parse_database_url(
            f"{postgres_url}&pool_size=1&max_overflow=2&idle_in_transaction_timeout=7"
        )
    )
    try:
        datastore = app.factory.datastore  # type: ignore[attr-defined]
        assert (datastore.pool.min_size, datastore.pool.max_size, datastore.lock_timeout) == (
            1,
            3,
            5,
        )
        with datastore.get_connection() as conn:
            shown = conn.execute("SHOW idle_in_transaction_session_timeout").fetchone()
        assert list(shown.values()) == ["7s"]
    finally:
        app.close()


def test_serve_refuses_several_workers_on_sqlite(sqlite_url, monkeypatch, capsys):
    from api.cli import main

    monkeypatch.setenv("LEDGER_DATABASE_URL", sqlite_url)
    assert main(["serve", "--workers", "2"]) == 2
    assert "--workers 2 needs PostgreSQL" in capsys.readouterr().err


@pytest.mark.postgres
def test_serve_with_two_workers_one_feeds_the_views(postgres_url, tmp_path):
    """`serve --workers 2` with projections inline: both workers answer on one port, one of
    them feeds the views (it holds the leader lock), and the views follow every write."""
    url = f"{postgres_url}&{POOLS}"
    with running_ledger(url) as ledger:
        admin = ledger.tokens["admin"]
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "LEDGER_DATABASE_URL": url, "LEDGER_PROJECTIONS": "inline"}
    argv = ["serve", "--workers", "2", "--port", str(port), "--log-format", "text"]
    server = Process("serve-workers", argv, env, tmp_path)
    try:
        _wait("the server up", lambda: _health(base), 60, [server])
        for n in range(6):
            r = httpx.post(
                f"{base}/v1/enterprises",
                json=enterprise_body(make_uscc(), name=f"Worker test {n}"),
                headers={"Authorization": f"Bearer {admin}"},
            )
            assert r.status_code == 201, r.text
            listed = httpx.get(
                f"{base}/v1/enterprises",
                headers={"Authorization": f"Bearer {admin}"},
            )
            assert listed.status_code == 200 and len(listed.json()["items"]) == n + 1, listed.text
        _wait("the views at the head", lambda: _caught_up([base], 6), 20, [server])
        leader = _wait("a worker leading", lambda: _leader_pid(url), 10, [server])
        workers = _children(server.proc.pid)
        assert leader in workers and len(workers) >= 2, (leader, workers)
        text = server.log_path.read_text()
        assert text.count("Started server process") == 2, text
    finally:
        server.stop()
    assert server.proc.returncode == 0, server.tail()


@pytest.mark.postgres
def test_two_servers_in_the_default_mode_have_one_views_feeder(postgres_url, tmp_path):
    """`serve` without LEDGER_PROJECTIONS (process: each server runs one views process, its
    child): with two servers, one of them `--workers 2`, only the two children ask for the
    views' lock - no worker runs a runner - and exactly one holds it; the views follow every
    write on both servers (read-your-writes through either); when the child holding it is
    killed, its server restarts it and the other child feeds the views meanwhile."""
    url = f"{postgres_url}&{POOLS}"
    with running_ledger(url) as ledger:
        admin = ledger.tokens["admin"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_PROJECTIONS")}
    env["LEDGER_DATABASE_URL"] = url
    ports = [_free_port(), _free_port()]
    bases = [f"http://127.0.0.1:{port}" for port in ports]
    servers = [
        Process(
            f"serve-{n}",
            ["serve", "--port", str(port), "--log-format", "text", *(["--workers", "2"] * n)],
            env,
            tmp_path,
        )
        for n, port in enumerate(ports)
    ]
    try:
        for base in bases:
            _wait("the servers up", lambda b=base: _health(b), 60, servers)
        feeders = {p.proc.pid: _supervised_children(p.proc.pid) for p in servers}
        assert all(len(found) == 1 for found in feeders.values()), feeders
        children = {pid for found in feeders.values() for pid in found}
        leader = _wait("a views process leading", lambda: _leader_pid(url), 20, servers)
        assert leader in children
        ours = children | {p.proc.pid for p in servers}
        ours |= {w for p in servers for w in _children(p.proc.pid)}
        # The two children; the servers (and the workers of the second) run no runner.
        _wait(
            "both views processes asking",
            lambda: _leader_sessions(url, ours) == children,
            10,
            servers,
        )
        for n in range(6):
            r = httpx.post(
                f"{bases[n % 2]}/v1/enterprises",
                json=enterprise_body(make_uscc(), name=f"Default mode {n}"),
                headers={"Authorization": f"Bearer {admin}"},
            )
            assert r.status_code == 201, r.text
            listed = httpx.get(
                f"{bases[(n + 1) % 2]}/v1/enterprises",
                headers={
                    "Authorization": f"Bearer {admin}",
                    "X-Ledger-Min-Position": r.headers["X-Ledger-Position"],
                },
            )
            assert listed.status_code == 200 and len(listed.json()["items"]) == n + 1, listed.text
        health = _health(bases[0])
        assert health is not None and health["projections"] == "process"
        os.kill(leader, signal.SIGKILL)
        other = _wait(
            "the other views process leading",
            lambda: (pid := _leader_pid(url)) not in (None, leader) and pid,
            20,
            servers,
        )
        assert other in children
        r = httpx.post(
            f"{bases[0]}/v1/enterprises",
            json=enterprise_body(make_uscc(), name="Default mode after the kill"),
            headers={"Authorization": f"Bearer {admin}"},
        )
        assert r.status_code == 201, r.text
        _wait("the views at the head", lambda: _caught_up(bases, 7), 20, servers)
        restarted = _wait(
            "the killed views process restarted",
            lambda: (
                (
                    _supervised_children(servers[0].proc.pid)
                    | _supervised_children(servers[1].proc.pid)
                )
                - children
            ),
            30,
            servers,
        )
        assert len(restarted) == 1
        children |= restarted
    finally:
        for server in servers:
            server.stop()
    for server in servers:
        assert server.proc.returncode in (0, -signal.SIGTERM), server.tail()
    for pid in children:
        assert not Path(f"/proc/{pid}").exists() or "Z" in _state(pid), pid


def _supervised_children(pid: int) -> set[int]:
    """The views processes (`project --follow --supervised`) among `pid`'s children."""
    found = set()
    for child in _children(pid):
        try:
            argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"--supervised" in argv:
            found.add(child)
    return found


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "gone"


def _leader_sessions(url: str, ours: set[int]) -> set[int]:
    """The processes among `ours` with a session that asks for (or holds) the views' lock
    (projections/leader.py names each `customs-ledger views leader pid <pid>`)."""
    import psycopg

    db = parse_database_url(url)
    with psycopg.connect(pg_conninfo(db)) as conn:
        rows = conn.execute(
            "SELECT application_name FROM pg_stat_activity"
            " WHERE application_name LIKE 'customs-ledger views leader pid %'"
        ).fetchall()
    return {int(row[0].rsplit(" ", 1)[1]) for row in rows} & ours


def _children(pid: int) -> set[int]:
    found = set()
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(
                line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line
            )
        except OSError:
            continue
        if fields.get("PPid", "").strip() == str(pid):
            found.add(int(status.parent.name))
    return found
