"""Movements (every kind of API.md) and lots."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.auth import Reader
from api.batch import Batch, BatchAnswer, run_batch
from api.http import doc, json_response, list_type
from api.routes.common import (
    Page,
    Since,
    Until,
    execute,
    page_body,
    required_key,
    services,
    time_param,
    views_caught_up,
)
from domain.movement_kinds import MovementBody
from domain.movements import MovementAnswer, MovementKind
from domain.scope import Scope
from domain.views import LotDetail, lot_detail

router = APIRouter(tags=["movements"])
MovementList = list_type(MovementAnswer, "MovementList")


@router.post(
    "/v1/movements",
    **doc(
        body=MovementBody,
        ok=(201, MovementAnswer),
        errors=(400, 401, 403, 409, 413),
        idempotency_required=True,
    ),
)
async def record_movement(request: Request) -> Response:
    """Goods move: `gate_in`, `gate_out`, `transfer_dispatch`, `transfer_receipt` (an operator
    of the zone), `processing`, `adjustment` (the book's enterprise), `in_zone_transfer` (the
    receiving book's enterprise) and `destruction` (the officer who witnessed it). The answer is
    the recorded movement with its log `position` (the same on a replay)."""
    return await execute(
        request,
        ("operator", "enterprise", "officer"),
        # A tagged union is a valid msgspec body type, but not a `type[T]` to mypy.
        MovementBody,  # type: ignore[arg-type]
        lambda ledger, cmd, idem, actor: ledger.record_movement(cmd, actor, required_key(idem)),
        key_required=True,
    )


@router.post(
    "/v1/movements/batch",
    **doc(
        body=Batch,
        ok=(207, BatchAnswer),
        errors=(400, 401, 403, 413),
        batch=True,
    ),
)
async def record_movements(request: Request) -> Response:
    """Up to 500 movements in one request: `items` of `{idempotency_key, body}`, each what one
    `POST /v1/movements` would carry (its key is that route's). 207 with `results` in the
    items' order, each `{status, body}` as that route would answer (201 and the movement with
    its `position`, or the problem; `replayed: true` for a key already used for the same
    body). Decided in order (a later item sees the goods an earlier one moved) and committed
    together; one refused never stops the others; the batch sent again answers each recorded
    item as first answered. Each item counts as one request against the key's rate limit: a
    batch the key cannot pay for now is 429 whole (nothing decided), one of more items than
    the key's burst is 422 at `$.items` (`batch_exceeds_rate_limit`)."""
    return await run_batch(
        request,
        ("operator", "enterprise", "officer"),
        MovementBody,  # type: ignore[arg-type]  # a tagged union, as for the single route
        "/v1/movements",
        lambda ledger, items, actor: ledger.record_movements(items, actor),
        lambda _ledger, _actor, outcome: outcome,
    )


@router.get("/v1/movements", **doc(ok=(200, MovementList), errors=(401, 422), position=True))
async def list_movements(
    request: Request,
    actor: Reader,
    page: Annotated[Page, Depends()],
    kind: Annotated[MovementKind | None, Query()] = None,
    flagged: Annotated[bool | None, Query()] = None,
    account_book: Annotated[str | None, Query(max_length=64)] = None,
    zone: Annotated[str | None, Query(max_length=16)] = None,
    since: Since = None,
    until: Until = None,
) -> Response:
    """Movements in log order, each as `GET /v1/movements/{id}` answers it; `from`/`to` select
    on business time, half-open. `flagged=true` finds the stocktake decreases flagged for an
    officer (domain/stocktake.py). An enterprise sees its own books' movements, an operator its
    zone's, everyone else all of them."""
    start, end = time_param("from", since), time_param("to", until)
    position = await views_caught_up(request)
    filters = {
        "kind": kind,
        "flagged": None if flagged is None else int(flagged),
        "account_book": account_book,
        "zone": zone,
    }
    rows = await run_in_threadpool(
        lambda: services(request).inventory.movements(
            after=page.after,
            limit=page.limit,
            filters=filters,
            scope=Scope.of(actor),
            since=start,
            until=end,
        )
    )
    return json_response(page_body(rows, page.limit), position=position)


@router.get("/v1/movements/{movement_id}", **doc(ok=(200, MovementAnswer), errors=(401, 404)))
def get_movement(request: Request, movement_id: str, actor: Reader) -> Response:
    return json_response(services(request).ledger.movement(movement_id, actor))


@router.get("/v1/lots/{lot_id}", **doc(ok=(200, LotDetail), errors=(401, 404)))
def get_lot(request: Request, lot_id: str, actor: Reader) -> Response:
    return json_response(lot_detail(services(request).ledger.lot(lot_id, actor)))
