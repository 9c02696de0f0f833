"""Fuzzing every route of /openapi.json with schemathesis (R4 and R7).

The ledger serves real HTTP (uvicorn in a thread, on a SQLite file) over a seeded world: the
train-to-air story of tests/stories.py (an enterprise, three account books, declarations of every
flow, lots, gate, transfer, processing and stocktake movements), a bill of materials and
declarations waiting in document review and in inspection. schemathesis reads the document the app
serves at /openapi.json and, for every operation, sends its coverage cases (boundary values,
missing and malformed parameters and bodies, unexpected methods) and Hypothesis-drawn requests,
valid and invalid, drawn from the run's seed (tests/seed.py: new on every commit, the same for
every run of one commit, printed at the start with the command that replays it; no example
database). Every request carries the token of a role that may use the route (docs/api.md, "Role x
route table"), so requests get past authentication and exercise the bodies. Of the valid draws,
about half name real resources (path parameters, query parameters and top-level body fields such as
`book_no`, `ref`, `lot_id`, `movement_id`, `stream_id`, `declaration`, `account_book`) and others
are requests the ledger accepts (`valid_requests`), so the 2xx answers of the writes are checked
too; what they create becomes a target of later requests.

Every response must: never be a 5xx; conform to the documented status codes, content type,
headers and body schema (every schemathesis check but `positive_data_acceptance`, see
`CONFIG`); and, when it is not a 2xx, leave the log unchanged (event count and head hash, R7).
About half the cases (`asks_chinese`, by their content) carry `Accept-Language: zh-CN`: every
problem+json answer to one must say `Content-Language: zh-CN` and have its `title`, `detail`
and each `errors[].msg` in the catalog's Chinese (issue #20); the run collects what is not and
fails at its end listing each with the request that got it.
The run counts its requests, prints the count and asserts at least 1,000. A chunked body over
1 MiB (no announced length) is 413 and changes nothing; tests/e2e/test_hostile_input.py covers
the announced one.

SQLite is enough here: the fuzzer checks the HTTP contract (the document against what the
handlers answer), which is the same code on both stores; the stores' own behaviour is covered
by the tests that run on both (the `database_url` fixture).
"""

from __future__ import annotations

import itertools
import socket
import string
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from hypothesis import strategies as st

from api import i18n
from api.app import create_app
from api.settings import Settings
from domain.reference import CREDIT_CLASSES
from tests import samples
from tests.e2e.role_table import allowed_roles
from tests.e2e.role_table import entries as role_entries
from tests.samples import line
from tests.seed import SEED as TEST_SEED
from tests.stories import Story, run_story
from tests.support import (
    RAISED_LIMITS,
    Ledger,
    Tenant,
    book_body,
    declaration_body,
    enterprise_body,
    new_key,
    serving,
)

MIN_REQUESTS = 1000
SEED = TEST_SEED.value
EXAMPLES_PER_OPERATION = 60


# Who may call each route: the role x route table of docs/api.md (`yes`, `own` or `zone`),
# read as the authorization matrix reads it. Public routes are called without a token.
# POST /v1/movements depends on the body's kind: the enterprise's kinds are those of its rows.
def _roles() -> dict[tuple[str, str], tuple[str, ...]]:
    roles: dict[tuple[str, str], tuple[str, ...]] = {}
    for entry in TABLE:
        key = (entry.method, entry.path)
        roles[key] = tuple(dict.fromkeys(roles.get(key, ()) + allowed_roles(entry)))
    return roles


TABLE = role_entries()
ROLES = _roles()
ENTERPRISE_MOVEMENTS = tuple(
    e.label.rpartition("kind=")[2]
    for e in TABLE
    if (e.method, e.path) == ("POST", "/v1/movements") and allowed_roles(e) == ("enterprise",)
)


