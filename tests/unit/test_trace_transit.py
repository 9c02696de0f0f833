"""The trace's copy of what is in transit settles the same lots as the book item's stock.

A loss in transit names no lot: the trace decides which lots the goods came from with its own
copy (projections/trace/transit.py). That copy must agree with the stock's own state
(`ItemStock.in_transit`, domain/transfers.py) after any dispatches and settlements, also when
pages end anywhere (the copy is written and read back between pages).
"""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from domain.events import Actor
from domain.movements import ItemStock, LotBalance
from domain.transfers import TransferDispatched, TransitSettled
from projections.folding import Writes
from projections.trace.transit import TRANSIT_DDL, InTransit

DECLARATION = uuid.uuid4()
STOCK = uuid.uuid4()
LOTS = [uuid.uuid4() for _ in range(4)]
KEY = (str(DECLARATION), str(STOCK), "bonded")
COMMON = {"actor": Actor(name="gate", role="operator"), "occurred_at": datetime.now(UTC)}

dispatch = st.tuples(st.just("dispatch"), st.sampled_from(LOTS), st.integers(1, 5))
settle = st.tuples(st.just("settle"), st.none(), st.integers(1, 12))
# A page ends: the next one keeps the last page's rows (the runner's `previous`) or not.
page_end = st.tuples(st.just("page_end"), st.booleans(), st.just(0))


def _store() -> sqlite3.Cursor:
    conn = sqlite3.connect(":memory:")
    conn.row_factory = sqlite3.Row
    cur = conn.cursor()
    for ddl in TRANSIT_DDL:
        cur.execute(ddl)
    return cur


def _write(cur: sqlite3.Cursor, transit: InTransit) -> None:
    writes = Writes()
    transit.flush(writes)
    for sql, rows in writes:
        cur.executemany(sql, rows)


@given(st.lists(st.one_of(dispatch, settle, page_end), max_size=40))
def test_the_trace_settles_the_lots_the_stock_settles(steps):
    balances = {lot: LotBalance(quantity=Decimal(1000), goods_status="bonded") for lot in LOTS}
    stock = ItemStock(id=STOCK, version=0, book_no="B", item_no=1, on_hand=4000, lots=balances)
    cur = _store()
    transit = InTransit(cur, None)
    for version, (step, lot, quantity) in enumerate(steps, start=1):
        head = {"originator_id": STOCK, "originator_version": version, **COMMON}
        if step == "dispatch":
            stock = TransferDispatched(
                **head,
                declaration_id=DECLARATION,
                movement_id=uuid.uuid4(),
                quantity=Decimal(quantity),
                by_lot={lot: Decimal(quantity)},
            ).apply(stock)
            transit.dispatched(KEY, str(lot), Decimal(quantity))
        elif step == "settle":
            before = dict(stock.in_transit.get(DECLARATION, {}))
            quantity = min(quantity, sum(before.values()))
            if quantity == 0:
                continue
            stock = TransitSettled(
                **head, declaration_id=DECLARATION, quantity=Decimal(quantity), outcome="lost"
            ).apply(stock)
            after = stock.in_transit.get(DECLARATION, {})
            left_stock = {
                str(k): q - after.get(k, 0) for k, q in before.items() if q != after.get(k)
            }
            taken = transit.settle(KEY, Decimal(quantity))
            assert taken == left_stock
            assert sum(taken.values()) == quantity
        else:
            _write(cur, transit)
            transit = InTransit(cur, transit if lot else None)
        # The same lots, the same quantities, in the same (dispatch) order.
        held = transit._moving(KEY)
        expected = stock.in_transit.get(DECLARATION, {})
        assert list(held.items()) == [(str(k), q) for k, q in expected.items()]
