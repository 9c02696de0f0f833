"""Write-offs of a book's period (domain/write_offs.py): submit, list, read (JSON, CSV, PDF,
`as_of`), certify. The figures are computed here from the read side at a log position and
handed to the command, which refuses them if any item of the book moved since."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import msgspec
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.auth import ENTERPRISE, OFFICER, Reader
from api.http import doc, json_response, list_type
from api.routes.common import (
    AsOf,
    Page,
    execute,
    page_body,
    required_key,
    services,
    time_param,
    views_caught_up,
)
from api.services import Services
from api.spreadsheets import XLSX_CONTENT, file_response
from api.write_off_report import ItemInfo, render_pdf, sheet
from domain import write_offs as wo
from domain.errors import Conflict, NotFound
from domain.events import Actor
from domain.scope import Scope
from ledger.commands import Idempotency, Ledger, Outcome
from ledger.store import last_at_or_before

router = APIRouter(tags=["write-offs"])
WRITE_ERRORS = (400, 401, 403, 404, 409, 413)
# A write-off computed while the book's items moved is computed again, this many times.
ATTEMPTS = 3
# How long a submission waits for the views to reach the log's head before computing.
VIEW_WAIT_SECONDS = 10.0


class WriteOffRow(msgspec.Struct, frozen=True, kw_only=True):
    write_off_id: str
    account_book: str
    period: wo.WriteOffPeriod
    status: wo.WriteOffStatus


WriteOffList = list_type(WriteOffRow, "WriteOffList")


def computed(
    svc: Services, actor: Actor, book_no: str, period: wo.WriteOffPeriod
) -> wo.ComputedFigures:
    """The period's figures from the views, at the position they have reached (at least the
    log's head when the request came, unless they lag more than VIEW_WAIT_SECONDS)."""
    head = svc.app.log.head()
    if head is not None:
        svc.runner.wait_for(head.position, VIEW_WAIT_SECONDS)
    position = svc.runner.position  # what the views hold at least (they may be further on)
    record = last_at_or_before(svc.app.log, position, None) if position else None
    start, end = wo.period_bounds(period)
    items, runs, unchecked, versions = svc.write_offs.figures(
        book_no, start=start, end=end, position=record.position if record else 0
    )
    terms = {}
    for ref in runs:
        try:
            bom = svc.ledger.bom(book_no, ref, actor)
        except NotFound:
            continue
        terms[ref] = wo.BomTerms(
            output_item_no=bom.output_item_no,
            tolerance=bom.tolerance,
            inputs={i.item_no: (i.net_consumption, i.loss_rate) for i in bom.inputs},
        )
    return wo.ComputedFigures(
        items=items,
        consumption=wo.consumption_lines(runs, terms),
        unchecked_processing=unchecked,
        position=record.position if record else 0,
        head_hash=record.hash.hex() if record else "",
        stock_versions=versions,
    )


@router.post(
    "/v1/account-books/{book_no}/write-offs",
    **doc(
        body=wo.SubmitWriteOff,
        ok=(201, wo.WriteOffView),
        errors=WRITE_ERRORS,
        idempotency_required=True,
    ),
)
async def submit_write_off(request: Request, book_no: str) -> Response:
    """Write a period of the book off (its enterprise; Idempotency-Key required): the figures
    per item and customs status from the log (business time, China days), the count beside
    them, the consumption check against the BOMs; 409 `period_overlaps` when another
    write-off of the book covers any of its days, 422 at `$.period.to` before it is over."""
    svc = services(request)

    def action(
        ledger: Ledger, cmd: wo.SubmitWriteOff, idem: Idempotency | None, actor: Actor
    ) -> Outcome:
        ledger.write_off_book(book_no, actor)  # another tenant's book: 404 before any work
        wo.check_period(cmd.period, ledger.clock())
        for attempt in range(ATTEMPTS):
            figures = computed(svc, actor, book_no, cmd.period)
            try:
                return ledger.submit_write_off(book_no, cmd, figures, actor, required_key(idem))
            except Conflict as e:
                if e.rule != "concurrent_update" or attempt == ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    return await execute(request, ENTERPRISE, wo.SubmitWriteOff, action, key_required=True)


