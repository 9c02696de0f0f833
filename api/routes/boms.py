"""Bills of materials of an account book: register one, read one (domain/bom.py)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.auth import ADMIN_OR_ENTERPRISE, Reader
from api.http import doc, json_response
from api.routes.common import execute, services
from domain.bom import BomView, RegisterBom

router = APIRouter(tags=["bills of materials"])


@router.post(
    "/v1/account-books/{book_no}/boms",
    **doc(
        body=RegisterBom,
        ok=(201, BomView),
        errors=(400, 401, 403, 404, 409, 413),
        idempotency_required=False,
    ),
)
async def register_bom(request: Request, book_no: str) -> Response:
    """Register a bill of materials in the book (its enterprise, or an admin). `inputs` give
    each input's net consumption per ONE unit of `output_item_no` and its process loss rate;
    the answer adds `unit_consumption = net / (1 - loss)` rounded to 6 decimals. `tolerance`
    (default 0.02) is the fraction of the expected consumption a processing movement may
    deviate by. Immutable: the same `bom_ref` again in the book is 409 `already_exists`."""
    return await execute(
        request,
        ADMIN_OR_ENTERPRISE,
        RegisterBom,
        lambda ledger, cmd, idem, actor: ledger.register_bom(book_no, cmd, actor, idem),
    )


@router.get(
    "/v1/account-books/{book_no}/boms/{bom_ref}", **doc(ok=(200, BomView), errors=(401, 404))
)
def get_bom(request: Request, book_no: str, bom_ref: str, actor: Reader) -> Response:
    """A BOM of a book the caller may read; unknown, or another tenant's, is 404."""
    return json_response(services(request).ledger.bom(book_no, bom_ref, actor))
