"""The FastAPI application: routers, error mapping, offline docs, msgspec-exact OpenAPI."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from eventsourcing.persistence import ConnectionUnavailableError, OperationalError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import Match, Route

from api import heap, observability, ratelimit
from api.http import CHALLENGE_HEADER, SCHEMA_TYPES, merge_components
from api.problems import (
    TYPE_BASE,
    HttpProblem,
    Problem,
    http_problem_handler,
    ledger_error_handler,
    problem_response,
)
from api.routes import (
    account_books,
    audit,
    boms,
    buyers,
    declarations,
    documents,
    enterprises,
    imports,
    inventory,
    movements,
    reference,
    stats,
    stream,
    subscriptions,
    tax_bills,
    trace,
    ui,
    write_offs,
)
from api.services import Services
from api.settings import Settings
from domain.assessment import ClearanceRules
from domain.errors import LedgerError, Unavailable

log = logging.getLogger("customs_ledger.api")


async def _request_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": ".".join(str(p) for p in e.get("loc", ())), "msg": str(e.get("msg", "invalid"))}
        for e in exc.errors()
    ]
    return problem_response(
        Problem(
            type=TYPE_BASE + "validation",
            title="Invalid content",
            status=422,
            detail=f"{errors[0]['loc']}: {errors[0]['msg']}" if errors else "invalid request",
            errors=errors,
        )
    )


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    kind = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        # Starlette names the methods of the first route on the path; RFC 9110 wants them all.
        headers["Allow"] = _allowed_methods(request)
    return problem_response(
        Problem(
            type=TYPE_BASE + kind,
            title=str(exc.detail),
            status=exc.status_code,
            detail=str(exc.detail),
        ),
        headers,
    )


def _served_routes(app: Any) -> list[Any]:
    """The app's routes, those of included routers too (FastAPI >= 0.16x nests them)."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older FastAPI: included routes are copied to the top level
        return list(app.router.routes)
    return [context.route for context in iter_route_contexts(app.router.routes)]


def _allowed_methods(request: Request) -> str:
    """Every method the request's path is documented with (GET, HEAD, POST, ...): the routes
    whose template matches it; when one of them is the path itself (`/v1/declarations/batch`),
    only those, as the OpenAPI document lists them (a `{ref}` template beside it, GET
    `/v1/declarations/{ref}`, is another resource)."""
    matching = [
        route
        for route in _served_routes(request.app)
        if isinstance(route, Route) and route.matches(request.scope)[0] != Match.NONE
    ]
    literal = [route for route in matching if "{" not in route.path]
    methods: set[str] = set()
    for route in literal or matching:
        methods |= route.methods or set()
    if "GET" in methods:
        methods.add("HEAD")  # HeadAsGet answers it
    return ", ".join(sorted(methods))


