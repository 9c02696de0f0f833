"""Limits on what one request may make the server hold: its headers and the time its body
takes to arrive (issue #14 item 5). The reverse proxy should enforce the same, earlier
(docs/operations.md, "Limits"): uvicorn's httptools parser has no header limit of its own."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from api.problems import TYPE_BASE, Problem, problem_response

MAX_HEADERS = 100
MAX_HEADER_BYTES = 16 * 1024  # names and values together
# A body must have arrived this many seconds after its first byte was asked for (408).
BODY_SECONDS = 30.0


class HeaderLimits:
    """Pure ASGI: a request with more than MAX_HEADERS headers, or more than MAX_HEADER_BYTES
    of them, is answered 431 before any route (or authentication) sees it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = scope["headers"]
            size = sum(len(name) + len(value) for name, value in headers)
            if len(headers) > MAX_HEADERS or size > MAX_HEADER_BYTES:
                await _too_large(scope, receive, send, len(headers), size)
                return
        await self.app(scope, receive, send)


async def _too_large(scope: Scope, receive: Receive, send: Send, count: int, size: int) -> None:
    problem = Problem(
        type=TYPE_BASE + "headers-too-large",
        title="Request header fields too large",
        status=431,
        detail=f"{count} headers of {size} bytes: at most {MAX_HEADERS} headers and "
        f"{MAX_HEADER_BYTES} bytes",
    )
    await problem_response(problem, {"Connection": "close"})(scope, receive, send)
