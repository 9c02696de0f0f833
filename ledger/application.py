"""The ledger's eventsourcing application: one per process, saving commands atomically."""

from __future__ import annotations

import queue
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar, overload
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import ApplicationRecorder, IntegrityError, Mapper

from domain.errors import ConcurrencyConflict, LedgerError, Unavailable
from domain.events import AggregateState, DomainEvent, project
from domain.idempotency import RequestCompleted
from domain.reference_data import KINDS, register_id
from domain.unit_of_work import Decision
from ledger.database import Database, eventsourcing_env, schema_creation_lock
from ledger.history_shards import ShardClaim
from ledger.mapper import MsgspecMapper
from ledger.store import ChainedLog, StoreBusy
from ledger.unit_of_work import CommandUnitOfWork

T = TypeVar("T")
S = TypeVar("S", bound=AggregateState)

# Streams written by other processes beside a SQLite server (its one writer): their kept
# states are checked against the store before each use.
REFRESHED_STREAMS = frozenset(register_id(kind) for kind in KINDS)
REFRESH_SECONDS = 1.0
# Where other processes write the store, how old a glanced state may be (decision 0040).
GLANCE_SECONDS = 1.0
# Glanced states kept, least recently used dropped first.
GLANCES_KEPT = 100_000
MAX_ATTEMPTS = 12
# A batch's commands decided while the open group waits for them, at most: they commit together.
HELD_TICKETS = 100
# Seconds a client is told to wait after a write the store was too busy to take (503).
RETRY_AFTER_BUSY = 1


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
        # Committed states are kept here, so that a command reads the store only for what it
        # cannot know. If another process wrote a stream since, the (stream, version) key
        # refuses our stale write, the group fails, its streams are forgotten, and the
        # command decides again. On PostgreSQL (several processes) a group also commits only
        # if every stream its commands read and it does not write is still at the version
        # they saw (checked under the recorder's table lock); on SQLite, one server process
        # per file, a stale read-only stream is not looked for.
        self._states = CommittedStates(100_000)
        self._check_reads = database.kind == "postgresql"
        self._refreshed: dict[UUID, float] = {}  # when each REFRESHED_STREAMS state was checked
        # Streams this process consults but never writes (`glance`): when each was read, and
        # its state then.
        self._glances: OrderedDict[UUID, tuple[float, AggregateState | None]] = OrderedDict()
        self._shards = ShardClaim(database)
        self._pending = PendingGroups(self._states)
        # Told how many events each group committed, before its commands answer (metrics).
        self.on_appended: Callable[[int], None] | None = None
        # Told each command's seconds waiting for the decider, deciding, and waiting for its
        # group's commit, once it has its answer (metrics).
        self.on_command: Callable[[float, float, float], None] | None = None
        self._decider = Decider(self._decide_queued, self._pending.held)
        # Where buyers' new keys wait to be written with the group that uses them first
        # (ledger/buyer_keys.py `defer_new_keys`; set by the Ledger).
        self.new_keys: NewKeys | None = None
        self._committer = threading.Thread(
            target=self._commit_loop, name="ledger-group-commit", daemon=True
        )
        self._committer.start()

    def construct_recorder(self) -> ApplicationRecorder:
        """The recorder, its tables created under a PostgreSQL advisory lock.

        The library creates its table, type and insert function with statements that race
        when several processes start at once (two servers, a server and a projection worker):
        `CREATE TYPE` fails with a duplicate key and `CREATE OR REPLACE FUNCTION` with "tuple
        concurrently updated". One process at a time creates them; the others then find them.
        """
        if self.database.kind != "postgresql":
            return super().construct_recorder()
        with schema_creation_lock(self.database, "event store"):
            return super().construct_recorder()

    def construct_mapper(self) -> Mapper[UUID]:
        return MsgspecMapper(transcoder=self.factory.transcoder())

    @property
    def log(self) -> ChainedLog:  # type: ignore[override]  # the library's `log` is its reader
        # Our recorders (ledger/store/) are chained logs; the library types the recorder as
        # its base class.
        return self.recorder  # type: ignore[return-value]

    # -- reading state ---------------------------------------------------------------------

    @property
    def states(self) -> CommittedStates:
        """The committed states this process keeps (read and written by commands)."""
        return self._states

    @property
    def history_shard(self) -> int:
        """The shard of unit-value histories this process writes (ledger/history_shards.py)."""
        return self._shards.shard

    @property
    def claimed_history_shard(self) -> int | None:
        """`history_shard` if this process has claimed it (None: not yet); claims nothing."""
        return self._shards.claimed

    def glance(self, streams: Sequence[UUID]) -> list[AggregateState | None]:
        """Committed states of streams this process never writes, read without the commit's
        check (decision 0040). On SQLite no other process writes them: each is read once. On
        PostgreSQL a state is read again once it is GLANCE_SECONDS old, if its stream moved
        (one query for the versions of all that are due)."""
        now = time.monotonic()
        kept = self._glances
        due = [
            s
            for s in streams
            if s not in kept or (self._check_reads and now - kept[s][0] >= GLANCE_SECONDS)
        ]
        if due:
            versions_of = getattr(self.recorder, "stream_versions", None)  # PostgreSQL
            versions = versions_of(due) if versions_of is not None else {}
            for stream in due:
                before = kept[stream][1] if stream in kept else None
                unmoved = stream in kept and versions.get(stream, -1) == (
                    before.version if before is not None else 0
                )
                kept[stream] = (now, before if unmoved else self.stored(stream))
                kept.move_to_end(stream)
            while len(kept) > GLANCES_KEPT:
                kept.popitem(last=False)
        return [kept[s][1] for s in streams]

    def kept_is_stale(self, stream: UUID) -> bool:
        """Whether the kept state of a stream that other processes write (the reference
        registers: `customs-ledger reference load` beside a SQLite server) is behind the store.
        On SQLite one indexed read, at most once a second per stream (a command reads the
        registers on every submission); on PostgreSQL the commit's read check covers it."""
        if self._check_reads or stream not in REFRESHED_STREAMS:
            return False
        now = time.monotonic()
        if now - self._refreshed.get(stream, -REFRESH_SECONDS) < REFRESH_SECONDS:
            return False
        self._refreshed[stream] = now
        if self._stored_version(stream) == self._states.get(stream).version:
            return False
        self._states.forget_streams([stream])
        return True

    @property
    def overlay(self) -> PendingGroups:
        """The events of commands still waiting for their group commit, by stream."""
        return self._pending

    @overload
    def load(self, stream: UUID) -> Any | None: ...

    @overload
    def load(self, stream: UUID, kind: type[S]) -> S | None: ...

    def load(self, stream: UUID, kind: type[Any] | None = None) -> Any | None:
        """The committed state of a stream (no dirty reads), or None when it has no events
        (or, with `kind`, when it is not a `kind`). Commands read through their unit of work."""
        state = self.stored(stream)
        if kind is not None and not isinstance(state, kind):
            return None
        return state

    def stored(self, stream: UUID) -> AggregateState | None:
        try:
            state: AggregateState = self.repository.get(stream, projector_func=project)
        except AggregateNotFoundError:
            return None
        return state

    def latest_state(self, stream: UUID) -> AggregateState | None:
        """The state of a stream whose last event alone determines it (a counter)."""
        latest = next(iter(self.events.get(stream, desc=True, limit=1)), None)
        if latest is None:
            return None
        # The library types stored events as its own protocol; ours are DomainEvents.
        state: AggregateState = latest.apply(None)  # type: ignore[attr-defined]
        return state

    # -- the command loop with group commit ------------------------------------------------

    def run(
        self, decide: Callable[[CommandUnitOfWork], Decision[T]], *, prefetch: UUID | None = None
    ) -> tuple[T, int | None]:
        """Run a command: decide on fresh state, save atomically, retry a lost race.

        `decide` reads what it needs through the unit of work it is given and returns the
        states with new events and its answer. Returns the answer and the log position of the
        command's last event; raises its refusal. See `run_many`.
        """
        ran = self.run_many([Command(decide, prefetch)])[0]
        if ran.error is not None:
            raise ran.error
        return ran.answer, ran.position

    def run_many(self, commands: Sequence[Command[Any]]) -> list[Ran]:
        """Run commands in the order given, each with its own outcome (one refused never stops
        the others), committed in as few groups as they fit.

        Every command of the process is decided by one thread (the decider), in the order it
        reaches its queue, on the committed state plus the events of commands still waiting
        for their commit; the caller's thread only waits. Events are committed in groups - one
        transaction and one fsync for all the commands decided while the group before was
        committing - and a command answers only after its group is durable. If a group fails,
        every command in it and every command decided on top of it is decided again (after
        those before it in the list have been, so a retried command may come after a later
        one: only a lost race does that).

        `Command.prefetch` names a stream to read in the caller's thread before the command
        is queued (PostgreSQL: a read there is a round trip that every other command would
        wait for; an Idempotency-Key's record, new on nearly every request, is never kept).
        The first attempt uses what was read unless this process keeps a state of the stream;
        if it has moved on by the commit (a twin request, another process), the write fails on
        its version and the command is decided again.
        """
        results: dict[int, Ran] = {}  # by the command's index, once final
        prefetched: list[dict[UUID, AggregateState | None] | None] = [
            {c.prefetch: self.stored(c.prefetch)}
            if c.prefetch is not None and self._check_reads
            else None
            for c in commands
        ]
        todo = list(range(len(commands)))
        for attempt in range(MAX_ATTEMPTS):
            tickets = [_Ticket(commands[i].decide, prefetched[i]) for i in todo]
            prefetched = [None] * len(commands)  # for the first attempt only
            self._decider.submit(tickets)
            again, lost = self._settled(todo, tickets, results)
            if not again:
                break
            # Lost a race with another process, or decided on top of a group that failed.
            _back_off(lost, attempt)
            todo = again
        else:
            for i in todo:
                results[i] = Ran(
                    error=ConcurrencyConflict(
                        "other writers changed the same records; retry the request"
                    )
                )
        # Every command is final by now: each attempt settles or decides again every one of
        # `todo`, and the loop ends with none left to decide again (or all of them refused).
        return [results[i] for i in range(len(commands))]

    def _settled(
        self, todo: list[int], tickets: list[_Ticket], results: dict[int, Ran]
    ) -> tuple[list[int], Group | bool]:
        """Wait for the tickets' decisions, then for their groups; put in `results` what is
        final, by command index. Returns the commands to decide again and what the last lost
        one rests on."""
        again: list[int] = []
        lost: Group | bool = False
        for ticket in tickets:
            ticket.decided.wait()
        for i, ticket in zip(todo, tickets, strict=True):
            if ticket.error is not None:
                results[i] = Ran(error=ticket.error)
            elif ticket.decision is None:
                again.append(i)
                lost = ticket.lost if isinstance(ticket.lost, Group) or not lost else lost
            elif ticket.group is None:
                results[i] = Ran(answer=ticket.decision.answer)
            else:
                waited = time.perf_counter()
                ticket.group.wait()
                failed = ticket.group.failed
                if failed is None:
                    last = ticket.last
                    position = ticket.group.positions[last] if last >= 0 else None
                    results[i] = Ran(answer=ticket.decision.answer, position=position)
                    if self.on_command is not None:
                        with suppress(Exception):  # an observer's failure changes no answer
                            self.on_command(
                                ticket.queued, ticket.deciding, time.perf_counter() - waited
                            )
                elif (error := _failure(failed)) is not None:
                    results[i] = Ran(error=error)
                else:
                    again.append(i)
                    lost = True
        return again, lost

    def _decide(
        self, uow: CommandUnitOfWork, decide: Callable[[CommandUnitOfWork], Decision[T]]
    ) -> tuple[Group | bool, Decision[T] | None]:
        """(False, the decision), or (a lost race: True, or the group to wait for first, None).
        Raises a refusal or a bug."""
        try:
            return False, decide(uow)
        except LedgerError:
            # A refusal may rest on a kept state that another process has moved on since
            # (PostgreSQL): then it is decided again on what is stored now.
            if not (self._check_reads and self._forget_moved(uow)):
                raise
            return True, None
        except Exception:
            # Reads of several streams are not one snapshot, and this process's own
            # uncommitted groups may yet fail: a decision on such a mix can fail in ways a
            # consistent state never would. If this process has groups still committing, or a
            # stream read has moved on since, it is a lost race: decide again (after them).
            # Otherwise it is a bug: raise it.
            lost = self._pending.latest_group() or self._read_moved_on(uow)
            if lost is False:
                raise
            return lost, None

    def _enqueue(self, decision: Decision[Any], uow: CommandUnitOfWork) -> tuple[Group | None, int]:
        """Add the decision's events to the open group: (the group to wait for, the index of
        its last event there; -1 and the latest group for a decision that writes nothing)."""
        events = [e for p in decision.saves for e in p.collect_events()]
        if events:
            return self._pending.add(events, uow.seen)
        return self._pending.latest_group(), -1

    def _read_moved_on(self, uow: CommandUnitOfWork) -> bool:
        """Whether a stream the failed command read has a newer committed version now."""
        return any(self._stored_version(s) != v for s, v in uow.reads.items())

    def _forget_moved(self, uow: CommandUnitOfWork) -> bool:
        """Forget the kept states the failed command used whose streams have moved on in the
        store; whether there were any."""
        cached = uow.cached
        versions = getattr(self.recorder, "stream_versions", None)  # PostgreSQL: one query
        if versions is not None:
            stored = versions(list(cached))
            moved = [s for s, v in cached.items() if stored[s] != v]
        else:
            moved = [s for s, v in cached.items() if self._stored_version(s) != v]
        self._states.forget_streams(moved)
        return bool(moved)

    def _stored_version(self, stream: UUID) -> int:
        latest = next(iter(self.events.get(stream, desc=True, limit=1)), None)
        return latest.originator_version if latest is not None else 0

    def _decide_queued(self, ticket: _Ticket) -> None:
        """The decider thread's work for one command (ticket): decide it and put its events in
        the open group, under the lock the committer takes to settle a group."""
        began = time.perf_counter()
        ticket.queued = began - ticket.submitted
        with self._command_lock:
            uow = CommandUnitOfWork(self, ticket.prefetched)
            try:
                ticket.lost, ticket.decision = self._decide(uow, ticket.decide)
                if ticket.decision is not None:
                    ticket.group, ticket.last = self._enqueue(ticket.decision, uow)
            except BaseException as e:  # a refusal, or a bug: the caller raises it
                ticket.error = e
        ticket.deciding = time.perf_counter() - began
        ticket.decided.set()

    def _commit_loop(self) -> None:
        while True:
            group = self._pending.next_group()
            if group is None:
                return
            keys: list[tuple[str, int, bytes]] = []
            if self.new_keys is not None:
                # Every key made so far is used by this group or by the open one: written
                # first, in one transaction, so no event is durable before its key.
                with self._command_lock:
                    keys = self.new_keys.take_new_keys()
            try:
                if keys and self.new_keys is not None:
                    self.new_keys.write_new_keys(keys)
                if self._check_reads:
                    recordings = self.events.put(group.events, expected_versions=group.reads())
                else:
                    recordings = self.events.put(group.events)
                group.positions = [r.notification.id for r in recordings]
            except BaseException as e:  # the group's commands see it and decide again
                group.failed = e
            with self._command_lock:
                if keys and self.new_keys is not None:
                    self.new_keys.settle_new_keys(keys)
                self._pending.settle(group)
            if group.failed is None and self.on_appended is not None:
                with suppress(Exception):  # an observer's failure must never stop the commits
                    self.on_appended(len(group.events))
            group.done.set()

    def close(self) -> None:
        self._decider.shut()
        self._pending.shut()
        self._committer.join(timeout=10)
        self._shards.release()
        self.factory.close()


