"""A tiny world for the domain-decision tests: enterprises, books, declarations and movements
decided through the in-memory unit of work (tests/memory_uow.py), at a fixed business time."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import msgspec

from domain import account_book, enterprise
from domain.assessment import ClearanceRules
from domain.clearance import decide_on_declaration
from domain.declaration import (
    Declaration,
    RecordInspection,
    ReleaseDeclaration,
    SubmitDeclaration,
    declaration_id,
)
from domain.duty_tables import DEFAULT_TABLES
from domain.events import Actor, DomainEvent
from domain.movement_kinds import MovementBody, check_recorder, spec_of
from domain.movements import (
    GateIn,
    ItemStock,
    Lot,
    MovementLine,
    MovementView,
    item_stock_id,
    movement_id,
)
from domain.papers import MovementRequest
from domain.quota import pseudonymous_quota_id
from domain.reference import DEFAULT_ZONES, Zone
from domain.risk_rules import DEFAULT_RULES
from domain.submission import Submission, decide_submission
from domain.unit_of_work import Decision
from domain.views import DeclarationView
from ledger.buyer_keys import BuyerKeys
from tests.memory_uow import MemoryUnitOfWork
from tests.samples import book_body, declaration_body, line, make_resident_id, make_uscc

D = Decimal
# November 2026: the default tables have its customs exchange rates and the 2026 tariff.
NOW = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
ZONES: dict[str, Zone] = {z.code: z for z in DEFAULT_ZONES}
# The default risk rules without random selection: each test knows its channel.
NO_DRAWS = msgspec.structs.replace(
    DEFAULT_RULES,
    seed="domain-tests",
    classes={
        name: msgspec.structs.replace(policy, selection_rate=D(0))
        for name, policy in DEFAULT_RULES.classes.items()
    },
)
RULES = ClearanceRules(risk=NO_DRAWS, duties=DEFAULT_TABLES)
ADMIN = Actor(name="admin", role="admin")
OFFICER = Actor(name="officer", role="officer")
BUYER = make_resident_id(7)
# Seals retail lists' buyers, as the ledger's key store does (in memory: a fresh master key).
VAULT = BuyerKeys.in_memory()


def buyer_quota_id(buyer: str, year: int) -> UUID:
    """A buyer's quota stream: named by its pseudonym in VAULT (domain/quota.py)."""
    return pseudonymous_quota_id(VAULT.pseudonym(buyer), year)


__all__ = ["ADMIN", "BUYER", "NOW", "OFFICER", "RULES", "ZONES", "World", "line"]


def company(uscc: str) -> Actor:
    return Actor(name=f"key-{uscc}", role="enterprise", enterprise=uscc)


def gate(zone: str) -> Actor:
    return Actor(name=f"gate-{zone}", role="operator", zone=zone)


def ecommerce(amount: str, buyer: str = BUYER) -> dict[str, Any]:
    return {
        "order": {"order_no": "O-1", "buyer_id": buyer, "buyer_name": "Li Lei", "amount": amount},
        "payment": {"payment_no": "P-1", "payer_id": buyer, "amount": amount},
        "waybill": {"waybill_no": "W-1", "consignee_id": buyer},
    }


def retail_body(uscc: str, book_no: str, amount: str, **overrides: Any) -> dict[str, Any]:
    """A bonded e-commerce retail list (1210) of one laptop at `amount` CNY."""
    body = {
        "flow": "second_line_out",
        "trade_mode": "1210",
        "currency": "CNY",
        "incoterm": "CIF",
        "freight": None,
        "insurance": None,
        "lines": [line(1, quantity="1", unit_price=amount)],
        "ecommerce": ecommerce(amount),
    } | overrides
    return declaration_body(uscc, book_no, **body)


