"""Bearer-token authentication and role guards."""

from __future__ import annotations

from collections.abc import Collection
from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from api.observability import note_actor
from api.problems import HttpProblem
from domain.events import Actor


def bearer_token(request: Request) -> str:
    """The bearer token of a request; 401 at once when there is none (no database needed)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HttpProblem(401, "unauthorized", "Unauthorized", "send Authorization: Bearer <token>")
    return token.strip()


def authenticate(request: Request, roles: Collection[str]) -> Actor:
    """The actor behind the token (401 unknown or revoked), admitted by role (403 otherwise).

    Synchronous: it reads the keys table, so callers run it in the threadpool - write routes
    together with their command, in one hop.
    """
    key = request.app.state.services.keys.authenticate(bearer_token(request))
    if key is None:
        raise HttpProblem(401, "unauthorized", "Unauthorized", "unknown or revoked token")
    note_actor(key.actor.name)  # for the request's access log line
    if key.role not in roles:
        raise HttpProblem(
            403, "forbidden", "Forbidden", f"the {key.role} role may not use this route"
        )
    return key.actor


def allow(*roles: str) -> Any:
    """A dependency that admits only these roles."""

    async def guard(request: Request) -> Actor:
        bearer_token(request)
        return await run_in_threadpool(authenticate, request, roles)

    return Depends(guard)


ADMIN = ("admin",)
ADMIN_OR_ENTERPRISE = ("admin", "enterprise")
ENTERPRISE = ("enterprise",)
OFFICER = ("officer",)
Reader = Annotated[Actor, allow("admin", "enterprise", "operator", "officer", "auditor")]
AuditReader = Annotated[Actor, allow("auditor", "officer")]
