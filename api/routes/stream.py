"""The live stream of receipts, `GET /v1/stream` (issue #19, docs/receipts.md): Server-Sent
Events of the same receipts a webhook subscription is sent, under the caller's tenancy.

Each event is `id: <log position>`, `event: <receipt type>`, `data: <the receipt's JSON>`,
read from `view_receipt_log` (projections/receipts.py) in log order; a client resumes with
`Last-Event-ID` (what EventSource sends by itself) and gets every receipt after that position,
none twice. While nothing happens a comment line (`: heartbeat`) goes every
`LEDGER_STREAM_HEARTBEAT_SECONDS`, so proxies keep the connection and the client knows it is
alive.

Back-pressure: the stream reads a page at a time and writes it through uvicorn, which stops
taking bytes when the socket's buffers are full; nothing is queued for a slow client beyond
one page. A write that cannot go out within `LEDGER_STREAM_SEND_SECONDS` cuts the
connection: the client reconnects with `Last-Event-ID` and continues from where it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from api.auth import Actor, allow
from api.http import ERROR_TEXT, RETRY_AFTER_HEADER, _ref, doc
from api.params import Integer
from api.problems import HttpProblem
from api.routes.common import services, views_caught_up
from domain import receipts
from domain.errors import Unavailable
from domain.subscriptions import SUBSCRIBERS
from projections.receipts import Receipt
from projections.store import ViewStore

router = APIRouter(tags=["receipts"])
log = logging.getLogger("customs_ledger.stream")
MEDIA_TYPE = "text/event-stream"
PAGE = 200
IDLE_SECONDS = 0.25  # how often an idle stream looks for new receipts
RECONNECT_MS = 2000  # the `retry:` the client's EventSource waits before reconnecting
MAX_POSITION = 2**62
Subscriber = Annotated[Actor, allow(*SUBSCRIBERS)]


def _types_filter(patterns: list[str]) -> tuple[str, list[Any]]:
    """SQL for the patterns (already checked: `*`, `<subject>.*` or a receipt type)."""
    if "*" in patterns:
        return "", []
    exact = [p for p in patterns if not p.endswith(".*")]
    subjects = [p[:-1] + "%" for p in patterns if p.endswith(".*")]
    terms = [f"type IN ({','.join('?' * len(exact))})"] if exact else []
    terms += ["type LIKE ?"] * len(subjects)
    return " AND (" + " OR ".join(terms) + ")", [*exact, *subjects]


def page(
    views: ViewStore, enterprise: str | None, patterns: list[str], after: int, limit: int = PAGE
) -> list[tuple[int, str, str]]:
    """The receipts after `after` the reader may see, oldest first: (position, type, body).
    `enterprise`: an enterprise's own (declarant or destination, its books, its documents);
    None: customs, every receipt."""
    where, params = _types_filter(patterns)
    if enterprise is None:
        query = (
            "SELECT position, type, body FROM view_receipt_log WHERE position > ?"
            f"{where} ORDER BY position LIMIT ?"
        )
        args: list[Any] = [after, *params, limit]
    else:  # each half on its own index
        query = (
            "SELECT position, type, body FROM view_receipt_log"
            f" WHERE enterprise = ? AND position > ?{where}"
            " UNION ALL SELECT position, type, body FROM view_receipt_log"
            f" WHERE other_enterprise = ? AND position > ?"
            f" AND (enterprise IS NULL OR enterprise <> ?){where}"
            " ORDER BY position LIMIT ?"
        )
        args = [enterprise, after, *params, enterprise, after, enterprise, *params, limit]
    with views.read() as cur:
        cur.execute(query, args)
        return [(int(r["position"]), str(r["type"]), str(r["body"])) for r in cur.fetchall()]


def watch_stop_signals() -> asyncio.Event:
    """An event set when the process is told to stop (SIGTERM, SIGINT), before uvicorn waits
    for open connections: every stream then ends at once, cleanly, instead of being cancelled
    after the shutdown grace. The handlers found (uvicorn's) still run. Only in the main
    thread (a server run in a test's thread leaves the signals alone)."""
    stopping = asyncio.Event()
    if threading.current_thread() is not threading.main_thread():
        return stopping
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(sig)

        def handler(signum: int, frame: Any, previous: Any = previous) -> None:
            loop.call_soon_threadsafe(stopping.set)
            if callable(previous):
                previous(signum, frame)

        signal.signal(sig, handler)
    return stopping


def frame(position: int, receipt_type: str, body: str) -> bytes:
    """One SSE event (the body is one line of JSON: no newline to split)."""
    return f"id: {position}\nevent: {receipt_type}\ndata: {body}\n\n".encode()


async def events(
    views: ViewStore,
    enterprise: str | None,
    patterns: list[str],
    after: int,
    *,
    follow: bool,
    heartbeat: float,
    stopping: asyncio.Event | None = None,
) -> AsyncIterator[bytes]:
    """The stream's bytes: the reconnect delay, then each receipt after `after`; with
    `follow`, until the server stops (heartbeats while idle), else until it has caught up."""
    loop = asyncio.get_running_loop()
    yield f"retry: {RECONNECT_MS}\n: receipts after position {after}\n\n".encode()
    last_write = loop.time()
    cursor = after
    while stopping is None or not stopping.is_set():
        rows = await run_in_threadpool(page, views, enterprise, patterns, cursor)
        if rows:
            cursor = rows[-1][0]
            yield b"".join(frame(*row) for row in rows)
            last_write = loop.time()
            if len(rows) == PAGE:
                continue
        if not follow:
            return
        if loop.time() - last_write >= heartbeat:
            yield b": heartbeat\n\n"
            last_write = loop.time()
        if stopping is None:
            await asyncio.sleep(IDLE_SECONDS)
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), IDLE_SECONDS)