class World:
    """The store, and the commands of a test written as domain decisions."""

    def __init__(self) -> None:
        self.uow = MemoryUnitOfWork()
        self._keys = itertools.count(1)

    def snapshot(self) -> dict[UUID, list[DomainEvent]]:
        return {s: list(events) for s, events in self.uow.streams.items()}

    def enterprise(self, serial: int, credit_class: str = "regular") -> str:
        uscc = make_uscc(serial)
        cmd = enterprise.RegisterEnterprise(
            uscc=uscc, customs_code="6101340001", name=f"Firm {serial}", credit_class=credit_class
        )
        pending = self.uow.pending(enterprise.enterprise_id(uscc), enterprise.Enterprise)
        self.uow.commit(Decision([pending], enterprise.register(pending, cmd, ADMIN, NOW)))
        return uscc

    def book(self, book_no: str, uscc: str, zone: str = "XCBZ") -> account_book.AccountBook:
        cmd = msgspec.convert(book_body(book_no, uscc, zone), account_book.OpenAccountBook)
        pending = self.uow.pending(account_book.account_book_id(book_no), account_book.AccountBook)
        return self.uow.commit(
            Decision([pending], account_book.open_book(pending, cmd, ADMIN, NOW))
        )

    def submission(
        self,
        body: dict[str, Any],
        *,
        rules: ClearanceRules = RULES,
        zones: dict[str, Zone] | None = None,
    ) -> Submission:
        cmd = msgspec.json.decode(msgspec.json.encode(body), type=SubmitDeclaration)
        return Submission(
            cmd=cmd,
            declaration_id=declaration_id("tests", f"key-{next(self._keys)}"),
            zones=ZONES if zones is None else zones,
            rules=rules,
            actor=company(cmd.declarant),
            vault=VAULT,
        )

    def submit(self, uscc: str, book_no: str, now: datetime = NOW, **body: Any) -> DeclarationView:
        """The sample declaration (tests/samples.py) with `body`'s changes, submitted."""
        return self.submit_body(declaration_body(uscc, book_no, **body), now)

    def submit_body(self, body: dict[str, Any], now: datetime = NOW) -> DeclarationView:
        return self.uow.run(decide_submission, self.submission(body), now)

    def decide(
        self, action: str, ref: object, cmd: object, actor: Actor, now: datetime = NOW
    ) -> DeclarationView:
        return self.uow.run(decide_on_declaration, action, str(ref), cmd, actor, now)

    def move(self, cmd: MovementBody, actor: Actor, now: datetime = NOW) -> MovementView:
        """Record a movement as the API does: the recorder's role, then the kind's decision."""
        spec = spec_of(cmd)
        check_recorder(spec, actor)
        req = MovementRequest(
            cmd=cmd,
            movement_id=movement_id("tests", f"move-{next(self._keys)}"),
            actor=actor,
            zones=ZONES,
            duties=RULES.duties,
        )
        decide: Callable[..., Decision[MovementView]] = spec.decide
        return self.uow.run(decide, req, now)

    def cleared(self, view: DeclarationView) -> DeclarationView:
        """The declaration released by an officer (after document review or inspection)."""
        if view.status == "inspection":
            conform = RecordInspection(result="conform", findings="as declared")
            view = self.decide("inspection", view.id, conform, OFFICER)
        if view.status == "document_review":
            view = self.decide("release", view.id, ReleaseDeclaration(), OFFICER)
        assert view.status == "released", view.status
        return view

    def admit(
        self,
        uscc: str,
        book_no: str,
        quantity: str,
        item_no: int = 1,
        *,
        flow: str = "first_line_in",
        zone: str = "XCBZ",
    ) -> UUID:
        """Goods admitted into the book through the zone's gate: the new lot's id."""
        goods = [line(item_no, quantity=quantity)]
        d = self.submit(uscc, book_no, flow=flow, zone=zone, lines=goods)
        self.cleared(d)
        moved = self.move(GateIn(declaration=str(d.id), lines=lines((1, quantity))), gate(zone))
        return moved.lots[0].lot_id

    def declaration(self, ref: object) -> Declaration:
        stream = self.uow.declaration_id(str(ref))
        state = self.uow.load(stream, Declaration) if stream else None
        assert state is not None
        return state

    def stock(self, book_no: str, item_no: int = 1) -> ItemStock:
        state = self.uow.load(item_stock_id(book_no, item_no), ItemStock)
        assert state is not None
        return state

    def lot(self, lot_id: UUID) -> Lot:
        state = self.uow.load(lot_id, Lot)
        assert state is not None
        return state

    def lots_of(self, book_no: str, item_no: int = 1) -> list[Lot]:
        found = (self.uow.load(s, Lot) for s in self.uow.streams)
        return [x for x in found if x and x.account_book == book_no and x.item_no == item_no]


def lines(*quantities: tuple[int, str]) -> list[MovementLine]:
    return [MovementLine(line_no=n, quantity=D(q)) for n, q in quantities]
