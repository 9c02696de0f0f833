"""The trace graph's tables: lots as nodes, transfers and processing as edges, every
reference indexed.

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
- `view_trace_books`: each book's enterprise;
- `view_trace_parcels`: each declaration that moves no book (a 9610 parcel, parcels.py), a
  node of its own that its references find;
- `view_trace_transit`: what of each dispatched lot is still in transit under a transfer
  (transit.py), so that goods written off as lost become a node (`origin` `lost`) of
  `view_trace_lots` with `lost` edges from the lots they came from.
A reference finds its lots through its paper: a movement's lots are the lots of its events in
`view_trace_events`, a declaration's those of its movements (a lot id finds its lot directly).
A reference is stored once per paper, never once per lot.
"""

from __future__ import annotations

from projections.folding import ViewTable
from projections.trace.parcels import PARCELS_DDL
from projections.trace.transit import TRANSIT_DDL

# A chain event's key: its event's log position (one lot per lot event).
EVENTS_PER_POSITION = 1_000_000

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
    *PARCELS_DDL,
    *TRANSIT_DDL,
)
# The tables in the order the read model's digest covers them.
TABLES: tuple[ViewTable, ...] = (
    ViewTable("view_trace_lots", ("lot_id",)),
    ViewTable("view_trace_edges", ("parent", "child")),
    ViewTable("view_trace_events", ("event_key",), ("event_key",)),
    ViewTable("view_trace_refs", ("ref", "kind", "paper")),
    ViewTable("view_trace_books", ("book_no",)),
    ViewTable("view_trace_movements", ("movement_id",)),
    ViewTable("view_trace_parcels", ("declaration_id",)),
    ViewTable("view_trace_transit", ("declaration_id", "stock_id", "goods_status", "lot_id")),
)
# The tables of version 1 that version 2 no longer has (dropped with the rest on a rebuild).
RETIRED_TABLES = ("view_trace_declarations",)
