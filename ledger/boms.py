"""Bills of materials: registering one in a book, and reading it (domain/bom.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from domain import bom as boms
from domain.account_book import account_book_id
from domain.errors import NotFound
from domain.events import Actor, Pending
from ledger.access import visible_book
from ledger.application import LedgerApplication
from ledger.requests import Idempotency, Outcome

Decide = Callable[[datetime], tuple[list[Pending[Any]], Any]]


class BomCommands:
    """Mixed into `Ledger`, which provides the application and `_execute`."""

    app: LedgerApplication
    _execute: Callable[[int, Idempotency | None, Any, Decide, Actor], Outcome]

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

        def decide(now: datetime) -> tuple[list[Pending[Any]], Any]:
            book = visible_book(self.app.load(account_book_id(book_no)), actor, writing=True)
            pending = self.app.pending(boms.bom_id(book.book_no, cmd.bom_ref))
            state = boms.register(pending, cmd, book, actor, now)
            return [pending], boms.bom_view(state)

        return self._execute(201, idem, cmd, decide, actor)

    def bom(self, book_no: str, bom_ref: str, actor: Actor) -> boms.BomView:
        """A BOM of a book the caller can see; unknown, or another tenant's, is 404."""
        book = visible_book(self.app.load(account_book_id(book_no)), actor)
        state = self.app.load(boms.bom_id(book.book_no, bom_ref))
        if not isinstance(state, boms.Bom):
            raise NotFound(f"no BOM {bom_ref} in book {book_no}")
        return boms.bom_view(state)
