"""A hostile schemathesis run of every route: at least 10,000 requests, 0 5xx, and the log
unchanged by every refusal (issue #14 items 4 and 6, "Tests and proof").

tests/e2e/test_fuzz_openapi.py checks the HTTP contract with schemathesis' own draws. This run
takes schemathesis' cases (valid and invalid, and the requests the ledger accepts from
`valid_requests`, over the same seeded world) and makes them hostile before sending them
(`hostile_case`):

- every date-time query parameter (`as_of`, `from`, `to`) and body field (`occurred_at`,
  `as_of`), present or not, gets extreme dates and offsets (year 1 at +14:00, year 9999 at
  -14:00, +24:00 offsets, leap seconds, naive times, non-ASCII digits);
- strings get bidirectional controls, zero-width and invisible characters, line and paragraph
  separators, C0/C1 controls and DEL, lone surrogates, spreadsheet formulas, 10,000 characters;
- decimal fields get odd decimals (`"+10"`, `"1_000"`, `"1e2"`, Arabic-Indic digits, `NaN`,
  400 digits, JSON numbers with exponents, `-0.0`);
- integers (path, query, body and `X-Ledger-Min-Position`) get huge and negative values;
- a write's body is sent a second time with a key named twice (`{"k": hostile, ...k...}`),
  at the top or in a nested object: 400, never taken.

Either one field of a request the ledger would accept is made hostile (so the hostile value is
what the answer is about) or every field of a drawn case is. Every answer must not be a 5xx, must
conform to the document (status code, content type, headers, body schema), and when it is not a
2xx must leave the log unchanged (event count and head hash). About half the hostile requests
(`asks_chinese`, by their content) carry `Accept-Language: zh-CN`: each problem+json answer to
one must be in the catalog's Chinese, all of it but its values (issue #20; collected, and the
run fails at its end listing each with its request). At the end no event in the log may
hold a control, bidirectional or invisible character, and the run asserts its count.

Speed: the requests go to the app in process (Starlette's TestClient, no sockets), the log state
is read once per request, and schemathesis' checks that send more requests (`ignored_auth`) are
left to test_fuzz_openapi.py. Measured on the 2-core CI machine under load: see docs/api.md,
"Fuzzing".
"""

from __future__ import annotations

import itertools
import json
import random
import time
import urllib.parse
import zlib
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core import NotSet
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api import i18n
from api.app import create_app
from api.http import MAX_BODY_BYTES
from api.settings import Settings
from domain import values
from domain.errors import ValidationFailed
from domain.values import CONTROL_CHARACTER
from tests import samples
from tests.e2e.test_fuzz_openapi import (
    DOCUMENT,
    ENTERPRISE_MOVEMENTS,
    ROLES,
    World,
    asks_chinese,
    seed,
    valid_requests,
)
from tests.seed import SEED as TEST_SEED
from tests.support import RAISED_LIMITS, Ledger, declaration_body

MIN_REQUESTS = 10_000
EXAMPLES_PER_OPERATION = 90
VARIANTS = 3  # hostile requests made from each drawn case
# A replay runs in a helper process (decision 0011): a few are enough to be hostile to it.
FEW = {"POST /v1/audit/replay": 12, "GET /v1/audit/verify": 40}
BASE = "http://testserver"

CONFIG = schemathesis.Config.from_dict(
    {
        "seed": TEST_SEED.value,
        "generation": {
            "mode": "all",
            "max-examples": EXAMPLES_PER_OPERATION,
            "deterministic": False,
            "database": "none",
            "with-security-parameters": False,
        },
        "phases": {
            "examples": {"enabled": False},
            "coverage": {"enabled": False},
            "fuzzing": {"enabled": True},
            "stateful": {"enabled": False},
        },
        "operations": [
            {"include-name": [name], "generation": {"max-examples": n}} for name, n in FEW.items()
        ],
        "output": {"truncation": {"max-payload-size": 400}},
    }
)
schema = schemathesis.openapi.from_dict(DOCUMENT, config=CONFIG)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def _field_names(fmt: str) -> frozenset[str]:
    """The body fields of the document's components with this `format`, by name."""
    names = set()
    for component in DOCUMENT["components"]["schemas"].values():
        for name, prop in component.get("properties", {}).items():
            options = [prop, *prop.get("anyOf", [])]
            if any(o.get("format") == fmt for o in options):
                names.add(name)
    return frozenset(names)


