"""Goods lost in transit in the trace: the shortfall a stocktake wrote off, as a node of its own.

A transfer's dispatch leaves goods in transit on the source book item, lot by lot; a receipt
settles them (in dispatch order) into child lots, and a stocktake that `explains` a shortfall
settles the rest as lost (`TransitSettled`, outcome `lost`, domain/transfers.py). That event
names no lot: the item's stock knows which lots were in transit. So the trace keeps its own
copy of what is in transit (`view_trace_transit`: per transfer, source item stream and customs
status, the dispatched lots and what of each is still on its way, in dispatch order), settled
by the same rule (`domain.transfers.settled`), and a loss becomes a node in `view_trace_lots`
(`origin` `lost`, nothing on hand) with a `lost` edge from each lot it came from and one
chain event `lost` carrying the transfer, the stocktake's reason and who wrote it off. Derived
from events the log already holds: no event changes, and a rebuild finds every past loss.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from domain.events import stream_id
from domain.transfers import settled
from projections.folding import MISSING, RowCache, Writes

TRANSIT_DDL = (
    "CREATE TABLE IF NOT EXISTS view_trace_transit ("
    " declaration_id TEXT NOT NULL, stock_id TEXT NOT NULL, goods_status TEXT NOT NULL,"
    " lot_id TEXT NOT NULL, quantity TEXT NOT NULL, seq BIGINT NOT NULL,"
    " PRIMARY KEY (declaration_id, stock_id, goods_status, lot_id))",
)
LOST_ORIGIN = "lost"
LOST_EDGE = "lost"
LOST_EVENT = "lost"

# (transfer declaration, source item stock stream, customs status)
Key = tuple[str, str, str]


def lost_node_id(stock_id: str, version: int) -> str:
    """The node of one `TransitSettled` (lost): the same event gives the same id on a rebuild."""
    return str(stream_id("lot", f"lost:{stock_id}:{version}"))


class InTransit:
    """What of each dispatched lot is still in transit, per key, in dispatch order (a lot
    settled to nothing leaves the order; dispatched again, it comes last, as in the stock)."""

    def __init__(self, cur: Any, previous: InTransit | None) -> None:
        self.cur = cur
        self.held: RowCache[Key, dict[str, Decimal]] = RowCache(previous.held if previous else None)
        self.touched: set[Key] = set()

    def dispatched(self, key: Key, lot_id: str, quantity: Decimal) -> None:
        moving = self._moving(key)
        moving[lot_id] = moving.get(lot_id, Decimal(0)) + quantity
        self.touched.add(key)

    def settle(self, key: Key, quantity: Decimal) -> dict[str, Decimal]:
        """Settle `quantity` as the item's stock does; which lots it came from, and how much."""
        moving = self._moving(key)
        taken = settled(moving, quantity)
        for lot_id, take in taken.items():
            moving[lot_id] -= take
            if moving[lot_id] == 0:
                del moving[lot_id]
        self.touched.add(key)
        return taken

    def _moving(self, key: Key) -> dict[str, Decimal]:
        found = self.held.get(key)
        if found is MISSING:
            self.cur.execute(
                "SELECT lot_id, quantity FROM view_trace_transit WHERE declaration_id = ?"
                " AND stock_id = ? AND goods_status = ? ORDER BY seq",
                key,
            )
            found = {r["lot_id"]: Decimal(r["quantity"]) for r in self.cur.fetchall()}
            self.held[key] = found
        return found

    def flush(self, writes: Writes) -> None:
        """Each key touched in the page is written again whole (a handful of lots each)."""
        keys = sorted(self.touched)
        writes.add(
            "DELETE FROM view_trace_transit WHERE declaration_id = ? AND stock_id = ?"
            " AND goods_status = ?",
            keys,
        )
        rows = [
            (*key, lot_id, str(quantity), seq)
            for key in keys
            for seq, (lot_id, quantity) in enumerate(self.held.now[key].items())
        ]
        writes.add(
            "INSERT INTO view_trace_transit (declaration_id, stock_id, goods_status, lot_id,"
            " quantity, seq) VALUES (?,?,?,?,?,?)",
            rows,
        )
        self.touched = set()
