"""The seeded world of the authorization matrix (tests/e2e/test_authorization_matrix.py).

Two tenants, each at home in its own zone: enterprise A in zone X (XCBZ, its transfers go to and
come from XABZ) and enterprise B in zone Y (XHTZ, its partner zone XXLC), so that neither zone's
operator ever sees the other tenant's goods or papers. Each tenant has the same things: three
account books (two in its home zone), stock, a BOM, declarations in several states, every kind
of movement and the lots they made. Both also brought goods on one shared train
(`SHARED_TRAIN`): a reference that matches goods of both, where each may see only its own. A
third enterprise, C, at home in XEPZ (a zone neither operator sees), sends transfers into A's
and B's home books: each waits for its destination's acceptance, and is that destination's to
see (never the other tenant's).

The principals the matrix calls with are `PRINCIPALS`; the helpers (`fresh_*`) give each write
of the matrix a resource of its own, so a write that succeeds never breaks a later cell.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from tests.samples import (
    book_body,
    declaration_body,
    enterprise_body,
    line,
    make_resident_id,
    make_uscc,
)
from tests.support import Ledger

ZONE_X, ZONE_Y = "XCBZ", "XHTZ"
SHARED_TRAIN = "X8024-SHARED-TRAIN"
PRINCIPALS = (
    "admin",
    "enterprise_A",
    "enterprise_B",
    "operator_X",
    "operator_Y",
    "officer",
    "auditor",
    "no_token",
    "revoked",
)
ROLES = ("admin", "enterprise", "operator", "officer", "auditor")


@dataclass
class Tenant:
    """One enterprise of the world and the identifiers of everything it has."""

    label: str  # "A" or "B"
    uscc: str
    name: str
    zone: str  # its home zone
    partner: str  # the zone its transfers go to and come from
    book: str  # its book in the home zone
    partner_book: str
    principal: str  # its enterprise key ("enterprise_A")
    operator: str  # the operator key of its home zone ("operator_X")
    transport: dict[str, str]
    bom_ref: str
    declarations: dict[str, dict[str, Any]] = field(default_factory=dict)
    movements: dict[str, dict[str, Any]] = field(default_factory=dict)
    books: set[str] = field(default_factory=set)
    # Every identifier of this tenant's that another tenant must never see.
    secrets: set[str] = field(default_factory=set)
    gate_pass: dict[str, Any] = field(default_factory=dict)  # one filed, never passed

    @property
    def side_book(self) -> str:
        """Its second book in the home zone: in-zone transfers go to it from `book`."""
        return f"{self.book}-S"

    @property
    def home_lot(self) -> str:
        """A lot the gate admitted into the home zone."""
        return str(self.movements["gate_in"]["lots"][0]["lot_id"])

    def learn(self, answer: Any) -> None:
        """Remember the identifiers in an answer of one of this tenant's writes."""
        if not isinstance(answer, dict):
            return
        names = ("id", "declaration_no", "movement_id", "book_no", "bom_ref", "gate_note")
        for name in (*names, "checklist_no", "pass_no"):
            if isinstance(answer.get(name), str):
                self.secrets.add(answer[name])
        if isinstance(answer.get("book_no"), str):
            self.books.add(answer["book_no"])
        for lot in answer.get("lots") or ():
            self.secrets.add(str(lot["lot_id"]))


