"""An in-memory unit of work for tests of the domain decisions: a tiny ledger.

The store is a dict stream -> events. `load` folds a stream's events; `pending` and `new`
hand out one `Pending` per stream until the next commit (as the ledger's does within one
decision); `counter` reads only the last event; `declaration_id` resolves an 18-digit number
through its number series (version n of the series names the declaration of serial n) or the
series' block (domain/numbering.py). `in_blocks=True` numbers in blocks as a process on
PostgreSQL does; `process()` is another process on the same streams (its own held blocks).
`commit` appends what a `Decision` saves, refusing a fork (an event whose version is not the
stream's next) and events recorded on a state the decision does not save.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

from domain.declaration import DeclarationNumberIssued, number_series_id
from domain.documents import DocumentNumberIssued
from domain.events import AggregateState, DomainEvent, Pending, project
from domain.numbering import SerialBlockReserved, block_id, place
from domain.unit_of_work import Decision, UnitOfWork

S = TypeVar("S", bound=AggregateState)
R = TypeVar("R")


class MemoryUnitOfWork:
    """Implements `domain.unit_of_work.UnitOfWork` over a dict, and commits decisions."""

    def __init__(
        self, in_blocks: bool = False, streams: dict[UUID, list[DomainEvent]] | None = None
    ) -> None:
        self.streams: dict[UUID, list[DomainEvent]] = {} if streams is None else streams
        self._pendings: dict[UUID, Pending[Any]] = {}
        self.in_blocks = in_blocks
        # Blocks this "process" reserved: series -> (block, reservation), forgotten when the
        # reservation is not in the store (its decision was refused, or lost at commit).
        self.held: dict[UUID, tuple[int, DomainEvent]] = {}
        self._reserving: dict[UUID, tuple[int, DomainEvent]] = {}
        # The shard of unit-value histories this "process" writes (domain/unit_values.py).
        self.history_shard = 0

    def process(self) -> MemoryUnitOfWork:
        """Another process writing the same streams: nothing held, numbered in blocks, its own
        shard of unit-value histories."""
        other = MemoryUnitOfWork(in_blocks=self.in_blocks, streams=self.streams)
        other.history_shard = self.history_shard + 1
        return other

    @property
    def numbers_in_blocks(self) -> bool:
        return self.in_blocks

    def held_block(self, series: UUID) -> int | None:
        found = self._reserving.get(series) or self.held.get(series)
        if found is None:
            return None
        block, reservation = found
        events = self.streams.get(series, [])
        version = reservation.originator_version
        if self._reserving.get(series) is found or (
            len(events) >= version and events[version - 1] is reservation
        ):
            return block
        del self.held[series]
        return None

    def hold_block(self, series: UUID, reservation: DomainEvent) -> None:
        assert isinstance(reservation, SerialBlockReserved)
        self._reserving[series] = (reservation.block, reservation)

    def load(self, stream: UUID, kind: type[S]) -> S | None:
        state = project(None, self.streams.get(stream, []))
        return state if isinstance(state, kind) else None

    def glance(self, streams: Sequence[UUID], kind: type[S]) -> list[S | None]:
        """The states as committed (another process's writes are seen at once here)."""
        return [self.load(stream, kind) for stream in streams]

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
            found = self._issued(number_series_id(ref[:4], int(ref[4:8]), ref[8]), int(ref[9:]))
            return found.declaration_id if isinstance(found, DeclarationNumberIssued) else None
        try:
            return UUID(ref)
        except ValueError:
            return None

    def numbered(self, series: UUID, serial: int) -> UUID | None:
        found = self._issued(series, serial)
        return found.document_id if isinstance(found, DocumentNumberIssued) else None

    def _issued(self, series: UUID, serial: int) -> DomainEvent | None:
        """Version n of the series if it issued serial n, else version v of its block."""
        block, version = place(serial)
        for stream, at in ((series, serial), (block_id(series, block), version)):
            events = self.streams.get(stream, [])
            found = events[at - 1] if 1 <= at <= len(events) else None
            if getattr(found, "serial", None) == serial:
                return found
        return None

    def commit(self, decision: Decision[R]) -> R:
        """Append the saved states' events in one write (all or nothing); the answer."""
        batch = [(p.id, p.collect_events()) for p in decision.saves]
        unsaved = [s for s, p in self._pendings.items() if p.events]
        self._pendings = {}
        reserved, self._reserving = self._reserving, {}
        assert not unsaved, f"events recorded on {unsaved} but not saved"
        written = {s: len(self.streams.get(s, [])) for s, _ in batch}
        for stream, events in batch:
            for event in events:
                written[stream] += 1
                assert event.originator_id == stream, f"{event!r} is not of stream {stream}"
                if event.originator_version != written[stream]:
                    raise StaleWrite(f"fork of {stream}: {event!r}")
        for stream, events in batch:
            self.streams.setdefault(stream, []).extend(events)
        self.held.update(reserved)
        return decision.answer

    def run(self, decide: Callable[..., Decision[R]], *args: Any) -> R:
        """Decide on the committed states and commit; a refusal leaves the store as it was."""
        self._pendings = {}
        self._reserving = {}
        try:
            decision = decide(self, *args)
        except BaseException:
            self._pendings = {}
            self._reserving = {}
            raise
        return self.commit(decision)

    def events_of(self, stream: UUID) -> list[DomainEvent]:
        return list(self.streams.get(stream, []))


class StaleWrite(AssertionError):
    """A decision's event is not its stream's next version: a fork, or (two processes) a race
    another process won (the store's (stream, version) key)."""


if TYPE_CHECKING:  # mypy checks that it is a UnitOfWork
    _: UnitOfWork = MemoryUnitOfWork()
