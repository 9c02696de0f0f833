"""The trace graph: lots as nodes, transfers and processing as edges, every reference indexed.

Tables (fed by the catch-up runner after the inventory projection, whose `view_books` and
`view_movements` it reads; rebuilt identically by a replay):
- `view_trace_lots`: one row per lot (zone, book, enterprise, item, status, quantity in, on hand,
  the movement that made it);
- `view_trace_edges`: parent lot -> child lot, `transfer` or `processing`, with the quantity of
  the parent that went into the child;
- `view_trace_events`: the chain: every event that happened to a lot, with its documents and
  actor, in log order;
- `view_trace_refs`: every business reference (lot id, declaration id and number, transport
  reference, container, gate note, e-commerce order number, waybill) -> the lots it touched;
- `view_trace_declarations`: each declaration's references, to index when its goods move.

A trace walks these by index, lot by lot: its cost depends on the size of the answer, never on
the size of the log.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec

from domain.declaration import DeclarationSubmitted
from domain.events import Actor, DomainEvent
from domain.exits import LotDrawn
from domain.movements import LotCreated, MovementRecorded
from domain.stocktake import LotAdjusted
from projections.runner import LogEntry

_ENCODE = msgspec.json.Encoder(decimal_format="string")
_DOCUMENTS = msgspec.json.Decoder(list[dict[str, str]])
_REFS = msgspec.json.Decoder(list[list[str]])
_ACTOR = msgspec.json.Decoder(Actor)
EVENTS_PER_POSITION = 1_000_000
DEFAULT_LIMIT = 500

DDL = (
    "CREATE TABLE IF NOT EXISTS view_trace_declarations ( id TEXT PRIMARY KEY, refs TEXT NOT NULL)",
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
    "CREATE TABLE IF NOT EXISTS view_trace_refs ("
    " ref TEXT NOT NULL, kind TEXT NOT NULL, id TEXT NOT NULL, lot_id TEXT NOT NULL,"
    " PRIMARY KEY (ref, kind, lot_id))",
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

    def create_tables(self, cur: Any) -> None:
        for statement in DDL:
            cur.execute(statement)

    def apply(self, cur: Any, entry: LogEntry, event: DomainEvent) -> None:
        if isinstance(event, DeclarationSubmitted):
            cur.execute(
                "INSERT INTO view_trace_declarations (id, refs) VALUES (?, ?)",
                (str(event.originator_id), _ENCODE.encode(declaration_refs(event)).decode()),
            )
        elif isinstance(event, MovementRecorded):
            self._index_movement(cur, event)
        elif isinstance(event, LotCreated):
            self._lot_created(cur, entry, event)
        elif isinstance(event, LotDrawn | LotAdjusted):
            self._lot_changed(cur, entry, event)

    def _index_movement(self, cur: Any, event: MovementRecorded) -> None:
        """Every lot a movement created or drew from is found by the movement's papers."""
        view = event.view
        refs: list[list[str]] = []
        if view.declaration is not None:
            cur.execute(
                "SELECT refs FROM view_trace_declarations WHERE id = ?", (str(view.declaration),)
            )
            row = cur.fetchone()
            if row is not None:
                refs += _REFS.decode(row["refs"])
        if view.gate_note:
            refs.append(["gate_note", view.gate_note, view.gate_note])
        if view.container:
            refs.append(["container", view.container, view.container])
        for lot in view.lots:
            lot_id = str(lot.lot_id)
            for kind, ref, canonical in [["lot", lot_id, lot_id], *refs]:
                _insert_ref(cur, ref, kind, canonical, lot_id)

    def _lot_created(self, cur: Any, entry: LogEntry, event: LotCreated) -> None:
        lot_id = str(event.originator_id)
        movement = _movement_of(cur, event)
        kind = movement["kind"] if movement else "gate_in"
        cur.execute("SELECT enterprise FROM view_books WHERE book_no = ?", (event.account_book,))
        book = cur.fetchone()
        cur.execute(
            "INSERT INTO view_trace_lots (lot_id, zone, account_book, enterprise, item_no,"
            " goods_status, quantity_in, on_hand, origin, movement_id, position, occurred_at)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                lot_id,
                event.zone,
                event.account_book,
                book["enterprise"] if book else "",
                event.item_no,
                event.goods_status,
                str(event.quantity),
                str(event.quantity),
                kind,
                movement["movement_id"] if movement else "",
                entry.position,
                event.occurred_at.isoformat(),
            ),
        )
        edge = EDGE_KINDS.get(kind, "split")
        for parent in event.parents:
            quantity = event.parent_quantities.get(parent)
            cur.execute(
                "INSERT INTO view_trace_edges (parent, child, kind, quantity, movement_id,"
                " position) VALUES (?,?,?,?,?,?)",
                (
                    str(parent),
                    lot_id,
                    edge,
                    str(quantity) if quantity is not None else "",
                    movement["movement_id"] if movement else "",
                    entry.position,
                ),
            )
        _insert_ref(cur, lot_id, "lot", lot_id, lot_id)
        documents = event.documents or (_documents(movement) if movement else [])
        self._event(cur, entry, lot_id, CREATED.get(kind, kind), event, event.quantity, documents)

    def _lot_changed(self, cur: Any, entry: LogEntry, event: LotDrawn | LotAdjusted) -> None:
        lot_id = str(event.originator_id)
        cur.execute("SELECT on_hand FROM view_trace_lots WHERE lot_id = ?", (lot_id,))
        row = cur.fetchone()
        change = -event.quantity if isinstance(event, LotDrawn) else event.delta
        cur.execute(
            "UPDATE view_trace_lots SET on_hand = ? WHERE lot_id = ?",
            (str(Decimal(row["on_hand"]) + change), lot_id),
        )
        movement = _movement_of(cur, event)
        kind = movement["kind"] if movement else "adjustment"
        documents = _documents(movement) if movement else []
        if isinstance(event, LotAdjusted):
            # The stocktake's reason, as a surplus lot carries it (its only paper).
            documents.append(
                {"kind": "adjustment", "id": str(event.movement_id), "number": event.reason}
            )
        self._event(cur, entry, lot_id, DRAWN.get(kind, kind), event, change, documents)

    @staticmethod
    def _event(
        cur: Any,
        entry: LogEntry,
        lot_id: str,
        kind: str,
        event: DomainEvent,
        quantity: Decimal,
        documents: list[dict[str, str]],
    ) -> None:
        cur.execute("SELECT zone FROM view_trace_lots WHERE lot_id = ?", (lot_id,))
        zone = cur.fetchone()["zone"]
        cur.execute(
            "INSERT INTO view_trace_events (event_key, position, lot_id, type, occurred_at,"
            " recorded_at, zone, quantity, documents, actor, movement_id)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                entry.position * EVENTS_PER_POSITION,
                entry.position,
                lot_id,
                kind,
                event.occurred_at.isoformat(),
                entry.recorded_at,
                zone,
                str(quantity),
                _ENCODE.encode(documents).decode(),
                _ENCODE.encode(event.actor).decode(),
                str(getattr(event, "movement_id", "") or ""),
            ),
        )


