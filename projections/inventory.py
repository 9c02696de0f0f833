"""Inventory and account-book views: balances now and as of any past instant, entries, statements.

Tables (all fed by the catch-up runner, rebuilt identically by a replay):
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
  first in its write, so its stock events find it).

Quantities are stored as decimal text and added in Python: exact, and the same on both stores.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec

from domain.account_book import AccountBookItemsRegistered, AccountBookOpened, BookItem
from domain.events import DomainEvent
from domain.exits import GoodsExited, StockReserved
from domain.movements import GoodsAdmitted, MovementRecorded, MovementView, item_stock_id
from domain.processing import InputsConsumed
from domain.stocktake import StockAdjusted
from domain.transfers import TransferDispatched, TransitSettled
from projections.declarations import scope, utc_text
from projections.runner import MISSING, LogEntry, RowCache, Texts, Writes, chunks, create

ZERO = Decimal(0)
# An entry's key: its event's log position and its place among the event's lots.
ENTRIES_PER_EVENT = 1_000_000
_DOCUMENTS = msgspec.json.Decoder(list[dict[str, str]])
_ENCODE = msgspec.json.Encoder()

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
    " account_book TEXT NOT NULL, documents TEXT NOT NULL, position BIGINT NOT NULL)",
)

# What an admission is in the book, by the movement that made the lot.
ADMISSION_KINDS = {
    "gate_in": "receipt",
    "transfer_receipt": "transfer_in",
    "processing": "production",
    "adjustment": "adjustment",
}
DRAW_KINDS: dict[type[DomainEvent], str] = {
    GoodsExited: "issue",
    TransferDispatched: "transfer_out",
    InputsConsumed: "consumption",
}
StockEvents = (
    StockReserved,
    GoodsExited,
    TransferDispatched,
    TransitSettled,
    InputsConsumed,
    GoodsAdmitted,
    StockAdjusted,
)
RECEIPTS = ("receipt", "transfer_in", "production")
ISSUES = ("issue", "transfer_out", "consumption")


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


def movement_documents(view: MovementView) -> list[dict[str, str]]:
    """The papers a movement moved goods under, in the trace's document shape."""
    docs = []
    if view.declaration is not None:
        docs.append(
            {
                "kind": "declaration",
                "id": str(view.declaration),
                "number": view.declaration_no or "",
            }
        )
    if view.gate_note:
        docs.append({"kind": "gate_note", "id": view.gate_note, "number": view.gate_note})
    if view.container:
        docs.append({"kind": "container", "id": view.container, "number": view.container})
    return docs


class InventoryProjection:
    """Applies book, movement and stock events to the inventory tables."""

    name = "inventory"
    version = 1  # bump when its tables or rows change: the views are rebuilt (runner.py)
    handles = (AccountBookOpened, AccountBookItemsRegistered, MovementRecorded, *StockEvents)

    def create_tables(self, cur: Any, *, indexes: bool = True) -> None:
        create(cur, DDL, indexes=indexes)

    def begin(self, cur: Any, previous: _InventoryFold | None) -> _InventoryFold:
        return _InventoryFold(cur, previous)


class _Item:
    """A book item's balances while a page is folded."""

    __slots__ = ("book_no", "changed", "in_transit", "item_no", "on_hand", "pending_out", "row")

    def __init__(
        self,
        book_no: str,
        item_no: int,
        balances: tuple[Decimal, Decimal, Decimal],
        row: tuple[Any, ...] | None,
    ) -> None:
        self.book_no = book_no
        self.item_no = item_no
        self.on_hand, self.pending_out, self.in_transit = balances
        # The columns of an item registered in this page (None: the row is already stored).
        self.row = row
        self.changed = False


def _stored_item(row: Any) -> _Item:
    balances = (
        Decimal(row["on_hand"]),
        Decimal(row["pending_out"]),
        Decimal(row["in_transit_out"]),
    )
    return _Item(row["book_no"], int(row["item_no"]), balances, None)


class _Hold:
    """What one declaration holds of an item (reserved or in transit): as stored before the
    page and now (None: no row)."""

    __slots__ = ("now", "stored")

    def __init__(self, stored: str | None) -> None:
        self.stored = stored
        self.now = Decimal(stored) if stored is not None else None


