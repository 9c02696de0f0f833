"""Enterprises view: the registered enterprises, for listing (single reads use the write side)."""

from __future__ import annotations

from typing import Any

from domain.enterprise import CreditClassChanged, EnterpriseRegistered
from domain.events import DomainEvent
from domain.views import EnterpriseView
from projections.runner import LogEntry

DDL = (
    "CREATE TABLE IF NOT EXISTS view_enterprises ("
    " uscc TEXT PRIMARY KEY, customs_code TEXT NOT NULL, name TEXT NOT NULL,"
    " credit_class TEXT NOT NULL, stream TEXT NOT NULL UNIQUE, position BIGINT NOT NULL)"
)


class EnterprisesProjection:
    name = "enterprises"

    def create_tables(self, cur: Any) -> None:
        cur.execute(DDL)

    def apply(self, cur: Any, entry: LogEntry, event: DomainEvent) -> None:
        if isinstance(event, EnterpriseRegistered):
            cur.execute(
                "INSERT INTO view_enterprises (uscc, customs_code, name, credit_class, stream,"
                " position) VALUES (?,?,?,?,?,?)",
                (
                    event.uscc,
                    event.customs_code,
                    event.name,
                    event.credit_class,
                    str(event.originator_id),
                    entry.position,
                ),
            )
        elif isinstance(event, CreditClassChanged):
            cur.execute(
                "UPDATE view_enterprises SET credit_class = ? WHERE uscc = ?",
                (event.credit_class, _uscc_of(cur, event)),
            )


def _uscc_of(cur: Any, event: DomainEvent) -> str:
    cur.execute("SELECT uscc FROM view_enterprises WHERE stream = ?", (str(event.originator_id),))
    return str(cur.fetchone()["uscc"])


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
