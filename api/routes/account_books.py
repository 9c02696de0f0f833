"""Account books: opening, registering items, reading with balances."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.auth import ADMIN_OR_ENTERPRISE, Reader
from api.http import doc, json_response
from api.routes.common import execute, services
from domain.account_book import OpenAccountBook, RegisterItems
from domain.views import AccountBookView

router = APIRouter(tags=["account books"])
WRITE_ERRORS = (400, 401, 403, 409, 413)


@router.post(
    "/v1/account-books",
    **doc(
        body=OpenAccountBook,
        ok=(201, AccountBookView),
        errors=WRITE_ERRORS,
        idempotency_required=False,
    ),
)
async def open_account_book(request: Request) -> Response:
    return await execute(
        request,
        ADMIN_OR_ENTERPRISE,
        OpenAccountBook,
        lambda ledger, cmd, idem, actor: ledger.open_account_book(cmd, actor, idem),
    )


@router.post(
    "/v1/account-books/{book_no}/items",
    **doc(
        body=RegisterItems,
        ok=(201, AccountBookView),
        errors=(*WRITE_ERRORS, 404),
        idempotency_required=False,
    ),
)
async def register_items(request: Request, book_no: str) -> Response:
    return await execute(
        request,
        ADMIN_OR_ENTERPRISE,
        RegisterItems,
        lambda ledger, cmd, idem, actor: ledger.register_items(book_no, cmd, actor, idem),
    )


@router.get("/v1/account-books/{book_no}", **doc(ok=(200, AccountBookView), errors=(401, 404)))
def get_account_book(request: Request, book_no: str, actor: Reader) -> Response:
    ledger = services(request).ledger
    return json_response(ledger.balances(ledger.account_book(book_no, actor)))
