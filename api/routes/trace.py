"""Traceability: where goods came from and where they went, from any reference an officer holds."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.auth import Reader
from api.http import doc, json_response, position_header
from api.params import Integer
from api.routes.common import services, views_caught_up
from api.spreadsheets import (
    PAPER_COLUMN_KEYS,
    Format,
    Sheet,
    file_response,
    paper_cells,
    with_files,
)
from domain.errors import NotFound
from domain.scope import Scope
from projections.epcis import MEDIA_TYPE, declaration_facts, encode, epcis_document
from projections.trace import Trace
from projections.trace.queries import TraceLot

router = APIRouter(tags=["traceability"])
Direction = Literal["both", "upstream", "downstream"]
Limit = Annotated[Integer, Query(ge=1, le=5000, description="most lots in one answer")]
Cursor = Annotated[
    str | None,
    Query(
        max_length=19,
        pattern=r"^[0-9]+$",
        description="an answer's `next_cursor`: the next lots the reference matched",
    ),
]


LOT_COLUMNS = ("zone", "account_book", "item_no", "hs_code", "name", "unit", "goods_status")
# The columns of a trace's sheets, by key (their headers: api/spreadsheet_headers.py).
EVENT_COLUMNS = (
    "position",
    "occurred_at",
    "recorded_at",
    "type",
    "lot_id",
    *LOT_COLUMNS,
    "quantity",
    *PAPER_COLUMN_KEYS,
    "movement_id",
    "actor",
    "actor_role",
)
LOT_SHEET_COLUMNS = (
    "lot_id",
    *LOT_COLUMNS,
    "quantity_in",
    "on_hand",
    "origin",
    "movement_id",
    "occurred_at",
)
EDGE_COLUMNS = ("from", "to", "kind", "quantity")


def trace_sheets(found: Trace) -> list[Sheet]:
    """The trace as tables: its events (one row per event, the time-ordered chain, each with
    its lot's book, item and status: the CSV's one table), its lots and its edges."""
    lots = {lot.lot_id: lot for lot in found.lots}

    def described(lot: TraceLot | None) -> tuple[Any, ...]:
        if lot is None:
            return (None,) * len(LOT_COLUMNS)
        return tuple(getattr(lot, column) for column in LOT_COLUMNS)

    events = [
        (
            e.position,
            e.occurred_at,
            e.recorded_at,
            e.type,
            e.lot_id,
            e.zone,
            *described(lots.get(e.lot_id))[1:],
            e.quantity,
            *paper_cells(e.documents),
            e.movement_id,
            e.actor.name,
            e.actor.role,
        )
        for e in found.events
    ]
    lot_rows = [
        (
            lot.lot_id,
            *described(lot),
            lot.quantity_in,
            lot.on_hand,
            lot.origin,
            lot.movement_id,
            lot.occurred_at,
        )
        for lot in found.lots
    ]
    edges = [(e.from_, e.to, e.kind, e.quantity) for e in found.edges]
    return [
        Sheet.of("events", EVENT_COLUMNS, events),
        Sheet.of("lots", LOT_SHEET_COLUMNS, lot_rows),
        Sheet.of("edges", EDGE_COLUMNS, edges),
    ]


@router.get(
    "/v1/trace",
    **with_files(doc(ok=(200, Trace), errors=(401, 404, 422), position=True)),
)
async def trace(
    request: Request,
    actor: Reader,
    ref: Annotated[str, Query(min_length=1, max_length=64)],
    direction: Annotated[Direction, Query()] = "both",
    limit: Limit = 500,
    cursor: Cursor = None,
    format: Format = "json",
) -> Response:
    """The lots a reference touched (a declaration id or number, a train or flight reference,
    a container, a gate note, a lot id, an e-commerce order number), the lots upstream and/or
    downstream of them through transfers and processing, the edges between them and the
    time-ordered chain of what happened to each. An enterprise sees only lots of its own
    books, an operator its zone's; `truncated` says the answer stopped at `limit` lots, and
    when the reference itself matched more, `next_cursor` asks for the next ones.
    `format=csv`: the events, one row each with its lot's book, item and status; `format=xlsx`:
    that sheet, the lots' and the edges'; the same lots as the JSON answer (`limit`, `cursor`),
    its `next_cursor` in `X-Next-Cursor`."""
    position = await views_caught_up(request)
    scope, after = Scope.of(actor), int(cursor or 0)
    found = await run_in_threadpool(
        lambda: services(request).trace.trace(
            ref, direction=direction, scope=scope, limit=limit, after=after
        )
    )
    if found is None:
        raise NotFound(f"no goods found for {ref!r}")
    if format == "json":
        return json_response(found, position=position)
    sheets = trace_sheets(found)
    stem = f"trace-{ref}-{direction}"
    return await file_response(
        format, sheets, stem, position=position, next_cursor=found.next_cursor
    )


def _epcis_doc() -> dict[str, Any]:
    kwargs = doc(errors=(401, 404, 422), position=True)
    kwargs["responses"][200] = {
        "description": "An EPCIS 2.0 `EPCISDocument` (JSON-LD), valid against GS1's JSON Schema",
        "content": {MEDIA_TYPE: {"schema": {"type": "object"}}},
        "headers": position_header(required=True),
    }
    return kwargs


@router.get("/v1/trace/epcis", response_class=Response, **_epcis_doc())
async def trace_epcis(
    request: Request,
    actor: Reader,
    ref: Annotated[str, Query(min_length=1, max_length=64)],
    direction: Annotated[Direction, Query()] = "both",
    limit: Limit = 500,
    cursor: Cursor = None,
) -> Response:
    """The same trace as `GET /v1/trace` (same roles, tenancy, 404, `limit` and `cursor`) as a GS1
    EPCIS 2.0 document: one event per movement in the chain's order (gate passages and
    transfers as ObjectEvents, processing as a TransformationEvent), lots as class-level
    identifiers with quantities, the customs papers as business transactions.
    See docs/traceability.md for the mapping."""
    position = await views_caught_up(request)
    svc = services(request)

    def export() -> bytes | None:
        scope, after = Scope.of(actor), int(cursor or 0)
        found = svc.trace.trace(ref, direction=direction, scope=scope, limit=limit, after=after)
        if found is None:
            return None
        facts = declaration_facts(svc.declarations, found)
        return encode(epcis_document(found, declarations=facts))

    body = await run_in_threadpool(export)
    if body is None:
        raise NotFound(f"no goods found for {ref!r}")
    return Response(body, media_type=MEDIA_TYPE, headers={"X-Ledger-Position": str(position)})
