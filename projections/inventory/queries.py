"""Reads of the inventory's tables (tables.py): balances now and as of any past instant,
account-book entries, statements and the movements; tenancy is applied in the query."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec

from domain.movements import MovementAnswer, answer
from domain.scope import Scope
from projections.columns import (
    MOVEMENT_VIEW,
    PAPER_DICTS,
    filter_sql,
    period_sql,
    tenancy_sql,
    utc_text,
)
from projections.folding import chunks

ZERO = Decimal(0)
RECEIPTS = ("receipt", "transfer_in", "production", "by_product", "scrap")
ISSUES = ("issue", "transfer_out", "consumption", "destruction")
# The filters of GET /v1/inventory, and their columns.
FILTERS = {"zone": "i.zone", "book_no": "i.book_no", "item_no": "i.item_no", "hs_code": "i.hs_code"}
# The filters of GET /v1/movements, and their columns (`flagged` is stored as 0 or 1).
MOVEMENT_FILTERS = {
    "kind": "m.kind",
    "flagged": "m.flagged",
    "account_book": "m.account_book",
    "zone": "m.zone",
}


class InventoryRow(msgspec.Struct, frozen=True, kw_only=True):
    zone: str
    account_book: str
    item_no: int
    hs_code: str
    unit: str
    on_hand: Decimal
    pending_out: Decimal
    in_transit_out: Decimal
    available: Decimal


class BookEntry(msgspec.Struct, frozen=True, kw_only=True):
    position: int
    recorded_at: datetime
    occurred_at: datetime
    item_no: int
    entry_kind: str
    quantity: Decimal
    balance_after: Decimal
    lot_id: str
    movement_id: str
    documents: list[dict[str, str]]


class StatementLine(msgspec.Struct, frozen=True, kw_only=True):
    item_no: int
    opening: Decimal
    receipts: Decimal
    issues: Decimal
    adjustments: Decimal
    closing: Decimal


class ItemDescription(msgspec.Struct, frozen=True):
    """What the trace shows of a lot's item: its HS code, name and unit."""

    hs_code: str
    name: str
    unit: str


def _row(r: Any) -> InventoryRow:
    """An item row with its balances; none recorded (before its first movement) is zero."""
    on_hand, pending, transit = (
        Decimal(r[c]) if r[c] is not None else ZERO
        for c in ("on_hand", "pending_out", "in_transit_out")
    )
    return InventoryRow(
        zone=r["zone"],
        account_book=r["book_no"],
        item_no=int(r["item_no"]),
        hs_code=r["hs_code"],
        unit=r["unit"],
        on_hand=on_hand,
        pending_out=pending,
        in_transit_out=transit,
        available=on_hand - pending,
    )


# The item's balances as of a cut: its last history row recorded at or before it (none: zero).
AS_OF_COLUMNS = (
    "SELECT i.item_key, i.book_no, i.item_no, i.zone, i.enterprise, i.hs_code, i.name, i.unit,"
    " h.on_hand, h.pending_out, h.in_transit_out"
    " FROM view_book_items i LEFT JOIN view_stock_history h"
    " ON h.book_no = i.book_no AND h.item_no = i.item_no AND h.position = ("
    "  SELECT x.position FROM view_stock_history x"
    "  WHERE x.book_no = i.book_no AND x.item_no = i.item_no AND x.recorded_at <= ?"
    "  ORDER BY x.recorded_at DESC, x.position DESC LIMIT 1)"
    " WHERE i.recorded_at <= ?"
)


