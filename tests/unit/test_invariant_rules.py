"""Properties of the decisions over random sequences of commands on the in-memory ledger:
stock and lots always agree and never go negative, a released declaration's goods can always
leave, a final status is final, and a refused decision saves nothing."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import UUID

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.declaration import (
    FINAL_STATUSES,
    GoodsStatus,
    PayDuties,
    RecordInspection,
    RejectDeclaration,
    ReleaseDeclaration,
    WithdrawDeclaration,
)
from domain.errors import LedgerError
from domain.exits import GateOut
from domain.movements import ExitLine, GateIn, ItemStock, item_stock_id
from domain.processing import Input, Output, Processing
from domain.stocktake import Adjustment
from domain.views import DeclarationView
from tests.unit.domain_world import OFFICER, World, company, gate, line, lines

D = Decimal
XCBZ = gate("XCBZ")
STATUSES: tuple[GoodsStatus, ...] = ("bonded", "domestic")
statuses = st.sampled_from(STATUSES)
# Mostly valid quantities of kilograms of coffee (up to 3 decimals); some zero, negative,
# too precise or too large.
INVALID = (D(0), D(-1), D("0.000001"), D("1E+20"))


def _kilograms(most: int) -> st.SearchStrategy[Decimal]:
    return st.integers(-3, most * 1000).map(lambda n: D(n).scaleb(-3) if n > 0 else INVALID[-n])


quantities = _kilograms(300)
takes = _kilograms(60)  # what leaves or is consumed: smaller, so that it often can
deltas = st.tuples(takes, st.booleans()).map(lambda d: -d[0] if d[1] else d[0])
admissions = st.tuples(st.just("admit"), statuses, quantities)
operations = st.one_of(
    admissions,
    admissions,
    st.tuples(st.just("declare_out"), statuses, takes),
    st.tuples(st.just("exit"), st.integers(0, 9)),
    st.tuples(st.just("adjust"), deltas),
    st.tuples(st.just("adjust_lot"), st.integers(0, 9), deltas),
    st.tuples(st.just("process"), statuses, takes),
)


class Stockroom:
    """Coffee (item 2, KGM) of book B1 in XCBZ: two released inbound declarations of a million
    kg (bonded and domestic) to admit from, and the released exits not yet gone. Each is a new
    item's first declaration worth over CNY 10 million: an officer releases it after review."""

    def __init__(self) -> None:
        self.w = World()
        self.uscc = self.w.enterprise(1)
        self.w.book("B1", self.uscc)
        self.inbound = {
            status: self.w.cleared(
                self.w.submit(self.uscc, "B1", flow=flow, lines=[line(2, quantity="1000000")])
            ).id
            for status, flow in (("bonded", "first_line_in"), ("domestic", "second_line_in"))
        }
        self.exits: list[tuple[UUID, Decimal]] = []

    def apply(self, op: tuple[Any, ...]) -> None:
        w, me = self.w, company(self.uscc)
        kind = op[0]
        if kind == "admit":
            _, status, q = op
            w.move(GateIn(declaration=str(self.inbound[status]), lines=lines((1, str(q)))), XCBZ)
        elif kind == "declare_out":
            _, status, q = op
            goods = [line(2, quantity=str(q), goods_status=status, origin_country=None)]
            d = w.submit(self.uscc, "B1", flow="first_line_out", lines=goods)
            assert d.status == "released"
            self.exits.append((d.id, w.declaration(d.id).facts.lines[0].quantity))
        elif kind == "exit" and self.exits:
            ref, q = self.exits.pop(op[1] % len(self.exits))
            # A released declaration's goods can always leave: nothing else took them.
            w.move(GateOut(declaration=str(ref), lines=[ExitLine(line_no=1, quantity=q)]), XCBZ)
        elif kind == "adjust":
            cmd = Adjustment(account_book="B1", item_no=2, quantity_delta=op[1], reason="count")
            w.move(cmd, me)
        elif kind == "adjust_lot":
            stock = w.uow.load(item_stock_id("B1", 2), ItemStock)
            if stock is None or not stock.lots:
                return
            lot = list(stock.lots)[op[1] % len(stock.lots)]
            cmd = Adjustment(
                account_book="B1", item_no=2, quantity_delta=op[2], reason="count", lot_id=lot
            )
            w.move(cmd, me)
        elif kind == "process":
            _, status, q = op
            processing = Processing(
                zone="XCBZ",
                account_book="B1",
                inputs=[Input(item_no=2, quantity=q, goods_status=status)],
                outputs=[Output(item_no=3, quantity=D(1))],
            )
            w.move(processing, me)

    def check(self) -> None:
        pending_out = sum((q for _, q in self.exits), D(0))
        for item_no in (2, 3):
            stock = self.w.uow.load(item_stock_id("B1", item_no), ItemStock)
            lots = self.w.lots_of("B1", item_no)
            if stock is None:
                assert lots == [] and (item_no == 3 or pending_out == 0)
                continue
            assert stock.on_hand >= 0
            assert stock.on_hand == sum((b.quantity for b in stock.lots.values()), D(0))
            assert stock.on_hand == sum((lot.on_hand for lot in lots), D(0))
            assert all(lot.on_hand >= 0 for lot in lots)
            open_lots = {x.id: (x.on_hand, x.goods_status) for x in lots if x.on_hand}
            assert open_lots == {k: (b.quantity, b.goods_status) for k, b in stock.lots.items()}
            for status in STATUSES:
                assert 0 <= stock.reserved_of(status) <= stock.on_hand_of(status)
            if item_no == 2:
                assert stock.pending_out == pending_out


