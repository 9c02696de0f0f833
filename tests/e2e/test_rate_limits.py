"""Rate limits with their default settings, and the token checked before the body (issue #14
item 5): 429 problem+json with Retry-After, nothing written by a refused request, a guesser
of tokens stopped after a handful, a bogus token refused without its body being read.

The buckets' clock is stopped (`ratelimit.clock`), so every count here is exact.
"""

from __future__ import annotations

import asyncio
import socket
import time

import httpx
import pytest

from api import limits as request_limits
from api import ratelimit
from api.settings import RateLimits
from tests.support import declaration_body, new_key, onboard, running_ledger, serving

DEFAULTS = RateLimits()


class StoppedClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> StoppedClock:
    stopped = StoppedClock()
    monkeypatch.setattr(ratelimit, "clock", stopped)
    return stopped


@pytest.fixture
def world(tmp_path, clock):
    with running_ledger(f"sqlite:///{tmp_path}/ledger.sqlite3", limits=DEFAULTS) as ledger:
        yield ledger, onboard(ledger), clock


def assert_429(r, detail: str, retry_after: int) -> None:
    assert r.status_code == 429, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["retry-after"] == str(retry_after)
    problem = r.json()
    assert problem["status"] == 429 and problem["type"].endswith("/rate-limited")
    assert detail in problem["detail"]


def test_bad_tokens_are_429_after_a_handful_and_are_no_longer_looked_up(world, monkeypatch):
    ledger, t, clock = world
    lookups = []
    real = ledger.services.keys.authenticate
    monkeypatch.setattr(
        ledger.services.keys, "authenticate", lambda token: lookups.append(token) or real(token)
    )
    before = ledger.log_state()
    body = declaration_body(t.uscc, t.book_no)
    statuses = []
    for n in range(150):  # under the address's burst: only the failure limit can answer 429
        headers = {"Authorization": f"Bearer guess-{n}", "Idempotency-Key": new_key()}
        r = ledger.client.post("/v1/declarations", json=body, headers=headers)
        statuses.append(r.status_code)
    burst = int(DEFAULTS.auth_failures_burst)
    assert statuses == [401] * burst + [429] * (150 - burst)
    assert len(lookups) == burst  # the rest never reached the keys table
    refill = 60 / DEFAULTS.auth_failures_per_minute
    assert_429(r, "failed authentications", retry_after=round(refill))
    assert ledger.log_state() == before
    # The refill: one more guess after Retry-After, then 429 again.
    clock.now += refill
    guess = ledger.client.get("/v1/declarations", headers={"Authorization": "Bearer again"})
    assert guess.status_code == 401
    assert (
        ledger.client.get("/v1/declarations", headers={"Authorization": "Bearer more"}).status_code
        == 429
    )
    assert len(lookups) == burst + 1


def test_a_made_up_token_is_not_made_known_by_a_route_that_never_checks_it(world):
    """A public route answers 200 whatever the token: that must not turn a guess into a
    known key that escapes the failure limit."""
    ledger, _, _ = world
    guesses = [{"Authorization": f"Bearer guess-{n}"} for n in range(30)]
    for headers in guesses:
        assert ledger.client.get("/v1/zones", headers=headers).status_code == 200
    statuses = [ledger.client.get("/v1/declarations", headers=h).status_code for h in guesses]
    burst = int(DEFAULTS.auth_failures_burst)
    assert statuses == [401] * burst + [429] * (len(guesses) - burst)


def test_a_key_accepted_before_keeps_working_while_its_address_is_blocked(world):
    ledger, t, _ = world
    assert ledger.get(f"/v1/enterprises/{t.uscc}", t.token_name).status_code == 200
    for n in range(int(DEFAULTS.auth_failures_burst) + 5):
        ledger.client.get("/v1/declarations", headers={"Authorization": f"Bearer guess-{n}"})
    assert ledger.get(f"/v1/enterprises/{t.uscc}", t.token_name).status_code == 200
    body = declaration_body(t.uscc, t.book_no)
    assert ledger.post("/v1/declarations", t.token_name, body, key=new_key()).status_code == 201
    # A key this address never used is looked up only when the address may fail again.
    assert_429(ledger.get("/v1/declarations", "auditor"), "failed authentications", 6)
    # Missing tokens are not guesses: 401 as before, without a lookup.
    assert ledger.client.get("/v1/declarations").status_code == 401


def test_one_key_is_limited_to_its_rate_and_the_refused_write_changes_nothing(world):
    ledger, t, clock = world
    path = f"/v1/enterprises/{t.uscc}"
    burst = int(DEFAULTS.key_burst)
    statuses = [ledger.get(path, t.token_name).status_code for _ in range(burst)]
    assert statuses == [200] * burst
    before = ledger.log_state()
    body = declaration_body(t.uscc, t.book_no)
    refused = ledger.post("/v1/declarations", t.token_name, body, key=new_key())
    assert_429(refused, "this key", retry_after=1)
    assert ledger.log_state() == before
    # Another key from the same address is not held back by this one.
    assert ledger.get(path, "admin").status_code == 200
    clock.now += 1  # Retry-After: a second's worth of requests back
    assert ledger.post("/v1/declarations", t.token_name, body, key=new_key()).status_code == 201
    again = [ledger.get(path, t.token_name).status_code for _ in range(burst)]
    assert again.count(200) == int(DEFAULTS.key_per_second) - 1
    assert again[-1] == 429


