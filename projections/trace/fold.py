"""The trace graph's fold: lot, movement and declaration events into the trace's tables
(tables.py), a page at a time (fed by the catch-up runner; rebuilt identically by a replay,
where the trace graph is built by a process of its own: the fold reads and writes no table but
its own).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

import msgspec

from domain.account_book import AccountBookOpened
from domain.checklists import ChecklistFiled
from domain.collected import CollectedChecklistsNamed
from domain.declaration import DeclarationSubmitted
from domain.enter_first import ChecklistNamed
from domain.events import Actor, DomainEvent
from domain.exits import LotDrawn
from domain.movement_kinds import created_labels, drawn_labels, edge_kinds
from domain.movements import LotCreated, MovementKind, MovementRecorded, MovementView, Paper
from domain.stocktake import LotAdjusted
from domain.transfers import TransferDispatched, TransitSettled
from projections.columns import PAPERS, movement_kind, movement_papers, papers_text
from projections.folding import MISSING, LogEntry, RowCache, Texts, Writes, chunks, create
from projections.trace.parcels import INSERT_PARCEL, parcel_row
from projections.trace.refs import declaration_refs, movement_refs
from projections.trace.tables import DDL, EVENTS_PER_POSITION, RETIRED_TABLES, TABLES
from projections.trace.transit import LOST_EDGE, LOST_EVENT, LOST_ORIGIN, InTransit, lost_node_id

_ENCODE = msgspec.json.Encoder(decimal_format="string")

# The chain's event types: what happened to the lot, by the kind of the movement that did it
# (a kind the registry names no event for is its own event type).
CREATED: dict[str, str] = created_labels()
DRAWN: dict[str, str] = drawn_labels()
# Which edge a child lot's parents make, by the kind of the movement that made the child; a
# lot made from parents by any other kind of movement is a split of them.
EDGE_KINDS: dict[str, str] = edge_kinds()
SPLIT_EDGE = "split"
# A lot event whose movement is not recorded (the event names none, or one the trace never
# saw): a lot created by it reads as admitted through the gate, a lot changed by it as
# adjusted by a stocktake.
UNRECORDED_CREATION: MovementKind = "gate_in"
UNRECORDED_CHANGE: MovementKind = "adjustment"


class Movement(NamedTuple):
    """What the lot events of a movement need of it (its `MovementRecorded` came first)."""

    movement_id: str
    kind: MovementKind
    papers: list[Paper]
    papers_text: str  # the papers as the chain shows them (JSON)


class TraceProjection:
    """Applies lot, movement and declaration events to the trace graph."""

    name = "trace"
    # 2: references stored per paper (declaration, movement), not per lot; the trace keeps
    # its own books and movements (views of version 1 are rebuilt from the log). 3: parcels
    # (declarations that move no book, parcels.py). 4: goods lost in transit as nodes
    # (transit.py; the trace keeps its own copy of what is in transit). 5: checklists and gate
    # passes are references (refs.py). 6: a declaration that names checklists (goods that
    # entered first, or left collected, before it) finds their goods by its number and id.
    version = 6
    retired_tables = RETIRED_TABLES
    tables = TABLES
    handles: tuple[type[DomainEvent], ...] = (
        DeclarationSubmitted,
        AccountBookOpened,
        MovementRecorded,
        LotCreated,
        LotDrawn,
        LotAdjusted,
        TransferDispatched,
        TransitSettled,
        ChecklistFiled,
        ChecklistNamed,
        CollectedChecklistsNamed,
    )

    def create_tables(self, cur: Any, *, indexes: bool = True) -> None:
        create(cur, DDL, indexes=indexes)

    def begin(self, cur: Any, previous: _TraceFold | None) -> _TraceFold:
        return _TraceFold(cur, previous)


class _Lot:
    """A lot's zone and on-hand quantity while a page is folded."""

    __slots__ = ("facts", "on_hand", "row", "stored", "zone")

    def __init__(
        self, zone: str, on_hand: Decimal, stored: str | None, row: tuple[Any, ...] | None
    ) -> None:
        self.zone = zone
        self.on_hand = on_hand
        self.stored = stored  # on_hand as stored before the page (None: a new lot)
        self.row = row  # the columns of a lot created in this page
        # Zone, book, enterprise, item and status of a lot made in this page or the one before:
        # kept after the flush, since a replay folds the next page before this one commits.
        self.facts: tuple[str, str, str, int, str] | None = (
            (row[1], row[2], row[3], row[4], row[5]) if row is not None else None
        )


