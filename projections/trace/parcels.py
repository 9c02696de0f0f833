"""Parcels in the trace: declarations that move no book (9610 direct mail, flow `direct_in`).

A 9610 parcel is declared, taxed and released on its own against its transport, and goes to
the buyer: no book changes and no lot is made (GACC Announcement 2014 No. 12 [verify]), so
the walk over lots has nothing to start from. The trace keeps one row per such declaration in
`view_trace_parcels`, found through the declaration's references (`view_trace_refs`: its id
and number, transport reference, order and waybill numbers), and answers it as a node of its
own beside the lots. Its status is the declarations view's, read with the same cursor.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec

from domain.declaration import DeclarationSubmitted, Transport
from projections.folding import LogEntry, chunks

PARCELS_DDL = (
    "CREATE TABLE IF NOT EXISTS view_trace_parcels ("
    " declaration_id TEXT PRIMARY KEY, declaration_no TEXT NOT NULL, flow TEXT NOT NULL,"
    " trade_mode TEXT NOT NULL, enterprise TEXT NOT NULL, zone TEXT NOT NULL,"
    " transport TEXT NOT NULL, order_no TEXT NOT NULL, waybill_no TEXT NOT NULL,"
    " lines TEXT NOT NULL, position BIGINT NOT NULL, occurred_at TEXT NOT NULL)",
)
INSERT_PARCEL = (
    "INSERT INTO view_trace_parcels (declaration_id, declaration_no, flow, trade_mode,"
    " enterprise, zone, transport, order_no, waybill_no, lines, position, occurred_at)"
    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
)
_ENCODE = msgspec.json.Encoder(decimal_format="string")


class ParcelLine(msgspec.Struct, frozen=True, kw_only=True):
    """What a parcel holds, line by line."""

    line_no: int
    hs_code: str
    description: str
    quantity: Decimal
    unit: str


class TraceParcel(msgspec.Struct, frozen=True, kw_only=True):
    """A declaration the reference matched that moved no lot: a 9610 parcel."""

    declaration_id: str
    declaration_no: str
    flow: str
    trade_mode: str
    declarant: str
    zone: str
    transport: Transport
    order_no: str
    waybill_no: str
    status: str
    lines: list[ParcelLine]
    occurred_at: datetime


_TRANSPORT = msgspec.json.Decoder(Transport)
_LINES = msgspec.json.Decoder(list[ParcelLine])


def parcel_row(entry: LogEntry, event: DeclarationSubmitted) -> tuple[Any, ...] | None:
    """The row of a declaration that moves no book (INSERT_PARCEL's order); None otherwise."""
    f = event.facts
    if f.account_book is not None:
        return None
    order = f.ecommerce.order.order_no if f.ecommerce else ""
    waybill = f.ecommerce.waybill.waybill_no if f.ecommerce else ""
    lines = [
        ParcelLine(
            line_no=line.line_no,
            hs_code=line.hs_code,
            description=line.description,
            quantity=line.quantity,
            unit=line.unit,
        )
        for line in f.lines
    ]
    return (
        entry.stream_id,
        f.declaration_no,
        f.flow,
        f.trade_mode,
        f.declarant,
        f.zone,
        _ENCODE.encode(f.transport).decode(),
        order,
        waybill,
        _ENCODE.encode(lines).decode(),
        entry.position,
        event.occurred_at.isoformat(),
    )


def read_parcels(cur: Any, declaration_ids: list[str]) -> list[TraceParcel]:
    """The parcels of `declaration_ids` in the order they were declared, each with its
    current status from the declarations view (`submitted` until that view has it)."""
    rows: list[Any] = []
    for part in chunks(declaration_ids, 500):
        marks = ",".join("?" * len(part))
        cur.execute(
            "SELECT p.*, d.status FROM view_trace_parcels p"
            " LEFT JOIN view_declarations d ON d.id = p.declaration_id"
            f" WHERE p.declaration_id IN ({marks})",
            part,
        )
        rows += cur.fetchall()
    rows.sort(key=lambda r: int(r["position"]))
    return [
        TraceParcel(
            declaration_id=r["declaration_id"],
            declaration_no=r["declaration_no"],
            flow=r["flow"],
            trade_mode=r["trade_mode"],
            declarant=r["enterprise"],
            zone=r["zone"],
            transport=_TRANSPORT.decode(r["transport"]),
            order_no=r["order_no"],
            waybill_no=r["waybill_no"],
            status=r["status"] or "submitted",
            lines=_LINES.decode(r["lines"]),
            occurred_at=datetime.fromisoformat(r["occurred_at"]),
        )
        for r in rows
    ]