def test_one_address_is_limited_to_its_rate_on_every_route(world):
    ledger, _, clock = world
    burst = int(DEFAULTS.address_burst)
    clock.now += burst / DEFAULTS.address_per_second  # full again after onboarding's requests
    statuses = [ledger.client.get("/v1/zones").status_code for _ in range(burst)]
    assert statuses == [200] * burst
    assert_429(ledger.client.get("/v1/zones"), "this address", retry_after=1)
    assert_429(ledger.get("/v1/declarations", "admin"), "this address", retry_after=1)
    clock.now += 1
    again = [ledger.client.get("/v1/zones").status_code for _ in range(burst)]
    assert again.count(200) == int(DEFAULTS.address_per_second)


# -- the token before the body -------------------------------------------------------------


def _post_without_body(base: str, token: str, length: int = 100_000) -> bytes:
    """Send a write's headers announcing `length` bytes, then nothing: what comes back within
    5 s (the body timeout is 30 s)."""
    host, port = base.removeprefix("http://").split(":")
    head = (
        f"POST /v1/declarations HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: Bearer {token}\r\nIdempotency-Key: {new_key()}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    )
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(head.encode())
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
        return answer


def test_a_bogus_token_is_401_at_once_while_its_body_stalls(tmp_path):
    assert request_limits.BODY_SECONDS >= 30
    with serving(f"sqlite:///{tmp_path}/ledger.sqlite3") as (base, ledger):
        before = ledger.log_state()
        started = time.monotonic()
        answer = _post_without_body(base, "bogus-token")
        assert answer.startswith(b"HTTP/1.1 401 "), answer
        # A role that may not write declarations is refused before its body too.
        assert _post_without_body(base, ledger.tokens["officer"]).startswith(b"HTTP/1.1 403 ")
        assert time.monotonic() - started < 5
        assert ledger.log_state() == before


def test_no_byte_of_the_body_is_read_for_a_bogus_token(tmp_path):
    with running_ledger(f"sqlite:///{tmp_path}/ledger.sqlite3") as ledger:
        t = onboard(ledger)
        raw = httpx.Request("POST", "/", json=declaration_body(t.uscc, t.book_no)).content

        async def send(token: str) -> tuple[int, int]:
            read = 0

            async def counted():
                nonlocal read
                for start in range(0, len(raw), 64):
                    read += len(raw[start : start + 64])
                    yield raw[start : start + 64]

            transport = httpx.ASGITransport(app=ledger.client.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                headers = {
                    "Authorization": f"Bearer {token}",
                    "Idempotency-Key": new_key(),
                    "Content-Type": "application/json",
                }
                r = await client.post("/v1/declarations", content=counted(), headers=headers)
            return r.status_code, read

        assert asyncio.run(send("bogus")) == (401, 0)
        assert asyncio.run(send(ledger.tokens["auditor"])) == (403, 0)
        assert asyncio.run(send(ledger.tokens[t.token_name])) == (201, len(raw))


def test_every_route_documents_429_with_retry_after():
    from api.app import create_app
    from api.settings import Settings

    document = create_app(Settings(database_url="sqlite:///:memory:")).openapi()
    operations = [
        (method, path, operation)
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    ]
    assert len(operations) > 30
    for method, path, operation in operations:
        answer = operation["responses"].get("429")
        assert answer is not None, f"{method} {path}"
        assert "Retry-After" in answer["headers"], f"{method} {path}"
        schema = answer["content"]["application/problem+json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/Problem"}


def test_over_http_with_the_default_limits_a_flood_of_bad_tokens_is_429(tmp_path):
    """The issue's probe, shortened: bad tokens as fast as one client can send them to a real
    server (real clock, real address): a handful of 401s, then 429s."""
    with serving(f"sqlite:///{tmp_path}/ledger.sqlite3", limits=DEFAULTS) as (base, ledger):
        before = ledger.log_state()
        started = time.monotonic()
        with httpx.Client(base_url=base) as client:
            statuses = [
                client.get("/v1/declarations", headers={"Authorization": f"Bearer bad-{n}"})
                for n in range(300)
            ]
        elapsed = time.monotonic() - started
        refused = [r for r in statuses if r.status_code == 429]
        looked_up = [r for r in statuses if r.status_code == 401]
        assert len(refused) + len(looked_up) == len(statuses)
        burst = int(DEFAULTS.auth_failures_burst)
        assert all(r.status_code == 401 for r in statuses[:burst])
        allowed = burst + elapsed * DEFAULTS.auth_failures_per_minute / 60
        assert burst <= len(looked_up) <= allowed + 1
        assert all(int(r.headers["retry-after"]) >= 1 for r in refused)
        assert ledger.log_state() == before
