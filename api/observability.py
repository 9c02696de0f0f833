"""Operations: Prometheus metrics, request ids, access log lines and the health check.

The log formats are in api/logs.py; docs/observability.md lists every metric, the log fields
and what `/healthz` answers.
"""

from __future__ import annotations

import logging
import os
import random
import re
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Literal

import msgspec
import prometheus_client
from fastapi import Request
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import heap, i18n
from api.http import doc, json_response
from api.problems import TYPE_BASE, Problem, problem_response
from domain.reference_outlook import ReferenceOutlook

log = logging.getLogger("customs_ledger.observability")
access_log = logging.getLogger("customs_ledger.access")

# Counters and histograms would each bring a `_created` series per label set: noise that
# doubles a scrape and that no dashboard of ours reads.
prometheus_client.disable_created_metrics()


# -- the request context ----------------------------------------------------------------------


@dataclass(slots=True)
class RequestContext:
    """What the logs say about the request being served: its id and, once known, its actor."""

    request_id: str
    actor: str | None = None


_request: ContextVar[RequestContext | None] = ContextVar("customs_ledger_request", default=None)
# A client's own id is kept when it is 1 to 128 printable ASCII characters.
_CLIENT_ID = re.compile(rb"[\x20-\x7e]{1,128}")


# Random request ids without a system call: `uuid.uuid4()` reads os.urandom, which lets go of
# the interpreter lock, and the event loop then waits for a busy thread (the group commit, the
# thread pool) to hand it back - 0.3 ms a request under load, measured. Ids need to be unique,
# not secret. The generator is seeded from os.urandom, again in a forked child.
_ids = random.Random()
os.register_at_fork(after_in_child=_ids.seed)
_VERSION_4 = (0x4000 << 64) | (0x8000 << 48)  # version 4, RFC 9562 variant
_NOT_VERSION = ~((0xF000 << 64) | (0xC000 << 48))


def new_request_id() -> str:
    """A random uuid4 in hex (32 characters)."""
    return f"{_ids.getrandbits(128) & _NOT_VERSION | _VERSION_4:032x}"


def request_id_from(headers: list[tuple[bytes, bytes]]) -> str:
    """The client's `X-Request-ID` when it is usable, else a new uuid4 in hex."""
    for name, value in headers:
        if name == b"x-request-id":
            if _CLIENT_ID.fullmatch(value):
                return value.decode("ascii")
            break
    return new_request_id()


def current_request_id() -> str | None:
    context = _request.get()
    return context.request_id if context is not None else None


def note_actor(name: str) -> None:
    """The request's caller, as authentication found it (for its access log line)."""
    context = _request.get()
    if context is not None:
        context.actor = name


def current_actor() -> str | None:
    """The request's caller once authentication accepted its token (the rate limits'
    sign that a token is a key's), else None."""
    context = _request.get()
    return context.actor if context is not None else None


# -- metrics ----------------------------------------------------------------------------------

# A command's phases: from a tenth of a millisecond to a second.
PHASE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"  # the route label of every path no route matches
# Paths that carry personal data (a buyer's resident identity number): logged as the route's
# template, or as the prefix with `{redacted}` when no route matched (a 404, a trailing slash).
PERSONAL_PATHS = ("/v1/buyers/",)


def loggable_path(path: str, route: str = UNMATCHED) -> str:
    """The path as a log line may show it: never a personal path's text."""
    for prefix in PERSONAL_PATHS:
        if path.startswith(prefix):
            return route if route != UNMATCHED else prefix + "{redacted}"
    return path


VERIFY_RESULTS = ("ok", "failed")
REPLAY_RESULTS = ("equal", "different", "failed")


