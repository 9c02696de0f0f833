"""An in-memory unit of work for tests of the domain decisions: a tiny ledger.

The store is a dict stream -> events. `load` folds a stream's events; `pending` and `new`
hand out one `Pending` per stream until the next commit (as the ledger's does within one
decision); `counter` reads only the last event; `declaration_id` resolves an 18-digit number
through its number series (version n of the series names the declaration of serial n).
`commit` appends what a `Decision` saves, refusing a fork (an event whose version is not the
stream's next) and events recorded on a state the decision does not save.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

from domain.declaration import DeclarationNumberIssued, number_series_id
from domain.documents import DocumentNumberIssued
from domain.events import AggregateState, DomainEvent, Pending, project
from domain.unit_of_work import Decision, UnitOfWork

S = TypeVar("S", bound=AggregateState)
R = TypeVar("R")


class MemoryUnitOfWork:
    """Implements `domain.unit_of_work.UnitOfWork` over a dict, and commits decisions."""

    def __init__(self) -> None:
        self.streams: dict[UUID, list[DomainEvent]] = {}
        self._pendings: dict[UUID, Pending[Any]] = {}

    def load(self, stream: UUID, kind: type[S]) -> S | None:
        state = project(None, self.streams.get(stream, []))
        return state if isinstance(state, kind) else None

    def pending(self, stream: UUID, kind: type[S]) -> Pending[S]:
        if stream not in self._pendings:
            self._pendings[stream] = Pending(self.load(stream, kind), stream)
        return self._pendings[stream]

    def new(self, stream: UUID, kind: type[S]) -> Pending[S]:
        if stream not in self._pendings:
            self._pendings[stream] = Pending(None, stream)
        return self._pendings[stream]

    def counter(self, stream: UUID, kind: type[S]) -> Pending[S]:
        if stream not in self._pendings:
            events = self.streams.get(stream, [])
            state = events[-1].apply(None) if events else None
            self._pendings[stream] = Pending(state if isinstance(state, kind) else None, stream)
        return self._pendings[stream]

    def declaration_id(self, ref: str) -> UUID | None:
        if len(ref) == 18 and ref.isdigit():
            series = self.streams.get(number_series_id(ref[:4], int(ref[4:8]), ref[8]), [])
            serial = int(ref[9:])
            found = series[serial - 1] if 1 <= serial <= len(series) else None
            return found.declaration_id if isinstance(found, DeclarationNumberIssued) else None
        try:
            return UUID(ref)
        except ValueError:
            return None

    def numbered(self, series: UUID, serial: int) -> UUID | None:
        events = self.streams.get(series, [])
        found = events[serial - 1] if 1 <= serial <= len(events) else None
        return found.document_id if isinstance(found, DocumentNumberIssued) else None

    def commit(self, decision: Decision[R]) -> R:
        """Append the saved states' events in one write (all or nothing); the answer."""
        batch = [(p.id, p.collect_events()) for p in decision.saves]
        unsaved = [s for s, p in self._pendings.items() if p.events]
        self._pendings = {}
        assert not unsaved, f"events recorded on {unsaved} but not saved"
        written = {s: len(self.streams.get(s, [])) for s, _ in batch}
        for stream, events in batch:
            for event in events:
                written[stream] += 1
                assert event.originator_id == stream, f"{event!r} is not of stream {stream}"
                assert event.originator_version == written[stream], f"fork of {stream}: {event!r}"
        for stream, events in batch:
            self.streams.setdefault(stream, []).extend(events)
        return decision.answer

    def run(self, decide: Callable[..., Decision[R]], *args: Any) -> R:
        """Decide on the committed states and commit; a refusal leaves the store as it was."""
        self._pendings = {}
        try:
            decision = decide(self, *args)
        except BaseException:
            self._pendings = {}
            raise
        return self.commit(decision)

    def events_of(self, stream: UUID) -> list[DomainEvent]:
        return list(self.streams.get(stream, []))


if TYPE_CHECKING:  # mypy checks that it is a UnitOfWork
    _: UnitOfWork = MemoryUnitOfWork()
