"""Reads of the trace graph (tables.py): from a reference, the lots it names, the lots upstream
and downstream of them and the chain of what happened to each, within the caller's sight.

A trace walks the trace's tables by index, lot by lot: its cost depends on the size of the
answer, never on the size of the log. The walk reads only the trace's own tables; what a lot's
item is (HS code, name, unit) is the inventory's to say, asked of it in the same read
(`projections.inventory.queries.item_descriptions`).
"""

from __future__ import annotations

from collections import deque
from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec

from domain.events import Actor
from domain.scope import Scope
from projections.columns import PAPER_DICTS, tenancy_sql
from projections.inventory.queries import item_descriptions
from projections.trace.parcels import TraceParcel, read_parcels

_ACTOR = msgspec.json.Decoder(Actor)
DEFAULT_LIMIT = 500


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
    # With `truncated` because the reference matched more lots than `limit`: pass it as
    # `cursor` for the next lots it matched (in the order they came to be).
    next_cursor: str | None = None
    # Declarations the reference matched that move no lot (9610 parcels, parcels.py).
    parcels: list[TraceParcel] = []


class TraceQueries:
    """Walks the trace graph from a reference, by index, within the caller's sight."""

    def __init__(self, views: Any) -> None:
        self.views = views

    def trace(
        self,
        ref: str,
        *,
        scope: Scope,
        direction: str = "both",
        limit: int = DEFAULT_LIMIT,
        after: int = 0,
    ) -> Trace | None:
        """None when the reference matches no lot `scope` sees (another tenant's lots are
        neither found nor walked to: not even their existence is shown).

        At most `limit` lots in all: the lots the reference matches come first, in the order
        they came to be, from past the position `after` (a `next_cursor`); a hub reference
        (a container on a thousand trains) answers its first `limit` and a cursor, never the
        whole set (issue #14)."""
        with self.views.read() as cur:
            params: list[Any] = []
            cur.execute(_find(scope, ref, params, after), params)
            matched, order, found_parcels, last, more = _matched(cur, limit)
            if not order and not found_parcels:
                return None
            parcels = read_parcels(cur, list(found_parcels))
            edges: dict[tuple[str, str], TraceEdge] = {}
            truncated = more
            for going in ("upstream", "downstream"):
                if direction in (going, "both"):
                    walk = _Walk(cur, scope, going, order, edges)
                    truncated |= walk.run(list(order), limit)
            lots = _lots(cur, list(order))
            events = _events(cur, list(order))
        zones = list(dict.fromkeys(e.zone for e in events)) or list(
            dict.fromkeys(lot.zone for lot in lots)
        )
        zones = list(dict.fromkeys([*zones, *(p.zone for p in parcels)]))
        return Trace(
            ref=ref,
            direction=direction,
            matched=[Matched(kind=k, id=i) for k, i in matched],
            zones=zones,
            lots=lots,
            edges=list(edges.values()),
            events=events,
            truncated=truncated,
            next_cursor=str(last) if more else None,
            parcels=parcels,
        )


def _matched(
    cur: Any, limit: int
) -> tuple[list[tuple[str, str]], dict[str, None], dict[str, None], int, bool]:
    """The first `limit` distinct lots and parcels of the found rows (read a page at a time,
    never the whole set), what they matched, the position of the last one, and whether there
    are more."""
    matched: dict[tuple[str, str], None] = {}
    order: dict[str, None] = {}
    parcels: dict[str, None] = {}
    last, more = 0, False
    while not more and (rows := cur.fetchmany(500)):
        for r in rows:
            node = r["lot_id"] or r["parcel"]
            held = order if r["lot_id"] else parcels
            if node not in held:
                if len(order) + len(parcels) >= limit:
                    more = True
                    break
                held[node] = None
                last = r["position"]
            matched[(r["kind"], r["id"])] = None
    return list(matched), order, parcels, last, more


def _seen_lots(scope: Scope, params: list[Any]) -> str:
    """The conditions on a lot (`l`) that `scope` sees: an enterprise its books' lots, an
    operator its zone's."""
    return tenancy_sql(scope, params, enterprise=("l.enterprise",), zone=("l.zone",))