class Metrics:
    """The metrics of one app, in its own registry (tests build many apps in one process)."""

    def __init__(self, services: Callable[[], Any]) -> None:
        self.registry = registry = CollectorRegistry()
        self.requests = Counter(
            "ledger_http_requests",
            "HTTP requests answered, by method, route template and status",
            ("method", "route", "status"),
            registry=registry,
        )
        self.duration = Histogram(
            "ledger_http_request_duration_seconds",
            "Time from a request's arrival to the end of its answer, by method and route",
            ("method", "route"),
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.events_appended = Counter(
            "ledger_events_appended", "Events this process appended to the log", registry=registry
        )
        self.command_phases = Histogram(
            "ledger_command_phase_seconds",
            "Each command's time waiting for the decider thread (queued), being decided "
            "(deciding) and waiting for its group's commit and fsync (committing)",
            ("phase",),
            buckets=PHASE_BUCKETS,
            registry=registry,
        )
        self._phases = tuple(
            self.command_phases.labels(p) for p in ("queued", "deciding", "committing")
        )
        self.verify_runs = Counter(
            "ledger_verify_runs",
            "Chain verifications run by GET /v1/audit/verify, by result",
            ("result",),
            registry=registry,
        )
        self.verify_events_checked = Gauge(
            "ledger_verify_events_checked",
            "Events the last verification of this process checked",
            registry=registry,
        )
        self.replay_runs = Counter(
            "ledger_replay_runs",
            "Replays run by POST /v1/audit/replay, by result",
            ("result",),
            registry=registry,
        )
        for result in VERIFY_RESULTS:
            self.verify_runs.labels(result)
        for result in REPLAY_RESULTS:
            self.replay_runs.labels(result)
        registry.register(heap.PAUSES)  # the process's collector pauses (api/heap.py)
        heap.watch_pauses()
        registry.register(LogGauges(services))
        registry.register(WebhookGauges(services))
        # (method, route, status) -> its counter and histogram children: `labels()` takes a
        # lock and builds a key on each call, this dict lookup does not.
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def command_timed(self, queued: float, deciding: float, committing: float) -> None:
        """A command's phases (ledger/application.py `on_command`)."""
        for histogram, seconds in zip(self._phases, (queued, deciding, committing), strict=True):
            histogram.observe(seconds)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            children = (
                self.requests.labels(method, route, str(status)),
                self.duration.labels(method, route),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def verified(self, ok: bool, events_checked: int) -> None:
        self.verify_runs.labels("ok" if ok else "failed").inc()
        self.verify_events_checked.set(events_checked)

    def replayed(self, result: Literal["equal", "different", "failed"]) -> None:
        self.replay_runs.labels(result).inc()

    def exposition(self) -> Response:
        """The registry in the Prometheus text format (0.0.4, which every scraper reads)."""
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_PLAIN_0_0_4)


def metrics(request: Request) -> Metrics:
    found: Metrics = request.app.state.metrics
    return found


@dataclass(frozen=True, slots=True)
class LogState:
    """Where the log and the views are, read from the stores."""

    log_position: int
    projection_position: int
    lag_events: int
    lag_seconds: float


class StoreUnavailable(Exception):
    """The event store or the views did not answer; the message says which and why."""


def _reason(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:200]}" if text else type(e).__name__


def read_log_state(svc: Any) -> LogState:
    """The log head, the views' position and their lag: two or three indexed reads."""
    kind = svc.database.kind
    try:
        head = svc.app.log.head()
    except Exception as e:
        raise StoreUnavailable(f"the event store ({kind}) did not answer: {_reason(e)}") from e
    try:
        position = svc.runner.reached()
    except Exception as e:
        raise StoreUnavailable(f"the views did not answer: {_reason(e)}") from e
    try:  # reads the recorded time of the views' last event from the log
        lag = svc.runner.lag_seconds(head.position, head.recorded_at, position) if head else 0.0
    except Exception as e:
        raise StoreUnavailable(f"the event store ({kind}) did not answer: {_reason(e)}") from e
    log_position = head.position if head else 0
    return LogState(log_position, position, max(0, log_position - position), lag)