@dataclass
class World:
    """The seeded ledger, its identifiers and the tally of the fuzz run."""

    base: str
    ledger: Ledger
    story: Story
    identifiers: dict[str, list[str]]
    tally: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    chinese: int = 0  # problem+json answers checked in zh-CN
    untranslated: dict[str, tuple[str, int]] = field(default_factory=dict)  # -> request, times

    def check_chinese(self, request: str, response: Any) -> None:
        """A problem+json answer to a request in zh-CN: what of it is not the catalog's
        Chinese is kept, with the first request that got it."""
        if not _header(response, "content-type").startswith("application/problem+json"):
            return
        self.chinese += 1
        for left in untranslated_in_chinese(response):
            first, times = self.untranslated.get(left, (request, 0))
            self.untranslated[left] = (first, times + 1)

    def token(self, case: Any) -> str | None:
        """The token of a role that may call the case's route, chosen by the case's content
        (so that the same case, run again while Hypothesis shrinks it, gets the same role)."""
        key = (case.operation.method.upper(), case.operation.path)
        assert key in ROLES, f"{key}: add the route's roles (docs/api.md) to ROLES"
        roles = ROLES[key]
        if not roles:
            return None
        if key == ("POST", "/v1/movements"):
            kind = case.body.get("kind") if isinstance(case.body, dict) else None
            roles = ("enterprise",) if kind in ENTERPRISE_MOVEMENTS else ("operator",)
        content = repr((case.path_parameters, case.query, case.body)).encode()
        role = roles[zlib.crc32(content) % len(roles)]
        return self.ledger.tokens[self.names[role]]

    def learn(self, label: str, answer: dict[str, Any]) -> None:
        """A write the ledger accepted: what it created becomes a target of later requests."""
        ids = self.identifiers
        if label == "POST /v1/declarations":
            ids["declaration_ids"].append(answer["id"])
            ids["declarations"] += [answer["id"], answer["declaration_no"]]
            ids.setdefault(answer["status"], []).append(answer["id"])
        elif label == "POST /v1/movements":
            ids["movements"].append(answer["movement_id"])
            ids["lots"] += [lot["lot_id"] for lot in answer["lots"]]
        elif label == "POST /v1/account-books":
            ids["books"].append(answer["book_no"])
        elif label == "POST /v1/gate-passes":
            ids["passes"].append(answer["pass_no"])
        elif label == "POST /v1/checklists":
            ids["checklists"].append(answer["checklist_no"])
            ids["filed_checklists"].append(answer["checklist_no"])

    @property
    def names(self) -> dict[str, str]:
        return {
            "admin": "admin",
            "officer": "officer",
            "auditor": "auditor",
            "enterprise": self.story.tenant.token_name,
            "operator": "gate-XCBZ",
        }


def _header(response: Any, name: str) -> str:
    """A header of an httpx or a schemathesis answer (the latter lists values)."""
    value = response.headers.get(name)
    if isinstance(value, list):
        return str(value[0]) if value else ""
    return str(value or "")


def untranslated_in_chinese(response: Any) -> list[str]:
    """What of a problem+json answer asked in zh-CN is not in Chinese: a `Content-Language`
    other than zh-CN, and what `title`, `detail` and each `errors[].msg` kept in English
    (`i18n.untranslated_in_answer`: the text is no translation the catalog writes)."""
    left = []
    if _header(response, "content-language") != "zh-CN":
        left.append(f"Content-Language: {_header(response, 'content-language')!r}")
    problem = response.json()
    texts = [problem.get("title", ""), problem.get("detail", "")]
    texts += [e.get("msg", "") for e in problem.get("errors") or []]
    for text in texts:
        left += i18n.untranslated_in_answer(text)
    return left


def asks_chinese(*content: Any) -> bool:
    """Whether a request asks for zh-CN: half of them, by their content (the same request,
    drawn again while Hypothesis shrinks it, asks in the same language)."""
    return zlib.crc32(repr(content).encode(), 0x7A68) % 2 == 0


def imported(tenant: Tenant, item_no: int, quantity: int) -> dict[str, Any]:
    """A first-line import of one of samples.book_body's items into the tenant's book."""
    return declaration_body(
        tenant.uscc, tenant.book_no, lines=[line(item_no, quantity=str(quantity))]
    )


def sold_into_china(tenant: Tenant, quantity: int) -> dict[str, Any]:
    """Laptops out of the zone into China: duties to pay first."""
    return declaration_body(
        tenant.uscc,
        tenant.book_no,
        flow="second_line_out",
        trade_mode="0110",
        country="CN",
        lines=[{**line(1, quantity=str(quantity)), "origin_country": None}],
    )


