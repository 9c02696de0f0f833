"""The blocks of serials this process holds, and finding the event that issued a serial.

Number series are taken in blocks where several processes may write the store (PostgreSQL):
domain/numbering.py decides, and asks the unit of work which block this process holds. That is
knowledge of the process, not of any stream, so it is kept here, per application (one per
process; tests run two in one process as two servers), and never written to the log: a process
that starts again holds nothing and reserves a fresh block.

A held block is only a hint about where this process can number without racing; uniqueness
still rests on the store's (stream, version) key. A reservation counts as held from the moment
its decision is enqueued: while it waits for its group commit (the numbers decided on top of it
are dropped with it if that commit fails), and once its group committed. A reservation whose
group failed (another process reserved that version of the series first) or whose decision was
refused after all is forgotten the next time it is asked for, and the process reserves again.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

from domain.events import DomainEvent
from domain.numbering import block_id, place

if TYPE_CHECKING:
    from ledger.application import LedgerApplication


@dataclass
class _Held:
    block: int
    reservation: DomainEvent
    committed: bool = False


# Per application: series -> the block its process numbers from. An application's map is
# read and written only by its commands, under its command lock; the lock here only guards
# adding an application (tests run two in one process).
_HELD: weakref.WeakKeyDictionary[LedgerApplication, dict[UUID, _Held]] = weakref.WeakKeyDictionary()
_ADDING = threading.Lock()


def in_blocks(app: LedgerApplication) -> bool:
    """Whether the application's series are numbered in blocks: on PostgreSQL, where several
    server processes may write one store; SQLite has one server process per file and numbers
    straight from a series that has no block (gapless, as before blocks)."""
    return app.database.kind == "postgresql"


def hold(app: LedgerApplication, series: UUID, reservation: DomainEvent) -> int:
    """Note the block a decision of this process reserved (a `SerialBlockReserved`); its
    number."""
    block = getattr(reservation, "block", None)
    assert isinstance(block, int), reservation
    held_by_app = _HELD.get(app)
    if held_by_app is None:
        with _ADDING:
            held_by_app = _HELD.setdefault(app, {})
    held_by_app[series] = _Held(block, reservation)
    return block


def held(app: LedgerApplication, series: UUID) -> int | None:
    """The block of `series` this process numbers from, if its reservation is committed or
    waiting for its commit; a reservation that failed or was never enqueued is forgotten."""
    found = _HELD.get(app, {}).get(series)
    if found is None:
        return None
    if found.committed:
        return found.block
    reservation = found.reservation
    version = reservation.originator_version
    if app.overlay.by_stream.get(series, {}).get(version) is reservation:
        return found.block  # waiting for its group commit
    # Settled, or never enqueued. A committed group moves the kept state of the series onto
    # its reservation (the decision read the series, so it is kept); a failed one forgets it.
    # Nothing else reads the series into the kept states while this reservation is held.
    states = app.states
    if series in states and states.get(series).version >= version:
        found.committed = True
        # The kept state of the series is of no use until this block is used up, and by then
        # other processes will have reserved after it: the next reservation reads the store.
        states.forget_streams([series])
        return found.block
    del _HELD[app][series]
    return None


def issued_event(app: LedgerApplication, series: UUID, serial: int) -> Any | None:
    """The event of a number series that issued `serial` (None: never issued, or a gap):
    version n of the series when it issued serial n itself, else version v of the stream of
    the serial's block. On PostgreSQL the block is read first (where new numbers are)."""
    block, version = place(serial)
    reads = [(series, serial), (block_id(series, block), version)]
    for stream, at in reads[::-1] if in_blocks(app) else reads:
        for event in app.events.get(stream, gt=at - 1, lte=at):
            # Version n of a series numbered in blocks is a reservation, not an issue.
            if getattr(event, "serial", None) == serial:
                return event
    return None
