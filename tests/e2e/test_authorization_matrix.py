"""The authorization matrix (R6): every route x principal x tenant, generated from
the role x route table of docs/api.md, which this module reads at collection time.

Each row of the table is a route (a route split by body kind or by query is one entry per
kind or query); each column a role. A cell says what a caller of that role gets:
- `yes`: the route's success status (its 2xx in /openapi.json; 200 for pages outside it);
- `403`, `401`: exactly that, as problem+json, and the log unchanged;
- `own`, `own books` (an enterprise) and `zone`, `own zone` (an operator): the success status
  on the caller's own resource (a list: exactly the caller's share of what the admin sees), and
  on the other tenant's or zone's resource the answer API.md ("Errors") gives: 404 where a
  path or query names it, 422 where a body refers to it (word for word the answer an unknown
  one gets), 403 where the cell says "403 for another `field`" and the body names another
  party as the caller itself.
The principals: admin, enterprises A and B, operators of zones X and Y, officer, auditor, no
token, and a revoked key (of a role the row allows: 401 wherever a token is needed). The world
they call is tests/e2e/authz_world.py. Every refusal is asked again in zh-CN: the same `type`,
`rule` and `loc`, its texts the catalog's translation, none left in English (issue #20). Then
the leak tests: whatever B, A, or the operators of Y and X list, trace or count, none of the
other tenant's identifiers appears.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, get_args

import msgspec
import pytest

from api import i18n
from api.app import create_app
from api.routes.movements import MovementBody
from api.settings import Settings
from domain.risk_rules import DEFAULT_RULES
from tests.e2e.authz_world import (
    PRINCIPALS,
    ROLES,
    SHARED_TRAIN,
    Tenant,
    World,
    adjustment,
    gate,
    processing,
    seed,
)
from tests.e2e.role_table import API_MD, Entry, read_table
from tests.samples import book_body, enterprise_body, make_resident_id, make_uscc
from tests.soak.server import scratch_database
from tests.support import running_ledger

SCOPED = {"enterprise": ("own", "own books"), "operator": ("zone", "own zone")}
FOREIGN_STATUS = {"path": 404, "body": 422}


# -- the table ---------------------------------------------------------------------------------


ENTRIES = read_table(API_MD.read_text(encoding="utf-8"))
APP = create_app(Settings(database_url="sqlite:///:memory:"))
DOCUMENT = APP.openapi()


def served_routes() -> set[tuple[str, str]]:
    """Every (method, path) the app serves, but HEAD and OPTIONS and mounted file folders."""
    try:
        from fastapi.routing import iter_route_contexts  # FastAPI with included routers
    except ImportError:  # pragma: no cover - older FastAPI lists every route flat
        routes: Any = APP.routes
    else:
        routes = iter_route_contexts(APP.routes)
    served = set()
    for route in routes:
        methods = getattr(route, "methods", None)
        if methods is None:  # a Mount of static files (/static-offline-docs): no route of ours
            continue
        served |= {(m, route.path) for m in methods if m not in ("HEAD", "OPTIONS")}
    return served


def success_status(entry: Entry) -> int:
    """The route's one 2xx in the OpenAPI document (200 for pages outside it)."""
    operation = DOCUMENT["paths"].get(entry.path, {}).get(entry.method.lower())
    if operation is None:
        return 200
    ok = [int(code) for code in operation["responses"] if code.startswith("2")]
    assert len(ok) == 1, f"{entry.label}: success statuses {ok}"
    return ok[0]


def movement_kinds() -> set[str]:
    """The body kinds POST /v1/movements decodes (the tags of its msgspec union)."""
    return {t.__struct_config__.tag for t in get_args(MovementBody)}


# -- requests ----------------------------------------------------------------------------------


@dataclass
class Call:
    method: str
    path: str
    params: dict[str, Any] | None = None
    body: Any = None
    key: bool = False  # send a new Idempotency-Key
    owner: Tenant | None = None  # whose resource it creates or reads
    field: str | None = None  # the body field naming the other tenant's thing (else the spec's)


@dataclass(frozen=True)
class Scope:
    """What a caller may see: an enterprise its tenant's, an operator its zone's, else all."""

    tenant: Tenant | None = None
    zone: str | None = None

    def sees_book(self, book_no: str, zone: str) -> bool:
        if self.tenant is not None:
            return book_no in self.tenant.books
        if self.zone is not None:
            return zone == self.zone
        return True

    def sees_declaration(self, d: dict[str, Any]) -> bool:
        if self.tenant is not None:
            return d["declarant"] == self.tenant.uscc or (
                d["destination_account_book"] in self.tenant.books
            )
        if self.zone is not None:
            return self.zone in (d["zone"], d["destination_zone"])
        return True


Check = Callable[[World, Scope, Any], None]


@dataclass(frozen=True)
class Spec:
    """How to call an entry: `request(world, t)` is a request on tenant t's resource that an
    allowed caller gets the success status for (each call a fresh resource where it writes).
    `foreign` says how another tenant's thing is addressed (`path`: 404, `body`: 422 naming
    the body's `field`, `list`: the answer leaves it out, `none`); `foreign_request(world, own,
    other)` is that request when it is not simply `request(world, other)`. `check` inspects a
    2xx answer."""

    request: Callable[[World, Tenant], list[Call]]
    foreign: str = "none"
    field: str | None = None
    foreign_request: Callable[[World, Tenant, Tenant], list[Call]] | None = None
    check: Check | None = None
    # A route whose request depends on the caller's role (an import's kind): `by_role(world,
    # t, role)` is the request that role makes on t's resource.
    by_role: Callable[[World, Tenant, str], list[Call]] | None = None


def requests(spec: Spec, world: World, t: Tenant, role: str | None = None) -> list[Call]:
    """The entry's requests on t's resource, as the caller's role makes them."""
    if spec.by_role is not None and role is not None:
        return spec.by_role(world, t, role)
    return spec.request(world, t)


def get(path: str, **params: Any) -> Callable[[World, Tenant], list[Call]]:
    return lambda w, t: [Call("GET", path, params or None, owner=t)]


def now() -> str:
    return datetime.now(UTC).isoformat()


def admin_list(world: World, path: str, **params: Any) -> list[dict[str, Any]]:
    r = world.ledger.client.get(
        path, params={"limit": 1000, **params}, headers=world.headers("admin")
    )
    assert r.status_code == 200, r.text
    assert r.json()["next_cursor"] is None, "the world outgrew one page"
    return r.json()["items"]  # type: ignore[no-any-return]


def check_enterprises(world: World, scope: Scope, body: Any) -> None:
    seen = {e["uscc"] for e in body["items"]}
    if scope.tenant is not None:
        assert seen == {scope.tenant.uscc}
    else:
        assert {world.a.uscc, world.b.uscc} <= seen


def check_regular(world: World, scope: Scope, body: Any) -> None:
    assert {e["credit_class"] for e in body["items"]} == {"regular"}
    check_enterprises(world, scope, body)


def check_declarations(world: World, scope: Scope, body: Any) -> None:
    expected = {d["id"] for d in admin_list(world, "/v1/declarations") if scope.sees_declaration(d)}
    seen = [d["id"] for d in body["items"]]
    assert len(seen) == len(set(seen)) and set(seen) == expected and expected


