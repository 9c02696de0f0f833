"""Reference data: zones, trade modes, transport modes, units. No token needed."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.http import doc, json_response, list_type
from api.routes.common import services
from domain.reference import TRADE_MODES, TRANSPORT_MODES, UNITS
from domain.views import ZoneView, zone_view

router = APIRouter(tags=["reference"])


class CodeName(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    name: str


ZoneList = list_type(ZoneView, "ZoneList")
CodeList = list_type(CodeName, "CodeNameList")


def _codes(table: dict[str, str]) -> dict[str, object]:
    return {"items": [CodeName(code=k, name=v) for k, v in table.items()], "next_cursor": None}


@router.get("/v1/zones", **doc(ok=(200, ZoneList)))
def list_zones(request: Request) -> Response:
    now = datetime.now(UTC)
    zones = [zone_view(z, now) for z in services(request).ledger.zones.values()]
    return json_response({"items": zones, "next_cursor": None})


@router.get("/v1/reference/trade-modes", **doc(ok=(200, CodeList)))
def trade_modes() -> Response:
    return json_response(_codes(TRADE_MODES))


@router.get("/v1/reference/transport-modes", **doc(ok=(200, CodeList)))
def transport_modes() -> Response:
    return json_response(_codes(TRANSPORT_MODES))


@router.get("/v1/reference/units", **doc(ok=(200, CodeList)))
def units() -> Response:
    return json_response(_codes(UNITS))
