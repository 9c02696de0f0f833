"""Pagination and read-your-writes helpers shared by the routers."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Collection
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from fastapi import Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.auth import authenticate, bearer_token
from api.http import (
    MIN_POSITION_DIGITS,
    MIN_POSITION_HEADER,
    decode_body,
    idempotency,
    outcome_response,
    read_body,
)
from api.params import Integer
from api.problems import HttpProblem
from api.services import Services
from domain.events import Actor
from domain.idempotency import idempotency_id
from ledger.commands import Idempotency, Ledger, Outcome

T = TypeVar("T")


class Page:
    """`?limit=` (1..1000, default 100) and an opaque `?cursor=`."""

    def __init__(
        self,
        limit: Annotated[Integer, Query(ge=1, le=1000, description="1 to 1000")] = 100,
        cursor: Annotated[str | None, Query(max_length=40)] = None,
    ) -> None:
        self.limit = limit
        self.after = 0
        if cursor is not None:
            # ASCII digits only: str.isdigit() is also true of superscripts, which int() refuses.
            if not (cursor.isascii() and cursor.isdigit()) or len(cursor) > 19:
                raise HttpProblem.invalid(
                    "query.cursor",
                    "unknown cursor",
                    "cursor is not one this API gave",
                )
            self.after = int(cursor)


def page_body(rows: list[tuple[int, Any]], limit: int) -> dict[str, Any]:
    items = [item for _, item in rows]
    next_cursor = str(rows[-1][0]) if len(rows) == limit else None
    return {"items": items, "next_cursor": next_cursor}


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


def min_position(request: Request) -> int | None:
    """The `X-Ledger-Min-Position` header: a log position (ASCII digits), 422 otherwise."""
    wanted = request.headers.get(MIN_POSITION_HEADER)
    if wanted is None:
        return None
    text = wanted.strip()
    if not (text.isascii() and text.isdigit() and len(text) <= MIN_POSITION_DIGITS):
        raise HttpProblem.invalid(
            f"header.{MIN_POSITION_HEADER}",
            "an integer >= 0",
            f"{MIN_POSITION_HEADER} must be a log position",
        )
    return int(text)


async def views_caught_up(request: Request) -> int:
    """Wait (bounded) until the views reflect the log as it was when the request arrived.

    A client that just wrote reads its write; the answer says which position it reflects.
    `X-Ledger-Min-Position` asks for a specific position instead of the current head.
    """
    svc = services(request)
    wanted = min_position(request)
    if wanted is not None and wanted <= svc.runner.position:
        return svc.runner.position  # already there: no thread, no query
    head = await run_in_threadpool(svc.app.log.head)
    head_position = head.position if head else 0
    if wanted is not None and wanted > head_position:
        # Every position this ledger answered is at or below the head (writes answer after
        # their commit): a larger one was never given, and waiting for it would hold the
        # request for nothing (issue #14).
        raise HttpProblem.invalid(
            f"header.{MIN_POSITION_HEADER}",
            "a position of the log",
            f"{MIN_POSITION_HEADER} {wanted} is beyond the log's head ({head_position})",
        )
    target = head_position if wanted is None else wanted
    await _wait_for_views(svc, target)
    return svc.runner.position


async def _wait_for_views(svc: Services, target: int) -> None:
    """Wait without holding a worker thread: check (a short hop when the views are fed by
    another process, which means a query), then sleep on the event loop, 1 ms doubling to
    20 ms, until the views reach `target` or the read wait is over."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + svc.settings.read_wait_seconds
    delay = 0.001
    while True:
        if svc.runner.position >= target:
            return
        if await run_in_threadpool(svc.runner.wait_for, target, 0):
            return
        if loop.time() >= deadline:
            return
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.02)


async def writer(request: Request, roles: Collection[str]) -> tuple[Services, Actor]:
    """What every write route does first: the token (its key looked up and its role checked
    before a byte of the body is read: a bogus token is 401 however slowly its body comes),
    and no write on a log that failed verification. The services and the caller."""
    bearer_token(request)
    svc = services(request)
    if svc.alarm is not None:
        raise HttpProblem(
            503,
            "tampered",
            "Writes refused",
            f"the log failed verification, so this server takes no writes: {svc.alarm}",
        )
    return svc, await run_in_threadpool(authenticate, request, roles)