class HeadAsGet:
    """HEAD on every GET route (RFC 9110 9.3.2): the request runs as the GET it names, with
    its status and headers (Content-Length too), and the body is dropped. FastAPI's routes
    answer only the methods they declare, so without this a HEAD is 405."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def without_body(message: Any) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        # (`ledger.head`: a stream answers its headers and ends, api/routes/stream.py.)
        await self.app({**scope, "method": "GET", "ledger.head": True}, receive, without_body)


async def _store_failed(request: Request, exc: Exception) -> Response:
    """The store could not serve the request: not a bug, not the client's fault; 503 with
    Retry-After. Either no connection came free within the pool's wait (a machine far past
    its load: nothing was recorded), or the store stopped answering (PostgreSQL: no pooled
    connection within `pool_timeout`, the server gone, the connection lost): a write cut off
    at its commit may or may not be recorded, and the same request with the same
    Idempotency-Key is recorded once either way."""
    path = observability.loggable_path(request.url.path)
    log.warning("the store failed on %s %s: %s", request.method, path, exc)
    refusal = (
        Unavailable(
            "the ledger had no free store connection in time; nothing was recorded, send it again",
            retry_after=1,
        )
        if isinstance(exc, ConnectionUnavailableError)
        else Unavailable(
            "the ledger's store did not answer; send the request again (a write with the same"
            " Idempotency-Key is recorded once)",
            retry_after=1,
        )
    )
    return await ledger_error_handler(request, refusal)


async def _client_gone(request: Request, exc: Exception) -> Response:
    """The client closed the connection before its body had all arrived (a load generator
    stopping, a timeout on its side): nothing was read, so nothing was recorded, and nobody
    reads the answer. Neither a bug nor a 5xx: 499, as proxies log it."""
    path = observability.loggable_path(request.url.path)
    log.info("the client left during %s %s before its body arrived", request.method, path)
    return Response(status_code=CLIENT_CLOSED)


# The status proxies (nginx) log for a request whose client closed the connection first.
CLIENT_CLOSED = 499


async def _unexpected(request: Request, exc: Exception) -> Response:
    # A bug, never the client's fault: log it with its traceback, answer without internals.
    path = observability.loggable_path(request.url.path)
    log.exception("unexpected error on %s %s", request.method, path)
    return problem_response(
        Problem(
            type=TYPE_BASE + "internal",
            title="Internal error",
            status=500,
            detail="the ledger could not complete the request; nothing was recorded",
        )
    )


PUBLIC_PATHS = ("/v1/zones", "/v1/reference/", "/healthz", "/metrics")


# pydantic writes the bounds of a constrained type it does not know (api/params.py `Integer`)
# as its own keyword names; JSON Schema (and so clients and the fuzzer) reads these.
_BOUNDS = {"ge": "minimum", "le": "maximum", "gt": "exclusiveMinimum", "lt": "exclusiveMaximum"}


def _json_schema_bounds(schema: dict[str, Any]) -> None:
    """Rename `ge`/`le`/`gt`/`lt` to their JSON Schema keywords, in a schema and its `anyOf`."""
    for option in [schema, *schema.get("anyOf", [])]:
        for name, keyword in _BOUNDS.items():
            if name in option:
                option[keyword] = option.pop(name)


def finish_openapi(schema: dict[str, Any]) -> dict[str, Any]:
    """Bearer auth on every route but the public ones, and every 422 as problem+json.

    FastAPI documents query-parameter errors with its own `HTTPValidationError`; ours answer
    with the same Problem as every other error, so the document says so.
    """
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {})["bearer"] = {
        "type": "http",
        "scheme": "bearer",
        "description": "A token from `customs-ledger keys issue`",
    }
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path, operations in schema.get("paths", {}).items():
        public = path.startswith(PUBLIC_PATHS)
        for operation in operations.values():
            operation["security"] = [] if public else [{"bearer": []}]
            if not public:
                operation["responses"].setdefault(
                    "401",
                    {
                        "description": "No token, or an unknown or revoked token",
                        "content": problem,
                        "headers": CHALLENGE_HEADER,
                    },
                )
            invalid = operation["responses"].get("422")
            if invalid is not None:
                invalid["content"] = problem
            for parameter in operation.get("parameters", []):
                _json_schema_bounds(parameter.get("schema", {}))
    for name in ("HTTPValidationError", "ValidationError"):
        components.get("schemas", {}).pop(name, None)
    return schema


def create_app(
    settings: Settings | None = None,
    services: Services | None = None,
    rules: ClearanceRules | None = None,
    *,
    serving: bool = False,
) -> FastAPI:
    """The app. `serving`: it is the process's one app (`customs-ledger serve`), so once its
    services have started, what they built is frozen out of the collector's walks
    (api/heap.py); tests build many apps in one process and leave it off."""
    settings = settings or Settings.from_env()
    metrics = observability.Metrics(lambda: getattr(app.state, "services", None))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not hasattr(app.state, "services"):
            app.state.services = Services.build(settings, rules)
        # The views process `serve` supervises (LEDGER_PROJECTIONS=process), for /healthz.
        feeder = app.state.services.feeder = getattr(app.state, "feeder", None)
        app.state.services.app.on_appended = metrics.events_appended.inc
        app.state.services.app.on_command = metrics.command_timed
        app.state.services.start()
        if feeder is not None:
            feeder.release()  # the views process starts its work once this one has
        app.state.stopping = stream.watch_stop_signals()  # open streams end at SIGTERM
        if serving:
            heap.freeze_startup_heap()
        try:
            yield
        finally:
            try:
                app.state.services.close()
            finally:
                # After the requests, before uvicorn hands SIGTERM back to the process.
                if feeder is not None:
                    feeder.stop()

    app = FastAPIOffline(
        title="customs-ledger",
        version="0.1.0",
        description="Event-sourced ledger for customs clearance and bonded-zone inventory.",
        lifespan=lifespan,
        # A path parameter ending in "/" (`ABC%2F`) is 404, not a 307 to another resource.
        redirect_slashes=False,
    )
    app.state.metrics = metrics
    ratelimit.install(app, settings.rate_limits)  # before observability: inside it
    observability.install(app, metrics)
    app.add_middleware(HeadAsGet)  # logged as the HEAD it is, answered as its GET
    if services is not None:
        app.state.services = services
    for router in (
        reference.router,
        enterprises.router,
        account_books.router,
        declarations.router,
        buyers.router,
        movements.router,
        documents.router,
        imports.router,
        tax_bills.router,
        write_offs.router,
        subscriptions.router,
        stream.router,
        boms.router,
        inventory.router,
        trace.router,
        stats.router,
        audit.router,
        ui.router,
    ):
        app.include_router(router)

    app.add_exception_handler(LedgerError, ledger_error_handler)
    app.add_exception_handler(HttpProblem, http_problem_handler)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(OperationalError, _store_failed)  # ConnectionUnavailable too
    app.add_exception_handler(ClientDisconnect, _client_gone)
    app.add_exception_handler(Exception, _unexpected)

    @app.get("/healthz", tags=["operations"], **observability.health_doc())
    def healthz(request: Request) -> Response:
        """Whether the server and its stores answer (503 when a store does not), and how far
        the read models are behind the log."""
        return observability.health(request.app.state.services)

    @app.get("/metrics", tags=["operations"], **observability.METRICS_DOC)
    def metrics_text(request: Request) -> Response:
        """Prometheus metrics of this server process (docs/observability.md). No token:
        bind the server to a private interface in production."""
        return observability.metrics(request).exposition()

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi

            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            schema = finish_openapi(merge_components(schema, SCHEMA_TYPES))
            app.openapi_schema = observability.document_request_id(schema)
        return app.openapi_schema

    # FastAPI's documented way to extend the schema; mypy refuses assigning to a method.
    app.openapi = openapi  # type: ignore[method-assign]
    return app
