"""Checklists (核注清单, Golden Customs II message INV101): the document that changes a book.

Every declaration that moves an account book files its checklist when it enters `released`,
in the same write as its release (and, for an outbound one, as its reservation): the v1
contract reserves stock at release (API.md "Reservations"), so filing the checklist there keeps
invariant 11 - an outbound checklist pre-decreases its book when it is filed - word for word.
The checklist's number comes from its own series (domain/documents.py); its lines are the
declaration's, and what has passed the gate under it is what has moved under the declaration.

Retail lists (1210/1239) file none: Golden Customs II sums released retail lists into
checklists periodically [verify: the summary rule for bonded retail exits], which this ledger
does not model yet. Checklists filed on their own (`in_zone_transfer`, `processing`,
`enter_first`, `collected`) are domain/standalone_checklists.py's.

Status: a declaration's checklist is `approved` when filed (its declaration's release is the
customs approval) and `closed` once every line has passed the gate in full.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

import msgspec

from domain.declaration import Declaration, GoodsStatus
from domain.documents import china_year, issue_number
from domain.errors import Conflict
from domain.events import Actor, DomainEvent, Pending
from domain.reference import RETAIL_FLOW, RETAIL_TRADE_MODES
from domain.unit_of_work import UnitOfWork

ChecklistKind = Literal[
    "first_line",
    "second_line",
    "transfer",
    "in_zone_transfer",
    "processing",
    "enter_first",
    "collected",
    "destruction",
]
ChecklistStatus = Literal["filed", "approved", "closed", "withdrawn", "rejected"]
Direction = Literal["I", "E"]
# The flows whose declarations file a checklist, and the checklist's kind and direction.
FILED_BY_FLOW: dict[str, tuple[ChecklistKind, Direction]] = {
    "first_line_in": ("first_line", "I"),
    "second_line_in": ("second_line", "I"),
    "first_line_out": ("first_line", "E"),
    "second_line_out": ("second_line", "E"),
    "transfer": ("transfer", "E"),
}


class ChecklistLine(msgspec.Struct, frozen=True, kw_only=True):
    """A line of a checklist: the book item, how much, its customs status, and (in views)
    how much has passed the gate under it."""

    line_no: int
    item_no: int
    quantity: Decimal
    unit: str
    goods_status: GoodsStatus
    passed: Decimal = Decimal(0)


class ListedLine(ChecklistLine, frozen=True, kw_only=True):
    """A line as a checklist filed on its own lists it (and as every checklist's view shows
    it): an `in_zone_transfer` one names the receiving book's item (domain/outbound_checklists.py).
    A declaration's `ChecklistFiled` keeps the plain line."""

    destination_item_no: int | None = None


class ChecklistFiled(DomainEvent, frozen=True, kw_only=True):
    """A checklist was filed for a declaration (recorded on the declaration's stream, in the
    write that released it). It carries its content, so a reader needs nothing else."""

    checklist_no: str
    kind: ChecklistKind
    direction: Direction
    account_book: str
    zone: str
    enterprise: str
    declaration_no: str
    lines: list[ChecklistLine]

    def apply(self, state: Declaration) -> Declaration:
        return msgspec.structs.replace(
            state, version=self.originator_version, checklist_no=self.checklist_no
        )


class ChecklistView(msgspec.Struct, frozen=True, kw_only=True):
    """GET /v1/checklists/{no} and each item of GET /v1/checklists."""

    checklist_no: str
    kind: ChecklistKind
    direction: Direction
    status: ChecklistStatus
    account_book: str
    zone: str
    enterprise: str
    lines: list[ListedLine]
    filed_at: datetime
    declaration: UUID | None = None
    declaration_no: str | None = None
    position: int | None = None
    # A checklist filed on its own (domain/standalone_checklists.py): an `enter_first` one's
    # declaration deadline and whether it has passed undeclared; a rejection's or withdrawal's
    # reason.
    declaration_due_by: datetime | None = None
    overdue: bool = False
    reason: str | None = None
    # A `collected` one's collection period (a month, China time: "2026-11"), from its first
    # passage (domain/collected.py).
    period: str | None = None
    # An `in_zone_transfer` one's receiving book and its enterprise.
    destination_account_book: str | None = None
    destination_enterprise: str | None = None


