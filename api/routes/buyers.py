"""A buyer's yearly cross-border retail quota, for the platforms that sell to the buyer.

The path carries a resident identity number: the access log and the error log write this
route's template, never its path (api/observability.py `PERSONAL_PATHS`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.auth import allow
from api.http import doc, json_response
from api.params import Integer
from api.routes.common import services
from domain.declaration import SHANGHAI
from domain.events import Actor
from domain.quota import QuotaStanding

router = APIRouter(tags=["buyers"])
# Who may look a buyer's quota up: the enterprises that sell to buyers (before they submit a
# list), customs officers and auditors. Not admins (they manage keys and enterprises, not
# buyers) nor gate operators: a buyer's purchases are personal data, shown to those who need
# them (Personal Information Protection Law, art. 6 [verify]).
QuotaReader = Annotated[Actor, allow("enterprise", "officer", "auditor")]
BuyerId = Annotated[str, Path(max_length=64, description="resident identity number, 18 chars")]
Year = Annotated[Integer | None, Query(ge=2000, le=2099, description="default: this year")]


@router.get(
    "/v1/buyers/{buyer_id}/quota",
    **doc(ok=(200, QuotaStanding), errors=(401, 403, 404, 422)),
)
async def buyer_quota(
    request: Request, buyer_id: BuyerId, actor: QuotaReader, year: Year = None
) -> Response:
    """`{year, limit, used, remaining}` of the buyer's CNY 26,000 a calendar year in China, as
    the next retail list is checked against (the write side's own figures)."""
    ledger = services(request).ledger
    wanted = year if year is not None else ledger.clock().astimezone(SHANGHAI).year
    standing = await run_in_threadpool(ledger.buyer_quota, buyer_id, wanted)
    return json_response(standing)
