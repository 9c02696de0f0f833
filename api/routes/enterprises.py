"""Enterprises: registration (admin) and reads."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.auth import ADMIN, OFFICER, Reader
from api.http import (
    doc,
    json_response,
    list_type,
)
from api.problems import HttpProblem
from api.routes.common import Page, execute, page_body, services, views_caught_up
from domain.enterprise import ChangeCreditClass, RegisterEnterprise
from domain.errors import NotFound
from domain.scope import Scope
from domain.views import EnterpriseView, enterprise_view

router = APIRouter(tags=["enterprises"])
EnterpriseList = list_type(EnterpriseView, "EnterpriseList")


@router.post(
    "/v1/enterprises",
    **doc(
        body=RegisterEnterprise,
        ok=(201, EnterpriseView),
        errors=(400, 401, 403, 409, 413),
        idempotency_required=False,
    ),
)
async def register_enterprise(request: Request) -> Response:
    return await execute(
        request,
        ADMIN,
        RegisterEnterprise,
        lambda ledger, cmd, idem, actor: ledger.register_enterprise(cmd, actor, idem),
    )


@router.get(
    "/v1/enterprises", **doc(ok=(200, EnterpriseList), errors=(401, 403, 422), position=True)
)
async def list_enterprises(
    request: Request,
    actor: Reader,
    page: Annotated[Page, Depends()],
    credit_class: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    """Registered enterprises; `credit_class=dishonest` is the negative list."""
    scope = Scope.of(actor)
    if scope.role == "operator":
        raise HttpProblem(403, "forbidden", "Forbidden", "operators do not list enterprises")
    position = await views_caught_up(request)
    only = scope.narrowing.get("enterprise")
    rows = await run_in_threadpool(
        services(request).enterprises.page,
        after=page.after,
        limit=page.limit,
        only=only,
        credit_class=credit_class,
    )
    return json_response(page_body(rows, page.limit), position=position)


@router.get("/v1/enterprises/{uscc}", **doc(ok=(200, EnterpriseView), errors=(401, 403, 404)))
def get_enterprise(request: Request, uscc: str, actor: Reader) -> Response:
    scope = Scope.of(actor)
    if scope.role == "operator":
        raise HttpProblem(403, "forbidden", "Forbidden", "operators do not read enterprises")
    if not scope.sees(enterprises=(uscc,)):
        raise NotFound(f"no enterprise {uscc}")
    state = services(request).ledger.enterprise(uscc)
    if state is None:
        raise NotFound(f"no enterprise {uscc}")
    return json_response(enterprise_view(state))


@router.post(
    "/v1/enterprises/{uscc}/credit-class",
    **doc(
        body=ChangeCreditClass,
        ok=(200, EnterpriseView),
        errors=(400, 401, 403, 404, 409, 413),
        idempotency_required=False,
    ),
)
async def change_credit_class(request: Request, uscc: str) -> Response:
    return await execute(
        request,
        OFFICER,
        ChangeCreditClass,
        lambda ledger, cmd, idem, actor: ledger.change_credit_class(uscc, cmd, actor, idem),
    )