@router.get(
    "/v1/account-books/{book_no}/write-offs",
    **doc(ok=(200, WriteOffList), errors=(401, 404, 422), position=True),
)
async def list_write_offs(
    request: Request, book_no: str, actor: Reader, page: Annotated[Page, Depends()]
) -> Response:
    """The book's write-offs in the order they were submitted, each with its period and
    status (the book's readers)."""
    svc = services(request)
    await run_in_threadpool(svc.ledger.write_off_book, book_no, actor)
    position = await views_caught_up(request)
    rows = await run_in_threadpool(
        lambda: svc.write_offs.of_book(book_no, after=page.after, limit=page.limit)
    )
    return json_response(page_body(rows, page.limit), position=position)


def _report_doc() -> dict[str, Any]:
    kwargs = doc(ok=(200, wo.WriteOffView), errors=(401, 404, 422), position=False)
    kwargs["responses"][200]["content"].update(
        {
            "text/csv": {"schema": {"type": "string"}},
            "application/pdf": {"schema": {"type": "string", "format": "binary"}},
            **XLSX_CONTENT,
        }
    )
    kwargs["responses"][200]["description"] = "OK: JSON, or with `format` a CSV, XLSX or PDF file"
    return kwargs


@router.get("/v1/write-offs/{write_off_id}", **_report_doc())
async def get_write_off(
    request: Request,
    write_off_id: str,
    actor: Reader,
    as_of: AsOf = None,
    format: Annotated[Literal["json", "csv", "xlsx", "pdf"], Query()] = "json",
) -> Response:
    """A write-off (its book's readers): now, from the write side; `as_of` an instant, as it
    stood then (record time: before its certification, `submitted`; before its submission,
    404). `format=csv` (UTF-8 with a byte order mark, one row per item and status),
    `format=xlsx` (the same table, number cells) or `format=pdf` (the write-off report, with
    the log position and head hash it was computed at, for an auditor's replay)."""
    svc = services(request)
    moment = time_param("as_of", as_of)
    position = None
    if moment is None:
        view = await run_in_threadpool(svc.ledger.write_off, write_off_id, actor)
    else:
        position = await views_caught_up(request)
        found = await run_in_threadpool(svc.write_offs.as_of, write_off_id, moment, Scope.of(actor))
        if found is None:
            raise NotFound(f"no write-off {write_off_id} as of {as_of}")
        view = found
    if format == "json":
        return json_response(view, position=position)
    book = await run_in_threadpool(svc.ledger.write_off_book, view.account_book, actor)
    items: dict[int, ItemInfo] = {n: (i.hs_code, i.name, i.unit) for n, i in book.items.items()}
    name = re.sub(
        r"[^A-Za-z0-9._+-]",
        "_",
        f"{view.account_book}-write-off-{view.period.from_}-{view.period.to}",
    )
    if format != "pdf":
        return await file_response(format, [sheet(view, items)], name, position=position)
    headers = {"X-Ledger-Position": str(position)} if position is not None else {}
    headers["Content-Disposition"] = f'attachment; filename="{name}.pdf"'
    pdf = await run_in_threadpool(render_pdf, view, items)
    return Response(pdf, media_type="application/pdf", headers=headers)


@router.post(
    "/v1/write-offs/{write_off_id}/certification",
    **doc(
        body=wo.CertifyWriteOff,
        ok=(200, wo.WriteOffView),
        errors=WRITE_ERRORS,
        idempotency_required=False,
    ),
)
async def certify_write_off(request: Request, write_off_id: str) -> Response:
    """An officer certifies a submitted write-off: `accepted`, or `differences_assessed`
    (each bonded shortage a duty liability at the rates in force on the period's last day, a
    bill in `GET /v1/tax-bills`); either way the book is brought to the count. Another status
    is 409 `invalid_transition`."""
    return await execute(
        request,
        OFFICER,
        wo.CertifyWriteOff,
        lambda ledger, cmd, idem, actor: ledger.certify_write_off(write_off_id, cmd, actor, idem),
    )
