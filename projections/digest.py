"""Digests of the read models: two read models are equal when their digests are.

A table's digest is SHA-256 over its rows in key order, each row its values as text (NULL as
`null`) in column-name order, encoded as a JSON array and a newline. A read model's digest is
SHA-256 over `<table> <table digest>\\n` for each of its tables, in the order of READ_MODELS.
Every table is read from one snapshot of the views (one read transaction), so a digest never
mixes two moments; rows stream in batches, so memory does not grow with the table.
When two digests differ, `differences` walks both tables in key order side by side and names
the first rows that differ.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from projections.store import Snapshot

# Each view table and the columns that order its rows (its primary key).
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
    "view_trace_lots": "lot_id",
    "view_trace_edges": "parent, child",
    "view_trace_events": "event_key",
    "view_trace_refs": "ref, kind, paper",
    "view_trace_books": "book_no",
    "view_trace_movements": "movement_id",
}
# The read models a replay rebuilds and compares, and the view tables each one covers.
READ_MODELS: dict[str, tuple[str, ...]] = {
    "declarations": ("view_declarations",),
    "enterprises": ("view_enterprises",),
    "inventory": (
        "view_books",
        "view_book_items",
        "view_reservations",
        "view_transit",
        "view_stock_history",
        "view_book_entries",
        "view_movements",
    ),
    "trace": (
        "view_trace_lots",
        "view_trace_edges",
        "view_trace_events",
        "view_trace_refs",
        "view_trace_books",
        "view_trace_movements",
    ),
}
assert sorted(t for ts in READ_MODELS.values() for t in ts) == sorted(VIEW_TABLES)
# Key columns holding integers: they order as numbers; text keys order byte by byte.
INTEGER_KEYS = frozenset({"item_key", "item_no", "position", "entry_key", "event_key"})
MAX_DIFFERENCES = 3  # per table: enough to see what went wrong, short enough to read

_LINES = msgspec.json.Encoder().encode_lines


@dataclass(frozen=True)
class TableSource:
    """Where a table's rows come from: the table itself, or a query giving the same columns
    (the live inventory as of a past position)."""

    table: str
    source: str = ""  # a FROM clause; the table when empty
    where: str = ""
    params: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Difference:
    """A row that differs: its key, and its differing values live and replayed (the whole row
    when one side does not have it: None)."""

    table: str
    key: dict[str, Any]
    live: dict[str, str | None] | None
    replayed: dict[str, str | None] | None


@dataclass
class TableQuery:
    sql: str
    params: tuple[Any, ...]
    keys: list[str]
    columns: list[str] = field(default_factory=list)


def key_columns(table: str) -> list[str]:
    return [c.strip() for c in VIEW_TABLES[table].split(",")]


def _columns(snap: Snapshot, table: str) -> list[str]:
    if snap.kind == "sqlite":
        rows = list(_all(snap, f"SELECT name FROM pragma_table_info('{table}')"))
    else:
        rows = list(
            _all(
                snap,
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_schema = current_schema() AND table_name = ?",
                (table,),
            )
        )
    return sorted(str(r[0]) for r in rows)


def _all(snap: Snapshot, sql: str, params: Sequence[Any] = ()) -> Iterator[tuple[Any, ...]]:
    for batch in snap.batches(sql, params):
        yield from batch


def _order(snap: Snapshot, keys: list[str]) -> str:
    if snap.kind == "sqlite":  # BINARY collation: byte order
        return ", ".join(keys)
    return ", ".join(k if k in INTEGER_KEYS else f'{k} COLLATE "C"' for k in keys)


def _query(snap: Snapshot, source: TableSource, *, with_keys: bool = False) -> TableQuery:
    keys = key_columns(source.table)
    columns = _columns(snap, source.table)
    # Aliased: PostgreSQL would name a cast like its column, and ORDER BY would be ambiguous.
    selected = [f"CAST({c} AS TEXT) AS text_{n}" for n, c in enumerate(columns)]
    if with_keys:
        selected = keys + selected
    sql = f"SELECT {', '.join(selected)} FROM {source.source or source.table}"
    if source.where:
        sql += f" WHERE {source.where}"
    sql += f" ORDER BY {_order(snap, keys)}"
    return TableQuery(sql, source.params, keys, columns)


def table_digest(snap: Snapshot, source: TableSource) -> str:
    """SHA-256 over every row of a table, in key order, values as text."""
    query = _query(snap, source)
    h = hashlib.sha256()
    for batch in snap.batches(query.sql, query.params):
        h.update(_LINES(batch))
    return h.hexdigest()


def read_model_digest(table_digests: Mapping[str, str]) -> str:
    """One digest for a read model from its tables' digests (in the order given)."""
    h = hashlib.sha256()
    for table, digest in table_digests.items():
        h.update(f"{table} {digest}\n".encode())
    return h.hexdigest()


def views_digest(views: Any) -> dict[str, str]:
    """The digest of every view table, all read from one snapshot."""
    with views.snapshot() as snap:
        return {table: table_digest(snap, TableSource(table)) for table in VIEW_TABLES}


def differences(
    live: Snapshot,
    live_source: TableSource,
    replayed: Snapshot,
    replayed_source: TableSource,
    limit: int = MAX_DIFFERENCES,
) -> list[Difference]:
    """The first `limit` rows that differ between two versions of a table, in key order."""
    left = _query(live, live_source, with_keys=True)
    right = _query(replayed, replayed_source, with_keys=True)
    n = len(left.keys)
    a_rows, b_rows = _all(live, left.sql, left.params), _all(replayed, right.sql, right.params)
    a, b = next(a_rows, None), next(b_rows, None)
    found: list[Difference] = []
    table = live_source.table

    def whole(row: tuple[Any, ...], columns: list[str]) -> dict[str, str | None]:
        return dict(zip(columns, row[n:], strict=True))

    while (a is not None or b is not None) and len(found) < limit:
        if b is None or (a is not None and tuple(a[:n]) < tuple(b[:n])):
            assert a is not None
            found.append(Difference(table, _key(left.keys, a), whole(a, left.columns), None))
            a = next(a_rows, None)
        elif a is None or tuple(b[:n]) < tuple(a[:n]):
            found.append(Difference(table, _key(right.keys, b), None, whole(b, right.columns)))
            b = next(b_rows, None)
        else:
            if a[n:] != b[n:]:
                live_row, replayed_row = whole(a, left.columns), whole(b, right.columns)
                changed = [c for c in left.columns if live_row[c] != replayed_row.get(c)]
                found.append(
                    Difference(
                        table,
                        _key(left.keys, a),
                        {c: live_row[c] for c in changed},
                        {c: replayed_row.get(c) for c in changed},
                    )
                )
            a, b = next(a_rows, None), next(b_rows, None)
    return found


def _key(keys: list[str], row: tuple[Any, ...]) -> dict[str, Any]:
    return dict(zip(keys, row[: len(keys)], strict=True))


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
# The inventory tables the live views can give as of a past position (they keep history);
# view_reservations and view_transit hold only what is held now.
INVENTORY_AS_OF = (
    "view_books",
    "view_book_items",
    "view_stock_history",
    "view_book_entries",
    "view_movements",
)


def inventory_as_of(position: int, entries_per_event: int) -> dict[str, TableSource]:
    """The live inventory tables as they stood at `position` (from their history)."""
    sources = {
        table: TableSource(table, where="position <= ?", params=(position,))
        for table in INVENTORY_AS_OF
    }
    sources["view_book_items"] = TableSource(
        "view_book_items",
        source=_ITEMS_AS_OF,
        params=(position, (position + 1) * entries_per_event),
    )
    return sources
