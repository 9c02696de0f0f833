"""Operations: /metrics moves by exactly what was asked of the ledger, every request has an id
that its log lines carry, and /healthz tells a broken store from a working one."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import httpx
import msgspec
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from api import logs
from api.app import create_app
from api.settings import Settings
from ledger.application import LedgerApplication
from ledger.database import parse_database_url
from ledger.keys import ApiKeys
from tests import samples
from tests.support import (
    Ledger,
    admit,
    first_start_events,
    onboard,
    pg_conninfo,
    running_ledger,
)

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def scrape(ledger: Ledger) -> Samples:
    """Every sample of GET /metrics, parsed by Prometheus' own client."""
    r = ledger.client.get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


@contextmanager
def ledger_with(database_url: str, **settings: Any) -> Iterator[Ledger]:
    """The app with these settings, a client that answers 500s instead of raising them, and
    an admin and an auditor token."""
    app = create_app(
        Settings(database_url=database_url, **settings), rules=samples.rules_without_draws()
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        ledger = Ledger(client=client, services=app.state.services, tokens={})
        for role in ("admin", "auditor"):
            name = f"{role}-{uuid.uuid4().hex[:8]}"
            ledger.tokens[role] = ledger.services.keys.issue(name=name, role=role)
        yield ledger


@contextmanager
def captured_log(log_format: str = "json") -> Iterator[io.StringIO]:
    """Every record of the process at INFO and above, formatted as `serve` formats them."""
    stream = io.StringIO()
    handler = logs.log_handler(log_format, stream)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]


# -- request metrics ------------------------------------------------------------------------


def test_request_counters_move_by_exactly_the_requests_made_under_their_route_template(
    sqlite_url,
):
    with running_ledger(sqlite_url) as ledger:
        before = scrape(ledger)
        lots = [str(uuid.uuid4()) for _ in range(3)]
        for lot in lots:
            assert ledger.get(f"/v1/lots/{lot}", "auditor").status_code == 404
        assert ledger.client.get(f"/v1/lots/{lots[0]}").status_code == 401
        for _ in range(2):
            assert ledger.client.get("/v1/zones").status_code == 200
        assert ledger.client.get(f"/no/such/{lots[1]}").status_code == 404
        assert ledger.client.request("BREW", "/v1/zones").status_code == 405
        after = scrape(ledger)

    requests = "ledger_http_requests_total"
    lot_route = {"method": "GET", "route": "/v1/lots/{lot_id}"}
    assert moved(before, after, requests, **lot_route, status="404") == 3
    assert moved(before, after, requests, **lot_route, status="401") == 1
    assert moved(before, after, requests, method="GET", route="/v1/zones", status="200") == 2
    assert moved(before, after, requests, method="GET", route="unmatched", status="404") == 1
    assert moved(before, after, requests, method="other", route="/v1/zones", status="405") == 1
    assert moved(before, after, requests, method="GET", route="/metrics", status="200") == 1
    # Nothing else was asked between the two scrapes.
    total = sum(v for (name, _), v in after.items() if name == requests)
    assert total - sum(v for (name, _), v in before.items() if name == requests) == 9
    histogram = "ledger_http_request_duration_seconds"
    assert moved(before, after, f"{histogram}_count", **lot_route) == 4
    assert value(after, f"{histogram}_sum", **lot_route) > value(
        before, f"{histogram}_sum", **lot_route
    )
    assert value(after, f"{histogram}_bucket", **lot_route, le="+Inf") == value(
        after, f"{histogram}_count", **lot_route
    )
    # Routes are templates: no path (a lot id, an unknown path) ever becomes a label value.
    routes = {dict(labels)["route"] for (_, labels) in after if "route" in dict(labels)}
    assert routes >= {"/v1/lots/{lot_id}", "/v1/zones", "/metrics", "unmatched"}
    assert not [route for route in routes if any(lot in route for lot in lots)]
    assert not [route for route in routes if route.startswith("/no/")]


