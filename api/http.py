"""Request bodies, responses, auth and OpenAPI wiring shared by every route module."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Iterable
from functools import cache
from typing import Any, TypeVar, get_args

import msgspec
from fastapi import Request
from fastapi.responses import Response

from api import limits
from api.problems import PROBLEM_JSON, HttpProblem, Problem, field_error
from domain.errors import FieldError, ValidationFailed
from domain.events import Actor
from domain.values import DECIMAL_GRAMMAR, DECIMAL_TEXT, decimal_texts
from ledger.commands import Idempotency, Outcome

T = TypeVar("T")
MAX_BODY_BYTES = 1024 * 1024
MAX_KEY_LENGTH = 255
_ENCODER = msgspec.json.Encoder(decimal_format="string")

# Every msgspec type that appears in a request or response, for /openapi.json.
SCHEMA_TYPES: set[Any] = {Problem}


@cache
def _decoder(cls: type[Any]) -> msgspec.json.Decoder[Any]:
    return msgspec.json.Decoder(cls)


async def read_body(request: Request) -> bytes:
    """The raw body, refused with 413 past 1 MiB (before it is all read, when announced), and
    with 408 when it has not all arrived within `limits.BODY_SECONDS` (a client that sends a
    byte a minute holds nothing for long)."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES:
        raise HttpProblem(413, "too-large", "Payload too large", "bodies are limited to 1 MiB")
    body = bytearray()
    try:
        async with asyncio.timeout(limits.BODY_SECONDS):
            async for chunk in request.stream():
                body += chunk
                if len(body) > MAX_BODY_BYTES:
                    raise HttpProblem(
                        413, "too-large", "Payload too large", "bodies are limited to 1 MiB"
                    )
    except TimeoutError:
        raise HttpProblem(
            408,
            "body-timeout",
            "Request timeout",
            f"the body did not arrive within {limits.BODY_SECONDS:g} s",
        ) from None
    if body and not is_json(request.headers.get("content-type")):
        raise HttpProblem(
            415,
            "unsupported-media-type",
            "Unsupported media type",
            "a body is JSON: send it with Content-Type: application/json",
        )
    return bytes(body)


def is_json(content_type: str | None) -> bool:
    """`application/json` or a `+json` type, with any parameters (`; charset=utf-8`)."""
    if content_type is None:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    structured = media.startswith("application/") and media.endswith("+json")
    return media == "application/json" or structured


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return found


def read_json(body: bytes) -> Any:
    """The body as JSON with each number kept as its text, as `domain.values.decimal_texts`
    reads it; None when Python's reader cannot read it (the decoder then says why).

    400 for an object that names a key twice: JSON parsers disagree on which one counts
    (`"declarant": B, "declarant": A` read as A here, as B elsewhere), so neither does."""
    try:
        return json.loads(
            body,
            object_pairs_hook=_no_duplicates,
            parse_int=str,
            parse_float=str,
            parse_constant=str,
        )
    except _DuplicateKey as e:
        raise HttpProblem(
            400, "duplicate-key", "Bad request", f"the key {e.key!r} appears twice in one object"
        ) from None
    except (ValueError, RecursionError):
        return None


def decode_body(body: bytes, cls: type[T]) -> T:
    """Decode and validate with msgspec: 400 when it is not a JSON object or names a key twice,
    422 naming the field - also for a decimal outside the contract's grammar, which msgspec
    (reading it with Python's Decimal()) would take."""
    raw = read_json(body)
    try:
        # A body type is a class or a tagged union of classes (hashable either way); lru_cache
        # is typed as taking only Hashable.
        value = _decoder(cls).decode(body)  # type: ignore[arg-type]
    except msgspec.ValidationError as e:
        if " - at `" not in str(e) and str(e).startswith("Expected `object`"):
            raise HttpProblem(
                400, "not-an-object", "Bad request", "the body must be a JSON object"
            ) from None
        error = field_error(e)
        if error.msg == "Invalid decimal string":  # msgspec's own refusal, in the same words
            loc = _keyed(error.loc, raw) if "[...]" in error.loc and raw is not None else error.loc
            error = FieldError(loc, DECIMAL_GRAMMAR)
        raise ValidationFailed(error) from None
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError, ValueError):
        raise _malformed() from None
    if raw is None:
        raise _malformed()  # read by msgspec, not by Python: its decimals cannot be checked
    errors = list(decimal_texts(value, raw))
    if errors:
        raise ValidationFailed(errors)
    return value


