"""Collect then declare (分送集报): bonded goods leave the zone for domestic buyers in batches
and are declared together after the month they left in.

- **Permission.** An officer permits it per account book, or withdraws the permission
  (`CollectionPermitted` / `CollectionRevoked` on the book's stream). Filing a `collected`
  checklist for a book without it is 409 `collection_not_permitted`.
- **Filing pre-decreases the book** (GACC Announcement 2018 No. 23), as for every outbound
  checklist filed on its own (domain/outbound_checklists.py): the checklist reserves its
  quantities in the filing write; rejection or withdrawal gives them back.
- **Passage** (an `out` gate pass carrying the approved checklist, domain/passage.py): the
  goods leave under no declaration yet - a `gate_out` movement naming the checklist and the
  pass, lots drawn first-in first-out, the reservation turned into a decrease (`GoodsExited`).
  The first passage fixes the checklist's collection period, the calendar month (China time)
  it falls in, and its deadline: the period's end + COLLECTION_DAYS. Its goods leave within
  that period: a passage after it is 409 `collection_period_ended` (a new month's goods go on a
  new checklist). Undeclared after the deadline, the checklist is `overdue`
  (`GET /v1/checklists?kind=collected&overdue=true` lists them for officers, with their period).
- **The consolidated declaration** is a `second_line_out` naming the checklists
  (`collected_checklists`): the declarant's own, of its book and of one period, with goods
  passed and not declared yet; one line per item, declaring exactly what left (422 otherwise).
  It is assessed at the rates in force on the days the goods left: China's exchange rates are
  set per month, and a period is one month, so they are those of every exit day; and all goods
  of a checklist leave under one tariff - a passage after a new tariff took effect is 409
  `tariff_changed` (those goods go on a new collected checklist) - so assessing on the last
  exit day applies the tariff of every exit day. A declaration naming checklists whose goods
  left under different tariffs is refused (422 at `$.collected_checklists`): each tariff's
  checklists are declared on a declaration of their own. When it is
  released, one write declares each checklist (`ChecklistDeclared`, which closes it), gives
  back what did not leave (`ReservationReleased`) and marks its lines as moved (`GoodsMoved`):
  no gate_out may move them again, and the release reserves nothing.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import msgspec

from domain import standalone_checklists as sc
from domain import values
from domain.account_book import AccountBook, account_book_id, visible_book
from domain.declaration import SHANGHAI, Declaration, DeclarationLine, Str255
from domain.duties import DutyTables
from domain.enter_first import named_checklist
from domain.errors import Conflict, FieldError, ValidationFailed
from domain.events import Actor, DomainEvent, Pending
from domain.exits import GoodsExited
from domain.movements import (
    GoodsMoved,
    ItemStock,
    Lot,
    LotView,
    MovementState,
    MovementView,
    item_stock_id,
)
from domain.outbound_checklists import draw_held, give_back
from domain.reference_data import ReferenceRegister, register_id
from domain.scope import Scope
from domain.unit_of_work import Decision, LazyPendings, UnitOfWork
from domain.values import Problems

# -- permission ------------------------------------------------------------------------------


class DecideCollection(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Body of POST /v1/account-books/{book_no}/collection-permission (an officer)."""

    permitted: bool
    reason: Str255 | None = None


class CollectionPermissionView(msgspec.Struct, frozen=True, kw_only=True):
    account_book: str
    enterprise: str
    zone: str
    permitted: bool
    position: int | None = None


class CollectionPermitted(DomainEvent, frozen=True, kw_only=True):
    """An officer permitted the book's enterprise to collect then declare."""

    reason: str | None = None

    def apply(self, state: AccountBook) -> AccountBook:
        return msgspec.structs.replace(
            state, version=self.originator_version, collection_permitted=True
        )


class CollectionRevoked(DomainEvent, frozen=True, kw_only=True):
    """An officer withdrew the permission; checklists filed before keep their course."""

    reason: str

    def apply(self, state: AccountBook) -> AccountBook:
        return msgspec.structs.replace(
            state, version=self.originator_version, collection_permitted=False
        )


def permission_view(book: AccountBook, position: int | None = None) -> CollectionPermissionView:
    return CollectionPermissionView(
        account_book=book.book_no,
        enterprise=book.enterprise,
        zone=book.zone,
        permitted=book.collection_permitted,
        position=position,
    )


