"""Receipts pushed to subscribers (issue #19): signed webhooks, at least once and in log order
per subscription, within the API's tenancy; retried with backoff; redelivered on request.

A real receiver - an HTTP server on a loopback address this test starts - verifies every
signature with the `standardwebhooks` package (not our code)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from tests.support import admit, new_key, onboard, run_cli, running_ledger


class Receiver:
    """Records every delivery; answers 500 to the first `fail` of them."""

    def __init__(self, fail: int = 0) -> None:
        self.got: list[tuple[str, dict[str, str], bytes]] = []  # (path, headers, body)
        self.fail = fail
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                with receiver.lock:
                    receiver.got.append((self.path, dict(self.headers.items()), body))
                    failing = receiver.fail > 0
                    receiver.fail -= 1 if failing else 0
                self.send_response(500 if failing else 204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_port}{path}"

    def received(self, path: str) -> list[tuple[dict[str, str], dict[str, Any]]]:
        with self.lock:
            return [(h, json.loads(b)) for p, h, b in self.got if p == path]

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def ledger(database_url):
    with running_ledger(
        database_url,
        webhook_allowed_hosts=("127.0.0.1",),
        webhook_retry_base_seconds=0.05,
    ) as ledger:
        yield ledger


def subscribe(ledger, who, url, events, key=None):
    body = {"url": url, "events": events, "description": "ERP receipts"}
    r = ledger.post("/v1/subscriptions", who, body, key=key or new_key())
    assert r.status_code == 201, r.text
    return r.json()


def wait_for(check, seconds=15.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError("not delivered in time")


def verified(receiver, path, secret):
    """Every delivery on `path`, each signature verified by the standard's package."""
    out = []
    with receiver.lock:
        got = [(h, b) for p, h, b in receiver.got if p == path]
    for headers, body in got:
        Webhook(secret).verify(body, headers)
        out.append((headers["webhook-id"], json.loads(body)))
    return out


def test_receipts_reach_their_subscribers_signed_in_order_and_only_their_own(ledger, receiver):
    a, b = onboard(ledger), onboard(ledger)
    mine = subscribe(ledger, a.token_name, receiver.url("/a"), ["declaration.*", "movement.*"])
    theirs = subscribe(ledger, b.token_name, receiver.url("/b"), ["*"])
    customs = subscribe(ledger, "officer", receiver.url("/customs"), ["declaration.released"])
    assert mine["secret"].startswith("whsec_") and mine["status"] == "active"
    admit(ledger, a, 1, "10")  # a first-line import, released, then through the gate
    got = wait_for(
        lambda: (
            len(verified(receiver, "/a", mine["secret"])) >= 2
            and verified(receiver, "/a", mine["secret"])
        )
    )
    types = [body["type"] for _, body in got]
    assert types[:2] == ["declaration.released", "movement.gate_in"], types
    positions = [body["position"] for _, body in got]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    released = got[0][1]
    assert released["subject"]["kind"] == "declaration" and len(released["subject"]["number"]) == 18
    assert released["data"]["status"] == "released" and released["data"]["channel"] == "green"
    assert got[0][0] == f"{mine['id']}:{released['position']}"  # webhook-id
    # Customs' subscription takes A's release; B's takes nothing of A's.
    (seen,) = wait_for(lambda: verified(receiver, "/customs", customs["secret"]))
    assert seen[1]["subject"]["number"] == released["subject"]["number"]
    time.sleep(0.3)
    assert receiver.received("/b") == []
    # A's subscription: listed for A, unknown to B.
    listed = ledger.get("/v1/subscriptions", a.token_name).json()["items"]
    assert [s["id"] for s in listed] == [mine["id"]] and "secret" not in listed[0]
    assert ledger.get(f"/v1/subscriptions/{mine['id']}", b.token_name).status_code == 404
    assert ledger.get("/v1/subscriptions", "admin").status_code == 403
    state = ledger.get(f"/v1/subscriptions/{mine['id']}", a.token_name).json()
    assert state["delivery"]["delivered_through"] >= positions[1] and state["status"] == "active"
    del theirs
    # The outbox is a read model: a replay of the whole log rebuilds it row for row.
    r = ledger.client.post("/v1/audit/replay", json={}, headers=ledger.headers("auditor"))
    assert r.status_code == 200, r.text
    assert r.json()["projections"]["receipts"]["equal"] is True