def _find(scope: Scope, ref: str, params: list[Any], after: int = 0) -> str:
    """The lots and parcels a reference names that `scope` sees, with what it matched: through
    its papers (a declaration's movements, or the movement itself) to the lots of their events,
    a bookless declaration to its parcel, and a lot id to its lot; only lots and parcels that
    came to be past the position `after`. Each row has a `lot_id` or a `parcel`."""
    params.append(ref)
    by_papers = _seen_lots(scope, params) + " AND l.position > ?"
    params.append(after)
    parcels = (
        tenancy_sql(scope, params, enterprise=("d.enterprise",), zone=("d.zone",))
        + " AND d.position > ?"
    )
    params.append(after)
    params.append(ref)
    by_id = _seen_lots(scope, params) + " AND l.position > ?"
    params.append(after)
    return (
        "WITH papers AS (SELECT kind, id, paper FROM view_trace_refs WHERE ref = ?),"
        " moved AS (SELECT p.kind, p.id, m.movement_id FROM papers p"
        "  JOIN view_trace_movements m ON m.declaration = p.paper"
        "  UNION SELECT kind, id, paper FROM papers"
        # A declaration naming checklists: the movements those checklist numbers find.
        "  UNION SELECT p.kind, p.id, c.paper FROM papers p"
        "  JOIN view_trace_refs c ON c.ref = p.paper AND c.kind = 'checklist')"
        " SELECT mv.kind, mv.id, e.lot_id, NULL AS parcel, l.position FROM moved mv"
        " JOIN view_trace_events e ON e.movement_id = mv.movement_id"
        f" JOIN view_trace_lots l ON l.lot_id = e.lot_id{by_papers}"
        " UNION SELECT p.kind, p.id, NULL, d.declaration_id, d.position FROM papers p"
        f" JOIN view_trace_parcels d ON d.declaration_id = p.paper{parcels}"
        " UNION SELECT 'lot', l.lot_id, l.lot_id, NULL, l.position"
        f" FROM view_trace_lots l WHERE l.lot_id = ?{by_id}"
        " ORDER BY position, kind, id"
    )


class _Walk:
    """Breadth first along parents (upstream) or children (downstream), adding the lots it
    reaches to `order` and the edges it takes to `edges`; only lots `scope` sees."""

    def __init__(
        self,
        cur: Any,
        scope: Scope,
        going: str,
        order: dict[str, None],
        edges: dict[tuple[str, str], TraceEdge],
    ) -> None:
        self.cur, self.going, self.order, self.edges = cur, going, order, edges
        near, far = ("child", "parent") if going == "upstream" else ("parent", "child")
        self.params: list[Any] = []
        seen = _seen_lots(scope, self.params)
        self.sql = (
            f"SELECT e.{far} AS other, e.kind, e.quantity"
            f" FROM view_trace_edges e JOIN view_trace_lots l ON l.lot_id = e.{far}{seen}"
            f" WHERE e.{near} = ? ORDER BY e.position"
        )

    def run(self, start: list[str], limit: int) -> bool:
        """Walk from `start`; True if the answer reached `limit` lots before the walk ended."""
        order, edges, upstream = self.order, self.edges, self.going == "upstream"
        frontier = deque(start)
        seen = set(start)
        while frontier:
            lot = frontier.popleft()
            self.cur.execute(self.sql, [*self.params, lot])
            for row in self.cur.fetchall():
                other = row["other"]
                parent, child = (other, lot) if upstream else (lot, other)
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


def _lots(cur: Any, lot_ids: list[str]) -> list[TraceLot]:
    rows: list[Any] = []
    for chunk in _chunks(lot_ids):
        marks = ",".join("?" * len(chunk))
        cur.execute(f"SELECT * FROM view_trace_lots WHERE lot_id IN ({marks})", chunk)
        rows += cur.fetchall()
    items = item_descriptions(cur, [(r["account_book"], int(r["item_no"])) for r in rows])
    found: dict[str, TraceLot] = {}
    for r in rows:
        item = items.get((r["account_book"], int(r["item_no"])))
        found[r["lot_id"]] = TraceLot(
            lot_id=r["lot_id"],
            zone=r["zone"],
            account_book=r["account_book"],
            item_no=int(r["item_no"]),
            hs_code=item.hs_code if item else "",
            name=item.name if item else "",
            unit=item.unit if item else "",
            goods_status=r["goods_status"],
            quantity_in=Decimal(r["quantity_in"]),
            on_hand=Decimal(r["on_hand"]),
            origin=r["origin"],
            movement_id=r["movement_id"],
            occurred_at=datetime.fromisoformat(r["occurred_at"]),
        )
    return sorted(found.values(), key=lambda lot: (lot.occurred_at, lot.lot_id))


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
            documents=PAPER_DICTS.decode(r["documents"]),
            actor=_ACTOR.decode(r["actor"]),
            movement_id=r["movement_id"],
        )
        for r in rows
    ]


def _chunks(items: list[str], size: int = 500) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