def _back_off(lost: Group | bool, attempt: int) -> None:
    """Before deciding again: wait for the group a lost race rests on, then a random pause."""
    if isinstance(lost, Group):
        lost.wait()
    time.sleep(random.uniform(0, min(0.002 * 2**attempt, 0.1)))


def _failure(failed: BaseException) -> BaseException | None:
    """What a failed group's command answers: None for a lost race (it is decided again), a
    503 for a store too busy to take it, else the error itself."""
    if isinstance(failed, StoreBusy):
        detail = str(failed)  # the store's message (StoreBusy's, translated too)
        error = Unavailable(
            f"the ledger is busy ({detail}); nothing was written, send it again",
            retry_after=RETRY_AFTER_BUSY,
        )
        error.__cause__ = failed
        return error
    if isinstance(failed, (IntegrityError, _Abandoned)):
        return None
    return failed


class NewKeys(Protocol):
    """Keys the commands made and the committer writes before their events (BuyerKeys)."""

    def take_new_keys(self) -> list[tuple[str, int, bytes]]: ...

    def write_new_keys(self, keys: list[tuple[str, int, bytes]]) -> None: ...

    def settle_new_keys(self, keys: list[tuple[str, int, bytes]]) -> None: ...


@dataclass(frozen=True)
class Command(Generic[T]):
    """A command for `LedgerApplication.run_many`: its decision, and a stream to prefetch."""

    decide: Callable[[CommandUnitOfWork], Decision[T]]
    prefetch: UUID | None = None


