"""The live stream of receipts, `GET /v1/stream` (issue #19), over real HTTP (uvicorn in a
thread): Server-Sent Events under the caller's tenancy, `id:` the log position; a client that
disconnects mid-stream resumes with `Last-Event-ID` without a gap or a duplicate; another
tenant's receipts never appear; heartbeats while idle; the same bodies a webhook is sent."""

from __future__ import annotations

import json
import os
import queue
import signal
import threading
import time
from typing import Any

import httpx
import pytest

from tests.e2e.test_receipts import Receiver, subscribe, verified, wait_for
from tests.support import Ledger, Tenant, admit, new_key, onboard, serving

HEARTBEAT = 0.3


class Stream:
    """An SSE client: a thread reads the answer and parses its events into a queue."""

    def __init__(self, base: str, token: str, **params: Any) -> None:
        # What an EventSource sends: the live stream, not a finite read.
        headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
        if "last_event_id" in params:
            headers["Last-Event-ID"] = str(params.pop("last_event_id"))
        self.client = httpx.Client(base_url=base, timeout=httpx.Timeout(10.0, read=None))
        self.events: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.comments: list[str] = []
        self.context = self.client.stream("GET", "/v1/stream", params=params, headers=headers)
        self.response = self.context.__enter__()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        event: dict[str, Any] = {}
        try:
            for line in self.response.iter_lines():
                if line.startswith(":"):
                    self.comments.append(line[1:].strip())
                elif line == "":
                    if "data" in event:
                        self.events.put(event)
                    event = {}
                else:
                    field, _, value = line.partition(": ")
                    event[field] = value
        except httpx.HTTPError:
            pass
        self.events.put(None)  # the end of the stream

    def take(self, n: int, timeout: float = 15.0) -> list[dict[str, Any]]:
        """The next `n` events (as id, type, receipt)."""
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < n:
            event = self.events.get(timeout=max(deadline - time.monotonic(), 0.01))
            assert event is not None, f"the stream ended after {len(out)} of {n} events"
            out.append(event)
        return [parsed(e) for e in out]

    def rest(self, timeout: float = 15.0) -> list[dict[str, Any]]:
        """Every event up to the end of a finite (`follow=false`) stream."""
        out = []
        while (event := self.events.get(timeout=timeout)) is not None:
            out.append(parsed(event))
        return out

    def close(self) -> None:
        self.context.__exit__(None, None, None)
        self.client.close()
        self.thread.join(timeout=5)


def parsed(event: dict[str, Any]) -> dict[str, Any]:
    receipt = json.loads(event["data"])
    assert int(event["id"]) == receipt["position"] and event["event"] == receipt["type"], event
    return receipt


def read_all(base: str, token: str, **params: Any) -> list[dict[str, Any]]:
    s = Stream(base, token, follow="false", **params)
    try:
        assert s.response.status_code == 200
        return s.rest()
    finally:
        s.close()


@pytest.fixture
def served(database_url):
    with serving(
        database_url,
        stream_heartbeat_seconds=HEARTBEAT,
        stream_max_clients=3,
        webhook_allowed_hosts=("127.0.0.1",),
    ) as (base, ledger):
        yield base, ledger


def enter_first(ledger: Ledger, t: Tenant, gate: str) -> tuple[str, str]:
    """A checklist filed, approved, and its goods in through the gate on a pass."""
    body = {
        "direction": "I",
        "account_book": t.book_no,
        "kind": "enter_first",
        "lines": [{"item_no": 1, "quantity": "10"}],
    }
    r = ledger.post("/v1/checklists", t.token_name, body, key=new_key())
    assert r.status_code == 201, r.text
    qd = r.json()["checklist_no"]
    r = ledger.post(f"/v1/checklists/{qd}/approval", "officer", {})
    assert r.status_code == 200, r.text
    vehicle = {"zone": "XCBZ", "direction": "in", "vehicle": {"plate": "陕A00001"}}
    p = {**vehicle, "gross_weight_kg": "500", "checklists": [{"checklist_no": qd}]}
    r = ledger.post("/v1/gate-passes", t.token_name, p, key=new_key())
    assert r.status_code == 201, r.text
    pass_no = r.json()["pass_no"]
    r = ledger.post(f"/v1/gate-passes/{pass_no}/passage", gate, {"measured_gross_weight_kg": "500"})
    assert r.status_code == 200, r.text
    return qd, pass_no


