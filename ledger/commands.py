"""Commands of the write side: each validates, decides events, and saves them in one write.

A command that carries an Idempotency-Key saves a `RequestCompleted` event with its answer in
the same atomic write, so a retry finds the answer (a replay) and a concurrent twin collides
on the same stream version and then finds it too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec

from domain import account_book as books
from domain import enterprise as ent
from domain import movements as mv
from domain.assessment import ClearanceRules
from domain.enter_first import overdue_in
from domain.errors import IdempotencyKeyReused, LedgerError, NotFound, ValidationFailed
from domain.events import Actor, Pending
from domain.idempotency import IdempotentRequest, RequestCompleted, idempotency_id
from domain.reference import Zone
from domain.scope import Scope
from domain.standalone_checklists import Checklist
from domain.unit_of_work import Decision, UnitOfWork
from domain.views import AccountBookView, EnterpriseView, account_book_view, enterprise_view
from ledger.application import Command, LedgerApplication
from ledger.boms import BomCommands
from ledger.buyer_keys import BuyerKeys
from ledger.declarations import DeclarationCommands
from ledger.documents import DocumentCommands
from ledger.erasure import PrivacyCommands
from ledger.movements import MovementCommands
from ledger.reference import ReferenceCommands
from ledger.requests import Decide, Idempotency, Outcome, Prepared, request_hash
from ledger.selection_seed import SelectionSeed
from ledger.subscriptions import SubscriptionCommands
from ledger.unit_of_work import CommandUnitOfWork
from ledger.write_offs import WriteOffCommands


def utcnow() -> datetime:
    return datetime.now(UTC)


class Ledger(
    DeclarationCommands,
    MovementCommands,
    DocumentCommands,
    BomCommands,
    PrivacyCommands,
    ReferenceCommands,
    WriteOffCommands,
    SubscriptionCommands,
):
    """The write side's commands and the reads that must see the latest write."""

    def __init__(
        self,
        app: LedgerApplication,
        zones: dict[str, Zone],
        clock: Callable[[], datetime] = utcnow,
        rules: ClearanceRules | None = None,
        vault: BuyerKeys | None = None,
        seeds: SelectionSeed | None = None,
    ) -> None:
        self.app = app
        self.zones = zones
        self.clock = clock
        self.rules = rules or ClearanceRules()
        # Buyers' data keys (ledger/buyer_keys.py); by default beside the log, master inside.
        self.vault = vault or BuyerKeys.beside(app.database, app.factory.datastore)  # type: ignore[attr-defined]
        # The secret selection seed (ledger/selection_seed.py), made on first start beside the log.
        self.seeds = seeds or SelectionSeed.beside(app.database, app.factory.datastore)  # type: ignore[attr-defined]
        # A new buyer's key is written with the group commit of its first list.
        self.vault.defer_new_keys()
        app.new_keys = self.vault

    # -- the command loop ------------------------------------------------------------------

    def _execute(
        self,
        status_code: int,
        idem: Idempotency | None,
        body: Any,
        decide: Decide,
        actor: Actor,
    ) -> Outcome:
        """Run `decide(uow, now)` as one command: with an Idempotency-Key, a retry answers the
        recorded answer, and the first answer is recorded in the same atomic write."""
        return self._run(self._prepare(status_code, idem, body, decide, actor))

    def _run(self, prepared: Prepared) -> Outcome:
        """Run one prepared command alone (through `_outcomes`, which a dry run replaces):
        its outcome, or the error it is refused with, raised."""
        outcome = self._outcomes([prepared])[0]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def _prepare(
        self,
        status_code: int,
        idem: Idempotency | None,
        body: Any,
        decide: Decide,
        actor: Actor,
    ) -> Prepared:
        """The command `_execute` runs, for running alone or with others (`_outcomes`)."""
        digest = request_hash(idem.method, idem.path, body) if idem else ""
        record_id = idempotency_id(idem.principal, idem.key) if idem else None

        def command(uow: CommandUnitOfWork) -> Decision[Any]:
            record: Pending[IdempotentRequest] | None = None
            if idem is not None and record_id is not None:
                record = uow.pending(record_id, IdempotentRequest)
                if record.state is not None:
                    if record.state.request_hash != digest:
                        raise IdempotencyKeyReused(
                            "this Idempotency-Key was used for a different request"
                        )
                    return Decision([], record.state)
            now = self.clock()
            decision = decide(uow, now)
            if record is None or idem is None:
                return decision
            record.record(
                RequestCompleted,
                actor=actor,
                occurred_at=now,
                method=idem.method,
                path=idem.path,
                request_hash=digest,
                status_code=status_code,
                response=msgspec.to_builtins(decision.answer),
            )
            return Decision([*decision.saves, record], decision.answer)

        return Prepared(status_code, Command(command, prefetch=record_id))

    def _outcomes(self, prepared: list[Prepared]) -> list[Outcome | BaseException]:
        """Run prepared commands in order, committed together as far as they fit: each one's
        outcome, or the error it is refused with."""
        ran = self.app.run_many([p.command for p in prepared])
        outcomes: list[Outcome | BaseException] = []
        for p, r in zip(prepared, ran, strict=True):
            if r.error is not None:
                outcomes.append(r.error)
            elif isinstance(r.answer, IdempotentRequest):
                outcomes.append(
                    Outcome(r.answer.status_code, r.answer.response, r.position, replayed=True)
                )
            else:
                outcomes.append(Outcome(p.status_code, r.answer, r.position))
        return outcomes

    def _batch(
        self,
        items: Sequence[tuple[Any, Idempotency]],
        prepare: Callable[[Any, Idempotency], Prepared],
        finish: Callable[[Outcome], Outcome] | None = None,
    ) -> list[Outcome | BaseException]:
        """A batch of one route's commands (api/batch.py): each as the route would answer it,
        in order, committed together as far as they fit; an item refused never stops the
        others. `prepare(cmd, idem)` is the route's command before it runs, `finish` its
        answer's last touch."""
        results: list[Outcome | BaseException | None] = []
        prepared: list[Prepared] = []
        for cmd, idem in items:
            try:
                prepared.append(prepare(cmd, idem))
            except LedgerError as e:
                results.append(e)
                continue
            results.append(None)  # its outcome, once run
        outcomes = iter(self._outcomes(prepared))
        done = [r if r is not None else next(outcomes) for r in results]
        if finish is None:
            return done
        return [finish(r) if isinstance(r, Outcome) else r for r in done]

    # -- enterprises -----------------------------------------------------------------------

    def register_enterprise(
        self, cmd: ent.RegisterEnterprise, actor: Actor, idem: Idempotency | None = None
    ) -> Outcome:
        ent.validate_registration(cmd, self.credit_classes())

        def decide(uow: UnitOfWork, now: datetime) -> Decision[EnterpriseView]:
            pending = uow.pending(ent.enterprise_id(cmd.uscc), ent.Enterprise)
            state = ent.register(pending, cmd, actor, now)
            return Decision([pending], enterprise_view(state))

        return self._execute(201, idem, cmd, decide, actor)

    def change_credit_class(
        self,
        uscc: str,
        cmd: ent.ChangeCreditClass,
        actor: Actor,
        idem: Idempotency | None = None,
    ) -> Outcome:
        """Customs change a credit class; decisions from now on use the new one."""

        def decide(uow: UnitOfWork, now: datetime) -> Decision[EnterpriseView]:
            pending = uow.pending(ent.enterprise_id(uscc), ent.Enterprise)
            if pending.state is None:
                raise NotFound(f"no enterprise {uscc}")
            state = ent.change_credit_class(pending, cmd, actor, now, self.credit_classes())
            return Decision([pending], enterprise_view(state))

        return self._execute(200, idem, cmd, decide, actor)

    def enterprise(self, uscc: str) -> ent.Enterprise | None:
        return self.app.load(ent.enterprise_id(uscc), ent.Enterprise)

    # -- account books ---------------------------------------------------------------------

    def open_account_book(
        self, cmd: books.OpenAccountBook, actor: Actor, idem: Idempotency | None = None
    ) -> Outcome:
        Scope.of(actor).act_as(cmd.enterprise, "$.enterprise")
        books.validate_opening(cmd, set(self.zones))
        if self.enterprise(cmd.enterprise) is None:
            raise ValidationFailed.at("$.enterprise", "enterprise is not registered")

        def decide(uow: UnitOfWork, now: datetime) -> Decision[AccountBookView]:
            pending = uow.pending(books.account_book_id(cmd.book_no), books.AccountBook)
            state = books.open_book(pending, cmd, actor, now)
            return Decision([pending], account_book_view(state))

        return self._execute(201, idem, cmd, decide, actor)

    def register_items(
        self,
        book_no: str,
        cmd: books.RegisterItems,
        actor: Actor,
        idem: Idempotency | None = None,
    ) -> Outcome:
        def decide(uow: UnitOfWork, now: datetime) -> Decision[AccountBookView]:
            pending = uow.pending(books.account_book_id(book_no), books.AccountBook)
            books.visible_book(pending.state, Scope.of(actor), writing=True)
            state = books.register_items(pending, cmd, actor, now)
            # The answer is the book as `GET` shows it: the balances of the items it had
            # already (a new item has none yet).
            stock, states = {}, []
            for item_no in state.items:
                found = uow.load(mv.item_stock_id(book_no, item_no), mv.ItemStock)
                if found is not None:
                    stock[item_no] = (found.on_hand, found.pending_out, found.in_transit_out)
                    states.append(found)
            flag = overdue_in(states, lambda i: uow.load(i, Checklist), now)
            view = msgspec.structs.replace(
                account_book_view(state, stock), overdue_checklists=flag or None
            )
            return Decision([pending], view)

        return self._execute(201, idem, cmd, decide, actor)

    def account_book(self, book_no: str, actor: Actor) -> books.AccountBook:
        book = self.app.load(books.account_book_id(book_no), books.AccountBook)
        return books.visible_book(book, Scope.of(actor))
