"""The webhook dispatcher (issue #19, docs/decisions/0030): delivers the outbox's receipts
(projections/receipts.py) to each subscription's URL, at least once and in log order per
subscription.

Per subscription a cursor (the last position delivered) and the head's attempts are kept in
`dispatch_state`, every attempt in `dispatch_attempts` (time, status code, latency, error) -
operational state beside the views, not a read model (a replay neither rebuilds nor compares
it). One worker per subscription at a time (its order), a pool for all of them (a slow
receiver holds one worker, never another subscription's deliveries). A delivery is a signed
POST (api/webhooks.py) with a timeout, redirects never followed, its URL checked again first;
a 2xx moves the cursor, anything else is tried again after an exponential backoff with jitter
(from `retry_base` doubling to `retry_cap`) until `give_up` after the first failure, when the
subscription is `failing` and keeps its backlog until a redelivery. A crash between a delivery
and its cursor's write sends that receipt again, with the same `webhook-id`.
"""

from __future__ import annotations

import http.client
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from api.delivery import Connections, Opener, describe, endpoint, open_connection
from api.webhooks import Resolver, check_url, headers, system_resolver
from projections.store import ViewStore

log = logging.getLogger("customs_ledger.webhooks")
ROUND_SECONDS = 0.1
IDLE_SECONDS = 1.0
BATCH = 200  # receipts read at once per subscription
FLUSH_EVERY = 50  # deliveries recorded together (attempts and cursor)
FLUSH_SECONDS = 0.25

DDL = (
    "CREATE TABLE IF NOT EXISTS dispatch_state ("
    " subscription_id TEXT PRIMARY KEY, cursor BIGINT NOT NULL, attempts BIGINT NOT NULL,"
    " next_at DOUBLE PRECISION NOT NULL, first_failure_at DOUBLE PRECISION,"
    " failing BIGINT NOT NULL, redelivery_seen BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS dispatch_attempts ("
    " subscription_id TEXT NOT NULL, position BIGINT NOT NULL, attempt BIGINT NOT NULL,"
    " at TEXT NOT NULL, status_code BIGINT, latency_ms DOUBLE PRECISION NOT NULL,"
    " error TEXT, ok BIGINT NOT NULL, PRIMARY KEY (subscription_id, position, attempt))",
)


def create_tables(views: ViewStore) -> None:
    """The dispatcher's tables (on PostgreSQL under the views' schema creation lock, with the
    read models' tables: api/services.py)."""
    with views.transaction() as cur:
        for statement in DDL:
            cur.execute(statement)


@dataclass(frozen=True)
class Schedule:
    """When to try again (seconds): `retry_base` doubling to `retry_cap`, jittered by up to a
    fifth either way, until `give_up` after the first failure; `timeout` per attempt."""

    retry_base: float = 5.0
    retry_cap: float = 3600.0
    give_up: float = 24 * 3600.0
    timeout: float = 10.0

    def delay(self, attempts: int, draw: float) -> float:
        """The wait after the `attempts`th failure; `draw` in [0, 1)."""
        base = min(self.retry_cap, self.retry_base * 2 ** min(attempts - 1, 40))
        return base * (0.8 + 0.4 * draw)


@dataclass
class State:
    cursor: int
    attempts: int
    next_at: float
    first_failure_at: float | None
    failing: bool
    redelivery_seen: int