class _TraceFold:
    """One page: lots, declarations' references, books and movements are read at most once
    (what this page created is known from its own events, in log order); rows are written
    with `executemany`."""

    def __init__(self, cur: Any, previous: _TraceFold | None) -> None:
        self.cur = cur
        p = previous
        self.lots: RowCache[str, _Lot] = RowCache(p.lots if p else None)
        self.movements: RowCache[str, Movement | None] = RowCache(p.movements if p else None)
        # book_no -> enterprise (None: no such book)
        self.enterprises: RowCache[str, str | None] = RowCache(p.enterprises if p else None)
        self.new_books: list[tuple[str, str]] = []
        self.new_movements: list[tuple[str, str, str, str]] = []
        self.parcels: list[tuple[Any, ...]] = []
        self.edges: list[tuple[Any, ...]] = []
        self.events: list[tuple[Any, ...]] = []
        self.refs: dict[tuple[str, str, str], str] = {}  # (ref, kind, paper) -> canonical id
        # A declaration's own references (its id and number -> its canonical id), by stream, for
        # the checklists it names in the same write: this page's, and the page before's.
        self.numbers: dict[str, list[tuple[str, str]]] = {}
        self.numbers_before = p.numbers if p else {}
        self.times: dict[tuple[datetime, Any], str] = {}
        self.actors: dict[Actor, str] = {}
        self.text = Texts()
        self.transit: InTransit = InTransit(cur, p.transit if p else None)
        # The last movement recorded: a stocktake's that writes goods off comes just before
        # the `TransitSettled` of its write (its papers and reason go on the lost node).
        self.last_view: MovementView | None = p.last_view if p else None
        self._last_movement: tuple[int, Movement | None] = (-1, None)
        self._last_time: tuple[datetime | None, str] = (None, "")

    def apply(self, entry: LogEntry, event: DomainEvent) -> None:
        kind = type(event)
        # `type(event) is X` is the fold's hot path (cheaper than isinstance per event); mypy
        # does not narrow on it.
        if kind is LotDrawn or kind is LotAdjusted:  # the most frequent, tested first
            self._lot_changed(entry, event)  # type: ignore[arg-type]
        elif kind is LotCreated:
            self._lot_created(entry, event)  # type: ignore[arg-type]
        else:
            self._other(entry, event)

    def _other(self, entry: LogEntry, event: DomainEvent) -> None:
        if isinstance(event, LotDrawn | LotAdjusted):  # a subclass
            self._lot_changed(entry, event)
        elif isinstance(event, LotCreated):
            self._lot_created(entry, event)
        elif isinstance(event, MovementRecorded):
            view = self.last_view = event.view
            movement_id = str(view.movement_id)
            papers = movement_papers(view)
            text = papers_text(papers)
            self.movements[movement_id] = Movement(movement_id, view.kind, papers, text)
            declaration = self.text[view.declaration] if view.declaration is not None else ""
            self.new_movements.append((movement_id, view.kind, text, declaration))
            for ref, kind, canonical in movement_refs(view):
                self.refs[(ref, kind, movement_id)] = canonical
        elif isinstance(event, DeclarationSubmitted):
            paper = entry.stream_id
            for kind, ref, canonical in declaration_refs(event):
                self.refs[(ref, kind, paper)] = canonical
                if kind == "declaration":
                    self.numbers.setdefault(paper, []).append((ref, canonical))
            parcel = parcel_row(entry, event)
            if parcel is not None:
                self.parcels.append(parcel)
        elif isinstance(event, TransferDispatched):
            declaration = self.text[event.declaration_id]
            for lot, quantity in event.by_lot.items():
                lot_id = self.text[lot]
                key = (declaration, entry.stream_id, self._lot_facts(lot_id)[4])
                self.transit.dispatched(key, lot_id, quantity)
        elif isinstance(event, TransitSettled):
            key = (self.text[event.declaration_id], entry.stream_id, event.goods_status)
            taken = self.transit.settle(key, event.quantity)
            if event.outcome == "lost" and taken:
                self._lost(entry, event, taken)
        elif isinstance(event, ChecklistFiled):
            # A checklist finds what its declaration moved.
            self.refs[(event.checklist_no, "checklist", entry.stream_id)] = event.checklist_no
        elif isinstance(event, ChecklistNamed | CollectedChecklistsNamed):
            self._named(entry.stream_id, event)
        elif isinstance(event, AccountBookOpened):
            self.enterprises[event.book_no] = event.enterprise
            self.new_books.append((event.book_no, event.enterprise))

    def _named(self, stream: str, event: ChecklistNamed | CollectedChecklistsNamed) -> None:
        """The declaration finds the goods of the checklists it names: its references point to
        each checklist number, which finds its movements (queries.py)."""
        named = [event.checklist_no] if isinstance(event, ChecklistNamed) else event.checklists
        for ref, canonical in self._numbers(stream):
            for number in named:
                self.refs[(ref, "declaration", number)] = canonical

    def _numbers(self, stream: str) -> list[tuple[str, str]]:
        """A declaration's id and number (its submission came in the same write: this page,
        the one before, or stored)."""
        found = self.numbers.get(stream) or self.numbers_before.get(stream)
        if found is None:
            self.cur.execute(
                "SELECT ref, id FROM view_trace_refs WHERE paper = ? AND kind = 'declaration'",
                (stream,),
            )
            found = [(r["ref"], r["id"]) for r in self.cur.fetchall()]
        return found

    def prefetch(self, page: list[tuple[LogEntry, DomainEvent]]) -> None:
        """Read the stored lots the page draws from or adjusts in a few queries."""
        wanted = {
            entry.stream_id: None
            for entry, event in page
            if isinstance(event, LotDrawn | LotAdjusted) and entry.stream_id not in self.lots
        }
        for part in chunks(list(wanted), 500):
            self.cur.execute(
                "SELECT lot_id, on_hand, zone FROM view_trace_lots"
                f" WHERE lot_id IN ({','.join('?' * len(part))})",
                part,
            )
            for row in self.cur.fetchall():
                self.lots[row["lot_id"]] = _Lot(
                    row["zone"], Decimal(row["on_hand"]), row["on_hand"], None
                )

    def _lot_created(self, entry: LogEntry, event: LotCreated) -> None:
        lot_id = entry.stream_id
        movement = self._movement(event)
        kind = movement.kind if movement else UNRECORDED_CREATION
        movement_id = movement.movement_id if movement else ""
        enterprise = self._enterprise(event.account_book)
        row = (
            lot_id,
            event.zone,
            event.account_book,
            enterprise or "",
            event.item_no,
            event.goods_status,
            str(event.quantity),
            kind,
            movement_id,
            entry.position,
            self._time(event.occurred_at),
        )
        self.lots[lot_id] = _Lot(event.zone, event.quantity, None, row)
        edge = EDGE_KINDS.get(kind, SPLIT_EDGE)
        for parent in event.parents:
            share = event.parent_quantities.get(parent)
            self.edges.append(
                (
                    self.text[parent],
                    lot_id,
                    edge,
                    str(share) if share is not None else "",
                    movement_id,
                    entry.position,
                )
            )
        if event.documents:
            documents = _ENCODE.encode(event.documents).decode()
        else:
            documents = movement.papers_text if movement else "[]"
        created = CREATED.get(kind, kind)
        moved = movement_id if movement else self._movement_text(event)
        self._event(entry, lot_id, event.zone, created, event, event.quantity, documents, moved)

    def _lot_changed(self, entry: LogEntry, event: LotDrawn | LotAdjusted) -> None:
        lot_id = entry.stream_id
        lot = self.lots.get(lot_id)
        if lot is MISSING:
            lot = self._lot(lot_id)
        change = -event.quantity if isinstance(event, LotDrawn) else event.delta
        lot.on_hand = lot.on_hand + change
        movement = self._movement(event)
        kind = movement.kind if movement else UNRECORDED_CHANGE
        if isinstance(event, LotAdjusted):
            # The stocktake's reason, as a surplus lot carries it (its only paper).
            papers = [
                *(movement.papers if movement else []),
                Paper("adjustment", str(event.movement_id), event.reason),
            ]
            documents = papers_text(papers)
        else:
            documents = movement.papers_text if movement else "[]"
        moved = movement.movement_id if movement else self._movement_text(event)
        self._event(entry, lot_id, lot.zone, DRAWN.get(kind, kind), event, change, documents, moved)

    def _lost(self, entry: LogEntry, event: TransitSettled, taken: dict[str, Decimal]) -> None:
        """A node for goods written off as lost in transit, with an edge from each lot they
        came from and one chain event with the stocktake's papers (transit.py)."""
        node = lost_node_id(entry.stream_id, event.originator_version)
        zone, book, enterprise, item_no, _ = self._lot_facts(next(iter(taken)))
        declaration = self.text[event.declaration_id]
        view = self.last_view
        if (
            view is not None
            and view.kind == "adjustment"
            and view.declaration == event.declaration_id
        ):
            movement_id = self.text[view.movement_id]
            reason = Paper("adjustment", movement_id, view.reason or "")
            papers = [*movement_papers(view), reason]
        else:  # never expected: the stocktake's movement is recorded in the same write
            movement_id, papers = "", [Paper("declaration", declaration, "")]
        row: tuple[Any, ...] = (node, zone, book, enterprise, item_no, event.goods_status)
        row += (str(event.quantity), LOST_ORIGIN, movement_id, entry.position)
        row += (self._time(event.occurred_at),)
        self.lots[node] = _Lot(zone, Decimal(0), None, row)
        for parent, quantity in taken.items():
            self.edges.append((parent, node, LOST_EDGE, str(quantity), movement_id, entry.position))
        documents = papers_text(papers)
        self._event(entry, node, zone, LOST_EVENT, event, -event.quantity, documents, movement_id)

    def _lot_facts(self, lot_id: str) -> tuple[str, str, str, int, str]:
        """A lot's zone, book, enterprise, item and customs status (made in this page or
        stored)."""
        lot = self.lots.get(lot_id)
        if lot is not MISSING and lot.facts is not None:
            return lot.facts
        self.cur.execute(
            "SELECT zone, account_book, enterprise, item_no, goods_status FROM view_trace_lots"
            " WHERE lot_id = ?",
            (lot_id,),
        )
        r = self.cur.fetchone()
        return r["zone"], r["account_book"], r["enterprise"], int(r["item_no"]), r["goods_status"]

    def _event(
        self,
        entry: LogEntry,
        lot_id: str,
        zone: str,
        kind: str,
        event: DomainEvent,
        quantity: Decimal,
        documents: str,
        movement_id: str,
    ) -> None:
        actor = self.actors.get(event.actor)
        if actor is None:
            actor = self.actors[event.actor] = _ENCODE.encode(event.actor).decode()
        self.events.append(
            (
                entry.position * EVENTS_PER_POSITION,
                entry.position,
                lot_id,
                kind,
                self._time(event.occurred_at),
                entry.recorded_at,
                zone,
                str(quantity),
                documents,
                actor,
                movement_id,
            )
        )

    def _movement_text(self, event: DomainEvent) -> str:
        movement_id = getattr(event, "movement_id", None)
        return "" if movement_id is None else self.text[movement_id]

    def _time(self, moment: datetime) -> str:
        """A business time as stored (ISO 8601 with its offset), once per distinct time."""
        if moment is self._last_time[0]:  # one event's time, asked for again
            return self._last_time[1]
        key = (moment, moment.utcoffset())
        text = self.times.get(key)
        if text is None:
            text = self.times[key] = moment.isoformat()
        self._last_time = (moment, text)
        return text

    # -- rows stored before the page ----------------------------------------------------------

    def _lot(self, lot_id: str) -> _Lot:
        self.cur.execute("SELECT on_hand, zone FROM view_trace_lots WHERE lot_id = ?", (lot_id,))
        row = self.cur.fetchone()
        if row is None:
            raise LookupError(f"lot {lot_id} changed before it was created")
        lot = self.lots[lot_id] = _Lot(row["zone"], Decimal(row["on_hand"]), row["on_hand"], None)
        return lot

    def _movement(self, event: DomainEvent) -> Movement | None:
        """The movement behind a lot event (its `MovementRecorded` came first in the same
        write); None when the event names none or the trace never saw it."""
        movement_id = getattr(event, "movement_id", None)
        if movement_id is None:
            return None
        # A movement's lot events follow one another: the last one found is usually it.
        if movement_id.int == self._last_movement[0]:
            return self._last_movement[1]
        key = self.text[movement_id]
        found = self._find_movement(key)
        self._last_movement = (movement_id.int, found)
        return found

    def _find_movement(self, key: str) -> Movement | None:
        found = self.movements.get(key)
        if found is MISSING:
            self.cur.execute(
                "SELECT movement_id, kind, documents FROM view_trace_movements"
                " WHERE movement_id = ?",
                (key,),
            )
            row = self.cur.fetchone()
            found = None
            if row is not None:
                text = row["documents"]
                found = Movement(
                    row["movement_id"], movement_kind(row["kind"]), PAPERS.decode(text), text
                )
            self.movements[key] = found
        return found

    def _enterprise(self, book_no: str) -> str | None:
        found = self.enterprises.get(book_no)
        if found is MISSING:
            self.cur.execute(
                "SELECT enterprise FROM view_trace_books WHERE book_no = ?", (book_no,)
            )
            row = self.cur.fetchone()
            found = self.enterprises[book_no] = row["enterprise"] if row is not None else None
        return found

    def flush(self) -> Writes:
        writes = Writes()
        writes.add(
            "INSERT INTO view_trace_books (book_no, enterprise) VALUES (?, ?)", self.new_books
        )
        writes.add(
            "INSERT INTO view_trace_movements (movement_id, kind, documents, declaration)"
            " VALUES (?, ?, ?, ?)",
            self.new_movements,
        )
        new_lots, changed = [], []
        for lot_id, lot in self.lots.now.items():
            on_hand = str(lot.on_hand)
            if lot.row is not None:
                new_lots.append((*lot.row, on_hand))
            elif on_hand != lot.stored:
                changed.append((on_hand, lot_id))
            lot.row, lot.stored = None, on_hand
        writes.add(
            "INSERT INTO view_trace_lots (lot_id, zone, account_book, enterprise, item_no,"
            " goods_status, quantity_in, origin, movement_id, position, occurred_at,"
            " on_hand) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            new_lots,
        )
        writes.add("UPDATE view_trace_lots SET on_hand = ? WHERE lot_id = ?", changed)
        writes.add(
            "INSERT INTO view_trace_edges (parent, child, kind, quantity, movement_id,"
            " position) VALUES (?,?,?,?,?,?)",
            self.edges,
        )
        writes.add(
            "INSERT INTO view_trace_refs (ref, kind, id, paper) VALUES (?,?,?,?)"
            " ON CONFLICT (ref, kind, paper) DO NOTHING",
            [(ref, kind, canonical, paper) for (ref, kind, paper), canonical in self.refs.items()],
        )
        writes.add(
            "INSERT INTO view_trace_events (event_key, position, lot_id, type, occurred_at,"
            " recorded_at, zone, quantity, documents, actor, movement_id)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            self.events,
        )
        writes.add(INSERT_PARCEL, self.parcels)
        self.transit.flush(writes)
        self.edges, self.events, self.refs = [], [], {}
        self.new_books, self.new_movements, self.parcels = [], [], []
        return writes
