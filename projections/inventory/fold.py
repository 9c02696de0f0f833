"""The inventory's fold: book, movement and stock events into the inventory tables
(tables.py), a page at a time (fed by the catch-up runner, rebuilt identically by a replay)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from domain.account_book import AccountBookItemsRegistered, AccountBookOpened, BookItem
from domain.declaration import SHANGHAI
from domain.destruction import GoodsDestroyed, HeldGoodsDestroyed
from domain.enter_first import ReservationReleased
from domain.events import DomainEvent
from domain.exits import GoodsExited, StockReserved
from domain.in_zone_transfers import TransferredInZone
from domain.movement_kinds import book_entries
from domain.movements import (
    GoodsAdmitted,
    MovementKind,
    MovementRecorded,
    MovementView,
    item_stock_id,
)
from domain.processing import ByProductMade, ChecklistInputsConsumed, InputsConsumed, ScrapMade
from domain.stocktake import StockAdjusted
from domain.transfers import TransferDispatched, TransitSettled
from projections.columns import (
    movement_kind,
    movement_papers,
    movement_view_text,
    papers_text,
    utc_text,
)
from projections.folding import (
    MISSING,
    LogEntry,
    RowCache,
    TableSource,
    Texts,
    Writes,
    chunks,
    create,
)
from projections.inventory.holds import IN_TRANSIT, RESERVED, HoldKey, Holds
from projections.inventory.tables import DDL, ENTRIES_PER_EVENT, TABLES, tables_as_of

ZERO = Decimal(0)

# What an admission is in the book, by the kind of the movement that made the lot.
BOOK_ENTRIES: dict[str, str] = book_entries()
# Processing outputs other than the product have entries of their own.
MADE_ENTRIES: dict[type[DomainEvent], str] = {ByProductMade: "by_product", ScrapMade: "scrap"}
DRAW_KINDS: dict[type[DomainEvent], str] = {
    GoodsExited: "issue",
    TransferDispatched: "transfer_out",
    TransferredInZone: "transfer_out",
    InputsConsumed: "consumption",
    ChecklistInputsConsumed: "consumption",
    GoodsDestroyed: "destruction",
    HeldGoodsDestroyed: "destruction",
}
StockEvents = (
    StockReserved,
    ReservationReleased,
    GoodsExited,
    TransferDispatched,
    TransitSettled,
    InputsConsumed,
    GoodsAdmitted,
    StockAdjusted,
)


# Stock events that change what a declaration (or a checklist) holds of an item.
HOLDING = (
    StockReserved,
    GoodsExited,
    TransferDispatched,
    ReservationReleased,
    ChecklistInputsConsumed,
)


class RecordedMovement(NamedTuple):
    """What a movement's stock events need of it: its kind and its papers (JSON text)."""

    kind: MovementKind
    papers: str