def pass_body(checklist_no: str, weight: str = "1000") -> dict[str, Any]:
    """One vehicle into XCBZ carrying 10 kg of an inbound checklist."""
    return {
        "zone": "XCBZ",
        "direction": "in",
        "vehicle": {"plate": "陕A00001"},
        "gross_weight_kg": weight,
        "checklists": [{"checklist_no": checklist_no, "lines": [{"line_no": 1, "quantity": "10"}]}],
    }


def checklist_body(book_no: str, quantity: str = "10") -> dict[str, Any]:
    """An enter_first checklist of laptops into the tenant's book."""
    lines = [{"item_no": 1, "quantity": quantity}]
    return {"direction": "I", "account_book": book_no, "kind": "enter_first", "lines": lines}


def seed(ledger: Ledger) -> tuple[Story, dict[str, list[str]]]:
    """The story's world, a BOM and declarations waiting for each officer decision and for
    payment."""
    story = run_story(ledger)
    tenant = story.tenant
    books = [tenant.book_no, f"{tenant.book_no}-XEPZ", f"{tenant.book_no}-XABZ"]
    bom = {
        "bom_ref": "KIT-2026-1",
        "output_item_no": 6,
        "inputs": [
            {"item_no": 1, "net_consumption": "1", "loss_rate": "0"},
            {"item_no": 5, "net_consumption": "1", "loss_rate": "0.01"},
        ],
    }
    r = ledger.post(f"/v1/account-books/{books[1]}/boms", tenant.token_name, bom)
    assert r.status_code == 201, r.text
    declarations = [story.arrival, story.export, story.domestic]
    # Medicaments go to document review, sporting shotguns to inspection (samples.book_body),
    # laptops sold into China wait for their duties to be paid.
    for body in [imported(tenant, item_no, 10) for item_no in (3, 4, 3, 4)] + [
        sold_into_china(tenant, 2) for _ in range(2)
    ]:
        r = ledger.post("/v1/declarations", tenant.token_name, body, key=new_key())
        assert r.status_code == 201, r.text
        declarations.append(r.json())
    assert [d["status"] for d in declarations[-6:]] == [
        *("document_review", "inspection") * 2,
        *("awaiting_payment",) * 2,
    ]
    # Two coffee imports whose checklists have goods to pass, and a pass filed for one.
    for _ in range(2):
        r = ledger.post(
            "/v1/declarations", tenant.token_name, imported(tenant, 2, 1000), key=new_key()
        )
        assert r.status_code == 201 and r.json()["status"] == "released", r.text
        declarations.append(r.json())
    open_checklists = [d["checklist_no"] for d in declarations[-2:]]
    filed_alone = [
        ledger.post(
            "/v1/checklists", tenant.token_name, checklist_body(tenant.book_no), key=new_key()
        ).json()["checklist_no"]
        for _ in range(3)
    ]
    filed = ledger.post(
        "/v1/gate-passes", tenant.token_name, pass_body(open_checklists[0]), key=new_key()
    )
    assert filed.status_code == 201, filed.text
    events = ledger.get("/v1/events", "auditor", params={"limit": 1000}).json()["items"]
    movements = [story.train, story.processing]
    lots = [lot["lot_id"] for m in movements for lot in m["lots"]] + [story.kit_lot]
    identifiers = {
        "books": books,
        "declarations": [d["id"] for d in declarations]
        + [d["declaration_no"] for d in declarations],
        "declaration_ids": [d["id"] for d in declarations],
        # By the status they had when recorded: the targets of each decision.
        **{
            status: [d["id"] for d in declarations if d["status"] == status]
            for status in ("awaiting_payment", "document_review", "inspection")
        },
        "lots": lots,
        "movements": [m["movement_id"] for m in movements],
        "streams": sorted({e["stream_id"] for e in events}),
        "enterprises": [tenant.uscc],
        "boms": [bom["bom_ref"]],
        "checklists": [d["checklist_no"] for d in declarations if d.get("checklist_no")]
        + filed_alone,
        "filed_checklists": filed_alone,
        "open_checklists": open_checklists,
        "passes": [filed.json()["pass_no"]],
        "zones": ["XCBZ", "XEPZ", "XABZ"],
        "references": ["X8024-20261127", "GN-XCBZ-1127", "TGHU1234567", *lots],
    }
    return story, identifiers