def _insert_ref(cur: Any, ref: str, kind: str, canonical: str, lot_id: str) -> None:
    cur.execute(
        "SELECT 1 FROM view_trace_refs WHERE ref = ? AND kind = ? AND lot_id = ?",
        (ref, kind, lot_id),
    )
    if cur.fetchone() is None:
        cur.execute(
            "INSERT INTO view_trace_refs (ref, kind, id, lot_id) VALUES (?,?,?,?)",
            (ref, kind, canonical, lot_id),
        )


def _movement_of(cur: Any, event: DomainEvent) -> dict[str, Any] | None:
    """The movement behind a lot event (its `MovementRecorded` came first in the same write)."""
    movement_id = getattr(event, "movement_id", None)
    if movement_id is None:
        return None
    cur.execute(
        "SELECT movement_id, kind, documents FROM view_movements WHERE movement_id = ?",
        (str(movement_id),),
    )
    row = cur.fetchone()
    return dict(row) if row is not None else None


def _documents(movement: dict[str, Any]) -> list[dict[str, str]]:
    return _DOCUMENTS.decode(movement["documents"])


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
            cur.execute(
                "SELECT r.kind, r.id, r.lot_id, l.enterprise, l.zone FROM view_trace_refs r"
                " JOIN view_trace_lots l ON l.lot_id = r.lot_id WHERE r.ref = ?"
                " ORDER BY l.position",
                (ref,),
            )
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
