"""Checklists filed on their own (POST /v1/checklists): the enterprise files, an officer
approves or rejects, the enterprise may withdraw; gate passes carry approved ones.

Kinds: `enter_first` (先入区后报关: first-line goods arriving with their manifest enter
the zone on a gate pass before they are declared; domain/enter_first.py), `collected`
(分送集报: bonded goods leave for domestic buyers on gate passes during a month and are
declared together after it; domain/collected.py), `in_zone_transfer` (区内流转: bonded goods
pass to another book of the same zone, no declaration, no gate; domain/in_zone_transfers.py)
and `processing` (bonded materials a processing movement of the book will consume;
domain/processing.py). The outbound ones pre-decrease their book when filed
(domain/outbound_checklists.py). The kinds a declaration files (`first_line`, `second_line`,
`transfer`) come with its release (domain/checklists.py).

Status (docs/movements.md, the transitions table): `filed -> approved -> closed` (closed when
all it lists has passed the gate), `filed -> rejected` (officer), `filed | approved ->
withdrawn` (the enterprise, while nothing has passed); anything else is 409
`invalid_transition` with `current_status`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

import msgspec

from domain import values
from domain.account_book import AccountBook, account_book_id
from domain.checklists import (
    ChecklistKind,
    ChecklistStatus,
    ChecklistView,
    Direction,
    ListedLine,
)
from domain.declaration import SHANGHAI, GoodsStatus, Str64, Str255
from domain.documents import china_year, issue_number
from domain.errors import Conflict, Forbidden, NotFound, ValidationFailed
from domain.events import Actor, AggregateState, DomainEvent, Pending, stream_id
from domain.movements import LotView, MovementKind, MovementRecorded, MovementState, MovementView
from domain.reference import Zone
from domain.scope import Scope
from domain.unit_of_work import Decision, UnitOfWork
from domain.values import Problems

# How long goods that entered first may wait for their declaration, from their first passage.
# [verify: the deadline GACC sets for 先入区后报关 in the special zones; 14 days is the figure
# the issue gives as data]
DECLARATION_DAYS = 14
# How long after its collection period (a month) the consolidated declaration of a collected
# checklist may follow. [verify: GACC Order No. 169 (2008), 集中申报管理办法, has centralised
# declarations of a month filed by the 10th of the next month for general trade and by its end
# for bonded goods; the special zones' 分送集报 rule may differ]
COLLECTION_DAYS = 10
BUILT_KINDS: dict[str, Direction] = {
    "enter_first": "I",
    "collected": "E",
    "in_zone_transfer": "E",
    "processing": "E",
    "destruction": "E",
}
# Kinds whose goods stay in the zone: no gate pass carries them.
STAYS_IN_ZONE = ("in_zone_transfer", "processing", "destruction")
FILED_BY_DECLARATION = ("first_line", "second_line", "transfer")
# What each built kind says to a body that gives a declaration, and to non-bonded lines.
FOLLOWS = {
    "enter_first": "goods enter first: the declaration follows and names it",
    "collected": "goods leave first, declared together after their collection period: the"
    " declaration follows and names it",
    "in_zone_transfer": "goods passing between books of one zone need no declaration",
    "processing": "processing in the zone needs no declaration",
    "destruction": "goods destroyed under customs supervision need no declaration",
}
BONDED_ONLY = {
    "enter_first": "goods entering first from abroad are bonded",
    "collected": "collect then declare sends bonded goods into China (domestic goods need "
    "no declaration to leave)",
    "in_zone_transfer": "an in-zone transfer checklist moves bonded goods (domestic goods "
    "change hands in the zone without one)",
    "processing": "a processing checklist lists the bonded materials processing consumes",
    "destruction": "a destruction checklist lists bonded goods (domestic goods are destroyed "
    "without one)",
}


class ChecklistLineBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    item_no: int
    quantity: Decimal
    goods_status: GoodsStatus | None = None
    # in_zone_transfer: the receiving book's item (default: the same item number).
    destination_item_no: int | None = None


class FileChecklist(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Body of POST /v1/checklists (the book's enterprise)."""

    direction: Direction
    account_book: Str64
    kind: ChecklistKind
    lines: Annotated[list[ChecklistLineBody], msgspec.Meta(max_length=999)]
    declaration: Str64 | None = None
    # in_zone_transfer: the book of the zone that receives the goods.
    destination_account_book: Str64 | None = None