KEYED = {
    f"{method.upper()} {path}"
    for path, operations in DOCUMENT["paths"].items()
    for method, operation in operations.items()
    if any(p["name"] == "Idempotency-Key" for p in operation.get("parameters", []))
}
DECIMAL_FIELDS = _field_names("decimal")
TIME_FIELDS = _field_names("date-time")
TIME_PARAMETERS = {
    f"{method.upper()} {path}": [
        p["name"]
        for p in operation.get("parameters", [])
        if p["in"] == "query" and p.get("schema", {}).get("format") == "date-time"
    ]
    for path, operations in DOCUMENT["paths"].items()
    for method, operation in operations.items()
}

# -- hostile values ---------------------------------------------------------------------------

BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
INVISIBLE = "\u200b\u200c\u200d\u2060\u2061\u2062\u2063\u2064\ufeff"
CONTROLS = "\x00\x01\x08\t\n\r\x0b\x0c\x1b\x7f\x80\x85\x9b\x9f\u2028\u2029"
HOSTILE_CHARACTERS = BIDI + INVISIBLE + CONTROLS
CANNED_TEXT = [
    "invoice\u202egpj.exe",
    '=HYPERLINK("http://x")',
    " =1+1",
    "\u00a0@SUM(A1)",
    "\uff1d1+1",
    "\ud800",  # a lone surrogate (sent as the escape \ud800)
    "x" * 10_000,
    "../../etc/passwd",
    "' OR 1=1 --",
    "\u0661\u0660",
    "",
    " ",
]
EXTREME_TIMES = [
    "0001-01-01T00:00:00+14:00",
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00-14:00",
    "9999-12-31T23:59:59-14:00",
    "9999-12-31T23:59:59.999999Z",
    "9999-12-31T23:59:59+14:00",
    "1899-12-31T23:59:59Z",
    "1900-01-01T00:00:00+00:01",
    "8999-12-31T23:59:59-23:59",
    "9000-01-01T00:00:00Z",
    "2026-11-27T09:30:00+24:00",
    "2026-11-27T09:30:00-23:59",
    "2026-11-27T24:00:00Z",
    "2026-12-31T23:59:60Z",
    "2026-02-30T00:00:00Z",
    "2026-11-27T09:30:00",
    "2026-11-27",
    "+10000-01-01T00:00:00Z",
    "-0001-01-01T00:00:00Z",
    "2026-11-27T09:30:00.1234567890123Z",
    "\uff12\uff10\uff12\uff16-11-27T09:30:00Z",
    "2026-11-27T09:30:00\u202eZ",
]
ODD_DECIMALS: list[Any] = [
    "+10",
    " 10",
    "1_000",
    "1e2",
    "1E+999999999",
    "0E-999999999",
    "\u0661\u0660",
    "\uff11\uff10",
    "NaN",
    "-Infinity",
    "9" * 400,
    "0." + "0" * 40 + "1",
    "-0",
    "-1",
    ".5",
    "1,000",
    "\u221210",
    # JSON numbers (sent as numbers, not strings)
    1e308,
    -0.0,
    10**30,
    0.1,
]
HUGE_INTEGERS = [
    -1,
    0,
    2**31,
    2**63,
    2**64 + 1,
    -(2**63) - 1,
    10**40,
    10**4000,
    1e300,
    True,
]
QUERY_NUMBERS = [
    "-1",
    "0",
    "99999999999999999999",
    "1" * 4400,
    "1e3",
    "0x10",
    "\u0661",
    "\u00b2",
    "1.0",
    " 1",
    "",
]


ALPHABET = HOSTILE_CHARACTERS + "aZ09-= "


