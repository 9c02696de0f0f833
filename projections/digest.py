"""Digests of the read models: two read models are equal when their digests are.

A table's digest is SHA-256 over its rows in key order, each row its values as text (NULL as
`null`) in column-name order, encoded as a JSON array and a newline. A read model's digest is
SHA-256 over `<table> <table digest>\\n` for each of its tables, in the order its projection
names them (`Projection.tables`).
Every table is read from one snapshot of the views (one read transaction), so a digest never
mixes two moments; rows stream in batches, so memory does not grow with the table.
When two digests differ, `differences` walks both tables in key order side by side and names
the first rows that differ.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from projections.folding import TableSource, ViewTable
from projections.read_models import read_model_tables
from projections.store import Snapshot

MAX_DIFFERENCES = 3  # per table: enough to see what went wrong, short enough to read

_LINES = msgspec.json.Encoder().encode_lines


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


def _order(snap: Snapshot, table: ViewTable) -> str:
    if snap.kind == "sqlite":  # BINARY collation: byte order
        return ", ".join(table.key)
    return ", ".join(k if k in table.integer_key else f'{k} COLLATE "C"' for k in table.key)


def _query(snap: Snapshot, source: TableSource, *, with_keys: bool = False) -> TableQuery:
    keys = list(source.table.key)
    columns = _columns(snap, source.table.name)
    # Aliased: PostgreSQL would name a cast like its column, and ORDER BY would be ambiguous.
    selected = [f"CAST({c} AS TEXT) AS text_{n}" for n, c in enumerate(columns)]
    if with_keys:
        selected = keys + selected
    sql = f"SELECT {', '.join(selected)} FROM {source.source or source.table.name}"
    if source.where:
        sql += f" WHERE {source.where}"
    sql += f" ORDER BY {_order(snap, source.table)}"
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


def views_digest(views: Any, tables: Iterable[ViewTable] | None = None) -> dict[str, str]:
    """The digest of every table of `tables` (None: of every read model), all read from one
    snapshot."""
    if tables is None:
        tables = [t for ts in read_model_tables().values() for t in ts]
    with views.snapshot() as snap:
        return {table.name: table_digest(snap, TableSource(table)) for table in tables}


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
    table = live_source.table.name

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
