"""Bearer-token authentication and role guards, as FastAPI dependencies."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from api.problems import HttpProblem
from domain.events import Actor


async def current_actor(request: Request) -> Actor:
    """The actor behind the bearer token; 401 for none, unknown or revoked."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HttpProblem(401, "unauthorized", "Unauthorized", "send Authorization: Bearer <token>")
    keys = request.app.state.services.keys
    key = await run_in_threadpool(keys.authenticate, token.strip())
    if key is None:
        raise HttpProblem(401, "unauthorized", "Unauthorized", "unknown or revoked token")
    request.state.actor = key.actor
    return key.actor


def allow(*roles: str):  # type: ignore[no-untyped-def]
    """A dependency that admits only these roles (403 for the others)."""

    async def guard(actor: Annotated[Actor, Depends(current_actor)]) -> Actor:
        if actor.role not in roles:
            raise HttpProblem(
                403, "forbidden", "Forbidden", f"the {actor.role} role may not use this route"
            )
        return actor

    return Depends(guard)


Admin = Annotated[Actor, allow("admin")]
AdminOrEnterprise = Annotated[Actor, allow("admin", "enterprise")]
EnterpriseOnly = Annotated[Actor, allow("enterprise")]
Reader = Annotated[Actor, allow("admin", "enterprise", "operator", "officer", "auditor")]
AuditReader = Annotated[Actor, allow("auditor", "officer")]
