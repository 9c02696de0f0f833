"""RFC 9457 problem+json: the one table from error classes to HTTP statuses."""

from __future__ import annotations

import re
from typing import Any

import msgspec
from fastapi import Request
from fastapi.responses import Response

from api import i18n
from domain.errors import (
    Conflict,
    FieldError,
    Forbidden,
    LedgerError,
    NotFound,
    Unavailable,
    ValidationFailed,
)

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://customs-ledger.dev/problems/"


class Problem(msgspec.Struct, kw_only=True, omit_defaults=True):
    """An error answer (RFC 9457)."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[dict[str, str]] | None = None
    rule: str | None = None
    current_status: str | None = None


class HttpProblem(Exception):
    """An error that belongs to HTTP itself: 400, 401, 403, 404, 413."""

    def __init__(self, status: int, kind: str, title: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status, self.kind, self.title, self.detail, self.extra = (
            status,
            kind,
            title,
            detail,
            extra,
        )

    @classmethod
    def invalid(cls, loc: str, msg: str, detail: str) -> HttpProblem:
        """422 for one bad parameter or header (`loc`: `query.as_of`, `header.X-...`)."""
        errors = [{"loc": loc, "msg": msg}]
        return cls(422, "validation", "Invalid content", detail, errors=errors)


# The mapping table: most specific class first.
STATUS_OF: tuple[tuple[type[LedgerError], int, str], ...] = (
    (ValidationFailed, 422, "validation"),
    (NotFound, 404, "not-found"),
    (Forbidden, 403, "forbidden"),
    (Conflict, 409, "conflict"),
    (Unavailable, 503, "unavailable"),
    (LedgerError, 400, "bad-request"),
)

_ENCODER = msgspec.json.Encoder()


def translated(problem: Problem) -> Problem:
    """The problem's `title`, `detail` and each `errors[].msg` in the request's language
    (api/i18n.py); `type`, `rule` and `loc` as they are."""
    language = i18n.language()
    if language == "en":
        return problem
    return msgspec.structs.replace(
        problem,
        title=i18n.translate(problem.title, language),
        detail=i18n.translate(problem.detail, language),
        errors=[{**e, "msg": i18n.translate(e["msg"], language)} for e in problem.errors]
        if problem.errors is not None
        else None,
    )


def problem_response(problem: Problem, headers: dict[str, str] | None = None) -> Response:
    """The problem+json answer, in the request's language (`translated`)."""
    return Response(
        _ENCODER.encode(translated(problem)),
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers={
            **(headers or {}),
            "Content-Language": i18n.language(),
            "Vary": "Accept-Language",
        },
    )


def from_ledger_error(error: LedgerError) -> Problem:
    status, kind = 400, "bad-request"
    for cls, cls_status, cls_kind in STATUS_OF:
        if isinstance(error, cls):
            status, kind = cls_status, cls_kind
            break
    problem = Problem(type=TYPE_BASE + kind, title=error.title, status=status, detail=error.detail)
    if isinstance(error, ValidationFailed):
        problem.errors = [_field(e) for e in error.errors]
        problem.rule = error.rule
    if isinstance(error, Conflict):
        problem.rule = error.rule
        problem.type = TYPE_BASE + error.rule.replace("_", "-")
        problem.current_status = error.current_status
    return problem


def _field(error: FieldError) -> dict[str, str]:
    """`{loc, msg}`, and the `rule` when the field breaks a named one."""
    if error.rule is None:
        return {"loc": error.loc, "msg": error.msg}
    return {"loc": error.loc, "msg": error.msg, "rule": error.rule}


def from_http_problem(error: HttpProblem) -> Problem:
    return Problem(
        type=TYPE_BASE + error.kind,
        title=error.title,
        status=error.status,
        detail=error.detail,
        **error.extra,
    )


_AT = re.compile(r"^(?P<msg>.*?) - at `(?P<loc>\$[^`]*)`$", re.S)
_FIELD = re.compile(r"`(?P<field>[^`]+)`")


def field_error(error: msgspec.ValidationError) -> FieldError:
    """Turn msgspec's 'Expected `int`, got `str` - at `$.lines[2].quantity`' into (loc, msg)."""
    text = str(error)
    match = _AT.match(text)
    msg, loc = (match["msg"], match["loc"]) if match else (text, "$")
    # A missing or unknown field is named in the message: point the path at the field itself.
    if msg.startswith(("Object missing required field", "Object contains unknown field")):
        name = _FIELD.search(msg)
        if name:
            loc = f"{loc}.{name['field']}"
    return FieldError(loc, msg)


async def ledger_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LedgerError)
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, Unavailable) else None
    return problem_response(from_ledger_error(exc), headers)


async def http_problem_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HttpProblem)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return problem_response(from_http_problem(exc), headers)