def hostile_text(rng: random.Random, plain: Any, *, url: bool = False) -> str:
    """A hostile character put into the value (so the rest of it stays what the field wants),
    hostile text of any shape, or a canned nasty (in a URL: one that UTF-8 can encode)."""
    choice = rng.randrange(3)
    if choice == 0:
        base = plain if isinstance(plain, str) and plain else "ABC"
        at = rng.randrange(len(base) + 1)
        return base[:at] + rng.choice(HOSTILE_CHARACTERS) + base[at:]
    if choice == 1:
        return "".join(rng.choice(ALPHABET) for _ in range(rng.randrange(1, 17)))
    canned = rng.choice(CANNED_TEXT)
    return canned.replace("\ud800", "\u202e") if url else canned


def hostile_value(rng: random.Random, name: str | None, plain: Any) -> Any:
    """A hostile value for a body field named `name` now holding `plain`."""
    if name in DECIMAL_FIELDS:
        return rng.choice(ODD_DECIMALS)
    if name in TIME_FIELDS:
        return rng.choice(EXTREME_TIMES)
    if isinstance(plain, bool | float) or not isinstance(plain, int):
        return hostile_text(rng, plain)
    return rng.choice(HUGE_INTEGERS)


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """(path, value) of every scalar in a JSON value, and of every empty object or list."""
    if isinstance(value, dict) and value:
        for k, v in value.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(value, list) and value:
        for i, v in enumerate(value):
            yield from _leaves(v, (*path, i))
    else:
        yield path, value


def _set(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _set(value[head], rest, new)}
    copy = list(value)
    copy[head] = _set(copy[head], rest, new)
    return copy


def _name(path: tuple[Any, ...]) -> str | None:
    names = [p for p in path if isinstance(p, str)]
    return names[-1] if names else None


def hostile_body(rng: random.Random, body: Any, every: bool) -> Any:
    """One leaf of the body made hostile, or every leaf; and sometimes an extreme
    `occurred_at` added at the top."""
    leaves = list(_leaves(body))
    for path, plain in leaves if every else [rng.choice(leaves)]:
        body = _set(body, path, hostile_value(rng, _name(path), plain))
    if isinstance(body, dict) and rng.randrange(4) == 0:
        body = {**body, "occurred_at": rng.choice(EXTREME_TIMES)}
    return body


def hostile_query(rng: random.Random, label: str, query: dict[str, Any]) -> dict[str, Any]:
    """Every time parameter of the route (present or not) at an extreme, or not sent; other
    parameters hostile text or odd numbers, or as drawn."""
    query = dict(query)
    times = TIME_PARAMETERS[label]
    for name in times:
        if rng.randrange(2):
            query[name] = rng.choice(EXTREME_TIMES)
    for name, plain in list(query.items()):
        if name in times or rng.randrange(2):
            continue
        numeric = isinstance(plain, int) or name in ("limit", "after", "item_no")
        query[name] = rng.choice(QUERY_NUMBERS) if numeric else hostile_text(rng, plain, url=True)
    return query


def hostile_path(rng: random.Random, parameters: dict[str, Any]) -> dict[str, Any]:
    hostile = {}
    for name, plain in parameters.items():
        if rng.randrange(2):
            plain = rng.choice(QUERY_NUMBERS) if rng.randrange(4) == 0 else plain
            plain = hostile_text(rng, plain, url=True)
        hostile[name] = plain
    return hostile


@dataclass
class Hostile:
    """One hostile request made from a drawn case (the case itself is left as drawn)."""

    path_parameters: dict[str, Any]
    query: dict[str, Any]
    body: Any
    min_position: str | None
    named_twice: bool = False

    def path(self, template: str) -> str:
        quoted = {k: urllib.parse.quote(str(v), safe="") for k, v in self.path_parameters.items()}
        return template.format(**quoted)

    def content(self) -> bytes | None:
        if isinstance(self.body, NotSet):
            return None
        return _named_twice(self.body, "\u202e") if self.named_twice else _json(self.body)


