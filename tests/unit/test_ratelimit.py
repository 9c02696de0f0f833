"""The rate limiter's parts (api/ratelimit.py): the token bucket's invariants, its bounded
memory, whose address a request is, and the settings read from the environment."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api import ratelimit
from api.ratelimit import Buckets, ClientAddress, RateLimit, parse_networks
from api.settings import RateLimits, Settings
from domain.errors import ValidationFailed

rates = st.floats(min_value=0.01, max_value=1000, allow_nan=False)
capacities = st.integers(min_value=1, max_value=50).map(float)
steps = st.lists(st.floats(min_value=0, max_value=5, allow_nan=False), max_size=300)


@given(rate=rates, capacity=capacities, gaps=steps)
def test_a_bucket_never_grants_more_than_its_burst_plus_its_rate(rate, capacity, gaps):
    buckets = Buckets(rate, capacity, size=4)
    now, granted = 0.0, 0
    for gap in gaps:
        now += gap
        if buckets.take("k", now) == 0.0:
            granted += 1
        # Over [0, now]: the burst and what the rate refilled since, never more.
        assert granted <= capacity + rate * now + 1e-6


@given(rate=rates, capacity=capacities, taken=st.integers(min_value=0, max_value=100))
def test_the_wait_a_refusal_names_is_enough_and_not_too_long(rate, capacity, taken):
    buckets = Buckets(rate, capacity, size=4)
    for _ in range(taken):
        buckets.take("k", 0.0)
    wait = buckets.take("k", 0.0)
    if taken < capacity:
        assert wait == 0.0
        return
    assert wait > 0
    assert buckets.wait("k", wait * 0.99) > 0  # not there before it
    assert buckets.take("k", wait * (1 + 1e-9) + 1e-12) == 0.0  # there after it


def test_a_full_burst_then_a_refusal_then_the_rate():
    buckets = Buckets(rate=2.0, capacity=3.0, size=4)
    assert [buckets.take("a", 0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a", 0.0) == pytest.approx(0.5)
    assert buckets.take("b", 0.0) == 0.0  # another key: its own bucket
    assert buckets.take("a", 0.5) == 0.0
    assert buckets.take("a", 0.5) == pytest.approx(0.5)


def test_a_cost_is_taken_whole_or_not_at_all():
    buckets = Buckets(rate=2.0, capacity=10.0, size=4)
    assert buckets.take("k", 0.0, 4) == 0.0
    assert buckets.take("k", 0.0, 7) == pytest.approx(0.5)  # 6 left: the 7th in half a second
    assert buckets.take("k", 0.0, 6) == 0.0  # the refusal took none
    assert buckets.take("k", 0.5, 1) == 0.0


def test_tokens_given_back_never_fill_a_bucket_beyond_its_capacity():
    buckets = Buckets(rate=1.0, capacity=5.0, size=4)
    buckets.give("never-seen", 0.0, 3)
    assert len(buckets) == 0  # no bucket made: it would be full anyway
    buckets.take("k", 0.0, 4)
    buckets.give("k", 0.0, 3)
    assert buckets.take("k", 0.0, 4) == 0.0
    buckets.give("k", 10.0, 3)  # refilled to 5 by then
    assert buckets.take("k", 10.0, 5) == 0.0
    assert buckets.take("k", 10.0, 1) > 0


def test_wait_takes_nothing_and_makes_no_bucket():
    buckets = Buckets(rate=1.0, capacity=1.0, size=4)
    assert buckets.wait("never-seen", 0.0) == 0.0
    assert len(buckets) == 0
    buckets.take("k", 0.0)
    assert buckets.wait("k", 0.0) == pytest.approx(1.0)
    assert buckets.wait("k", 0.0) == pytest.approx(1.0)  # still: wait took nothing


@given(size=st.integers(min_value=1, max_value=64), keys=st.lists(st.integers(), max_size=500))
def test_the_buckets_never_outgrow_their_size(size, keys):
    buckets = Buckets(rate=1.0, capacity=1.0, size=size)
    for n, key in enumerate(keys):
        buckets.take(key, float(n))
        assert len(buckets) <= size


def test_the_least_recently_used_bucket_goes_first():
    buckets = Buckets(rate=1.0, capacity=1.0, size=2)
    buckets.take("old", 0.0)
    buckets.take("kept", 0.0)
    buckets.take("old", 0.0)  # used again: now the newer of the two
    buckets.take("new", 0.0)
    assert "old" in buckets and "new" in buckets and "kept" not in buckets


# -- whose request it is -------------------------------------------------------------------


def _scope(peer: str, forwarded: str | None = None) -> dict:
    headers = [] if forwarded is None else [(b"x-forwarded-for", forwarded.encode())]
    return {"type": "http", "client": (peer, 40000), "headers": headers}


def test_without_trusted_proxies_x_forwarded_for_is_never_believed():
    address = ClientAddress(())
    assert address(_scope("203.0.113.9", "198.51.100.1")) == "203.0.113.9"


def test_a_trusted_proxy_names_the_client_and_a_client_cannot_spoof_through_it():
    address = ClientAddress(parse_networks(["10.0.0.0/8", "::1"]))
    # The proxy appended the address it saw; the left part is whatever the client sent.
    assert address(_scope("10.1.2.3", "1.2.3.4, 203.0.113.7")) == "203.0.113.7"
    assert address(_scope("10.1.2.3", "203.0.113.7, 10.9.9.9")) == "203.0.113.7"  # two proxies
    assert address(_scope("::1", "2001:db8::5")) == "2001:db8::5"
    assert address(_scope("10.1.2.3", "")) == "10.1.2.3"  # nothing forwarded: the proxy
    assert address(_scope("10.1.2.3", "10.0.0.1")) == "10.1.2.3"  # only proxies: the peer
    # From a peer that is not a proxy, the header is the client's own word: ignored.
    assert address(_scope("192.0.2.1", "203.0.113.7")) == "192.0.2.1"
    assert address({"type": "http", "client": None, "headers": []}) == "unknown"


def test_an_entry_that_is_not_an_address_or_network_is_refused():
    with pytest.raises(ValueError):
        parse_networks(["proxy.example"])


def test_many_forwarded_addresses_keep_memory_bounded(monkeypatch):
    """An attacker behind a trusted proxy with 5,000 addresses (or 5,000 made-up tokens) makes
    at most `buckets` buckets per table."""
    monkeypatch.setattr(ratelimit, "clock", lambda: 0.0)
    limits = RateLimits(buckets=50, trusted_proxies=("127.0.0.1",))

    async def unauthorized(scope, receive, send):
        await send({"type": "http.response.start", "status": 401, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    limiter = RateLimit(unauthorized, limits)

    async def noop(message):
        return None

    async def run() -> None:
        for n in range(5000):
            scope = _scope("127.0.0.1", f"198.51.{n // 250}.{n % 250}")
            scope["headers"].append((b"authorization", f"Bearer made-up-{n}".encode()))
            await limiter(scope, noop, noop)

    asyncio.run(run())
    assert len(limiter.addresses) <= 50
    assert len(limiter.failures) <= 50
    assert len(limiter.keys) == 0  # refused tokens never get a key's bucket


# -- settings ------------------------------------------------------------------------------

ENV = (
    "LEDGER_RATE_ADDRESS_PER_SECOND",
    "LEDGER_RATE_ADDRESS_BURST",
    "LEDGER_RATE_KEY_PER_SECOND",
    "LEDGER_RATE_KEY_BURST",
    "LEDGER_AUTH_FAILURES_PER_MINUTE",
    "LEDGER_AUTH_FAILURES_BURST",
    "LEDGER_RATE_BUCKETS",
    "LEDGER_TRUSTED_PROXIES",
)


def test_the_limits_are_on_by_default(monkeypatch):
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    for limits in (RateLimits(), Settings().rate_limits, Settings.from_env().rate_limits):
        assert limits == RateLimits()
        assert limits.address_per_second > 0 and limits.key_per_second > 0
        assert 0 < limits.auth_failures_per_minute <= 10 and limits.auth_failures_burst <= 10
        assert limits.trusted_proxies == ()
        assert 0 < limits.buckets < math.inf


def test_the_limits_are_read_from_the_environment(monkeypatch):
    values = ("7", "8", "9", "10", "3", "4", "500", "10.0.0.1, 192.168.0.0/16")
    for name, value in zip(ENV, values, strict=True):
        monkeypatch.setenv(name, value)
    assert Settings.from_env().rate_limits == RateLimits(
        address_per_second=7,
        address_burst=8,
        key_per_second=9,
        key_burst=10,
        auth_failures_per_minute=3,
        auth_failures_burst=4,
        buckets=500,
        trusted_proxies=("10.0.0.1", "192.168.0.0/16"),
    )


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "many"])
def test_a_limit_that_is_not_a_number_at_least_zero_stops_the_start(monkeypatch, value):
    monkeypatch.setenv("LEDGER_RATE_KEY_PER_SECOND", value)
    with pytest.raises(ValueError):
        Settings.from_env()


def test_a_rate_of_zero_turns_that_limit_off(monkeypatch):
    monkeypatch.setattr(ratelimit, "clock", lambda: 0.0)
    limiter = RateLimit(lambda *a: None, RateLimits(address_per_second=0, address_burst=1))
    assert all(limiter._admit("192.0.2.1", None, 0.0) is None for _ in range(100))


# -- a request that costs more than one: a batch (ratelimit.charge) ------------------------------


def _charging_app(limits: RateLimits) -> RateLimit:
    """The limiter around a stand-in for the routes: `/one` answers 200; `/batch/<n>` charges
    n as a batch route does (api/batch.py), 422 when `charge` says the batch can never fit."""

    async def app(scope, receive, send):
        status = 200
        if scope["path"].startswith("/batch/"):
            try:
                refused = ratelimit.charge(scope, int(scope["path"].split("/")[2]), "$.items")
            except ValidationFailed as e:
                assert e.errors[0].loc == "$.items" and e.rule == ratelimit.TOO_LARGE_RULE
                status = 422
            else:
                if refused is not None:
                    await refused(scope, receive, send)
                    return
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    return RateLimit(app, limits)


def _send(limiter: RateLimit, path: str) -> tuple[int, dict[bytes, bytes], bytes]:
    scope = _scope("192.0.2.1")
    scope.update(path=path, method="POST")
    scope["headers"].append((b"authorization", b"Bearer the-key"))
    answer: dict[str, Any] = {}

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
            answer["headers"] = dict(message["headers"])
        else:
            answer["body"] = answer.get("body", b"") + message.get("body", b"")

    asyncio.run(limiter(scope, receive, send))
    return answer["status"], answer["headers"], answer["body"]


# Requests, each after a pause: a single one (cost None) or a batch of n items; `retry`: after
# a batch's 429, wait its Retry-After and send it again at once.
requests = st.lists(
    st.tuples(
        st.floats(min_value=0, max_value=3, allow_nan=False),
        st.none() | st.integers(min_value=1, max_value=25),
        st.booleans(),
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(
    rate=st.floats(min_value=0.05, max_value=20, allow_nan=False),
    capacity=st.integers(min_value=1, max_value=20).map(float),
    steps=requests,
)
def test_singles_and_batches_never_get_more_items_than_the_keys_allowance(rate, capacity, steps):
    """Over any sequence of single requests and batches, the items let through never exceed
    the key's burst plus what its rate refilled since; a batch larger than the burst is 422
    every time; a batch refused 429 fits after its Retry-After."""
    now = [0.0]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ratelimit, "clock", lambda: now[0])
        patch.setattr(ratelimit, "current_actor", lambda: "the key's name")
        _run(rate, capacity, steps, now)


def _run(rate: float, capacity: float, steps: list[Any], now: list[float]) -> None:
    limits = RateLimits(
        address_per_second=0, key_per_second=rate, key_burst=capacity, auth_failures_per_minute=0
    )
    limiter = _charging_app(limits)
    granted = 0
    for gap, items, retry in steps:
        now[0] += gap
        path = "/one" if items is None else f"/batch/{items}"
        status, headers, body = _send(limiter, path)
        cost = 1 if items is None else items
        if items is not None and items > capacity:
            assert status in (422, 429)  # 429 only when the request's one token is missing
        if status == 200:
            granted += cost
        if status == 422:
            granted += 1  # the request itself, as any request refused for its content
        if status == 429 and retry:
            now[0] += int(headers[b"retry-after"])
            retried, _, _ = _send(limiter, path)
            if b"for a batch of" in body:  # the batch's own wait: the whole batch fits
                assert retried == 200
            else:  # the request's one token (the body unread): then the batch is weighed
                assert retried in (200, 422, 429)
            granted += cost if retried == 200 else 1 if retried == 422 else 0
        # Over [0, now]: the burst and what the rate refilled since, never more.
        assert granted <= capacity + rate * now[0] + 1e-6
