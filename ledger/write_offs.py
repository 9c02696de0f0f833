"""Write-offs and duty liabilities on the write side (domain/write_offs.py, domain/liabilities.py,
domain/write_off_certification.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

from domain import liabilities as li
from domain import write_off_certification as cert
from domain import write_offs as wo
from domain.account_book import AccountBook, account_book_id, visible_book
from domain.assessment import ClearanceRules
from domain.declaration import PayDuties
from domain.errors import Forbidden, NotFound
from domain.events import Actor
from domain.movements import ItemStock, item_stock_id
from domain.scope import Scope
from domain.unit_of_work import Decision, UnitOfWork
from ledger.application import LedgerApplication
from ledger.requests import Execute, Idempotency, Outcome

# The figures of a write-off, computed by the read side at a log position for a book and
# period (api/routes/write_offs.py gives it).
Figures = Callable[[str, wo.WriteOffPeriod], wo.ComputedFigures]


class WriteOffCommands:
    """Mixed into `Ledger`, which provides the application and `_execute`."""

    app: LedgerApplication
    rules: ClearanceRules
    clock: Callable[[], datetime]
    _execute: Execute

    def submit_write_off(
        self,
        book_no: str,
        cmd: wo.SubmitWriteOff,
        figures: wo.ComputedFigures,
        actor: Actor,
        idem: Idempotency,
    ) -> Outcome:
        """The book's enterprise writes a period off with its count; the figures were computed
        at `figures.position`, and are refused (409 `concurrent_update`) if any item of the
        book has moved since."""

        def decide(uow: UnitOfWork, now: datetime) -> Decision[wo.WriteOffView]:
            book = visible_book(uow.load(account_book_id(book_no), AccountBook), Scope.of(actor))
            if not Scope.of(actor).owns(book.enterprise):
                raise Forbidden("only the book's enterprise writes its periods off")
            wo.check_period(cmd.period, now)
            versions = {}
            for n in book.items:
                stock = uow.load(item_stock_id(book.book_no, n), ItemStock)
                versions[n] = stock.version if stock is not None else 0
            stream = wo.write_off_id(book.book_no, cmd.period)
            pending = uow.pending(stream, wo.WriteOff)
            periods = uow.pending(wo.book_periods_id(book.book_no), wo.BookPeriods)
            view = wo.submit(
                wo=pending,
                periods=periods,
                cmd=cmd,
                book=book,
                figures=figures,
                versions=versions,
                actor=actor,
                now=now,
            )
            return Decision([periods, pending], view)

        return self._execute(201, idem, cmd, decide, actor)

    def certify_write_off(
        self, ref: str, cmd: wo.CertifyWriteOff, actor: Actor, idem: Idempotency | None
    ) -> Outcome:
        stream = _write_off_stream(ref)

        def decide(uow: UnitOfWork, now: datetime) -> Decision[wo.WriteOffView]:
            return cert.decide_certification(uow, stream, cmd, self.rules.duties, actor, now)

        return self._execute(200, idem, cmd, decide, actor)

    def write_off(self, ref: str, actor: Actor) -> wo.WriteOffView:
        """A write-off as it stands now (the caller's tenancy: 404 otherwise)."""
        state = self.app.load(_write_off_stream(ref), wo.WriteOff)
        return cert.visible(state, Scope.of(actor)).view

    def write_off_book(self, book_no: str, actor: Actor) -> AccountBook:
        """The book whose write-offs the caller lists (404 for another tenant's)."""
        return visible_book(self.app.load(account_book_id(book_no), AccountBook), Scope.of(actor))

    # -- liabilities -----------------------------------------------------------------------

    def liability(self, ref: str) -> li.Liability | None:
        try:
            return self.app.load(UUID(ref), li.Liability)
        except ValueError:
            return None

    def pay_liability(
        self, ref: str, cmd: PayDuties, actor: Actor, idem: Idempotency | None
    ) -> Outcome:
        """The liable enterprise pays its liability (another's is 404)."""

        def decide(uow: UnitOfWork, now: datetime) -> Decision[li.LiabilityView]:
            pending = uow.pending(UUID(ref), li.Liability)
            state = pending.state
            if state is None or not Scope.of(actor).owns(state.view.enterprise):
                raise NotFound("no such tax bill")
            return Decision([pending], li.pay(pending, cmd, actor, now))

        return self._execute(200, idem, cmd, decide, actor)

    def waive_liability(
        self, ref: str, cmd: Any, actor: Actor, idem: Idempotency | None
    ) -> Outcome:
        """An officer accepts force majeure for a stocktake shortage's liability."""

        def decide(uow: UnitOfWork, now: datetime) -> Decision[li.LiabilityView]:
            pending = uow.pending(_uuid(ref), li.Liability)
            if pending.state is None:
                raise NotFound("no such tax bill")
            return Decision([pending], li.waive(pending, cmd.reason, actor, now))

        return self._execute(200, idem, cmd, decide, actor)


def _uuid(ref: str) -> UUID:
    try:
        return UUID(ref)
    except ValueError:
        raise NotFound("no such tax bill") from None


def _write_off_stream(ref: str) -> UUID:
    try:
        return UUID(ref)
    except ValueError:
        raise NotFound("no such write-off") from None
