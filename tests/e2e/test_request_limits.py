"""What one request may make the server hold (issue #14 item 5): its headers (431) and the
time its body takes (408); nothing is written by either."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from api import limits
from tests.support import declaration_body, onboard, running_ledger


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('limits')}/ledger.sqlite3"
    with running_ledger(url) as ledger:
        yield ledger, onboard(ledger)


def test_too_many_or_too_large_headers_are_431_before_anything_else(world):
    ledger, _ = world
    before = ledger.log_state()
    many = {f"x-filler-{n}": "1" for n in range(limits.MAX_HEADERS + 1)}
    large = {"x-filler": "a" * (limits.MAX_HEADER_BYTES + 1)}
    for extra in (many, large):
        r = ledger.client.get("/v1/zones", headers=extra)
        assert r.status_code == 431, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["status"] == 431
    assert ledger.client.get("/v1/zones", headers={"x-filler": "a" * 1000}).status_code == 200
    assert ledger.log_state() == before


def test_a_body_that_does_not_arrive_in_time_is_408_and_writes_nothing(world, monkeypatch):
    ledger, t = world
    monkeypatch.setattr(limits, "BODY_SECONDS", 0.3)
    body = httpx.Request("POST", "/", json=declaration_body(t.uscc, t.book_no)).content
    before = ledger.log_state()

    async def trickle():
        yield body[:10]  # the start, then nothing for longer than the limit
        await asyncio.sleep(2)
        yield body[10:]

    async def scenario():
        transport = httpx.ASGITransport(app=ledger.client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            headers = ledger.headers(t.token_name, key="slow-1")
            headers["content-type"] = "application/json"
            return await client.post("/v1/declarations", content=trickle(), headers=headers)

    r = asyncio.run(scenario())
    assert r.status_code == 408, r.text
    assert r.json()["type"].endswith("/body-timeout")
    assert ledger.log_state() == before


@pytest.mark.parametrize("path", ["/v1/declarations", "/v1/declarations/batch"])
def test_a_client_that_leaves_before_its_body_is_no_server_error(world, path):
    """The client closes the connection halfway through its body (a load generator stopping):
    nothing is recorded, and the server answers no 5xx (499, as proxies log it)."""
    ledger, t = world
    body = httpx.Request("POST", "/", json=declaration_body(t.uscc, t.book_no)).content
    before = ledger.log_state()
    sent: list[dict[str, object]] = []
    messages = [
        {"type": "http.request", "body": body[:10], "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    headers = ledger.headers(t.token_name, key="gone-1") | {"content-type": "application/json"}
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("t", 80),
    }
    asyncio.run(ledger.client.app(scope, receive, send))
    started = [m for m in sent if m["type"] == "http.response.start"]
    assert [m["status"] for m in started] == [499]
    assert ledger.log_state() == before


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"],
)
def test_a_body_not_sent_as_json_is_415_and_writes_nothing(world, content_type):
    ledger, t = world
    raw = httpx.Request("POST", "/", json=declaration_body(t.uscc, t.book_no)).content
    headers = ledger.headers(t.token_name, key=f"type-{content_type}")
    if content_type is not None:
        headers["Content-Type"] = content_type
    before = ledger.log_state()
    r = ledger.client.post("/v1/declarations", content=raw, headers=headers)
    assert r.status_code == 415, r.text
    assert r.json()["type"].endswith("/unsupported-media-type")
    assert ledger.log_state() == before


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "APPLICATION/JSON"])
def test_json_with_parameters_or_in_capitals_is_json(world, content_type):
    ledger, t = world
    raw = httpx.Request("POST", "/", json=declaration_body(t.uscc, t.book_no)).content
    headers = ledger.headers(t.token_name, key=f"json-{content_type}")
    headers["Content-Type"] = content_type
    r = ledger.client.post("/v1/declarations", content=raw, headers=headers)
    assert r.status_code == 201, r.text
