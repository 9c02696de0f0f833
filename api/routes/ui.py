"""The trace viewer: a page that draws `GET /v1/trace` in the browser; it holds no data itself.

The page, its script modules and its style sheet are files of the `api` package
(`api/static/`), served from here: nothing comes from a CDN, so the viewer works offline. They
need no token (the page asks the API with the one the user enters); they stay out of
/openapi.json like /docs, since they are not part of the API.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from fastapi import APIRouter, HTTPException
from fastapi.responses import Response

router = APIRouter(include_in_schema=False)

# Same-origin files only; no inline script or style, so no nonce is needed. `connect-src 'self'`
# keeps the token from being sent anywhere but this ledger.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


@cache
def asset(name: str) -> bytes:
    """A file of `api/static/`, read once (it is part of the installed package)."""
    return resources.files("api").joinpath("static", name).read_bytes()


def _file(name: str, media_type: str) -> Response:
    return Response(asset(name), media_type=media_type, headers=HEADERS)


@router.get("/ui/trace")
def trace_viewer() -> Response:
    """The page; `?ref=` and `?direction=` prefill its query (read by its script)."""
    return _file("trace.html", "text/html; charset=utf-8")


# The viewer's files, by name: the only ones served (an allow-list, so no path is ever built
# from the request).
ASSETS = {
    "trace.js": "text/javascript; charset=utf-8",
    "chain.js": "text/javascript; charset=utf-8",
    "dom.js": "text/javascript; charset=utf-8",
    "trace.css": "text/css; charset=utf-8",
}


@router.get("/ui/static/{name}")
def trace_viewer_asset(name: str) -> Response:
    """The page's script modules and style sheet."""
    media_type = ASSETS.get(name)
    if media_type is None:
        raise HTTPException(404, "Not Found")
    return _file(name, media_type)
