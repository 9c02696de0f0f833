"""Declarations: submission, reads, and the decisions on them (withdrawal, payment, the
officer's, a transfer's acceptance or refusal by its destination enterprise)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

import msgspec
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.auth import ENTERPRISE, OFFICER, Reader
from api.batch import Batch, BatchAnswer, run_batch
from api.http import (
    doc,
    json_response,
    list_type,
)
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
from api.spreadsheets import (
    Format,
    Sheet,
    bounded,
    export_limit,
    file_part,
    file_response,
    with_files,
)
from domain.declaration import (
    SHANGHAI,
    AcceptTransfer,
    Ecommerce,
    Flow,
    PayDuties,
    RecordInspection,
    RefuseTransfer,
    RejectDeclaration,
    ReleaseDeclaration,
    SubmitDeclaration,
    WithdrawDeclaration,
)
from domain.errors import NotFound
from domain.events import Actor
from domain.privacy import BuyerOpener, sees_buyer, shown, tokens
from domain.returns import ReturnAnswer, ReturnGoods
from domain.scope import Scope
from domain.views import DeclarationDetail, DeclarationView
from ledger.commands import Ledger
from ledger.requests import Idempotency, Outcome
from projections.stats import StatsRow

router = APIRouter(tags=["declarations"])
DeclarationList = list_type(DeclarationDetail, "DeclarationList")


@router.post(
    "/v1/declarations",
    **doc(
        body=SubmitDeclaration,
        ok=(201, DeclarationView),
        errors=(400, 401, 403, 409, 413),
        idempotency_required=True,
    ),
)
async def submit_declaration(request: Request) -> Response:
    return await execute(
        request,
        ENTERPRISE,
        SubmitDeclaration,
        opening(
            lambda ledger, cmd, idem, actor: ledger.submit_declaration(
                cmd, actor, required_key(idem)
            )
        ),
        key_required=True,
    )


@router.post(
    "/v1/declarations/batch",
    **doc(
        body=Batch,
        ok=(207, BatchAnswer),
        errors=(400, 401, 403, 413),
        batch=True,
    ),
)
async def submit_declarations(request: Request) -> Response:
    """Up to 500 declarations or retail lists in one request: `items` of
    `{idempotency_key, body}`, each what one `POST /v1/declarations` would carry (its key is
    that route's: the same key there answers the same). 207 with `results` in the items'
    order, each `{status, body}` as that route would answer (201 and the declaration, or the
    problem; `replayed: true` for a key already used for the same body). The items are decided
    in order and committed together; one refused never stops the others; the batch sent again
    answers each recorded item as first answered. Each item counts as one request against the
    key's rate limit: a batch the key cannot pay for now is 429 whole (nothing decided), one of
    more items than the key's burst is 422 at `$.items` (`batch_exceeds_rate_limit`)."""
    return await run_batch(
        request,
        ENTERPRISE,
        SubmitDeclaration,
        "/v1/declarations",
        lambda ledger, items, actor: ledger.submit_declarations(items, actor),
        opened,
    )


def can_see(actor: Actor, row: dict[str, Any]) -> bool:
    """A declaration is its declarant's and its zone's (a transfer's: either end's)."""
    return Scope.of(actor).sees(
        enterprises=(row["declarant"], row["destination_enterprise"]),
        zones=(row["zone"], row["destination_zone"]),
    )


@router.get(
    "/v1/declarations",
    **with_files(doc(ok=(200, DeclarationList), errors=(401, 422), position=True)),
)
async def list_declarations(
    request: Request,
    actor: Reader,
    page: Annotated[Page, Depends()],
    status: Annotated[str | None, Query(max_length=32)] = None,
    flow: Annotated[Flow | None, Query()] = None,
    zone: Annotated[str | None, Query(max_length=16)] = None,
    declarant: Annotated[str | None, Query(max_length=18)] = None,
    since: Since = None,
    until: Until = None,
    format: Format = "json",
) -> Response:
    """Declarations in submission order; `from`/`to` select on business time, half-open.
    `format=csv` or `xlsx`: a file of the declarations from `cursor` on (`limit` is the JSON
    page's), one row each, at most 10,000; `X-Next-Cursor` names where the next file starts
    when more remain. The file holds no buyer's data."""
    position = await views_caught_up(request)
    start, end = time_param("from", since), time_param("to", until)
    rows = await run_in_threadpool(
        lambda: services(request).declarations.page(
            after=page.after,
            limit=page.limit if format == "json" else export_limit(),
            filters={"status": status, "flow": flow, "zone": zone, "declarant": declarant},
            scope=Scope.of(actor),
            since=start,
            until=end,
        )
    )
    if format != "json":
        kept, next_cursor = bounded(rows)
        sheet = Sheet.of("declarations", DECLARATION_COLUMNS, [declaration_row(d) for _, d in kept])
        stem = f"declarations-{file_part(start, 'start')}-{file_part(end, 'end')}"
        return await file_response(
            format, [sheet], stem, position=position, next_cursor=next_cursor
        )
    vault = services(request).vault
    shown_rows = await run_in_threadpool(
        lambda: for_reader(vault, Scope.of(actor), [d for _, d in rows])
    )
    listed = list(zip([cursor for cursor, _ in rows], shown_rows, strict=True))
    return json_response(page_body(listed, page.limit), position=position)


# The columns of a declaration list's file, by key (headers: api/spreadsheet_headers.py).
DECLARATION_COLUMNS = (
    "id",
    "declaration_no",
    "status",
    "channel",
    "risk_reasons",
    "flow",
    "trade_mode",
    "declarant",
    "zone",
    "account_book",
    "destination_zone",
    "destination_account_book",
    "transport_mode",
    "transport_reference",
    "container",
    "country",
    "currency",
    "incoterm",
    "freight",
    "insurance",
    "lines",
    "tariff",
    "vat",
    "consumption_tax",
    "duties_total",
    "duties_paid",
    "duties_outstanding",
    "order_no",
    "waybill_no",
    "client_ref",
    "checklist_no",
    "occurred_at",
    "submitted_at",
)


def declaration_row(d: DeclarationDetail) -> tuple[Any, ...]:
    """A declaration as a row of DECLARATION_COLUMNS: what a clerk lists, never a buyer's
    identity (an e-commerce list's order and waybill numbers only)."""
    t = d.duties
    figures = (
        (t.tariff, t.vat, t.consumption_tax, t.total, t.paid, t.outstanding)
        if t is not None
        else (None,) * 6
    )
    e = d.ecommerce
    return (
        str(d.id),
        d.declaration_no,
        d.status,
        d.channel,
        " ".join(d.risk_reasons) or None,
        d.flow,
        d.trade_mode,
        d.declarant,
        d.zone,
        d.account_book,
        d.destination_zone,
        d.destination_account_book,
        d.transport.mode,
        d.transport.reference,
        d.transport.container,
        d.country,
        d.currency,
        d.incoterm,
        d.freight,
        d.insurance,
        len(d.lines),
        *figures,
        e.order.order_no if e is not None else None,
        e.waybill.waybill_no if e is not None else None,
        d.client_ref,
        d.checklist_no,
        d.occurred_at,
        d.history[0].recorded_at if d.history else None,
    )


D = TypeVar("D", DeclarationDetail, DeclarationView)


def for_reader(opener: BuyerOpener, scope: Scope, found: list[D]) -> list[D]:
    """The declarations as this reader may see them: a retail list's buyer opened from its
    seal (`[erased]` once its key is destroyed), and masked unless the reader is its
    declarant, an officer or an auditor (domain/privacy.py)."""
    sealed = [pair for d in found if d.ecommerce is not None for pair in tokens(d.ecommerce)]
    opened = opener.open(sealed) if sealed else {}
    return [
        d
        if d.ecommerce is None
        else msgspec.structs.replace(
            d, ecommerce=shown(d.ecommerce, opened, whole=sees_buyer(scope, d.declarant))
        )
        for d in found
    ]


Action = Callable[[Ledger, Any, Idempotency | None, Actor], Outcome]


def opening(action: Action) -> Action:
    """A write route's action whose answer shows the buyer as `for_reader` does (`opened`)."""

    def run(ledger: Ledger, cmd: Any, idem: Idempotency | None, actor: Actor) -> Outcome:
        return opened(ledger, actor, action(ledger, cmd, idem, actor))

    return run


def opened(ledger: Ledger, actor: Actor, outcome: Outcome) -> Outcome:
    """An answer (a declaration, or its recorded copy when the request is replayed) with the
    buyer shown as `for_reader` does: the log keeps it sealed."""
    body = outcome.body
    if isinstance(body, DeclarationView):
        (body,) = for_reader(ledger.vault, Scope.of(actor), [body])
    elif isinstance(body, dict) and body.get("ecommerce") is not None:
        e = msgspec.convert(body["ecommerce"], Ecommerce)
        whole = sees_buyer(Scope.of(actor), body.get("declarant", ""))
        keys = ledger.vault.open(tokens(e))
        body = {**body, "ecommerce": msgspec.to_builtins(shown(e, keys, whole=whole))}
    return dataclasses.replace(outcome, body=body)


@router.get(
    "/v1/declarations/{ref}", **doc(ok=(200, DeclarationDetail), errors=(401, 404), position=True)
)
async def get_declaration(request: Request, ref: str, actor: Reader) -> Response:
    position = await views_caught_up(request)
    found = await run_in_threadpool(services(request).declarations.get, ref)
    if found is None or not can_see(actor, found[1]):
        raise NotFound(f"no declaration {ref}")
    vault = services(request).vault
    (one,) = await run_in_threadpool(for_reader, vault, Scope.of(actor), [found[0]])
    return json_response(one, position=position)


@router.post(
    "/v1/declarations/{ref}/withdrawal",
    **doc(
        body=WithdrawDeclaration,
        ok=(200, DeclarationView),
        errors=(400, 401, 403, 404, 409, 413),
        idempotency_required=False,
    ),
)
async def withdraw_declaration(request: Request, ref: str) -> Response:
    return await execute(
        request,
        ENTERPRISE,
        WithdrawDeclaration,
        opening(
            lambda ledger, cmd, idem, actor: ledger.decide_on("withdrawal", ref, cmd, actor, idem)
        ),
    )


@router.post(
    "/v1/declarations/{ref}/returns",
    summary="Record a buyer's return of a released retail list's goods (its declarant)",
    **doc(
        body=ReturnGoods,
        ok=(201, ReturnAnswer),
        errors=(400, 401, 403, 404, 409, 413),
        idempotency_required=True,
    ),
)
async def return_goods(request: Request, ref: str) -> Response:
    """Within the return window after release: the taxes refunded pro rata, the returned share
    of the order back to the buyer's quota, in one write (domain/returns.py)."""
    return await execute(
        request,
        ENTERPRISE,
        ReturnGoods,
        lambda ledger, cmd, idem, actor: ledger.return_goods(ref, cmd, actor, required_key(idem)),
        key_required=True,
    )


def _officer_action(path: str, body: type, action_name: str, summary: str) -> None:
    """Register one officer decision route (inspection result, release, rejection)."""

    async def action(request: Request, ref: str) -> Response:
        return await execute(
            request,
            OFFICER,
            body,
            opening(
                lambda ledger, cmd, idem, actor: ledger.decide_on(
                    action_name, ref, cmd, actor, idem
                )
            ),
        )

    action.__name__ = f"{action_name}_of_declaration"
    router.post(
        path,
        summary=summary,
        **doc(
            body=body,
            ok=(200, DeclarationView),
            errors=(*ACTION_ERRORS, 404),
            idempotency_required=False,
        ),
    )(action)


ACTION_ERRORS = (400, 401, 403, 409, 413)
_officer_action(
    "/v1/declarations/{ref}/inspection-results",
    RecordInspection,
    "inspection",
    "Record an inspection result (officer)",
)
_officer_action(
    "/v1/declarations/{ref}/release",
    ReleaseDeclaration,
    "release",
    "Release after document review (officer)",
)
_officer_action(
    "/v1/declarations/{ref}/rejection",
    RejectDeclaration,
    "rejection",
    "Reject a declaration (officer)",
)


@router.post(
    "/v1/declarations/{ref}/payments",
    **doc(
        body=PayDuties,
        ok=(200, DeclarationView),
        errors=(*ACTION_ERRORS, 404),
        idempotency_required=False,
    ),
)
async def pay_duties(request: Request, ref: str) -> Response:
    return await execute(
        request,
        ENTERPRISE,
        PayDuties,
        opening(
            lambda ledger, cmd, idem, actor: ledger.decide_on("payment", ref, cmd, actor, idem)
        ),
    )


@router.post(
    "/v1/declarations/{ref}/acceptance",
    summary="Accept a transfer into your book (its destination enterprise)",
    **doc(
        body=AcceptTransfer,
        ok=(200, DeclarationView),
        errors=(*ACTION_ERRORS, 404),
        idempotency_required=False,
    ),
)
async def accept_transfer(request: Request, ref: str) -> Response:
    """A transfer into another enterprise's book waits in `awaiting_acceptance` until that
    enterprise accepts it; then it goes where its channel sends it. The body may be empty."""
    return await execute(
        request,
        ENTERPRISE,
        AcceptTransfer,
        lambda ledger, cmd, idem, actor: ledger.decide_on("acceptance", ref, cmd, actor, idem),
        empty_body=b"{}",
    )


@router.post(
    "/v1/declarations/{ref}/refusal",
    summary="Refuse a transfer into your book (its destination enterprise)",
    **doc(
        body=RefuseTransfer,
        ok=(200, DeclarationView),
        errors=(*ACTION_ERRORS, 404),
        idempotency_required=False,
    ),
)
async def refuse_transfer(request: Request, ref: str) -> Response:
    """The destination enterprise refuses a transfer awaiting its acceptance (final:
    `refused`); nothing was reserved for it, nothing moves."""
    return await execute(
        request,
        ENTERPRISE,
        RefuseTransfer,
        lambda ledger, cmd, idem, actor: ledger.decide_on("refusal", ref, cmd, actor, idem),
    )


StatsList = list_type(StatsRow, "StatsList")


@router.get(
    "/v1/stats", tags=["statistics"], **doc(ok=(200, StatsList), errors=(401, 422), position=True)
)
async def stats(
    request: Request,
    actor: Reader,
    group_by: Annotated[Literal["day", "month", "trade_mode", "flow", "zone"], Query()] = "month",
    zone: Annotated[str | None, Query(max_length=16)] = None,
    since: Since = None,
    until: Until = None,
) -> Response:
    """Declarations (not withdrawn, rejected or refused), their CNY value, their duties overdue
    as of today (`overdue_cny`, GET /v1/tax-bills) and the movements recorded, grouped;
    movements under no declaration are `within_zone` by flow or trade mode."""
    position = await views_caught_up(request)
    svc = services(request)
    rows = await run_in_threadpool(
        lambda: svc.stats.stats(
            group_by=group_by,
            zone=zone,
            since=time_param("from", since),
            until=time_param("to", until),
            scope=Scope.of(actor),
            today=svc.ledger.clock().astimezone(SHANGHAI).date(),
        )
    )
    return json_response({"items": rows, "next_cursor": None}, position=position)
