"""Goods leaving: stock reserved when an outbound declaration is released, then `gate_out`.

API.md: an outbound declaration (`first_line_out`, `second_line_out`, `transfer`) reserves its
quantities (`pending_out`) when it enters `released`, in the same write, and a release beyond
the book's available stock is refused (409 `insufficient_stock`). The gate movement turns the
reservation into a decrease, drawing lots first-in first-out within the line's customs status,
or the lots a line names (`lots: [{lot_id, quantity}]`, adding up to the line's quantity).
Second-line exit to China's market needs the duties settled: a declaration is `released` only
once nothing is outstanding.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

import msgspec

from domain import values
from domain.declaration import Declaration, GoodsStatus
from domain.errors import Conflict
from domain.events import DomainEvent, Pending
from domain.movements import (
    ExitBody,
    GoodsMoved,
    ItemStock,
    Lot,
    LotView,
    MovementKind,
    MovementState,
    MovementView,
    Reservation,
    fifo,
    held_key,
    item_stock_id,
    record_gate_movement,
    release_reservation,
    without,
)
from domain.papers import MovementRequest, check_lines, declaration_for, line_stocks
from domain.unit_of_work import Decision, LazyPendings, UnitOfWork
from domain.values import Problems

OUTBOUND = ("first_line_out", "second_line_out", "transfer")
GATE_EXITS = ("first_line_out", "second_line_out")


class GateOut(ExitBody, frozen=True, kw_only=True, tag_field="kind", tag="gate_out"):
    """Body of POST /v1/movements with `kind: gate_out` (an operator of the zone)."""


class StockReserved(DomainEvent, frozen=True, kw_only=True):
    """A released outbound declaration reserved this much of the item (its pending_out)."""

    declaration_id: UUID
    quantity: Decimal
    goods_status: GoodsStatus

    def apply(self, state: ItemStock) -> ItemStock:
        reserved = dict(state.reserved)
        key = held_key(self.declaration_id, self.goods_status)
        held = reserved[key].quantity if key in reserved else 0
        reserved[key] = Reservation(quantity=held + self.quantity, goods_status=self.goods_status)
        return msgspec.structs.replace(state, version=self.originator_version, reserved=reserved)


class GoodsExited(DomainEvent, frozen=True, kw_only=True):
    """Goods left the zone under a declaration: its reservation became a decrease."""

    declaration_id: UUID
    movement_id: UUID
    quantity: Decimal
    by_lot: dict[UUID, Decimal]

    def apply(self, state: ItemStock) -> ItemStock:
        lots = without(state.lots, self.by_lot)
        reserved = release_reservation(state.reserved, self.declaration_id, state.lots, self.by_lot)
        return msgspec.structs.replace(
            state,
            version=self.originator_version,
            on_hand=state.on_hand - self.quantity,
            lots=lots,
            reserved=reserved,
        )


class LotDrawn(DomainEvent, frozen=True, kw_only=True):
    """Goods of this lot left (or were consumed) by a movement."""

    movement_id: UUID
    quantity: Decimal

    def apply(self, state: Lot) -> Lot:
        return msgspec.structs.replace(
            state, version=self.originator_version, on_hand=state.on_hand - self.quantity
        )


def needs(d: Declaration) -> dict[tuple[int, GoodsStatus], Decimal]:
    """What an outbound declaration takes from its book: per item and customs status."""
    total: dict[tuple[int, GoodsStatus], Decimal] = defaultdict(Decimal)
    for line in d.facts.lines:
        total[(line.item_no, line.goods_status or "bonded")] += line.quantity
    return dict(total)


def reserve(
    d: Declaration,
    stocks: dict[int, Pending[ItemStock]],
    actor: object,
    occurred_at: datetime,
    status_before: str | None = None,
) -> None:
    """Reserve a released outbound declaration's quantities, or refuse the release."""
    reserve_needs(
        needs(d),
        stocks,
        holder=d.id,
        book=d.facts.account_book or "",
        holder_kind="declaration",
        actor=actor,
        occurred_at=occurred_at,
        status_before=status_before,
    )