def check_movements(world: World, scope: Scope, body: Any) -> None:
    """Exactly the movements the caller may see: an enterprise's books', an operator's zone's
    (as GET /v1/movements/{id} decides), in log order."""
    every = admin_list(world, "/v1/movements")
    expected = [m["movement_id"] for m in every if scope.sees_book(m["account_book"], m["zone"])]
    seen = [m["movement_id"] for m in body["items"]]
    assert seen == expected and expected
    positions = [m["position"] for m in body["items"]]
    assert positions == sorted(positions)


def check_checklists(world: World, scope: Scope, body: Any) -> None:
    """Exactly the checklists of the books the caller may see, in filing order."""
    every = admin_list(world, "/v1/checklists")
    expected = [c["checklist_no"] for c in every if scope.sees_book(c["account_book"], c["zone"])]
    assert [c["checklist_no"] for c in body["items"]] == expected and expected


def check_passes(world: World, scope: Scope, body: Any) -> None:
    """Exactly the gate passes of the caller's enterprise or zone, in filing order."""
    every = admin_list(world, "/v1/gate-passes")
    expected = [
        p["pass_no"]
        for p in every
        if (scope.tenant is None or p["enterprise"] == scope.tenant.uscc)
        and (scope.zone is None or p["zone"] == scope.zone)
    ]
    assert [p["pass_no"] for p in body["items"]] == expected and expected


def past_day(w: World) -> dict[str, str]:
    """A period of one day of its own, long past (nothing moved then)."""
    day = (date(1990, 1, 1) + timedelta(days=w.next())).isoformat()
    return {"from": day, "to": day}


def check_bills(world: World, scope: Scope, body: Any) -> None:
    """Exactly the tax bills of the caller's declarations or zone, in assessment order."""
    every = admin_list(world, "/v1/tax-bills")
    expected = [
        b["bill_id"]
        for b in every
        if (scope.tenant is None or b["enterprise"] == scope.tenant.uscc)
        and (scope.zone is None or b["zone"] == scope.zone)
    ]
    assert [b["bill_id"] for b in body["items"]] == expected and expected


def check_inventory(world: World, scope: Scope, body: Any) -> None:
    rows = admin_list(world, "/v1/inventory")
    expected = {
        (r["account_book"], r["item_no"])
        for r in rows
        if scope.sees_book(r["account_book"], r["zone"])
    }
    seen = {(r["account_book"], r["item_no"]) for r in body["items"]}
    assert seen == expected and expected


def check_stats(world: World, scope: Scope, body: Any) -> None:
    """Counted per flow: exactly the declarations the caller may see (not withdrawn,
    rejected or refused), as the admin's list has them."""
    counted = Counter(
        d["flow"]
        for d in admin_list(world, "/v1/declarations")
        if scope.sees_declaration(d) and d["status"] not in ("withdrawn", "rejected", "refused")
    )
    # A key with movements only (`within_zone`: processing, adjustments) has no declarations.
    declared = {r["key"]: r["declarations"] for r in body["items"] if r["declarations"]}
    assert declared == dict(counted) and counted
    assert all(r["declarations"] or r["movements"] for r in body["items"]), body


def check_clearance(world: World, scope: Scope, body: Any) -> None:
    """Released, by zone: exactly the released declarations the caller may see."""
    released = Counter(
        d["zone"]
        for d in admin_list(world, "/v1/declarations")
        if scope.sees_declaration(d) and d["status"] == "released"
    )
    assert {r["key"]: r["released"] for r in body["items"]} == dict(released) and released


def check_channels(world: World, scope: Scope, body: Any) -> None:
    """By zone: every declaration the caller may see, whatever became of it, by channel."""
    every = [d for d in admin_list(world, "/v1/declarations") if scope.sees_declaration(d)]
    for channel in ("green", "yellow", "red"):
        counted = Counter(d["zone"] for d in every if d["channel"] == channel)
        assert {r["key"]: r[channel] for r in body["items"] if r[channel]} == dict(counted)
    counted = Counter(d["zone"] for d in every)
    assert {r["key"]: r["declarations"] for r in body["items"]} == dict(counted) and counted


def check_stock(world: World, scope: Scope, body: Any) -> None:
    """Only zones where the caller may see a book with goods on hand."""
    zones = {
        r["zone"]
        for r in admin_list(world, "/v1/inventory")
        if scope.sees_book(r["account_book"], r["zone"]) and float(r["on_hand"]) > 0
    }
    assert body["items"] and {r["zone"] for r in body["items"]} <= zones, body


def check_quota(world: World, scope: Scope, body: Any) -> None:
    """A buyer the world never sold to: nothing used of 2026."""
    assert body == {"year": 2026, "limit": "26000.00", "used": "0.00", "remaining": "26000.00"}


def check_trace(world: World, scope: Scope, body: Any) -> None:
    assert body["lots"], body
    for lot in body["lots"]:
        assert scope.sees_book(lot["account_book"], lot["zone"]), lot


def fresh(
    state: str, action: str | None = None, body: Any = None, kind: str | None = None
) -> Callable[[World, Tenant], list[Call]]:
    """A call on a new declaration of the tenant in `state`: the `action` route with `body`
    on it, or a movement of `kind` under it."""

    def build(w: World, t: Tenant) -> list[Call]:
        d = w.fresh_declaration(t, state)
        if kind is not None:
            return [Call("POST", "/v1/movements", body=gate(d, kind), key=True, owner=t)]
        return [Call("POST", f"/v1/declarations/{d['id']}/{action}", body=body, owner=t)]

    return build


def publication(kind: str) -> Callable[[World, Tenant], list[Call]]:
    """A new table of `kind` at each call: a month or effective date of its own."""

    def build(w: World, t: Tenant) -> list[Call]:
        n = w.next()
        day = (date(2031, 1, 1) + timedelta(days=n)).isoformat()
        body: dict[str, Any] = {"source": "matrix", "effective_from": day}
        if kind == "exchange-rates":
            body = {"source": "matrix", "month": f"{2031 + n // 12}-{n % 12 + 1:02d}"}
            body["rates"] = {"EUR": "8.25"}
        elif kind == "tariff":
            body["rows"] = [{"hs_prefix": "847130", "tariff_rate": "0", "vat_rate": "0.13"}]
        elif kind == "positive-list":
            body["hs_codes"] = ["847130"]
        else:
            body["rules"] = msgspec.to_builtins(msgspec.structs.replace(DEFAULT_RULES, seed=""))
        return [Call("POST", f"/v1/reference/{kind}", body=body, owner=t)]

    return build


def new_book(w: World, t: Tenant) -> list[Call]:
    book_no = f"MTX-{t.label}-N{w.next()}"
    return [Call("POST", "/v1/account-books", body=book_body(book_no, t.uscc, t.zone), owner=t)]


def new_items(w: World, t: Tenant) -> list[Call]:
    item = {"item_no": 100 + w.next(), "hs_code": "8471300000", "name": "Tablets", "unit": "C62"}
    return [Call("POST", f"/v1/account-books/{t.book}/items", body={"items": [item]}, owner=t)]


