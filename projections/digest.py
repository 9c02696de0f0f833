"""Digests of view tables: two read models are equal when their digests are."""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

# Each view table and the columns that order its rows.
VIEW_TABLES: dict[str, str] = {
    "view_declarations": "id",
    "view_enterprises": "uscc",
    "view_books": "book_no",
    "view_book_items": "item_key",
    "view_reservations": "stream, declaration",
    "view_transit": "stream, declaration",
    "view_stock_history": "book_no, item_no, position",
    "view_book_entries": "entry_key",
    "view_movements": "movement_id",
    "view_trace_declarations": "id",
    "view_trace_lots": "lot_id",
    "view_trace_edges": "parent, child",
    "view_trace_events": "event_key",
    "view_trace_refs": "ref, kind, lot_id",
}


def table_digest(views: Any, table: str, order_by: str) -> str:
    """SHA-256 over every row of a view table, in key order, values as text."""
    h = hashlib.sha256()
    with views.read() as cur:
        cur.execute(f"SELECT * FROM {table} ORDER BY {order_by}")
        for row in cur.fetchall():
            values = [str(row[k]) if row[k] is not None else None for k in sorted(row.keys())]
            h.update(msgspec.json.encode(values))
            h.update(b"\n")
    return h.hexdigest()


def views_digest(views: Any) -> dict[str, str]:
    return {table: table_digest(views, table, key) for table, key in VIEW_TABLES.items()}
