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
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api import i18n, ratelimit
from api import limits as request_limits
from api.batch import MAX_ITEMS
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
    # One address sends at most its own burst (200) of requests: the key's burst (500) is
    # spent by single requests and a batch, each of its items one request.
    singles = int(DEFAULTS.address_burst) // 2
    statuses = [ledger.get(path, t.token_name).status_code for _ in range(singles)]
    assert statuses == [200] * singles
    assert (
        ledger.post(MOVEMENTS, t.token_name, refused_movements(burst - singles)).status_code == 207
    )
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


# -- batches: each item one request (decision 0019, "Batches") ------------------------------

SMALL = RateLimits(key_per_second=2.0, key_burst=10.0)
DECLARATIONS = "/v1/declarations/batch"
MOVEMENTS = "/v1/movements/batch"


@pytest.fixture
def small(tmp_path, clock):
    with running_ledger(f"sqlite:///{tmp_path}/ledger.sqlite3", limits=SMALL) as ledger:
        t = onboard(ledger)
        clock.now += 100  # every bucket full again after onboarding's requests
        yield ledger, t, clock


def declarations(t, n: int) -> dict:
    items = [
        {"idempotency_key": new_key(), "body": declaration_body(t.uscc, t.book_no)}
        for _ in range(n)
    ]
    return {"items": items}


def refused_movements(n: int) -> dict:
    """Items each refused alone (422: no such kind), so cheap: the batch writes nothing."""
    return {"items": [{"idempotency_key": new_key(), "body": {"kind": "x"}} for _ in range(n)]}


def requests_left(ledger, who: str) -> int:
    """How many more requests the key's bucket lets through now (the clock is stopped): it
    is empty afterwards."""
    n = 0
    while ledger.get("/v1/declarations", who).status_code == 200:
        n += 1
    return n


def test_a_batch_of_n_items_costs_its_key_n_requests(small):
    ledger, t, clock = small
    r = ledger.post(DECLARATIONS, t.token_name, declarations(t, 4))
    assert r.status_code == 207
    assert [x["status"] for x in r.json()["results"]] == [201] * 4
    assert requests_left(ledger, t.token_name) == 10 - 4
    # Items refused alone count too, as each refused request does: the other batch route.
    clock.now += 5
    r = ledger.post(MOVEMENTS, t.token_name, refused_movements(3))
    assert [x["status"] for x in r.json()["results"]] == [422] * 3
    assert requests_left(ledger, t.token_name) == 10 - 3


def test_a_key_whose_first_request_is_a_batch_pays_for_it_once(small):
    ledger, t, clock = small
    fresh = ledger.issue("batch-first", "enterprise", enterprise=t.uscc)
    headers = {"Authorization": f"Bearer {fresh}"}
    r = ledger.client.post(MOVEMENTS, json=refused_movements(10), headers=headers)
    assert r.status_code == 207
    assert_429(ledger.get("/v1/declarations", "batch-first"), "this key", retry_after=1)
    clock.now += 0.5  # one request's worth: the batch was charged 10, not 10 and then 1 more
    assert requests_left(ledger, "batch-first") == 1


def test_replayed_items_count_as_the_single_routes_replays_do(small):
    ledger, t, clock = small
    batch = declarations(t, 3)
    first = ledger.post(DECLARATIONS, t.token_name, batch)
    again = ledger.post(DECLARATIONS, t.token_name, batch)
    assert [x.get("replayed") for x in again.json()["results"]] == [True] * 3
    assert again.json()["results"] == [{**x, "replayed": True} for x in first.json()["results"]]
    assert requests_left(ledger, t.token_name) == 10 - 6
    # The single route: a replay is a request like any other.
    clock.now += 5
    body, key = declaration_body(t.uscc, t.book_no), new_key()
    assert ledger.post("/v1/declarations", t.token_name, body, key=key).status_code == 201
    replay = ledger.post("/v1/declarations", t.token_name, body, key=key)
    assert replay.headers["Idempotency-Replayed"] == "true"
    assert requests_left(ledger, t.token_name) == 10 - 2