def new_bom(w: World, t: Tenant) -> list[Call]:
    bom = {
        "bom_ref": f"BOM-MATRIX-{t.label}-{w.next()}",
        "output_item_no": 2,
        "inputs": [{"item_no": 1, "net_consumption": "2", "loss_rate": "0.01"}],
    }
    return [Call("POST", f"/v1/account-books/{t.book}/boms", body=bom, owner=t)]


def new_declaration(w: World, t: Tenant) -> list[Call]:
    return [Call("POST", "/v1/declarations", body=w.declaration(t), key=True, owner=t)]


def batch_of(path: str, calls: list[Call]) -> list[Call]:
    """The calls (single-route writes of one tenant) as one batch of `path`."""
    items = [{"idempotency_key": str(uuid.uuid4()), "body": c.body} for c in calls]
    return [Call("POST", path, body={"items": items}, owner=calls[0].owner)]


def movement_batch_as(w: World, t: Tenant, role: str) -> list[Call]:
    """A batch of one movement of `t`'s that `role` records (an operator a gate_in, an
    enterprise an adjustment of its book, an officer a destruction); any other role sends
    the operator's."""
    if role == "enterprise":
        single = [Call("POST", "/v1/movements", body=adjustment(t.book), owner=t)]
    elif role == "officer":
        body = {
            "kind": "destruction",
            "account_book": t.book,
            "lines": [{"item_no": 1, "quantity": "1"}],
            "reason": "damaged beyond repair",
        }
        single = [Call("POST", "/v1/movements", body=body, owner=t)]
    else:
        single = fresh("released_in", kind="gate_in")(w, t)
    return batch_of("/v1/movements/batch", single)


def import_upload(w: World, t: Tenant) -> dict[str, Any]:
    """The JSON form of POST /v1/imports: a CSV of one declaration of `t` (as `w.declaration`
    builds it, its columns read from the body by their paths), submitted for real."""
    from domain.imports import KINDS

    body = w.declaration(t)
    columns = KINDS["declarations"].columns
    cells = []
    for c in columns:
        node: Any = body["lines"][0] if c.line else body
        for name in c.paths[0]:
            node = node.get(name) if isinstance(node, dict) else None
        cells.append("" if node is None else str(node))
    text = ",".join(c.name for c in columns) + "\n" + ",".join(cells) + "\n"
    return {"kind": "declarations", "file": base64.b64encode(text.encode()).decode()}


def movements_upload(w: World, t: Tenant, role: str) -> dict[str, Any]:
    """The JSON form of POST /v1/imports of a CSV of one movement of `t`'s that `role`
    records: an operator a gate_in of a new released declaration of `t`, an officer the
    destruction of a laptop of `t`'s book, an enterprise a stocktake surplus in it."""
    if role == "operator":
        d = w.fresh_declaration(t, "released_in")
        text = f"kind,declaration,line_no,quantity\ngate_in,{d['id']},1,10\n"
    elif role == "officer":
        text = f"kind,account_book,item_no,quantity,reason\ndestruction,{t.book},1,1,damaged\n"
    else:
        text = f"kind,account_book,item_no,quantity,reason\nadjustment,{t.book},1,1,found\n"
    return {"kind": "movements", "file": base64.b64encode(text.encode()).decode()}


def new_import(w: World, t: Tenant) -> list[Call]:
    return [Call("POST", "/v1/imports", body=import_upload(w, t), owner=t)]


def new_import_as(w: World, t: Tenant, role: str) -> list[Call]:
    """An enterprise uploads declarations; an operator or an officer, the movements it records
    (the only kind it may import)."""
    if role in ("operator", "officer"):
        return [Call("POST", "/v1/imports", body=movements_upload(w, t, role), owner=t)]
    return new_import(w, t)


IMPORTS: dict[tuple[str, str], str] = {}  # (tenant label, uploader) -> an import of its own


def import_of(w: World, t: Tenant) -> list[Call]:
    """A GET of an import `t` uploaded (made once per world and tenant, as a setup write)."""
    return import_of_as(w, t, "enterprise")


def import_of_as(w: World, t: Tenant, role: str) -> list[Call]:
    """A GET of an import of `t`'s: its enterprise's, or for an operator one its home zone's
    operator uploaded (each made once per world, as a setup write)."""
    uploader = "operator" if role == "operator" else "enterprise"
    made = IMPORTS.get((t.label, uploader))
    if made is None or made not in t.secrets:
        if uploader == "operator":
            job = w.write(t.operator, "/v1/imports", movements_upload(w, t, "operator"))
        else:
            job = w.write(t.principal, "/v1/imports", import_upload(w, t))
        t.learn(job)
        made = IMPORTS[(t.label, uploader)] = job["id"]
    return [Call("GET", f"/v1/imports/{made}", owner=t)]


def declaration_on_other_book(w: World, own: Tenant, other: Tenant) -> list[Call]:
    """Its own declaration, on the other tenant's book in the other's zone: 422; and its
    transfers into the other tenant's book whose line does not fit there (an item kept in
    another unit, an item not in the book): 422 at `$.destination_account_book`, word for
    word what an unknown destination book gets."""
    body = w.declaration(own, zone=other.zone, account_book=other.book)
    calls = [Call("POST", "/v1/declarations", body=body, key=True, owner=own)]
    for item in (2, 9):
        transfer = w.foreign_transfer(own, other, destination_item_no=item)
        calls.append(
            Call(
                "POST",
                "/v1/declarations",
                body=transfer,
                key=True,
                owner=own,
                field="destination_account_book",
            )
        )
    return calls


def credit_class(w: World, t: Tenant) -> list[Call]:
    body = {"credit_class": "advanced_certified", "reason": "AEO certificate 2026-117"}
    return [Call("POST", f"/v1/enterprises/{w.fresh_enterprise()}/credit-class", body=body)]


def book_reads(suffix: str, **params: Any) -> Callable[[World, Tenant], list[Call]]:
    return lambda w, t: [
        Call("GET", f"/v1/account-books/{t.book}{suffix}", params or None, owner=t)
    ]


