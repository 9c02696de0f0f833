"""Movement commands (this part: gate-in admission) and the write-side reads of stock and lots."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

from domain import exits, processing, transfers, values
from domain import movements as mv
from domain.account_book import AccountBook, account_book_id
from domain.bom import bom_id
from domain.declaration import SHANGHAI
from domain.errors import Forbidden, NotFound, ValidationFailed
from domain.events import Actor, Pending
from domain.exits import GateOut
from domain.processing import Processing
from domain.stocktake import Adjustment, adjust
from domain.transfers import TransferDispatch, TransferReceipt
from domain.views import AccountBookView, account_book_view
from ledger.application import LedgerApplication
from ledger.requests import Idempotency, Outcome

Decide = Callable[[datetime], tuple[list[Pending[Any]], Any]]


class MovementCommands:
    """Mixed into `Ledger`, which provides the application, `_execute` and declarations."""

    app: LedgerApplication
    zones: dict[str, Any]
    _execute: Callable[[int, Idempotency | None, Any, Decide, Actor], Outcome]
    resolve_declaration: Callable[[str], UUID | None]

    def record_movement(
        self,
        cmd: mv.GateIn | GateOut | TransferDispatch | TransferReceipt | Processing | Adjustment,
        actor: Actor,
        idem: Idempotency,
    ) -> Outcome:
        """Record a movement; the answer (first or replayed) says where it stands in the log."""
        outcome = self._record(cmd, actor, idem)
        body = outcome.body
        if isinstance(body, mv.MovementView):
            body = mv.answer(body, self._position(body.movement_id))
        elif isinstance(body, dict):  # a replay answers the stored response
            body = {**body, "position": self._position(UUID(body["movement_id"]))}
        return dataclasses.replace(outcome, body=body)

    def _position(self, movement_id: UUID) -> int | None:
        """The log position of the movement's record (its first and only event)."""
        records = self.app.log.select_stream(movement_id)
        return records[0].position if records else None

    def _record(
        self,
        cmd: mv.GateIn | GateOut | TransferDispatch | TransferReceipt | Processing | Adjustment,
        actor: Actor,
        idem: Idempotency,
    ) -> Outcome:
        """Gate kinds are an operator's of the zone; stocktake adjustments the book's owner's."""
        if isinstance(cmd, Adjustment | Processing):
            if actor.role != "enterprise":
                raise Forbidden("processing and adjustments are the book's enterprise's")
            if isinstance(cmd, Processing):
                return self._process(cmd, actor, idem)
            return self._adjust(cmd, actor, idem)
        if actor.role != "operator":
            raise Forbidden("gate movements are recorded by an operator of the zone")
        if isinstance(cmd, GateOut):
            return self._gate_out(cmd, actor, idem)
        if isinstance(cmd, TransferDispatch):
            return self._dispatch(cmd, actor, idem)
        if isinstance(cmd, TransferReceipt):
            return self._receive(cmd, actor, idem)

        def decide(now: datetime) -> tuple[list[Pending[Any]], Any]:
            occurred = values.business_time("$.occurred_at", cmd.occurred_at, now)
            declaration = self._declaration_for(cmd.declaration, actor)
            quantities = mv.check_gate_in(cmd, declaration.state, actor.zone)
            movement = Pending(None, mv.movement_id(idem.principal, idem.key))
            book = declaration.state.facts.account_book
            by_no = {line.line_no: line for line in declaration.state.facts.lines}
            stocks = {
                by_no[n].item_no: self.app.pending(mv.item_stock_id(book, by_no[n].item_no))
                for n in quantities
            }
            lots = {n: Pending(None, mv.lot_id(movement.id, n)) for n in quantities}
            view = mv.admit(
                declaration=declaration,
                stocks=stocks,
                lots=lots,
                movement=movement,
                cmd=cmd,
                quantities=quantities,
                actor=actor,
                occurred_at=occurred,
            )
            return [movement, declaration, *stocks.values(), *lots.values()], view

        return self._execute(201, idem, cmd, decide, actor)

    def _declaration_for(self, ref: str, actor: Actor) -> Pending[Any]:
        stream = self.resolve_declaration(ref)
        declaration = self.app.pending(stream) if stream else None
        state = declaration.state if declaration is not None else None
        zones = (state.facts.zone, state.facts.destination_zone) if state is not None else ()
        if state is None or not _sees_zone(actor, *zones):
            # Unknown, or not visible to this caller (another zone's operator): the same
            # answer, which never reveals that it exists (API.md).
            raise ValidationFailed.at("$.declaration", "no such declaration")
        return declaration  # type: ignore[return-value]

    def _gate_out(self, cmd: GateOut, actor: Actor, idem: Idempotency) -> Outcome:
        return self._leave(
            cmd,
            actor,
            idem,
            "gate_out",
            exits.GoodsExited,
            lambda d: exits.check_gate_out(d, actor.zone),
        )

    def _dispatch(self, cmd: TransferDispatch, actor: Actor, idem: Idempotency) -> Outcome:
        return self._leave(
            cmd,
            actor,
            idem,
            "transfer_dispatch",
            transfers.TransferDispatched,
            lambda d: transfers.check_transfer(d, True, actor.zone, "source"),
        )

    def _leave(
        self,
        cmd: GateOut | TransferDispatch,
        actor: Actor,
        idem: Idempotency,
        kind: str,
        stock_event: type[Any],
        check: Callable[[Any], None],
    ) -> Outcome:
        def decide(now: datetime) -> tuple[list[Pending[Any]], Any]:
            occurred = values.business_time("$.occurred_at", cmd.occurred_at, now)
            declaration = self._declaration_for(cmd.declaration, actor)
            check(declaration.state)
            quantities = mv.check_lines(cmd, declaration.state)
            book = declaration.state.facts.account_book
            by_no = {line.line_no: line for line in declaration.state.facts.lines}
            stocks = {
                by_no[n].item_no: self.app.pending(mv.item_stock_id(book, by_no[n].item_no))
                for n in quantities
            }
            lots = LazyPendings(self.app)
            movement = Pending(None, mv.movement_id(idem.principal, idem.key))
            view = exits.leave(
                kind=kind,
                stock_event=stock_event,
                declaration=declaration,
                quantities=quantities,
                stocks=stocks,
                lots=lots,
                movement=movement,
                cmd=cmd,
                actor=actor,
                occurred_at=occurred,
            )
            return [movement, declaration, *stocks.values(), *lots.values()], view

        return self._execute(201, idem, cmd, decide, actor)

    def _receive(self, cmd: TransferReceipt, actor: Actor, idem: Idempotency) -> Outcome:
        def decide(now: datetime) -> tuple[list[Pending[Any]], Any]:
            occurred = values.business_time("$.occurred_at", cmd.occurred_at, now)
            declaration = self._declaration_for(cmd.declaration, actor)
            d = declaration.state
            transfers.check_transfer(d, False, actor.zone, "destination")
            quantities = mv.check_lines(cmd, d, within_declared=False)
            by_no = {line.line_no: line for line in d.facts.lines}
            sources = {
                by_no[n].item_no: self.app.pending(
                    mv.item_stock_id(d.facts.account_book, by_no[n].item_no)
                )
                for n in quantities
            }
            destination_items = {
                by_no[n].destination_item_no or by_no[n].item_no for n in quantities
            }
            destinations = {
                item: self.app.pending(mv.item_stock_id(d.facts.destination_account_book, item))
                for item in destination_items
            }
            movement = Pending(None, mv.movement_id(idem.principal, idem.key))
            new_lots = {n: Pending(None, mv.lot_id(movement.id, n)) for n in quantities}
            parent_lots = LazyPendings(self.app)
            view = transfers.receive(
                declaration=declaration,
                quantities=quantities,
                sources=sources,
                destinations=destinations,
                new_lots=new_lots,
                parent_lots=parent_lots,
                movement=movement,
                cmd=cmd,
                actor=actor,
                occurred_at=occurred,
            )
            return [
                movement,
                declaration,
                *sources.values(),
                *destinations.values(),
                *new_lots.values(),
                *parent_lots.values(),
            ], view

        return self._execute(201, idem, cmd, decide, actor)

    def _process(self, cmd: Processing, actor: Actor, idem: Idempotency) -> Outcome:
        def decide(now: datetime) -> tuple[list[Pending[Any]], Any]:
            occurred = values.business_time("$.occurred_at", cmd.occurred_at, now)
            book = self._own_book(cmd.account_book, actor)
            day = now.astimezone(SHANGHAI).date()
            processing.check(cmd, book, self.zones.get(cmd.zone), day)
            if cmd.bom_ref is not None:
                # The BOM records no event here: it is immutable once registered, so the state
                # read now is still the state at commit (see domain/bom.py check_consumption).
                bom = self.app.load(bom_id(book.book_no, cmd.bom_ref))
                processing.check_bom(cmd, bom)
            items = {e.item_no for e in cmd.inputs} | {o.item_no for o in cmd.outputs}
            stocks = {i: self.app.pending(mv.item_stock_id(book.book_no, i)) for i in items}
            movement = Pending(None, mv.movement_id(idem.principal, idem.key))
            lots = LazyPendings(self.app)
            new_lots = {
                n: Pending(None, mv.lot_id(movement.id, n)) for n in range(len(cmd.outputs))
            }
            view = processing.process(
                cmd=cmd,
                book=book,
                stocks=stocks,
                lots=lots,
                new_lots=new_lots,
                movement=movement,
                actor=actor,
                occurred_at=occurred,
            )
            return [movement, *stocks.values(), *lots.values(), *new_lots.values()], view

        return self._execute(201, idem, cmd, decide, actor)

    def _adjust(self, cmd: Adjustment, actor: Actor, idem: Idempotency) -> Outcome:
        def decide(now: datetime) -> tuple[list[Pending[Any]], Any]:
            occurred = values.business_time("$.occurred_at", cmd.occurred_at, now)
            book = self._own_book(cmd.account_book, actor)
            stock = self.app.pending(mv.item_stock_id(book.book_no, cmd.item_no))
            movement = Pending(None, mv.movement_id(idem.principal, idem.key))
            if cmd.explains is not None:
                stream = self.resolve_declaration(cmd.explains)
                transfer = self.app.load(stream) if stream else None
                # Another enterprise's declaration reads as unknown (never reveal it exists).
                if (
                    transfer is None
                    or transfer.facts.declarant != book.enterprise
                    or cmd.item_no not in book.items
                ):
                    raise ValidationFailed.at("$.explains", "no such transfer declaration")
                values.text("$.reason", cmd.reason)
                view = transfers.explain_shortfall(
                    stock=stock,
                    declaration=transfer,
                    item_no=cmd.item_no,
                    unit=book.items[cmd.item_no].unit,
                    quantity_delta=cmd.quantity_delta,
                    reason=cmd.reason,
                    movement=movement,
                    actor=actor,
                    occurred_at=occurred,
                )
                return [movement, stock], view
            touched = stock.state.lots if stock.state else {}
            lots = {lot: self.app.pending(lot) for lot in touched}
            new_lot = Pending(None, mv.lot_id(movement.id, 0))
            view = adjust(
                cmd=cmd,
                book=book,
                stock=stock,
                lots=lots,
                new_lot=new_lot,
                movement=movement,
                actor=actor,
                occurred_at=occurred,
            )
            changed = [p for p in (*lots.values(), new_lot) if p.events]
            return [movement, stock, *changed], view

        return self._execute(201, idem, cmd, decide, actor)

    def movement(self, movement_id: str, actor: Actor) -> mv.MovementAnswer:
        try:
            state = self.app.load(UUID(movement_id))
        except ValueError:
            state = None
        if not isinstance(state, mv.MovementState) or not _sees_zone(actor, state.view.zone):
            raise NotFound(f"no movement {movement_id}")
        if actor.role == "enterprise" and not self._owns_book(actor, state.view.account_book):
            raise NotFound(f"no movement {movement_id}")
        return mv.answer(state.view, self._position(state.id))

    def lot(self, lot_id: str, actor: Actor) -> mv.Lot:
        try:
            state = self.app.load(UUID(lot_id))
        except ValueError:
            state = None
        if not isinstance(state, mv.Lot) or not _sees_zone(actor, state.zone):
            raise NotFound(f"no lot {lot_id}")
        if actor.role == "enterprise" and not self._owns_book(actor, state.account_book):
            raise NotFound(f"no lot {lot_id}")
        return state

    def _own_book(self, book_no: str, actor: Actor) -> AccountBook:
        """The caller's own book named in a body; anyone else's is the same 422 as unknown."""
        book = self.app.load(account_book_id(book_no))
        if book is None or book.enterprise != actor.enterprise:
            raise ValidationFailed.at("$.account_book", "no such account book of yours")
        return book  # type: ignore[no-any-return]

    def _owns_book(self, actor: Actor, book_no: str) -> bool:
        book = self.app.load(account_book_id(book_no))
        return book is not None and book.enterprise == actor.enterprise

    def balances(self, book: AccountBook) -> AccountBookView:
        """The book with each item's stock, read from its book-item stream."""
        stock = {}
        for item_no in book.items:
            state = self.app.load(mv.item_stock_id(book.book_no, item_no))
            if state is not None:
                stock[item_no] = (state.on_hand, state.pending_out, state.in_transit_out)
        return account_book_view(book, stock)


class LazyPendings(dict[UUID, Pending[Any]]):
    """Lots loaded only when a movement draws on them (FIFO decides which)."""

    def __init__(self, app: LedgerApplication) -> None:
        super().__init__()
        self.app = app

    def __missing__(self, lot_id: UUID) -> Pending[Any]:
        self[lot_id] = self.app.pending(lot_id)
        return self[lot_id]


def _sees_zone(actor: Actor, *zones: str | None) -> bool:
    """An operator sees its own zone's goods and papers (a transfer's: either end's)."""
    return actor.role != "operator" or actor.zone in zones
