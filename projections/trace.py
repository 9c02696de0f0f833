"""The trace graph: lots as nodes, transfers and processing as edges, every reference indexed.

Tables (fed by the catch-up runner; rebuilt identically by a replay, where the trace graph is
built by a process of its own: it reads no other projection's tables):
- `view_trace_lots`: one row per lot (zone, book, enterprise, item, status, quantity in, on hand,
  the movement that made it);
- `view_trace_edges`: parent lot -> child lot, `transfer` or `processing`, with the quantity of
  the parent that went into the child;
- `view_trace_events`: the chain: every event that happened to a lot, with its documents and
  actor, in log order;
- `view_trace_refs`: every business reference -> the paper that carries it: a declaration's
  id and number, transport reference, container, e-commerce order number and waybill -> the
  declaration; a movement's gate note and container -> the movement;
- `view_trace_movements`: each movement's kind, papers and declaration (for the lot events of
  later pages, a lot event's movement being recorded in its write, and for the references);
- `view_trace_books`: each book's enterprise.
A reference finds its lots through its paper: a movement's lots are the lots of its events in
`view_trace_events`, a declaration's those of its movements (a lot id finds its lot directly).
A reference is stored once per paper, never once per lot.

A trace walks these by index, lot by lot: its cost depends on the size of the answer, never on
the size of the log.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec

from domain.account_book import AccountBookOpened
from domain.declaration import DeclarationSubmitted
from domain.events import Actor, DomainEvent
from domain.exits import LotDrawn
from domain.movements import LotCreated, MovementRecorded
from domain.stocktake import LotAdjusted
from projections.inventory import movement_documents
from projections.runner import MISSING, LogEntry, RowCache, Texts, Writes, chunks, create

_ENCODE = msgspec.json.Encoder(decimal_format="string")
_DOCUMENTS = msgspec.json.Decoder(list[dict[str, str]])
_ACTOR = msgspec.json.Decoder(Actor)
EVENTS_PER_POSITION = 1_000_000
DEFAULT_LIMIT = 500

DDL = (
    "CREATE TABLE IF NOT EXISTS view_trace_lots ("
    " lot_id TEXT PRIMARY KEY, zone TEXT NOT NULL, account_book TEXT NOT NULL,"
    " enterprise TEXT NOT NULL, item_no BIGINT NOT NULL, goods_status TEXT NOT NULL,"
    " quantity_in TEXT NOT NULL, on_hand TEXT NOT NULL, origin TEXT NOT NULL,"
    " movement_id TEXT NOT NULL, position BIGINT NOT NULL, occurred_at TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS view_trace_edges ("
    " parent TEXT NOT NULL, child TEXT NOT NULL, kind TEXT NOT NULL, quantity TEXT NOT NULL,"
    " movement_id TEXT NOT NULL, position BIGINT NOT NULL, PRIMARY KEY (parent, child))",
    "CREATE INDEX IF NOT EXISTS view_trace_edges_child ON view_trace_edges (child)",
    "CREATE TABLE IF NOT EXISTS view_trace_events ("
    " event_key BIGINT PRIMARY KEY, position BIGINT NOT NULL, lot_id TEXT NOT NULL,"
    " type TEXT NOT NULL, occurred_at TEXT NOT NULL, recorded_at TEXT NOT NULL,"
    " zone TEXT NOT NULL, quantity TEXT NOT NULL, documents TEXT NOT NULL,"
    " actor TEXT NOT NULL, movement_id TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS view_trace_events_lot ON view_trace_events (lot_id, event_key)",
    "CREATE INDEX IF NOT EXISTS view_trace_events_movement ON view_trace_events (movement_id)",
    "CREATE TABLE IF NOT EXISTS view_trace_refs ("
    " ref TEXT NOT NULL, kind TEXT NOT NULL, id TEXT NOT NULL, paper TEXT NOT NULL,"
    " PRIMARY KEY (ref, kind, paper))",
    "CREATE TABLE IF NOT EXISTS view_trace_books ("
    " book_no TEXT PRIMARY KEY, enterprise TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS view_trace_movements ("
    " movement_id TEXT PRIMARY KEY, kind TEXT NOT NULL, documents TEXT NOT NULL,"
    " declaration TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS view_trace_movements_declaration"
    " ON view_trace_movements (declaration)",
)

# The lots a reference names, with what it matched: through its papers (a declaration's
# movements, or the movement itself) to the lots of their events, and a lot id to its lot.
FIND = (
    "WITH papers AS (SELECT kind, id, paper FROM view_trace_refs WHERE ref = ?),"
    " moved AS (SELECT p.kind, p.id, m.movement_id FROM papers p"
    "  JOIN view_trace_movements m ON m.declaration = p.paper"
    "  UNION SELECT kind, id, paper FROM papers)"
    " SELECT mv.kind, mv.id, e.lot_id, l.enterprise, l.zone, l.position FROM moved mv"
    " JOIN view_trace_events e ON e.movement_id = mv.movement_id"
    " JOIN view_trace_lots l ON l.lot_id = e.lot_id"
    " UNION SELECT 'lot', l.lot_id, l.lot_id, l.enterprise, l.zone, l.position"
    " FROM view_trace_lots l WHERE l.lot_id = ?"
    " ORDER BY position, kind, id"
)

# The chain's event types: what happened to the lot, by the movement that did it.
CREATED = {
    "gate_in": "admitted",
    "transfer_receipt": "received",
    "processing": "produced",
    "adjustment": "surplus",
}
DRAWN = {
    "gate_out": "exited",
    "transfer_dispatch": "dispatched",
    "processing": "consumed",
    "adjustment": "adjusted",
}
# Which edge a child lot's parents make, by the movement that made the child.
EDGE_KINDS = {"transfer_receipt": "transfer", "processing": "processing"}


def declaration_refs(event: DeclarationSubmitted) -> list[list[str]]:
    """[kind, ref, canonical id] for every reference a declaration carries."""
    f = event.facts
    did = str(event.originator_id)
    refs = [["declaration", did, did], ["declaration", f.declaration_no, did]]
    if f.transport.reference:
        refs.append(["transport", f.transport.reference, f.transport.reference])
    if f.transport.container:
        refs.append(["container", f.transport.container, f.transport.container])
    if f.ecommerce is not None:
        order = f.ecommerce.order.order_no
        refs.append(["order", order, order])
        waybill = getattr(f.ecommerce.waybill, "waybill_no", None)
        if waybill:
            refs.append(["waybill", waybill, waybill])
    return refs


class TraceProjection:
    """Applies lot, movement and declaration events to the trace graph."""

    name = "trace"
    # 2: references stored per paper (declaration, movement), not per lot; the trace keeps
    # its own books and movements (views of version 1 are rebuilt from the log).
    version = 2
    retired_tables = ("view_trace_declarations",)
    handles = (
        DeclarationSubmitted,
        AccountBookOpened,
        MovementRecorded,
        LotCreated,
        LotDrawn,
        LotAdjusted,
    )

    def create_tables(self, cur: Any, *, indexes: bool = True) -> None:
        create(cur, DDL, indexes=indexes)

    def begin(self, cur: Any, previous: _TraceFold | None) -> _TraceFold:
        return _TraceFold(cur, previous)


class _Lot:
    """A lot's zone and on-hand quantity while a page is folded."""

    __slots__ = ("on_hand", "row", "stored", "zone")

    def __init__(
        self, zone: str, on_hand: Decimal, stored: str | None, row: tuple[Any, ...] | None
    ) -> None:
        self.zone = zone
        self.on_hand = on_hand
        self.stored = stored  # on_hand as stored before the page (None: a new lot)
        self.row = row  # the columns of a lot created in this page