def owned_by(ledger: Ledger, t: Tenant, receipt: dict[str, Any]) -> bool:
    """Whether the tenant may read the receipt's subject, asked of the API's own routes
    (not of the receipts' read model)."""
    subject = receipt["subject"]
    path = {
        "declaration": f"/v1/declarations/{subject['id']}",
        "checklist": f"/v1/checklists/{subject['number']}",
        "gate_pass": f"/v1/gate-passes/{subject['number']}",
    }.get(subject["kind"])
    if path is None:
        assert subject["kind"] == "movement", receipt
        return bool(receipt["data"]["movement"]["account_book"] == t.book_no)
    r = ledger.get(path, t.token_name)
    assert r.status_code in (200, 404), r.text
    return r.status_code == 200


def test_a_client_resumes_without_gap_or_duplicate_and_sees_only_its_own(served):
    base, ledger = served
    a, b = onboard(ledger), onboard(ledger)
    gate = "gate-xcbz"
    ledger.issue(gate, "operator", zone="XCBZ")
    start = ledger.services.app.log.head().position
    live = Stream(base, ledger.tokens[a.token_name])
    assert live.response.status_code == 200
    assert live.response.headers["content-type"].startswith("text/event-stream")
    wait_for(lambda: live.comments)  # connected: "receipts after position N"
    admit(ledger, a, 1, "10")
    admit(ledger, b, 1, "10")
    first = live.take(2)  # a's release and its checklist, live
    live.close()  # the client goes away mid-stream
    admit(ledger, a, 2, "5")
    enter_first(ledger, a, gate)
    enter_first(ledger, b, gate)
    resumed = read_all(base, ledger.tokens[a.token_name], last_event_id=first[-1]["position"])
    everything = read_all(base, ledger.tokens[a.token_name], after=start)

    positions = [r["position"] for r in first + resumed]
    assert first + resumed == everything, "a gap or a duplicate across the reconnection"
    assert positions == sorted(set(positions))
    types = [r["type"] for r in everything]
    # A release files the declaration's checklist in the same write; the goods then go in.
    assert types[:3] == ["declaration.released", "checklist.filed", "movement.gate_in"], types
    for wanted in ("checklist.filed", "checklist.approved", "gate_pass.filed"):
        assert wanted in types, types
    assert {"gate_pass.passed", "checklist.passed"} <= set(types), types
    assert all(owned_by(ledger, a, r) for r in everything)

    theirs = read_all(base, ledger.tokens[b.token_name], after=start)
    assert theirs and all(owned_by(ledger, b, r) for r in theirs)
    assert not {r["position"] for r in theirs} & set(positions)
    # Customs sees both, with the same bodies.
    customs = {r["position"]: r for r in read_all(base, ledger.tokens["officer"], after=start)}
    for r in everything + theirs:
        assert customs[r["position"]] == r
    # A type filter, and the header winning over `after`.
    only = read_all(
        base, ledger.tokens[a.token_name], types="checklist.*,movement.gate_in", after=0,
        last_event_id=start,
    )  # fmt: skip
    assert [r["type"] for r in only] == [
        t for t in types if t.startswith("checklist.") or t == "movement.gate_in"
    ]


def test_the_stream_sends_what_a_webhook_is_sent(served):
    base, ledger = served
    receiver = Receiver()
    try:
        a = onboard(ledger)
        start = ledger.services.app.log.head().position
        sub = subscribe(ledger, a.token_name, receiver.url("/a"), ["*"])
        admit(ledger, a, 1, "10")
        delivered = wait_for(
            lambda: (
                len(verified(receiver, "/a", sub["secret"])) >= 3
                and verified(receiver, "/a", sub["secret"])
            )
        )
        streamed = read_all(base, ledger.tokens[a.token_name], after=start)
        assert [body for _, body in delivered] == streamed
    finally:
        receiver.close()