def decide_permission(
    uow: UnitOfWork, book_no: str, cmd: DecideCollection, actor: Actor, now: datetime
) -> Decision[CollectionPermissionView]:
    """Grant or withdraw (a reason required) the permission; granting a permitted book or
    withdrawing from one without it is 409 `invalid_transition`."""
    book = uow.pending(account_book_id(book_no), AccountBook)
    state = visible_book(book.state, Scope.of(actor))
    if cmd.reason is not None:
        values.text("$.reason", cmd.reason)
    if cmd.permitted == state.collection_permitted:
        now_is = "permitted" if state.collection_permitted else "not_permitted"
        raise Conflict(
            f"book {book_no} is permitted to collect then declare already"
            if state.collection_permitted
            else f"book {book_no} is not permitted to collect then declare already",
            rule="invalid_transition",
            current_status=now_is,
        )
    common: dict[str, Any] = {"actor": actor, "occurred_at": now}
    if cmd.permitted:
        book.record(CollectionPermitted, reason=cmd.reason, **common)
    else:
        if not cmd.reason:
            raise ValidationFailed.at("$.reason", "withdrawing a permission states its reason")
        book.record(CollectionRevoked, reason=cmd.reason, **common)
    return Decision([book], permission_view(book.current))


# -- the passage ---------------------------------------------------------------------------------


def dispatch(
    uow: UnitOfWork,
    checklist: Pending[sc.Checklist],
    quantities: dict[int, Decimal],
    *,
    movement_id: UUID,
    pass_no: str,
    vehicle: str,
    actor: object,
    occurred_at: datetime,
) -> tuple[Pending[MovementState], list[Pending[Any]], MovementView]:
    """Goods of an approved collected checklist leave through the gate: lots drawn first-in
    first-out from what the checklist reserved, the checklist counts what passed."""
    c = checklist.current
    if c.period is not None and sc.period_of(occurred_at) != c.period:
        raise Conflict(
            f"checklist {c.checklist_no} collects the goods leaving in {c.period}; goods "
            f"leaving in {sc.period_of(occurred_at)} go on a collected checklist of their own",
            rule="collection_period_ended",
        )
    tariff_from = tariff_in_force(uow, occurred_at)
    first = c.first_passed_at
    # (A checklist first passed before the tariff was recorded on passages: the one of then.)
    first_tariff = c.tariff_from or (tariff_in_force(uow, first) if first else None)
    if first is not None and tariff_from != first_tariff:
        raise Conflict(
            f"a new tariff (in force from {tariff_from}) took effect after goods of checklist "
            f"{c.checklist_no} first left (under the tariff from {first_tariff}): goods leaving "
            "now go on a collected checklist of their own, so that each is assessed at the "
            "rates of the days its goods left",
            rule="tariff_changed",
        )
    movement = uow.new(movement_id, MovementState)
    common: dict[str, Any] = {"actor": actor, "occurred_at": occurred_at}
    by_no = {line.line_no: line for line in c.lines}
    stocks: dict[int, Pending[ItemStock]] = {}
    lots = LazyPendings(uow, Lot)
    drawn: list[LotView] = []
    for line_no, quantity in quantities.items():
        line = by_no[line_no]
        stock = stocks.get(line.item_no)
        if stock is None:
            stock_id = item_stock_id(c.account_book, line.item_no)
            stock = stocks[line.item_no] = uow.pending(stock_id, ItemStock)
        taken = draw_held(
            stock,
            lots,
            event=GoodsExited,
            holder=checklist.id,
            item_no=line.item_no,
            goods_status=line.goods_status,
            quantity=quantity,
            movement_id=movement_id,
            common=common,
        )
        drawn += [LotView(lot_id=lot, item_no=line.item_no, quantity=q) for lot, q in taken.items()]
    view = sc.record_passage(
        checklist,
        movement,
        kind="gate_out",
        lots=drawn,
        quantities=quantities,
        pass_no=pass_no,
        vehicle=vehicle,
        common=common,
        tariff_from=tariff_from,
    )
    return movement, [checklist, *stocks.values(), *lots.values()], view


def tariff_in_force(uow: UnitOfWork, moment: datetime) -> date | None:
    """The effective date of the tariff in force on a moment's China day (None: none is
    published, as on a ledger whose first start has not published its built-in tables)."""
    register = uow.load(register_id("tariff"), ReferenceRegister)
    found = register.in_force(moment.astimezone(SHANGHAI).date()) if register else None
    return found.effective_from if found is not None else None


# -- the consolidated declaration ---------------------------------------------------------------


class CollectedChecklistsNamed(DomainEvent, frozen=True, kw_only=True):
    """A declaration names the collected checklists whose goods it declares (at submission)."""

    checklists: list[str]

    def apply(self, state: Declaration) -> Declaration:
        return msgspec.structs.replace(
            state, version=self.originator_version, collected=tuple(self.checklists)
        )