class LogGauges(Collector):
    """Gauges read from the stores when Prometheus scrapes, never kept up to date between."""

    def __init__(self, services: Callable[[], Any]) -> None:
        self._services = services

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(self._families())

    def _families(self) -> list[GaugeMetricFamily]:
        return [
            GaugeMetricFamily("ledger_store_up", "1 when the stores answered this scrape, else 0"),
            GaugeMetricFamily("ledger_log_position", "Position of the last event in the log"),
            GaugeMetricFamily(
                "ledger_projection_position", "Log position the read models (views) reflect"
            ),
            GaugeMetricFamily(
                "ledger_projection_lag_events", "Events in the log the views have not applied"
            ),
            GaugeMetricFamily(
                "ledger_projection_lag_seconds",
                "Recorded time between the log head and the last event the views applied",
            ),
        ]

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up, *positions = self._families()
        svc = self._services()
        state = None
        if svc is not None:
            try:
                state = read_log_state(svc)
            except StoreUnavailable as e:
                log.warning("metrics: %s", e)
        up.add_metric([], 1 if state is not None else 0)
        yield up
        alarm = GaugeMetricFamily(
            "ledger_tamper_alarm", "1 when this server's tamper watch found the log altered"
        )
        alarm.add_metric([], 1 if svc is not None and svc.alarm is not None else 0)
        yield alarm
        if svc is not None and state is not None:  # the outlook reads the published tables
            days = GaugeMetricFamily(
                "ledger_reference_days_left",
                "Days until the reference data runs out (<= 0: it has): exchange-rates, the"
                " first month without customs exchange rates",
                labels=["kind"],
            )
            days.add_metric(["exchange-rates"], svc.reference.outlook().exchange_rate_days_left)
            yield days
        if svc is not None:
            yield from _projections_families(svc)
        if state is None:
            return  # no figures rather than made-up ones
        values = (state.log_position, state.projection_position, state.lag_events)
        for family, value in zip(positions, (*values, state.lag_seconds), strict=True):
            family.add_metric([], value)
            yield family


def _projections_families(svc: Any) -> Iterator[GaugeMetricFamily]:
    """Where the views are fed (LEDGER_PROJECTIONS), and the views process's restarts when
    this server process supervises it (api/feeder.py)."""
    mode = GaugeMetricFamily(
        "ledger_projections_mode",
        "1 for where the views are fed: process (a child of the server), inline (in the"
        " server), off (project --follow processes)",
        labels=["mode"],
    )
    mode.add_metric([svc.settings.projections], 1)
    yield mode
    if svc.feeder is not None:
        restarts = GaugeMetricFamily(
            "ledger_projections_process_restarts",
            "Times the views process died and was started again since the server started",
        )
        restarts.add_metric([], svc.feeder.restarts)
        yield restarts
        up = GaugeMetricFamily(
            "ledger_projections_process_up", "1 when the views process runs, 0 while restarted"
        )
        up.add_metric([], 0 if svc.feeder.pid is None else 1)
        yield up


# -- the middleware ---------------------------------------------------------------------------


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