def reserve_needs(
    wanted: dict[tuple[int, GoodsStatus], Decimal],
    stocks: dict[int, Pending[ItemStock]],
    *,
    holder: UUID,
    book: str,
    holder_kind: Literal["declaration", "checklist"],
    actor: object,
    occurred_at: datetime,
    status_before: str | None = None,
) -> None:
    """Reserve for `holder` (an outbound declaration, or a collected checklist when it is
    filed) what it needs of each item and status, or refuse: 409 `declaration_pending` when
    only goods that entered first and wait for their declaration would cover it, 409
    `insufficient_stock` otherwise."""
    for (item_no, status), quantity in wanted.items():
        stock = stocks[item_no].state
        available = stock.available_of(status) if stock is not None else Decimal(0)
        held = stock.held_of(status) if stock is not None else Decimal(0)
        if available < quantity <= available + held:
            raise Conflict(
                f"item {item_no} has {available} {status} available in book {book}; "
                f"{held} more entered first and waits for its declaration",
                rule="declaration_pending",
                current_status=status_before,
            )
        if quantity > available:
            raise Conflict(
                f"item {item_no} has {available} {status} available in book {book}; the"
                f" declaration needs {quantity}"
                if holder_kind == "declaration"
                else f"item {item_no} has {available} {status} available in book {book}; the"
                f" checklist needs {quantity}",
                rule="insufficient_stock",
                current_status=status_before,
            )
        stocks[item_no].record(
            StockReserved,
            actor=actor,
            occurred_at=occurred_at,
            declaration_id=holder,
            quantity=quantity,
            goods_status=status,
        )


def reserve_on_release(
    uow: UnitOfWork,
    status_before: str | None,
    declaration: Pending[Declaration],
    actor: object,
    now: datetime,
) -> list[Pending[ItemStock]]:
    """An outbound declaration entering `released` reserves its stock in the same write
    (409 `insufficient_stock` refuses the whole decision otherwise); the stocks it wrote."""
    state = declaration.state
    assert state is not None
    if state.status != "released" or status_before == "released":
        return []
    if state.facts.flow not in OUTBOUND or state.collected:
        return []  # a consolidated declaration's goods left already (domain/collected.py)
    stocks: dict[int, Pending[ItemStock]] = {}
    for item_no, _status in needs(state):
        stock_id = item_stock_id(state.facts.book, item_no)
        stocks[item_no] = uow.pending(stock_id, ItemStock)
    reserve(state, stocks, actor, now, status_before)
    return list(stocks.values())


def check_gate_out(d: Declaration, operator_zone: str | None) -> None:
    f = d.facts
    if f.flow not in GATE_EXITS:
        raise Conflict(f"a {f.flow} declaration does not exit through a gate", rule="wrong_flow")
    if d.status != "released":
        raise Conflict(
            "goods leave only under a released declaration (duties settled)",
            rule="declaration_not_released",
            current_status=d.status,
        )
    if operator_zone is not None and operator_zone != f.zone:
        raise Conflict(
            f"the gate of {operator_zone} cannot let out goods declared in {f.zone}",
            rule="zone_mismatch",
        )


def named_lots(
    cmd: ExitBody, d: Declaration, stocks: dict[int, Pending[ItemStock]]
) -> dict[int, dict[UUID, Decimal]]:
    """The lots each line names, per line number (lines without `lots` draw FIFO).

    422 at `$.lines[i].lots` when the named quantities do not add up to the line's, and at
    `$.lines[i].lots[j].lot_id` for a lot named twice, or one that is not an open lot of the
    line's item in this book with the line's customs status (an unknown lot and another
    tenant's get the same answer). Checked against the stock before the movement; whether the
    lots still hold enough after earlier lines is `leave`'s 409."""
    by_no = {line.line_no: line for line in d.facts.lines}
    p = Problems()
    named: dict[int, dict[UUID, Decimal]] = {}
    for n, line in enumerate(cmd.lines):
        if line.lots is None:
            continue
        at = f"$.lines[{n}].lots"
        declared = by_no[line.line_no]
        status = declared.goods_status or "bonded"
        held = stocks[declared.item_no].state
        open_lots = held.lots if held is not None else {}
        picks: dict[UUID, Decimal] = {}
        total, complete = Decimal(0), True
        for j, pick in enumerate(line.lots):
            q = p.check(f"{at}[{j}].quantity", values.quantity, pick.quantity, declared.unit)
            balance = open_lots.get(pick.lot_id)
            if pick.lot_id in picks:
                p.add(f"{at}[{j}].lot_id", f"lot {pick.lot_id} is named twice in this line")
            elif balance is None or balance.goods_status != status:
                p.add(
                    f"{at}[{j}].lot_id",
                    f"no open {status} lot {pick.lot_id} of item {declared.item_no} in book "
                    f"{d.facts.account_book}",
                )
            if q is None:
                complete = False
                continue
            picks[pick.lot_id] = picks.get(pick.lot_id, Decimal(0)) + q
            total += q
        if not line.lots:
            p.add(at, "name at least one lot, or leave `lots` out to draw first-in first-out")
        elif complete and total != line.quantity:
            p.add(at, f"the named lots add up to {total}; the line moves {line.quantity}")
        named[line.line_no] = picks
    p.raise_if_any()
    return named


