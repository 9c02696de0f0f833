"""The browser pages: the trace viewer (draws `GET /v1/trace`) and the monitoring dashboard
(draws `GET /v1/stats` and the routes beside it, docs/dashboard.md); they hold no data
themselves.

The pages, their script modules and style sheets, and the chart library the dashboard draws
with (Apache ECharts, vendored under `api/static/vendor/echarts/` with its licence), are files
of the `api` package (`api/static/`), served from here: nothing comes from a CDN, so the pages
work offline. They need no token (a page asks the API with the one the user enters); they stay
out of /openapi.json like /docs, since they are not part of the API.
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
    return resources.files("api").joinpath("static", *name.split("/")).read_bytes()


def _file(name: str, media_type: str) -> Response:
    return Response(asset(name), media_type=media_type, headers=HEADERS)


@router.get("/ui/trace")
def trace_viewer() -> Response:
    """The page; `?ref=` and `?direction=` prefill its query (read by its script)."""
    return _file("trace.html", "text/html; charset=utf-8")


@router.get("/ui/dashboard")
def dashboard() -> Response:
    """The monitoring dashboard; `?zone=`, `?from=`, `?to=` and `?group_by=` prefill its
    filters (read by its script)."""
    return _file("dashboard.html", "text/html; charset=utf-8")


# The pages' files, by name: the only ones served (an allow-list, so no path is ever built
# from the request).
ASSETS = {
    "trace.js": "text/javascript; charset=utf-8",
    "trace-labels.js": "text/javascript; charset=utf-8",
    "chain.js": "text/javascript; charset=utf-8",
    "dom.js": "text/javascript; charset=utf-8",
    "language.js": "text/javascript; charset=utf-8",
    "trace.css": "text/css; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard-labels.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
    "echarts.min.js": "text/javascript; charset=utf-8",
}
# Where a served name lies under `api/static/` when not at its top.
PATHS = {"echarts.min.js": "vendor/echarts/echarts.min.js"}


@router.get("/ui/static/{name}")
def trace_viewer_asset(name: str) -> Response:
    """The pages' script modules and style sheets, and the chart library."""
    media_type = ASSETS.get(name)
    if media_type is None:
        raise HTTPException(404, "Not Found")
    return _file(PATHS.get(name, name), media_type)
