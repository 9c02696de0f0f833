"""Enter first, declare later (先入区后报关): goods with their manifest pass the gate on an
approved `enter_first` checklist, and their declaration follows.

- **Passage** (a gate pass carrying the checklist, domain/gate_passes.py): each carried line
  becomes a bonded lot in the book (a `gate_in` movement without a declaration, naming the
  checklist and the pass), and the item's stock holds the goods for their declaration
  (`GoodsHeldForDeclaration`, part of `pending_out`): no outbound declaration may reserve them
  (409 `declaration_pending`) until they are declared. The first passage starts the deadline,
  `declaration_due_by` = its time + DECLARATION_DAYS; undeclared after it, the checklist is
  `overdue` (GET /v1/checklists?overdue=true lists them for officers).
- **The declaration that follows** is a `first_line_in` naming the checklist (`checklist`):
  the declarant's own, of the same book, with goods passed and not yet declared, and lines
  that declare, per item, exactly what passed (422 otherwise). Its submission records
  `ChecklistNamed`; when it is released, one write declares the checklist
  (`ChecklistDeclared`), lets go of the holds (`ReservationReleased`) and marks the
  declaration's lines as moved (`GoodsMoved`, by the checklist's last passage): its goods are
  in the zone already, so no gate_in may admit them again.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import msgspec

from domain.declaration import Declaration, DeclarationLine
from domain.documents import stream_of
from domain.errors import Conflict, FieldError, ValidationFailed
from domain.events import DomainEvent, Pending
from domain.exits import StockReserved
from domain.movements import (
    GoodsMoved,
    ItemStock,
    Lot,
    MovementState,
    MovementView,
    Paper,
    item_stock_id,
    lot_id,
    new_lot_in_stock,
)
from domain.standalone_checklists import (
    Checklist,
    ChecklistDeclared,
    is_overdue,
    record_passage,
)
from domain.unit_of_work import UnitOfWork


class GoodsHeldForDeclaration(StockReserved, frozen=True, kw_only=True):
    """Goods that entered first wait for their declaration: reserved for the checklist
    (`declaration_id` names the checklist's stream), and counted as held."""

    def apply(self, state: ItemStock) -> ItemStock:
        reserved = super().apply(state)
        held = dict(state.held)
        held[self.declaration_id] = held.get(self.declaration_id, Decimal(0)) + self.quantity
        return msgspec.structs.replace(reserved, held=held)


class ReservationReleased(DomainEvent, frozen=True, kw_only=True):
    """What a holder (a checklist) kept of the item is let go: its goods were declared."""

    declaration_id: UUID
    quantity: Decimal
    goods_status: str

    def apply(self, state: ItemStock) -> ItemStock:
        reserved = dict(state.reserved)
        held = dict(state.held)
        key = self.declaration_id
        left = reserved[key].quantity - self.quantity
        if left > 0:
            reserved[key] = msgspec.structs.replace(reserved[key], quantity=left)
        else:
            reserved.pop(key)
        rest = held.get(key, Decimal(0)) - self.quantity
        if rest > 0:
            held[key] = rest
        else:
            held.pop(key, None)
        return msgspec.structs.replace(
            state, version=self.originator_version, reserved=reserved, held=held
        )


class ChecklistNamed(DomainEvent, frozen=True, kw_only=True):
    """A declaration names the checklist whose goods entered first (at its submission)."""

    checklist_no: str

    def apply(self, state: Declaration) -> Declaration:
        return msgspec.structs.replace(
            state, version=self.originator_version, checklist_no=self.checklist_no
        )


def overdue_in(
    stocks: Iterable[ItemStock], load: Callable[[UUID], Checklist | None], now: datetime
) -> list[str]:
    """The book's flag: the enter_first checklists whose goods its items hold undeclared past
    their deadline (an item's stock knows the checklists it holds goods for)."""
    holders = {holder for stock in stocks for holder in stock.held}
    found = [load(holder) for holder in holders]
    return sorted(c.checklist_no for c in found if c is not None and is_overdue(c, now))


# -- the passage ---------------------------------------------------------------------------------


def admit(
    uow: UnitOfWork,
    checklist: Pending[Checklist],
    quantities: dict[int, Decimal],
    *,
    movement_id: UUID,
    pass_no: str,
    vehicle: str,
    actor: object,
    occurred_at: datetime,
) -> tuple[Pending[MovementState], list[Pending[Any]], MovementView]:
    """Goods of an approved enter_first checklist pass the gate: one lot per line, the stock
    holds them for their declaration, the checklist counts what passed."""
    c = checklist.current
    movement = uow.new(movement_id, MovementState)
    documents = [Paper("checklist", c.checklist_no, c.checklist_no)]
    documents.append(Paper("gate_pass", pass_no, pass_no))
    common: dict[str, Any] = {"actor": actor, "occurred_at": occurred_at}
    by_no = {line.line_no: line for line in c.lines}
    stocks: dict[int, Pending[ItemStock]] = {}
    lots: list[Pending[Lot]] = []
    created = []
    held: dict[int, Decimal] = defaultdict(Decimal)
    for line_no, quantity in quantities.items():
        item_no = by_no[line_no].item_no
        stock = stocks.get(item_no)
        if stock is None:
            stock = stocks[item_no] = uow.pending(item_stock_id(c.account_book, item_no), ItemStock)
        lot = uow.new(lot_id(movement_id, line_no), Lot)
        lots.append(lot)
        created.append(
            new_lot_in_stock(
                lot,
                stock,
                zone=c.zone,
                book_no=c.account_book,
                item_no=item_no,
                goods_status="bonded",
                quantity=quantity,
                parents={},
                documents=documents,
                movement_id=movement_id,
                **common,
            )
        )
        held[item_no] += quantity
    for item_no, quantity in held.items():
        stocks[item_no].record(
            GoodsHeldForDeclaration,
            declaration_id=checklist.id,
            quantity=quantity,
            goods_status="bonded",
            **common,
        )
    view = record_passage(
        checklist,
        movement,
        kind="gate_in",
        lots=created,
        quantities=quantities,
        pass_no=pass_no,
        vehicle=vehicle,
        common=common,
    )
    return movement, [checklist, *stocks.values(), *lots], view


# -- the declaration that follows -----------------------------------------------------------------


def named_checklist(uow: UnitOfWork, number: str) -> Pending[Checklist] | None:
    """The checklist filed on its own that `number` names, read for the decision."""
    document = stream_of(uow, number, "checklist")
    if document is None or uow.load(document, Checklist) is None:
        return None
    found = uow.pending(document, Checklist)
    return found if found.current.checklist_no == number else None


def check_naming(
    uow: UnitOfWork,
    number: str,
    *,
    flow: str,
    declarant: str,
    book: str | None,
    lines: list[DeclarationLine],
) -> None:
    """A declaration naming an enter_first checklist: the rules of the module docstring."""
    loc = "$.checklist"
    if flow != "first_line_in":
        raise ValidationFailed.at(loc, "only a first_line_in declares goods that entered first")
    found = named_checklist(uow, number)
    c = found.current if found is not None else None
    if c is None or c.enterprise != declarant or c.kind != "enter_first":
        raise ValidationFailed.at(loc, "no such enter_first checklist of yours")
    if c.account_book != book:
        raise ValidationFailed.at(loc, f"checklist {number} moved goods into {c.account_book}")
    if c.declaration is not None:
        raise Conflict(
            f"checklist {number} is declared already by {c.declaration_no}",
            rule="already_declared",
        )
    passed: dict[int, Decimal] = defaultdict(Decimal)
    for line in c.lines:
        passed[line.item_no] += line.passed
    if not any(passed.values()):
        raise Conflict(
            f"nothing of checklist {number} has passed the gate yet", rule="nothing_passed"
        )
    declared: dict[int, Decimal] = defaultdict(Decimal)
    for body_line in lines:
        declared[body_line.item_no] += body_line.quantity
    wrong = sorted(i for i in set(passed) | set(declared) if passed[i] != declared[i])
    if wrong:  # one error per item that differs, each a whole message
        raise ValidationFailed(
            [
                FieldError(
                    "$.lines",
                    f"declare what entered under {number}: item {i}: {passed[i]} passed,"
                    f" {declared[i]} declared",
                )
                for i in wrong
            ]
        )


def declare_on_release(
    uow: UnitOfWork,
    status_before: str | None,
    declaration: Pending[Declaration],
    actor: object,
    now: datetime,
) -> list[Pending[Any]]:
    """A declaration naming an enter_first checklist enters `released`: the checklist is
    declared, its holds let go and the declaration's lines moved - in the releasing write."""
    d = declaration.state
    assert d is not None
    if d.status != "released" or status_before == "released" or d.checklist_no is None:
        return []
    found = named_checklist(uow, d.checklist_no)
    if found is None:  # a checklist the declaration filed itself (domain/checklists.py)
        return []
    c = found.current
    if c.declaration is not None:
        raise Conflict(
            f"checklist {c.checklist_no} is declared already by {c.declaration_no}",
            rule="already_declared",
            current_status=status_before,
        )
    common: dict[str, Any] = {"actor": actor, "occurred_at": now}
    found.record(
        ChecklistDeclared, declaration_id=d.id, declaration_no=d.facts.declaration_no, **common
    )
    stocks = []
    for item_no in sorted({line.item_no for line in c.lines if line.passed}):
        stock = uow.pending(item_stock_id(c.account_book, item_no), ItemStock)
        held = stock.state.held.get(found.id, Decimal(0)) if stock.state else Decimal(0)
        if held:
            stock.record(
                ReservationReleased,
                declaration_id=found.id,
                quantity=held,
                goods_status="bonded",
                **common,
            )
            stocks.append(stock)
    declaration.record(
        GoodsMoved,
        movement_id=c.movements[-1],
        quantities={line.line_no: line.quantity for line in d.facts.lines},
        **common,
    )
    return [found, *stocks]