@dataclass
class World:
    ledger: Ledger
    a: Tenant
    b: Tenant
    revoked: dict[str, str]  # role -> name of a revoked key of that role (bound to A or X)
    c: Tenant | None = None  # the sender of transfers into A's and B's books
    serial: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    write_offs: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def tenants(self) -> tuple[Tenant, Tenant]:
        return self.a, self.b

    def other(self, t: Tenant) -> Tenant:
        return self.b if t is self.a else self.a

    def owner_of_book(self, book_no: str) -> Tenant | None:
        return next((t for t in self.tenants if book_no in t.books), None)

    def next(self) -> int:
        return next(self.serial)

    # -- requests ------------------------------------------------------------------------

    def headers(self, principal: str, key: bool = False) -> dict[str, str]:
        """The headers of a request as `principal` (a matrix principal or a helper key)."""
        h: dict[str, str] = {}
        if principal == "revoked":
            raise ValueError("the revoked key depends on the route: use revoked[role]")
        if principal != "no_token":
            h["Authorization"] = f"Bearer {self.ledger.tokens[principal]}"
        if key:
            h["Idempotency-Key"] = f"matrix-{uuid.uuid4()}"
        return h

    def write(self, principal: str, path: str, body: Any, status: int = 201) -> dict[str, Any]:
        """A setup write that must succeed."""
        r = self.ledger.client.post(path, json=body, headers=self.headers(principal, key=True))
        assert r.status_code == status, f"setup {path} as {principal}: {r.status_code} {r.text}"
        return r.json()  # type: ignore[no-any-return]

    # -- fresh resources for the matrix's writes ---------------------------------------------

    def declaration(self, t: Tenant, **overrides: Any) -> dict[str, Any]:
        """The body of a declaration of `t`: a first-line import of ten laptops into its home
        zone, on its own train, unless `overrides` say otherwise."""
        overrides.setdefault("transport", t.transport)
        overrides.setdefault("zone", t.zone)
        overrides.setdefault("account_book", t.book)
        overrides.setdefault("lines", [line(1, quantity="10")])
        overrides.setdefault("client_ref", f"MATRIX-{t.label}-{self.next()}")
        return declaration_body(t.uscc, overrides.pop("account_book"), **overrides)

    def declare(self, t: Tenant, status: str | None = None, **overrides: Any) -> dict[str, Any]:
        """Submit a declaration of `t` (as `declaration` builds it), expecting `status`."""
        d = self.write(t.principal, "/v1/declarations", self.declaration(t, **overrides))
        if status is not None:
            assert d["status"] == status, d
        t.learn(d)
        return d

    def fresh_declaration(self, t: Tenant, state: str) -> dict[str, Any]:
        """A new declaration of `t` ready for one matrix request:

        `released_in` (gate_in), `document_review` (release, rejection, withdrawal),
        `inspection` (inspection result), `awaiting_payment` (payment), `released_out`
        (gate_out), `transfer_out` (dispatch from the home zone), `transfer_in` (dispatched
        from the partner zone, waiting for the home zone's receipt), `incoming` (C's transfer
        into the home book, awaiting `t`'s acceptance), `released_retail` (a paid 9610 parcel:
        returns)."""
        if state == "released_in":
            return self.declare(t, "released", lines=[line(1, quantity="10")])
        if state == "document_review":  # medicaments: yellow under the test rules
            return self.declare(t, "document_review", lines=[line(3, quantity="5")])
        if state == "inspection":  # sporting shotguns: red
            return self.declare(t, "inspection", lines=[line(4, quantity="2")])
        if state == "awaiting_payment":
            return self.declare(
                t,
                "awaiting_payment",
                flow="second_line_out",
                trade_mode="0110",
                country="CN",
                lines=[{**line(1, quantity="1"), "origin_country": None}],
            )
        if state == "released_out":
            return self.declare(
                t,
                "released",
                flow="first_line_out",
                trade_mode="0110",
                country="NL",
                lines=[{**line(1, quantity="1"), "origin_country": None}],
            )
        if state == "released_retail":
            return self.retail_parcel(t)
        if state == "transfer_out":
            return self.transfer(t, t.zone, t.book, t.partner, t.partner_book)
        if state == "incoming":
            return self.incoming(t)
        if state == "transfer_in":
            d = self.transfer(t, t.partner, t.partner_book, t.zone, t.book)
            moved = self.write(f"gate-{t.partner}", "/v1/movements", gate(d, "transfer_dispatch"))
            t.learn(moved)
            return d
        raise ValueError(state)

    def pass_body(self, t: Tenant, checklist_no: str) -> dict[str, Any]:
        """A gate pass of one vehicle into `t`'s home zone carrying a whole checklist."""
        return {
            "zone": t.zone,
            "direction": "in",
            "vehicle": {"plate": f"陕A{self.next():05d}"},
            "gross_weight_kg": "1000",
            "checklists": [{"checklist_no": checklist_no}],
        }

    def checklist_body(self, t: Tenant) -> dict[str, Any]:
        """An enter_first checklist of ten laptops into `t`'s home book."""
        lines = [{"item_no": 1, "quantity": "10"}]
        return {"direction": "I", "account_book": t.book, "kind": "enter_first", "lines": lines}

    def fresh_checklist(self, t: Tenant) -> dict[str, Any]:
        """An enter_first checklist of `t`, filed and waiting for an officer."""
        filed = self.write(t.principal, "/v1/checklists", self.checklist_body(t))
        t.learn(filed)
        return filed

    def fresh_in_zone_transfer(self, t: Tenant) -> dict[str, Any]:
        """An in-zone transfer of one laptop from `t`'s home book to its side book, approved."""
        body = {
            "direction": "E",
            "account_book": t.book,
            "kind": "in_zone_transfer",
            "destination_account_book": t.side_book,
            "lines": [{"item_no": 1, "quantity": "1"}],
        }
        filed = self.write(t.principal, "/v1/checklists", body)
        t.learn(filed)
        self.write("officer", f"/v1/checklists/{filed['checklist_no']}/approval", {}, 200)
        return filed

    def fresh_write_off(self, t: Tenant) -> dict[str, Any]:
        """A write-off of `t`'s home book for a day of its own long past (nothing moved then:
        nothing to count), submitted and waiting for an officer."""
        day = (date(2001, 1, 1) + timedelta(days=self.next())).isoformat()
        body = {"period": {"from": day, "to": day}, "counts": []}
        filed = self.write(t.principal, f"/v1/account-books/{t.book}/write-offs", body)
        t.secrets.add(filed["write_off_id"])
        return filed

    def write_off(self, t: Tenant) -> dict[str, Any]:
        """One write-off of `t` for the reads (made on first use)."""
        if t.label not in self.write_offs:
            self.write_offs[t.label] = self.fresh_write_off(t)
        return self.write_offs[t.label]

    def fresh_shortage(self, t: Tenant) -> str:
        """A stocktake shortage in `t`'s home book flagged on its lot (3 of a lot of 10
        laptops: 30% of the lot, ~1,350 CNY of VAT): the bill of its liability."""
        d = self.fresh_declaration(t, "released_in")
        moved = self.write(t.operator, "/v1/movements", gate(d, "gate_in", "10"))
        t.learn(moved)
        lot = moved["lots"][0]["lot_id"]
        body = {
            "kind": "adjustment",
            "account_book": t.book,
            "item_no": 1,
            "quantity_delta": "-3",
            "lot_id": lot,
            "reason": "stocktake: three missing",
        }
        short = self.write(t.principal, "/v1/movements", body)
        assert short["flagged"] is True, short
        t.learn(short)
        r = self.ledger.client.get(
            "/v1/tax-bills", params={"limit": 1000}, headers=self.headers("admin")
        )
        (bill,) = [b for b in r.json()["items"] if b["subject_ref"] == short["movement_id"]]
        return str(bill["bill_id"])

    def fresh_subscription(self, t: Tenant) -> dict[str, Any]:
        """A webhook subscription of `t`'s to a loopback port nothing listens on (allowlisted
        in the matrix's server: it is made, and its deliveries fail quietly)."""
        body = {"url": "http://127.0.0.1:9/receipts", "events": ["declaration.*"]}
        made = self.write(t.principal, "/v1/subscriptions", body)
        t.secrets.add(made["id"])
        return made

    def subscription(self, t: Tenant) -> dict[str, Any]:
        """One subscription of `t` for the reads (made on first use)."""
        key = f"subscription-{t.label}"
        if key not in self.write_offs:
            self.write_offs[key] = self.fresh_subscription(t)
        return self.write_offs[key]

    def collection_permitted(self, t: Tenant) -> bool:
        """Whether `t`'s book may collect then declare, as an officer reads it."""
        r = self.ledger.client.get(
            f"/v1/account-books/{t.book}/collection-permission", headers=self.headers("officer")
        )
        assert r.status_code == 200, r.text
        return bool(r.json()["permitted"])

    def fresh_pass(self, t: Tenant) -> dict[str, Any]:
        """A gate pass of `t`, filed and waiting for its passage."""
        d = self.fresh_declaration(t, "released_in")
        filed = self.write(t.principal, "/v1/gate-passes", self.pass_body(t, d["checklist_no"]))
        t.learn(filed)
        return filed

    def retail_parcel(self, t: Tenant) -> dict[str, Any]:
        """A 9610 parcel of one CNY 400.00 laptop to `t`'s home zone, its tax paid: released."""
        order_no = f"MTX{self.next()}"
        buyer = make_resident_id(77)
        body = self.declaration(
            t,
            flow="direct_in",
            trade_mode="9610",
            currency="CNY",
            incoterm="DAP",
            freight=None,
            insurance=None,
            lines=[line(1, quantity="1", unit_price="400.00")],
            ecommerce={
                "order": {
                    "order_no": order_no,
                    "buyer_id": buyer,
                    "buyer_name": "Matrix Buyer",
                    "amount": "400.00",
                },
                "payment": {"payment_no": f"PAY-{order_no}", "payer_id": buyer, "amount": "400.00"},
                "waybill": {"waybill_no": f"WB-{order_no}", "consignee_id": buyer},
            },
        )
        del body["account_book"]
        d = self.write(t.principal, "/v1/declarations", body)
        paid = {"amount": d["duties"]["outstanding"], "currency": "CNY", "reference": order_no}
        d = self.write(t.principal, f"/v1/declarations/{d['id']}/payments", paid, status=200)
        assert d["status"] == "released", d
        t.learn(d)
        return d

    def transfer(self, t: Tenant, src: str, src_book: str, dst: str, dst_book: str) -> Any:
        return self.declare(
            t,
            "released",
            zone=src,
            account_book=src_book,
            flow="transfer",
            trade_mode="5034",
            country="CN",
            destination_zone=dst,
            destination_account_book=dst_book,
            lines=[{**line(1, quantity="1"), "origin_country": None}],
        )

    def incoming(self, t: Tenant) -> dict[str, Any]:
        """A transfer of one laptop from C's book into `t`'s home book, awaiting `t`'s
        acceptance (`t` learns it: it is `t`'s to see, never the other tenant's)."""
        c = self.c
        assert c is not None
        body = self.declaration(
            c,
            flow="transfer",
            trade_mode="5034",
            country="CN",
            destination_zone=t.zone,
            destination_account_book=t.book,
            lines=[{**line(1, quantity="1"), "origin_country": None}],
        )
        d = self.write(c.principal, "/v1/declarations", body)
        assert d["status"] == "awaiting_acceptance", d
        t.learn(d)
        return d

    def foreign_transfer(self, own: Tenant, other: Tenant, destination_item_no: int) -> Any:
        """The body of `own`'s transfer from its home book into `other`'s home book, whose
        line names a destination item that does not fit there."""
        return self.declaration(
            own,
            flow="transfer",
            trade_mode="5034",
            country="CN",
            destination_zone=other.zone,
            destination_account_book=other.book,
            lines=[
                {
                    **line(1, quantity="1"),
                    "origin_country": None,
                    "destination_item_no": destination_item_no,
                }
            ],
        )

    def fresh_enterprise(self) -> str:
        """A newly registered enterprise (for the credit-class route)."""
        code = make_uscc(8_000_000 + self.next())
        self.write("admin", "/v1/enterprises", enterprise_body(code, "Matrix Spare Co."))
        return code