def require_open(number: str, status: ChecklistStatus, goods: Literal["pass", "move"]) -> None:
    """Only an approved checklist's goods move (`goods`: they pass the gate, or move in the
    zone); a closed one has nothing left."""
    if status == "closed":
        raise Conflict(
            f"checklist {number} is closed: all it lists has passed"
            if goods == "pass"
            else f"checklist {number} is closed: all it lists has moved",
            rule="exceeds_checklist_quantity",
        )
    if status != "approved":
        raise Conflict(
            f"checklist {number} is {status}: only an approved one's goods pass"
            if goods == "pass"
            else f"checklist {number} is {status}: only an approved one's goods move",
            rule="checklist_not_approved",
            current_status=status,
        )


def listed(lines: list[ChecklistLine]) -> list[ListedLine]:
    """A declaration's checklist lines as a view lists them."""
    return [ListedLine(**msgspec.structs.asdict(line)) for line in lines]


def lines_of(d: Declaration) -> list[ChecklistLine]:
    """A declaration's lines as its checklist lists them; `passed` is what moved under each."""
    flow = d.facts.flow
    return [
        ChecklistLine(
            line_no=line.line_no,
            item_no=line.item_no,
            quantity=line.quantity,
            unit=line.unit,
            goods_status=status_of(flow, line.goods_status),
            passed=line.quantity_moved,
        )
        for line in d.facts.lines
    ]


def status_of(flow: str, declared: GoodsStatus | None) -> GoodsStatus:
    """The customs status of a line's goods in its book: admitted from abroad bonded, from
    China's market domestic; an outbound line's as declared (bonded by default)."""
    if flow == "first_line_in":
        return "bonded"
    if flow == "second_line_in":
        return "domestic"
    return declared or "bonded"


def files_checklist(d: Declaration) -> bool:
    f = d.facts
    return (
        f.flow in FILED_BY_FLOW
        and f.account_book is not None
        and not (f.trade_mode in RETAIL_TRADE_MODES and f.flow == RETAIL_FLOW[f.trade_mode])
        # A consolidated declaration's goods left on the collected checklists it names.
        and not d.collected
    )


def file_on_release(
    uow: UnitOfWork,
    status_before: str | None,
    declaration: Pending[Declaration],
    actor: Actor,
    now: datetime,
) -> list[Pending[Any]]:
    """A declaration that moves a book files its checklist as it enters `released`: the next
    serial of its series (customs office of the declaration's number, China year, direction;
    or of this process's block of it) and `ChecklistFiled` on the declaration. Returns the
    number's streams to save (the declaration is
    saved by the caller)."""
    state = declaration.state
    assert state is not None
    if state.status != "released" or status_before == "released":
        return []
    if state.checklist_no is not None or not files_checklist(state):
        return []
    f = state.facts
    kind, direction = FILED_BY_FLOW[f.flow]
    office, year = f.declaration_no[:4], china_year(now)
    where = (office, year, direction)
    number, numbered = issue_number(uow, "checklist", where, declaration.id, actor, now)
    common = {"actor": actor, "occurred_at": now}
    declaration.record(
        ChecklistFiled,
        checklist_no=number,
        kind=kind,
        direction=direction,
        account_book=f.book,
        zone=f.zone,
        enterprise=f.declarant,
        declaration_no=f.declaration_no,
        lines=[msgspec.structs.replace(line, passed=Decimal(0)) for line in lines_of(state)],
        **common,
    )
    return list(numbered)


def checklist_status(d: Declaration) -> ChecklistStatus:
    """A declaration's checklist: closed once every line has passed in full."""
    done = all(line.quantity_moved >= line.quantity for line in d.facts.lines)
    return "closed" if done else "approved"


def checklist_view(d: Declaration, position: int | None = None) -> ChecklistView:
    """The checklist a released declaration filed, as it stands."""
    f = d.facts
    assert d.checklist_no is not None and d.released_at is not None
    kind, direction = FILED_BY_FLOW[f.flow]
    return ChecklistView(
        checklist_no=d.checklist_no,
        kind=kind,
        direction=direction,
        status=checklist_status(d),
        account_book=f.book,
        zone=f.zone,
        enterprise=f.declarant,
        lines=listed(lines_of(d)),
        filed_at=d.released_at,
        declaration=d.id,
        declaration_no=f.declaration_no,
        position=position,
    )
