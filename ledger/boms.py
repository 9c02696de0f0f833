"""Bills of materials: registering one in a book, and reading it (domain/bom.py)."""

from __future__ import annotations

from datetime import datetime

from domain import bom as boms
from domain.account_book import AccountBook, account_book_id, visible_book
from domain.errors import NotFound
from domain.events import Actor
from domain.scope import Scope
from domain.unit_of_work import Decision, UnitOfWork
from ledger.application import LedgerApplication
from ledger.requests import Execute, Idempotency, Outcome


class BomCommands:
    """Mixed into `Ledger`, which provides the application and `_execute`."""

    app: LedgerApplication
    _execute: Execute

    def register_bom(
        self,
        book_no: str,
        cmd: boms.RegisterBom,
        actor: Actor,
        idem: Idempotency | None = None,
    ) -> Outcome:
        """Register a BOM in a book (its enterprise, or an admin; anyone else's book is 404).

        BOMs are immutable: one `BomRegistered` per reference and book, never changed or
        replaced; a new version of a recipe is registered under a new `bom_ref`.
        """

        def decide(uow: UnitOfWork, now: datetime) -> Decision[boms.BomView]:
            book = uow.load(account_book_id(book_no), AccountBook)
            book = visible_book(book, Scope.of(actor), writing=True)
            pending = uow.pending(boms.bom_id(book.book_no, cmd.bom_ref), boms.Bom)
            state = boms.register(pending, cmd, book, actor, now)
            return Decision([pending], boms.bom_view(state))

        return self._execute(201, idem, cmd, decide, actor)

    def bom(self, book_no: str, bom_ref: str, actor: Actor) -> boms.BomView:
        """A BOM of a book the caller can see; unknown, or another tenant's, is 404."""
        book = self.app.load(account_book_id(book_no), AccountBook)
        book = visible_book(book, Scope.of(actor))
        state = self.app.load(boms.bom_id(book.book_no, bom_ref), boms.Bom)
        if state is None:
            raise NotFound(f"no BOM {bom_ref} in book {book_no}")
        return boms.bom_view(state)
