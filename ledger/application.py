"""The ledger's eventsourcing application: one per process, saving commands atomically."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError, Mapper

from domain.errors import ConcurrencyConflict
from domain.events import Pending, project
from ledger.database import Database, eventsourcing_env
from ledger.mapper import MsgspecMapper
from ledger.store import ChainedLog

T = TypeVar("T")

MAX_ATTEMPTS = 12


class LedgerApplication(Application[UUID]):
    """Event store, repository and the command loop with bounded retries."""

    name = "ledger"

    def __init__(self, database: Database) -> None:
        self.database = database
        # Commands of one process are serialised: the store serialises their inserts anyway
        # (SQLite's single writer, PostgreSQL's table lock), and this way they never lose a
        # race to each other on a hot stream such as a number series. Between processes
        # (several servers on one PostgreSQL) the version check decides and a loser retries.
        self._command_lock: AbstractContextManager[Any] = threading.RLock()
        env = eventsourcing_env(database) | {
            # States are immutable, so the cache hands them out without copying; each read
            # fast-forwards the cached state with the stream's newer events (other processes
            # may have written them).
            "AGGREGATE_CACHE_MAXSIZE": "10000",
            "AGGREGATE_CACHE_FASTFORWARD": "y",
            "DEEPCOPY_FROM_AGGREGATE_CACHE": "n",
        }
        super().__init__(env=env)

    def construct_mapper(self) -> Mapper[UUID]:
        return MsgspecMapper(transcoder=self.factory.transcoder())

    @property
    def log(self) -> ChainedLog:
        return self.recorder  # type: ignore[return-value]

    def load(self, stream: UUID) -> Any | None:
        """The current state of an aggregate, or None when it has no events."""
        try:
            return self.repository.get(stream, projector_func=project)
        except AggregateNotFoundError:
            return None

    def pending(self, stream: UUID) -> Pending[Any]:
        return Pending(self.load(stream), stream)

    def load_latest(self, stream: UUID) -> Any | None:
        """The state of a stream whose last event alone determines it (a counter).

        A number series gains one event per declaration; folding it from the start would make
        every submission slower than the one before. Its state is its last serial, so one
        indexed read of the last event is enough.
        """
        for event in self.events.get(stream, desc=True, limit=1):
            return event.apply(None)  # type: ignore[attr-defined]
        return None

    def pending_latest(self, stream: UUID) -> Pending[Any]:
        return Pending(self.load_latest(stream), stream)

    def run(self, command: Callable[[], tuple[list[Pending[Any]], T]]) -> tuple[T, int | None]:
        """Run a command: decide on fresh state, save atomically, retry a lost race.

        `command` loads what it needs, returns the aggregates with new events and its result.
        Returns the result and the log position of the last event written.
        """
        for attempt in range(MAX_ATTEMPTS):
            with self._command_lock:
                pendings, result = command()
                try:
                    recordings = self.save(*pendings)
                except IntegrityError:
                    pass
                else:
                    position = recordings[-1].notification.id if recordings else None
                    return result, position
            time.sleep(random.uniform(0, min(0.002 * 2**attempt, 0.1)))
        raise ConcurrencyConflict(
            "other writers changed the same records; retry the request",
        )

    def close(self) -> None:
        self.factory.close()