class _InventoryFold:
    """One page: rows read at most once (items, books, movements, what declarations hold),
    changed in memory, then written with `executemany` (new rows, changed rows, history rows
    and entries)."""

    def __init__(self, cur: Any, previous: _InventoryFold | None) -> None:
        self.cur = cur
        p = previous
        # stream -> book_no, enterprise, zone
        self.books: RowCache[str, tuple[str, str, str]] = RowCache(p.books if p else None)
        self.items: RowCache[str, _Item] = RowCache(p.items if p else None)  # by stock stream
        # movement id -> kind, documents (None: not recorded)
        self.movements: RowCache[str, tuple[str, str] | None] = RowCache(p.movements if p else None)
        # (table, stock stream, declaration) -> what the declaration holds of the item
        self.holds: RowCache[tuple[str, str, str], _Hold] = RowCache(p.holds if p else None)
        self.new_books: list[tuple[Any, ...]] = []
        self.new_movements: list[tuple[Any, ...]] = []
        self.history: list[tuple[Any, ...]] = []
        self.entries: list[tuple[Any, ...]] = []
        self.times: dict[tuple[datetime, Any], tuple[str, str]] = {}
        self.text = Texts()

    def apply(self, entry: LogEntry, event: DomainEvent) -> None:
        if isinstance(event, StockEvents):
            self._stock(entry, event)
        elif isinstance(event, MovementRecorded):
            view = event.view
            movement_id = str(view.movement_id)
            documents = _ENCODE.encode(movement_documents(view)).decode()
            self.new_movements.append(
                (movement_id, view.kind, view.zone, view.account_book, documents, entry.position)
            )
            self.movements[movement_id] = (view.kind, documents)
        elif isinstance(event, AccountBookOpened):
            stream = entry.stream_id
            self.new_books.append(
                (
                    event.book_no,
                    event.enterprise,
                    event.zone,
                    stream,
                    entry.position,
                    entry.recorded_at,
                )
            )
            self.books[stream] = (event.book_no, event.enterprise, event.zone)
            self._register(entry, event.book_no, event.enterprise, event.zone, event.items)
        elif isinstance(event, AccountBookItemsRegistered):
            book_no, enterprise, zone = self._book(entry.stream_id)
            self._register(entry, book_no, enterprise, zone, event.items)

    def prefetch(self, page: list[tuple[LogEntry, DomainEvent]]) -> None:
        """Read the page's stored items and holdings in a few queries, not one per event."""
        items: dict[str, None] = {}
        holds: dict[tuple[str, str, str], None] = {}
        for entry, event in page:
            if not isinstance(event, StockEvents):
                continue
            stream = entry.stream_id
            if stream not in self.items:
                items[stream] = None
            declaration = getattr(event, "declaration_id", None)
            if declaration is None:
                continue
            if isinstance(event, StockReserved | GoodsExited | TransferDispatched):
                holds[("view_reservations", stream, self.text[declaration])] = None
            if isinstance(event, TransferDispatched | TransitSettled):
                holds[("view_transit", stream, self.text[declaration])] = None
        for part in chunks(list(items)):
            self.cur.execute(
                "SELECT stream, book_no, item_no, on_hand, pending_out, in_transit_out"
                f" FROM view_book_items WHERE stream IN ({','.join('?' * len(part))})",
                part,
            )
            for row in self.cur.fetchall():
                self.items[row["stream"]] = _stored_item(row)
        for table in ("view_reservations", "view_transit"):
            wanted = [k[1:] for k in holds if k[0] == table and k not in self.holds]
            stored: dict[tuple[str, str], str] = {}
            for part in chunks(wanted, 200):
                marks = ",".join(["(?,?)"] * len(part))
                self.cur.execute(
                    f"SELECT stream, declaration, quantity FROM {table}"
                    f" WHERE (stream, declaration) IN (VALUES {marks})",
                    [value for key in part for value in key],
                )
                for row in self.cur.fetchall():
                    stored[(row["stream"], row["declaration"])] = row["quantity"]
            for stream, declaration in wanted:
                self.holds[(table, stream, declaration)] = _Hold(stored.get((stream, declaration)))

    def _register(
        self,
        entry: LogEntry,
        book_no: str,
        enterprise: str,
        zone: str,
        items: Iterable[BookItem],
    ) -> None:
        for n, item in enumerate(items):
            stream = str(item_stock_id(book_no, item.item_no))
            row = (
                entry.position * ENTRIES_PER_EVENT + n,
                stream,
                book_no,
                item.item_no,
                zone,
                enterprise,
                item.hs_code,
                item.name,
                item.unit,
                entry.recorded_at,
            )
            self.items[stream] = _Item(book_no, item.item_no, (ZERO, ZERO, ZERO), row)

    def _stock(self, entry: LogEntry, event: Any) -> None:
        stream = entry.stream_id
        text = self.text
        item = self.items.get(stream)
        if item is MISSING:
            item = self._item(stream)
        on_hand, pending_out, in_transit = item.on_hand, item.pending_out, item.in_transit
        lines: list[tuple[str, str, Decimal]] = []  # (kind, lot, signed quantity)
        movement = getattr(event, "movement_id", None)

        if isinstance(event, StockReserved):
            pending_out += self._hold("view_reservations", stream, event, event.quantity)
        elif isinstance(event, TransitSettled):
            in_transit += self._hold("view_transit", stream, event, -event.quantity)
        elif isinstance(event, GoodsAdmitted):
            found = self._movement(text[event.movement_id])
            if found is None:
                raise LookupError(f"goods admitted by an unknown movement {event.movement_id}")
            lines.append((ADMISSION_KINDS[found[0]], text[event.lot_id], event.quantity))
        elif isinstance(event, StockAdjusted):
            lines += [("adjustment", text[lot], q) for lot, q in event.by_lot.items()]
        else:
            kind = DRAW_KINDS[type(event)]
            lines += [(kind, text[lot], -q) for lot, q in event.by_lot.items()]
            if isinstance(event, GoodsExited | TransferDispatched):
                pending_out += self._hold("view_reservations", stream, event, -event.quantity)
            if isinstance(event, TransferDispatched):
                in_transit += self._hold("view_transit", stream, event, event.quantity)

        position, recorded_at = entry.position, entry.recorded_at
        book_no, item_no = item.book_no, item.item_no
        if lines:
            movement_text = text[movement]
            documents = "[]"
            if movement is not None:
                found = self._movement(movement_text)
                documents = found[1] if found else "[]"
            occurred_text, occurred_utc = self._time(event.occurred_at)
            key = position * ENTRIES_PER_EVENT
            for n, (kind, lot, quantity) in enumerate(lines):
                on_hand += quantity
                self.entries.append(
                    (
                        key + n,
                        position,
                        book_no,
                        item_no,
                        recorded_at,
                        occurred_text,
                        occurred_utc,
                        kind,
                        str(quantity),
                        str(on_hand),
                        lot,
                        movement_text,
                        documents,
                    )
                )
        item.on_hand, item.pending_out, item.in_transit = on_hand, pending_out, in_transit
        item.changed = True
        self.history.append(
            (
                book_no,
                item_no,
                position,
                recorded_at,
                str(on_hand),
                str(pending_out),
                str(in_transit),
            )
        )

    def _time(self, moment: datetime) -> tuple[str, str]:
        """A business time as stored and as UTC text, once per distinct time of the page."""
        key = (moment, moment.utcoffset())
        texts = self.times.get(key)
        if texts is None:
            texts = self.times[key] = (moment.isoformat(), utc_text(moment))
        return texts

    def _hold(self, table: str, stream: str, event: Any, change: Decimal) -> Decimal:
        """Add `change` to what one declaration holds (reserved or in transit) of the item;
        a decrease takes at most what it holds, as the write side does. Returns the change
        actually made. A row that reaches zero goes; a missing row comes back even at zero."""
        key = (table, stream, self.text[event.declaration_id])
        hold = self.holds.get(key)
        if hold is MISSING:
            self.cur.execute(
                f"SELECT quantity FROM {table} WHERE stream = ? AND declaration = ?", key[1:]
            )
            row = self.cur.fetchone()
            hold = self.holds[key] = _Hold(row["quantity"] if row else None)
        held = hold.now if hold.now is not None else ZERO
        if change < 0:
            change = -min(held, -change)
        after = held + change
        hold.now = None if hold.now is not None and after == 0 else after
        return change

    def _item(self, stream: str) -> _Item:
        self.cur.execute(
            "SELECT book_no, item_no, on_hand, pending_out, in_transit_out"
            " FROM view_book_items WHERE stream = ?",
            (stream,),
        )
        row = self.cur.fetchone()
        if row is None:
            raise LookupError(f"stock events of an unregistered book item (stream {stream})")
        item = self.items[stream] = _stored_item(row)
        return item

    def _book(self, stream: str) -> tuple[str, str, str]:
        book = self.books.get(stream)
        if book is MISSING:
            self.cur.execute(
                "SELECT book_no, enterprise, zone FROM view_books WHERE stream = ?", (stream,)
            )
            row = self.cur.fetchone()
            if row is None:
                raise LookupError(f"items registered in an unknown book (stream {stream})")
            book = self.books[stream] = (row["book_no"], row["enterprise"], row["zone"])
        return book

    def _movement(self, movement_id: str) -> tuple[str, str] | None:
        """(kind, documents) of a movement (its `MovementRecorded` came first in its write)."""
        found = self.movements.get(movement_id)
        if found is MISSING:
            self.cur.execute(
                "SELECT kind, documents FROM view_movements WHERE movement_id = ?",
                (movement_id,),
            )
            row = self.cur.fetchone()
            found = self.movements[movement_id] = (row["kind"], row["documents"]) if row else None
        return found

    def flush(self) -> Writes:
        writes = Writes()
        writes.add(
            "INSERT INTO view_books (book_no, enterprise, zone, stream, position, recorded_at)"
            " VALUES (?,?,?,?,?,?)",
            self.new_books,
        )
        new_items, changed = [], []
        for stream, item in self.items.now.items():
            if item.row is None and not item.changed:
                continue
            balances = (str(item.on_hand), str(item.pending_out), str(item.in_transit))
            if item.row is not None:
                new_items.append((*item.row, *balances))
            else:
                changed.append((*balances, stream))
            item.row, item.changed = None, False
        writes.add(
            "INSERT INTO view_book_items (item_key, stream, book_no, item_no, zone,"
            " enterprise, hs_code, name, unit, recorded_at, on_hand, pending_out,"
            " in_transit_out) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            new_items,
        )
        writes.add(
            "UPDATE view_book_items SET on_hand = ?, pending_out = ?, in_transit_out = ?"
            " WHERE stream = ?",
            changed,
        )
        writes.add(
            "INSERT INTO view_movements (movement_id, kind, zone, account_book, documents,"
            " position) VALUES (?,?,?,?,?,?)",
            self.new_movements,
        )
        self._flush_holds(writes)
        writes.add(
            "INSERT INTO view_stock_history (book_no, item_no, position, recorded_at,"
            " on_hand, pending_out, in_transit_out) VALUES (?,?,?,?,?,?,?)",
            self.history,
        )
        writes.add(
            "INSERT INTO view_book_entries (entry_key, position, book_no, item_no,"
            " recorded_at, occurred_at, occurred_at_utc, entry_kind, quantity,"
            " balance_after, lot_id, movement_id, documents)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            self.entries,
        )
        self.new_books, self.new_movements, self.history, self.entries = [], [], [], []
        return writes

    def _flush_holds(self, writes: Writes) -> None:
        changes: dict[str, tuple[list[Any], list[Any], list[Any]]] = {
            "view_reservations": ([], [], []),
            "view_transit": ([], [], []),
        }
        for (table, stream, declaration), hold in self.holds.now.items():
            inserts, updates, deletes = changes[table]
            now = str(hold.now) if hold.now is not None else None
            if now == hold.stored:
                continue
            if now is None:
                deletes.append((stream, declaration))
            elif hold.stored is None:
                inserts.append((stream, declaration, now))
            else:
                updates.append((now, stream, declaration))
            hold.stored = now
        for table, (inserts, updates, deletes) in changes.items():
            writes.add(f"DELETE FROM {table} WHERE stream = ? AND declaration = ?", deletes)
            writes.add(
                f"UPDATE {table} SET quantity = ? WHERE stream = ? AND declaration = ?",
                updates,
            )
            writes.add(
                f"INSERT INTO {table} (stream, declaration, quantity) VALUES (?,?,?)",
                inserts,
            )


def _visible_sql(visible: dict[str, str], params: list[Any], table: str = "i") -> str:
    sql = ""
    for column in ("enterprise", "zone"):
        if column in visible:
            sql += f" AND {table}.{column} = ?"
            params.append(visible[column])
    return sql


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
        visible: dict[str, str],
        as_of: datetime | None = None,
    ) -> list[tuple[int, InventoryRow]]:
        params: list[Any] = []
        if as_of is None:
            sql = "SELECT * FROM view_book_items i WHERE i.item_key > ?"
            params.append(after)
        else:
            cut = utc_text(as_of)
            sql = AS_OF_COLUMNS + " AND i.item_key > ?"
            params += [cut, cut, after]
        for column, value in filters.items():
            if value is not None:
                sql += f" AND i.{column} = ?"
                params.append(value)
        sql += _visible_sql(visible, params)
        sql += " ORDER BY i.item_key LIMIT ?"
        params.append(limit)
        with self.views.read() as cur:
            cur.execute(sql, params)
            return [(int(r["item_key"]), _row(r)) for r in cur.fetchall()]

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
        sql += scope(params, since=since, until=until, visible={})
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
        documents=_DOCUMENTS.decode(r["documents"]),
    )