async def writing(request: Request, roles: Collection[str]) -> tuple[Services, Actor, bytes]:
    """`writer`, then the body: the services, the caller and the body's bytes."""
    svc, actor = await writer(request, roles)
    return svc, actor, await read_body(request)


async def execute(
    request: Request,
    roles: Collection[str],
    body_type: type[T],
    action: Callable[[Ledger, T, Idempotency | None, Actor], Outcome],
    *,
    key_required: bool = False,
    empty_body: bytes | None = None,
) -> Response:
    """The one shape of every write route: the token (its key looked up and its role checked
    before a byte of the body is read: a bogus token is 401 however slowly its body comes),
    the body, then in one threadpool hop the Idempotency-Key, decoding and the command.
    `empty_body`: what a route that takes an empty body reads it as (None: an empty body is
    400)."""
    svc, actor, raw = await writing(request, roles)
    if empty_body is not None and not raw.strip():
        raw = empty_body

    def work() -> Outcome:
        idem = idempotency(request, actor, required=key_required)
        outcome = action(svc.ledger, decode_body(raw, body_type), idem, actor)
        if outcome.replayed and outcome.position is None and idem is not None:
            # The first answer again, with the position it was recorded at: its record's.
            records = svc.app.log.select_stream(idempotency_id(idem.principal, idem.key))
            if records:
                outcome = dataclasses.replace(outcome, position=records[-1].position)
        return outcome

    outcome = await run_in_threadpool(work)
    svc.wrote(outcome.position)
    return outcome_response(outcome)


# Query times are instants in this range (UTC); anything else is 422 at the parameter. Wide
# enough for any question about customs records, narrow enough that no offset or date
# arithmetic on it can leave the calendar (Python's datetime ends at year 9999).
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
# The OpenAPI document types them, so clients and the fuzzer know what they are.
_DATE_TIME: dict[str, Any] = {"format": "date-time"}
_TIME_HELP = "RFC 3339 with Z or an offset, from 1900 to 9000"
AsOf = Annotated[
    str | None, Query(max_length=40, description=_TIME_HELP, json_schema_extra=_DATE_TIME)
]
Since = Annotated[
    str | None,
    Query(alias="from", max_length=40, description=_TIME_HELP, json_schema_extra=_DATE_TIME),
]
Until = Annotated[
    str | None,
    Query(alias="to", max_length=40, description=_TIME_HELP, json_schema_extra=_DATE_TIME),
]


def in_time_range(moment: datetime) -> bool:
    """Whether an aware instant is within [EARLIEST, LATEST)."""
    try:
        return EARLIEST <= moment.astimezone(UTC) < LATEST
    except OverflowError:  # year 1 at +14:00, year 9999 at -14:00: before or after the calendar
        return False


def time_param(name: str, value: str | None) -> datetime | None:
    """An RFC 3339 query parameter; a `+` that arrived as a space is read as `+`; naive is 422,
    and so is an instant outside [EARLIEST, LATEST) (never an overflow further in)."""
    if value is None:
        return None
    text = value.strip().replace(" ", "+")
    if len(text) > 10 and text[10] == "+":
        # RFC 3339 allows a space between date and time; it just became a "+": restore a "T".
        text = text[:10] + "T" + text[11:]
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise HttpProblem.invalid(
            f"query.{name}",
            "RFC 3339 time with Z or an offset",
            f"{name} must be RFC 3339 with an offset",
        )
    if not in_time_range(moment):
        raise HttpProblem.invalid(
            f"query.{name}",
            "a time from 1900-01-01 to 9000-01-01",
            f"{name} must be between 1900 and 9000",
        )
    return moment


def required_key(idem: Idempotency | None) -> Idempotency:
    """The Idempotency-Key of a route that requires one: `execute(key_required=True)` has
    answered 400 without it."""
    assert idem is not None
    return idem
