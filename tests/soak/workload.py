"""What the soak writes: tenants seeded through the API, then a random mix of declarations,
officers clearing those the risk channel stopped, gate_in of released declarations' lines and
stocktake adjustments, each valid when planned."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from tests.samples import book_body, declaration_body, enterprise_body, line, make_uscc
from tests.soak.client import Ack, RetryingClient

ZONES = ("XCBZ", "XHTZ", "XEPZ")
# Enough on each seed declaration's lines that the small gate_in of a soak never exhausts them.
SEED_QUANTITY = Decimal(1_000_000)
SEED_ADMITTED = Decimal(2_000)
# A stock decrease is planned only while the item keeps at least this much after it.
STOCK_FLOOR = Decimal(100)
# The share of each kind of write. Without a declaration to clear, a clearance becomes a
# declaration; without stock to decrease or a line to admit, a movement becomes an increase.
MIX = (
    ("declaration", 30),
    ("clearance", 5),
    ("gate_in", 40),
    ("adjustment_up", 12),
    ("adjustment_down", 13),
)


@dataclass
class Tenant:
    uscc: str
    book_no: str
    zone: str
    enterprise_key: str

    @property
    def gate_key(self) -> str:
        return f"soak-gate-{self.zone}"


@dataclass
class Admissible:
    """A released first_line_in declaration and what each line still lets through the gate."""

    declaration: str
    tenant: Tenant
    remaining: dict[int, Decimal]
    items: dict[int, int]


@dataclass
class Planned:
    kind: str
    who: str
    path: str
    body: dict[str, Any]
    # What the write takes from the planner's counters until its answer settles it.
    taken: dict[Any, Any] = field(default_factory=dict)


def key_names(tenants: int) -> list[tuple[str, str, dict[str, str]]]:
    """Every API key the soak uses: (name, role, binding)."""
    names: list[tuple[str, str, dict[str, str]]] = [
        ("soak-admin", "admin", {}),
        ("soak-officer", "officer", {}),
        ("soak-auditor", "auditor", {}),
    ]
    names += [(f"soak-gate-{z}", "operator", {"zone": z}) for z in ZONES]
    for i in range(tenants):
        names.append((f"soak-ent-{i}", "enterprise", {"enterprise": make_uscc(9000 + i)}))
    return names


def tenants(count: int) -> list[Tenant]:
    return [
        Tenant(
            uscc=make_uscc(9000 + i),
            book_no=f"SOAK{i:04d}{ZONES[i % len(ZONES)]}",
            zone=ZONES[i % len(ZONES)],
            enterprise_key=f"soak-ent-{i}",
        )
        for i in range(count)
    ]


def _quantity(item_no: int, rng: random.Random, low: int, high: int) -> Decimal:
    """Laptops (C62) are counted in whole pieces; coffee (KGM) in tenths of a kilogram."""
    if item_no == 1:
        return Decimal(rng.randint(low, high))
    return Decimal(rng.randint(low * 10, high * 10)) / 10


class Planner:
    """Plans valid writes from what has been acknowledged so far (shared by all clients)."""

    def __init__(self, tenants: list[Tenant], rng: random.Random) -> None:
        self.tenants = tenants
        self.rng = rng
        self.lock = threading.Lock()
        self.admissible: list[Admissible] = []
        # Declarations in document review or inspection, for an officer to clear.
        self.stopped: list[tuple[dict[str, Any], Tenant]] = []
        # What a decrease may still take: acknowledged increases minus planned decreases.
        self.stock: dict[tuple[str, int], Decimal] = {}
        self.counter = 0

    def _next_key(self, kind: str) -> str:
        self.counter += 1
        return f"soak-{self.counter:06d}-{kind}"

    def plan(self) -> tuple[Planned, str]:
        """The next write and its Idempotency-Key."""
        with self.lock:
            kinds, weights = zip(*MIX, strict=True)
            kind = self.rng.choices(kinds, weights)[0]
            planned = None
            if kind == "clearance":
                planned = self._clearance()
            elif kind == "gate_in":
                planned = self._gate_in()
            elif kind == "adjustment_down":
                planned = self._adjustment_down()
            if planned is None and kind not in ("declaration", "clearance"):
                planned = self._adjustment_up()
            if planned is None:
                planned = self._declaration()
            return planned, self._next_key(planned.kind)

    def _declaration(self) -> Planned:
        t = self.rng.choice(self.tenants)
        items = self.rng.choice(([1], [2], [1, 2]))
        lines = [
            line(item, line_no=n, quantity=str(_quantity(item, self.rng, 50, 500)))
            for n, item in enumerate(items, start=1)
        ]
        body = declaration_body(
            t.uscc,
            t.book_no,
            zone=t.zone,
            lines=lines,
            transport={
                "mode": "rail",
                "reference": f"X{self.rng.randint(1000, 9999)}-20261128",
                "container": "TGHU1234567",
            },
            client_ref=f"SOAK-{self.counter + 1}",
        )
        return Planned("declaration", t.enterprise_key, "/v1/declarations", body)

    def _clearance(self) -> Planned | None:
        """An officer's conforming inspection (red) or release after document review (yellow)."""
        if not self.stopped:
            return None
        declaration, tenant = self.stopped.pop(self.rng.randrange(len(self.stopped)))
        kind, path, body = clearance(declaration)
        return Planned(kind, "soak-officer", path, body, {"stopped": declaration, "by": tenant})

    def _gate_in(self) -> Planned | None:
        open_ = [a for a in self.admissible if any(q >= 10 for q in a.remaining.values())]
        if not open_:
            return None
        a = self.rng.choice(open_)
        lines, taken = [], {}
        for line_no, left in sorted(a.remaining.items()):
            if left < 10 or (lines and self.rng.random() < 0.5):
                continue
            q = _quantity(a.items[line_no], self.rng, 1, 5)
            a.remaining[line_no] -= q
            taken[(a.declaration, line_no)] = q
            lines.append({"line_no": line_no, "quantity": str(q)})
        body = {
            "kind": "gate_in",
            "declaration": a.declaration,
            "lines": lines,
            "gate_note": f"HF-{a.tenant.zone}-{self.counter + 1:06d}",
        }
        return Planned("gate_in", a.tenant.gate_key, "/v1/movements", body, taken)

    def _adjustment_up(self) -> Planned:
        t = self.rng.choice(self.tenants)
        item = self.rng.choice((1, 2))
        delta = _quantity(item, self.rng, 1, 5)
        return Planned(
            "adjustment",
            t.enterprise_key,
            "/v1/movements",
            self._adjustment(t, item, delta, "stocktake surplus"),
        )

    def _adjustment_down(self) -> Planned | None:
        t = self.rng.choice(self.tenants)
        item = self.rng.choice((1, 2))
        delta = _quantity(item, self.rng, 1, 3)
        if self.stock.get((t.book_no, item), Decimal(0)) - delta < STOCK_FLOOR:
            return None
        self.stock[(t.book_no, item)] -= delta
        body = self._adjustment(t, item, -delta, "damaged in storage")
        return Planned("adjustment", t.enterprise_key, "/v1/movements", body)

    @staticmethod
    def _adjustment(t: Tenant, item: int, delta: Decimal, reason: str) -> dict[str, Any]:
        return {
            "kind": "adjustment",
            "account_book": t.book_no,
            "item_no": item,
            "quantity_delta": str(delta),
            "reason": reason,
        }

    def settle(self, planned: Planned, ack: Ack) -> None:
        """Count an answered write: stock it added, a released declaration to admit from;
        a refused one gives back what it took."""
        with self.lock:
            if not ack.acknowledged:
                self._give_back(planned)
            elif planned.kind == "declaration":
                self.follow(ack.response, self._tenant(planned.who))
            elif planned.kind in ("inspection", "release"):
                self.follow(ack.response, planned.taken["by"])
            elif planned.kind == "gate_in":
                for line_no, q in _lines(planned.body).items():
                    item = self._item(planned.body["declaration"], line_no)
                    book = ack.response["account_book"]
                    self.stock[(book, item)] = self.stock.get((book, item), Decimal(0)) + q
            elif Decimal(planned.body["quantity_delta"]) > 0:
                k = (planned.body["account_book"], planned.body["item_no"])
                self.stock[k] = self.stock.get(k, Decimal(0)) + Decimal(
                    planned.body["quantity_delta"]
                )

    def _give_back(self, planned: Planned) -> None:
        if planned.kind in ("inspection", "release"):
            self.stopped.append((planned.taken["stopped"], planned.taken["by"]))
            return
        for (declaration, line_no), q in planned.taken.items():
            next(a for a in self.admissible if a.declaration == declaration).remaining[line_no] += q
        if planned.kind == "adjustment" and Decimal(planned.body["quantity_delta"]) < 0:
            k = (planned.body["account_book"], planned.body["item_no"])
            self.stock[k] -= Decimal(planned.body["quantity_delta"])

    def follow(self, declaration: dict[str, Any], tenant: Tenant) -> None:
        """A declaration answered: stopped ones await an officer, released ones the gate."""
        if declaration["status"] in ("document_review", "inspection"):
            self.stopped.append((declaration, tenant))
        self.admit_from(declaration, tenant)

    def admit_from(self, declaration: dict[str, Any], tenant: Tenant) -> None:
        """A released first_line_in declaration becomes a source of gate_in."""
        if declaration["status"] != "released":
            return
        self.admissible.append(
            Admissible(
                declaration=declaration["id"],
                tenant=tenant,
                remaining={n["line_no"]: Decimal(n["quantity"]) for n in declaration["lines"]},
                items={n["line_no"]: n["item_no"] for n in declaration["lines"]},
            )
        )

    def _tenant(self, key_name: str) -> Tenant:
        return next(t for t in self.tenants if t.enterprise_key == key_name)

    def _item(self, declaration: str, line_no: int) -> int:
        return next(a for a in self.admissible if a.declaration == declaration).items[line_no]


