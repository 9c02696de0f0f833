"""Checklists (核注清单) and gate passes (核放单): domain/checklists.py, domain/gate_passes.py."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.auth import ENTERPRISE, OFFICER, Reader
from api.http import doc, json_response, list_type
from api.routes.common import Page, execute, page_body, required_key, services, views_caught_up
from domain.checklists import ChecklistKind, ChecklistStatus, ChecklistView
from domain.collected import CollectionPermissionView, DecideCollection
from domain.gate_passes import FileGatePass, GatePassView, PassDirection, RecordPassage
from domain.scope import Scope
from domain.standalone_checklists import DecideChecklist, FileChecklist

router = APIRouter(tags=["checklists and gate passes"])
ChecklistList = list_type(ChecklistView, "ChecklistList")
GatePassList = list_type(GatePassView, "GatePassList")
OPERATOR = ("operator",)


@router.get("/v1/checklists", **doc(ok=(200, ChecklistList), errors=(401, 422), position=True))
async def list_checklists(
    request: Request,
    actor: Reader,
    page: Annotated[Page, Depends()],
    account_book: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[ChecklistStatus | None, Query()] = None,
    kind: Annotated[ChecklistKind | None, Query()] = None,
    zone: Annotated[str | None, Query(max_length=16)] = None,
    direction: Annotated[Literal["I", "E"] | None, Query()] = None,
    overdue: Annotated[bool | None, Query()] = None,
) -> Response:
    """Checklists in filing order, each as `GET /v1/checklists/{no}` answers it: an
    enterprise sees those of its own books, an operator its zone's, everyone else all.
    `overdue=true`: goods that entered first, or left on a collected checklist, and are still
    undeclared after their deadline."""
    position = await views_caught_up(request)
    filters: dict[str, str | None] = {
        "account_book": account_book,
        "status": status,
        "kind": kind,
        "zone": zone,
        "direction": direction,
    }
    rows = await run_in_threadpool(
        lambda: services(request).documents.checklists(
            after=page.after,
            limit=page.limit,
            filters=filters,
            scope=Scope.of(actor),
            overdue=overdue,
            now=services(request).ledger.clock(),
        )
    )
    return json_response(page_body(rows, page.limit), position=position)


@router.post(
    "/v1/checklists",
    **doc(
        body=FileChecklist,
        ok=(201, ChecklistView),
        errors=(400, 401, 403, 409, 413),
        idempotency_required=True,
    ),
)
async def file_checklist(request: Request) -> Response:
    """A checklist of the caller's own book filed on its own (`enter_first`, `collected`,
    `in_zone_transfer`, `processing`, `destruction`; the outbound ones pre-decrease the book
    at once); the answer has its number (`checklist_no`) and `status: "filed"`."""
    return await execute(
        request,
        ENTERPRISE,
        FileChecklist,
        lambda ledger, cmd, idem, actor: ledger.file_checklist(cmd, actor, required_key(idem)),
        key_required=True,
    )


def _decision(action: str, roles: tuple[str, ...]) -> Any:
    async def route(request: Request, checklist_no: str) -> Response:
        return await execute(
            request,
            roles,
            DecideChecklist,
            lambda ledger, cmd, idem, actor: ledger.decide_on_checklist(
                checklist_no, action, cmd, actor, idem
            ),
        )

    return route


for _action, _roles, _summary in (
    ("approval", OFFICER, "An officer approves a filed checklist: its goods may pass the gate"),
    ("rejection", OFFICER, "An officer rejects a filed checklist (`reason`)"),
    ("withdrawal", ENTERPRISE, "The enterprise withdraws its checklist (`reason`)"),
):
    router.post(
        f"/v1/checklists/{{checklist_no}}/{_action}",
        summary=_summary,
        **doc(
            body=DecideChecklist,
            ok=(200, ChecklistView),
            errors=(400, 401, 403, 404, 409, 413),
            idempotency_required=False,
        ),
    )(_decision(_action, _roles))


@router.get("/v1/checklists/{checklist_no}", **doc(ok=(200, ChecklistView), errors=(401, 404)))
def get_checklist(request: Request, checklist_no: str, actor: Reader) -> Response:
    """A checklist as it stands: its lines and what has passed the gate under each."""
    return json_response(services(request).ledger.checklist(checklist_no, actor))


@router.post(
    "/v1/gate-passes",
    **doc(
        body=FileGatePass,
        ok=(201, GatePassView),
        errors=(400, 401, 403, 409, 413),
        idempotency_required=True,
    ),
)
async def file_gate_pass(request: Request) -> Response:
    """One vehicle through a zone's gate, carrying all or part of one or more of the
    enterprise's checklists; the answer has the pass number (`pass_no`)."""
    return await execute(
        request,
        ENTERPRISE,
        FileGatePass,
        lambda ledger, cmd, idem, actor: ledger.file_gate_pass(cmd, actor, required_key(idem)),
        key_required=True,
    )


