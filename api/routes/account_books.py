"""Account books: opening, registering items, reading with balances."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.auth import AdminOrEnterprise, Reader
from api.http import decode_body, doc, idempotency, json_response, outcome_response, read_body
from api.routes.common import services
from domain.account_book import OpenAccountBook, RegisterItems
from domain.views import AccountBookView, account_book_view

router = APIRouter(tags=["account books"])


@router.post(
    "/v1/account-books",
    **doc(
        body=OpenAccountBook,
        ok=(201, AccountBookView),
        errors=(400, 401, 403, 409, 413),
        idempotency_required=False,
    ),
)
async def open_account_book(request: Request, actor: AdminOrEnterprise) -> Response:
    cmd = decode_body(await read_body(request), OpenAccountBook)
    svc = services(request)
    outcome = await run_in_threadpool(
        svc.ledger.open_account_book, cmd, actor, idempotency(request, actor, required=False)
    )
    svc.wrote(outcome.position)
    return outcome_response(outcome)


@router.post(
    "/v1/account-books/{book_no}/items",
    **doc(
        body=RegisterItems,
        ok=(201, AccountBookView),
        errors=(400, 401, 403, 404, 409, 413),
        idempotency_required=False,
    ),
)
async def register_items(request: Request, book_no: str, actor: AdminOrEnterprise) -> Response:
    cmd = decode_body(await read_body(request), RegisterItems)
    svc = services(request)
    outcome = await run_in_threadpool(
        svc.ledger.register_items, book_no, cmd, actor, idempotency(request, actor, required=False)
    )
    svc.wrote(outcome.position)
    return outcome_response(outcome)


@router.get("/v1/account-books/{book_no}", **doc(ok=(200, AccountBookView), errors=(401, 404)))
def get_account_book(request: Request, book_no: str, actor: Reader) -> Response:
    book = services(request).ledger.account_book(book_no, actor)
    return json_response(account_book_view(book))
