"""The monitoring dashboard's figures beside GET /v1/stats (issue #20 item 4): channels and
inspection rate, clearance time (submission to release), stock by zone and goods status.

Same readers and tenancy as GET /v1/stats (an enterprise its own declarations and lots, an
operator its zone's, everyone else all); the page /ui/dashboard draws exactly these answers.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.auth import Reader
from api.http import doc, json_response, list_type
from api.routes.common import Since, Until, services, time_param, views_caught_up
from domain.scope import Scope
from projections.stats import ChannelRow, ClearanceRow, DashboardQueries, StockRow

router = APIRouter(tags=["statistics"])
ChannelList = list_type(ChannelRow, "ChannelStatsList")
ClearanceList = list_type(ClearanceRow, "ClearanceTimeList")
StockList = list_type(StockRow, "StockStatsList")
Zone = Annotated[str | None, Query(max_length=16)]


def _queries(request: Request) -> DashboardQueries:
    return DashboardQueries(services(request).stats.views)


@router.get("/v1/stats/channels", **doc(ok=(200, ChannelList), errors=(401, 422), position=True))
async def channel_stats(
    request: Request,
    actor: Reader,
    group_by: Annotated[Literal["day", "month", "trade_mode", "flow", "zone"], Query()] = "month",
    zone: Zone = None,
    since: Since = None,
    until: Until = None,
) -> Response:
    """Every declaration submitted in `[from, to)` (business time; withdrawn, rejected and
    refused ones too: the channel is decided at submission) by risk channel, grouped as GET
    /v1/stats groups; `inspection_rate` = red / declarations (4 decimals, half up)."""
    position = await views_caught_up(request)
    queries = _queries(request)
    rows = await run_in_threadpool(
        lambda: queries.channels(
            group_by=group_by,
            zone=zone,
            since=time_param("from", since),
            until=time_param("to", until),
            scope=Scope.of(actor),
        )
    )
    return json_response({"items": rows, "next_cursor": None}, position=position)


@router.get(
    "/v1/stats/clearance-time",
    **doc(ok=(200, ClearanceList), errors=(401, 422), position=True),
)
async def clearance_time(
    request: Request,
    actor: Reader,
    group_by: Annotated[Literal["channel", "zone", "trade_mode", "month"], Query()] = "channel",
    zone: Zone = None,
    since: Since = None,
    until: Until = None,
) -> Response:
    """Overall clearance time (整体通关时间): the declarations released in `[from, to)` (the
    release's business time), each timed from its submission to the event that made it
    `released`; per group their count and the nearest-rank p50 and p90, in whole seconds and
    in hours (2 decimals). `month` is the China month of the release."""
    position = await views_caught_up(request)
    queries = _queries(request)
    rows = await run_in_threadpool(
        lambda: queries.clearance_time(
            group_by=group_by,
            zone=zone,
            since=time_param("from", since),
            until=time_param("to", until),
            scope=Scope.of(actor),
        )
    )
    return json_response({"items": rows, "next_cursor": None}, position=position)


@router.get("/v1/stats/stock", **doc(ok=(200, StockList), errors=(401, 422), position=True))
async def stock(request: Request, actor: Reader, zone: Zone = None) -> Response:
    """What is on hand now, per zone, goods status (`bonded`, `domestic`) and unit: the lots
    with something on hand and their quantity (never added across units)."""
    position = await views_caught_up(request)
    queries = _queries(request)
    rows = await run_in_threadpool(lambda: queries.stock(zone=zone, scope=Scope.of(actor)))
    return json_response({"items": rows, "next_cursor": None}, position=position)
