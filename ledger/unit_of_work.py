"""The ledger's unit of work: what one attempt of one command reads, typed and tracked.

A decision reads the committed states plus the events of commands still waiting for their
group commit (never another process's uncommitted writes), and every read is noted: the
version of each stream it decided on (`seen`, checked at commit on PostgreSQL), the streams
it read from the store (`reads`) and from the kept states (`cached`), so that a lost race is
recognised and decided again (ledger/application.py `run`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

from domain.declaration import number_series_id
from domain.events import AggregateState, DomainEvent, Pending
from ledger import number_blocks
from ledger.number_blocks import issued_event

if TYPE_CHECKING:
    from ledger.application import LedgerApplication

S = TypeVar("S", bound=AggregateState)


class CommandUnitOfWork:
    """One attempt of one command; it lives while the application's command lock is held."""

    __slots__ = ("_app", "_pendings", "_prefetched", "_reserved", "cached", "reads", "seen")

    def __init__(
        self, app: LedgerApplication, prefetched: dict[UUID, AggregateState | None] | None
    ) -> None:
        self._app = app
        self._prefetched = prefetched
        self._pendings: dict[UUID, Pending[Any]] = {}
        # Blocks this decision reserved, by series: its later numbers come from them (the
        # process's map knows them only once the decision is enqueued).
        self._reserved: dict[UUID, int] = {}
        # The version of each stream the decision depends on (0: no events).
        self.seen: dict[UUID, int] = {}
        # Streams read from the store, at the version read.
        self.reads: dict[UUID, int] = {}
        # Streams taken from the kept committed states, at the version kept.
        self.cached: dict[UUID, int] = {}

    def load(self, stream: UUID, kind: type[S]) -> S | None:
        state = self._state(stream)
        return state if isinstance(state, kind) else None

    def pending(self, stream: UUID, kind: type[S]) -> Pending[S]:
        found = self._pendings.get(stream)
        if found is None:
            found = self._pendings[stream] = Pending(self.load(stream, kind), stream)
        return found

    def new(self, stream: UUID, kind: type[S]) -> Pending[S]:
        found = self._pendings.get(stream)
        if found is None:
            found = self._pendings[stream] = Pending(None, stream)
        return found

    def counter(self, stream: UUID, kind: type[S]) -> Pending[S]:
        """A number series (or block of one) gains one event per number; folding it from the
        start would make every submission slower than the one before. Its state is its last
        serial, so one indexed read of the last event (or the kept state) is enough, and none
        when this process's own first event of the stream is still waiting for its commit (a
        block just reserved: the store has nothing else there, or that commit fails)."""
        found = self._pendings.get(stream)
        if found is not None:
            return found
        app = self._app
        if 1 in app.overlay.by_stream.get(stream, {}):
            state = None
        elif stream in app.states:
            state = app.states.get(stream)
            self.cached[stream] = state.version
        else:
            state = app.latest_state(stream)
            if state is not None:
                app.states.put(stream, state)
        state = self._saw(stream, app.overlay.latest(stream, state))
        found = self._pendings[stream] = Pending(state if isinstance(state, kind) else None, stream)
        return found

    def glance(self, streams: Sequence[UUID], kind: type[S]) -> list[S | None]:
        app = self._app
        glanced = zip(streams, app.glance(streams), strict=True)
        states = (app.overlay.fold(stream, state) for stream, state in glanced)
        return [state if isinstance(state, kind) else None for state in states]

    @property
    def history_shard(self) -> int:
        return self._app.history_shard

    @property
    def numbers_in_blocks(self) -> bool:
        return number_blocks.in_blocks(self._app)

    def held_block(self, series: UUID) -> int | None:
        if series in self._reserved:
            return self._reserved[series]
        return number_blocks.held(self._app, series)

    def hold_block(self, series: UUID, reservation: DomainEvent) -> None:
        self._reserved[series] = number_blocks.hold(self._app, series, reservation)

    def declaration_id(self, ref: str) -> UUID | None:
        """A declaration's stream from its id, or from its 18-digit number: the event that
        issued its serial (on the series or its block, ledger/number_blocks.py) names the
        declaration it numbered."""
        if len(ref) == 18 and ref.isdigit():
            series = number_series_id(ref[:4], int(ref[4:8]), ref[8])
            issued = issued_event(self._app, series, int(ref[9:]))
            # This series' events are `DeclarationNumberIssued`.
            return issued.declaration_id if issued is not None else None
        try:
            return UUID(ref)
        except ValueError:
            return None

    def numbered(self, series: UUID, serial: int) -> UUID | None:
        """The document a checklist or gate-pass series gave `serial`."""
        return document_numbered(self._app, series, serial)

    def _state(self, stream: UUID) -> AggregateState | None:
        """The committed state (kept, prefetched or read) with this process's pending events."""
        app = self._app
        if stream in app.states and not app.kept_is_stale(stream):
            kept = app.states.get(stream)
            self.cached[stream] = kept.version
            return self._saw(stream, app.overlay.fold(stream, kept))
        if self._prefetched is not None and stream in self._prefetched:
            state = self._prefetched.pop(stream)
        else:
            state = app.stored(stream)
        self.reads[stream] = state.version if state is not None else 0
        if state is not None:
            app.states.put(stream, state)
        return self._saw(stream, app.overlay.fold(stream, state))

    def _saw(self, stream: UUID, state: AggregateState | None) -> AggregateState | None:
        self.seen[stream] = state.version if state is not None else 0
        return state


def document_numbered(app: LedgerApplication, series: UUID, serial: int) -> UUID | None:
    """The stream of the checklist or gate pass a document series gave `serial`."""
    issued = issued_event(app, series, serial)
    # The library types stored events as its protocol: this is a DocumentNumberIssued.
    return issued.document_id if issued is not None else None