# Where the seeded identifiers go: a path, query or top-level body field -> its identifiers.
BINDINGS = {
    "path_parameters": {
        "book_no": "books",
        "ref": "declarations",
        "lot_id": "lots",
        "movement_id": "movements",
        "stream_id": "streams",
        "uscc": "enterprises",
        "bom_ref": "boms",
        "checklist_no": "checklists",
        "pass_no": "passes",
    },
    "query": {
        "ref": "references",
        "account_book": "books",
        "declarant": "enterprises",
        "zone": "zones",
    },
    "body": {
        "declaration": "declaration_ids",
        "account_book": "books",
        "declarant": "enterprises",
        "enterprise": "enterprises",
        "zone": "zones",
    },
}
CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        "generation": {
            "mode": "all",
            "max-examples": EXAMPLES_PER_OPERATION,
            # Random draws from SEED (derandomized, every commit would replay the same draws).
            "deterministic": False,
            "database": "none",
            # The test sends a valid token itself (World.token).
            "with-security-parameters": False,
        },
        "phases": {
            "examples": {"enabled": True},
            "coverage": {"enabled": True},
            "fuzzing": {"enabled": True},
            "stateful": {"enabled": False},
        },
        "checks": {
            # A request valid by the schema may still be refused, rightly: a check digit, an
            # account book that must exist and belong to the declarant, a workflow state -
            # rules a JSON Schema cannot state. Every other check runs.
            "positive_data_acceptance": {"enabled": False},
            # Invalid data must be refused; a body over 1 MiB is refused with 413 before it is
            # decoded (schemathesis' default list of refusals lacks 413).
            "negative_data_rejection": {
                "expected-statuses": [400, 401, 403, 404, 405, 406, 409, 413, 415, 422]
            },
        },
        # The two richest bodies (six kinds of movement; declarations) get more draws.
        "operations": [
            {
                "include-name": ["POST /v1/declarations", "POST /v1/movements"],
                "generation": {"max-examples": 3 * EXAMPLES_PER_OPERATION},
            }
        ],
        "output": {"truncation": {"max-payload-size": 400}},
    }
)
# The document /openapi.json serves, built by the app itself (the test checks they are equal).
DOCUMENT = create_app(Settings(database_url="sqlite:///:memory:")).openapi()
schema = schemathesis.openapi.from_dict(DOCUMENT, config=CONFIG)
WORLD: list[World] = []  # the running world, once the fixture has seeded it
FRESH_KEYS = itertools.count(1)


TEXT = st.text(alphabet=string.ascii_letters + string.digits + "-", min_size=1, max_size=40)


