"""The unit of work a decision reads and writes through, and what a decision returns.

A command's decision is a domain function `decide(uow, ...) -> Decision`: it reads the states
it depends on through the unit of work (typed: `uow.load(stream, Declaration)`), records new
events on `Pending` states, and returns which of them to save and the answer. The ledger's
implementation (ledger/unit_of_work.py) reads the committed states plus the events of
commands still waiting for their group commit, and notes every version it saw so that a
stale decision is refused at commit and decided again. Tests use an in-memory one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar
from uuid import UUID

from domain.events import AggregateState, DomainEvent, Pending

S = TypeVar("S", bound=AggregateState)
R = TypeVar("R")


class UnitOfWork(Protocol):
    """Reads for one decision; every state read is one the commit checks has not moved."""

    def load(self, stream: UUID, kind: type[S]) -> S | None:
        """The state of `stream`, or None when it has no events or is not a `kind`."""
        ...

    def pending(self, stream: UUID, kind: type[S]) -> Pending[S]:
        """The state of `stream` ready to record events on (the same object when asked twice
        in one decision, so two parts of a decision never fork a stream)."""
        ...

    def new(self, stream: UUID, kind: type[S]) -> Pending[S]:
        """A stream the decision creates (its id is new: a movement, a lot); nothing is read,
        and a stream that exists after all is refused by its version at commit."""
        ...

    def counter(self, stream: UUID, kind: type[S]) -> Pending[S]:
        """A stream whose last event alone is its state (a number series): read that only."""
        ...

    def declaration_id(self, ref: str) -> UUID | None:
        """A declaration's stream from its id or its 18-digit number."""
        ...

    def glance(self, streams: Sequence[UUID], kind: type[S]) -> list[S | None]:
        """The states of streams this process never writes and the decision only consults
        (other processes' shards of a unit-value history, decision 0040): committed states at
        most a second old where other processes write the store, not checked at commit - a
        write there never makes this decision lose a race. None where a stream has no events
        or is not a `kind`."""
        ...

    @property
    def history_shard(self) -> int:
        """The shard of unit-value histories this process writes (domain/unit_values.py):
        0 for a single writer; on PostgreSQL the one the process claimed the first time it
        was asked for (its first assessment)."""
        ...

    # Number series taken in blocks (domain/numbering.py). Which block a process numbers from
    # is the process's own knowledge, kept by the unit of work's owner, not in any state: the
    # decision is handed it as part of its context, as it is handed the clock.
    @property
    def numbers_in_blocks(self) -> bool:
        """Whether several processes may write the store, so that a series is numbered from
        blocks (False: one writer, straight from the series while it has no blocks)."""
        ...

    def held_block(self, series: UUID) -> int | None:
        """The block of `series` this process reserved and numbers from (None: none), as
        long as its reservation is committed or still waiting for its group commit."""
        ...

    def hold_block(self, series: UUID, reservation: DomainEvent) -> None:
        """The decision reserved a block of `series` (the `SerialBlockReserved` it recorded):
        this process's later numbers of the series come from it."""
        ...

    def numbered(self, series: UUID, serial: int) -> UUID | None:
        """The document a checklist or gate-pass series gave `serial` (domain/documents.py)."""
        ...


@dataclass(frozen=True)
class Decision(Generic[R]):
    """What a decision returns: the states with new events to save in one atomic write, in
    the order their events are written, and the answer to the command."""

    saves: Sequence[Pending[Any]]
    answer: R


class LazyPendings(dict[UUID, Pending[Any]]):
    """States of lots read only when a decision draws on them (FIFO decides which)."""

    def __init__(self, uow: UnitOfWork, kind: type[AggregateState]) -> None:
        super().__init__()
        self.uow = uow
        self.kind = kind

    def __missing__(self, stream: UUID) -> Pending[Any]:
        self[stream] = found = self.uow.pending(stream, self.kind)
        return found
