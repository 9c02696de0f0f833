"""Checklist and gate-pass commands (domain/checklists.py, domain/gate_passes.py) and the
write-side reads of both: a number finds its document through its series (domain/documents.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime
from uuid import UUID

import msgspec

from domain import collected, destruction, outbound_checklists, passage
from domain import gate_passes as gp
from domain import standalone_checklists as sc
from domain.account_book import AccountBook, account_book_id, visible_book
from domain.checklists import ChecklistView, checklist_view
from domain.declaration import Declaration
from domain.documents import parse
from domain.errors import Conflict, NotFound
from domain.events import Actor
from domain.reference import Zone
from domain.scope import Scope
from domain.unit_of_work import Decision, UnitOfWork
from ledger.application import LedgerApplication
from ledger.requests import Execute, Idempotency, Outcome
from ledger.unit_of_work import document_numbered


class DocumentCommands:
    """Mixed into `Ledger`, which provides the application, the zones and `_execute`."""

    app: LedgerApplication
    zones: dict[str, Zone]
    clock: Callable[[], datetime]
    _execute: Execute

    def file_gate_pass(self, cmd: gp.FileGatePass, actor: Actor, idem: Idempotency) -> Outcome:
        stream = gp.gate_pass_id(idem.principal, idem.key)

        def decide(uow: UnitOfWork, now: datetime) -> Decision[gp.GatePassView]:
            return gp.decide_filing(uow, cmd, stream, self.zones, actor, now)

        return self._with_position(self._execute(201, idem, cmd, decide, actor), stream)

    def record_passage(
        self, number: str, cmd: gp.RecordPassage, actor: Actor, idem: Idempotency | None
    ) -> Outcome:
        def decide(uow: UnitOfWork, now: datetime) -> Decision[gp.GatePassView]:
            return passage.decide_passage(uow, number, cmd, self.zones, actor, now)

        outcome = self._execute(200, idem, cmd, decide, actor)
        stream = self._document(number)
        return self._with_position(outcome, stream) if stream is not None else outcome

    def _with_position(self, outcome: Outcome, stream: UUID) -> Outcome:
        """The answer (first or replayed) with the position of the pass's last record."""
        records = self.app.log.select_stream(stream)
        position = records[-1].position if records else None
        body = outcome.body
        if isinstance(body, gp.GatePassView | ChecklistView | collected.CollectionPermissionView):
            body = msgspec.structs.replace(body, position=position)
        elif isinstance(body, dict) and (
            "pass_no" in body or "checklist_no" in body or "permitted" in body
        ):
            body = {**body, "position": position}
        return dataclasses.replace(outcome, body=body)

    def _document(self, number: str) -> UUID | None:
        parsed = parse(number)
        return document_numbered(self.app, parsed[1], parsed[2]) if parsed else None

    def file_checklist(self, cmd: sc.FileChecklist, actor: Actor, idem: Idempotency) -> Outcome:
        stream = sc.checklist_id(idem.principal, idem.key)

        def decide(uow: UnitOfWork, now: datetime) -> Decision[ChecklistView]:
            return outbound_checklists.decide_filing(uow, cmd, stream, self.zones, actor, now)

        return self._with_position(self._execute(201, idem, cmd, decide, actor), stream)

    def decide_on_checklist(
        self,
        number: str,
        action: str,
        cmd: sc.DecideChecklist,
        actor: Actor,
        idem: Idempotency | None,
    ) -> Outcome:
        """Approval, rejection or withdrawal of a checklist filed on its own; a declaration's
        checklist follows its declaration (409 `invalid_transition`)."""
        stream = self._document(number) if number.startswith("QD") else None

        def decide(uow: UnitOfWork, now: datetime) -> Decision[ChecklistView]:
            state = uow.load(stream, sc.Checklist) if stream else None
            if state is None or state.checklist_no != number:
                d = uow.load(stream, Declaration) if stream else None
                if d is not None and d.checklist_no == number and _sees(actor, d):
                    raise Conflict(
                        f"checklist {number} follows its declaration {d.facts.declaration_no}",
                        rule="invalid_transition",
                        current_status=checklist_view(d).status,
                    )
                raise NotFound(f"no checklist {number}")
            pending = uow.pending(state.id, sc.Checklist)
            return destruction.on_checklist(uow, pending, action, cmd, actor, now)

        outcome = self._execute(200, idem, cmd, decide, actor)
        return self._with_position(outcome, stream) if stream is not None else outcome

    def decide_collection(
        self,
        book_no: str,
        cmd: collected.DecideCollection,
        actor: Actor,
        idem: Idempotency | None,
    ) -> Outcome:
        """An officer permits a book to collect then declare, or withdraws the permission."""
        book = account_book_id(book_no)

        def decide(uow: UnitOfWork, now: datetime) -> Decision[collected.CollectionPermissionView]:
            return collected.decide_permission(uow, book_no, cmd, actor, now)

        return self._with_position(self._execute(200, idem, cmd, decide, actor), book)

    def collection_permission(
        self, book_no: str, actor: Actor
    ) -> collected.CollectionPermissionView:
        stream = account_book_id(book_no)
        book = visible_book(self.app.load(stream, AccountBook), Scope.of(actor))
        records = self.app.log.select_stream(stream)
        return collected.permission_view(book, records[-1].position if records else None)

    def gate_pass(self, number: str, actor: Actor) -> gp.GatePassView:
        stream = self._document(number) if number.startswith("HF") else None
        state = self.app.load(stream, gp.GatePass) if stream else None
        if state is None or state.pass_no != number or not gp.sees_pass(Scope.of(actor), state):
            raise NotFound(f"no gate pass {number}")
        records = self.app.log.select_stream(state.id)
        return gp.view(state, position=records[-1].position if records else None)

    def checklist(self, number: str, actor: Actor) -> ChecklistView:
        """A checklist as the write side knows it: the enterprise whose book it moves, the
        operators of its zone, officers and auditors see it."""
        stream = self._document(number) if number.startswith("QD") else None
        if stream is None:
            raise NotFound(f"no checklist {number}")
        records = self.app.log.select_stream(stream)
        position = records[-1].position if records else None
        own = self.app.load(stream, sc.Checklist)
        if own is not None and own.checklist_no == number and sc.sees(Scope.of(actor), own):
            return sc.view(own, self.clock(), position)
        state = self.app.load(stream, Declaration)
        if state is None or state.checklist_no != number or not _sees(actor, state):
            raise NotFound(f"no checklist {number}")
        return checklist_view(state, position)


def _sees(actor: Actor, d: Declaration) -> bool:
    """A declaration's checklist: the declarant, the zone's operators, everyone else."""
    scope = Scope.of(actor)
    if scope.role == "enterprise":
        return scope.enterprise == d.facts.declarant
    return scope.sees_zone(d.facts.zone)