@router.get("/v1/gate-passes", **doc(ok=(200, GatePassList), errors=(401, 422), position=True))
async def list_gate_passes(
    request: Request,
    actor: Reader,
    page: Annotated[Page, Depends()],
    zone: Annotated[str | None, Query(max_length=16)] = None,
    status: Annotated[Literal["filed", "passed"] | None, Query()] = None,
    direction: Annotated[PassDirection | None, Query()] = None,
) -> Response:
    """Gate passes in filing order: the filing enterprise's, an operator's zone's, or all."""
    position = await views_caught_up(request)
    filters: dict[str, str | None] = {"zone": zone, "status": status, "direction": direction}
    rows = await run_in_threadpool(
        lambda: services(request).documents.gate_passes(
            after=page.after, limit=page.limit, filters=filters, scope=Scope.of(actor)
        )
    )
    return json_response(page_body(rows, page.limit), position=position)


@router.get("/v1/gate-passes/{pass_no}", **doc(ok=(200, GatePassView), errors=(401, 404)))
def get_gate_pass(request: Request, pass_no: str, actor: Reader) -> Response:
    return json_response(services(request).ledger.gate_pass(pass_no, actor))


@router.post(
    "/v1/gate-passes/{pass_no}/passage",
    **doc(
        body=RecordPassage,
        ok=(200, GatePassView),
        errors=(400, 401, 403, 404, 409, 413),
        idempotency_required=False,
    ),
)
async def record_passage(request: Request, pass_no: str) -> Response:
    """The zone's operator records the vehicle's passage with the weight the gate measured:
    every checklist's movement, lots and book entries in one write."""
    return await execute(
        request,
        OPERATOR,
        RecordPassage,
        lambda ledger, cmd, idem, actor: ledger.record_passage(pass_no, cmd, actor, idem),
    )


@router.post(
    "/v1/account-books/{book_no}/collection-permission",
    **doc(
        body=DecideCollection,
        ok=(200, CollectionPermissionView),
        errors=(400, 401, 403, 404, 409, 413),
        idempotency_required=False,
    ),
)
async def decide_collection(request: Request, book_no: str) -> Response:
    """An officer permits the book's enterprise to collect then declare (分送集报:
    `collected` checklists), or withdraws the permission (`permitted: false`, with a reason)."""
    return await execute(
        request,
        OFFICER,
        DecideCollection,
        lambda ledger, cmd, idem, actor: ledger.decide_collection(book_no, cmd, actor, idem),
    )


@router.get(
    "/v1/account-books/{book_no}/collection-permission",
    **doc(ok=(200, CollectionPermissionView), errors=(401, 404)),
)
def get_collection_permission(request: Request, book_no: str, actor: Reader) -> Response:
    """Whether the book may collect then declare: its enterprise, its zone's operators,
    officers and auditors see it."""
    return json_response(services(request).ledger.collection_permission(book_no, actor))