SPECS: dict[str, Spec] = {
    "GET /v1/zones": Spec(get("/v1/zones")),
    "GET /v1/reference/trade-modes": Spec(get("/v1/reference/trade-modes")),
    "GET /v1/reference/transport-modes": Spec(get("/v1/reference/transport-modes")),
    "GET /v1/reference/units": Spec(get("/v1/reference/units")),
    **{
        f"GET /v1/reference/{kind}{tail}": Spec(get(f"/v1/reference/{kind}{tail}"))
        for kind in ("exchange-rates", "tariff", "positive-list", "risk-rules")
        for tail in ("", "/versions")
    },
    **{
        f"POST /v1/reference/{kind}": Spec(publication(kind))
        for kind in ("exchange-rates", "tariff", "positive-list", "risk-rules")
    },
    "GET /healthz": Spec(get("/healthz")),
    "GET /metrics": Spec(get("/metrics")),
    "GET /openapi.json": Spec(get("/openapi.json")),
    "GET /docs": Spec(get("/docs")),
    "GET /docs/oauth2-redirect": Spec(get("/docs/oauth2-redirect")),
    "GET /redoc": Spec(get("/redoc")),
    "GET /ui/trace": Spec(
        lambda w, t: [Call("GET", "/ui/trace", {"ref": t.transport["reference"]})]
    ),
    "GET /ui/static/{name}": Spec(get("/ui/static/trace.js")),
    "GET /ui/dashboard": Spec(get("/ui/dashboard")),
    "POST /v1/enterprises": Spec(
        lambda w, t: [
            Call("POST", "/v1/enterprises", body=enterprise_body(make_uscc(8_500_000 + w.next())))
        ]
    ),
    "GET /v1/enterprises": Spec(
        get("/v1/enterprises", limit=1000), "list", check=check_enterprises
    ),
    "GET /v1/enterprises?credit_class=": Spec(
        get("/v1/enterprises", credit_class="regular", limit=1000), "list", check=check_regular
    ),
    "GET /v1/enterprises/{uscc}": Spec(
        lambda w, t: [Call("GET", f"/v1/enterprises/{t.uscc}")], "path"
    ),
    "POST /v1/enterprises/{uscc}/credit-class": Spec(credit_class),
    "POST /v1/account-books": Spec(new_book),
    "POST /v1/account-books/{book_no}/items": Spec(new_items, "path"),
    "GET /v1/account-books/{book_no}": Spec(
        lambda w, t: [
            Call("GET", f"/v1/account-books/{t.book}", owner=t),
            Call("GET", f"/v1/account-books/{t.book}", {"as_of": now()}, owner=t),
        ],
        "path",
    ),
    "GET /v1/account-books/{book_no}/entries": Spec(book_reads("/entries", item_no=1), "path"),
    "GET /v1/account-books/{book_no}/statement": Spec(book_reads("/statement"), "path"),
    "GET /v1/account-books/{book_no}/statement.csv": Spec(book_reads("/statement.csv"), "path"),
    "GET /v1/inventory": Spec(get("/v1/inventory", limit=1000), "list", check=check_inventory),
    "POST /v1/account-books/{book_no}/boms": Spec(new_bom, "path"),
    "GET /v1/account-books/{book_no}/boms/{bom_ref}": Spec(
        lambda w, t: [Call("GET", f"/v1/account-books/{t.book}/boms/{t.bom_ref}", owner=t)], "path"
    ),
    "POST /v1/declarations": Spec(
        new_declaration, "body", "account_book", foreign_request=declaration_on_other_book
    ),
    "POST /v1/declarations/batch": Spec(
        lambda w, t: batch_of("/v1/declarations/batch", new_declaration(w, t))
    ),
    "GET /v1/declarations": Spec(
        get("/v1/declarations", limit=1000), "list", check=check_declarations
    ),
    "GET /v1/declarations/{ref}": Spec(
        lambda w, t: [
            Call("GET", f"/v1/declarations/{t.declarations['arrival']['id']}", owner=t),
            Call("GET", f"/v1/declarations/{t.declarations['arrival']['declaration_no']}", owner=t),
        ],
        "path",
    ),
    "POST /v1/declarations/{ref}/withdrawal": Spec(
        fresh("document_review", "withdrawal", body={"reason": "order cancelled"}), "path"
    ),
    "POST /v1/declarations/{ref}/payments": Spec(
        fresh(
            "awaiting_payment",
            "payments",
            body={"amount": "1.00", "currency": "CNY", "reference": "BANK-MATRIX"},
        ),
        "path",
    ),
    "POST /v1/tax-bills/{bill_id}/payments": Spec(
        lambda w, t: [
            Call(
                "POST",
                f"/v1/tax-bills/{w.fresh_declaration(t, 'awaiting_payment')['id']}/payments",
                body={"amount": "1.00", "currency": "CNY", "reference": "BANK-MATRIX"},
                owner=t,
            )
        ],
        "path",
    ),
    "POST /v1/tax-bills/{bill_id}/force-majeure": Spec(
        lambda w, t: [
            Call(
                "POST",
                f"/v1/tax-bills/{w.fresh_shortage(t)}/force-majeure",
                body={"reason": "roof collapsed in the storm"},
            )
        ]
    ),
    "POST /v1/account-books/{book_no}/write-offs": Spec(
        lambda w, t: [
            Call(
                "POST",
                f"/v1/account-books/{t.book}/write-offs",
                body={"period": past_day(w), "counts": []},
                key=True,
                owner=t,
            )
        ],
        "path",
    ),
    "GET /v1/account-books/{book_no}/write-offs": Spec(
        lambda w, t: [
            Call("GET", f"/v1/account-books/{w.write_off(t)['account_book']}/write-offs", owner=t)
        ],
        "path",
    ),
    "GET /v1/write-offs/{write_off_id}": Spec(
        lambda w, t: [
            Call("GET", f"/v1/write-offs/{w.write_off(t)['write_off_id']}", owner=t),
            Call(
                "GET",
                f"/v1/write-offs/{w.write_off(t)['write_off_id']}",
                {"format": "csv"},
                owner=t,
            ),
            Call(
                "GET", f"/v1/write-offs/{w.write_off(t)['write_off_id']}", {"as_of": now()}, owner=t
            ),
        ],
        "path",
    ),
    "POST /v1/write-offs/{write_off_id}/certification": Spec(
        lambda w, t: [
            Call(
                "POST",
                f"/v1/write-offs/{w.fresh_write_off(t)['write_off_id']}/certification",
                body={"result": "accepted", "reason": "nothing moved that day"},
            )
        ]
    ),
    "POST /v1/subscriptions": Spec(
        lambda w, t: [
            Call(
                "POST",
                "/v1/subscriptions",
                body={"url": "http://127.0.0.1:9/receipts", "events": ["movement.*"]},
                key=True,
            )
        ]
    ),
    "GET /v1/subscriptions": Spec(get("/v1/subscriptions")),
    "GET /v1/subscriptions/{subscription_id}": Spec(
        lambda w, t: [Call("GET", f"/v1/subscriptions/{w.subscription(t)['id']}", owner=t)],
        "path",
    ),
    "GET /v1/subscriptions/{subscription_id}/deliveries": Spec(
        lambda w, t: [
            Call("GET", f"/v1/subscriptions/{w.subscription(t)['id']}/deliveries", owner=t)
        ],
        "path",
    ),
    "DELETE /v1/subscriptions/{subscription_id}": Spec(
        lambda w, t: [
            Call("DELETE", f"/v1/subscriptions/{w.fresh_subscription(t)['id']}", owner=t)
        ],
        "path",
    ),
    # A finite read (`follow=false`) of every receipt since the start: another tenant's
    # identifiers never appear in it (the leak check of every answer).
    "GET /v1/stream": Spec(get("/v1/stream", follow="false", after="0")),
    "POST /v1/subscriptions/{subscription_id}/redeliver": Spec(
        lambda w, t: [
            Call(
                "POST",
                f"/v1/subscriptions/{w.subscription(t)['id']}/redeliver",
                body={"from_position": 1},
                owner=t,
            )
        ],
        "path",
    ),
    "POST /v1/declarations/{ref}/returns": Spec(
        lambda w, t: [
            Call(
                "POST",
                f"/v1/declarations/{w.fresh_declaration(t, 'released_retail')['id']}/returns",
                body={"lines": [{"line_no": 1, "quantity": "1"}], "reason": "not as described"},
                key=True,
                owner=t,
            )
        ],
        "path",
    ),
    "POST /v1/declarations/{ref}/acceptance": Spec(
        fresh("incoming", "acceptance", body={}), "path"
    ),
    "POST /v1/declarations/{ref}/refusal": Spec(
        fresh("incoming", "refusal", body={"reason": "not ordered"}), "path"
    ),
    "POST /v1/declarations/{ref}/inspection-results": Spec(
        fresh(
            "inspection",
            "inspection-results",
            body={"result": "conform", "findings": "as declared"},
        ),
        "path",
    ),
    "POST /v1/declarations/{ref}/release": Spec(
        fresh("document_review", "release", body={}), "path"
    ),
    "POST /v1/declarations/{ref}/rejection": Spec(
        fresh("document_review", "rejection", body={"reason": "no licence"}), "path"
    ),
    "GET /v1/stats": Spec(get("/v1/stats", group_by="flow"), "list", check=check_stats),
    "GET /v1/stats/clearance-time": Spec(
        get("/v1/stats/clearance-time", group_by="zone"), "list", check=check_clearance
    ),
    "GET /v1/stats/channels": Spec(
        get("/v1/stats/channels", group_by="zone"), "list", check=check_channels
    ),
    "GET /v1/stats/stock": Spec(get("/v1/stats/stock"), "list", check=check_stock),
    "GET /v1/buyers/{buyer_id}/quota": Spec(
        get(f"/v1/buyers/{make_resident_id(41)}/quota", year=2026), check=check_quota
    ),
    "POST /v1/movements kind=gate_in": Spec(
        fresh("released_in", kind="gate_in"), "body", "declaration"
    ),
    "POST /v1/movements kind=gate_out": Spec(
        fresh("released_out", kind="gate_out"), "body", "declaration"
    ),
    "POST /v1/movements kind=transfer_dispatch": Spec(
        fresh("transfer_out", kind="transfer_dispatch"), "body", "declaration"
    ),
    "POST /v1/movements kind=transfer_receipt": Spec(
        fresh("transfer_in", kind="transfer_receipt"), "body", "declaration"
    ),
    "POST /v1/movements kind=processing": Spec(
        lambda w, t: [Call("POST", "/v1/movements", body=processing(t), key=True, owner=t)],
        "body",
        "account_book",
    ),
    "POST /v1/movements kind=in_zone_transfer": Spec(
        lambda w, t: [
            Call(
                "POST",
                "/v1/movements",
                body={
                    "kind": "in_zone_transfer",
                    "checklist": w.fresh_in_zone_transfer(t)["checklist_no"],
                },
                key=True,
                owner=t,
            )
        ],
        "body",
        "checklist",
    ),
    "POST /v1/movements kind=destruction": Spec(
        lambda w, t: [
            Call(
                "POST",
                "/v1/movements",
                body={
                    "kind": "destruction",
                    "account_book": t.book,
                    "lines": [{"item_no": 1, "quantity": "1"}],
                    "reason": "damaged beyond repair",
                },
                key=True,
                owner=t,
            )
        ],
    ),
    "POST /v1/movements kind=adjustment": Spec(
        lambda w, t: [Call("POST", "/v1/movements", body=adjustment(t.book), key=True, owner=t)],
        "body",
        "account_book",
    ),
    "POST /v1/movements/batch": Spec(
        lambda w, t: movement_batch_as(w, t, "operator"), by_role=movement_batch_as
    ),
    "GET /v1/movements": Spec(get("/v1/movements", limit=1000), "list", check=check_movements),
    "GET /v1/movements/{movement_id}": Spec(
        lambda w, t: [
            Call("GET", f"/v1/movements/{t.movements['gate_in']['movement_id']}", owner=t)
        ],
        "path",
    ),
    "GET /v1/lots/{lot_id}": Spec(
        lambda w, t: [Call("GET", f"/v1/lots/{t.home_lot}", owner=t)], "path"
    ),
    "POST /v1/checklists": Spec(
        lambda w, t: [Call("POST", "/v1/checklists", body=w.checklist_body(t), key=True, owner=t)],
        "body",
        "account_book",
    ),
    "POST /v1/checklists/{checklist_no}/approval": Spec(
        lambda w, t: [
            Call("POST", f"/v1/checklists/{w.fresh_checklist(t)['checklist_no']}/approval", body={})
        ]
    ),
    "POST /v1/checklists/{checklist_no}/rejection": Spec(
        lambda w, t: [
            Call(
                "POST",
                f"/v1/checklists/{w.fresh_checklist(t)['checklist_no']}/rejection",
                body={"reason": "the manifest does not match"},
            )
        ]
    ),
    "POST /v1/checklists/{checklist_no}/withdrawal": Spec(
        lambda w, t: [
            Call(
                "POST",
                f"/v1/checklists/{w.fresh_checklist(t)['checklist_no']}/withdrawal",
                body={"reason": "filed twice"},
                owner=t,
            )
        ],
        "path",
    ),
    "GET /v1/checklists": Spec(get("/v1/checklists", limit=1000), "list", check=check_checklists),
    "GET /v1/tax-bills": Spec(get("/v1/tax-bills", limit=1000), "list", check=check_bills),
    "GET /v1/checklists/{checklist_no}": Spec(
        lambda w, t: [
            Call("GET", f"/v1/checklists/{t.declarations['arrival']['checklist_no']}", owner=t)
        ],
        "path",
    ),
    "POST /v1/gate-passes": Spec(
        lambda w, t: [
            Call(
                "POST",
                "/v1/gate-passes",
                body=w.pass_body(t, w.fresh_declaration(t, "released_in")["checklist_no"]),
                key=True,
                owner=t,
            )
        ],
        "body",
        "checklists[0].checklist_no",
    ),
    "GET /v1/gate-passes": Spec(get("/v1/gate-passes", limit=1000), "list", check=check_passes),
    "POST /v1/account-books/{book_no}/collection-permission": Spec(
        lambda w, t: [
            Call(
                "POST",
                f"/v1/account-books/{t.book}/collection-permission",
                # The other way from how it stands: every allowed call is a change.
                body={"permitted": not w.collection_permitted(t), "reason": "matrix"},
                owner=t,
            )
        ],
        "path",
    ),
    "GET /v1/account-books/{book_no}/collection-permission": Spec(
        lambda w, t: [Call("GET", f"/v1/account-books/{t.book}/collection-permission", owner=t)],
        "path",
    ),
    "GET /v1/gate-passes/{pass_no}": Spec(
        lambda w, t: [Call("GET", f"/v1/gate-passes/{t.gate_pass['pass_no']}", owner=t)], "path"
    ),
    "POST /v1/gate-passes/{pass_no}/passage": Spec(
        lambda w, t: [
            Call(
                "POST",
                f"/v1/gate-passes/{w.fresh_pass(t)['pass_no']}/passage",
                body={"measured_gross_weight_kg": "1000"},
                owner=t,
            )
        ],
        "path",
    ),
    "GET /v1/trace": Spec(
        lambda w, t: [Call("GET", "/v1/trace", {"ref": t.transport["reference"]}, owner=t)],
        "path",
        check=check_trace,
    ),
    "GET /v1/trace/epcis": Spec(
        lambda w, t: [Call("GET", "/v1/trace/epcis", {"ref": t.transport["reference"]}, owner=t)],
        "path",
    ),
    "GET /v1/events": Spec(get("/v1/events", limit=5)),
    "GET /v1/streams/{stream_id}/events": Spec(
        lambda w, t: [Call("GET", f"/v1/streams/{t.declarations['arrival']['id']}/events")]
    ),
    "GET /v1/audit/verify": Spec(get("/v1/audit/verify")),
    "GET /v1/audit/digest": Spec(get("/v1/audit/digest")),
    "POST /v1/audit/replay": Spec(lambda w, t: [Call("POST", "/v1/audit/replay", body={})]),
    "POST /v1/imports": Spec(new_import, by_role=new_import_as),
    "GET /v1/imports/{import_id}": Spec(import_of, "path", by_role=import_of_as),
    "GET /v1/imports/templates/{kind}.xlsx": Spec(get("/v1/imports/templates/retail_lists.xlsx")),
}


