"""Write-offs on the read side (issue #18 item 1): the period's figures from the inventory's
entries at one log position, and the write-offs as recorded, now and as of any past instant.

- `figures`: per item and customs status, the book's entries up to a log position added up
  over a period of business time (domain/write_offs.py `FigureSums`); an entry's status is its
  lot's (`view_trace_lots`: a lot keeps its customs status for life); the processing movements
  of the period per BOM (the consumption check); each item's stock stream version at the
  position (one history row per event of the stream: what the write side checks).
- `view_write_offs`: one row per write-off (the list), and `view_write_off_versions` the
  write-off's whole view after each of its events, with the time it was recorded (`as_of`).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec

from domain.events import DomainEvent
from domain.scope import Scope
from domain.write_offs import (
    FigureSums,
    ItemFigures,
    ProcessingRun,
    WriteOffCertified,
    WriteOffSubmitted,
    WriteOffView,
)
from projections.columns import MOVEMENT_VIEW, tenancy_sql, utc_text
from projections.folding import LogEntry, TableSource, ViewTable, Writes, create

DDL = (
    "CREATE TABLE IF NOT EXISTS view_write_offs ("
    " write_off_id TEXT PRIMARY KEY, account_book TEXT NOT NULL, enterprise TEXT NOT NULL,"
    " zone TEXT NOT NULL, period_from TEXT NOT NULL, period_to TEXT NOT NULL,"
    " status TEXT NOT NULL, first_position BIGINT NOT NULL, position BIGINT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS view_write_offs_book"
    " ON view_write_offs (account_book, period_from)",
    "CREATE TABLE IF NOT EXISTS view_write_off_versions ("
    " write_off_id TEXT NOT NULL, position BIGINT NOT NULL, recorded_at TEXT NOT NULL,"
    " view TEXT NOT NULL, PRIMARY KEY (write_off_id, position))",
)
TABLES: tuple[ViewTable, ...] = (
    ViewTable("view_write_offs", ("write_off_id",)),
    ViewTable("view_write_off_versions", ("write_off_id", "position"), ("position",)),
)
_VIEW = msgspec.json.Decoder(WriteOffView)
_ENCODE = msgspec.json.Encoder(decimal_format="string")


class WriteOffsProjection:
    name = "write_offs"
    version = 1
    handles: tuple[type[DomainEvent], ...] = (WriteOffSubmitted, WriteOffCertified)
    tables = TABLES

    def create_tables(self, cur: Any, *, indexes: bool = True) -> None:
        create(cur, DDL, indexes=indexes)

    def begin(self, cur: Any, previous: _WriteOffsFold | None) -> _WriteOffsFold:
        return _WriteOffsFold(cur)

    def tables_as_of(self, position: int) -> dict[str, TableSource]:
        """The table that keeps history, as it stood at `position` (an as-of replay compares
        it; `view_write_offs` holds each write-off's status now only)."""
        versions = TABLES[1]
        return {versions.name: TableSource(versions, where="position <= ?", params=(position,))}


class _WriteOffsFold:
    """A write-off's submission carries its whole view, its certification the rest: a
    certification reads the stored view only when its submission was folded in an earlier
    page."""

    def __init__(self, cur: Any) -> None:
        self.cur = cur
        self.new: list[tuple[Any, ...]] = []
        self.changed: list[tuple[Any, ...]] = []
        self.versions: list[tuple[Any, ...]] = []
        self.views: dict[str, WriteOffView] = {}

    def prefetch(self, page: list[tuple[LogEntry, DomainEvent]]) -> None:
        return None

    def apply(self, entry: LogEntry, event: DomainEvent) -> None:
        stream = entry.stream_id
        if isinstance(event, WriteOffSubmitted):
            v = event.view
            self.views[stream] = v
            period = (v.period.from_.isoformat(), v.period.to.isoformat())
            head = (stream, v.account_book, v.enterprise, v.zone, *period, v.status)
            self.new.append((*head, entry.position, entry.position))
        elif isinstance(event, WriteOffCertified):
            found = self.views.get(stream) or self._stored(stream)
            v = msgspec.structs.replace(
                found, status=event.certification.result, certification=event.certification
            )
            self.views[stream] = v
            self.changed.append((v.status, entry.position, stream))
        else:
            return
        self.versions.append(
            (stream, entry.position, entry.recorded_at, _ENCODE.encode(self.views[stream]).decode())
        )

    def _stored(self, stream: str) -> WriteOffView:
        self.cur.execute(
            "SELECT view FROM view_write_off_versions WHERE write_off_id = ?"
            " ORDER BY position DESC LIMIT 1",
            (stream,),
        )
        row = self.cur.fetchone()
        if row is None:
            raise LookupError(f"write-off {stream} certified before it was submitted")
        return _VIEW.decode(row["view"])

    def flush(self) -> Writes:
        writes = Writes()
        writes.add(
            "INSERT INTO view_write_offs (write_off_id, account_book, enterprise, zone,"
            " period_from, period_to, status, first_position, position)"
            " VALUES (?,?,?,?,?,?,?,?,?)",
            self.new,
        )
        writes.add(
            "UPDATE view_write_offs SET status = ?, position = ? WHERE write_off_id = ?",
            self.changed,
        )
        writes.add(
            "INSERT INTO view_write_off_versions (write_off_id, position, recorded_at, view)"
            " VALUES (?,?,?,?)",
            self.versions,
        )
        self.new, self.changed, self.versions = [], [], []
        return writes


class WriteOffQueries:
    """Reads of the write-offs and of the figures a new one is computed from."""

    def __init__(self, views: Any) -> None:
        self.views = views

    def figures(
        self, book_no: str, *, start: datetime, end: datetime, position: int
    ) -> tuple[list[ItemFigures], dict[str, ProcessingRun], int, dict[int, int]]:
        """(figures per item and status, processing per BOM, processing without a BOM, stock
        stream version per item), from what the log held at `position`, on business time
        `[start, end)`."""
        first, last = utc_text(start), utc_text(end)
        sums = FigureSums()
        with self.views.read() as cur:
            cur.execute(
                "SELECT e.item_no, e.entry_kind, e.quantity, e.occurred_at_utc, l.goods_status"
                " FROM view_book_entries e LEFT JOIN view_trace_lots l ON l.lot_id = e.lot_id"
                " WHERE e.book_no = ? AND e.position <= ? AND e.occurred_at_utc < ?"
                " ORDER BY e.entry_key",
                (book_no, position, last),
            )
            for r in cur.fetchall():
                if r["goods_status"] is None:
                    raise LookupError(f"book {book_no} has an entry of an unknown lot")
                before = r["occurred_at_utc"] < first
                sums.add(
                    int(r["item_no"]), r["goods_status"], r["entry_kind"],
                    Decimal(r["quantity"]), before,
                )  # fmt: skip
            runs, unchecked = self._processing(cur, book_no, first, last, position)
            cur.execute(
                "SELECT item_no, count(*) AS n FROM view_stock_history"
                " WHERE book_no = ? AND position <= ? GROUP BY item_no",
                (book_no, position),
            )
            versions = {int(r["item_no"]): int(r["n"]) for r in cur.fetchall()}
        return sums.figures(), runs, unchecked, versions

    def _processing(
        self, cur: Any, book_no: str, first: str, last: str, position: int
    ) -> tuple[dict[str, ProcessingRun], int]:
        cur.execute(
            "SELECT view FROM view_movements WHERE account_book = ? AND kind = 'processing'"
            " AND position <= ? AND occurred_at_utc >= ? AND occurred_at_utc < ?"
            " ORDER BY position",
            (book_no, position, first, last),
        )
        runs: dict[str, ProcessingRun] = {}
        unchecked = 0
        for r in cur.fetchall():
            view = MOVEMENT_VIEW.decode(r["view"])
            if view.bom_ref is None:
                unchecked += 1
                continue
            run = runs.setdefault(view.bom_ref, ProcessingRun(made={}, consumed={}))
            for lot in view.lots:
                into = run.made if lot.quantity > 0 else run.consumed
                into[lot.item_no] = into.get(lot.item_no, Decimal(0)) + abs(lot.quantity)
        return runs, unchecked

    def of_book(self, book_no: str, *, after: int, limit: int) -> list[tuple[int, dict[str, Any]]]:
        """The book's write-offs by period, each as its list row."""
        with self.views.read() as cur:
            cur.execute(
                "SELECT * FROM view_write_offs WHERE account_book = ? AND first_position > ?"
                " ORDER BY first_position LIMIT ?",
                (book_no, after, limit),
            )
            return [
                (
                    int(r["first_position"]),
                    {
                        "write_off_id": r["write_off_id"],
                        "account_book": r["account_book"],
                        "period": {"from": r["period_from"], "to": r["period_to"]},
                        "status": r["status"],
                    },
                )
                for r in cur.fetchall()
            ]

    def as_of(self, write_off_id: str, moment: datetime, scope: Scope) -> WriteOffView | None:
        """The write-off as it stood at `moment` (record time); None before it was submitted
        or when `scope` does not see it."""
        params: list[Any] = [write_off_id, utc_text(moment)]
        sql = (
            "SELECT v.view FROM view_write_off_versions v"
            " JOIN view_write_offs w ON w.write_off_id = v.write_off_id"
            " WHERE v.write_off_id = ? AND v.recorded_at <= ?"
        )
        sql += tenancy_sql(scope, params, enterprise=("w.enterprise",), zone=("w.zone",))
        with self.views.read() as cur:
            cur.execute(sql + " ORDER BY v.position DESC LIMIT 1", params)
            row = cur.fetchone()
        return _VIEW.decode(row["view"]) if row is not None else None
