"""Movements (every kind of API.md) and lots."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.auth import Reader
from api.http import doc, json_response
from api.routes.common import execute, services
from domain.movement_kinds import MovementBody
from domain.movements import MovementAnswer
from domain.views import LotDetail, lot_detail
from ledger.requests import Idempotency

router = APIRouter(tags=["movements"])


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
    of the zone), `processing` and `adjustment` (the book's enterprise). The answer is the
    recorded movement with its log `position` (the same on a replay)."""
    return await execute(
        request,
        ("operator", "enterprise"),
        # A tagged union is a valid msgspec body type, but not a `type[T]` to mypy.
        MovementBody,  # type: ignore[arg-type]
        lambda ledger, cmd, idem, actor: ledger.record_movement(cmd, actor, _key(idem)),
        key_required=True,
    )


def _key(idem: Idempotency | None) -> Idempotency:
    assert idem is not None  # execute(key_required=True) answered 400 without one
    return idem


@router.get("/v1/movements/{movement_id}", **doc(ok=(200, MovementAnswer), errors=(401, 404)))
def get_movement(request: Request, movement_id: str, actor: Reader) -> Response:
    return json_response(services(request).ledger.movement(movement_id, actor))


@router.get("/v1/lots/{lot_id}", **doc(ok=(200, LotDetail), errors=(401, 404)))
def get_lot(request: Request, lot_id: str, actor: Reader) -> Response:
    return json_response(lot_detail(services(request).ledger.lot(lot_id, actor)))