def _lines(body: dict[str, Any]) -> dict[int, Decimal]:
    return {n["line_no"]: Decimal(n["quantity"]) for n in body["lines"]}


def seed(client: RetryingClient, planner: Planner) -> list[Ack]:
    """Enterprises, books, two released first_line_in declarations each (an officer releases
    those the risk rules stop), and a first gate_in so decreases have stock to draw on."""
    acks: list[Ack] = []

    def write(kind: str, who: str, path: str, body: dict[str, Any], key: str) -> Ack:
        ack = client.write(kind, who, path, body, key, seed=True)
        if not ack.acknowledged:
            raise RuntimeError(f"seeding {kind} {key}: {ack.status} {ack.response}")
        acks.append(ack)
        return ack

    for i, t in enumerate(planner.tenants):
        write("enterprise", "soak-admin", "/v1/enterprises", enterprise_body(t.uscc), f"ent-{i}")
        write(
            "account_book",
            "soak-admin",
            "/v1/account-books",
            book_body(t.book_no, t.uscc, t.zone),
            f"book-{i}",
        )
        for d in range(2):
            lines = [
                line(1, line_no=1, quantity=str(SEED_QUANTITY)),
                line(2, line_no=2, quantity=str(SEED_QUANTITY)),
            ]
            body = declaration_body(t.uscc, t.book_no, zone=t.zone, lines=lines)
            decl = write("declaration", t.enterprise_key, "/v1/declarations", body, f"seed-{i}-{d}")
            released = _release(write, decl.response, f"seed-{i}-{d}")
            planner.admit_from(released, t)
        first = planner.admissible[-2]
        taken = {n: SEED_ADMITTED for n in first.remaining}
        body = {
            "kind": "gate_in",
            "declaration": first.declaration,
            "lines": [{"line_no": n, "quantity": str(q)} for n, q in taken.items()],
        }
        write("gate_in", t.gate_key, "/v1/movements", body, f"seed-gate-{i}")
        for n, q in taken.items():
            first.remaining[n] -= q
            planner.stock[(t.book_no, first.items[n])] = q
    return acks


def clearance(declaration: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """What an officer sends to clear a stopped declaration: (kind, path, body)."""
    ref = f"/v1/declarations/{declaration['id']}"
    if declaration["status"] == "inspection":
        body = {"result": "conform", "findings": "soak: goods as declared"}
        return "inspection", f"{ref}/inspection-results", body
    return "release", f"{ref}/release", {}


def _release(write: Any, declaration: dict[str, Any], key: str) -> dict[str, Any]:
    """An officer clears what the risk channel stopped: a conforming inspection (red), a
    release after document review (yellow)."""
    for step in range(2):
        if declaration["status"] not in ("inspection", "document_review"):
            break
        kind, path, body = clearance(declaration)
        declaration = write(kind, "soak-officer", path, body, f"{key}-{kind}-{step}").response
    if declaration["status"] != "released":
        raise RuntimeError(f"seed declaration {declaration['id']} is {declaration['status']}")
    return declaration
