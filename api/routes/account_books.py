"""Account books: opening, registering items, reading with balances."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.auth import ADMIN_OR_ENTERPRISE, Reader
from api.http import doc, json_response, list_type, position_header
from api.params import Integer
from api.problems import HttpProblem
from api.routes.common import (
    AsOf,
    Page,
    Since,
    Until,
    execute,
    min_position,
    page_body,
    services,
    time_param,
    views_caught_up,
)
from api.spreadsheets import (
    PAPER_COLUMN_KEYS,
    Format,
    Sheet,
    bounded,
    export_limit,
    file_part,
    file_response,
    paper_cells,
    with_files,
)
from domain.account_book import AccountBook, OpenAccountBook, RegisterItems
from domain.errors import NotFound
from domain.events import Actor
from domain.views import AccountBookView, BookItemView
from projections.inventory import BookEntry, StatementLine

router = APIRouter(tags=["account books"])
WRITE_ERRORS = (400, 401, 403, 409, 413)
EntryList = list_type(BookEntry, "BookEntryList")
StatementList = list_type(StatementLine, "StatementList")


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


@router.get(
    "/v1/account-books/{book_no}",
    **doc(ok=(200, AccountBookView), errors=(401, 404, 422), position=False),
)
async def get_account_book(
    request: Request,
    book_no: str,
    actor: Reader,
    as_of: AsOf = None,
) -> Response:
    """The book with each item's balances: now from the write side (always current), or
    `as_of` an instant from the stored history (the log up to the last event recorded then)."""
    ledger = services(request).ledger
    min_position(request)  # it matters only with `as_of`, but is checked either way
    book = await run_in_threadpool(ledger.account_book, book_no, actor)
    moment = time_param("as_of", as_of)
    if moment is None:
        return json_response(await run_in_threadpool(ledger.balances, book))
    position = await views_caught_up(request)
    found = await run_in_threadpool(services(request).inventory.book_as_of, book_no, moment)
    if found is None:
        raise NotFound(f"account book {book_no} was not open at {as_of}")
    head, rows = found
    items = [
        BookItemView(
            item_no=r.item_no,
            hs_code=r.hs_code,
            name=name,
            unit=r.unit,
            on_hand=r.on_hand,
            pending_out=r.pending_out,
            in_transit_out=r.in_transit_out,
            available=r.available,
        )
        for r, name in rows
    ]
    view = AccountBookView(
        book_no=head["book_no"], enterprise=head["enterprise"], zone=head["zone"], items=items
    )
    return json_response(view, position=position)


# The columns of an entries file, by key (their headers: api/spreadsheet_headers.py).
ENTRY_COLUMNS = (
    "position",
    "recorded_at",
    "occurred_at",
    "item_no",
    "hs_code",
    "name",
    "unit",
    "entry_kind",
    "quantity",
    "balance_after",
    "lot_id",
    "movement_id",
    *PAPER_COLUMN_KEYS,
)


def _entry_sheet(book: AccountBook, rows: list[tuple[int, BookEntry]]) -> Sheet:
    def row(e: BookEntry) -> tuple[Any, ...]:
        item = book.items.get(e.item_no)
        described = (item.hs_code, item.name, item.unit) if item else (None, None, None)
        return (
            e.position,
            e.recorded_at,
            e.occurred_at,
            e.item_no,
            *described,
            e.entry_kind,
            e.quantity,
            e.balance_after,
            e.lot_id,
            e.movement_id,
            *paper_cells(e.documents),
        )

    return Sheet.of("entries", ENTRY_COLUMNS, [row(e) for _, e in rows])


@router.get(
    "/v1/account-books/{book_no}/entries",
    **with_files(doc(ok=(200, EntryList), errors=(401, 404, 422), position=True)),
)
async def book_entries(
    request: Request,
    book_no: str,
    actor: Reader,
    page: Annotated[Page, Depends()],
    item_no: Annotated[Integer | None, Query(ge=1, le=2**31)] = None,
    since: Since = None,
    until: Until = None,
    format: Format = "json",
) -> Response:
    """The book's entries in log order, one per lot an event moved, with the item's running
    balance after each; `from`/`to` select on business time, half-open. `format=csv` or
    `xlsx`: a file of the entries from `cursor` on (`limit` is the JSON page's), at most
    10,000; `X-Next-Cursor` names where the next file starts when more remain."""
    book = await run_in_threadpool(services(request).ledger.account_book, book_no, actor)
    position = await views_caught_up(request)
    start, end = time_param("from", since), time_param("to", until)
    limit = page.limit if format == "json" else export_limit()
    rows = await run_in_threadpool(
        lambda: services(request).inventory.entries(
            book_no, after=page.after, limit=limit, item_no=item_no, since=start, until=end
        )
    )
    if format == "json":
        return json_response(page_body(rows, page.limit), position=position)
    kept, next_cursor = bounded(rows)
    stem = f"{book_no}-entries-{file_part(start, 'start')}-{file_part(end, 'end')}"
    sheet = _entry_sheet(book, kept)
    return await file_response(format, [sheet], stem, position=position, next_cursor=next_cursor)


@router.get(
    "/v1/account-books/{book_no}/statement",
    **with_files(doc(ok=(200, StatementList), errors=(401, 404, 422), position=True)),
)
async def book_statement(
    request: Request,
    book_no: str,
    actor: Reader,
    since: Since = None,
    until: Until = None,
    as_of: AsOf = None,
    format: Format = "json",
) -> Response:
    """Per item: opening, receipts (receipt + transfer_in + production), issues (issue +
    transfer_out + consumption + destruction), signed adjustments and closing for the
    business-time period `[from, to)`; `as_of` answers as the log stood then (record time).
    `format=csv` is `GET .../statement.csv`; `format=xlsx` the same table with number cells."""
    book, lines, position, period = await _statement(request, book_no, actor, since, until, as_of)
    if format == "json":
        return json_response({"items": lines, "next_cursor": None}, position=position)
    sheet = _statement_sheet(book, lines)
    return await file_response(format, [sheet], _statement_stem(book_no, period), position=position)


async def _statement(
    request: Request,
    book_no: str,
    actor: Actor,
    since: str | None,
    until: str | None,
    as_of: str | None,
) -> tuple[AccountBook, list[StatementLine], int, tuple[datetime | None, datetime | None]]:
    """The caller's book, its statement lines, the position they reflect and the period."""
    book = await run_in_threadpool(services(request).ledger.account_book, book_no, actor)
    position = await views_caught_up(request)
    start, end = time_param("from", since), time_param("to", until)
    moment = time_param("as_of", as_of)
    if start is not None and end is not None and end < start:
        raise HttpProblem.invalid(
            "query.to", "must not be before from", "to must not be before from"
        )
    lines = await run_in_threadpool(
        lambda: services(request).inventory.statement(book_no, since=start, until=end, as_of=moment)
    )
    return book, lines, position, (start, end)


STATEMENT_COLUMNS = (
    "item_no", "hs_code", "name", "unit", "opening", "receipts", "issues", "adjustments", "closing"
)  # fmt: skip


def _statement_sheet(book: AccountBook, lines: list[StatementLine]) -> Sheet:
    """The statement's table: each line with its item's registered HS code, name and unit."""

    def row(line: StatementLine) -> tuple[Any, ...]:
        item = book.items.get(line.item_no)
        described = (item.hs_code, item.name, item.unit) if item else (None, None, None)
        figures = (line.opening, line.receipts, line.issues, line.adjustments, line.closing)
        return (line.item_no, *described, *figures)

    return Sheet.of("statement", STATEMENT_COLUMNS, [row(line) for line in lines])


def _statement_stem(book_no: str, period: tuple[datetime | None, datetime | None]) -> str:
    start, end = period
    return f"{book_no}-statement-{file_part(start, 'start')}-{file_part(end, 'end')}"


def _csv_doc() -> dict[str, Any]:
    kwargs = doc(errors=(401, 404, 422), position=True)
    kwargs["responses"][200] = {
        "description": "The statement as CSV (RFC 4180, UTF-8 after a byte order mark, a header"
        " row, one row per item)",
        "content": {"text/csv": {"schema": {"type": "string"}}},
        "headers": {
            **position_header(required=True),
            "Content-Disposition": {
                "description": 'attachment; filename="<book>-statement-<from>-<to>.csv"',
                "required": True,
                "schema": {"type": "string", "pattern": '^attachment; filename="[^"]+"$'},
            },
        },
    }
    return kwargs


@router.get("/v1/account-books/{book_no}/statement.csv", response_class=Response, **_csv_doc())
async def book_statement_csv(
    request: Request,
    book_no: str,
    actor: Reader,
    since: Since = None,
    until: Until = None,
    as_of: AsOf = None,
) -> Response:
    """The statement of `GET .../statement` (same readers, period, `as_of` and figures) as a
    CSV file (UTF-8 after a byte order mark): `item_no,hs_code,name,unit,opening,receipts,
    issues,adjustments,closing`, the decimals in plain notation, for spreadsheets and
    reconciliation tools; text cells guarded against formula injection (api/spreadsheets.py)."""
    book, lines, position, period = await _statement(request, book_no, actor, since, until, as_of)
    sheet = _statement_sheet(book, lines)
    return await file_response("csv", [sheet], _statement_stem(book_no, period), position=position)