def valid_requests(world: World, label: str) -> st.SearchStrategy[tuple[dict, Any]] | None:
    """Requests the ledger accepts (or refuses only for the world's state: a workflow status,
    stock, a key used before) for the write routes: (path parameters, body). The generator
    alone cannot make them - check digits, registered items - and without them the 2xx answers
    of the writes would never be checked against the document."""
    tenant, ids = world.story.tenant, world.identifiers
    declarations = st.sampled_from(ids["declaration_ids"])
    payable = st.sampled_from(ids["awaiting_payment"])
    reviewed = st.sampled_from(ids["document_review"])
    inspected = st.sampled_from(ids["inspection"])

    def pair(path: Any, body: Any) -> st.SearchStrategy[tuple[dict, Any]]:
        return st.tuples(st.fixed_dictionaries(path), body)

    requests = {
        "POST /v1/enterprises": pair(
            {},
            st.builds(
                lambda serial, name, credit_class: {
                    **enterprise_body(samples.make_uscc(serial), name),
                    "credit_class": credit_class,
                },
                st.integers(5_000_000, 9_999_999),
                TEXT,
                st.sampled_from(CREDIT_CLASSES),
            ),
        ),
        "POST /v1/enterprises/{uscc}/credit-class": pair(
            {"uscc": st.just(tenant.uscc)},
            st.fixed_dictionaries(
                {"credit_class": st.sampled_from(CREDIT_CLASSES), "reason": TEXT}
            ),
        ),
        "POST /v1/account-books": pair(
            {},
            st.builds(
                lambda serial, zone: book_body(f"F{serial}", tenant.uscc, zone),
                st.integers(1, 10**9),
                st.sampled_from(ids["zones"]),
            ),
        ),
        "POST /v1/account-books/{book_no}/items": pair(
            {"book_no": st.sampled_from(ids["books"])},
            st.fixed_dictionaries(
                {
                    "items": st.lists(
                        st.fixed_dictionaries(
                            {
                                "item_no": st.integers(7, 10**9),
                                "hs_code": st.just("8471300000"),
                                "name": TEXT,
                                "unit": st.just("C62"),
                            }
                        ),
                        min_size=1,
                        max_size=3,
                    )
                }
            ),
        ),
        "POST /v1/account-books/{book_no}/boms": pair(
            {"book_no": st.just(ids["books"][1])},
            st.builds(
                lambda ref, net: {
                    "bom_ref": ref,
                    "output_item_no": 6,
                    "inputs": [{"item_no": 1, "net_consumption": net, "loss_rate": "0.01"}],
                },
                TEXT,
                st.sampled_from(["1", "0.5", "2.125"]),
            ),
        ),
        "POST /v1/declarations": pair(
            {},
            st.builds(imported, st.just(tenant), st.integers(1, 4), st.integers(1, 500))
            | st.builds(sold_into_china, st.just(tenant), st.integers(1, 3)),
        ),
        "POST /v1/declarations/{ref}/withdrawal": pair(
            {"ref": declarations}, st.fixed_dictionaries({"reason": TEXT})
        ),
        "POST /v1/declarations/{ref}/payments": pair(
            {"ref": payable},
            st.fixed_dictionaries(
                {
                    "amount": st.sampled_from(["0.01", "1.00", "250.00"]),
                    "currency": st.just("CNY"),
                    "reference": TEXT,
                }
            ),
        ),
        "POST /v1/declarations/{ref}/inspection-results": pair(
            {"ref": inspected},
            st.fixed_dictionaries(
                {"result": st.sampled_from(["conform", "nonconform"]), "findings": TEXT}
            ),
        ),
        "POST /v1/declarations/{ref}/release": pair({"ref": reviewed}, st.just({})),
        "POST /v1/declarations/{ref}/rejection": pair(
            {"ref": reviewed | inspected}, st.fixed_dictionaries({"reason": TEXT})
        ),
        "POST /v1/movements": pair(
            {},
            st.builds(
                lambda delta, reason: {
                    "kind": "adjustment",
                    "account_book": tenant.book_no,
                    "item_no": 1,
                    "quantity_delta": str(delta),
                    "reason": reason,
                },
                st.integers(-3, 50).filter(bool),
                TEXT,
            )
            | st.builds(
                lambda declaration, quantity: {
                    "kind": "gate_in",
                    "declaration": declaration,
                    "lines": [{"line_no": 1, "quantity": str(quantity)}],
                },
                declarations,
                st.integers(1, 20),
            ),
        ),
        "POST /v1/gate-passes": pair(
            {},
            st.builds(
                pass_body,
                st.sampled_from(ids["open_checklists"]),
                st.sampled_from(["1000", "1000.5", "5000"]),
            ),
        ),
        "POST /v1/checklists": pair(
            {},
            st.builds(lambda q: checklist_body(tenant.book_no, str(q)), st.integers(1, 500))
            | st.builds(
                lambda q: {
                    "direction": "E",
                    "account_book": tenant.book_no,
                    "kind": "collected",
                    "lines": [{"item_no": 1, "quantity": str(q)}],
                },
                st.integers(1, 50),
            ),
        ),
        "POST /v1/account-books/{book_no}/collection-permission": pair(
            {"book_no": st.sampled_from(ids["books"])},
            st.builds(
                lambda permitted, reason: {"permitted": permitted, "reason": reason},
                st.booleans(),
                TEXT,
            ),
        ),
        "POST /v1/checklists/{checklist_no}/approval": pair(
            {"checklist_no": st.sampled_from(ids["filed_checklists"])}, st.just({})
        ),
        "POST /v1/checklists/{checklist_no}/rejection": pair(
            {"checklist_no": st.sampled_from(ids["filed_checklists"])},
            st.fixed_dictionaries({"reason": TEXT}),
        ),
        "POST /v1/checklists/{checklist_no}/withdrawal": pair(
            {"checklist_no": st.sampled_from(ids["filed_checklists"])},
            st.fixed_dictionaries({"reason": TEXT}),
        ),
        "POST /v1/gate-passes/{pass_no}/passage": pair(
            {"pass_no": st.sampled_from(ids["passes"])},
            st.fixed_dictionaries(
                {"measured_gross_weight_kg": st.sampled_from(["1000", "990", "2000"])}
            ),
        ),
        "POST /v1/audit/replay": pair({}, st.just({})),
    }
    return requests.get(label)


