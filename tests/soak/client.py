"""A client that retries the same request with the same Idempotency-Key until it is answered."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from domain.idempotency import idempotency_id

# A request in flight when the server dies gets a transport error (reset, refused, a closed
# keep-alive connection, a timeout); a server that is up never answers 5xx to these requests.
GIVE_UP_SECONDS = 120.0


class Aborted(Exception):
    """The soak was stopped (a failure elsewhere, or its deadline) while this request waited."""


class Stuck(Exception):
    """A request got no definite answer for GIVE_UP_SECONDS."""


@dataclass
class Ack:
    """A write with its definite answer: 2xx (acknowledged) or a final 4xx."""

    kind: str
    who: str
    key: str
    path: str
    body: dict[str, Any]
    status: int
    response: Any
    position: int | None
    replayed: bool
    attempts: int
    seed: bool = False

    @property
    def acknowledged(self) -> bool:
        return 200 <= self.status < 300

    @property
    def request_stream(self) -> str:
        """The stream of the RequestCompleted event that remembers this write's answer."""
        return str(idempotency_id(self.who, self.key))


@dataclass
class ClientStats:
    """What one client saw; merged over all clients at the end."""

    requests: int = 0
    retries: int = 0
    transport_errors: Counter[str] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    replays_seen: int = 0
    fresh_replays: list[str] = field(default_factory=list)

    def merge(self, other: ClientStats) -> None:
        self.requests += other.requests
        self.retries += other.retries
        self.transport_errors.update(other.transport_errors)
        self.server_errors += other.server_errors
        self.replays_seen += other.replays_seen
        self.fresh_replays += other.fresh_replays


class RetryingClient:
    """One HTTP connection pool per thread; tokens by key name (the idempotency principal)."""

    def __init__(self, url: str, tokens: dict[str, str], stop: threading.Event) -> None:
        self.http = httpx.Client(base_url=url, timeout=httpx.Timeout(15.0, connect=2.0))
        self.tokens = tokens
        self.stop = stop
        self.stats = ClientStats()

    def close(self) -> None:
        self.http.close()

    def headers(self, who: str, key: str | None = None) -> dict[str, str]:
        h = {"Authorization": f"Bearer {self.tokens[who]}"}
        if key is not None:
            h["Idempotency-Key"] = key
        return h

    def write(
        self, kind: str, who: str, path: str, body: dict[str, Any], key: str, *, seed: bool = False
    ) -> Ack:
        """POST until a definite answer. Transport errors and 5xx are retried with the same
        key and body: a write that was committed before the answer was lost comes back as a
        replay of its first answer, one that was not is done now."""
        started = time.monotonic()
        attempts = 0
        while True:
            if self.stop.is_set():
                raise Aborted(f"{kind} {key}")
            attempts += 1
            self.stats.requests += 1
            try:
                r = self.http.post(path, json=body, headers=self.headers(who, key))
            except httpx.TransportError as e:
                self.stats.transport_errors[type(e).__name__] += 1
            else:
                if r.status_code < 500:
                    return self._ack(kind, who, key, path, body, r, attempts, seed)
                self.stats.server_errors.append(f"{r.status_code} {path} {key}: {r.text[:300]}")
            if time.monotonic() - started > GIVE_UP_SECONDS:
                raise Stuck(f"{kind} {key}: no answer in {GIVE_UP_SECONDS:.0f} s")
            self.stats.retries += 1
            time.sleep(random.uniform(0.02, 0.1))

    def _ack(
        self,
        kind: str,
        who: str,
        key: str,
        path: str,
        body: dict[str, Any],
        r: httpx.Response,
        attempts: int,
        seed: bool,
    ) -> Ack:
        replayed = r.headers.get("idempotency-replayed") == "true"
        if replayed:
            self.stats.replays_seen += 1
            if attempts == 1:
                # Every key is new: only a retry may find its request already done.
                self.stats.fresh_replays.append(f"{kind} {key}")
        position = r.headers.get("x-ledger-position")
        return Ack(
            kind=kind,
            who=who,
            key=key,
            path=path,
            body=body,
            status=r.status_code,
            response=r.json(),
            position=int(position) if position is not None else None,
            replayed=replayed,
            attempts=attempts,
            seed=seed,
        )

    def get(self, who: str, path: str, **params: Any) -> httpx.Response:
        """A read, retried on transport errors only (the checks run with the server up)."""
        for _ in range(50):
            try:
                return self.http.get(path, headers=self.headers(who), params=params or None)
            except httpx.TransportError:
                time.sleep(0.1)
        raise Stuck(f"GET {path}: no answer")