class InventoryProjection:
    """Applies book, movement and stock events to the inventory tables."""

    name = "inventory"
    # Bump when its tables or rows change: the views are rebuilt (runner.py).
    # 2: view_movements keeps each movement's declaration and business time (GET /v1/stats).
    # 3: and whether it is flagged, and its whole view (GET /v1/movements). 4: goods that
    # entered first are held for their declaration, then let go (`ReservationReleased`).
    # (In-zone transfers and processing under a checklist add event types, not columns.)
    version = 4
    handles: tuple[type[DomainEvent], ...] = (
        AccountBookOpened,
        AccountBookItemsRegistered,
        MovementRecorded,
        *StockEvents,
    )
    tables = TABLES

    def create_tables(self, cur: Any, *, indexes: bool = True) -> None:
        create(cur, DDL, indexes=indexes)

    def begin(self, cur: Any, previous: _InventoryFold | None) -> _InventoryFold:
        return _InventoryFold(cur, previous)

    def tables_as_of(self, position: int) -> dict[str, TableSource]:
        """Its tables that keep history, as they stood at `position`."""
        return tables_as_of(position)


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
        # movement id -> its kind and papers (None: not recorded)
        self.movements: RowCache[str, RecordedMovement | None] = RowCache(
            p.movements if p else None
        )
        self.holds: Holds = Holds(cur, p.holds if p else None)
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
            self._recorded(entry, event.view)
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

    def _recorded(self, entry: LogEntry, view: MovementView) -> None:
        """A movement's row: its kind, papers, declaration (empty for processing and stocktake
        adjustments) and business time, as UTC text and as China's day (the statistics)."""
        movement_id = str(view.movement_id)
        documents = papers_text(movement_papers(view))
        declaration = self.text[view.declaration] if view.declaration is not None else ""
        occurred = view.occurred_at
        self.new_movements.append(
            (
                movement_id,
                view.kind,
                view.zone,
                view.account_book,
                documents,
                entry.position,
                declaration,
                self._time(occurred)[1],
                occurred.astimezone(SHANGHAI).date().isoformat(),
                int(view.flagged),
                movement_view_text(view),
            )
        )
        self.movements[movement_id] = RecordedMovement(view.kind, documents)

    def prefetch(self, page: list[tuple[LogEntry, DomainEvent]]) -> None:
        """Read the page's stored items and holdings in a few queries, not one per event."""
        items: dict[str, None] = {}
        holds: dict[HoldKey, None] = {}
        for entry, event in page:
            if not isinstance(event, StockEvents):
                continue
            stream = entry.stream_id
            if stream not in self.items:
                items[stream] = None
            declaration = getattr(event, "declaration_id", None) or getattr(
                event, "checklist_id", None
            )
            if declaration is None:
                continue
            if isinstance(event, HOLDING):
                holds[(RESERVED, stream, self.text[declaration])] = None
            if isinstance(event, TransferDispatched | TransitSettled):
                holds[(IN_TRANSIT, stream, self.text[declaration])] = None
        for part in chunks(list(items)):
            self.cur.execute(
                "SELECT stream, book_no, item_no, on_hand, pending_out, in_transit_out"
                f" FROM view_book_items WHERE stream IN ({','.join('?' * len(part))})",
                part,
            )
            for row in self.cur.fetchall():
                self.items[row["stream"]] = _stored_item(row)
        self.holds.prefetch(holds)

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
            declaration = text[event.declaration_id]
            pending_out += self.holds.change(RESERVED, stream, declaration, event.quantity)
        elif isinstance(event, ReservationReleased):
            declaration = text[event.declaration_id]
            pending_out += self.holds.change(RESERVED, stream, declaration, -event.quantity)
        elif isinstance(event, TransitSettled):
            declaration = text[event.declaration_id]
            in_transit += self.holds.change(IN_TRANSIT, stream, declaration, -event.quantity)
        elif isinstance(event, GoodsAdmitted):
            found = self._movement(text[event.movement_id])
            if found is None:
                raise LookupError(f"goods admitted by an unknown movement {event.movement_id}")
            entry_kind = MADE_ENTRIES.get(type(event)) or BOOK_ENTRIES[found.kind]
            lines.append((entry_kind, text[event.lot_id], event.quantity))
        elif isinstance(event, StockAdjusted):
            lines += [("adjustment", text[lot], q) for lot, q in event.by_lot.items()]
        else:
            kind = DRAW_KINDS[type(event)]
            lines += [(kind, text[lot], -q) for lot, q in event.by_lot.items()]
            if isinstance(event, ChecklistInputsConsumed):  # what its checklist held
                holder = text[event.checklist_id]
                pending_out += self.holds.change(RESERVED, stream, holder, -event.quantity)
            if isinstance(event, GoodsExited | TransferDispatched):
                declaration = text[event.declaration_id]
                pending_out += self.holds.change(RESERVED, stream, declaration, -event.quantity)
                if isinstance(event, TransferDispatched):
                    in_transit += self.holds.change(IN_TRANSIT, stream, declaration, event.quantity)

        position, recorded_at = entry.position, entry.recorded_at
        book_no, item_no = item.book_no, item.item_no
        if lines:
            movement_text = text[movement]
            documents = "[]"
            if movement is not None:
                found = self._movement(movement_text)
                documents = found.papers if found else "[]"
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

    def _movement(self, movement_id: str) -> RecordedMovement | None:
        """A movement's kind and papers (its `MovementRecorded` came first in its write)."""
        found = self.movements.get(movement_id)
        if found is MISSING:
            self.cur.execute(
                "SELECT kind, documents FROM view_movements WHERE movement_id = ?",
                (movement_id,),
            )
            row = self.cur.fetchone()
            found = self.movements[movement_id] = (
                RecordedMovement(movement_kind(row["kind"]), row["documents"]) if row else None
            )
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
            " position, declaration, occurred_at_utc, business_day, flagged, view)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            self.new_movements,
        )
        self.holds.flush(writes)
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