class ObservabilityMiddleware:
    """Pure ASGI, outermost: the request id (context and `X-Request-ID` header), the request
    metrics and one access log line per request. Outside the error middleware, so a 500 is
    counted, carries the header, and the error handler's log record has the request id."""

    def __init__(self, app: ASGIApp, metrics: Metrics, routes: Callable[[], list[Any]]) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes
        # id(route or endpoint) -> its template (routes are unhashable); lives as the app does.
        self._labels: dict[int, str] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        context = RequestContext(request_id_from(scope["headers"]))
        # The language of what the answer says to a person (api/i18n.py): for this request.
        i18n.set_language(i18n.negotiate(_header(scope["headers"], b"accept-language")))
        token = _request.set(context)
        echo = (b"x-request-id", context.request_id.encode("ascii"))
        status = 500  # when the app fails before it answers

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), echo]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            method = scope["method"] if scope["method"] in METHODS else "other"
            route = self._route(scope)
            self.metrics.observe_request(method, route, status, seconds)
            if access_log.isEnabledFor(logging.INFO):
                self._log(
                    context, method, route, loggable_path(scope["path"], route), status, seconds
                )
            _request.reset(token)

    def _route(self, scope: Scope) -> str:
        """The template of the route that answered (`/v1/lots/{lot_id}`), never the path.

        FastAPI puts its own routes in the scope; of the others (the docs pages, their static
        files) the router leaves only the endpoint, whose route is looked up once."""
        matched = scope.get("route") or scope.get("endpoint")
        if matched is None:
            return UNMATCHED
        label = self._labels.get(id(matched))
        if label is None:
            label = self._labels[id(matched)] = self._template(matched)
        return label

    def _template(self, matched: Any) -> str:
        template = getattr(matched, "path_format", None)
        if isinstance(template, str):
            return template
        for route in self.routes():
            if matched in (getattr(route, "endpoint", None), getattr(route, "app", None)):
                found: str = getattr(route, "path_format", UNMATCHED)
                return found
        return UNMATCHED

    @staticmethod
    def _log(
        context: RequestContext, method: str, route: str, path: str, status: int, seconds: float
    ) -> None:
        duration_ms = round(seconds * 1000, 3)
        fields: dict[str, Any] = {
            "method": method,
            "route": route,
            "path": path,
            "status": status,
            "duration_ms": duration_ms,
        }
        if context.actor is not None:
            fields["actor"] = context.actor
        access_log.info("%s %s %d %.1f ms", method, path, status, duration_ms, extra=fields)


def install(app: Any, metrics: Metrics) -> None:
    """Put the middleware around the whole stack, the error middleware included; inside it,
    the header limits (a 431 is counted and logged like any answer)."""
    from api.limits import HeaderLimits

    build = app.build_middleware_stack
    app.build_middleware_stack = lambda: ObservabilityMiddleware(
        HeaderLimits(build()), metrics, lambda: app.routes
    )


# -- /healthz and /metrics in the OpenAPI document ---------------------------------------------


class HealthView(msgspec.Struct, frozen=True, kw_only=True):
    """The server answers and its stores do: where the log and the read models (views) are,
    and the runner's last error (null while it applies events without failing)."""

    status: Literal["ok"]
    store: str
    log_position: int
    projection_position: int
    projection_lag_events: int
    projection_lag_seconds: float
    projection_error: str | None
    # Where the views are fed (LEDGER_PROJECTIONS): "process", a child of the server (its pid
    # when this server process supervises it, else null: `--workers`, or between a death and
    # its restart; `projections_restarts` since the server started); "inline", in the server;
    # "off", by `project --follow` processes.
    projections: str
    projections_pid: int | None = None
    projections_restarts: int | None = None
    # The shard of the unit-value histories this server process appends to (decision 0040):
    # 0 on SQLite; on PostgreSQL the one it claimed at its first assessment, null before.
    history_shard: int | None = None
    # How far the published reference data reaches (warnings from 7 days before a month
    # without exchange rates; the status stays ok).
    reference: ReferenceOutlook


def health_doc() -> dict[str, Any]:
    kwargs = doc(ok=(200, HealthView), errors=(503,))
    kwargs["responses"][503]["description"] = (
        "The event store or the views did not answer, the read models stopped on an error, or "
        "the log failed verification (writes refused); `type` and `detail` say which and why"
    )
    return kwargs