@schema.hook
def flatmap_case(context: Any, case: Any) -> Any:
    """Valid cases name a real resource half of the time, field by field, or are requests the
    ledger accepts (`valid_requests`); invalid cases are left as generated, so they stay
    invalid."""
    if not WORLD or case.meta is None or not case.meta.generation.mode.is_positive:
        return st.just(case)
    world = WORLD[0]
    slots = []
    for container, names in BINDINGS.items():
        values = getattr(case, container)
        if isinstance(values, dict):
            slots += [(container, name, names[name]) for name in values.keys() & names.keys()]
    slots.sort()
    draws = [st.none() | st.sampled_from(world.identifiers[ids]) for _, _, ids in slots]

    def real(chosen: tuple[str | None, ...]) -> Any:
        for (container, name, _), value in zip(slots, chosen, strict=True):
            if value is not None:
                setattr(case, container, {**getattr(case, container), name: value})
        return case

    def accepted(request: tuple[dict, Any]) -> Any:
        path, body = request
        case.path_parameters = {**(case.path_parameters or {}), **path}
        case.body = body
        if case.headers is not None and "Idempotency-Key" in case.headers:
            # A key never used before (drawn keys repeat, and a reused one is a 409).
            case.headers = {**case.headers, "Idempotency-Key": f"fuzz-{next(FRESH_KEYS)}"}
        return case

    generated = st.tuples(*draws).map(real)
    valid = valid_requests(world, case.operation.label)
    if valid is None:
        return generated
    return generated | valid.map(accepted)


@pytest.fixture(scope="module")
def fuzz_world(tmp_path_factory) -> Iterator[World]:
    database = tmp_path_factory.mktemp("fuzz") / "ledger.sqlite3"
    # A short read-your-writes wait: an X-Ledger-Min-Position past the head waits this long.
    # The rate limits raised out of reach: the fuzzer is one address sending thousands of
    # requests, most with made-up tokens or none (tests/e2e/test_rate_limits.py tests them).
    url = f"sqlite:///{database}"
    with serving(url, read_wait_seconds=0.1, limits=RAISED_LIMITS) as (base, ledger):
        story, identifiers = seed(ledger)
        WORLD.append(World(base=base, ledger=ledger, story=story, identifiers=identifiers))
        try:
            yield WORLD[0]
        finally:
            WORLD.clear()


def test_the_fuzzed_document_is_the_one_the_ledger_serves(fuzz_world):
    served = fuzz_world.ledger.client.get("/openapi.json")
    assert served.status_code == 200
    assert served.json() == DOCUMENT


@schema.parametrize()
def test_every_route_answers_as_documented_and_refusals_change_nothing(case, fuzz_world):
    token = fuzz_world.token(case)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    chinese = asks_chinese(case.operation.label, case.path_parameters, case.query, case.body)
    if chinese:
        headers["Accept-Language"] = "zh-CN"
    before = fuzz_world.ledger.log_state()
    if case.operation.label == "GET /v1/stream":
        # The stream follows the log until the client leaves; the fuzzer reads whole answers,
        # so it asks for the finite read (every other parameter is fuzzed as drawn).
        case.query = {**(case.query if isinstance(case.query, dict) else {}), "follow": "false"}
    response = case.call(base_url=fuzz_world.base, headers=headers)
    after = fuzz_world.ledger.log_state()
    fuzz_world.tally[case.operation.label] += 1
    fuzz_world.statuses[f"{case.operation.label} {response.status_code}"] += 1
    if not 200 <= response.status_code < 300:
        assert after == before, (
            f"{case.method} {case.formatted_path} answered {response.status_code} and the log"
            f" changed from {before} to {after}"
        )
    if chinese:
        shown = f"{case.method} {case.formatted_path} {case.query or ''} {str(case.body)[:300]}"
        fuzz_world.check_chinese(f"{shown} -> {response.status_code}", response)
    # schemathesis' checks; `ignored_auth` sends the request again without the token.
    case.validate_response(
        response, headers=headers, transport_kwargs={"base_url": fuzz_world.base}
    )
    if response.status_code == 201:
        fuzz_world.learn(case.operation.label, response.json())