def gate(declaration: dict[str, Any], kind: str, quantity: str = "1", **extra: Any) -> Any:
    """A gate or transfer movement of line 1 of a declaration."""
    lines = [{"line_no": 1, "quantity": quantity}]
    return {"kind": kind, "declaration": declaration["id"], "lines": lines, **extra}


def seed(ledger: Ledger) -> World:
    """Build the world: keys, both tenants and everything they have."""
    for zone, name in ((ZONE_X, "operator_X"), (ZONE_Y, "operator_Y")):
        ledger.issue(name, "operator", zone=zone)
    for zone in ("XABZ", "XXLC"):
        ledger.issue(f"gate-{zone}", "operator", zone=zone)
    a = _tenant(ledger, "A", 7_100_001, ZONE_X, "XABZ", "operator_X", "TGHU1234567", "rail")
    b = _tenant(ledger, "B", 7_200_002, ZONE_Y, "XXLC", "operator_Y", "MSKU7654328", "road")
    world = World(ledger=ledger, a=a, b=b, revoked={})
    for t in world.tenants:
        _fill(world, t)
    world.c = _sender(world)
    # A revoked key of every role (bound to A and to zone X), each revoked through the key
    # store itself, as `customs-ledger keys revoke` does.
    for role in ROLES:
        name = f"revoked-{role}"
        bound = {"enterprise": {"enterprise": a.uscc}, "operator": {"zone": ZONE_X}}.get(role, {})
        ledger.issue(name, role, **bound)
        ledger.services.keys.revoke(name)
        world.revoked[role] = name
    return world