def test_a_receiver_that_fails_gets_the_same_receipt_again_until_it_answers(ledger):
    receiver = Receiver(fail=3)
    try:
        a = onboard(ledger)
        sub = subscribe(ledger, a.token_name, receiver.url("/a"), ["declaration.*"])
        admit(ledger, a, 1, "10")
        got = wait_for(lambda: len(receiver.received("/a")) >= 4 and receiver.received("/a"))
        ids = {h["webhook-id"] for h, _ in got[:4]}
        assert len(ids) == 1  # every attempt of one receipt carries the same webhook-id
        attempts = ledger.get(f"/v1/subscriptions/{sub['id']}/deliveries", a.token_name).json()
        statuses = [(d["attempt"], d["status"], d["status_code"]) for d in attempts["items"]]
        assert statuses[:4] == [
            (1, "failed", 500),
            (2, "failed", 500),
            (3, "failed", 500),
            (4, "ok", 204),
        ]
        failed = ledger.get(
            f"/v1/subscriptions/{sub['id']}/deliveries", a.token_name, params={"status": "failed"}
        ).json()["items"]
        assert len(failed) == 3
        # /metrics counts the attempts and shows no backlog once delivered.
        metrics = ledger.client.get("/metrics").text
        assert 'ledger_webhook_attempts_total{result="failed"} 3.0' in metrics, metrics[-800:]
        assert f'ledger_webhook_backlog{{subscription="{sub["id"]}"}} 0.0' in metrics
        # Asked again from the first receipt's position: the same ids come again.
        first = got[-1][1]["position"]
        r = ledger.post(
            f"/v1/subscriptions/{sub['id']}/redeliver", a.token_name, {"from_position": first}
        )
        assert r.status_code == 200, r.text
        again = wait_for(lambda: len(receiver.received("/a")) >= 5 and receiver.received("/a"))
        assert again[4][0]["webhook-id"] == got[3][0]["webhook-id"]
        # Deleted: nothing more.
        r = ledger.client.delete(
            f"/v1/subscriptions/{sub['id']}", headers=ledger.headers(a.token_name)
        )
        assert r.status_code == 200 and r.json()["status"] == "deleted", r.text
        count = len(receiver.received("/a"))
        admit(ledger, a, 1, "5")
        time.sleep(0.5)
        assert len(receiver.received("/a")) == count
    finally:
        receiver.close()


@pytest.mark.parametrize(
    ("url", "events", "loc"),
    [
        ("https://10.0.0.8/hook", ["*"], "$.url"),
        ("https://169.254.169.254/latest/meta-data", ["*"], "$.url"),
        ("http://hooks.example.com/in", ["*"], "$.url"),
        ("https://user:pw@127.0.0.1/in", ["*"], "$.url"),
        ("http://127.0.0.1:9/in", ["declaration.paid"], "$.events[0]"),
        ("http://127.0.0.1:9/in", [], "$.events"),
    ],
)
def test_a_subscription_that_breaks_the_rules_is_refused_and_changes_nothing(
    ledger, url, events, loc
):
    a = onboard(ledger)
    before = ledger.log_state()
    r = ledger.post(
        "/v1/subscriptions", a.token_name, {"url": url, "events": events}, key=new_key()
    )
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == loc, r.text
    assert ledger.log_state() == before
    for who in ("admin",):
        r = ledger.post("/v1/subscriptions", who, {"url": "http://127.0.0.1:9/", "events": ["*"]})
        assert r.status_code == 403


def test_a_retry_with_its_key_shows_the_same_secret(ledger):
    a = onboard(ledger)
    key = new_key()
    first = subscribe(ledger, a.token_name, "http://127.0.0.1:9/in", ["*"], key=key)
    again = ledger.post(
        "/v1/subscriptions",
        a.token_name,
        {"url": "http://127.0.0.1:9/in", "events": ["*"], "description": "ERP receipts"},
        key=key,
    )
    assert again.status_code == 201 and again.json()["secret"] == first["secret"]
    assert again.json()["id"] == first["id"]
    # The log never holds the secret in clear.
    after = 0
    while page := ledger.services.app.log.select_log(after, 1000):
        for record in page:
            assert first["secret"].encode() not in record.state
        after = page[-1].position


def test_the_operator_lists_pauses_resumes_and_redelivers_at_the_command_line(database_url, ledger):
    a = onboard(ledger)
    sub = subscribe(ledger, a.token_name, "http://127.0.0.1:9/in", ["declaration.*"])
    ledger.services.runner.wait_for(ledger.services.app.log.head().position, 10)
    listed = run_cli(database_url, "subscriptions", "list")
    assert listed.returncode == 0, listed.stderr
    (line,) = [x for x in listed.stdout.splitlines() if sub["id"] in x]
    assert "active" in line and a.uscc in line and "http://127.0.0.1:9/in" in line
    paused = run_cli(database_url, "subscriptions", "pause", sub["id"], "--actor", "ops-wang")
    assert paused.returncode == 0 and "paused" in paused.stdout, paused.stderr
    state = ledger.get(f"/v1/subscriptions/{sub['id']}", a.token_name).json()
    assert state["status"] == "paused"
    again = run_cli(database_url, "subscriptions", "pause", sub["id"])
    assert again.returncode == 1 and "refused" in again.stderr
    resumed = run_cli(database_url, "subscriptions", "resume", sub["id"])
    assert resumed.returncode == 0 and "active" in resumed.stdout
    redelivered = run_cli(database_url, "subscriptions", "redeliver", sub["id"], "--from", "1")
    assert redelivered.returncode == 0, redelivered.stderr
    unknown = run_cli(
        database_url, "subscriptions", "pause", "00000000-0000-4000-8000-000000000000"
    )
    assert unknown.returncode == 1
