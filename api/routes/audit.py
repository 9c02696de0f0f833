"""Audit: the log in order, one stream's history, chain verification, the head digest and
replays of the read models."""

from __future__ import annotations

import logging
import threading
from typing import Annotated
from uuid import UUID

import msgspec
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.auth import AuditReader, allow
from api.http import decode_body, doc, json_response, list_type, read_body
from api.observability import metrics
from api.params import Integer
from api.problems import HttpProblem
from api.replaying import ReplayFailed, answer, run_replay
from api.routes.common import in_time_range, services
from domain.declaration import AwareDatetime
from domain.errors import Conflict, NotFound, ValidationFailed
from domain.events import Actor
from ledger import audit
from ledger.key_audit import KeyCheck
from ledger.store import LogRecord
from projections.replay import ReplayBusy

Auditor = Annotated[Actor, allow("auditor")]

router = APIRouter(tags=["audit"])
log = logging.getLogger("customs_ledger.audit")


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


class ReplayBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Body of POST /v1/audit/replay: rebuild as of the last event recorded at or before
    `as_of` (RFC 3339 with an offset), or the whole log when absent."""

    as_of: AwareDatetime | None = None


class ReplayTable(msgspec.Struct, frozen=True, kw_only=True):
    live_digest: str | None
    replayed_digest: str
    equal: bool | None


class ReplayReadModel(msgspec.Struct, frozen=True, kw_only=True):
    """A read model's digests: live (None where the live views cannot answer as of the
    instant) and replayed, over the tables compared, and each table's."""

    live_digest: str | None
    replayed_digest: str
    equal: bool | None
    tables: dict[str, ReplayTable]


class ReplayDifference(msgspec.Struct, frozen=True, kw_only=True):
    """A row that differs: its key, its differing values live and replayed (the whole row
    when one side lacks it: null)."""

    table: str
    key: dict[str, int | str]
    live: dict[str, str | None] | None
    replayed: dict[str, str | None] | None


class ReplayView(msgspec.Struct, frozen=True, kw_only=True):
    """What a replay found: read models `declarations`, `enterprises`, `inventory`, `trace`
    (docs/audit.md, "Replay")."""

    events_replayed: int
    seconds: float
    rebuild_seconds: float
    position: int
    log_position: int
    as_of: str | None
    equal: bool
    projections: dict[str, ReplayReadModel]
    differences: list[ReplayDifference]
    notes: list[str]


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
    after: Annotated[Integer | None, Query(ge=0, le=2**62)] = None,
    limit: Annotated[Integer, Query(ge=1, le=1000)] = 100,
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


# One verify at a time per server process: each reads the whole log (and on a long SQLite log
# starts a second process), so 32 at once took 42 s and 1.5 GB (issue #14).
_VERIFYING = threading.Lock()


@router.get("/v1/audit/verify", **doc(ok=(200, VerifyView), errors=(401, 403, 409, 422)))
async def verify(
    request: Request,
    actor: AuditReader,
    against: Annotated[
        str | None,
        Query(
            max_length=100,
            description="a published digest `SEQUENCE:HASH` (GET /v1/audit/digest) the log "
            "must still extend: a deleted tail or a rewritten chain fails against it",
        ),
    ] = None,
) -> Response:
    """Check every link of the chain (and, with `against`, that the log still extends that
    digest). One at a time per server: another while one runs is 409 `audit_in_progress`."""
    anchor = None
    if against is not None:
        try:
            anchor = audit.parse_digest(against)
        except ValueError as e:
            raise HttpProblem.invalid(
                "query.against",
                "SEQUENCE:HASH (64 hex digits)",
                str(e),
            ) from None
    if not _VERIFYING.acquire(blocking=False):
        raise Conflict("a verify is running on this server; try again", rule="audit_in_progress")
    try:
        svc = services(request)
        keys = KeyCheck(svc.keys.table, svc.app.log).failures  # the key table against the log
        report = await run_in_threadpool(
            lambda: audit.verify(svc.app.log, against=anchor, keys=keys)
        )
    finally:
        _VERIFYING.release()
    metrics(request).verified(report.ok, report.events_checked)
    return json_response(msgspec.convert(report, VerifyView, from_attributes=True))


@router.get("/v1/audit/digest", **doc(ok=(200, DigestView), errors=(401, 403, 404)))
def digest(request: Request, actor: AuditReader) -> Response:
    d = audit.digest(services(request).app.log)
    if d is None:
        raise NotFound("the log is empty")
    return json_response(msgspec.convert(d, DigestView, from_attributes=True))


@router.post(
    "/v1/audit/replay",
    **doc(
        body=ReplayBody,
        body_required=False,  # no body: the whole log, as `{}`
        ok=(200, ReplayView),
        errors=(400, 401, 403, 409, 413, 503),
    ),
)
async def replay(request: Request, actor: Auditor) -> Response:
    """Rebuild every read model from the log into a scratch store and compare its digests with
    the live views' (docs/audit.md, "Replay"). Meant for auditors, one at a time: a replay of a
    large log takes a while (about 35 s per million events on a 2-core machine), and another
    one in this process is 409."""
    raw = await read_body(request)
    body = decode_body(raw, ReplayBody) if raw else ReplayBody()  # no body: the whole log
    if body.as_of is not None and not in_time_range(body.as_of):
        raise ValidationFailed.at("$.as_of", "a time from 1900-01-01 to 9000-01-01")
    svc = services(request)
    try:
        report, log_position = await run_in_threadpool(
            run_replay, svc, body.as_of, wait_seconds=svc.settings.read_wait_seconds
        )
    except ReplayBusy as e:
        raise Conflict(str(e), rule="replay_in_progress") from None
    except ReplayFailed as e:  # the trace graph's process failed: the server's, not the client's
        log.error("replay failed: %s", e)
        metrics(request).replayed("failed")
        raise HttpProblem(503, "replay-failed", "Replay failed", str(e)) from None
    metrics(request).replayed("equal" if report.equal else "different")
    return json_response(msgspec.convert(answer(report, log_position), ReplayView))
