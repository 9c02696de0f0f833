"""Declarations: submission, reads, and the decisions on them (withdrawal, payment, the
officer's, a transfer's acceptance or refusal by its destination enterprise)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.auth import ENTERPRISE, OFFICER, Reader
from api.http import (
    doc,
    json_response,
    list_type,
)
from api.routes.common import (
    Page,
    Since,
    Until,
    execute,
    page_body,
    services,
    time_param,
    views_caught_up,
)
from domain.declaration import (
    AcceptTransfer,
    PayDuties,
    RecordInspection,
    RefuseTransfer,
    RejectDeclaration,
    ReleaseDeclaration,
    SubmitDeclaration,
    WithdrawDeclaration,
)
from domain.errors import NotFound
from domain.events import Actor
from domain.privacy import masked, sees_buyer
from domain.scope import Scope
from domain.views import DeclarationDetail, DeclarationView
from ledger.requests import Idempotency
from projections.stats import StatsRow

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
        lambda ledger, cmd, idem, actor: ledger.submit_declaration(cmd, actor, required(idem)),
        key_required=True,
    )


def required(idem: Idempotency | None) -> Idempotency:
    assert idem is not None  # execute(key_required=True) answered 400 without one
    return idem


def can_see(actor: Actor, row: dict[str, Any]) -> bool:
    """A declaration is its declarant's and its zone's (a transfer's: either end's)."""
    return Scope.of(actor).sees(
        enterprises=(row["declarant"], row["destination_enterprise"]),
        zones=(row["zone"], row["destination_zone"]),
    )


@router.get("/v1/declarations", **doc(ok=(200, DeclarationList), errors=(401, 422), position=True))
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
    since: Since = None,
    until: Until = None,
) -> Response:
    """Declarations in submission order; `from`/`to` select on business time, half-open."""
    position = await views_caught_up(request)
    rows = await run_in_threadpool(
        lambda: services(request).declarations.page(
            after=page.after,
            limit=page.limit,
            filters={"status": status, "flow": flow, "zone": zone, "declarant": declarant},
            scope=Scope.of(actor),
            since=time_param("from", since),
            until=time_param("to", until),
        )
    )
    scope = Scope.of(actor)
    shown = [(cursor, for_reader(scope, d)) for cursor, d in rows]
    return json_response(page_body(shown, page.limit), position=position)


def for_reader(scope: Scope, d: DeclarationDetail) -> DeclarationDetail:
    """The declaration as this reader may see it: a retail list's buyer masked unless the
    reader is its declarant, an officer or an auditor (domain/privacy.py)."""
    if d.ecommerce is None or sees_buyer(scope, d.declarant):
        return d
    return msgspec.structs.replace(d, ecommerce=masked(d.ecommerce))


@router.get(
    "/v1/declarations/{ref}", **doc(ok=(200, DeclarationDetail), errors=(401, 404), position=True)
)
async def get_declaration(request: Request, ref: str, actor: Reader) -> Response:
    position = await views_caught_up(request)
    found = await run_in_threadpool(services(request).declarations.get, ref)
    if found is None or not can_see(actor, found[1]):
        raise NotFound(f"no declaration {ref}")
    return json_response(for_reader(Scope.of(actor), found[0]), position=position)


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
        lambda ledger, cmd, idem, actor: ledger.decide_on("withdrawal", ref, cmd, actor, idem),
    )


def _officer_action(path: str, body: type, action_name: str, summary: str) -> None:
    """Register one officer decision route (inspection result, release, rejection)."""

    async def action(request: Request, ref: str) -> Response:
        return await execute(
            request,
            OFFICER,
            body,
            lambda ledger, cmd, idem, actor: ledger.decide_on(action_name, ref, cmd, actor, idem),
        )

    action.__name__ = f"{action_name}_of_declaration"
    router.post(
        path,
        summary=summary,
        **doc(
            body=body,
            ok=(200, DeclarationView),
            errors=(*ACTION_ERRORS, 404),
            idempotency_required=False,
        ),
    )(action)


ACTION_ERRORS = (400, 401, 403, 409, 413)
_officer_action(
    "/v1/declarations/{ref}/inspection-results",
    RecordInspection,
    "inspection",
    "Record an inspection result (officer)",
)
_officer_action(
    "/v1/declarations/{ref}/release",
    ReleaseDeclaration,
    "release",
    "Release after document review (officer)",
)
_officer_action(
    "/v1/declarations/{ref}/rejection",
    RejectDeclaration,
    "rejection",
    "Reject a declaration (officer)",
)


@router.post(
    "/v1/declarations/{ref}/payments",
    **doc(
        body=PayDuties,
        ok=(200, DeclarationView),
        errors=(*ACTION_ERRORS, 404),
        idempotency_required=False,
    ),
)
async def pay_duties(request: Request, ref: str) -> Response:
    return await execute(
        request,
        ENTERPRISE,
        PayDuties,
        lambda ledger, cmd, idem, actor: ledger.decide_on("payment", ref, cmd, actor, idem),
    )


@router.post(
    "/v1/declarations/{ref}/acceptance",
    summary="Accept a transfer into your book (its destination enterprise)",
    **doc(
        body=AcceptTransfer,
        ok=(200, DeclarationView),
        errors=(*ACTION_ERRORS, 404),
        idempotency_required=False,
    ),
)
async def accept_transfer(request: Request, ref: str) -> Response:
    """A transfer into another enterprise's book waits in `awaiting_acceptance` until that
    enterprise accepts it; then it goes where its channel sends it. The body may be empty."""
    return await execute(
        request,
        ENTERPRISE,
        AcceptTransfer,
        lambda ledger, cmd, idem, actor: ledger.decide_on("acceptance", ref, cmd, actor, idem),
        empty_body=b"{}",
    )


@router.post(
    "/v1/declarations/{ref}/refusal",
    summary="Refuse a transfer into your book (its destination enterprise)",
    **doc(
        body=RefuseTransfer,
        ok=(200, DeclarationView),
        errors=(*ACTION_ERRORS, 404),
        idempotency_required=False,
    ),
)
async def refuse_transfer(request: Request, ref: str) -> Response:
    """The destination enterprise refuses a transfer awaiting its acceptance (final:
    `refused`); nothing was reserved for it, nothing moves."""
    return await execute(
        request,
        ENTERPRISE,
        RefuseTransfer,
        lambda ledger, cmd, idem, actor: ledger.decide_on("refusal", ref, cmd, actor, idem),
    )


StatsList = list_type(StatsRow, "StatsList")


@router.get(
    "/v1/stats", tags=["statistics"], **doc(ok=(200, StatsList), errors=(401, 422), position=True)
)
async def stats(
    request: Request,
    actor: Reader,
    group_by: Annotated[Literal["day", "month", "trade_mode", "flow"], Query()] = "month",
    zone: Annotated[str | None, Query(max_length=16)] = None,
    since: Since = None,
    until: Until = None,
) -> Response:
    """Declarations (not withdrawn, rejected or refused) and their CNY value, grouped."""
    position = await views_caught_up(request)
    rows = await run_in_threadpool(
        lambda: services(request).stats.stats(
            group_by=group_by,
            zone=zone,
            since=time_param("from", since),
            until=time_param("to", until),
            scope=Scope.of(actor),
        )
    )
    return json_response({"items": rows, "next_cursor": None}, position=position)