class InventoryQueries:
    """Reads of the inventory views; tenancy is applied in the query."""

    def __init__(self, views: Any) -> None:
        self.views = views

    def inventory(
        self,
        *,
        after: int,
        limit: int,
        filters: dict[str, Any],
        scope: Scope,
        as_of: datetime | None = None,
    ) -> list[tuple[int, InventoryRow]]:
        """(cursor, item with its balances) by item key, now or `as_of` a past instant (record
        time); those `scope` sees; `filters` by FILTERS' names."""
        params: list[Any] = []
        if as_of is None:
            sql = "SELECT * FROM view_book_items i WHERE i.item_key > ?"
            params.append(after)
        else:
            cut = utc_text(as_of)
            sql = AS_OF_COLUMNS + " AND i.item_key > ?"
            params += [cut, cut, after]
        sql += filter_sql(params, filters, FILTERS)
        sql += tenancy_sql(scope, params, enterprise=("i.enterprise",), zone=("i.zone",))
        sql += " ORDER BY i.item_key LIMIT ?"
        params.append(limit)
        with self.views.read() as cur:
            cur.execute(sql, params)
            return [(int(r["item_key"]), _row(r)) for r in cur.fetchall()]

    def movements(
        self,
        *,
        after: int,
        limit: int,
        filters: dict[str, Any],
        scope: Scope,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[tuple[int, MovementAnswer]]:
        """(cursor, movement as GET /v1/movements/{id} answers it) in log order, those `scope`
        sees (an enterprise: its own books' movements, as `GET /v1/movements/{id}` decides; an
        operator: its zone's); business time in `[since, until)`; `filters` by
        MOVEMENT_FILTERS' names."""
        sql = (
            "SELECT m.position, m.view FROM view_movements m"
            " LEFT JOIN view_books b ON b.book_no = m.account_book WHERE m.position > ?"
        )
        params: list[Any] = [after]
        sql += filter_sql(params, filters, MOVEMENT_FILTERS)
        sql += period_sql(params, since=since, until=until, column="m.occurred_at_utc")
        sql += tenancy_sql(scope, params, enterprise=("b.enterprise",), zone=("m.zone",))
        sql += " ORDER BY m.position LIMIT ?"
        params.append(limit)
        with self.views.read() as cur:
            cur.execute(sql, params)
            return [
                (int(r["position"]), answer(MOVEMENT_VIEW.decode(r["view"]), int(r["position"])))
                for r in cur.fetchall()
            ]

    def book_as_of(
        self, book_no: str, as_of: datetime
    ) -> tuple[dict[str, Any], list[tuple[InventoryRow, str]]] | None:
        """(book row, (item balances, item name) per item) as the log stood at `as_of`; None
        if the book was not open yet."""
        cut = utc_text(as_of)
        with self.views.read() as cur:
            cur.execute(
                "SELECT * FROM view_books WHERE book_no = ? AND recorded_at <= ?", (book_no, cut)
            )
            book = cur.fetchone()
            if book is None:
                return None
            cur.execute(
                AS_OF_COLUMNS + " AND i.book_no = ? ORDER BY i.item_no", (cut, cut, book_no)
            )
            return dict(book), [(_row(r), r["name"]) for r in cur.fetchall()]

    def entries(
        self,
        book_no: str,
        *,
        after: int,
        limit: int,
        item_no: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[tuple[int, BookEntry]]:
        sql = "SELECT * FROM view_book_entries WHERE book_no = ? AND entry_key > ?"
        params: list[Any] = [book_no, after]
        if item_no is not None:
            sql += " AND item_no = ?"
            params.append(item_no)
        sql += period_sql(params, since=since, until=until)
        sql += " ORDER BY entry_key LIMIT ?"
        params.append(limit)
        with self.views.read() as cur:
            cur.execute(sql, params)
            return [(int(r["entry_key"]), _entry(r)) for r in cur.fetchall()]

    def statement(
        self,
        book_no: str,
        *,
        since: datetime | None,
        until: datetime | None,
        as_of: datetime | None,
    ) -> list[StatementLine]:
        """Per item: opening before `since`, the period's receipts, issues and adjustments,
        closing; on business time, with `as_of` cutting on record time."""
        params: list[Any] = [book_no]
        items_sql = "SELECT item_no FROM view_book_items WHERE book_no = ?"
        sql = (
            "SELECT item_no, entry_kind, quantity, occurred_at_utc FROM view_book_entries"
            " WHERE book_no = ?"
        )
        if as_of is not None:
            items_sql += " AND recorded_at <= ?"
            sql += " AND recorded_at <= ?"
            params.append(utc_text(as_of))
        if until is not None:
            sql += " AND occurred_at_utc < ?"
        start = utc_text(since) if since is not None else None
        with self.views.read() as cur:
            cur.execute(items_sql + " ORDER BY item_no", params)
            items = [int(r["item_no"]) for r in cur.fetchall()]
            cur.execute(sql, [*params, utc_text(until)] if until is not None else params)
            rows = cur.fetchall()
        sums = {
            n: {"opening": ZERO, "receipts": ZERO, "issues": ZERO, "adjustments": ZERO}
            for n in items
        }
        for r in rows:
            figures = sums.setdefault(
                int(r["item_no"]),
                {"opening": ZERO, "receipts": ZERO, "issues": ZERO, "adjustments": ZERO},
            )
            quantity = Decimal(r["quantity"])
            if start is not None and r["occurred_at_utc"] < start:
                figures["opening"] += quantity
            elif r["entry_kind"] in RECEIPTS:
                figures["receipts"] += quantity
            elif r["entry_kind"] in ISSUES:
                figures["issues"] -= quantity
            else:
                figures["adjustments"] += quantity
        return [
            StatementLine(
                item_no=n,
                opening=f["opening"],
                receipts=f["receipts"],
                issues=f["issues"],
                adjustments=f["adjustments"],
                closing=f["opening"] + f["receipts"] - f["issues"] + f["adjustments"],
            )
            for n, f in sorted(sums.items())
        ]


def _entry(r: Any) -> BookEntry:
    return BookEntry(
        position=int(r["position"]),
        recorded_at=datetime.fromisoformat(r["recorded_at"].replace("Z", "+00:00")),
        occurred_at=datetime.fromisoformat(r["occurred_at"]),
        item_no=int(r["item_no"]),
        entry_kind=r["entry_kind"],
        quantity=Decimal(r["quantity"]),
        balance_after=Decimal(r["balance_after"]),
        lot_id=r["lot_id"],
        movement_id=r["movement_id"],
        documents=PAPER_DICTS.decode(r["documents"]),
    )


def item_descriptions(
    cur: Any, items: Sequence[tuple[str, int]]
) -> dict[tuple[str, int], ItemDescription]:
    """The HS code, name and unit of each registered (book_no, item_no) of `items`, read with
    the caller's cursor (in its transaction); an unknown item is not in the answer."""
    found: dict[tuple[str, int], ItemDescription] = {}
    for part in chunks(list(dict.fromkeys(items)), 200):
        marks = ",".join(["(?,?)"] * len(part))
        cur.execute(
            "SELECT book_no, item_no, hs_code, name, unit FROM view_book_items"
            f" WHERE (book_no, item_no) IN (VALUES {marks})",
            [value for item in part for value in item],
        )
        for r in cur.fetchall():
            found[(r["book_no"], int(r["item_no"]))] = ItemDescription(
                r["hs_code"], r["name"], r["unit"]
            )
    return found