def test_events_appended_count_exactly_what_the_log_grew_by(database_url):
    with running_ledger(database_url) as ledger:
        before, count = scrape(ledger), ledger.services.app.log.count()
        tenant = onboard(ledger)
        admit(ledger, tenant, 1, "100")
        refused = ledger.post("/v1/enterprises", "admin", {"uscc": "not a uscc"})
        assert refused.status_code == 422
        after, grown = scrape(ledger), ledger.services.app.log.count() - count
        assert grown > 4  # the enterprise, its book, a declaration and its lots
        assert moved(before, after, "ledger_events_appended_total") == grown
        # Reads append nothing.
        assert ledger.get("/v1/events", "auditor").status_code == 200
        assert moved(after, scrape(ledger), "ledger_events_appended_total") == 0


# -- the log and the views ------------------------------------------------------------------


def test_projection_lag_is_positive_while_the_views_are_held_back_and_zero_after_catch_up(
    database_url,
):
    with ledger_with(database_url, projections="off") as ledger:
        onboard(ledger)
        time.sleep(0.01)
        onboard(ledger)
        runner = ledger.services.runner
        events = ledger.get("/v1/events", "auditor", params={"limit": 1000}).json()["items"]
        head, first = events[-1], events[0]

        held = scrape(ledger)
        assert value(held, "ledger_store_up") == 1
        assert value(held, "ledger_log_position") == head["position"]
        assert value(held, "ledger_projection_position") == 0
        assert value(held, "ledger_projection_lag_events") == head["position"]
        # No event applied yet: behind by everything since the first event.
        lag = seconds_between(first["recorded_at"], head["recorded_at"])
        assert lag > 0
        assert value(held, "ledger_projection_lag_seconds") == pytest.approx(lag, abs=1e-6)

        runner.batch_size = 2
        assert runner.run_once() == 2  # the views now hold the first two events
        partly = scrape(ledger)
        assert value(partly, "ledger_projection_position") == events[1]["position"]
        assert value(partly, "ledger_projection_lag_events") == (
            head["position"] - events[1]["position"]
        )
        lag = seconds_between(events[1]["recorded_at"], head["recorded_at"])
        assert lag > 0
        assert value(partly, "ledger_projection_lag_seconds") == pytest.approx(lag, abs=1e-6)
        health = ledger.client.get("/healthz").json()
        assert health["projection_position"] == events[1]["position"]
        assert health["projection_lag_seconds"] == pytest.approx(lag, abs=1e-6)

        runner.batch_size = 1000
        runner.catch_up()
        caught_up = scrape(ledger)
        assert value(caught_up, "ledger_projection_position") == head["position"]
        assert value(caught_up, "ledger_projection_lag_events") == 0
        assert value(caught_up, "ledger_projection_lag_seconds") == 0
        health = ledger.client.get("/healthz").json()
        # The reference data's outlook (tests/e2e/test_reference_outlook_http.py tests it).
        assert health.pop("reference") == msgspec.to_builtins(ledger.services.reference.outlook())
        assert health == {
            "status": "ok",
            "store": parse_database_url(database_url).kind,
            "log_position": head["position"],
            "projection_position": head["position"],
            "projection_lag_events": 0,
            "projection_lag_seconds": 0.0,
            "projection_error": None,
            "projections": "off",  # as this test's ledger runs (`serve`'s default: process)
            "projections_pid": None,
            "projections_restarts": None,
            # SQLite: shard 0; PostgreSQL: none claimed before a first assessment.
            "history_shard": 0 if parse_database_url(database_url).kind == "sqlite" else None,
        }


def seconds_between(earlier: str, later: str) -> float:
    return (datetime.fromisoformat(later) - datetime.fromisoformat(earlier)).total_seconds()


# -- audit runs -----------------------------------------------------------------------------


