"""The officer's certification of a write-off (issue #18 item 1): `accepted`, or
`differences_assessed` with a duty liability on the bonded shortages; either way the book is
brought to the count in one `adjustment` movement (domain/write_offs.py says why)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid5

from domain import liabilities as li
from domain import values
from domain.account_book import AccountBook, account_book_id
from domain.declaration import GoodsStatus
from domain.duties import NOTHING, DutyTables
from domain.errors import NotFound, ValidationFailed
from domain.events import Actor, Pending
from domain.movements import (
    ItemStock,
    Lot,
    LotView,
    MovementRecorded,
    MovementState,
    MovementView,
    fifo,
    item_stock_id,
    lot_id,
)
from domain.reference_rules import duty_tables, read_registers
from domain.scope import Scope
from domain.stocktake import Change
from domain.unit_of_work import Decision, LazyPendings, UnitOfWork
from domain.values import Problems
from domain.write_offs import (
    AssessedShortage,
    BookAlignment,
    Certification,
    CertifyWriteOff,
    UnitValue,
    WriteOff,
    WriteOffCertified,
    WriteOffItem,
    WriteOffView,
    certifiable,
    shortages,
)


def liability_id(write_off: UUID) -> UUID:
    return uuid5(write_off, "liability")


def certification_movement_id(write_off: UUID) -> UUID:
    return uuid5(write_off, "certification")


def visible(wo: WriteOff | None, scope: Scope) -> WriteOff:
    """A write-off the caller may read: its book's enterprise, its zone's operators, officers,
    auditors and admins; anyone else's is unknown (404)."""
    if wo is None or not scope.sees_book(enterprise=wo.view.enterprise, zone=wo.view.zone):
        raise NotFound("no such write-off")
    return wo


def given_values(cmd: CertifyWriteOff, short: list[WriteOffItem]) -> dict[int, UnitValue]:
    """The officer's unit values, each of an item with a bonded shortage, once, valid."""
    p = Problems()
    items = {i.item_no for i in short}
    given: dict[int, UnitValue] = {}
    for n, v in enumerate(cmd.unit_values):
        at = f"$.unit_values[{n}]"
        if v.item_no not in items:
            p.add(f"{at}.item_no", f"item {v.item_no} has no bonded shortage to value")
        elif v.item_no in given:
            p.add(f"{at}.item_no", f"item {v.item_no} is valued twice")
        elif p.check(f"{at}.unit_price", values.unit_price, v.unit_price) is None:
            continue
        elif v.unit_price <= 0:
            p.add(f"{at}.unit_price", "must be greater than 0")
        else:
            given[v.item_no] = v
    p.raise_if_any()
    return given


def assess_all(
    uow: UnitOfWork,
    tables: DutyTables,
    book: AccountBook,
    view: WriteOffView,
    cmd: CertifyWriteOff,
) -> list[AssessedShortage]:
    """Each bonded shortage's duties at the rates in force on the period's last day."""
    short = shortages(view)
    given = given_values(cmd, short)
    p = Problems()
    assessed: list[AssessedShortage] = []
    for row in short:
        assert row.difference is not None
        v = given.get(row.item_no)
        try:
            found = li.assess_shortage(
                uow=uow,
                tables=tables,
                book=book,
                item_no=row.item_no,
                quantity=-row.difference,
                on=view.period.to,
                given=v,
            )
        except ValidationFailed as e:
            p.add("$.unit_values", f"item {row.item_no}: {e.errors[0].msg}")
            continue
        if found is None:
            p.add(
                "$.unit_values",
                f"item {row.item_no} has no released price to value its shortage by: give its"
                " unit value (item_no, unit_price, currency)",
            )
        else:
            assessed.append(found)
    p.raise_if_any()
    return assessed


def _drawn(held: ItemStock | None, status: GoodsStatus, short: Decimal) -> dict[UUID, Decimal]:
    """What a shortage takes of the item's lots of `status`: first-in first-out, as far as
    what is free of them still goes (negative quantities, as the book writes them)."""
    free = held.available_of(status) if held is not None else Decimal(0)
    take = min(short, max(free, Decimal(0)))
    taken = fifo(held.lots, status, take) if held is not None and take else None
    return {k: -q for k, q in (taken or {}).items()}


