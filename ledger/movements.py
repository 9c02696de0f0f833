"""Movement commands (every kind of domain/movement_kinds.py) and the write-side reads of
movements, lots and stock."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from datetime import datetime
from uuid import UUID

import msgspec

from domain import movements as mv
from domain.account_book import AccountBook, account_book_id
from domain.assessment import ClearanceRules
from domain.enter_first import overdue_in
from domain.errors import NotFound
from domain.events import Actor
from domain.movement_kinds import MovementBody, check_recorder, spec_of
from domain.papers import MovementRequest
from domain.reference import Zone
from domain.scope import Scope
from domain.standalone_checklists import Checklist
from domain.unit_of_work import Decision, UnitOfWork
from domain.views import AccountBookView, account_book_view
from domain.write_offs import refuse_written_off
from ledger.application import LedgerApplication
from ledger.requests import (
    Execute,
    Idempotency,
    Outcome,
    Prepare,
    Prepared,
    Run,
    RunBatch,
)


class MovementCommands:
    """Mixed into `Ledger`, which provides the application, the zones and `_execute`."""

    app: LedgerApplication
    clock: Callable[[], datetime]
    zones: dict[str, Zone]
    rules: ClearanceRules
    _execute: Execute
    _prepare: Prepare
    _run: Run
    _batch: RunBatch

    def record_movement(self, cmd: MovementBody, actor: Actor, idem: Idempotency) -> Outcome:
        """Record a movement; the answer (first or replayed) says where it stands in the log."""
        return self._movement_answer(self._run(self._prepare_movement(cmd, actor, idem)))

    def record_movements(
        self, items: Sequence[tuple[MovementBody, Idempotency]], actor: Actor
    ) -> list[Outcome | BaseException]:
        """A batch of movements (`POST /v1/movements/batch`), each as `record_movement` would
        answer it, in order, committed together as far as they fit."""
        return self._batch(
            items, lambda cmd, idem: self._prepare_movement(cmd, actor, idem), self._movement_answer
        )

    def _prepare_movement(self, cmd: MovementBody, actor: Actor, idem: Idempotency) -> Prepared:
        spec = spec_of(cmd)
        check_recorder(spec, actor)
        req = MovementRequest(
            cmd=cmd,
            movement_id=mv.movement_id(idem.principal, idem.key),
            actor=actor,
            zones=self.zones,
            duties=self.rules.duties,
        )

        def decide(uow: UnitOfWork, now: datetime) -> Decision[mv.MovementView]:
            decision = spec.decide(uow, req, now)
            refuse_written_off(uow, decision.saves, now)
            return decision

        return self._prepare(201, idem, cmd, decide, actor)

    def _movement_answer(self, outcome: Outcome) -> Outcome:
        """The answer, first or replayed, with the log position of the movement's record."""
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

    def movement(self, movement_id: str, actor: Actor) -> mv.MovementAnswer:
        stream = _uuid(movement_id)
        state = self.app.load(stream, mv.MovementState) if stream else None
        if state is None or not self._sees(actor, state.view.zone, state.view.account_book):
            raise NotFound(f"no movement {movement_id}")
        return mv.answer(state.view, self._position(state.id))

    def lot(self, lot_id: str, actor: Actor) -> mv.Lot:
        stream = _uuid(lot_id)
        state = self.app.load(stream, mv.Lot) if stream else None
        if state is None or not self._sees(actor, state.zone, state.account_book):
            raise NotFound(f"no lot {lot_id}")
        return state

    def _sees(self, actor: Actor, zone: str, book_no: str) -> bool:
        """An operator sees its zone's goods; an enterprise the goods of its own books."""
        scope = Scope.of(actor)
        if not scope.sees_zone(zone):
            return False
        if scope.role != "enterprise":
            return True
        book = self.app.load(account_book_id(book_no), AccountBook)
        return book is not None and scope.owns(book.enterprise)

    def balances(self, book: AccountBook) -> AccountBookView:
        """The book with each item's stock, read from its book-item stream, and the book's
        flag: the enter_first checklists whose goods it holds undeclared past their deadline
        (each item's stock knows the checklists it holds goods for)."""
        stock = {}
        states = []
        for item_no in book.items:
            state = self.app.load(mv.item_stock_id(book.book_no, item_no), mv.ItemStock)
            if state is not None:
                stock[item_no] = (state.on_hand, state.pending_out, state.in_transit_out)
                states.append(state)
        overdue = overdue_in(states, lambda i: self.app.load(i, Checklist), self.clock())
        return msgspec.structs.replace(
            account_book_view(book, stock), overdue_checklists=overdue or None
        )


def _uuid(text: str) -> UUID | None:
    """A stream id from a path segment; one that is not a UUID names no stream."""
    try:
        return UUID(text)
    except ValueError:
        return None