class DecideChecklist(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Body of the approval (`{}`), rejection and withdrawal (`{reason}`) routes."""

    reason: Str255 | None = None


class Checklist(AggregateState, frozen=True, kw_only=True):
    """A checklist filed on its own, as the write side knows it."""

    checklist_no: str
    kind: ChecklistKind
    direction: Direction
    account_book: str
    zone: str
    enterprise: str
    lines: list[ListedLine]
    status: ChecklistStatus
    filed_at: datetime
    # enter_first: by when its goods must be declared (from their first passage), and the
    # declaration that did.
    declaration_due_by: datetime | None = None
    declaration: UUID | None = None
    declaration_no: str | None = None
    reason: str | None = None
    # The gate movements that passed its goods, in order, and the first and last passage.
    movements: list[UUID] = []
    first_passed_at: datetime | None = None
    last_passed_at: datetime | None = None
    # collected: the month its goods leave in (China time, "2026-11"), and the effective date
    # of the tariff in force when they first left (domain/collected.py), from the first passage.
    period: str | None = None
    tariff_from: date | None = None
    # in_zone_transfer: the receiving book and its enterprise.
    destination_account_book: str | None = None
    destination_enterprise: str | None = None


class StandaloneChecklistFiled(DomainEvent, frozen=True, kw_only=True):
    """An enterprise filed a checklist of its own (not one a declaration filed)."""

    checklist_no: str
    kind: ChecklistKind
    direction: Direction
    account_book: str
    zone: str
    enterprise: str
    lines: list[ListedLine]
    destination_account_book: str | None = None
    destination_enterprise: str | None = None

    def apply(self, state: None) -> Checklist:
        return Checklist(
            id=self.originator_id,
            version=self.originator_version,
            checklist_no=self.checklist_no,
            kind=self.kind,
            direction=self.direction,
            account_book=self.account_book,
            zone=self.zone,
            enterprise=self.enterprise,
            lines=list(self.lines),
            status="filed",
            filed_at=self.occurred_at,
            destination_account_book=self.destination_account_book,
            destination_enterprise=self.destination_enterprise,
        )


class ChecklistApproved(DomainEvent, frozen=True, kw_only=True):
    def apply(self, state: Checklist) -> Checklist:
        return msgspec.structs.replace(state, version=self.originator_version, status="approved")


class ChecklistRejected(DomainEvent, frozen=True, kw_only=True):
    reason: str

    def apply(self, state: Checklist) -> Checklist:
        return msgspec.structs.replace(
            state, version=self.originator_version, status="rejected", reason=self.reason
        )


class ChecklistWithdrawn(DomainEvent, frozen=True, kw_only=True):
    reason: str

    def apply(self, state: Checklist) -> Checklist:
        return msgspec.structs.replace(
            state, version=self.originator_version, status="withdrawn", reason=self.reason
        )


def period_of(moment: datetime) -> str:
    """The collection period (a calendar month in China) a moment falls in."""
    return moment.astimezone(SHANGHAI).strftime("%Y-%m")


def period_end(period: str) -> datetime:
    """The first instant after a collection period (midnight China time)."""
    year, month = int(period[:4]), int(period[5:])
    year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return datetime(year, month, 1, tzinfo=SHANGHAI).astimezone(UTC)


def first_deadline(kind: str, first_passage: datetime) -> tuple[datetime | None, str | None]:
    """The declaration deadline a first passage starts, and a collected checklist's period."""
    if kind == "enter_first":
        return first_passage + timedelta(days=DECLARATION_DAYS), None
    if kind == "collected":
        period = period_of(first_passage)
        return period_end(period) + timedelta(days=COLLECTION_DAYS), period
    return None, None


class ChecklistPassed(DomainEvent, frozen=True, kw_only=True):
    """Goods of the checklist passed the gate on a pass: how much per line, by which movement.
    The first passage of an `enter_first` or `collected` checklist starts its declaration
    deadline (and fixes a collected one's period)."""

    pass_no: str
    movement_id: UUID
    quantities: dict[int, Decimal]
    # collected: the effective date of the tariff in force on the day the goods left.
    tariff_from: date | None = None

    def apply(self, state: Checklist) -> Checklist:
        lines = [
            msgspec.structs.replace(line, passed=line.passed + self.quantities.get(line.line_no, 0))
            for line in state.lines
        ]
        done = all(line.passed >= line.quantity for line in lines)
        due, period = state.declaration_due_by, state.period
        if due is None:  # the first passage (the documents view folds from its own copy)
            due, period = first_deadline(state.kind, self.occurred_at)
        return msgspec.structs.replace(
            state,
            version=self.originator_version,
            lines=lines,
            status="closed" if done else state.status,
            declaration_due_by=due,
            period=period,
            movements=[*state.movements, self.movement_id],
            first_passed_at=state.first_passed_at or self.occurred_at,
            last_passed_at=self.occurred_at,
            tariff_from=state.tariff_from or self.tariff_from,
        )


class ChecklistDeclared(DomainEvent, frozen=True, kw_only=True):
    """The declaration that names the checklist was released: its goods are declared. A
    collected checklist closes then: what did not leave was given back in the same write."""

    declaration_id: UUID
    declaration_no: str

    def apply(self, state: Checklist) -> Checklist:
        return msgspec.structs.replace(
            state,
            version=self.originator_version,
            declaration=self.declaration_id,
            declaration_no=self.declaration_no,
            status="closed" if state.kind == "collected" else state.status,
        )


def record_passage(
    checklist: Pending[Checklist],
    movement: Pending[MovementState],
    *,
    kind: MovementKind,
    lots: list[LotView],
    quantities: dict[int, Decimal],
    pass_no: str,
    vehicle: str,
    common: dict[str, Any],
    tariff_from: date | None = None,
) -> MovementView:
    """Goods of a checklist under no declaration passed the gate on a pass (entered first,
    or left collected): the checklist counts them, and the movement is recorded."""
    c = checklist.current
    checklist.record(
        ChecklistPassed,
        pass_no=pass_no,
        movement_id=movement.id,
        quantities=dict(quantities),
        tariff_from=tariff_from,
        **common,
    )
    view = MovementView(
        movement_id=movement.id,
        kind=kind,
        zone=c.zone,
        account_book=c.account_book,
        occurred_at=common["occurred_at"],
        lots=lots,
        vehicle=vehicle,
        checklist_no=c.checklist_no,
        gate_pass=pass_no,
    )
    movement.record(MovementRecorded, view=view, **common)
    return view


def view(state: Checklist, now: datetime, position: int | None = None) -> ChecklistView:
    return ChecklistView(
        checklist_no=state.checklist_no,
        kind=state.kind,
        direction=state.direction,
        status=state.status,
        account_book=state.account_book,
        zone=state.zone,
        enterprise=state.enterprise,
        lines=list(state.lines),
        filed_at=state.filed_at,
        declaration=state.declaration,
        declaration_no=state.declaration_no,
        position=position,
        declaration_due_by=state.declaration_due_by,
        overdue=is_overdue(state, now),
        reason=state.reason,
        period=state.period,
        destination_account_book=state.destination_account_book,
        destination_enterprise=state.destination_enterprise,
    )


def is_overdue(state: Checklist, now: datetime) -> bool:
    """Goods that entered first, or left on a collected checklist, still undeclared after
    their deadline."""
    due = state.declaration_due_by
    return due is not None and state.declaration is None and now >= due


def checklist_id(principal: str, idempotency_key: str) -> UUID:
    return stream_id("checklist", f"{principal}\x00{idempotency_key}")


# -- filing -------------------------------------------------------------------------------------


def check_kind(cmd: FileChecklist) -> None:
    if cmd.kind in FILED_BY_DECLARATION:
        raise ValidationFailed.at(
            "$.kind",
            f"a {cmd.kind} checklist is filed by its declaration when it is released "
            "(POST /v1/declarations answers its checklist_no)",
        )
    if cmd.kind not in BUILT_KINDS:
        raise ValidationFailed.at(
            "$.kind",
            f"{cmd.kind} checklists are not accepted yet (only {', '.join(BUILT_KINDS)})",
        )
    p = Problems()
    direction = BUILT_KINDS[cmd.kind]
    if cmd.direction != direction:
        p.add(
            "$.direction",
            f"a {cmd.kind} checklist is inbound (I)"
            if direction == "I"
            else f"a {cmd.kind} checklist is outbound (E)",
        )
    if cmd.declaration is not None:
        p.add("$.declaration", FOLLOWS[cmd.kind])
    transfer = cmd.kind == "in_zone_transfer"
    if transfer and cmd.destination_account_book is None:
        p.add("$.destination_account_book", "an in-zone transfer names the receiving book")
    if not transfer and cmd.destination_account_book is not None:
        p.add("$.destination_account_book", "only an in_zone_transfer checklist has one")
    for n, line in enumerate(cmd.lines):
        if not transfer and line.destination_item_no is not None:
            p.add(f"$.lines[{n}].destination_item_no", "only an in_zone_transfer line has one")
    p.raise_if_any()


def checked_lines(cmd: FileChecklist, book: AccountBook) -> list[ListedLine]:
    p = Problems()
    if not cmd.lines:
        p.add("$.lines", "name at least one line")
    lines = []
    for n, line in enumerate(cmd.lines):
        at = f"$.lines[{n}]"
        item = book.items.get(line.item_no)
        if item is None:
            p.add(f"{at}.item_no", f"item {line.item_no} is not registered in {book.book_no}")
            continue
        if line.goods_status not in (None, "bonded"):
            p.add(f"{at}.goods_status", BONDED_ONLY[cmd.kind])
        q = p.check(f"{at}.quantity", values.quantity, line.quantity, item.unit)
        if q is not None:
            lines.append(
                ListedLine(
                    line_no=n + 1,
                    item_no=line.item_no,
                    quantity=q,
                    unit=item.unit,
                    goods_status="bonded",
                    destination_item_no=line.destination_item_no,
                )
            )
    p.raise_if_any()
    return lines


def decide_filing(
    uow: UnitOfWork,
    cmd: FileChecklist,
    stream: UUID,
    zones: dict[str, Zone],
    actor: Actor,
    now: datetime,
    destination: AccountBook | None = None,
) -> Decision[ChecklistView]:
    """File a checklist of the caller's own book: its number and content, one write (an
    in-zone transfer's `destination` book checked by the caller,
    domain/outbound_checklists.py)."""
    check_kind(cmd)
    book = uow.load(account_book_id(cmd.account_book), AccountBook)
    if book is None or not Scope.of(actor).owns(book.enterprise):
        raise ValidationFailed.at("$.account_book", "no such account book of yours")
    lines = checked_lines(cmd, book)
    office, year = zones[book.zone].customs_office, china_year(now)
    where = (office, year, cmd.direction)
    number, numbered = issue_number(uow, "checklist", where, stream, actor, now)
    checklist = uow.new(stream, Checklist)
    common: dict[str, Any] = {"actor": actor, "occurred_at": now}
    checklist.record(
        StandaloneChecklistFiled,
        checklist_no=number,
        kind=cmd.kind,
        direction=cmd.direction,
        account_book=book.book_no,
        zone=book.zone,
        enterprise=book.enterprise,
        lines=lines,
        destination_account_book=destination.book_no if destination else None,
        destination_enterprise=destination.enterprise if destination else None,
        **common,
    )
    return Decision([*numbered, checklist], view(checklist.current, now))


# -- decisions on a filed checklist ---------------------------------------------------------------

# action -> the statuses it may start from (who may take it is the route's: officers approve
# and reject, the enterprise withdraws; api/routes/documents.py).
TRANSITIONS: dict[str, tuple[ChecklistStatus, ...]] = {
    "approval": ("filed",),
    "rejection": ("filed",),
    "withdrawal": ("filed", "approved"),
}
# 409 to a decision the checklist's status (`{status}`, its code) does not take; an approved
# one says that goods have passed the gate under it.
CANNOT_MESSAGES = {
    "approval": "a {status} checklist cannot take an approval",
    "rejection": "a {status} checklist cannot take a rejection",
    "withdrawal": "a {status} checklist cannot take a withdrawal",
    "approval_passed": "a {status} checklist cannot take an approval (goods have passed the"
    " gate under it)",
    "rejection_passed": "a {status} checklist cannot take a rejection (goods have passed the"
    " gate under it)",
    "withdrawal_passed": "a {status} checklist cannot take a withdrawal (goods have passed the"
    " gate under it)",
}


def sees(scope: Scope, state: Checklist) -> bool:
    """Its enterprise (and an in-zone transfer's receiving one), its zone's operators,
    officers and auditors."""
    if scope.role == "enterprise":
        return scope.enterprise in (state.enterprise, state.destination_enterprise)
    return scope.sees_zone(state.zone)


def decide_on_checklist(
    uow: UnitOfWork,
    checklist: Pending[Checklist],
    action: str,
    cmd: DecideChecklist,
    actor: Actor,
    now: datetime,
) -> Decision[ChecklistView]:
    """Approval or rejection (an officer), withdrawal (its enterprise, while nothing has
    passed): 409 `invalid_transition` from any other status."""
    state = checklist.current
    allowed = TRANSITIONS[action]
    scope = Scope.of(actor)
    if not sees(scope, state):
        raise NotFound(f"no checklist {state.checklist_no}")
    if action == "withdrawal" and scope.enterprise != state.enterprise:
        raise Forbidden("only the enterprise that filed a checklist withdraws it")
    if action != "approval":
        if not cmd.reason:
            raise ValidationFailed.at(
                "$.reason",
                "a rejection states its reason"
                if action == "rejection"
                else "a withdrawal states its reason",
            )
        values.text("$.reason", cmd.reason)
    if state.status not in allowed or (
        action == "withdrawal" and any(line.passed for line in state.lines)
    ):
        passed = "_passed" if state.status == "approved" else ""
        raise Conflict(
            CANNOT_MESSAGES[action + passed].format(status=state.status),
            rule="invalid_transition",
            current_status=state.status,
        )
    common: dict[str, Any] = {"actor": actor, "occurred_at": now}
    if action == "approval":
        checklist.record(ChecklistApproved, **common)
    elif action == "rejection":
        checklist.record(ChecklistRejected, reason=cmd.reason, **common)
    else:
        checklist.record(ChecklistWithdrawn, reason=cmd.reason, **common)
    return Decision([checklist], view(checklist.current, now))