class Dispatcher:
    """Delivers receipts while the server runs (started by the process that feeds the views)."""

    def __init__(
        self,
        views: ViewStore,
        secret_of: Callable[[UUID], str],
        allowed_hosts: Collection[str],
        *,
        schedule: Schedule | None = None,
        resolver: Resolver = system_resolver,
        workers: int = 8,
        clock: Callable[[], float] = time.time,
        active: Callable[[], bool] = lambda: True,
        opener: Opener = open_connection,
    ) -> None:
        self.views = views
        self.secret_of = secret_of
        self.allowed_hosts = {h.lower() for h in allowed_hosts}
        self.schedule = schedule or Schedule()
        self.resolver = resolver
        self.clock = clock
        # Whether this process delivers now (on PostgreSQL: it feeds the views).
        self.active = active
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="webhook")
        self.busy: set[str] = set()
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.thread: threading.Thread | None = None
        self.connections = Connections(self.schedule.timeout, opener)

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name="webhook-dispatcher", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()
        if self.thread is not None:
            self.thread.join(timeout=5)
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.connections.close()

    def _run(self) -> None:
        while not self.stopped.is_set():
            busy = False
            try:
                busy = self.tick()
            except Exception:  # the loop must outlive any one bad round; the next one retries
                log.exception("webhook dispatcher round failed")
            # A tenth of a second while there are subscriptions to serve; a second otherwise
            # (a ledger without subscriptions costs one query a second).
            self.stopped.wait(ROUND_SECONDS if busy else IDLE_SECONDS)

    def tick(self) -> bool:
        """Hand each active subscription with nothing in flight to a worker; whether there
        was any."""
        if not self.active():
            return False
        with self.views.read() as cur:
            cur.execute(
                "SELECT id, url, created_position, redeliver_from, redeliver_position"
                " FROM view_subscriptions WHERE status = 'active'"
            )
            subs = [dict(r) for r in cur.fetchall()]
        for sub in subs:
            with self.lock:
                if sub["id"] in self.busy:
                    continue
                self.busy.add(sub["id"])
            self.pool.submit(self._work, sub)
        return bool(subs)

    def _work(self, sub: dict[str, Any]) -> None:
        try:
            while not self.stopped.is_set() and self.deliver(sub):
                pass
        except Exception:
            log.exception("webhook delivery for subscription %s failed", sub["id"])
        finally:
            with self.lock:
                self.busy.discard(sub["id"])

    def state(self, sub: dict[str, Any]) -> State:
        with self.views.read() as cur:
            cur.execute("SELECT * FROM dispatch_state WHERE subscription_id = ?", (sub["id"],))
            r = cur.fetchone()
        if r is None:
            return State(int(sub["created_position"]), 0, 0.0, None, False, 0)
        return State(
            int(r["cursor"]),
            int(r["attempts"]),
            float(r["next_at"]),
            float(r["first_failure_at"]) if r["first_failure_at"] is not None else None,
            bool(r["failing"]),
            int(r["redelivery_seen"]),
        )

    def deliver_next(self, sub: dict[str, Any]) -> bool:
        """Try the subscription's next receipt; True when it was delivered (try the next)."""
        return self.deliver(sub, limit=1)

    def deliver(self, sub: dict[str, Any], limit: int = BATCH) -> bool:
        """Deliver the subscription's next receipts, up to `limit`, one after another in log
        order, until one fails; True when all `limit` went (more may wait).

        The receipts are read in one query and their attempts and the cursor written together
        every FLUSH_EVERY deliveries (or FLUSH_SECONDS), not per delivery: a crash sends those
        since the last write again, with their `webhook-id`s (at least once, as always)."""
        s = self.state(sub)
        if int(sub["redeliver_position"]) > s.redelivery_seen:  # a redelivery was asked
            s = State(
                int(sub["redeliver_from"]) - 1, 0, 0.0, None, False, int(sub["redeliver_position"])
            )
            self._record(sub["id"], [], s)
        if s.failing or s.next_at > self.clock():
            return False
        with self.views.read() as cur:
            cur.execute(
                "SELECT position, body FROM view_outbox WHERE subscription_id = ? AND position > ?"
                " ORDER BY position LIMIT ?",
                (sub["id"], s.cursor, limit),
            )
            rows = [(int(r["position"]), str(r["body"]).encode()) for r in cur.fetchall()]
            if not rows:
                return False
            # Attempts are numbered per receipt over its whole life: a redelivery's are the
            # next after those made before it.
            cur.execute(
                "SELECT position, MAX(attempt) AS n FROM dispatch_attempts WHERE"
                " subscription_id = ? AND position > ? AND position <= ? GROUP BY position",
                (sub["id"], s.cursor, rows[-1][0]),
            )
            tried = {int(r["position"]): int(r["n"]) for r in cur.fetchall()}
        signer = _Signer(self.secret_of, UUID(sub["id"]))
        done: list[tuple[Any, ...]] = []
        flushed = time.monotonic()
        for n, (position, body) in enumerate(rows):
            attempt = tried.get(position, 0) + 1
            # Failures in a row of the head (the backoff's count); those after it have none.
            failures = s.attempts + 1 if n == 0 else 1
            code, error, latency = self._send(sub, position, body, signer)
            ok = code is not None and 200 <= code < 300
            row = (sub["id"], position, attempt, _now(), code, latency, error, int(ok))
            if not ok:
                now = self.clock()
                first = s.first_failure_at if n == 0 and s.first_failure_at is not None else now
                cursor = rows[n - 1][0] if n else s.cursor
                failing = now - first >= self.schedule.give_up
                wait = self.schedule.delay(failures, random.random())
                failed = State(cursor, failures, now + wait, first, failing, s.redelivery_seen)
                self._record(sub["id"], [*done, row], failed)
                return False
            done.append(row)
            delivered = State(position, 0, 0.0, None, False, s.redelivery_seen)
            last = n == len(rows) - 1
            if last or len(done) >= FLUSH_EVERY or time.monotonic() - flushed >= FLUSH_SECONDS:
                self._record(sub["id"], done, delivered)
                done, flushed = [], time.monotonic()
            if self.stopped.is_set() and not last:
                self._record(sub["id"], done, delivered)
                return False
        return len(rows) == limit

    def _send(
        self, sub: dict[str, Any], position: int, body: bytes, signer: _Signer
    ) -> tuple[int | None, str | None, float]:
        started = time.perf_counter()
        # One resolution per attempt: the address checked is the address connected to.
        target = check_url(sub["url"], self.allowed_hosts, self.resolver)
        if target.problem is not None:
            return None, f"refused: {target.problem}", 0.0
        msg_id = f"{sub['id']}:{position}"
        try:
            secret = signer.secret()
        except Exception as e:  # e.g. another master key: a failed attempt, retried later
            return None, f"cannot sign: {type(e).__name__}: {e}"[:500], 0.0
        signed = headers(secret, msg_id, int(self.clock()), body)
        # To the checked address, the name in `Host` and as the TLS server name.
        ep = endpoint(sub["url"], target.address)
        code: int | None
        try:
            code, error = self.connections.post(str(sub["id"]), ep, body, signed), None
            if not 200 <= code < 300:
                error = f"HTTP {code}" + (
                    " (a redirect is not followed)" if 300 <= code < 400 else ""
                )
        except (OSError, http.client.HTTPException) as e:
            code, error = None, describe(e)
        return code, error, (time.perf_counter() - started) * 1000

    def _record(self, sub_id: str, attempts: list[tuple[Any, ...]], s: State) -> None:
        """The attempts made and where the subscription stands, in one transaction."""
        with self.views.transaction() as cur:
            if attempts:
                cur.executemany(
                    "INSERT INTO dispatch_attempts (subscription_id, position, attempt, at,"
                    " status_code, latency_ms, error, ok) VALUES (?,?,?,?,?,?,?,?)",
                    attempts,
                )
            cur.execute("DELETE FROM dispatch_state WHERE subscription_id = ?", (sub_id,))
            cur.execute(
                "INSERT INTO dispatch_state (subscription_id, cursor, attempts, next_at,"
                " first_failure_at, failing, redelivery_seen) VALUES (?,?,?,?,?,?,?)",
                (sub_id, s.cursor, s.attempts, s.next_at, s.first_failure_at, int(s.failing),
                 s.redelivery_seen),
            )  # fmt: skip


