"""Inventory across zones and books, now or as of a past instant (from the inventory view)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.auth import Reader
from api.http import doc, json_response, list_type
from api.params import Integer
from api.routes.common import AsOf, Page, page_body, services, time_param, views_caught_up
from domain.scope import Scope
from projections.inventory import InventoryRow

router = APIRouter(tags=["inventory"])
InventoryList = list_type(InventoryRow, "InventoryList")


@router.get("/v1/inventory", **doc(ok=(200, InventoryList), errors=(401, 422), position=True))
async def inventory(
    request: Request,
    actor: Reader,
    page: Annotated[Page, Depends()],
    zone: Annotated[str | None, Query(max_length=16)] = None,
    account_book: Annotated[str | None, Query(max_length=64)] = None,
    item_no: Annotated[Integer | None, Query(ge=1, le=2**31)] = None,
    hs_code: Annotated[str | None, Query(max_length=10)] = None,
    as_of: AsOf = None,
) -> Response:
    """Every registered book item the caller may see, with its balances; `as_of` answers from
    the stored history as the log stood at that instant (record time)."""
    position = await views_caught_up(request)
    moment = time_param("as_of", as_of)
    rows = await run_in_threadpool(
        lambda: services(request).inventory.inventory(
            after=page.after,
            limit=page.limit,
            filters={
                "zone": zone,
                "book_no": account_book,
                "item_no": item_no,
                "hs_code": hs_code,
            },
            scope=Scope.of(actor),
            as_of=moment,
        )
    )
    return json_response(page_body(rows, page.limit), position=position)