def named(
    uow: UnitOfWork,
    numbers: list[str],
    *,
    flow: str,
    declarant: str,
    book: str | None,
    lines: list[DeclarationLine],
) -> list[sc.Checklist]:
    """The checklists a consolidated declaration names, checked (the module docstring)."""
    loc = "$.collected_checklists"
    if flow != "second_line_out":
        raise ValidationFailed.at(loc, "only a second_line_out declares collected goods")
    if not numbers:
        raise ValidationFailed.at(loc, "name at least one collected checklist")
    if len(set(numbers)) != len(numbers):
        raise ValidationFailed.at(loc, "a checklist is named twice")
    found = []
    for n, number in enumerate(numbers):
        pending = named_checklist(uow, number)
        c = pending.current if pending is not None else None
        if c is None or c.enterprise != declarant or c.kind != "collected":
            raise ValidationFailed.at(f"{loc}[{n}]", "no such collected checklist of yours")
        if c.account_book != book:
            raise ValidationFailed.at(f"{loc}[{n}]", f"checklist {number} is of {c.account_book}")
        if c.declaration is not None:
            raise Conflict(
                f"checklist {number} is declared already by {c.declaration_no}",
                rule="already_declared",
            )
        if c.period is None:
            raise Conflict(f"nothing of checklist {number} has left yet", rule="nothing_passed")
        found.append(c)
    periods = sorted({c.period for c in found if c.period is not None})
    if len(periods) > 1:
        raise ValidationFailed.at(
            loc, f"one declaration per collection period: these left in {', '.join(periods)}"
        )
    check_lines(found, lines)
    return found


def check_lines(found: list[sc.Checklist], lines: list[DeclarationLine]) -> None:
    """One line per item, each declaring exactly what left under the checklists."""
    p = Problems()
    seen: set[int] = set()
    for n, line in enumerate(lines):
        if line.item_no in seen:
            p.add(f"$.lines[{n}].item_no", f"item {line.item_no} is on two lines: merge them")
        seen.add(line.item_no)
        if line.goods_status not in (None, "bonded"):
            p.add(f"$.lines[{n}].goods_status", "collected goods are bonded")
    p.raise_if_any()
    passed: dict[int, Decimal] = defaultdict(Decimal)
    for c in found:
        for listed in c.lines:
            passed[listed.item_no] += listed.passed
    declared: dict[int, Decimal] = defaultdict(Decimal)
    declared.update((line.item_no, line.quantity) for line in lines)
    wrong = sorted(i for i in set(passed) | set(declared) if passed[i] != declared[i])
    if wrong:  # one error per item that differs, each a whole message
        raise ValidationFailed(
            [
                FieldError(
                    "$.lines",
                    f"declare what left on the checklists: item {i}: {passed[i]} left,"
                    f" {declared[i]} declared",
                )
                for i in wrong
            ]
        )


def assessment_day(found: list[sc.Checklist], tables: DutyTables) -> date:
    """The day whose rates assess the consolidated declaration: the last exit day, refused
    when a new tariff took effect after the first exit (the module docstring)."""
    first = min(c.first_passed_at for c in found if c.first_passed_at is not None)
    last = max(c.last_passed_at for c in found if c.last_passed_at is not None)
    first_day, last_day = first.astimezone(SHANGHAI).date(), last.astimezone(SHANGHAI).date()
    if tables.versions(first_day)["tariff"] != tables.versions(last_day)["tariff"]:
        raise ValidationFailed.at(
            "$.collected_checklists",
            f"a new tariff took effect between the first exit ({first_day}) and the last "
            f"({last_day}): declare the checklists whose goods left under each tariff on "
            "declarations of their own (a checklist's goods all leave under one tariff)",
        )
    return last_day


def declare_on_release(
    uow: UnitOfWork,
    status_before: str | None,
    declaration: Pending[Declaration],
    actor: object,
    now: datetime,
) -> list[Pending[Any]]:
    """A consolidated declaration enters `released`: each checklist declared and closed, what
    did not leave given back, the declaration's lines moved - in the releasing write."""
    d = declaration.state
    assert d is not None
    if d.status != "released" or status_before == "released" or not d.collected:
        return []
    common: dict[str, Any] = {"actor": actor, "occurred_at": now}
    touched: list[Pending[Any]] = []
    last: tuple[datetime, UUID] | None = None
    for number in d.collected:
        found = named_checklist(uow, number)
        assert found is not None  # the submission checked it; checklists are never removed
        c = found.current
        if c.declaration is not None:
            raise Conflict(
                f"checklist {number} is declared already by {c.declaration_no}",
                rule="already_declared",
                current_status=status_before,
            )
        found.record(
            sc.ChecklistDeclared,
            declaration_id=d.id,
            declaration_no=d.facts.declaration_no,
            **common,
        )
        touched += [found, *give_back(uow, found, actor, now)]
        if c.last_passed_at is not None and (last is None or c.last_passed_at >= last[0]):
            last = (c.last_passed_at, c.movements[-1])
    assert last is not None
    declaration.record(
        GoodsMoved,
        movement_id=last[1],
        quantities={line.line_no: line.quantity for line in d.facts.lines},
        **common,
    )
    return touched