class _Signer:
    """A subscription's secret, opened once per batch of deliveries (it is sealed in the
    log: opening it reads the subscription and decrypts)."""

    def __init__(self, secret_of: Callable[[UUID], str], sub_id: UUID) -> None:
        self.secret_of = secret_of
        self.sub_id = sub_id
        self.opened: str | None = None

    def secret(self) -> str:
        if self.opened is None:
            self.opened = self.secret_of(self.sub_id)
        return self.opened


def _now() -> str:
    return datetime.now(UTC).isoformat()


def deliveries(
    views: ViewStore, sub_id: str, *, status: str | None, after: int, limit: int
) -> list[tuple[int, dict[str, Any]]]:
    """The subscription's attempts, oldest first (`status`: `ok` or `failed`)."""
    query = (
        "SELECT position, attempt, at, status_code, latency_ms, error, ok FROM dispatch_attempts"
        " WHERE subscription_id = ? AND (position * 1000 + attempt) > ?"
    )
    params: list[Any] = [sub_id, after]
    if status is not None:
        query += " AND ok = ?"
        params.append(1 if status == "ok" else 0)
    query += " ORDER BY position, attempt LIMIT ?"
    params.append(limit)
    with views.read() as cur:
        cur.execute(query, params)
        rows = cur.fetchall()
    return [
        (
            int(r["position"]) * 1000 + int(r["attempt"]),
            {
                "position": int(r["position"]),
                "attempt": int(r["attempt"]),
                "at": r["at"],
                "status_code": r["status_code"],
                "latency_ms": round(float(r["latency_ms"]), 1),
                "error": r["error"],
                "status": "ok" if r["ok"] else "failed",
            },
        )
        for r in rows
    ]


def delivery_figures(views: ViewStore, now: float) -> dict[str, Any]:
    """What `/metrics` shows of the deliveries (api/observability.py): per active subscription
    the receipts not yet delivered and how long the oldest has waited since it was recorded;
    how many subscriptions are failing; attempts so far by result."""
    with views.read() as cur:
        cur.execute(
            "SELECT s.id, COALESCE(d.cursor, s.created_position) AS cursor,"
            " COALESCE(d.failing, 0) AS failing FROM view_subscriptions s"
            " LEFT JOIN dispatch_state d ON d.subscription_id = s.id WHERE s.status = 'active'"
        )
        subs = [(str(r["id"]), int(r["cursor"]), bool(r["failing"])) for r in cur.fetchall()]
        backlog: dict[str, tuple[int, float]] = {}
        for sub_id, cursor, _ in subs:
            cur.execute(
                "SELECT count(*) AS n, min(position) AS first FROM view_outbox"
                " WHERE subscription_id = ? AND position > ?",
                (sub_id, cursor),
            )
            r = cur.fetchone()
            waited = 0.0
            if r["n"]:
                cur.execute(
                    "SELECT body FROM view_outbox WHERE subscription_id = ? AND position = ?",
                    (sub_id, r["first"]),
                )
                recorded = json.loads(cur.fetchone()["body"])["recorded_at"]
                at = datetime.fromisoformat(recorded.replace("Z", "+00:00")).timestamp()
                waited = max(now - at, 0.0)
            backlog[sub_id] = (int(r["n"]), waited)
        cur.execute("SELECT ok, count(*) AS n FROM dispatch_attempts GROUP BY ok")
        attempts = {("ok" if r["ok"] else "failed"): int(r["n"]) for r in cur.fetchall()}
    return {
        "backlog": backlog,
        "failing": sum(1 for _, _, failing in subs if failing),
        "attempts": attempts,
    }
