"""Tax bills (issue #18 item 4): projections/tax_bills.py, domain/tax_bills.py,
domain/liabilities.py."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.auth import ENTERPRISE, OFFICER, Reader
from api.http import _ref, doc, json_response, list_type
from api.routes.common import Page, execute, page_body, services, views_caught_up
from api.routes.declarations import ACTION_ERRORS, pay_duties
from domain.declaration import SHANGHAI, PayDuties, Str255
from domain.liabilities import LiabilityView
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
    """The duties customs ask for: one bill per declaration from the day it awaits payment and
    one per duty liability (write-off differences, stocktake shortages) from the day it is
    recorded, in the order they were assessed; due 15 days after issue (past a weekend), a late
    fee of 0.05% a day on what is unpaid after that, both as of today (China time), or the fee
    the settling payment fixed. `status`: `unpaid` (not yet due), `overdue`, `paid`. An
    enterprise sees its own bills, an operator its zone's, everyone else all."""
    position = await views_caught_up(request)
    svc = services(request)
    today = svc.ledger.clock().astimezone(SHANGHAI).date()
    rows = await run_in_threadpool(
        lambda: svc.tax_bills.bills(
            after=page.after, limit=page.limit, scope=Scope.of(actor), status=status, today=today
        )
    )
    return json_response(page_body(rows, page.limit), position=position)


def _payment_doc() -> dict[str, Any]:
    kwargs = doc(
        body=PayDuties,
        ok=(200, DeclarationView),
        errors=(*ACTION_ERRORS, 404),
        idempotency_required=False,
    )
    content = kwargs["responses"][200]["content"]["application/json"]
    content["schema"] = {"oneOf": [_ref(DeclarationView), _ref(LiabilityView)]}
    return kwargs


@router.post("/v1/tax-bills/{bill_id}/payments", **_payment_doc())
async def pay_bill(request: Request, bill_id: str) -> Response:
    """Pay a bill (its enterprise). A declaration's bill: the same payment as `POST
    /v1/declarations/{id}/payments` of the declaration whose duties it asks for, with the same
    answer. A liability's (a write-off's differences, a stocktake shortage): a payment in CNY
    up to what is outstanding; the one that settles it fixes the late fee owed that day; the
    answer is the liability. The bill shows it once the views have it."""
    ledger = services(request).ledger
    if await run_in_threadpool(ledger.liability, bill_id) is None:
        return await pay_duties(request, bill_id)
    return await execute(
        request,
        ENTERPRISE,
        PayDuties,
        lambda ledger, cmd, idem, actor: ledger.pay_liability(bill_id, cmd, actor, idem),
    )


class ForceMajeure(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Body of POST /v1/tax-bills/{bill_id}/force-majeure (an officer)."""

    reason: Str255


@router.post(
    "/v1/tax-bills/{bill_id}/force-majeure",
    **doc(
        body=ForceMajeure,
        ok=(200, LiabilityView),
        errors=(*ACTION_ERRORS, 404),
        idempotency_required=False,
    ),
)
async def accept_force_majeure(request: Request, bill_id: str) -> Response:
    """An officer accepts a force-majeure reason for a stocktake shortage's liability not yet
    paid (recorded with the officer): nothing is owed, the bill is cancelled. A write-off's
    assessment is 409 `not_a_shortage`; a paid or waived one 409 `invalid_transition`."""
    return await execute(
        request,
        OFFICER,
        ForceMajeure,
        lambda ledger, cmd, idem, actor: ledger.waive_liability(bill_id, cmd, actor, idem),
    )