def test_verify_runs_are_counted_by_result_with_the_events_the_last_one_checked(database_url):
    with running_ledger(database_url) as ledger:
        onboard(ledger)
        count = ledger.services.app.log.count()
        before = scrape(ledger)
        for _ in range(2):
            r = ledger.get("/v1/audit/verify", "auditor")
            assert r.status_code == 200 and r.json()["ok"] is True, r.text
        after = scrape(ledger)
        assert moved(before, after, "ledger_verify_runs_total", result="ok") == 2
        assert moved(before, after, "ledger_verify_runs_total", result="failed") == 0
        assert value(after, "ledger_verify_events_checked") == count

        tamper_with_the_second_event(ledger)
        r = ledger.get("/v1/audit/verify", "auditor")
        assert r.status_code == 200 and r.json()["ok"] is False, r.text
        tampered = scrape(ledger)
        assert moved(after, tampered, "ledger_verify_runs_total", result="ok") == 0
        assert moved(after, tampered, "ledger_verify_runs_total", result="failed") == 1
        assert value(tampered, "ledger_verify_events_checked") == r.json()["events_checked"]


def tamper_with_the_second_event(ledger: Ledger) -> None:
    """Flip a byte of a stored event with the database's own client, as a tamperer would."""
    db = ledger.services.database
    table = ledger.services.app.recorder.events_table_name
    if db.kind == "sqlite":
        with sqlite3.connect(db.path) as conn:
            (state,) = conn.execute(f"SELECT state FROM {table} WHERE sequence = 2").fetchone()
            flipped = bytes([state[0] ^ 1]) + bytes(state[1:])
            conn.execute(f"UPDATE {table} SET state = ? WHERE sequence = 2", (flipped,))
        return
    import psycopg

    with psycopg.connect(pg_conninfo(db), options=f"-c search_path={db.schema}") as conn:
        (state,) = conn.execute(f"SELECT state FROM {table} WHERE sequence = 2").fetchone()
        flipped = bytes([state[0] ^ 1]) + bytes(state[1:])
        conn.execute(f"UPDATE {table} SET state = %s WHERE sequence = 2", (flipped,))


def test_replay_runs_are_counted_as_equal_different_or_failed(sqlite_url, monkeypatch):
    with running_ledger(sqlite_url) as ledger:
        tenant = onboard(ledger)
        admit(ledger, tenant, 1, "100")
        before = scrape(ledger)
        r = ledger.post("/v1/audit/replay", "auditor", {})
        assert r.status_code == 200 and r.json()["equal"] is True, r.text

        services = ledger.services
        assert services.runner.wait_for(services.app.log.head().position, 10)
        with services.views.transaction() as cur:
            cur.execute(
                "UPDATE view_book_items SET on_hand = '7' WHERE book_no = ?", (tenant.book_no,)
            )
        r = ledger.post("/v1/audit/replay", "auditor", {})
        assert r.status_code == 200 and r.json()["equal"] is False, r.text

        from api.replaying import ReplayFailed
        from api.routes import audit

        def fails(*args: Any, **kwargs: Any) -> Any:
            raise ReplayFailed("the helper process exited with 1")

        monkeypatch.setattr(audit, "run_replay", fails)
        assert ledger.post("/v1/audit/replay", "auditor", {}).status_code == 503
        after = scrape(ledger)
    for result in ("equal", "different", "failed"):
        assert moved(before, after, "ledger_replay_runs_total", result=result) == 1, result


# -- request ids and log lines --------------------------------------------------------------


def test_a_usable_client_request_id_is_echoed_and_any_other_replaced_by_a_new_one(sqlite_url):
    with running_ledger(sqlite_url) as ledger:
        client = ledger.client
        for given in ("order-7781/retry-2", "x", "A" * 128, "with spaces and ~!@#"):
            r = client.get("/v1/zones", headers={"X-Request-ID": given})
            assert r.headers["x-request-id"] == given
        generated = []
        for given in (None, "A" * 129, b"caf\xc3\xa9", b"tab\there"):
            headers = {} if given is None else {"X-Request-ID": given}
            r = client.get("/v1/zones", headers=headers)
            assert r.status_code == 200
            generated.append(r.headers["x-request-id"])
        for new in generated:
            as_uuid = uuid.UUID(hex=new)
            assert (as_uuid.version, as_uuid.variant, as_uuid.hex) == (4, uuid.RFC_4122, new)
        assert len(set(generated)) == len(generated)
        # Errors too: a refusal, an unknown path.
        for path, given in (("/v1/events", "r-401"), ("/nowhere", "r-404")):
            r = client.get(path, headers={"X-Request-ID": given})
            assert r.status_code == int(given[2:]) and r.headers["x-request-id"] == given