def test_heartbeats_while_idle_and_a_bounded_number_of_streams(served):
    base, ledger = served
    streams = [Stream(base, ledger.tokens["auditor"]) for _ in range(3)]
    try:
        assert [s.response.status_code for s in streams] == [200] * 3
        wait_for(lambda: streams[0].comments.count("heartbeat") >= 2, seconds=5)
        # The fourth is refused while three are open: 503 with Retry-After, nothing queued.
        r = ledger.get("/v1/stream", "officer", params={"follow": "false"})
        assert r.status_code == 503, r.text
        assert r.headers["retry-after"] == "5"
        assert r.headers["content-type"] == "application/problem+json"
    finally:
        for s in streams:
            s.close()
    # Closed streams give their places back.
    r = wait_for(
        lambda: (
            (x := ledger.get("/v1/stream", "officer", params={"follow": "false"})).status_code
            == 200
            and x
        )
    )
    assert r.text.startswith("retry: 2000\n")


def test_a_plain_get_reads_what_there_is_and_ends_an_event_stream_client_follows(served):
    base, ledger = served
    a = onboard(ledger)
    admit(ledger, a, 1, "10")
    # No `follow`, no `Accept: text/event-stream` (a script, a crawler): an end.
    r = ledger.get("/v1/stream", a.token_name, params={"after": 0})
    assert r.status_code == 200 and r.text.count("\nevent: ") == 3, r.text
    # It says the position it read to, as every view read does: its last receipt's or later.
    ids = [int(line[4:]) for line in r.text.splitlines() if line.startswith("id: ")]
    assert int(r.headers["X-Ledger-Position"]) >= max(ids) > 0, r.headers
    # The same with the header EventSource sends: it follows (heartbeats, no end).
    live = Stream(base, ledger.tokens[a.token_name], after=0)
    try:
        assert len(live.take(3)) == 3
        wait_for(lambda: live.comments.count("heartbeat") >= 1, seconds=5)
        assert live.events.empty() and live.thread.is_alive()
    finally:
        live.close()


def test_bad_requests_are_refused_before_any_byte_is_streamed(served):
    _, ledger = served
    a = onboard(ledger)
    cases = [
        ({"types": "declaration.*,nonsense"}, {}, "query.types[1]"),
        ({"types": ","}, {}, "query.types"),
        ({"after": "-1"}, {}, "query.after"),
        ({"follow": "maybe"}, {}, "query.follow"),
        ({}, {"Last-Event-ID": "12abc"}, "header.Last-Event-ID"),
        ({}, {"Last-Event-ID": "9" * 19}, "header.Last-Event-ID"),
    ]
    for params, headers, loc in cases:
        r = ledger.client.get(
            "/v1/stream",
            params=params,
            headers={**ledger.headers(a.token_name), **headers},
        )
        assert r.status_code == 422, (params, headers, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert loc in [e["loc"] for e in r.json()["errors"]], r.text
    assert ledger.get("/v1/stream", "admin").status_code == 403
    assert ledger.client.get("/v1/stream").status_code == 401
    # HEAD answers the headers and ends, even for a stream that would follow forever.
    r = ledger.client.head("/v1/stream", headers=ledger.headers(a.token_name))
    assert r.status_code == 200 and r.content == b""
    assert r.headers["content-type"].startswith("text/event-stream")


def test_a_server_told_to_stop_ends_its_open_streams_at_once_and_cleanly(tmp_path):
    """`customs-ledger serve` as a process: SIGTERM with a stream open ends the stream (its
    answer complete, no error logged) and the process, without waiting out the grace."""
    from tests.soak.server import LedgerServer, free_port, issue_key

    env = {**os.environ, "LEDGER_DATABASE_URL": f"sqlite:///{tmp_path / 'ledger.sqlite3'}"}
    server = LedgerServer(env, free_port(), tmp_path / "server.log")
    server.start()
    try:
        server.wait_healthy()
        token = issue_key(env, "officer", "officer")
        stream = Stream(server.url, token, after=0)
        assert stream.response.status_code == 200
        wait_for(lambda: stream.comments)
        assert server.process is not None
        started = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        server.process.wait(timeout=4)  # under the 5 s grace: nothing had to be cancelled
        assert time.monotonic() - started < 4
        assert stream.events.get(timeout=5) is None  # the stream ended, not broken
        stream.close()
    finally:
        server.stop()
    log = (tmp_path / "server.log").read_text()
    assert "ERROR" not in log and "Exception in ASGI application" not in log, log