@dataclass(frozen=True)
class Ran:
    """What one command of `run_many` came to: its answer and the position of its last event
    (None: it wrote nothing), or the error it is refused with."""

    answer: Any = None
    position: int | None = None
    error: BaseException | None = None


class _Ticket:
    """One attempt of one command, from the caller's thread to the decider and back."""

    __slots__ = (
        "decide",
        "decided",
        "deciding",
        "decision",
        "error",
        "group",
        "last",
        "lost",
        "prefetched",
        "queued",
        "submitted",
    )

    def __init__(
        self,
        decide: Callable[[CommandUnitOfWork], Decision[Any]],
        prefetched: dict[UUID, AggregateState | None] | None,
    ) -> None:
        self.decide = decide
        self.prefetched = prefetched
        self.decided = threading.Event()
        self.submitted = time.perf_counter()
        self.queued = 0.0
        self.deciding = 0.0
        self.lost: Group | bool = False
        self.decision: Decision[Any] | None = None
        self.group: Group | None = None
        self.last = -1
        self.error: BaseException | None = None


class Decider:
    """The one thread that decides the process's commands, in the order they are queued.

    Request threads parse, authenticate and encode in parallel; deciding is serial anyway (a
    decision reads the pending events of every decision before it), and one thread taking
    commands from a queue does it without the lock hand-offs of many threads taking turns.
    """

    def __init__(
        self, decide: Callable[[_Ticket], None], held: Callable[[], AbstractContextManager[Any]]
    ) -> None:
        self._decide = decide
        self._held = held
        self._queue: queue.SimpleQueue[list[_Ticket] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="ledger-decider", daemon=True)
        self._thread.start()

    def submit(self, tickets: list[_Ticket]) -> None:
        """Queue commands to be decided one after the other, in this order; several (a batch)
        are decided with the open group held, so that they commit together (up to
        `HELD_TICKETS` at a time: a long batch must not hold back everyone else's commit)."""
        self._queue.put(tickets)

    def _loop(self) -> None:
        while (tickets := self._queue.get()) is not None:
            if len(tickets) == 1:
                self._decide(tickets[0])
                continue
            for start in range(0, len(tickets), HELD_TICKETS):
                with self._held():
                    for ticket in tickets[start : start + HELD_TICKETS]:
                        self._decide(ticket)

    def shut(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)


