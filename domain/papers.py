"""The papers a movement names, as its caller may see them, and what every movement decision
is given: its body, its stream id, who records it and the zones."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Generic, TypeVar
from uuid import UUID

from domain import values
from domain.account_book import AccountBook, account_book_id
from domain.declaration import Declaration, DeclaredLine
from domain.duties import DutyTables
from domain.errors import Conflict, ValidationFailed
from domain.events import Actor, Pending
from domain.movements import GateBody, ItemStock, item_stock_id
from domain.reference import Zone
from domain.scope import Scope
from domain.unit_of_work import UnitOfWork
from domain.values import Problems

C = TypeVar("C")


@dataclass(frozen=True)
class MovementRequest(Generic[C]):
    """A movement to decide: the body, the movement's stream (from the principal and the
    Idempotency-Key), who records it and the zones with their permits."""

    cmd: C
    movement_id: UUID
    actor: Actor
    zones: Mapping[str, Zone]
    # Set when a gate pass's passage records the movement (domain/gate_passes.py).
    gate_pass: str | None = None
    # The configured duty tables (published tables are read in the decision): a stocktake
    # shortage is judged on the duty it would bear (domain/stocktake.py).
    duties: DutyTables | None = None

    @property
    def scope(self) -> Scope:
        return Scope.of(self.actor)


def declaration_for(uow: UnitOfWork, ref: str, scope: Scope) -> Pending[Declaration]:
    """The declaration a gate movement names. Unknown, or not visible to this caller (another
    zone's operator; a transfer is seen from either end): the same 422, which never reveals
    that it exists."""
    stream = uow.declaration_id(ref)
    declaration = uow.pending(stream, Declaration) if stream else None
    state = declaration.state if declaration is not None else None
    if declaration is None or state is None:
        raise ValidationFailed.at("$.declaration", "no such declaration")
    if not scope.sees_zone(state.facts.zone, state.facts.destination_zone):
        raise ValidationFailed.at("$.declaration", "no such declaration")
    return declaration


def own_book(uow: UnitOfWork, book_no: str, scope: Scope) -> AccountBook:
    """The caller's own book named in a body; anyone else's is the same 422 as unknown."""
    book = uow.load(account_book_id(book_no), AccountBook)
    if book is None or book.enterprise != scope.enterprise:
        raise ValidationFailed.at("$.account_book", "no such account book of yours")
    return book


def check_lines(
    cmd: GateBody, declaration: Declaration, *, within_declared: bool = True
) -> dict[int, Decimal]:
    """A gate movement's lines against its declaration: each quantity valid and within what
    the line still covers; returns the quantity per line."""
    f = declaration.facts
    p = Problems()
    if not cmd.lines:
        p.add("$.lines", "name at least one line")
    by_no: dict[int, DeclaredLine] = {line.line_no: line for line in f.lines}
    quantities: dict[int, Decimal] = {}
    for n, line in enumerate(cmd.lines):
        at = f"$.lines[{n}]"
        declared = by_no.get(line.line_no)
        if declared is None:
            p.add(f"{at}.line_no", f"the declaration has no line {line.line_no}")
            continue
        if line.line_no in quantities:
            p.add(f"{at}.line_no", f"line {line.line_no} is listed twice")
            continue
        q = p.check(f"{at}.quantity", values.quantity, line.quantity, declared.unit)
        if q is not None:
            quantities[line.line_no] = q
    for name in ("gate_note", "vehicle"):
        if getattr(cmd, name) is not None:
            p.check(f"$.{name}", values.text, getattr(cmd, name))
    if cmd.container is not None:
        p.check("$.container", values.container_no, cmd.container)
    p.raise_if_any()
    for line_no, q in quantities.items() if within_declared else ():
        declared = by_no[line_no]
        remaining = declared.quantity - declared.quantity_moved
        if q > remaining:
            raise Conflict(
                f"line {line_no} covers {declared.quantity}, {declared.quantity_moved} already "
                f"moved: {q} is more than the {remaining} it still covers",
                rule="exceeds_declared_quantity",
            )
    return quantities


def line_stocks(
    uow: UnitOfWork, declaration: Declaration, quantities: Mapping[int, Decimal]
) -> dict[int, Pending[ItemStock]]:
    """The stock of each item the moved lines name, in the declaration's own book, by item."""
    by_no = {line.line_no: line for line in declaration.facts.lines}
    book = declaration.facts.book
    return {
        by_no[n].item_no: uow.pending(item_stock_id(book, by_no[n].item_no), ItemStock)
        for n in quantities
    }