def _keyed(loc: str, raw: Any) -> str:
    """msgspec names a value of a JSON object read as a dict `[...]` (`$.rates[...]`): for a
    refused decimal, the first key whose value there is not a decimal in the contract's grammar
    is named instead (`$.rates.EUR`). Unchanged when it cannot tell."""
    head, _, rest = loc.partition("[...]")
    node = raw
    for name, index in re.findall(r"\.([^.\[]+)|\[(\d+)\]", head):
        try:
            node = node[int(index)] if index else node[name]
        except (KeyError, IndexError, TypeError, ValueError):
            return loc
    if not isinstance(node, dict):
        return loc
    for key, value in node.items():
        if rest and not isinstance(value, dict):
            continue
        inner = value
        for name in re.findall(r"\.([^.\[]+)", rest):
            inner = inner.get(name) if isinstance(inner, dict) else None
        grammatical = isinstance(inner, str) and DECIMAL_TEXT.fullmatch(inner)
        if (rest == "" or inner is not None) and not grammatical:
            return f"{head}.{key}{rest}"
    return loc


def _malformed() -> HttpProblem:
    return HttpProblem(400, "malformed-json", "Bad request", "the body is not valid JSON")


def encode(body: Any) -> bytes:
    return _ENCODER.encode(body)


def json_response(
    body: Any, status_code: int = 200, *, position: int | None = None, **headers: str
) -> Response:
    h = dict(headers)
    if position is not None:
        h["X-Ledger-Position"] = str(position)
    return Response(encode(body), status_code=status_code, media_type="application/json", headers=h)


def outcome_response(outcome: Outcome) -> Response:
    headers = {"Idempotency-Replayed": "true"} if outcome.replayed else {}
    return json_response(outcome.body, outcome.status_code, position=outcome.position, **headers)


def valid_idempotency_key(key: str) -> bool:
    """The rule of an Idempotency-Key, the header's and a batch item's (api/batch.py): 1 to
    `MAX_KEY_LENGTH` printable characters. Each caller writes its own refusal (the message at
    its call, where the catalog's extraction reads it)."""
    return 1 <= len(key) <= MAX_KEY_LENGTH and key.isprintable()


def idempotency(request: Request, actor: Actor, *, required: bool) -> Idempotency | None:
    key = request.headers.get("idempotency-key")
    if key is None:
        if required:
            raise HttpProblem(
                400,
                "idempotency-key-missing",
                "Bad request",
                "the Idempotency-Key header is required",
            )
        return None
    if not valid_idempotency_key(key):
        raise HttpProblem(
            400,
            "idempotency-key-invalid",
            "Bad request",
            f"an Idempotency-Key has 1 to {MAX_KEY_LENGTH} printable characters",
        )
    return Idempotency(principal=actor.name, key=key, method=request.method, path=request.url.path)


# -- OpenAPI --------------------------------------------------------------------------------

ERROR_TEXT = {
    400: "Unparseable JSON, a body that is not an object or names a key twice, or a missing "
    "Idempotency-Key",
    401: "No token, or an unknown or revoked token",
    403: "The caller's role may not use this route, or the body names another party",
    404: "Unknown resource, or another tenant's",
    409: "Conflicts with the ledger's state; `rule` names it",
    413: "Body over 1 MiB",
    415: "A body that is not sent as Content-Type: application/json",
    422: "Invalid content; `errors[].loc` names each field",
    429: "Too many requests from this address or with this key, or too many failed "
    'authentications from this address (docs/security.md, "Rate limits"): send it again '
    "after Retry-After",
    503: "The server could not do it now (the store stayed busy past its lock timeout, or a "
    "replay's helper process failed); nothing was written: send it again after Retry-After",
}


RETRY_AFTER_HEADER = {
    "Retry-After": {
        "description": "Seconds to wait before sending the same request again",
        "schema": {"type": "integer"},
    }
}


def position_header(*, required: bool) -> dict[str, Any]:
    """`X-Ledger-Position`: the log position a write recorded, or that a view read reflects."""
    return {
        "X-Ledger-Position": {
            "description": "The log position the answer reflects (writes: the one recorded)",
            "required": required,
            "schema": {"type": "integer", "minimum": 0},
        }
    }


MIN_POSITION_HEADER = "X-Ledger-Min-Position"
MIN_POSITION_DIGITS = 18
MIN_POSITION_PARAMETER = {
    "name": MIN_POSITION_HEADER,
    "in": "header",
    "required": False,
    "schema": {"type": "integer", "minimum": 0, "maximum": 10**MIN_POSITION_DIGITS - 1},
    "description": "Wait (bounded) until the views reflect at least this log position"
    " (at most 18 ASCII digits; anything else is 422)",
}
REPLAYED_HEADER = {
    "Idempotency-Replayed": {
        "description": "Present on the first answer given again for a retried Idempotency-Key",
        "required": False,
        "schema": {"type": "string", "enum": ["true"]},
    }
}
CHALLENGE_HEADER = {
    "WWW-Authenticate": {
        "description": "The scheme to authenticate with",
        "required": True,
        "schema": {"type": "string", "enum": ["Bearer"]},
    }
}