class EventStream(Response):
    """A streaming answer whose every write must go out within `send_seconds`, or the
    connection is cut (a slow reader is never buffered for). Ends when the client leaves."""

    media_type = MEDIA_TYPE

    def __init__(
        self,
        chunks: AsyncIterator[bytes],
        *,
        send_seconds: float,
        on_close: Any,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(content=None, headers=headers, media_type=MEDIA_TYPE)
        # No length: the body goes on until the client leaves (or, `follow=false`, ends).
        self.raw_headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]
        self.chunks = chunks
        self.send_seconds = send_seconds
        self.on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gone = asyncio.Event()

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()

        self.scope = scope
        watcher = asyncio.create_task(watch())
        try:
            await self._stream(send, gone)
        finally:
            watcher.cancel()
            await self.chunks.aclose()  # type: ignore[attr-defined]
            self.on_close()

    async def _stream(self, send: Send, gone: asyncio.Event) -> None:
        start: Message = {
            "type": "http.response.start",
            "status": self.status_code,
            "headers": self.raw_headers,
        }
        if not await self._send(send, start, gone):
            return
        if scope_is_head(self.scope):
            await self._send(send, {"type": "http.response.body", "body": b""}, gone)
            return
        async for chunk in self.chunks:
            if gone.is_set():
                return
            message = {"type": "http.response.body", "body": chunk, "more_body": True}
            if not await self._send(send, message, gone):
                return
        await self._send(send, {"type": "http.response.body", "body": b""}, gone)

    async def _send(self, send: Send, message: Message, gone: asyncio.Event) -> bool:
        """Whether the message went out in time (False: the client left, or was cut)."""
        try:
            await asyncio.wait_for(send(message), self.send_seconds)
        except TimeoutError:
            log.warning("stream cut: the client took more than %.0f s to read", self.send_seconds)
            return False
        except OSError:  # the client went away mid-write
            return False
        return not gone.is_set()


def follows(follow: str | None, accept: str | None) -> bool:
    """Whether the stream follows the log: as asked, else when the client accepts
    `text/event-stream` by name (a plain GET - a script, a crawler, a test walking every
    route - gets what there is and an end, never an answer without end)."""
    if follow is not None:
        return follow == "true"
    return MEDIA_TYPE in (accept or "").lower()


def scope_is_head(scope: Scope) -> bool:
    return bool(scope.get("ledger.head"))


