"""Enterprises view: the registered enterprises, for listing (single reads use the write side)."""

from __future__ import annotations

from typing import Any

from domain.enterprise import CreditClassChanged, EnterpriseRegistered
from domain.events import DomainEvent
from domain.views import EnterpriseView
from projections.folding import MISSING, LogEntry, RowCache, ViewTable, Writes

DDL = (
    "CREATE TABLE IF NOT EXISTS view_enterprises ("
    " uscc TEXT PRIMARY KEY, customs_code TEXT NOT NULL, name TEXT NOT NULL,"
    " credit_class TEXT NOT NULL, stream TEXT NOT NULL UNIQUE, position BIGINT NOT NULL)"
)
TABLES: tuple[ViewTable, ...] = (ViewTable("view_enterprises", ("uscc",)),)


class EnterprisesProjection:
    name = "enterprises"
    version = 1  # bump when its tables or rows change: the views are rebuilt (runner.py)
    handles: tuple[type[DomainEvent], ...] = (EnterpriseRegistered, CreditClassChanged)
    tables = TABLES

    def create_tables(self, cur: Any, *, indexes: bool = True) -> None:
        cur.execute(DDL)

    def begin(self, cur: Any, previous: _EnterprisesFold | None) -> _EnterprisesFold:
        return _EnterprisesFold(cur, previous)


class _EnterprisesFold:
    """Enterprises are few and rarely change: registrations are inserted, credit-class
    changes update the row (found by its stream), in log order."""

    def __init__(self, cur: Any, previous: _EnterprisesFold | None) -> None:
        self.cur = cur
        # stream -> uscc, of the enterprises this page or the one before met
        self.usccs: RowCache[str, str] = RowCache(previous.usccs if previous else None)
        self.writes = Writes()

    def apply(self, entry: LogEntry, event: DomainEvent) -> None:
        if isinstance(event, EnterpriseRegistered):
            self.usccs[entry.stream_id] = event.uscc
            self.writes.add(
                "INSERT INTO view_enterprises (uscc, customs_code, name, credit_class,"
                " stream, position) VALUES (?,?,?,?,?,?)",
                [
                    (
                        event.uscc,
                        event.customs_code,
                        event.name,
                        event.credit_class,
                        entry.stream_id,
                        entry.position,
                    )
                ],
            )
        elif isinstance(event, CreditClassChanged):
            self.writes.add(
                "UPDATE view_enterprises SET credit_class = ? WHERE uscc = ?",
                [(event.credit_class, self._uscc(entry.stream_id))],
            )

    def _uscc(self, stream: str) -> str:
        uscc = self.usccs.get(stream)
        if uscc is MISSING:
            self.cur.execute("SELECT uscc FROM view_enterprises WHERE stream = ?", (stream,))
            row = self.cur.fetchone()
            if row is None:
                raise LookupError(f"credit class of an unregistered enterprise (stream {stream})")
            uscc = self.usccs[stream] = str(row["uscc"])
        return uscc

    def flush(self) -> Writes:
        writes, self.writes = self.writes, Writes()
        return writes


class EnterpriseQueries:
    def __init__(self, views: Any) -> None:
        self.views = views

    def page(
        self, *, after: int, limit: int, only: str | None = None, credit_class: str | None = None
    ) -> list[tuple[int, EnterpriseView]]:
        sql = "SELECT * FROM view_enterprises WHERE position > ?"
        params: list[Any] = [after]
        if credit_class is not None:
            sql += " AND credit_class = ?"
            params.append(credit_class)
        if only is not None:
            sql += " AND uscc = ?"
            params.append(only)
        sql += " ORDER BY position LIMIT ?"
        params.append(limit)
        with self.views.read() as cur:
            cur.execute(sql, params)
            rows = cur.fetchall()
        return [
            (
                int(r["position"]),
                EnterpriseView(
                    uscc=r["uscc"],
                    customs_code=r["customs_code"],
                    name=r["name"],
                    credit_class=r["credit_class"],
                ),
            )
            for r in rows
        ]