def align(
    uow: UnitOfWork,
    view: WriteOffView,
    book: AccountBook,
    movement: Pending[MovementState],
    actor: Actor,
    now: datetime,
) -> tuple[list[BookAlignment], list[Pending[ItemStock]], list[Pending[Lot]]]:
    """Bring the book to the count: a shortage draws the item's lots of its status first-in
    first-out as far as what is free of them still goes; a surplus is a new bonded lot."""
    reason = f"write-off {view.period.from_}..{view.period.to} certified"
    common = {"actor": actor, "occurred_at": now}
    lots = LazyPendings(uow, Lot)
    stocks: dict[int, Pending[ItemStock]] = {}
    new_lots: list[Pending[Lot]] = []
    rows: list[BookAlignment] = []
    view_lots: list[LotView] = []
    for n, row in enumerate(i for i in view.items if i.difference):
        assert row.difference is not None
        stock = stocks.get(row.item_no) or uow.pending(
            item_stock_id(book.book_no, row.item_no), ItemStock
        )
        stocks[row.item_no] = stock
        change = Change(book, row.item_no, movement.id, reason)
        if row.difference > 0:
            lot = uow.new(lot_id(movement.id, n), Lot)
            new_lots.append(lot)
            by_lot = change.surplus_lot(lot, row.difference, **common)
            status = "bonded"
        else:
            by_lot = _drawn(stock.state, row.goods_status, -row.difference)
            change.lots_adjusted(lots, by_lot, **common)
            status = row.goods_status
        adjusted = sum(by_lot.values(), Decimal(0))
        rows.append(
            BookAlignment(
                item_no=row.item_no,
                goods_status=row.goods_status,
                wanted=row.difference,
                adjusted=adjusted,
            )
        )
        if by_lot:
            change.stock_adjusted(stock, by_lot, status, flagged=False, **common)
            view_lots += change.views(by_lot)
    if view_lots:
        movement.record(
            MovementRecorded,
            view=MovementView(
                movement_id=movement.id,
                kind="adjustment",
                zone=book.zone,
                account_book=book.book_no,
                occurred_at=now,
                lots=view_lots,
                reason=reason,
            ),
            **common,
        )
    return rows, list(stocks.values()), [*lots.values(), *new_lots]


def decide_certification(
    uow: UnitOfWork,
    stream: UUID,
    cmd: CertifyWriteOff,
    base: DutyTables,
    actor: Actor,
    now: datetime,
) -> Decision[WriteOffView]:
    """The officer's decision on a submitted write-off (another status: 409)."""
    wo = uow.pending(stream, WriteOff)
    state = certifiable(visible(wo.state, Scope.of(actor)), cmd)
    view = state.view
    book = uow.load(account_book_id(view.account_book), AccountBook)
    assert book is not None
    assessed: list[AssessedShortage] = []
    if cmd.unit_values and cmd.result != "differences_assessed":
        raise ValidationFailed.at(
            "$.unit_values", "unit values value shortages: only with differences_assessed"
        )
    if cmd.result == "differences_assessed":
        tables = duty_tables(read_registers(uow), base)
        assessed = assess_all(uow, tables, book, view, cmd)
    bill = None
    saves: list[Pending[Any]] = []
    if assessed:
        liability = uow.new(liability_id(wo.id), li.Liability)
        ref = f"{view.account_book} {view.period.from_}..{view.period.to}"
        subject: tuple[li.SubjectKind, UUID, str] = ("write_off", wo.id, ref)
        li.record(liability, subject=subject, book=book, lines=assessed, actor=actor, now=now)
        bill, saves = liability.id, [liability]
    movement = uow.new(certification_movement_id(wo.id), MovementState)
    rows, stocks, lots = align(uow, view, book, movement, actor, now)
    certification = Certification(
        result=cmd.result,
        reason=cmd.reason,
        officer=actor.name,
        certified_at=now,
        assessed=assessed,
        tax=li.total_tax(assessed) if assessed else NOTHING,
        bill_id=bill,
        movement_id=movement.id if movement.events else None,
        alignment=rows,
    )
    wo.record(WriteOffCertified, certification=certification, actor=actor, occurred_at=now)
    touched: list[Pending[Any]] = [movement, *stocks, *lots]
    changed = [p for p in touched if p.events]
    return Decision([wo, *saves, *changed], wo.current.view)