def _start(request: Request, after: int | None) -> int | None:
    """Where the stream starts: `Last-Event-ID` (a reconnecting EventSource sends it), else
    `after`, else None (the head: only what comes next)."""
    raw = request.headers.get("last-event-id")
    if raw is None:
        return after
    value = raw.strip()
    if not value.isdigit() or len(value) > 18 or int(value) > MAX_POSITION:
        raise HttpProblem.invalid(
            "header.Last-Event-ID",
            "a log position (the id of the last event received)",
            f"Last-Event-ID {raw[:40]!r} is not a log position",
        )
    return int(value)


def _doc() -> dict[str, Any]:
    kwargs = doc(errors=(401, 403, 422))
    kwargs["responses"][200] = {
        "description": "Server-Sent Events: `id:` the log position, `event:` the receipt type,"
        " `data:` the receipt (the body a webhook is sent); `: heartbeat` comments while idle",
        # Each event (a comment is none): the receipt as JSON in `data`.
        "content": {
            MEDIA_TYPE: {
                "schema": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string", "pattern": r"^\d{1,18}$"},
                        "event": {"type": "string", "enum": list(receipts.RECEIPT_TYPES)},
                        "data": {
                            "type": "string",
                            "contentMediaType": "application/json",
                            "contentSchema": _ref(Receipt),
                        },
                        "retry": {"type": "integer"},
                    },
                }
            }
        },
    }
    kwargs["responses"][503] = {
        "description": ERROR_TEXT[503] + " (here: the server's streams are all taken)",
        "content": {"application/problem+json": kwargs["responses"][422]["content"][
            "application/problem+json"
        ]},
        "headers": RETRY_AFTER_HEADER,
    }  # fmt: skip
    kwargs["response_class"] = Response
    kwargs["openapi_extra"] = {
        "parameters": [
            {
                "name": "Last-Event-ID",
                "in": "header",
                "required": False,
                "schema": {"type": "string", "pattern": r"^\d{1,18}$"},
                "description": "the id (log position) of the last event received: the stream"
                " goes on after it (an EventSource sends it when it reconnects)",
            }
        ]
    }
    return kwargs


@router.get("/v1/stream", **_doc())
async def stream(
    request: Request,
    actor: Subscriber,
    types: Annotated[
        str,
        Query(
            max_length=4096,
            description="comma-separated receipt types, `<subject>.*` or `*` (the default)",
        ),
    ] = "*",
    after: Annotated[
        Integer | None,
        Query(
            ge=0,
            le=MAX_POSITION,
            description="start after this log position (`Last-Event-ID` wins when both come);"
            " neither: from now on",
        ),
    ] = None,
    follow: Annotated[
        Literal["true", "false"] | None,
        Query(
            description="`true`: follow the log until the client leaves; `false`: end once"
            " caught up (a finite read). Default: follow when the request accepts"
            " `text/event-stream` (as EventSource and SSE clients send), else not"
        ),
    ] = None,
) -> Response:
    """Receipts as they happen (an enterprise: its own; officers and auditors: all), as
    Server-Sent Events. Resume with `Last-Event-ID`: nothing missed, nothing twice. A client
    that accepts `text/event-stream` (EventSource does) follows the log; another gets what
    there is, unless `follow=true`."""
    patterns = receipts.checked_patterns(
        "query.types", [t.strip() for t in types.split(",") if t.strip()]
    )
    start = _start(request, after)
    svc = services(request)
    settings = svc.settings
    if start is None:
        head = await run_in_threadpool(svc.app.log.head)
        start = head.position if head else 0
    following = follows(follow, request.headers.get("accept"))
    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    if not following:
        # A finite read answers what the log holds now, the caller's last write included
        # (as every view read does: X-Ledger-Min-Position asks for a later position), and
        # says which position that is.
        headers["X-Ledger-Position"] = str(await views_caught_up(request))
    enterprise = actor.enterprise if actor.role == "enterprise" else None
    slots = svc.streams
    if not slots.take():  # nothing can fail between this and the answer giving it back
        raise Unavailable(
            f"this server already serves {settings.stream_max_clients} streams; try again",
            retry_after=5,
        )
    chunks = events(
        svc.views,
        enterprise,
        patterns,
        start,
        follow=following,
        heartbeat=settings.stream_heartbeat_seconds,
        stopping=getattr(request.app.state, "stopping", None),
    )
    return EventStream(
        chunks,
        send_seconds=settings.stream_send_seconds,
        on_close=slots.give_back,
        headers=headers,
    )
