"""Rate limits (issue #14 item 5, decision 0019): token buckets per client address, per key
and, hardest, per address for failed authentication; 429 problem+json with `Retry-After`.

Pure ASGI, on the event loop only (no lock: one thread touches the buckets). Each table of
buckets is an LRU of bounded size, so a client with many addresses or many made-up tokens
cannot grow the server's memory; a bucket that is dropped comes back full, which is what an
idle bucket is anyway.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.observability import current_actor
from api.problems import TYPE_BASE, Problem, problem_response
from api.settings import RateLimits
from domain.errors import FieldError, ValidationFailed

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_FORWARDED_BYTES = 1024  # an X-Forwarded-For longer than this is cut (its left end)
# Seconds, for the buckets (a module attribute: the tests stop it).
clock: Callable[[], float] = time.monotonic
# Where the middleware leaves a request's `Charge` in its scope, for `charge`.
SCOPE_KEY = "ledger.rate_limit"
# The rule of the 422 for a request that costs more than a key's bucket ever holds.
TOO_LARGE_RULE = "batch_exceeds_rate_limit"


class Buckets:
    """Token buckets by key: `capacity` tokens, refilled at `rate` per second; at most
    `size` buckets, the least recently used dropped first."""

    def __init__(self, rate: float, capacity: float, size: int) -> None:
        self.rate = rate
        self.capacity = capacity
        self.size = size
        self._buckets: OrderedDict[object, list[float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def __contains__(self, key: object) -> bool:
        return key in self._buckets

    def _level(self, key: object, now: float) -> list[float]:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = [self.capacity, now]
            self._buckets[key] = bucket
            if len(self._buckets) > self.size:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            bucket[0] = min(self.capacity, bucket[0] + (now - bucket[1]) * self.rate)
            bucket[1] = now
        return bucket

    def take(self, key: object, now: float, cost: float = 1.0) -> float:
        """Take `cost` tokens (at most `capacity`): 0.0 when there were that many, else the
        seconds until there are, taking none."""
        bucket = self._level(key, now)
        if bucket[0] >= cost:
            bucket[0] -= cost
            return 0.0
        return (cost - bucket[0]) / self.rate

    def give(self, key: object, now: float, tokens: float) -> None:
        """Put back tokens taken before (never above `capacity`; a key without a bucket has a
        full one)."""
        if key in self._buckets:
            bucket = self._level(key, now)
            bucket[0] = min(self.capacity, bucket[0] + tokens)

    def wait(self, key: object, now: float) -> float:
        """Seconds until the bucket has a token (0.0: it has one), taking none. A key without
        a bucket has a full one, and gets none made for it."""
        if key not in self._buckets:
            return 0.0
        bucket = self._level(key, now)
        return 0.0 if bucket[0] >= 1.0 else (1.0 - bucket[0]) / self.rate


def parse_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """`127.0.0.1`, `10.0.0.0/8`, `::1`: ValueError for anything else."""
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries)


class ClientAddress:
    """The client's address: the peer's, or, when the peer is a trusted proxy, the rightmost
    address of `X-Forwarded-For` that is not a trusted proxy (the left part of the header is
    whatever the client sent, so it is never believed)."""

    def __init__(self, trusted: tuple[Network, ...]) -> None:
        self.trusted = trusted

    def _is_trusted(self, text: str) -> bool:
        try:
            address: Address = ipaddress.ip_address(text)
        except ValueError:
            return False
        return any(address in network for network in self.trusted)

    def __call__(self, scope: Scope) -> str:
        client = scope.get("client")
        peer = str(client[0]) if client else "unknown"
        if not self.trusted or not self._is_trusted(peer):
            return peer
        forwarded = b",".join(v for k, v in scope["headers"] if k == b"x-forwarded-for")
        hops = [h.strip() for h in forwarded[-MAX_FORWARDED_BYTES:].decode("latin-1").split(",")]
        for hop in reversed([h for h in hops if h]):
            if not self._is_trusted(hop):
                return hop
        return peer


def _bearer(scope: Scope) -> bytes | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.partition(b" ")
            token = token.strip()
            if scheme.lower() == b"bearer" and token:
                return token
            return None
    return None


def token_digest(token: bytes) -> bytes:
    # The buckets keep a digest of the token, not the token.
    return hashlib.blake2b(token, digest_size=16).digest()


class Charge:
    """A request's account with its key's bucket: the digest of its token and the tokens it
    has paid so far (one when the middleware took one, none when the token was not known)."""

    def __init__(self, limiter: RateLimit, token_id: bytes, paid: float) -> None:
        self.limiter = limiter
        self.token_id = token_id
        self.paid = paid


def charge(scope: Scope, cost: int, loc: str) -> Response | None:
    """Charge the request's key `cost` tokens in all instead of the one every request costs:
    a batch of n items costs n, what its items sent alone would (decision 0019, "Batches").
    A route calls it once it knows the cost, after authentication accepted the token and
    before it decides anything, on the event loop (the buckets' only thread).

    None: charged (or no key limit). A 429 answer when the bucket cannot pay the whole cost
    now: the request then costs nothing, not even its one token, and `Retry-After` is the wait
    until the whole cost fits. ValidationFailed at `loc` (rule `TOO_LARGE_RULE`) when the cost
    is more than the bucket ever holds: no wait would help, the request must be smaller."""
    account = scope.get(SCOPE_KEY)
    if not isinstance(account, Charge):
        return None
    return account.limiter.charge(account, cost, loc)


class RateLimit:
    """The middleware. Per request, in this order: the address's bucket; with a token, the
    key's bucket when the token was accepted before, else the address's failure bucket must
    not be empty. After the answer: a 401 to a request with a token takes from the address's
    failure bucket; a token that authentication accepted (`observability.current_actor`:
    not merely a 2xx from a route that never looked at it) gets a key's bucket. A request
    with a token carries its `Charge` in its scope (`SCOPE_KEY`): a route whose request costs
    more than one (a batch) charges the rest with `charge`."""

    def __init__(self, app: ASGIApp, limits: RateLimits) -> None:
        self.app = app
        size = limits.buckets
        self.address = ClientAddress(parse_networks(limits.trusted_proxies))
        self.addresses = Buckets(limits.address_per_second, limits.address_burst, size)
        self.keys = Buckets(limits.key_per_second, limits.key_burst, size)
        self.failures = Buckets(
            limits.auth_failures_per_minute / 60.0, limits.auth_failures_burst, size
        )
        self.on = (
            limits.address_per_second > 0,
            limits.key_per_second > 0,
            limits.auth_failures_per_minute > 0,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        now = clock()
        address = self.address(scope)
        token = _bearer(scope)
        token_id = token_digest(token) if token is not None else None
        paid = 1.0 if self.on[1] and token_id in self.keys else 0.0
        refused = self._admit(address, token_id, now)
        if refused is not None:
            await _too_many(*refused)(scope, receive, send)
            return
        if token_id is None:
            await self.app(scope, receive, send)
            return
        scope[SCOPE_KEY] = Charge(self, token_id, paid)
        status = 0

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await self.app(scope, receive, watch)
        self._after(address, token_id, status, current_actor() is not None)

    def _admit(
        self, address: str, token_id: bytes | None, now: float
    ) -> tuple[str, Buckets, float] | None:
        """None, or who asked too often (`RATE_MESSAGES`), its buckets and the wait."""
        address_on, key_on, failures_on = self.on
        if address_on and (wait := self.addresses.take(address, now)):
            return "address", self.addresses, wait
        if token_id is None:
            return None
        if token_id in self.keys:
            if key_on and (wait := self.keys.take(token_id, now)):
                return "key", self.keys, wait
        elif failures_on and (wait := self.failures.wait(address, now)):
            return "failures", self.failures, wait
        return None

    def charge(self, account: Charge, cost: int, loc: str) -> Response | None:
        """`charge`: the whole cost from the key's bucket, or nothing (what it paid before
        given back)."""
        keys = self.keys
        if not self.on[1]:
            return None
        if cost > keys.capacity:
            per, rate = _per(keys)
            raise ValidationFailed(
                FieldError(
                    loc,
                    RATE_MESSAGES[f"too-large/{per}"].format(
                        items=cost, rate=rate, burst=keys.capacity
                    ),
                    TOO_LARGE_RULE,
                )
            )
        now = clock()
        keys.give(account.token_id, now, account.paid)
        account.paid = 0.0
        wait = keys.take(account.token_id, now, cost)
        if wait:
            return _too_many("batch", keys, wait, items=cost)
        account.paid = float(cost)
        return None

    def _after(self, address: str, token_id: bytes, status: int, accepted: bool) -> None:
        now = clock()
        if status == 401:
            if self.on[2]:
                self.failures.take(address, now)
        elif accepted and token_id not in self.keys:
            self.keys.take(token_id, now)


# A 429's `detail`: who asked too often, and the limit - a rate below one a second is given a
# minute. One whole message each, so that each has its translation (api/i18n.py).
RATE_MESSAGES = {
    "address/second": "too many requests from this address ({rate:g} a second, bursts of"
    " {burst:g})",
    "address/minute": "too many requests from this address ({rate:g} a minute, bursts of"
    " {burst:g})",
    "key/second": "too many requests with this key ({rate:g} a second, bursts of {burst:g})",
    "key/minute": "too many requests with this key ({rate:g} a minute, bursts of {burst:g})",
    "failures/second": "too many failed authentications from this address ({rate:g} a second,"
    " bursts of {burst:g})",
    "failures/minute": "too many failed authentications from this address ({rate:g} a minute,"
    " bursts of {burst:g})",
    # A batch (`charge`): 429 while the key's bucket cannot pay for every item, 422 when it
    # never could.
    "batch/second": "too many requests with this key for a batch of {items} items, each item"
    " one request ({rate:g} a second, bursts of {burst:g})",
    "batch/minute": "too many requests with this key for a batch of {items} items, each item"
    " one request ({rate:g} a minute, bursts of {burst:g})",
    "too-large/second": "{items} items are more than one request with this key may carry: at"
    " most {burst:g}, each item one request ({rate:g} a second, bursts of {burst:g})",
    "too-large/minute": "{items} items are more than one request with this key may carry: at"
    " most {burst:g}, each item one request ({rate:g} a minute, bursts of {burst:g})",
}


def _per(buckets: Buckets) -> tuple[str, float]:
    """The limit's rate as a message gives it: a second's, or a minute's when below one."""
    per_minute = buckets.rate * 60.0
    return ("minute", per_minute) if per_minute < 60.0 else ("second", buckets.rate)


def _too_many(who: str, buckets: Buckets, wait: float, items: int = 1) -> Response:
    per, rate = _per(buckets)
    problem = Problem(
        type=TYPE_BASE + "rate-limited",
        title="Too many requests",
        status=429,
        detail=RATE_MESSAGES[f"{who}/{per}"].format(items=items, rate=rate, burst=buckets.capacity),
    )
    return problem_response(problem, {"Retry-After": str(max(1, math.ceil(wait)))})


def install(app: Any, limits: RateLimits) -> None:
    """Put the rate limits around the app's middleware stack. Called before
    `observability.install`, they end up inside the observability and header-limit
    middleware (a 429 is counted and logged like any answer), and before anything that
    reads the request or looks up a key."""
    build = app.build_middleware_stack
    app.build_middleware_stack = lambda: RateLimit(build(), limits)