# id, kind, documents, and the documents as the chain shows them (JSON)
Movement = tuple[str, str, list[dict[str, str]], str]


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
        self.edges: list[tuple[Any, ...]] = []
        self.events: list[tuple[Any, ...]] = []
        self.refs: dict[tuple[str, str, str], str] = {}  # (ref, kind, paper) -> canonical id
        self.times: dict[tuple[datetime, Any], str] = {}
        self.actors: dict[Actor, str] = {}
        self.text = Texts()
        self._last_movement: tuple[int, Movement | None] = (-1, None)
        self._last_time: tuple[datetime | None, str] = (None, "")

    def apply(self, entry: LogEntry, event: DomainEvent) -> None:
        kind = type(event)
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
            view = event.view
            movement_id = str(view.movement_id)
            documents = movement_documents(view)
            text = _ENCODE.encode(documents).decode()
            self.movements[movement_id] = (movement_id, view.kind, documents, text)
            declaration = self.text[view.declaration] if view.declaration is not None else ""
            self.new_movements.append((movement_id, view.kind, text, declaration))
            if view.gate_note:
                self.refs[(view.gate_note, "gate_note", movement_id)] = view.gate_note
            if view.container:
                self.refs[(view.container, "container", movement_id)] = view.container
        elif isinstance(event, DeclarationSubmitted):
            paper = entry.stream_id
            for kind, ref, canonical in declaration_refs(event):
                self.refs[(ref, kind, paper)] = canonical
        elif isinstance(event, AccountBookOpened):
            self.enterprises[event.book_no] = event.enterprise
            self.new_books.append((event.book_no, event.enterprise))

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
        kind = movement[1] if movement else "gate_in"
        movement_id = movement[0] if movement else ""
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
        edge = EDGE_KINDS.get(kind, "split")
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
            documents = movement[3] if movement else "[]"
        kind = CREATED.get(kind, kind)
        moved = movement_id if movement else self._movement_text(event)
        self._event(entry, lot_id, event.zone, kind, event, event.quantity, documents, moved)

    def _lot_changed(self, entry: LogEntry, event: LotDrawn | LotAdjusted) -> None:
        lot_id = entry.stream_id
        lot = self.lots.get(lot_id)
        if lot is MISSING:
            lot = self._lot(lot_id)
        change = -event.quantity if isinstance(event, LotDrawn) else event.delta
        lot.on_hand = lot.on_hand + change
        movement = self._movement(event)
        kind = movement[1] if movement else "adjustment"
        if isinstance(event, LotAdjusted):
            # The stocktake's reason, as a surplus lot carries it (its only paper).
            papers = [
                *(movement[2] if movement else []),
                {"kind": "adjustment", "id": str(event.movement_id), "number": event.reason},
            ]
            documents = _ENCODE.encode(papers).decode()
        else:
            documents = movement[3] if movement else "[]"
        moved = movement[0] if movement else self._movement_text(event)
        self._event(entry, lot_id, lot.zone, DRAWN.get(kind, kind), event, change, documents, moved)

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
        """(id, kind, documents) of the movement behind a lot event (its `MovementRecorded`
        came first in the same write)."""
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
                found = (row["movement_id"], row["kind"], _DOCUMENTS.decode(text), text)
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
        self.edges, self.events, self.refs = [], [], {}
        self.new_books, self.new_movements = [], []
        return writes


