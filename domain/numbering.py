"""Serials of a number series taken in blocks, so that several processes never share a stream.

A number series (declarations per customs office, year and direction; checklists and gate
passes per office, 2-digit year and direction) must give no serial twice. Numbered straight
from the series, every number is the next version of one stream: one process decides them in
order (group commit), but two processes on one PostgreSQL race for every version and the loser
decides again (a 409 after twelve losses). So where several processes may write the store, a
process reserves a block of BLOCK_SIZE serials with one `SerialBlockReserved` on the series
stream, then numbers from its block on the block's own stream, which no other process writes:
serial `block * BLOCK_SIZE + v` is version v of the block stream (the same `...NumberIssued`
event as a direct issue, its `serial` saying which). The series stream takes one event per
block instead of one per number, and which block a process holds is the process's own
knowledge (`UnitOfWork.held_block`), never the series' state: a new process reserves a fresh
block, and the unused rest of a block whose process stopped is never issued (a gap).

Uniqueness rests on the store's (stream, version) key alone, as it did: two reservations of
one block are one version of the series stream, and two issues of one serial one version of
its block's stream. Which block a process believes it holds only decides whether it races.

A store with one writer (SQLite: one server process per file) numbers straight from the
series, gapless, as before blocks existed, for as long as the series has never reserved a
block; once it has, it continues in blocks (its direct serials are versions 1..n of the
series, which lookups rely on). Blocks are aligned: block b holds serials b*BLOCK_SIZE+1 to
(b+1)*BLOCK_SIZE; the first block after n direct serials is the first that starts above n.
docs/decisions/0035-number-blocks.md has the reasons and the gap rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from domain.declaration import NumberSeries
from domain.events import Actor, DomainEvent, Pending, stream_id
from domain.unit_of_work import UnitOfWork

# Serials per block. Part of the log's format, like a stream's name: a lookup finds the block
# of a serial by dividing by it, so it must never change for a series that has blocks. A
# hundred keeps the series stream at one event per hundred numbers (at 800 numbers/s, eight
# reservations a second, rarely two at once) while a stopped process leaves at most 99
# serials of each of its series unissued.
BLOCK_SIZE = 100


class SerialBlockReserved(DomainEvent, frozen=True, kw_only=True):
    """A process took serials `first` to `last` (block `block`) of a series for itself; it
    issues them on the block's stream (`block_id`), in order."""

    block: int
    first: int
    last: int

    def apply(self, state: NumberSeries | None) -> NumberSeries:
        return NumberSeries(
            id=self.originator_id,
            version=self.originator_version,
            last_serial=self.last,
            in_blocks=True,
        )


def block_id(series: UUID, block: int) -> UUID:
    """The stream of block `block` of the series `series` (any kind of series)."""
    return stream_id("number-block", f"{series}:{block}")


def place(serial: int) -> tuple[int, int]:
    """(block, version in the block's stream) of a serial issued from a block."""
    return (serial - 1) // BLOCK_SIZE, (serial - 1) % BLOCK_SIZE + 1


def next_block(series: NumberSeries | None) -> int:
    """The block a reservation takes: the first one wholly above every serial the series has
    issued or reserved."""
    last = series.last_serial if series is not None else 0
    return -(-last // BLOCK_SIZE)


@dataclass(frozen=True)
class Taken:
    """A serial taken for one number: the stream to record its `...NumberIssued` on (the
    series, or the block), and the streams the decision saves for it, in write order."""

    serial: int
    issue_on: Pending[NumberSeries]
    saves: Sequence[Pending[Any]]


def take_serial(uow: UnitOfWork, series: UUID, actor: Actor, occurred_at: datetime) -> Taken:
    """The next serial of `series` for this decision: from the block this process holds,
    else straight from the series (one writer, no blocks yet), else from a block reserved now
    (recorded on the series, and told to the unit of work for this process's later numbers).
    Two numbers of one decision, or of decisions waiting for one group commit, get consecutive
    serials: each reads the block's state with the numbers before it."""
    held = uow.held_block(series)
    if held is not None:
        block = uow.counter(block_id(series, held), NumberSeries)
        if block.next_version <= BLOCK_SIZE:
            return Taken(held * BLOCK_SIZE + block.next_version, block, [block])
    counter = uow.counter(series, NumberSeries)
    state = counter.state
    if not uow.numbers_in_blocks and (state is None or not state.in_blocks):
        return Taken((state.last_serial if state is not None else 0) + 1, counter, [counter])
    number = next_block(state)
    first = number * BLOCK_SIZE + 1
    reservation = counter.record(
        SerialBlockReserved,
        actor=actor,
        occurred_at=occurred_at,
        block=number,
        first=first,
        last=first + BLOCK_SIZE - 1,
    )
    uow.hold_block(series, reservation)
    block = uow.new(block_id(series, number), NumberSeries)
    return Taken(first, block, [counter, block])
