"""The FastAPI application: routers, error mapping, offline docs, msgspec-exact OpenAPI."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.http import SCHEMA_TYPES, merge_components
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
    declarations,
    enterprises,
    inventory,
    movements,
    reference,
    trace,
    ui,
)
from api.services import Services
from api.settings import Settings
from domain.errors import LedgerError
from ledger.declarations import ClearanceRules

log = logging.getLogger("customs_ledger.api")


async def _request_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": ".".join(str(p) for p in e.get("loc", ())), "msg": str(e.get("msg", "invalid"))}
        for e in exc.errors()
    ]
    detail = f"{errors[0]['loc']}: {errors[0]['msg']}" if errors else "invalid request"
    return problem_response(
        Problem(
            type=TYPE_BASE + "validation",
            title="Invalid content",
            status=422,
            detail=detail,
            errors=errors,
        )
    )


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    kind = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
    return problem_response(
        Problem(
            type=TYPE_BASE + kind,
            title=str(exc.detail),
            status=exc.status_code,
            detail=str(exc.detail),
        ),
        dict(exc.headers or {}),
    )


async def _unexpected(request: Request, exc: Exception) -> Response:
    # A bug, never the client's fault: log it with its traceback, answer without internals.
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return problem_response(
        Problem(
            type=TYPE_BASE + "internal",
            title="Internal error",
            status=500,
            detail="the ledger could not complete the request; nothing was recorded",
        )
    )


PUBLIC_PATHS = ("/v1/zones", "/v1/reference/", "/healthz")


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
                    {"description": "No token, or an unknown or revoked token", "content": problem},
                )
            invalid = operation["responses"].get("422")
            if invalid is not None:
                invalid["content"] = problem
    for name in ("HTTPValidationError", "ValidationError"):
        components.get("schemas", {}).pop(name, None)
    return schema


def create_app(
    settings: Settings | None = None,
    services: Services | None = None,
    rules: ClearanceRules | None = None,
) -> FastAPI:
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not hasattr(app.state, "services"):
            app.state.services = Services.build(settings, rules)
        app.state.services.start()
        try:
            yield
        finally:
            app.state.services.close()

    app = FastAPIOffline(
        title="customs-ledger",
        version="0.1.0",
        description="Event-sourced ledger for customs clearance and bonded-zone inventory.",
        lifespan=lifespan,
    )
    if services is not None:
        app.state.services = services
    for router in (
        reference.router,
        enterprises.router,
        account_books.router,
        declarations.router,
        movements.router,
        boms.router,
        inventory.router,
        trace.router,
        audit.router,
        ui.router,
    ):
        app.include_router(router)

    app.add_exception_handler(LedgerError, ledger_error_handler)
    app.add_exception_handler(HttpProblem, http_problem_handler)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(Exception, _unexpected)

    @app.get("/healthz", tags=["operations"])
    def healthz(request: Request) -> dict[str, Any]:
        svc: Services = request.app.state.services
        head = svc.app.log.head()
        position = head.position if head else 0
        return {
            "status": "ok",
            "store": svc.database.kind,
            "log_position": position,
            "projection_position": svc.runner.position,
            "projection_lag_events": max(0, position - svc.runner.position),
            "projection_error": svc.runner.last_error,
        }

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi

            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            app.openapi_schema = finish_openapi(merge_components(schema, SCHEMA_TYPES))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