# -- the world ---------------------------------------------------------------------------------


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def world(request: pytest.FixtureRequest, tmp_path_factory: Any) -> Iterator[World]:
    """The seeded world, once per store (a new SQLite file; a new PostgreSQL schema)."""
    if request.param == "postgres":
        request.getfixturevalue("postgres_available")  # skips (or fails in CI) without one
    workdir = tmp_path_factory.mktemp("matrix")
    with (
        scratch_database(request.param, workdir) as url,
        running_ledger(url, webhook_allowed_hosts=("127.0.0.1",)) as ledger,
    ):
        yield seed(ledger)


def send(world: World, call: Call, token: str | None, language: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    if language is not None:
        headers["Accept-Language"] = language
    if call.key:
        headers["Idempotency-Key"] = f"matrix-{uuid.uuid4()}"
    return world.ledger.client.request(
        call.method,
        call.path,
        params=call.params,
        json=call.body if call.method == "POST" else None,
        headers=headers,
    )


@dataclass
class Expectation:
    call: Call
    status: int
    why: str
    scope: Scope | None = None  # a scoped answer: checked against what the scope may see
    others: list[Tenant] = field(default_factory=list)  # whose identifiers must not appear
    loc: str | None = None  # the field a 422 must name
    unknown: Tenant | None = None  # answer as if this tenant's identifiers did not exist


UNKNOWN = uuid.UUID("00000000-0000-4000-8000-00000000abcd")


def stand_in(identifier: str) -> str:
    """An identifier of the same shape that names nothing in the world."""
    if re.fullmatch(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", identifier):
        return str(uuid.uuid5(UNKNOWN, identifier))
    if re.fullmatch(r"\d{18}", identifier):  # a declaration number: the same series, unissued
        return identifier[:9] + "9" * 9
    if re.fullmatch(r"91610131MA\w{8}", identifier):  # a USCC: a valid, unregistered one
        return make_uscc(9_999_999)
    return f"{identifier}-UNKNOWN"


def as_unknown(call: Call, t: Tenant) -> tuple[Call, dict[str, str]]:
    """The same call with each of `t`'s identifiers replaced by a stand-in."""
    text = json.dumps([call.path, call.params, call.body])
    found = {s: stand_in(s) for s in t.secrets | t.books if s in text}
    for s in sorted(found, key=len, reverse=True):
        text = text.replace(s, found[s])
    path, params, body = json.loads(text)
    return Call(call.method, path, params, body, call.key, call.owner), found


def plan(world: World, entry: Entry, principal: str) -> tuple[str | None, list[Expectation]]:
    """The token to send and what each request of the cell must answer."""
    spec = SPECS[entry.label]
    ok = success_status(entry)
    a = world.a
    if principal in ("no_token", "revoked"):
        verdict = entry.cell("no token")[0]
        expected = ok if verdict == "yes" else int(verdict)
        token = None
        if principal == "revoked":
            # A revoked key of a role the row lets in (with a live key it would succeed).
            role = next((r for r in ROLES if entry.cell(r)[0] not in ("401", "403")), "admin")
            token = world.ledger.tokens[world.revoked[role]]
            expected = ok if entry.public else 401
        return token, [
            Expectation(c, expected, f"{verdict} ({principal})") for c in spec.request(world, a)
        ]
    role = principal.partition("_")[0]
    verdict, party = entry.cell(role)
    token = world.ledger.tokens[principal]
    if verdict in ("401", "403"):
        calls = requests(spec, world, a, role)
        return token, [Expectation(c, int(verdict), verdict) for c in calls]
    if verdict == "yes":
        calls = requests(spec, world, a, role)
        return token, [Expectation(c, ok, "yes", Scope()) for c in calls]
    assert verdict in SCOPED.get(role, ()), f"{entry.label}: {verdict!r} for the {role} role"
    own = a if principal in ("enterprise_A", "operator_X") else world.b
    other = world.other(own)
    scope = Scope(tenant=own) if role == "enterprise" else Scope(zone=own.zone)
    expectations = [
        Expectation(c, ok, f"{verdict}: its own", scope, [other])
        for c in requests(spec, world, own, role)
    ]
    if spec.foreign in FOREIGN_STATUS:
        foreign = (
            spec.foreign_request(world, own, other)
            if spec.foreign_request
            else requests(spec, world, other, role)
        )
        why = f"{verdict}: the other tenant's ({spec.foreign})"
        expectations += [
            Expectation(
                c,
                FOREIGN_STATUS[spec.foreign],
                why,
                loc=f"$.{c.field or spec.field}" if spec.foreign == "body" else None,
                unknown=other,
            )
            for c in foreign
        ]
    if party is not None:
        for c in requests(spec, world, own, role):
            c.body = {**c.body, party: other.uscc}
            expectations.append(Expectation(c, 403, f"{verdict}: names another {party}"))
    return token, expectations


def assert_the_same_refusal_in_chinese(
    world: World, call: Call, token: str | None, english: Any, shown: str
) -> None:
    """The refused request asked again in zh-CN (issue #20, decision 0034): the same status,
    `type`, `rule`, `current_status` and `errors[].loc`/`rule`, `Content-Language: zh-CN`, and
    `title`, `detail` and every `errors[].msg` the catalog's translation of the English
    answer's, which leaves no English but the values (`i18n.untranslated`)."""
    before = world.ledger.log_state()
    zh = send(world, call, token, language="zh-CN")
    assert world.ledger.log_state() == before, f"{shown}: a refusal in zh-CN changed the log"
    assert zh.status_code == english.status_code, f"{shown}: in zh-CN {zh.status_code} {zh.text}"
    assert zh.headers["content-language"] == "zh-CN", shown
    assert english.headers["content-language"] == "en", shown
    a, b = zh.json(), english.json()
    same = ("type", "status", "rule", "current_status")
    assert {k: a.get(k) for k in same} == {k: b.get(k) for k in same}, f"{shown}: {a} / {b}"
    codes = [{k: v for k, v in x.items() if k != "msg"} for x in b.get("errors") or []]
    assert [{k: v for k, v in x.items() if k != "msg"} for x in a.get("errors") or []] == codes
    pairs = zip(b.get("errors") or [], a.get("errors") or [], strict=True)
    texts = [(b["title"], a["title"]), (b["detail"], a["detail"])]
    texts += [(x["msg"], y["msg"]) for x, y in pairs]
    left = [part for text, _ in texts for part in i18n.untranslated(text)]
    assert not left, f"{shown}: stays English in zh-CN: {left}"
    assert [zh for _, zh in texts] == [i18n.translate(en, "zh-CN") for en, _ in texts], shown


CELLS = [
    pytest.param(entry, principal, id=f"{entry.label}-{principal}")
    for entry in ENTRIES
    for principal in PRINCIPALS
]


@pytest.mark.parametrize(("entry", "principal"), CELLS)
def test_cell(world: World, entry: Entry, principal: str) -> None:
    assert entry.label in SPECS, f"{entry.label}: a new row of docs/api.md; say how to call it"
    token, expectations = plan(world, entry, principal)
    spec = SPECS[entry.label]
    for e in expectations:
        before = world.ledger.log_state()
        r = send(world, e.call, token)
        shown = f"{e.call.method} {e.call.path} {e.call.params or ''} as {principal} ({e.why})"
        assert r.status_code == e.status, f"{shown}: {r.status_code} {r.text[:500]}"
        if r.status_code >= 300:
            assert r.headers["content-type"].startswith("application/problem+json"), shown
            assert world.ledger.log_state() == before, f"{shown}: a refusal changed the log"
            if r.status_code == 401:
                assert r.headers.get("www-authenticate") == "Bearer", shown
            if e.loc is not None:
                assert e.loc in [x["loc"] for x in r.json()["errors"]], f"{shown}: {r.text}"
            assert_the_same_refusal_in_chinese(world, e.call, token, r, shown)
            if e.unknown is not None:
                # Another tenant's thing gets the answer an unknown one gets, word for word.
                twin, stand_ins = as_unknown(e.call, e.unknown)
                assert stand_ins, f"{shown}: names nothing of {e.unknown.label}'s"
                answer = send(world, twin, token)
                text = r.text
                for s in sorted(stand_ins, key=len, reverse=True):
                    text = text.replace(s, stand_ins[s])
                assert (answer.status_code, answer.json()) == (r.status_code, json.loads(text)), (
                    f"{shown}: {r.text} but for an unknown one {answer.text}"
                )
                assert world.ledger.log_state() == before
            continue
        if e.call.owner is not None and e.call.method == "POST":
            e.call.owner.learn(r.json())
        for other in e.others:
            leaked = sorted(s for s in other.secrets if s in r.text)
            assert not leaked, f"{shown}: the answer shows {other.label}'s {leaked}"
        if spec.check is not None and e.scope is not None:
            spec.check(world, e.scope, r.json())


# -- the table and the app agree -----------------------------------------------------------------


def test_every_route_the_app_serves_has_a_row_and_every_row_a_route() -> None:
    in_table = {(e.method, e.path) for e in ENTRIES}
    served = served_routes()
    assert served - in_table == set(), "routes served but missing from docs/api.md's table"
    assert in_table - served == set(), "rows of docs/api.md's table that no route serves"


def test_the_rows_of_a_route_split_by_body_kind_cover_every_kind() -> None:
    kinds = {e.label.partition(" kind=")[2] for e in ENTRIES if " kind=" in e.label}
    assert {e.path for e in ENTRIES if " kind=" in e.label} == {"/v1/movements"}
    assert kinds == movement_kinds()


def test_every_entry_has_a_request_and_every_request_an_entry() -> None:
    assert set(SPECS) == {e.label for e in ENTRIES}


# -- zero leaks ----------------------------------------------------------------------------------

# Each viewer and the tenant whose things it must never see.
VIEWERS = ("enterprise_B", "operator_Y", "enterprise_A", "operator_X")


def own_and_other(world: World, viewer: str) -> tuple[Tenant, Tenant]:
    own = world.a if viewer in ("enterprise_A", "operator_X") else world.b
    return own, world.other(own)


@dataclass
class Identifiers:
    """Everything of one tenant's, as the admin and officer see it now (the matrix's writes
    included), with what the world recorded while it built it."""

    declarations: set[str]  # ids and numbers
    references: set[str]  # transport references, containers, gate notes
    lots: set[str]
    movements: set[str]
    books: set[str]
    every: set[str]


def identifiers_of(world: World, t: Tenant) -> Identifiers:
    declarations = [d for d in admin_list(world, "/v1/declarations") if d["declarant"] == t.uscc]
    assert declarations
    ids = {d["id"] for d in declarations} | {d["declaration_no"] for d in declarations}
    references = {d["transport"]["reference"] for d in declarations} - {SHARED_TRAIN}
    references |= {d["transport"]["container"] for d in declarations} - {None}
    lots, movements = set(), set()
    for book in t.books:
        for e in admin_list(world, f"/v1/account-books/{book}/entries"):
            lots.add(e["lot_id"])
            movements.add(e["movement_id"])
            references |= {d["id"] for d in e["documents"] if d["kind"] == "gate_note"}
    assert lots and movements and references
    every = ids | references | lots | movements | t.books | t.secrets | {t.uscc, t.name}
    return Identifiers(ids, references, lots, movements, set(t.books), every)


def viewer_get(world: World, viewer: str, path: str, **params: Any) -> Any:
    return world.ledger.client.get(path, params=params or None, headers=world.headers(viewer))


def assert_no_leak(r: Any, secrets: set[str], shown: str) -> None:
    leaked = sorted(s for s in secrets if s in r.text)
    assert not leaked, f"{shown}: {r.status_code}, shows {leaked[:5]}"


@pytest.mark.parametrize("viewer", VIEWERS)
def test_no_list_shows_anything_of_the_other_tenant(world: World, viewer: str) -> None:
    own, other = own_and_other(world, viewer)
    theirs = identifiers_of(world, other)
    mine = identifiers_of(world, own)
    operator = viewer.startswith("operator")
    reads: list[tuple[str, dict[str, Any]]] = [
        ("/v1/declarations", {"limit": 1000}),
        ("/v1/inventory", {"limit": 1000}),
        ("/v1/movements", {"limit": 1000}),
        ("/v1/movements", {"kind": "adjustment", "flagged": "true"}),
        ("/v1/inventory", {"hs_code": "8471300000", "item_no": 1}),
        *[("/v1/stats", {"group_by": g}) for g in ("day", "month", "trade_mode", "flow")],
        *[
            ("/v1/declarations", {"flow": f})
            for f in ("first_line_in", "first_line_out", "second_line_out", "transfer")
        ],
        *[
            ("/v1/declarations", {"status": s})
            for s in (
                "released",
                "document_review",
                "inspection",
                "awaiting_payment",
                "withdrawn",
                "rejected",
                "awaiting_acceptance",
                "refused",
            )
        ],
    ]
    # What the caller may read of its own, each of which must stay within its own.
    books = sorted(own.books) if not operator else [own.book]
    for book in books:
        reads += [
            (f"/v1/account-books/{book}{s}", {})
            for s in ("", "/entries", "/statement", "/statement.csv")
        ]
    reads += [(f"/v1/lots/{lot}", {}) for lot in sorted(mine.lots) if not operator][:20]
    reads += [(f"/v1/movements/{m}", {}) for m in sorted(mine.movements) if not operator][:20]
    own_refs = [
        own.transport["reference"],
        SHARED_TRAIN,
        own.declarations["arrival"]["id"],
        own.home_lot,
    ]
    reads += [(p, {"ref": ref}) for ref in own_refs for p in ("/v1/trace", "/v1/trace/epcis")]
    for path, params in reads:
        r = viewer_get(world, viewer, path, **params)
        assert r.status_code == 200, f"{path} {params} as {viewer}: {r.status_code} {r.text[:300]}"
        assert_no_leak(r, theirs.every, f"{path} {params} as {viewer}")
    enterprises = [
        ("/v1/enterprises", {}),
        *[("/v1/enterprises", {"credit_class": c}) for c in ("regular", "dishonest")],
    ]
    for path, params in enterprises:
        r = viewer_get(world, viewer, path, **params)
        assert r.status_code == (403 if operator else 200), r.text
        assert_no_leak(r, theirs.every, f"{path} {params} as {viewer}")
    # Filters that name the other tenant's things give empty pages, not errors.
    empty = [
        ("/v1/declarations", {"declarant": other.uscc}),
        ("/v1/declarations", {"zone": other.zone}),
        ("/v1/inventory", {"zone": other.zone}),
        ("/v1/inventory", {"zone": other.partner}),
        ("/v1/stats", {"zone": other.zone}),
        ("/v1/movements", {"zone": other.zone}),
        *[("/v1/inventory", {"account_book": b}) for b in sorted(theirs.books)],
        *[("/v1/movements", {"account_book": b}) for b in sorted(theirs.books)],
    ]
    for path, params in empty:
        r = viewer_get(world, viewer, path, **params)
        assert r.status_code == 200 and r.json()["items"] == [], (
            f"{path} {params} as {viewer}: {r.text}"
        )


@pytest.mark.parametrize("viewer", VIEWERS)
def test_the_other_tenants_things_do_not_exist_for_the_caller(world: World, viewer: str) -> None:
    _, other = own_and_other(world, viewer)
    theirs = identifiers_of(world, other)
    paths = [f"/v1/declarations/{d}" for d in sorted(theirs.declarations)]
    paths += [f"/v1/lots/{lot}" for lot in sorted(theirs.lots)]
    paths += [f"/v1/movements/{m}" for m in sorted(theirs.movements)]
    for book in sorted(theirs.books):
        paths += [
            f"/v1/account-books/{book}{s}" for s in ("", "/entries", "/statement", "/statement.csv")
        ]
        paths.append(f"/v1/account-books/{book}/boms/{other.bom_ref}")
    refs = sorted(theirs.declarations | theirs.references | theirs.lots)
    traces = [(p, {"ref": ref}) for ref in refs for p in ("/v1/trace", "/v1/trace/epcis")]
    for path, params in [(p, {}) for p in paths] + traces:
        r = viewer_get(world, viewer, path, **params)
        shown = f"{path} {params} as {viewer}"
        assert r.status_code == 404, f"{shown}: {r.status_code} {r.text[:300]}"
        assert_no_leak(r, theirs.every - set(params.values()) - {path.rpartition("/")[2]}, shown)
    r = viewer_get(world, viewer, f"/v1/enterprises/{other.uscc}")
    assert r.status_code == (403 if viewer.startswith("operator") else 404), r.text


@pytest.mark.parametrize("viewer", VIEWERS)
def test_the_log_and_the_audit_routes_are_closed_to_the_caller(world: World, viewer: str) -> None:
    _, other = own_and_other(world, viewer)
    before = world.ledger.log_state()
    for path in (
        "/v1/events",
        f"/v1/streams/{other.declarations['arrival']['id']}/events",
        "/v1/audit/verify",
        "/v1/audit/digest",
    ):
        assert viewer_get(world, viewer, path).status_code == 403, path
    r = world.ledger.client.post("/v1/audit/replay", json={}, headers=world.headers(viewer))
    assert r.status_code == 403
    assert world.ledger.log_state() == before


@pytest.mark.parametrize("group_by", ["day", "month", "trade_mode", "flow"])
def test_stats_count_only_what_the_caller_may_see(world: World, group_by: str) -> None:
    """B's statistics never count A's declarations (and the other way round): each caller's
    total is exactly its own declarations' (C's transfers into its books included), and A's,
    B's and the rest of C's add up to the admin's."""
    everything = admin_list(world, "/v1/declarations")
    counted = [d for d in everything if d["status"] not in ("withdrawn", "rejected", "refused")]

    def total(who: str) -> int:
        r = viewer_get(world, who, "/v1/stats", group_by=group_by)
        assert r.status_code == 200, r.text
        return sum(row["declarations"] for row in r.json()["items"])

    by_tenant = {
        t.label: sum(Scope(tenant=t).sees_declaration(d) for d in counted) for t in world.tenants
    }
    assert by_tenant["A"] > 0 and by_tenant["B"] > 0
    assert total("enterprise_A") == by_tenant["A"]
    assert total("enterprise_B") == by_tenant["B"]
    neither = sum(
        not any(Scope(tenant=t).sees_declaration(d) for t in world.tenants) for d in counted
    )
    assert total("admin") == len(counted) == by_tenant["A"] + by_tenant["B"] + neither
    for operator, t in (("operator_X", world.a), ("operator_Y", world.b)):
        in_zone = sum(t.zone in (d["zone"], d["destination_zone"]) for d in counted)
        assert total(operator) == in_zone > 0


def test_a_shared_train_shows_each_tenant_only_its_own_goods(world: World) -> None:
    """Both tenants' goods came on one train: its reference traces, for each, to its own lots."""
    officer = viewer_get(world, "officer", "/v1/trace", ref=SHARED_TRAIN).json()
    assert {lot["account_book"] for lot in officer["lots"]} >= {world.a.book, world.b.book}
    for viewer in VIEWERS:
        own, other = own_and_other(world, viewer)
        r = viewer_get(world, viewer, "/v1/trace", ref=SHARED_TRAIN)
        assert r.status_code == 200, r.text
        assert {lot["account_book"] for lot in r.json()["lots"]} == {own.book}
        assert_no_leak(r, identifiers_of(world, other).every, f"shared train as {viewer}")


def test_an_idempotency_key_is_only_the_callers_own(world: World) -> None:
    """A key another principal used replays nothing of theirs: B gets its own answer, and A's
    very request under A's key is, from B, refused as naming another declarant."""
    a, b = world.a, world.b

    def submit(principal: str, body: dict[str, Any], key: str) -> Any:
        headers = {**world.headers(principal), "Idempotency-Key": key}
        return world.ledger.client.post("/v1/declarations", json=body, headers=headers)

    key = f"PO-{uuid.uuid4()}"
    first = submit(a.principal, world.declaration(a), key)
    assert first.status_code == 201, first.text
    a.learn(first.json())
    theirs = submit(b.principal, world.declaration(b), key)
    assert theirs.status_code == 201 and "idempotency-replayed" not in theirs.headers
    b.learn(theirs.json())
    assert theirs.json()["declarant"] == b.uscc
    assert_no_leak(theirs, a.secrets, "B's submission under A's key")

    key = f"PO-{uuid.uuid4()}"
    body = world.declaration(a)
    mine = submit(a.principal, body, key)
    assert mine.status_code == 201, mine.text
    a.learn(mine.json())
    before = world.ledger.log_state()
    copied = submit(b.principal, body, key)
    assert copied.status_code == 403 and "idempotency-replayed" not in copied.headers
    assert_no_leak(copied, a.secrets - {a.uscc}, "A's request and key sent by B")
    assert world.ledger.log_state() == before