WORLD: list[World] = []
KEYS = itertools.count(1)
# The router's 404 (no route for the path), in either language a request asks for.
ROUTER_404 = ("Not Found", i18n.translate("Not Found", "zh-CN"))
PLANS: dict[str, list[Hostile]] = {}  # case.id -> its hostile requests
VALID: dict[str, Any] = {}  # operation -> requests the ledger accepts, as (path, body) draws
SEEDS = st.integers(0, 2**64 - 1)


def _variant(case: Any, valid: tuple[dict[str, Any], Any] | None, seed: int) -> Hostile:
    """Either one field of a request the ledger would accept made hostile, or every field of
    the drawn case (valid or invalid as generated)."""
    rng = random.Random(seed)
    every = valid is None or rng.randrange(2) == 0
    path = dict(case.path_parameters or {})
    body = case.body if case.body is not None else NotSet()
    if not every and valid is not None:
        path |= valid[0]
        body = valid[1]
    if not isinstance(body, NotSet):
        body = hostile_body(rng, body, every)
    if every:
        path = hostile_path(rng, path)
    position = rng.choice([None, None, *QUERY_NUMBERS[:5]])
    query = hostile_query(rng, case.operation.label, dict(case.query or {}))
    if case.operation.label == "GET /v1/stream":
        # `follow=true` is an answer that lasts until the client leaves, and this client reads
        # whole answers: the stream is asked for its finite read (the rest stays hostile).
        query["follow"] = "false"
    return Hostile(path, query, body, position)


def _plan(drawn: tuple[Any, tuple[Any, ...], int]) -> Any:
    case, valid, seed = drawn
    requests = [_variant(case, v, seed + i) for i, v in enumerate(valid)]
    last = requests[-1]
    if isinstance(last.body, dict) and last.body:
        requests.append(Hostile(last.path_parameters, {}, last.body, None, named_twice=True))
    PLANS[case.id] = requests
    return case


@schema.hook
def flatmap_case(context: Any, case: Any) -> Any:
    """VARIANTS hostile requests from each drawn case, and a write's body once more with a key
    named twice. Hypothesis draws the accepted requests and a seed; the hostile values come
    from the seed (building strategies per draw cost more than sending the requests). They
    are kept by the case's id: changing the case itself would make schemathesis validate it
    again."""
    if not WORLD:
        return st.just(case)
    label = case.operation.label
    if label not in VALID:
        valid = valid_requests(WORLD[0], label)
        VALID[label] = st.tuples(*[valid if valid is not None else st.none()] * VARIANTS)
    return st.tuples(st.just(case), VALID[label], SEEDS).map(_plan)


# -- the run ----------------------------------------------------------------------------------