# -- the answer -------------------------------------------------------------------------------


class Matched(msgspec.Struct, frozen=True, kw_only=True):
    kind: str
    id: str


class TraceLot(msgspec.Struct, frozen=True, kw_only=True):
    lot_id: str
    zone: str
    account_book: str
    item_no: int
    hs_code: str
    name: str
    unit: str
    goods_status: str
    quantity_in: Decimal
    on_hand: Decimal
    origin: str
    movement_id: str
    occurred_at: datetime


class TraceEdge(msgspec.Struct, frozen=True, kw_only=True):
    from_: str = msgspec.field(name="from")
    to: str
    kind: str
    quantity: Decimal | None


class TraceEvent(msgspec.Struct, frozen=True, kw_only=True):
    position: int
    type: str
    occurred_at: datetime
    recorded_at: datetime
    zone: str
    lot_id: str
    quantity: Decimal
    documents: list[dict[str, str]]
    actor: Actor
    movement_id: str


class Trace(msgspec.Struct, frozen=True, kw_only=True):
    ref: str
    direction: str
    matched: list[Matched]
    zones: list[str]
    lots: list[TraceLot]
    edges: list[TraceEdge]
    events: list[TraceEvent]
    truncated: bool


class TraceQueries:
    """Walks the trace graph from a reference, by index, within the caller's sight."""

    def __init__(self, views: Any) -> None:
        self.views = views

    def trace(
        self,
        ref: str,
        *,
        direction: str = "both",
        visible: dict[str, str] | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> Trace | None:
        """None when the reference matches no lot the caller may see."""
        scope = visible or {}
        with self.views.read() as cur:
            cur.execute(FIND, (ref, ref))
            rows = [r for r in cur.fetchall() if _sees(scope, r)]
            if not rows:
                return None
            matched = list(dict.fromkeys((r["kind"], r["id"]) for r in rows))
            order: dict[str, None] = dict.fromkeys(r["lot_id"] for r in rows)
            edges: dict[tuple[str, str], TraceEdge] = {}
            truncated = False
            for going in ("upstream", "downstream"):
                if direction not in (going, "both"):
                    continue
                truncated |= self._walk(cur, list(order), going, scope, order, edges, limit)
            lots = self._lots(cur, list(order))
            events = self._events(cur, list(order))
        zones = list(dict.fromkeys(e.zone for e in events)) or list(
            dict.fromkeys(lot.zone for lot in lots)
        )
        return Trace(
            ref=ref,
            direction=direction,
            matched=[Matched(kind=k, id=i) for k, i in matched],
            zones=zones,
            lots=lots,
            edges=list(edges.values()),
            events=events,
            truncated=truncated,
        )

    @staticmethod
    def _walk(
        cur: Any,
        start: list[str],
        going: str,
        scope: dict[str, str],
        order: dict[str, None],
        edges: dict[tuple[str, str], TraceEdge],
        limit: int,
    ) -> bool:
        """Breadth first along parents (upstream) or children (downstream); True if the
        answer reached `limit` lots before the walk ended."""
        near, far = ("child", "parent") if going == "upstream" else ("parent", "child")
        frontier = deque(start)
        seen = set(start)
        while frontier:
            lot = frontier.popleft()
            cur.execute(
                f"SELECT e.{far} AS other, e.kind, e.quantity, l.enterprise, l.zone"
                f" FROM view_trace_edges e JOIN view_trace_lots l ON l.lot_id = e.{far}"
                f" WHERE e.{near} = ? ORDER BY e.position",
                (lot,),
            )
            for row in cur.fetchall():
                other = row["other"]
                if not _sees(scope, row):
                    continue  # another tenant's lot: not even its existence is shown
                parent, child = (other, lot) if going == "upstream" else (lot, other)
                edges[(parent, child)] = TraceEdge(
                    from_=parent,
                    to=child,
                    kind=row["kind"],
                    quantity=Decimal(row["quantity"]) if row["quantity"] else None,
                )
                if other in seen:
                    continue
                if len(order) >= limit:
                    return True
                seen.add(other)
                order[other] = None
                frontier.append(other)
        return False

    @staticmethod
    def _lots(cur: Any, lot_ids: list[str]) -> list[TraceLot]:
        found: dict[str, TraceLot] = {}
        for chunk in _chunks(lot_ids):
            marks = ",".join("?" * len(chunk))
            cur.execute(
                "SELECT l.*, i.hs_code, i.name, i.unit FROM view_trace_lots l"
                " LEFT JOIN view_book_items i ON i.book_no = l.account_book"
                f" AND i.item_no = l.item_no WHERE l.lot_id IN ({marks})",
                chunk,
            )
            for r in cur.fetchall():
                found[r["lot_id"]] = TraceLot(
                    lot_id=r["lot_id"],
                    zone=r["zone"],
                    account_book=r["account_book"],
                    item_no=int(r["item_no"]),
                    hs_code=r["hs_code"] or "",
                    name=r["name"] or "",
                    unit=r["unit"] or "",
                    goods_status=r["goods_status"],
                    quantity_in=Decimal(r["quantity_in"]),
                    on_hand=Decimal(r["on_hand"]),
                    origin=r["origin"],
                    movement_id=r["movement_id"],
                    occurred_at=datetime.fromisoformat(r["occurred_at"]),
                )
        return sorted(found.values(), key=lambda lot: (lot.occurred_at, lot.lot_id))

    @staticmethod
    def _events(cur: Any, lot_ids: list[str]) -> list[TraceEvent]:
        rows: list[Any] = []
        for chunk in _chunks(lot_ids):
            marks = ",".join("?" * len(chunk))
            cur.execute(f"SELECT * FROM view_trace_events WHERE lot_id IN ({marks})", chunk)
            rows += cur.fetchall()
        rows.sort(key=lambda r: (int(r["event_key"]), r["lot_id"]))
        return [
            TraceEvent(
                position=int(r["position"]),
                type=r["type"],
                occurred_at=datetime.fromisoformat(r["occurred_at"]),
                recorded_at=datetime.fromisoformat(r["recorded_at"].replace("Z", "+00:00")),
                zone=r["zone"],
                lot_id=r["lot_id"],
                quantity=Decimal(r["quantity"]),
                documents=_DOCUMENTS.decode(r["documents"]),
                actor=_ACTOR.decode(r["actor"]),
                movement_id=r["movement_id"],
            )
            for r in rows
        ]


def _sees(scope: dict[str, str], row: Any) -> bool:
    return all(row[column] == value for column, value in scope.items())


def _chunks(items: list[str], size: int = 500) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
