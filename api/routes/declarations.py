"""Declarations: submission, reads, withdrawal."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.auth import ENTERPRISE, Reader
from api.http import (
    doc,
    json_response,
    list_type,
)
from api.routes.common import Page, execute, page_body, services, views_caught_up
from domain.declaration import SubmitDeclaration, WithdrawDeclaration
from domain.errors import NotFound
from domain.events import Actor
from domain.views import DeclarationDetail, DeclarationView

router = APIRouter(tags=["declarations"])
DeclarationList = list_type(DeclarationDetail, "DeclarationList")


@router.post(
    "/v1/declarations",
    **doc(
        body=SubmitDeclaration,
        ok=(201, DeclarationView),
        errors=(400, 401, 403, 409, 413),
        idempotency_required=True,
    ),
)
async def submit_declaration(request: Request) -> Response:
    return await execute(
        request,
        ENTERPRISE,
        SubmitDeclaration,
        lambda ledger, cmd, idem, actor: ledger.submit_declaration(cmd, actor, idem),
        key_required=True,
    )


def visible(actor: Actor) -> dict[str, str]:
    if actor.role == "enterprise" and actor.enterprise:
        return {"enterprise": actor.enterprise}
    if actor.role == "operator" and actor.zone:
        return {"zone": actor.zone}
    return {}


def can_see(actor: Actor, row: dict[str, object]) -> bool:
    scope = visible(actor)
    if "enterprise" in scope:
        return scope["enterprise"] in (row["declarant"], row["destination_enterprise"])
    if "zone" in scope:
        return scope["zone"] in (row["zone"], row["destination_zone"])
    return True


@router.get("/v1/declarations", **doc(ok=(200, DeclarationList), errors=(401, 422)))
async def list_declarations(
    request: Request,
    actor: Reader,
    page: Annotated[Page, Depends()],
    status: Annotated[str | None, Query(max_length=32)] = None,
    flow: Annotated[
        Literal["first_line_in", "first_line_out", "second_line_in", "second_line_out", "transfer"]
        | None,
        Query(),
    ] = None,
    zone: Annotated[str | None, Query(max_length=16)] = None,
    declarant: Annotated[str | None, Query(max_length=18)] = None,
) -> Response:
    position = await views_caught_up(request)
    rows = await run_in_threadpool(
        services(request).declarations.page,
        after=page.after,
        limit=page.limit,
        filters={"status": status, "flow": flow, "zone": zone, "declarant": declarant},
        visible=visible(actor),
    )
    return json_response(page_body(rows, page.limit), position=position)


@router.get("/v1/declarations/{ref}", **doc(ok=(200, DeclarationDetail), errors=(401, 404)))
async def get_declaration(request: Request, ref: str, actor: Reader) -> Response:
    position = await views_caught_up(request)
    found = await run_in_threadpool(services(request).declarations.get, ref)
    if found is None or not can_see(actor, found[1]):
        raise NotFound(f"no declaration {ref}")
    return json_response(found[0], position=position)


@router.post(
    "/v1/declarations/{ref}/withdrawal",
    **doc(
        body=WithdrawDeclaration,
        ok=(200, DeclarationView),
        errors=(400, 401, 403, 404, 409, 413),
        idempotency_required=False,
    ),
)
async def withdraw_declaration(request: Request, ref: str) -> Response:
    return await execute(
        request,
        ENTERPRISE,
        WithdrawDeclaration,
        lambda ledger, cmd, idem, actor: ledger.withdraw_declaration(ref, cmd, actor, idem),
    )
