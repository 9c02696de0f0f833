"""The inventory's tables: their DDL, their keys, and what they say about a past position.

- `view_books`: one row per account book (enterprise, zone, when it was opened);
- `view_book_items`: one row per registered item with its current balances (`on_hand`,
  `pending_out`, `in_transit_out`), keyed also by the item's stock stream id;
- `view_reservations` / `view_transit`: what each declaration holds reserved or in transit per
  item, so releases and settlements subtract exactly what the write side does;
- `view_stock_history`: the item's balances after every event that changed them, keyed by log
  position, so `as_of` is one indexed seek per item (no replay per request);
- `view_book_entries`: the account-book entries, one per lot an event touched, with signed
  quantity and the item's running `balance_after` in log order;
- `view_movements`: each movement's kind and papers (a movement's `MovementRecorded` comes
  first in its write, so its stock events find it), its declaration (empty for processing and
  stocktake adjustments) and its business time, which the statistics count by; whether it is
  a flagged stocktake decrease, and the whole recorded view (JSON: a movement is written once,
  so GET /v1/movements lists it without reading the log).

Quantities are stored as decimal text and added in Python: exact, and the same on both stores.
"""

from __future__ import annotations

from projections.folding import TableSource, ViewTable

# An entry's key: its event's log position and its place among the event's lots (an item's
# key too: the position of the event that registered it and its place in the event).
ENTRIES_PER_EVENT = 1_000_000

DDL = (
    "CREATE TABLE IF NOT EXISTS view_books ("
    " book_no TEXT PRIMARY KEY, enterprise TEXT NOT NULL, zone TEXT NOT NULL,"
    " stream TEXT NOT NULL UNIQUE, position BIGINT NOT NULL, recorded_at TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS view_book_items ("
    " item_key BIGINT PRIMARY KEY, stream TEXT NOT NULL UNIQUE,"
    " book_no TEXT NOT NULL, item_no BIGINT NOT NULL, zone TEXT NOT NULL,"
    " enterprise TEXT NOT NULL, hs_code TEXT NOT NULL, name TEXT NOT NULL, unit TEXT NOT NULL,"
    " on_hand TEXT NOT NULL, pending_out TEXT NOT NULL, in_transit_out TEXT NOT NULL,"
    " recorded_at TEXT NOT NULL, UNIQUE (book_no, item_no))",
    "CREATE INDEX IF NOT EXISTS view_book_items_zone ON view_book_items (zone)",
    "CREATE INDEX IF NOT EXISTS view_book_items_hs ON view_book_items (hs_code)",
    "CREATE TABLE IF NOT EXISTS view_reservations ("
    " stream TEXT NOT NULL, declaration TEXT NOT NULL, quantity TEXT NOT NULL,"
    " PRIMARY KEY (stream, declaration))",
    "CREATE TABLE IF NOT EXISTS view_transit ("
    " stream TEXT NOT NULL, declaration TEXT NOT NULL, quantity TEXT NOT NULL,"
    " PRIMARY KEY (stream, declaration))",
    "CREATE TABLE IF NOT EXISTS view_stock_history ("
    " book_no TEXT NOT NULL, item_no BIGINT NOT NULL, position BIGINT NOT NULL,"
    " recorded_at TEXT NOT NULL, on_hand TEXT NOT NULL, pending_out TEXT NOT NULL,"
    " in_transit_out TEXT NOT NULL, PRIMARY KEY (book_no, item_no, position))",
    "CREATE INDEX IF NOT EXISTS view_stock_history_time"
    " ON view_stock_history (book_no, item_no, recorded_at, position)",
    "CREATE TABLE IF NOT EXISTS view_book_entries ("
    " entry_key BIGINT PRIMARY KEY, position BIGINT NOT NULL, book_no TEXT NOT NULL,"
    " item_no BIGINT NOT NULL, recorded_at TEXT NOT NULL, occurred_at TEXT NOT NULL,"
    " occurred_at_utc TEXT NOT NULL, entry_kind TEXT NOT NULL, quantity TEXT NOT NULL,"
    " balance_after TEXT NOT NULL, lot_id TEXT NOT NULL, movement_id TEXT NOT NULL,"
    " documents TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS view_book_entries_item"
    " ON view_book_entries (book_no, item_no, entry_key)",
    "CREATE INDEX IF NOT EXISTS view_book_entries_book ON view_book_entries (book_no, entry_key)",
    "CREATE TABLE IF NOT EXISTS view_movements ("
    " movement_id TEXT PRIMARY KEY, kind TEXT NOT NULL, zone TEXT NOT NULL,"
    " account_book TEXT NOT NULL, documents TEXT NOT NULL, position BIGINT NOT NULL,"
    " declaration TEXT NOT NULL, occurred_at_utc TEXT NOT NULL, business_day TEXT NOT NULL,"
    " flagged BIGINT NOT NULL, view TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS view_movements_time ON view_movements (occurred_at_utc)",
    "CREATE INDEX IF NOT EXISTS view_movements_position ON view_movements (position)",
)

BOOKS = ViewTable("view_books", ("book_no",))
BOOK_ITEMS = ViewTable("view_book_items", ("item_key",), ("item_key",))
# The tables in the order the read model's digest covers them.
TABLES: tuple[ViewTable, ...] = (
    BOOKS,
    BOOK_ITEMS,
    ViewTable("view_reservations", ("stream", "declaration")),
    ViewTable("view_transit", ("stream", "declaration")),
    ViewTable("view_stock_history", ("book_no", "item_no", "position"), ("item_no", "position")),
    ViewTable("view_book_entries", ("entry_key",), ("entry_key",)),
    ViewTable("view_movements", ("movement_id",)),
)

# -- the live inventory as of a past position ------------------------------------------------

# Each item registered at or before the position, with the balances of its last history row at
# or before it (zero before its first movement): what GET /v1/inventory?as_of= answers.
_ITEMS_AS_OF = (
    "(SELECT i.item_key, i.stream, i.book_no, i.item_no, i.zone, i.enterprise, i.hs_code,"
    " i.name, i.unit, i.recorded_at,"
    " COALESCE(h.on_hand, '0') AS on_hand, COALESCE(h.pending_out, '0') AS pending_out,"
    " COALESCE(h.in_transit_out, '0') AS in_transit_out"
    " FROM view_book_items i LEFT JOIN view_stock_history h"
    " ON h.book_no = i.book_no AND h.item_no = i.item_no AND h.position = ("
    "  SELECT max(x.position) FROM view_stock_history x"
    "  WHERE x.book_no = i.book_no AND x.item_no = i.item_no AND x.position <= ?)"
    " WHERE i.item_key < ?) AS items_as_of"
)
# The tables the live views can give as of a past position (they keep history);
# view_reservations and view_transit hold only what is held now.
KEEPING_HISTORY = (
    "view_books",
    "view_book_items",
    "view_stock_history",
    "view_book_entries",
    "view_movements",
)


def tables_as_of(position: int) -> dict[str, TableSource]:
    """The live inventory tables as they stood at `position` (from their history)."""
    sources = {
        table.name: TableSource(table, where="position <= ?", params=(position,))
        for table in TABLES
        if table.name in KEEPING_HISTORY
    }
    sources[BOOK_ITEMS.name] = TableSource(
        BOOK_ITEMS,
        source=_ITEMS_AS_OF,
        params=(position, (position + 1) * ENTRIES_PER_EVENT),
    )
    return sources
