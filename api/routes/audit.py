"""Audit: the log in order, one stream's history, chain verification and the head digest."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import msgspec
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.auth import AuditReader
from api.http import doc, json_response, list_type
from api.routes.common import services
from domain.errors import NotFound
from ledger import audit
from ledger.store import LogRecord

router = APIRouter(tags=["audit"])


class LoggedEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One stored event: its place in the log, what it says, and its chain link."""

    position: int
    sequence: int
    stream_id: str
    version: int
    type: str
    topic: str
    recorded_at: str
    payload: msgspec.Raw
    hash: str


class FailureView(msgspec.Struct, frozen=True, kw_only=True):
    sequence: int | None
    position: int | None
    stream_id: str | None
    version: int | None
    reason: str
    detail: str


class VerifyView(msgspec.Struct, frozen=True, kw_only=True):
    ok: bool
    events_checked: int
    head_sequence: int | None
    head_position: int | None
    head_hash: str | None
    failures: list[FailureView]


class DigestView(msgspec.Struct, frozen=True, kw_only=True):
    sequence: int
    head_hash: str
    head_position: int
    recorded_at: str


EventList = list_type(LoggedEvent, "EventList")


def logged(r: LogRecord) -> LoggedEvent:
    return LoggedEvent(
        position=r.position,
        sequence=r.sequence,
        stream_id=str(r.stream_id),
        version=r.version,
        type=r.topic.rpartition(":")[2],
        topic=r.topic,
        recorded_at=r.recorded_at,
        payload=msgspec.Raw(r.state),
        hash=r.hash.hex(),
    )


@router.get("/v1/events", **doc(ok=(200, EventList), errors=(401, 403, 422)))
def list_events(
    request: Request,
    actor: AuditReader,
    after: Annotated[int | None, Query(ge=0, le=2**62)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(pattern=r"^\d{1,18}$")] = None,
) -> Response:
    start = int(cursor) if cursor is not None else (after or 0)
    records = services(request).app.log.select_log(start, limit)
    next_cursor = str(records[-1].position) if len(records) == limit else None
    return json_response({"items": [logged(r) for r in records], "next_cursor": next_cursor})


@router.get("/v1/streams/{stream_id}/events", **doc(ok=(200, EventList), errors=(401, 403, 404)))
def stream_events(request: Request, stream_id: str, actor: AuditReader) -> Response:
    try:
        stream = UUID(stream_id)
    except ValueError:
        raise NotFound(f"no stream {stream_id}") from None
    records = services(request).app.log.select_stream(stream)
    if not records:
        raise NotFound(f"no stream {stream_id}")
    return json_response({"items": [logged(r) for r in records], "next_cursor": None})


@router.get("/v1/audit/verify", **doc(ok=(200, VerifyView), errors=(401, 403)))
async def verify(request: Request, actor: AuditReader) -> Response:
    report = await run_in_threadpool(audit.verify, services(request).app.log)
    return json_response(msgspec.convert(report, VerifyView, from_attributes=True))


@router.get("/v1/audit/digest", **doc(ok=(200, DigestView), errors=(401, 403, 404)))
def digest(request: Request, actor: AuditReader) -> Response:
    d = audit.digest(services(request).app.log)
    if d is None:
        raise NotFound("the log is empty")
    return json_response(msgspec.convert(d, DigestView, from_attributes=True))