class Run:
    """The seeded world in process and the tally of the run."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.ledger = world.ledger
        self.state = self.ledger.log_state()
        self.requests = 0
        self.statuses: Counter[int] = Counter()
        self.per_operation: Counter[str] = Counter()
        self.started = time.monotonic()

    def headers(self, case: Any, request: Hostile) -> dict[str, str]:
        """A token of a role that may call the route (by the hostile body's kind for a
        movement), a fresh Idempotency-Key where the route takes one, the JSON type."""
        key = (case.method.upper(), case.path)
        roles = ROLES[key]
        if key == ("POST", "/v1/movements"):
            kind = request.body.get("kind") if isinstance(request.body, dict) else None
            roles = ("enterprise",) if kind in ENTERPRISE_MOVEMENTS else ("operator",)
        headers = {}
        if roles:
            role = roles[zlib.crc32(repr(request).encode()) % len(roles)]
            headers["Authorization"] = f"Bearer {self.ledger.tokens[self.world.names[role]]}"
        if case.operation.label in KEYED:
            headers["Idempotency-Key"] = f"hostile-{next(KEYS)}"
        if request.min_position is not None:
            headers["X-Ledger-Min-Position"] = request.min_position
        if asks_chinese(case.operation.label, request):
            headers["Accept-Language"] = "zh-CN"
        if not isinstance(request.body, NotSet):
            headers["Content-Type"] = "application/json"
        return headers

    def send(self, case: Any, request: Hostile) -> Any:
        """One request; its answer is never a 5xx, and a refusal changes nothing."""
        headers = self.headers(case, request)
        content = request.content()
        response = self.ledger.client.request(
            case.method,
            request.path(case.path),
            params=request.query,
            headers=headers,
            content=content,
            follow_redirects=False,
        )
        self.requests += 1
        self.statuses[response.status_code] += 1
        self.per_operation[case.operation.label] += 1
        where = (case.operation.label, request, response.text[:400])
        assert response.status_code < 500, where
        after = self.ledger.log_state()
        if not 200 <= response.status_code < 300:
            assert after == self.state, ("the log changed on a refusal", *where)
        self.state = after
        if "Accept-Language" in headers:
            shown = f"{case.operation.label} {request!r}"[:600]
            self.world.check_chinese(f"{shown} -> {response.status_code}", response)
        case.validate_response(response, checks=CHECKS, headers=headers)
        if request.named_twice and "Authorization" in headers:
            # The caller's token and a fresh key: the body is read, and a key named twice in
            # one object is 400 whatever else is wrong with it - unless the path names no
            # route at all (the router's 404).
            if content is not None and len(content) > MAX_BODY_BYTES:
                # Every leaf made hostile can make a long body (10**4000 has 4,001 digits):
                # past 1 MiB it is refused before it is read.
                assert response.status_code == 413, where
                assert response.json()["type"].endswith("/too-large"), where
            elif response.json().get("detail") not in ROUTER_404:
                assert response.status_code == 400, where
                assert response.json()["type"].endswith("/duplicate-key"), where
        elif response.status_code == 201:
            self.world.learn(case.operation.label, response.json())
        return response


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=True).encode()


def _named_twice(body: Any, value: Any) -> bytes:
    """The body with its first key named twice, the first time with `value`; in the first
    nested object when there is one."""
    assert isinstance(body, dict) and body
    for key, nested in body.items():
        if isinstance(nested, dict) and nested:
            inner = _named_twice(nested, value).decode()
            rest = _json({k: v for k, v in body.items() if k != key}).decode()
            return f"{{{json.dumps(key)}: {inner}, {rest[1:]}".replace(", }", "}").encode()
    key = next(iter(body))
    return f"{{{json.dumps(key)}: {_json(value).decode()}, {_json(body).decode()[1:]}".encode()


@contextmanager
def _in_process(database_url: str) -> Iterator[Ledger]:
    # One key sends all 10,000 requests: the rate limits (tests/e2e/test_rate_limits.py) are
    # raised out of its reach, or most answers would be 429.
    settings = Settings(
        database_url=database_url, read_wait_seconds=0.05, rate_limits=RAISED_LIMITS
    )
    app = create_app(settings, rules=samples.rules_without_draws())
    with TestClient(app, base_url=BASE) as client:
        ledger = Ledger(client=client, services=app.state.services, tokens={})  # type: ignore[arg-type]
        for role in ("admin", "officer", "auditor"):
            ledger.issue(role, role)
        yield ledger


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Iterator[Run]:
    database = tmp_path_factory.mktemp("hostile-fuzz") / "ledger.sqlite3"
    with _in_process(f"sqlite:///{database}") as ledger:
        story, identifiers = seed(ledger)
        world = World(base=BASE, ledger=ledger, story=story, identifiers=identifiers)
        WORLD.append(world)
        try:
            yield Run(world)
        finally:
            WORLD.clear()
            PLANS.clear()
            VALID.clear()


@schema.parametrize()
def test_hostile_requests_get_no_5xx_and_refusals_change_nothing(case, run):
    for request in PLANS.pop(case.id):
        run.send(case, request)


def test_a_path_parameter_ending_in_a_slash_is_404_not_a_redirect(run):
    """Found by the hostile run: `/v1/enterprises/ABC%2F` was a 307 to `/v1/enterprises/ABC`
    (Starlette's redirect_slashes), a write's included: another resource than the one named."""
    ledger, story = run.ledger, run.world.story
    before = ledger.log_state()
    reviewed = run.world.identifiers["document_review"][0]
    answers = [
        ledger.client.get(
            f"/v1/enterprises/{story.tenant.uscc}%2F",
            headers=ledger.headers("officer"),
            follow_redirects=False,
        ),
        ledger.client.post(
            f"/v1/declarations/{reviewed}%2F/release",
            headers=ledger.headers("officer", f"hostile-{next(KEYS)}"),
            json={},
            follow_redirects=False,
        ),
        ledger.client.get("/v1/declarations/", headers=ledger.headers("officer")),
    ]
    assert [r.status_code for r in answers] == [404, 404, 404], [r.text for r in answers]
    assert ledger.log_state() == before


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("container", "TGHU1234567\u2028"),
        ("container", "TGHU\u200b1234567"),
        ("container", "\x1bTGHU1234567"),
        ("account_book", "{book}\n"),
    ],
)
def test_codes_refuse_hidden_characters_python_stdnum_or_a_regex_would_read_past(run, field, value):
    """Found by the hostile run: `"container": "TGHU1234567\u2028"` was stored as sent
    (python-stdnum strips blanks before checking); a final newline passed `^...$` patterns."""
    ledger, tenant = run.ledger, run.world.story.tenant
    before = ledger.log_state()
    body = declaration_body(tenant.uscc, tenant.book_no)
    if field == "container":
        body["transport"] = {**body["transport"], "container": value}
        loc = "$.transport.container"
    else:
        body[field] = value.format(book=tenant.book_no)
        loc = f"$.{field}"
    r = ledger.post("/v1/declarations", tenant.token_name, body, key=f"hostile-{next(KEYS)}")
    assert r.status_code == 422, r.text
    assert loc in [e["loc"] for e in r.json()["errors"]], r.json()
    assert ledger.log_state() == before


@pytest.mark.parametrize(
    ("check", "code"),
    [
        (values.hs_code, "8471300000\n"),
        (values.customs_code, "6101340001\n"),
        (values.book_no, "T9007W000001\n"),
        (values.container_no, "TGHU1234567\u2029"),
    ],
)
def test_a_code_with_a_final_newline_or_separator_is_refused(check, code):
    with pytest.raises(ValidationFailed):
        check("$.x", code)
    assert check("$.x", code[:-1]) == code[:-1]


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def test_the_hostile_run_sent_at_least_10000_requests_and_logged_no_hostile_text(run):
    """Runs after the fuzz tests above (pytest keeps a module's order)."""
    seconds = time.monotonic() - run.started
    print(
        f"\nhostile fuzz: {run.requests} requests over {len(run.per_operation)} operations in"
        f" {seconds:.0f} s ({run.requests / max(seconds, 1e-9):.0f}/s);"
        f" statuses {dict(sorted(run.statuses.items()))}"
    )
    for label, n in sorted(run.per_operation.items()):
        print(f"  {label}: {n}")
    operations = {f"{m.upper()} {p}" for p, ops in DOCUMENT["paths"].items() for m in ops}
    assert set(run.per_operation) == operations, "run the whole module: every operation"
    assert not any(s >= 500 for s in run.statuses), run.statuses
    assert run.requests >= MIN_REQUESTS, run.requests
    # What the hostile writes that were taken wrote: no hostile character anywhere in the log.
    after, bad = None, []
    while True:
        params = {"limit": 1000} | ({"after": after} if after is not None else {})
        page = run.ledger.get("/v1/events", "auditor", params=params).json()["items"]
        if not page:
            break
        bad += [
            (e["type"], s)
            for e in page
            for s in _strings(e["payload"])
            if CONTROL_CHARACTER.search(s)
        ]
        after = page[-1]["position"]
    assert bad == [], bad[:5]


def test_every_refusal_asked_in_chinese_was_in_chinese(run):
    """Runs after the hostile run: each problem+json answer to a request in zh-CN had
    `Content-Language: zh-CN` and no English left but its values (issue #20)."""
    world = run.world
    print(f"\nchecked {world.chinese} problem+json answers in zh-CN")
    assert world.chinese > 0, "run the whole module: the hostile requests ask in zh-CN"
    assert not world.untranslated, "stays English in zh-CN:\n" + "\n".join(
        f"  {left!r} ({times}x), first for {request}"
        for left, (request, times) in sorted(world.untranslated.items())
    )