def _ref(cls: Any) -> dict[str, Any]:
    members = get_args(cls)
    if members:
        # A tagged union of bodies: one of the members, told apart by their tag field.
        info = msgspec.inspect.type_info(members[0])
        assert isinstance(info, msgspec.inspect.StructType)
        tag_field = info.tag_field
        return {"oneOf": [_ref(m) for m in members], "discriminator": {"propertyName": tag_field}}
    SCHEMA_TYPES.add(cls)
    name = cls.__name__
    return {"$ref": f"#/components/schemas/{name}"}


def doc(
    *,
    body: Any = None,
    body_required: bool = True,
    ok: tuple[int, Any] | None = None,
    errors: Iterable[int] = (),
    idempotency_required: bool | None = None,
    position: bool | None = None,
    batch: bool = False,
) -> dict[str, Any]:
    """Route decorator keyword arguments describing msgspec bodies in the OpenAPI document.

    `position`: a view read, which takes `X-Ledger-Min-Position` and answers
    `X-Ledger-Position` always (True) or only sometimes (False); writes (the routes that take
    an `Idempotency-Key`) always answer it, and may be replays; a `batch` of writes answers it
    when it recorded an item.
    """
    responses: dict[int | str, Any] = {}
    if ok is not None:
        status, cls = ok
        schema = _ref(cls) if cls is not None else {"type": "object"}
        responses[status] = {
            "description": {200: "OK", 207: "Multi-Status"}.get(status, "Created"),
            "content": {"application/json": {"schema": schema}},
        }
        headers: dict[str, Any] = {}
        if idempotency_required is not None:
            headers = {**position_header(required=True), **REPLAYED_HEADER}
        elif batch:
            # A batch (api/batch.py): its items carry their keys; the position of the last
            # item it recorded, when it recorded one.
            headers = position_header(required=False)
        elif position is not None:
            headers = position_header(required=position)
        if headers:
            responses[status]["headers"] = headers
    statuses = set(errors) | ({415, 422} if body is not None else set())
    statuses.add(429)  # every route: the rate limits (api/ratelimit.py) come before routing
    if idempotency_required is not None or batch:
        statuses.add(503)  # a write the busy store could not take (Retry-After)
    for status in sorted(statuses):
        responses[status] = {
            "description": ERROR_TEXT[status],
            "content": {PROBLEM_JSON: {"schema": _ref(Problem)}},
        }
        if status == 401:
            responses[status]["headers"] = CHALLENGE_HEADER
        if status == 429 or (status == 503 and (idempotency_required is not None or batch)):
            responses[status]["headers"] = RETRY_AFTER_HEADER
    extra: dict[str, Any] = {}
    if body is not None:
        extra["requestBody"] = {
            "required": body_required,
            "content": {"application/json": {"schema": _ref(body)}},
        }
    parameters: list[dict[str, Any]] = []
    if position is not None:
        parameters.append(MIN_POSITION_PARAMETER)
    if idempotency_required is not None:
        parameters.append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": idempotency_required,
                "schema": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": MAX_KEY_LENGTH,
                    # Printable characters (str.isprintable) of ISO 8859-1, as headers are read.
                    "pattern": "^[ -~\u00a1-\u00ac\u00ae-\u00ff]+$",
                },
                "description": "Retries with the same key and body get the first answer again",
            }
        )
    if parameters:
        extra["parameters"] = parameters
    kwargs: dict[str, Any] = {"responses": responses}
    if extra:
        kwargs["openapi_extra"] = extra
    if ok is not None:
        kwargs["status_code"] = ok[0]
    return kwargs


def merge_components(schema: dict[str, Any], types: Iterable[Any]) -> dict[str, Any]:
    """Add msgspec's JSON Schemas of our types under components/schemas."""
    _, components = msgspec.json.schema_components(
        sorted(types, key=lambda t: t.__name__), ref_template="#/components/schemas/{name}"
    )
    schema.setdefault("components", {}).setdefault("schemas", {}).update(components)
    return schema


def list_type(item: Any, name: str) -> Any:
    """A `{items: [...], next_cursor}` page type for the OpenAPI document and the encoder."""
    cls = msgspec.defstruct(
        name, [("items", list[item]), ("next_cursor", str | None)], kw_only=True
    )
    SCHEMA_TYPES.add(cls)
    return cls


Handler = Callable[..., Any]