def leave(
    *,
    kind: MovementKind,
    stock_event: type[DomainEvent],
    declaration: Pending[Declaration],
    quantities: dict[int, Decimal],
    stocks: dict[int, Pending[ItemStock]],
    lots: dict[UUID, Pending[Lot]],
    movement: Pending[MovementState],
    cmd: ExitBody,
    actor: object,
    occurred_at: datetime,
    gate_pass: str | None = None,
) -> MovementView:
    """Goods leave a book under a released declaration (`gate_out`, or `transfer_dispatch`
    with `TransferDispatched`): moved quantities, the item's stock event, lots drawn (the named
    ones, or FIFO within each line's status), and the movement - one write.

    Lines naming lots draw first, so a FIFO line of the same item sees what they took and never
    draws a named lot twice; the answer lists the lots in the order of the lines."""
    d = declaration.state
    assert d is not None
    named = named_lots(cmd, d, stocks)
    common = {"actor": actor, "occurred_at": occurred_at}
    by_no = {line.line_no: line for line in d.facts.lines}
    declaration.record(GoodsMoved, movement_id=movement.id, quantities=quantities, **common)
    drawn: dict[int, list[LotView]] = {}
    order = [n for n in quantities if n in named] + [n for n in quantities if n not in named]
    for line_no in order:
        quantity = quantities[line_no]
        line = by_no[line_no]
        stock = stocks[line.item_no]
        assert stock.state is not None  # the release reserved it
        if line_no in named:
            taken = named[line_no]
            for lot_id, q in taken.items():
                balance = stock.state.lots.get(lot_id)
                left = balance.quantity if balance is not None else Decimal(0)
                if q > left:
                    raise Conflict(
                        f"lot {lot_id} of item {line.item_no} holds {left}; line {line_no} "
                        f"takes {q} from it",
                        rule="insufficient_stock",
                    )
        else:
            fifo_taken = fifo(stock.state.lots, line.goods_status or "bonded", quantity)
            if fifo_taken is None:  # only if stock was changed behind the ledger's back
                raise Conflict(
                    f"the lots of item {line.item_no} do not hold {quantity}",
                    rule="insufficient_stock",
                )
            taken = fifo_taken
        stock.record(
            stock_event,
            declaration_id=d.id,
            movement_id=movement.id,
            quantity=quantity,
            by_lot=taken,
            **common,
        )
        drawn[line_no] = []
        for lot_id, q in taken.items():
            lots[lot_id].record(LotDrawn, movement_id=movement.id, quantity=q, **common)
            drawn[line_no].append(LotView(lot_id=lot_id, item_no=line.item_no, quantity=q))
    return record_gate_movement(
        movement,
        kind=kind,
        declaration=d,
        zone=d.facts.zone,
        account_book=d.facts.book,
        cmd=cmd,
        container=cmd.container or d.facts.transport.container,
        lots=[v for line_no in quantities for v in drawn[line_no]],
        gate_pass=gate_pass,
        **common,
    )


def decide_leave(
    uow: UnitOfWork,
    req: MovementRequest[Any],
    now: datetime,
    *,
    kind: MovementKind,
    stock_event: type[DomainEvent],
    check: Callable[[Declaration], None],
) -> Decision[MovementView]:
    """A movement that takes goods out of a book under a released declaration (`gate_out`,
    `transfer_dispatch`): the movement, the declaration, the items' stock, the lots drawn."""
    cmd: ExitBody = req.cmd
    occurred = values.business_time("$.occurred_at", cmd.occurred_at, now)
    movement = uow.new(req.movement_id, MovementState)
    declaration = declaration_for(uow, cmd.declaration, req.scope)
    d = declaration.state
    assert d is not None
    check(d)
    quantities = check_lines(cmd, d)
    stocks = line_stocks(uow, d, quantities)
    lots = LazyPendings(uow, Lot)
    view = leave(
        kind=kind,
        stock_event=stock_event,
        declaration=declaration,
        quantities=quantities,
        stocks=stocks,
        lots=lots,
        movement=movement,
        cmd=cmd,
        actor=req.actor,
        occurred_at=occurred,
        gate_pass=req.gate_pass,
    )
    return Decision([movement, declaration, *stocks.values(), *lots.values()], view)


def decide_gate_out(
    uow: UnitOfWork, req: MovementRequest[GateOut], now: datetime
) -> Decision[MovementView]:
    """Goods leave the zone through its gate (`first_line_out`, `second_line_out`)."""
    zone = req.actor.zone
    return decide_leave(
        uow,
        req,
        now,
        kind="gate_out",
        stock_event=GoodsExited,
        check=lambda d: check_gate_out(d, zone),
    )