def test_each_request_logs_one_json_line_with_its_id_route_status_duration_and_actor(sqlite_url):
    with running_ledger(sqlite_url) as ledger, captured_log() as stream:
        lot = str(uuid.uuid4())
        r = ledger.client.get(
            f"/v1/lots/{lot}",
            headers={**ledger.headers("auditor"), "X-Request-ID": "lookup-1"},
        )
        assert r.status_code == 404
        anonymous = ledger.client.get("/v1/zones")
        auditor = ledger.services.keys.authenticate(ledger.tokens["auditor"]).name
    access = [line for line in json_lines(stream) if line["logger"] == "customs_ledger.access"]
    assert len(access) == 2
    line = access[0]
    assert set(line) == {
        "ts",
        "level",
        "logger",
        "msg",
        "request_id",
        "method",
        "route",
        "path",
        "status",
        "duration_ms",
        "actor",
    }
    assert line["request_id"] == "lookup-1"
    assert (line["method"], line["route"], line["path"], line["status"]) == (
        "GET",
        "/v1/lots/{lot_id}",
        f"/v1/lots/{lot}",
        404,
    )
    assert line["actor"] == auditor
    assert line["level"] == "INFO" and line["msg"].startswith(f"GET /v1/lots/{lot} 404 ")
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] > 0
    assert datetime.fromisoformat(line["ts"]).utcoffset().total_seconds() == 0
    assert access[1]["request_id"] == anonymous.headers["x-request-id"]
    assert "actor" not in access[1]


def test_the_unexpected_error_handlers_traceback_carries_the_request_id(sqlite_url, monkeypatch):
    from ledger import audit

    def broken(log: Any) -> Any:
        raise RuntimeError("a bug in the digest")

    monkeypatch.setattr(audit, "digest", broken)
    with ledger_with(sqlite_url) as ledger, captured_log() as stream:
        before = scrape(ledger)
        r = ledger.client.get(
            "/v1/audit/digest", headers={**ledger.headers("auditor"), "X-Request-ID": "boom-1"}
        )
        after = scrape(ledger)
    assert r.status_code == 500 and r.headers["x-request-id"] == "boom-1"
    assert "a bug" not in r.text  # no internals in the answer
    lines = [line for line in json_lines(stream) if line.get("request_id") == "boom-1"]
    [error] = [line for line in lines if line["logger"] == "customs_ledger.api"]
    assert error["level"] == "ERROR"
    assert "RuntimeError: a bug in the digest" in error["exc"]
    [access] = [line for line in lines if line["logger"] == "customs_ledger.access"]
    assert access["status"] == 500 and access["route"] == "/v1/audit/digest"
    labels = {"method": "GET", "route": "/v1/audit/digest", "status": "500"}
    assert moved(before, after, "ledger_http_requests_total", **labels) == 1