def health(svc: Any) -> Response:
    # A store that does not answer first: the runner then fails too, but because of it.
    try:
        state = read_log_state(svc)
    except StoreUnavailable as e:
        log.warning("healthz: %s", e)
        return _unhealthy("unavailable", str(e))
    if svc.alarm is not None:
        return _unhealthy(
            "tampered", f"the log failed verification; writes are refused: {svc.alarm}"
        )
    if svc.runner.last_error is not None:
        return _unhealthy(
            "views-stopped", f"the read models stopped on an error: {svc.runner.last_error}"
        )
    return json_response(
        HealthView(
            status="ok",
            store=svc.database.kind,
            log_position=state.log_position,
            projection_position=state.projection_position,
            projection_lag_events=state.lag_events,
            projection_lag_seconds=state.lag_seconds,
            projection_error=svc.runner.last_error,
            projections=svc.settings.projections,
            projections_pid=None if svc.feeder is None else svc.feeder.pid,
            projections_restarts=None if svc.feeder is None else svc.feeder.restarts,
            history_shard=svc.app.claimed_history_shard,
            reference=svc.reference.outlook(),
        )
    )


def _unhealthy(kind: str, detail: str) -> Response:
    """503: what is wrong (`type`), and why (`detail`: a message of the calls above)."""
    return problem_response(
        Problem(type=TYPE_BASE + kind, title="Unavailable", status=503, detail=detail)
    )


METRICS_DOC: dict[str, Any] = {
    "response_class": PlainTextResponse,
    "responses": {
        200: {
            "description": "Every metric in the Prometheus text format (docs/observability.md)",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
        # The per-address rate limit (api/ratelimit.py) answers before any route.
        **doc(errors=(429,))["responses"],
    },
}

REQUEST_ID_HEADER = {
    "description": "The request's id: the client's `X-Request-ID` when it has 1 to 128 "
    "printable ASCII characters, else a new one; every log line of the request carries it",
    "schema": {"type": "string", "minLength": 1, "maxLength": 128},
}


def document_request_id(schema: dict[str, Any]) -> dict[str, Any]:
    """Every documented response carries `X-Request-ID` (the middleware adds it to all)."""
    components = schema.setdefault("components", {})
    components.setdefault("headers", {})["RequestId"] = REQUEST_ID_HEADER
    ref = {"$ref": "#/components/headers/RequestId"}
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            for response in operation.get("responses", {}).values():
                # A new dict: the headers object may be shared between responses.
                response["headers"] = {**response.get("headers", {}), "X-Request-ID": ref}
    return schema


class WebhookGauges(Collector):
    """The receipts' deliveries (api/dispatch.py), read from the views when Prometheus scrapes:
    the backlog and the delivery lag per subscription, failing subscriptions, attempts."""

    def __init__(self, services: Callable[[], Any]) -> None:
        self._services = services

    def describe(self) -> Iterator[Any]:
        return iter(())

    def collect(self) -> Iterator[Any]:
        svc = self._services()
        if svc is None:
            return
        from api.dispatch import delivery_figures

        try:
            figures = delivery_figures(svc.views, time.time())
        except Exception as e:  # a scrape never fails for this: the store's gauge says it
            log.warning("metrics: webhook figures: %s", e)
            return
        backlog = GaugeMetricFamily(
            "ledger_webhook_backlog",
            "Receipts not yet delivered, per active subscription",
            labels=["subscription"],
        )
        lag = GaugeMetricFamily(
            "ledger_webhook_lag_seconds",
            "How long the oldest receipt not yet delivered has waited since it was recorded",
            labels=["subscription"],
        )
        for sub_id, (count, waited) in sorted(figures["backlog"].items()):
            backlog.add_metric([sub_id], count)
            lag.add_metric([sub_id], waited)
        failing = GaugeMetricFamily(
            "ledger_webhook_failing", "Subscriptions failing (retries given up until redelivered)"
        )
        failing.add_metric([], figures["failing"])
        attempts = CounterMetricFamily(
            "ledger_webhook_attempts", "Delivery attempts, by result", labels=["result"]
        )
        for result in ("ok", "failed"):
            attempts.add_metric([result], figures["attempts"].get(result, 0))
        yield from (backlog, lag, failing, attempts)