def test_a_batch_the_key_cannot_pay_for_now_is_429_whole_and_writes_nothing(small):
    ledger, t, clock = small
    assert all(ledger.get("/v1/declarations", t.token_name).status_code == 200 for _ in range(7))
    before = ledger.log_state()
    batch = declarations(t, 9)
    refused = ledger.post(DECLARATIONS, t.token_name, batch)
    # 3 left, 9 wanted: 6 more at 2 a second.
    assert_429(refused, "for a batch of 9 items", retry_after=3)
    assert ledger.log_state() == before
    clock.now += 2  # not yet: the wait named is the whole batch's, not one request's
    assert_429(ledger.post(DECLARATIONS, t.token_name, batch), "batch of 9", retry_after=1)
    assert ledger.log_state() == before
    clock.now += 1
    r = ledger.post(DECLARATIONS, t.token_name, batch)
    assert r.status_code == 207
    # Nothing of it had been recorded: every item is new, none a replay.
    assert [(x["status"], x.get("replayed")) for x in r.json()["results"]] == [(201, None)] * 9
    # The refused tries cost nothing: 3 + 3 s at 2 a second = 9, all taken by the batch.
    assert requests_left(ledger, t.token_name) == 0


def test_a_batch_larger_than_the_keys_burst_is_422_naming_the_limit(small):
    ledger, t, clock = small
    before = ledger.log_state()
    r = ledger.post(DECLARATIONS, t.token_name, declarations(t, 11))
    assert r.status_code == 422, r.text
    assert "retry-after" not in r.headers  # waiting would not help
    problem = r.json()
    assert problem["rule"] == "batch_exceeds_rate_limit"
    assert problem["errors"][0]["loc"] == "$.items"
    assert "11 items" in problem["errors"][0]["msg"]
    assert "at most 10" in problem["errors"][0]["msg"]
    assert "2 a second, bursts of 10" in problem["errors"][0]["msg"]
    assert ledger.log_state() == before
    # In Chinese too, every word of it.
    zh = ledger.client.post(
        MOVEMENTS,
        json=refused_movements(11),
        headers={**ledger.headers(t.token_name), "Accept-Language": "zh-CN"},
    )
    assert zh.status_code == 422 and zh.headers["Content-Language"] == "zh-CN"
    assert i18n.untranslated_in_answer(zh.json()["errors"][0]["msg"]) == []
    assert "最多 10 项" in zh.json()["errors"][0]["msg"]
    # Each refusal was one request, as any request refused for its content; a batch of the
    # burst goes through on a full bucket.
    assert requests_left(ledger, t.token_name) == 10 - 2
    clock.now += 5
    assert ledger.post(DECLARATIONS, t.token_name, declarations(t, 10)).status_code == 207


def test_with_the_default_limits_a_full_batch_fits_the_keys_burst_and_spends_it(world):
    ledger, t, clock = world
    assert int(DEFAULTS.key_burst) == MAX_ITEMS
    clock.now += 100
    assert ledger.post(MOVEMENTS, t.token_name, refused_movements(MAX_ITEMS)).status_code == 207
    assert_429(ledger.get("/v1/declarations", t.token_name), "this key", retry_after=1)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from([0.0, 0.25, 0.5, 1.0, 3.0]),
            st.none() | st.integers(min_value=1, max_value=6),
        ),
        min_size=1,
        max_size=10,
    )
)
def test_declarations_recorded_never_exceed_the_keys_allowance(tmp_path_factory, steps):
    """Property: over any sequence of single submissions and batches (None: a single one),
    the declarations a key gets recorded never exceed its burst plus its rate times the time
    gone by; a batch over the burst is 422; a refused request records nothing."""
    limits = RateLimits(key_per_second=1.0, key_burst=4.0)
    url = f"sqlite:///{tmp_path_factory.mktemp('allowance')}/ledger.sqlite3"
    clock = StoppedClock()
    with pytest.MonkeyPatch.context() as patch, running_ledger(url, limits=limits) as ledger:
        patch.setattr(ratelimit, "clock", clock)
        t = onboard(ledger)
        clock.now += 100
        start, recorded = clock.now, 0
        for gap, items in steps:
            clock.now += gap
            before = ledger.log_state()
            if items is None:
                body = declaration_body(t.uscc, t.book_no)
                r = ledger.post("/v1/declarations", t.token_name, body, key=new_key())
                recorded += r.status_code == 201
            else:
                r = ledger.post(DECLARATIONS, t.token_name, declarations(t, items))
                if items > limits.key_burst:
                    assert r.status_code in (422, 429)
                if r.status_code == 207:
                    recorded += sum(x["status"] == 201 for x in r.json()["results"])
            if r.status_code in (422, 429):
                assert ledger.log_state() == before
            assert recorded <= limits.key_burst + limits.key_per_second * (clock.now - start)