def test_text_lines_carry_the_request_id_and_escape_what_the_client_sent(sqlite_url):
    with running_ledger(sqlite_url) as ledger, captured_log("text") as stream:
        ledger.client.get("/v1/x%0Ainjected", headers={"X-Request-ID": "t-1"})
    [line] = [line for line in stream.getvalue().splitlines() if "customs_ledger.access" in line]
    assert "[t-1] GET /v1/x\\ninjected 404 " in line


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_writes_its_banner_as_text_then_one_json_line_per_record(tmp_path):
    url = f"sqlite:///{tmp_path}/ledger.sqlite3"
    app = LedgerApplication(parse_database_url(url))
    try:
        token = ApiKeys(app).issue(name="audit-1", role="auditor")
    finally:
        app.close()
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "serve", "--port", str(port), "--log-format", "json"],
        cwd=REPO,
        env={**os.environ, "LEDGER_DATABASE_URL": url},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            assert server.poll() is None and time.monotonic() < deadline, "no server"
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        zones = httpx.get(f"{base}/v1/zones", headers={"X-Request-ID": "cli-zones"})
        digest = httpx.get(f"{base}/v1/audit/digest", headers={"Authorization": f"Bearer {token}"})
        assert zones.headers["x-request-id"] == "cli-zones" and digest.status_code == 200
        # The key's issuance (keys are events, #14), then the first start's reference tables.
        assert digest.json()["sequence"] == 1 + first_start_events()
    finally:
        server.send_signal(signal.SIGTERM)
        _, stderr = server.communicate(timeout=30)
    banner, _, rest = stderr.partition("\n{")
    assert banner.startswith("customs-ledger on sqlite:///") and "/healthz" in banner
    records = [json.loads(line) for line in ("{" + rest).splitlines() if line]
    assert all({"ts", "level", "logger", "msg"} <= set(r) for r in records)
    assert "uvicorn.access" not in {r["logger"] for r in records}  # ours replace uvicorn's
    assert any(r["msg"].startswith("Uvicorn running on") for r in records)
    access = [r for r in records if r["logger"] == "customs_ledger.access"]
    [mine] = [r for r in access if r["request_id"] == "cli-zones"]
    assert (mine["route"], mine["status"], mine["method"]) == ("/v1/zones", 200, "GET")
    [audited] = [r for r in access if r["path"] == "/v1/audit/digest"]
    assert (audited["status"], audited["actor"]) == (200, "audit-1")
    assert audited["request_id"] == digest.headers["x-request-id"]


# -- /healthz -------------------------------------------------------------------------------


def test_healthz_is_503_naming_the_event_store_when_it_does_not_answer(database_url):
    with running_ledger(database_url) as ledger:
        assert ledger.client.get("/healthz").status_code == 200
        # The server's own background readers stop first: a SQLite connection closed under a
        # query that another thread is running crashes in SQLite's C code (the tamper watch's
        # first verification was such a reader in one CI run) - not what is tested here.
        svc = ledger.services
        if svc.watch is not None:
            svc.watch.stop()
        svc.runner.stop()
        svc.dispatcher.stop()
        svc.app.factory.close()  # the event store's connections are gone
        r = ledger.client.get("/healthz")
        assert r.status_code == 503, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        problem = r.json()
        kind = parse_database_url(database_url).kind
        assert problem["status"] == 503 and problem["type"].endswith("/unavailable")
        assert problem["detail"].startswith(f"the event store ({kind}) did not answer: ")
        # /metrics still answers: the store is down, and no position is made up.
        samples = scrape(ledger)
        assert value(samples, "ledger_store_up") == 0
        assert not [name for (name, _) in samples if name == "ledger_log_position"]


def test_healthz_is_503_naming_the_views_when_a_projection_process_feeds_them_and_they_fail(
    database_url,
):
    # With `projections="off"` the server reads the views' position from their tracking row.
    with ledger_with(database_url, projections="off") as ledger:
        assert ledger.client.get("/healthz").status_code == 200
        ledger.services.views.close()
        r = ledger.client.get("/healthz")
        assert r.status_code == 503, r.text
        assert r.json()["detail"].startswith("the views did not answer: ")
        assert value(scrape(ledger), "ledger_store_up") == 0


def test_metrics_and_the_request_id_header_are_in_the_openapi_document(sqlite_url):
    with running_ledger(sqlite_url) as ledger:
        doc = ledger.client.get("/openapi.json").json()
    metrics = doc["paths"]["/metrics"]["get"]
    assert metrics["security"] == []
    assert set(metrics["responses"]) == {"200", "429"}  # 429: the per-address rate limit
    assert list(metrics["responses"]["200"]["content"]) == ["text/plain"]
    health = doc["paths"]["/healthz"]["get"]["responses"]
    assert set(health) == {"200", "429", "503"}  # 429: the per-address rate limit
    assert health["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/HealthView"
    }
    header = {"$ref": "#/components/headers/RequestId"}
    for operations in doc["paths"].values():
        for operation in operations.values():
            for response in operation["responses"].values():
                assert response["headers"]["X-Request-ID"] == header
    assert doc["components"]["headers"]["RequestId"]["schema"]["maxLength"] == 128