@settings(max_examples=60, deadline=None)
@given(st.lists(operations, max_size=14))
def test_stock_and_lots_always_agree_and_a_refusal_saves_nothing(ops):
    room = Stockroom()
    for op in ops:
        before = room.w.snapshot()
        try:
            room.apply(op)
        except LedgerError:
            # Refused (422, 409): a LedgerError, never a crash, and nothing was written.
            assert op[0] != "exit"
            assert room.w.snapshot() == before
        room.check()


# -- the clearance workflow ------------------------------------------------------------------

EDGES = {
    "document_review": {"document_review", "released", "awaiting_payment", "rejected", "withdrawn"},
    "inspection": {"inspection", "document_review", "released", "rejected", "withdrawn"},
    "awaiting_payment": {"awaiting_payment", "released", "withdrawn"},
}
actions = st.sampled_from(
    [
        ("withdrawal", "declarant", WithdrawDeclaration(reason="cancelled")),
        ("payment", "declarant", "all"),
        ("payment", "declarant", "100.00"),
        ("inspection", "officer", RecordInspection(result="conform", findings="")),
        ("inspection", "officer", RecordInspection(result="nonconform", findings="short")),
        ("release", "officer", ReleaseDeclaration()),
        ("rejection", "officer", RejectDeclaration(reason="no licence")),
    ]
)


def _payment(view: DeclarationView, amount: str) -> PayDuties:
    due = view.duties.outstanding if view.duties is not None else D(0)
    return PayDuties(amount=due if amount == "all" else D(amount), currency="CNY", reference="P")


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(["released", "document_review", "inspection", "awaiting_payment"]),
    st.lists(actions, max_size=6),
)
def test_a_declaration_moves_only_along_the_table_and_a_final_status_is_final(start, steps):
    w = World()
    uscc = w.enterprise(1)
    w.book("B1", uscc)
    w.admit(uscc, "B1", "100")
    goods = {"released": 1, "document_review": 3, "inspection": 4, "awaiting_payment": 1}
    flow = "second_line_out" if start == "awaiting_payment" else "first_line_in"
    view = w.submit(uscc, "B1", flow=flow, trade_mode="0110", lines=[line(goods[start])])
    assert view.status == start
    for action, who, cmd in steps:
        actor = company(uscc) if who == "declarant" else OFFICER
        body = _payment(view, cmd) if action == "payment" else cmd
        before = w.snapshot()
        try:
            after = w.decide(action, view.id, body, actor)
        except LedgerError:
            assert w.snapshot() == before
            continue
        assert view.status not in FINAL_STATUSES
        assert after.status in EDGES[view.status], (view.status, action, after.status)
        if after.duties is not None:
            assert after.duties.paid + after.duties.outstanding == after.duties.total
            assert after.duties.outstanding >= 0
        view = after
    # Whatever happened, a released outbound declaration holds its goods reserved.
    reserved = w.stock("B1").pending_out
    assert reserved == (D(10) if (flow, view.status) == ("second_line_out", "released") else 0)