class CommittedStates:
    """Committed aggregate states by stream, least recently used dropped first."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._states: OrderedDict[UUID, Any] = OrderedDict()

    def __contains__(self, stream: UUID) -> bool:
        return stream in self._states

    def get(self, stream: UUID) -> Any:
        self._states.move_to_end(stream)
        return self._states[stream]

    def put(self, stream: UUID, state: Any) -> None:
        self._states[stream] = state
        self._states.move_to_end(stream)
        while len(self._states) > self.maxsize:
            self._states.popitem(last=False)

    def advance(self, events: list[Any]) -> None:
        """Apply committed events to the states they follow; forget any that do not fit.

        A new Idempotency-Key's record is not kept: only a retry reads it again (from the
        store), and its answer, a tree of lists and dicts, would stay for the collector to
        walk on every full collection (docs/benchmarks.md, the P1 stall)."""
        for e in events:
            state = self._states.get(e.originator_id)
            if state is not None and state.version == e.originator_version - 1:
                self._states[e.originator_id] = e.apply(state)
            elif state is None and e.originator_version == 1:
                if not isinstance(e, RequestCompleted):
                    self.put(e.originator_id, e.apply(None))
            else:
                self._states.pop(e.originator_id, None)

    def forget(self, events: list[Any]) -> None:
        for e in events:
            self._states.pop(e.originator_id, None)

    def forget_streams(self, streams: Iterable[UUID]) -> None:
        for stream in streams:
            self._states.pop(stream, None)


class _Abandoned(Exception):
    """A group was decided on top of a group whose commit failed."""


class Group:
    """Events of commands that arrived together, committed in one transaction."""

    def __init__(self) -> None:
        self.events: list[DomainEvent] = []
        self.positions: list[int] = []
        self.failed: BaseException | None = None
        self.done = threading.Event()
        # The version of each stream its commands decided on (-1: two saw different ones).
        self.seen: dict[UUID, int] = {}

    def reads(self) -> dict[UUID, int]:
        """The streams its commands read and it does not write, at the versions they saw:
        what must not have moved when it commits (the streams it writes are checked by their
        versions' key)."""
        written = {e.originator_id for e in self.events}
        return {s: v for s, v in self.seen.items() if s not in written}

    def wait(self) -> None:
        self.done.wait()


class PendingGroups:
    """The open group, the one being committed, and their events by stream (the overlay).

    Every method except `next_group` runs under the application's command lock.
    """

    def __init__(self, states: CommittedStates) -> None:
        self.states = states
        self._ready = threading.Condition()
        self.open = Group()
        self.committing: Group | None = None
        self.by_stream: dict[UUID, dict[int, DomainEvent]] = {}
        self._closed = False
        self._holds = 0  # while above 0, the open group is not taken for its commit

    def add(self, events: list[DomainEvent], seen: dict[UUID, int]) -> tuple[Group, int]:
        with self._ready:
            group = self.open
            group.events.extend(events)
            for stream, version in seen.items():
                if group.seen.setdefault(stream, version) != version:
                    group.seen[stream] = -1
            for e in events:
                self.by_stream.setdefault(e.originator_id, {})[e.originator_version] = e
            self._ready.notify()
            return group, len(group.events) - 1

    def latest_group(self) -> Group | None:
        """The group a read-only command must wait for before its answer counts as durable."""
        if self.open.events:
            return self.open
        return self.committing

    def fold(self, stream: UUID, state: Any) -> Any:
        pending = self.by_stream.get(stream)
        if not pending:
            return state
        version = state.version if state is not None else 0
        # Committed events may still be listed here for a moment: skip what the state has.
        while (event := pending.get(version + 1)) is not None:
            state = event.apply(state)
            version += 1
        return state

    def latest(self, stream: UUID, committed: Any) -> Any:
        """The state of a counter stream: its newest pending event wins over the committed one."""
        pending = self.by_stream.get(stream)
        if not pending:
            return committed
        newest = pending[max(pending)]
        if committed is None or newest.originator_version > committed.version:
            return newest.apply(None)
        return committed

    @contextmanager
    def held(self) -> Iterator[None]:
        """The open group is not committed while this lasts (the decider adds a batch)."""
        with self._ready:
            self._holds += 1
        try:
            yield
        finally:
            with self._ready:
                self._holds -= 1
                self._ready.notify()

    def next_group(self) -> Group | None:
        with self._ready:
            while not self.open.events or (self._holds and not self._closed):
                if self._closed:
                    return None
                self._ready.wait()
            group, self.open = self.open, Group()
            self.committing = group
            return group

    def settle(self, group: Group) -> None:
        with self._ready:
            if group.failed is None:
                self.states.advance(group.events)
            else:
                self.states.forget(group.events)
                self.states.forget(self.open.events)
                # A stream it read may be what moved (another process wrote it).
                self.states.forget_streams(group.seen)
                self.states.forget_streams(self.open.seen)
            for e in group.events:
                versions = self.by_stream.get(e.originator_id)
                if versions is not None and versions.get(e.originator_version) is e:
                    del versions[e.originator_version]
                    if not versions:
                        del self.by_stream[e.originator_id]
            self.committing = None
            if group.failed is not None and self.open.events:
                # Commands in the open group may have decided on the failed events: drop
                # them all, so nothing is committed on top of a version that never was.
                abandoned, self.open = self.open, Group()
                abandoned.failed = _Abandoned()
                for e in abandoned.events:
                    versions = self.by_stream.get(e.originator_id)
                    if versions is not None:
                        versions.pop(e.originator_version, None)
                        if not versions:
                            del self.by_stream[e.originator_id]
                abandoned.done.set()

    def shut(self) -> None:
        with self._ready:
            self._closed = True
            self._ready.notify_all()
