"""Tax bills (issue #18 item 4, first part): projections/tax_bills.py, domain/tax_bills.py."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.auth import Reader
from api.http import doc, json_response, list_type
from api.routes.common import Page, page_body, services, views_caught_up
from api.routes.declarations import ACTION_ERRORS, pay_duties
from domain.declaration import SHANGHAI, PayDuties
from domain.scope import Scope
from domain.views import DeclarationView
from projections.tax_bills import TaxBillView

router = APIRouter(tags=["tax bills"])
TaxBillList = list_type(TaxBillView, "TaxBillList")


@router.get("/v1/tax-bills", **doc(ok=(200, TaxBillList), errors=(401, 422), position=True))
async def list_tax_bills(
    request: Request,
    actor: Reader,
    page: Annotated[Page, Depends()],
    status: Annotated[Literal["unpaid", "overdue", "paid"] | None, Query()] = None,
) -> Response:
    """The duties customs ask for, one bill per declaration from the day it awaits payment, in
    the order they were assessed: due 15 days after issue (past a weekend), a late fee of 0.05%
    a day on what is unpaid after that, both as of today (China time). `status`: `unpaid` (not
    yet due), `overdue`, `paid`. An enterprise sees its own declarations' bills, an operator
    its zone's, everyone else all."""
    position = await views_caught_up(request)
    svc = services(request)
    today = svc.ledger.clock().astimezone(SHANGHAI).date()
    rows = await run_in_threadpool(
        lambda: svc.tax_bills.bills(
            after=page.after, limit=page.limit, scope=Scope.of(actor), status=status, today=today
        )
    )
    return json_response(page_body(rows, page.limit), position=position)


@router.post(
    "/v1/tax-bills/{bill_id}/payments",
    **doc(
        body=PayDuties,
        ok=(200, DeclarationView),
        errors=(*ACTION_ERRORS, 404),
        idempotency_required=False,
    ),
)
async def pay_bill(request: Request, bill_id: str) -> Response:
    """Pay a bill (its enterprise): the same payment as `POST /v1/declarations/{id}/payments` of
    the declaration whose duties it asks for (a bill's id is its declaration's), with the same
    answer; the bill shows it once the views have it."""
    return await pay_duties(request, bill_id)