def _tenant(
    ledger: Ledger,
    label: str,
    serial: int,
    zone: str,
    partner: str,
    operator: str,
    container: str,
    mode: str,
) -> Tenant:
    uscc = make_uscc(serial)
    t = Tenant(
        label=label,
        uscc=uscc,
        name=f"Matrix Trading {label} Co., Ltd.",
        zone=zone,
        partner=partner,
        book=f"MTX-{label}-{zone}",
        partner_book=f"MTX-{label}-{partner}",
        principal=f"enterprise_{label}",
        operator=operator,
        transport={"mode": mode, "reference": f"MATRIX-{label}-TRAIN", "container": container},
        bom_ref=f"BOM-MATRIX-{label}",
    )
    t.secrets |= {uscc, t.name, t.transport["reference"], container}
    ledger.issue(t.principal, "enterprise", enterprise=uscc)
    return t


def _fill(world: World, t: Tenant) -> None:
    """Everything a tenant has: books, stock, a BOM, declarations in several states,
    movements of every kind and their lots."""
    w = world
    w.write("admin", "/v1/enterprises", enterprise_body(t.uscc, t.name))
    for book, zone in ((t.book, t.zone), (t.partner_book, t.partner), (t.side_book, t.zone)):
        t.learn(w.write("admin", "/v1/account-books", book_body(book, t.uscc, zone)))
    bom = {
        "bom_ref": t.bom_ref,
        "output_item_no": 2,
        "inputs": [{"item_no": 1, "net_consumption": "1", "loss_rate": "0"}],
    }
    t.learn(w.write(t.principal, f"/v1/account-books/{t.book}/boms", bom))
    # Stock at home and in the partner zone, and goods of the shared train.
    arrival = w.declare(t, "released", lines=[line(1, quantity="1000")])
    note = f"GN-MATRIX-{t.label}-1"
    t.movements["gate_in"] = w.write(
        t.operator, "/v1/movements", gate(arrival, "gate_in", "1000", gate_note=note)
    )
    t.secrets.add(note)
    t.declarations["arrival"] = arrival
    t.gate_pass = w.fresh_pass(t)
    there = w.declare(
        t, "released", zone=t.partner, account_book=t.partner_book, lines=[line(1, quantity="500")]
    )
    t.movements["partner_gate_in"] = w.write(
        f"gate-{t.partner}", "/v1/movements", gate(there, "gate_in", "500")
    )
    shared = w.declare(
        t, "released", transport={"mode": "rail", "reference": SHARED_TRAIN}, lines=[line(2)]
    )
    t.movements["shared_gate_in"] = w.write(t.operator, "/v1/movements", gate(shared, "gate_in"))
    # Declarations waiting for each decision, and final ones.
    for state in ("document_review", "inspection", "awaiting_payment"):
        t.declarations[state] = w.fresh_declaration(t, state)
    withdrawn = w.fresh_declaration(t, "document_review")
    w.write(t.principal, f"/v1/declarations/{withdrawn['id']}/withdrawal", {"reason": "x"}, 200)
    rejected = w.fresh_declaration(t, "inspection")
    w.write("officer", f"/v1/declarations/{rejected['id']}/rejection", {"reason": "y"}, 200)
    # A transfer there and back, processing, a stocktake and an exit.
    out = w.fresh_declaration(t, "transfer_out")
    t.movements["transfer_dispatch"] = w.write(
        t.operator, "/v1/movements", gate(out, "transfer_dispatch")
    )
    t.movements["transfer_receipt"] = w.write(
        f"gate-{t.partner}", "/v1/movements", gate(out, "transfer_receipt")
    )
    back = w.fresh_declaration(t, "transfer_in")  # dispatched from the partner zone
    t.movements["transfer_back"] = w.write(
        t.operator, "/v1/movements", gate(back, "transfer_receipt")
    )
    t.movements["processing"] = w.write(t.principal, "/v1/movements", processing(t))
    t.movements["adjustment"] = w.write(t.principal, "/v1/movements", adjustment(t.book))
    moving = w.fresh_in_zone_transfer(t)["checklist_no"]
    t.movements["in_zone_transfer"] = w.write(
        t.principal, "/v1/movements", {"kind": "in_zone_transfer", "checklist": moving}
    )
    exit_ = w.fresh_declaration(t, "released_out")
    t.movements["gate_out"] = w.write(t.operator, "/v1/movements", gate(exit_, "gate_out"))
    for m in t.movements.values():
        t.learn(m)


