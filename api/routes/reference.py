"""Reference data: zones, trade modes, transport modes, units (no token needed), and the tables
customs publish: exchange rates, tariff, positive list (no token) and risk rules (officers and
auditors read them), each published by an officer as a dated, versioned event."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.auth import OFFICER, AuditReader
from api.http import doc, json_response, list_type
from api.problems import HttpProblem
from api.routes.common import AsOf, execute, services, time_param
from domain.declaration import SHANGHAI
from domain.errors import NotFound
from domain.reference import TRADE_MODES, TRANSPORT_MODES, UNITS
from domain.reference_data import (
    BODIES,
    KINDS,
    PUBLIC_KINDS,
    Kind,
    Publication,
    Published,
    ReferenceRegister,
    TariffRow,
)
from domain.risk import RiskRules
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


# -- published reference tables (docs/reference-data.md) ------------------------------------


class PublicationMeta(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One version of a published table: which, when, by whom, from what source."""

    kind: str
    version: int
    effective_from: date
    month: str | None = None
    digest: str
    source: str
    reason: str | None = None
    published_at: datetime
    published_by: str


class TableView(PublicationMeta, frozen=True, kw_only=True, omit_defaults=True):
    """One version of a published table, with its figures."""

    rates: dict[str, Decimal] | None = None
    rows: list[TariffRow] | None = None
    hs_codes: list[str] | None = None
    rules: RiskRules | None = None


class VersionView(PublicationMeta, frozen=True, kw_only=True, omit_defaults=True):
    """One version of a published table, without its figures: `entries` counts them."""

    entries: int


VersionList = list_type(VersionView, "ReferenceVersionList")
On = Annotated[
    str | None,
    Query(max_length=10, description="a day YYYY-MM-DD (default: today in China)"),
]


def _day(value: str | None) -> date:
    if value is None:
        return datetime.now(SHANGHAI).date()
    try:
        if len(value) != 10 or not value.isascii():
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise HttpProblem.invalid(
            "query.on", "a day YYYY-MM-DD", "on must be a day YYYY-MM-DD"
        ) from None


def _entries(p: Publication) -> int:
    c = p.content
    return len(c.rates or c.rows or c.hs_codes or ()) or (1 if c.rules is not None else 0)


def table_view(p: Publication) -> TableView:
    c = p.content
    return TableView(**_meta(p), rates=c.rates, rows=c.rows, hs_codes=c.hs_codes, rules=c.rules)


def _meta(p: Publication) -> dict[str, Any]:
    return {
        "kind": p.kind,
        "version": p.version,
        "effective_from": p.effective_from,
        "month": p.month,
        "digest": p.digest,
        "source": p.source,
        "reason": p.reason,
        "published_at": p.published_at,
        "published_by": p.published_by,
    }


def _register(request: Request, kind: str) -> ReferenceRegister:
    register = services(request).ledger.register(kind)
    if register is None:
        raise NotFound(f"no {kind} table has been published")
    return register


def _add_kind(kind: Kind) -> None:
    body_type = BODIES[kind]
    readers = () if kind in PUBLIC_KINDS else (401, 403)

    async def publish(request: Request) -> Response:
        return await execute(
            request,
            OFFICER,
            body_type,
            lambda ledger, cmd, idem, actor: ledger.publish_reference(kind, cmd, actor, idem),
        )

    async def table_in_force(day: date, known_at: datetime | None, request: Request) -> Response:
        register = await run_in_threadpool(_register, request, kind)
        p = register.in_force(day, known_at)
        if p is None:
            as_known = known_at.isoformat() if known_at else None
            raise NotFound(
                f"no {kind} table in force on {day} as known at {as_known}"
                if as_known
                else f"no {kind} table in force on {day}"
            )
        return json_response(table_view(p))

    async def all_versions(request: Request) -> Response:
        register = await run_in_threadpool(_register, request, kind)
        items = [VersionView(**_meta(p), entries=_entries(p)) for p in register.publications]
        return json_response({"items": items, "next_cursor": None})

    if kind in PUBLIC_KINDS:

        async def in_force(request: Request, on: On = None, as_of: AsOf = None) -> Response:
            return await table_in_force(_day(on), time_param("as_of", as_of), request)

        async def versions(request: Request) -> Response:
            return await all_versions(request)

    else:  # selection criteria are not public: officers and auditors read the risk rules

        async def in_force(  # type: ignore[misc]
            request: Request, actor: AuditReader, on: On = None, as_of: AsOf = None
        ) -> Response:
            return await table_in_force(_day(on), time_param("as_of", as_of), request)

        async def versions(request: Request, actor: AuditReader) -> Response:  # type: ignore[misc]
            return await all_versions(request)

    name = kind.replace("-", "_")
    publish.__name__, in_force.__name__, versions.__name__ = (
        f"publish_{name}",
        f"{name}_in_force",
        f"{name}_versions",
    )
    path = f"/v1/reference/{kind}"
    router.post(
        path,
        summary=f"Publish a version of the {kind} table (officers)",
        **doc(
            body=body_type,
            ok=(201, Published),
            errors=(400, 401, 403, 409, 413),
            idempotency_required=False,
        ),
    )(publish)
    router.get(
        path,
        summary=f"The {kind} table in force on a day",
        **doc(ok=(200, TableView), errors=(*readers, 404, 422)),
    )(in_force)
    router.get(
        f"{path}/versions",
        summary=f"Every published version of the {kind} table",
        **doc(ok=(200, VersionList), errors=(*readers, 404)),
    )(versions)


for _kind in KINDS:
    _add_kind(_kind)