def test_the_fuzz_run_sent_at_least_1000_requests(fuzz_world):
    """Runs after the fuzz tests above (pytest keeps a module's order)."""
    operations = {f"{m.upper()} {p}" for p, ops in DOCUMENT["paths"].items() for m in ops}
    total = sum(fuzz_world.tally.values())
    statuses = Counter(key.rpartition(" ")[2] for key in fuzz_world.statuses.elements())
    print(
        f"\nfuzzed {total} requests over {len(fuzz_world.tally)} operations;"
        f" statuses {dict(sorted(statuses.items()))}"
    )
    for label in sorted(fuzz_world.tally):
        answers = {
            key.rpartition(" ")[2]: n
            for key, n in sorted(fuzz_world.statuses.items())
            if key.rpartition(" ")[0] == label
        }
        print(f"  {label}: {fuzz_world.tally[label]} {answers}")
    assert set(fuzz_world.tally) == operations, "run the whole module: every operation is fuzzed"
    assert total >= MIN_REQUESTS, fuzz_world.tally


def test_every_refusal_asked_in_chinese_was_in_chinese(fuzz_world):
    """Runs after the fuzz tests above: each problem+json answer to a request in zh-CN had
    `Content-Language: zh-CN` and no English left but its values (issue #20)."""
    print(f"\nchecked {fuzz_world.chinese} problem+json answers in zh-CN")
    assert fuzz_world.chinese > 0, "run the whole module: the fuzz tests ask in zh-CN"
    assert not fuzz_world.untranslated, "stays English in zh-CN:\n" + "\n".join(
        f"  {left!r} ({times}x), first for {request}"
        for left, (request, times) in sorted(fuzz_world.untranslated.items())
    )


def _chunks(total: int) -> Iterator[bytes]:
    """A JSON body of `total` bytes, sent in 64 KiB chunks with no announced length."""
    yield b'{"flow": "'
    sent = 12
    while sent < total:
        size = min(65536, total - sent)
        yield b"x" * size
        sent += size
    yield b'"}'


@pytest.mark.parametrize(
    ("path", "who"),
    [
        ("/v1/declarations", "enterprise"),
        ("/v1/movements", "operator"),
        ("/v1/audit/replay", "auditor"),
    ],
)
def test_a_chunked_body_over_one_mebibyte_is_413_and_changes_nothing(fuzz_world, path, who):
    ledger = fuzz_world.ledger
    before = ledger.log_state()
    headers = ledger.headers(fuzz_world.names[who], new_key()) | {
        "Content-Type": "application/json"
    }
    r = ledger.client.post(path, content=_chunks(1024 * 1024 + 65536), headers=headers)
    assert "content-length" not in r.request.headers
    assert r.request.headers["transfer-encoding"] == "chunked"
    assert r.status_code == 413, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["status"] == 413
    assert ledger.log_state() == before


def _raw_get(base: str, path: str, header_lines: bytes) -> tuple[int, bytes]:
    """A GET sent byte for byte (httpx would re-encode a non-ASCII header value)."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\n".encode()
            + header_lines
            + b"Connection: close\r\n\r\n"
        )
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


@pytest.mark.parametrize("value", [b"\xb2", b"12a", b"-1", b"", b"1" * 19])
def test_a_malformed_min_position_is_422_naming_the_header(fuzz_world, value):
    """`X-Ledger-Min-Position: \u00b2` (a digit to str.isdigit, not to int) once answered 500."""
    token = fuzz_world.ledger.tokens["officer"]
    status, body = _raw_get(
        fuzz_world.base,
        "/v1/declarations",
        f"Authorization: Bearer {token}\r\n".encode()
        + b"X-Ledger-Min-Position: "
        + value
        + b"\r\n",
    )
    assert status == 422, body
    assert b'"loc":"header.X-Ledger-Min-Position"' in body