def _sender(world: World) -> Tenant:
    """Enterprise C: a book in XEPZ with plenty of laptops, for transfers into A and B."""
    ledger, zone = world.ledger, "XEPZ"
    ledger.issue(f"gate-{zone}", "operator", zone=zone)
    c = Tenant(
        label="C",
        uscc=make_uscc(7_300_003),
        name="Matrix Sender C Co., Ltd.",
        zone=zone,
        partner=zone,
        book=f"MTX-C-{zone}",
        partner_book=f"MTX-C-{zone}",
        principal="enterprise_C",
        operator=f"gate-{zone}",
        # No container: A's and B's containers are their secrets, and C's papers are shown
        # to them.
        transport={"mode": "road", "reference": "MATRIX-C-TRUCK"},
        bom_ref="",
    )
    ledger.issue(c.principal, "enterprise", enterprise=c.uscc)
    world.write("admin", "/v1/enterprises", enterprise_body(c.uscc, c.name))
    world.write("admin", "/v1/account-books", book_body(c.book, c.uscc, zone))
    # A new item's first declaration worth over CNY 10 million: an officer releases it after
    # document review (domain/value_checks.py).
    arrival = world.declare(c, "document_review", lines=[line(1, quantity="100000")])
    world.write("officer", f"/v1/declarations/{arrival['id']}/release", {}, 200)
    world.write(c.operator, "/v1/movements", gate(arrival, "gate_in", "100000"))
    return c


def processing(t: Tenant) -> dict[str, Any]:
    """One laptop made into a kilogram of item 2, by the BOM, in the tenant's home zone."""
    return {
        "kind": "processing",
        "zone": t.zone,
        "account_book": t.book,
        "inputs": [{"item_no": 1, "quantity": "1"}],
        "outputs": [{"item_no": 2, "quantity": "1"}],
        "bom_ref": t.bom_ref,
    }


def adjustment(book: str) -> dict[str, Any]:
    """A stocktake surplus: a new lot, no stock needed."""
    return {
        "kind": "adjustment",
        "account_book": book,
        "item_no": 2,
        "quantity_delta": "1",
        "reason": "stocktake surplus",
    }
