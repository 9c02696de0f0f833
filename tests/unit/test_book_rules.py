"""The book's enterprise's own movements, decided directly: processing (domain/processing.py,
with its BOM) and stocktake adjustments (domain/stocktake.py)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import UUID

import msgspec
import pytest

from domain import bom
from domain.account_book import AccountBook, account_book_id
from domain.declaration import GoodsStatus
from domain.errors import Conflict, FieldError, ValidationFailed
from domain.exits import GateOut
from domain.liabilities import Liability
from domain.movements import ExitLine, Lot, LotCreated, MovementLine
from domain.processing import Input, Output, Processing
from domain.stocktake import Adjustment, shortage_liability_id
from domain.transfers import TransferDispatch, TransferReceipt
from domain.unit_of_work import Decision
from tests.unit.domain_world import ADMIN, NOW, World, company, gate, line

D = Decimal


def _world() -> tuple[World, str]:
    w = World()
    uscc = w.enterprise(1)
    w.book("B1", uscc)
    return w, uscc


def _processing(inputs: list[Input], outputs: list[tuple[int, str]], **fields: Any) -> Processing:
    made = [Output(item_no=i, quantity=D(q)) for i, q in outputs]
    return Processing(zone="XCBZ", account_book="B1", inputs=inputs, outputs=made, **fields)


def _in(
    item_no: int, quantity: str, status: GoodsStatus | None = None, lot: UUID | None = None
) -> Input:
    return Input(item_no=item_no, quantity=D(quantity), goods_status=status, lot_id=lot)


def _adjust(delta: str, item_no: int = 1, **fields: Any) -> Adjustment:
    return Adjustment(
        account_book="B1", item_no=item_no, quantity_delta=D(delta), reason="stocktake", **fields
    )


# -- processing ------------------------------------------------------------------------------


def test_processing_makes_outputs_whose_parents_are_the_consumed_lots_bonded_if_any_input_is():
    w, uscc = _world()
    laptops = w.admit(uscc, "B1", "100")
    coffee = w.admit(uscc, "B1", "50", item_no=2, flow="second_line_in")
    cmd = _processing([_in(1, "20"), _in(2, "3.125", "domestic")], [(3, "10")])
    view = w.move(cmd, company(uscc))
    assert [(v.lot_id, v.quantity) for v in view.lots[:2]] == [
        (laptops, D(-20)),
        (coffee, D("-3.125")),
    ]
    made = view.lots[2]
    created = w.uow.events_of(made.lot_id)[0]
    assert isinstance(created, LotCreated)
    assert created.parent_quantities == {laptops: D(20), coffee: D("3.125")}
    assert w.lot(made.lot_id).goods_status == "bonded"
    assert w.lot(laptops).children == [made.lot_id] == w.lot(coffee).children
    assert (w.stock("B1", 1).on_hand, w.stock("B1", 2).on_hand) == (D(80), D("46.875"))
    assert w.stock("B1", 3).on_hand_of("bonded") == D(10)


def test_outputs_of_domestic_inputs_only_stay_domestic():
    w, uscc = _world()
    w.admit(uscc, "B1", "50", item_no=2, flow="second_line_in")
    view = w.move(_processing([_in(2, "5", "domestic")], [(3, "2")]), company(uscc))
    assert w.lot(view.lots[-1].lot_id).goods_status == "domestic"


def test_processing_needs_the_zones_permit_for_its_operation_and_its_own_book():
    w, uscc = _world()
    w.book("B3", uscc, zone="XXLC")  # a logistics centre: simple processing only
    w.admit(uscc, "B3", "50", item_no=2, zone="XXLC")
    stranger = company(w.enterprise(2))
    before = w.snapshot()
    manufacture = msgspec.structs.replace(
        _processing([_in(2, "5")], [(3, "2")]), zone="XXLC", account_book="B3"
    )
    with pytest.raises(Conflict) as refused:
        w.move(manufacture, company(uscc))
    assert refused.value.rule == "zone_not_permitted"
    with pytest.raises(ValidationFailed) as refused_zone:
        w.move(msgspec.structs.replace(manufacture, zone="XCBZ"), company(uscc))
    assert [e.loc for e in refused_zone.value.errors] == ["$.zone"]
    with pytest.raises(ValidationFailed) as refused_book:
        w.move(manufacture, stranger)
    assert [e.loc for e in refused_book.value.errors] == ["$.account_book"]
    assert w.snapshot() == before
    repack = msgspec.structs.replace(manufacture, operation="simple_processing")
    assert w.move(repack, company(uscc)).kind == "processing"


def test_processing_never_takes_stock_that_is_missing_or_reserved():
    w, uscc = _world()
    w.admit(uscc, "B1", "100")
    w.submit(uscc, "B1", flow="first_line_out", lines=[line(1, quantity="90")])  # reserves 90
    before = w.snapshot()
    for inputs in ([_in(1, "11")], [_in(1, "1", "domestic")], [_in(4, "1")]):
        with pytest.raises(Conflict) as refused:
            w.move(_processing(inputs, [(3, "1")]), company(uscc))
        assert refused.value.rule == "insufficient_stock"
    assert w.snapshot() == before
    w.move(_processing([_in(1, "10")], [(3, "1")]), company(uscc))


def test_a_named_input_lot_must_be_an_open_lot_of_the_item_with_that_status():
    w, uscc = _world()
    lot = w.admit(uscc, "B1", "100")
    for bad in (
        _in(1, "1", "domestic", lot),
        _in(2, "1", None, lot),
        _in(1, "1", None, UUID(int=3)),
    ):
        with pytest.raises(ValidationFailed) as refused:
            w.move(_processing([bad], [(3, "1")]), company(uscc))
        assert [e.loc for e in refused.value.errors] == ["$.inputs[0].lot_id"]
    view = w.move(_processing([_in(1, "4", None, lot)], [(3, "1")]), company(uscc))
    assert view.lots[0].lot_id == lot


# Medicaments (item 3) from laptops (item 1) and coffee (item 2): 10 medicaments expect
# 10 x 1.9 / 0.95 = 20 laptops and 10 x 0.25 / 0.8 = 3.125 kg of coffee, +/- 2 %.
MEDICAMENTS = bom.RegisterBom(
    bom_ref="MED-1",
    output_item_no=3,
    inputs=[
        bom.BomInput(item_no=1, net_consumption=D("1.9"), loss_rate=D("0.05")),
        bom.BomInput(item_no=2, net_consumption=D("0.25"), loss_rate=D("0.2")),
    ],
)


def _with_bom() -> tuple[World, str]:
    """100 bonded laptops and 50 kg of bonded coffee in B1, and the BOM MED-1 registered."""
    w, uscc = _world()
    w.admit(uscc, "B1", "100")
    w.admit(uscc, "B1", "50", item_no=2)
    book = w.uow.load(account_book_id("B1"), AccountBook)
    assert book is not None
    pending = w.uow.pending(bom.bom_id("B1", "MED-1"), bom.Bom)
    w.uow.commit(Decision([pending], bom.register(pending, MEDICAMENTS, book, ADMIN, NOW)))
    return w, uscc


@pytest.mark.parametrize(
    ("inputs", "outputs", "refusal"),
    [
        ([(1, "20"), (2, "3.125")], [(3, "10")], None),
        ([(1, "20"), (2, "3.18")], [(3, "10")], None),  # within 2 %
        ([(1, "21"), (2, "3.125")], [(3, "10")], "bom_ratio"),
        ([(1, "20")], [(3, "10")], "bom_mismatch"),
        ([(1, "20"), (2, "3.125"), (4, "1")], [(3, "10")], "bom_mismatch"),
        ([(1, "20"), (2, "3.125")], [(4, "10")], "$.outputs"),
        ([(1, "20"), (2, "3.125")], [(3, "5"), (4, "5")], "$.outputs"),
    ],
)
def test_processing_under_a_bom_consumes_its_inputs_within_tolerance(inputs, outputs, refusal):
    w, uscc = _with_bom()
    cmd = _processing([_in(i, q) for i, q in inputs], outputs, bom_ref="MED-1")
    before = w.snapshot()
    if refusal is None:
        assert w.move(cmd, company(uscc)).bom_ref == "MED-1"
        return
    error: type[Exception] = ValidationFailed if refusal.startswith("$") else Conflict
    with pytest.raises(error) as refused:
        w.move(cmd, company(uscc))
    if isinstance(refused.value, Conflict):
        assert refused.value.rule == refusal
    else:
        assert [e.loc for e in refused.value.errors] == [refusal]  # type: ignore[attr-defined]
    assert w.snapshot() == before


def test_an_unknown_bom_is_refused_at_bom_ref():
    w, uscc = _with_bom()
    cmd = _processing([_in(1, "20"), _in(2, "3.125")], [(3, "10")], bom_ref="MED-2")
    with pytest.raises(ValidationFailed) as refused:
        w.move(cmd, company(uscc))
    assert [e.loc for e in refused.value.errors] == ["$.bom_ref"]


# -- stocktake -------------------------------------------------------------------------------


def test_a_surplus_becomes_a_new_bonded_lot_whose_origin_is_the_adjustment():
    w, uscc = _world()
    view = w.move(_adjust("5"), company(uscc))
    assert view.flagged is False
    (made,) = view.lots
    lot = w.lot(made.lot_id)
    assert (lot.goods_status, lot.on_hand, lot.parents) == ("bonded", D(5), [])
    papers = msgspec.to_builtins(lot.documents)
    assert papers == [{"kind": "adjustment", "id": str(view.movement_id), "number": "stocktake"}]
    assert w.stock("B1").on_hand == D(5)


def test_a_shortage_draws_the_oldest_lots_first_and_never_below_zero():
    w, uscc = _world()
    six, four = w.admit(uscc, "B1", "6"), w.admit(uscc, "B1", "4")
    view = w.move(_adjust("-7"), company(uscc))
    assert [(v.lot_id, v.quantity) for v in view.lots] == [(six, D(-6)), (four, D(-1))]
    assert list(w.stock("B1").lots) == [four]
    assert (w.lot(six).on_hand, w.lot(four).on_hand, w.stock("B1").on_hand) == (D(0), D(3), D(3))
    before = w.snapshot()
    with pytest.raises(Conflict) as refused:
        w.move(_adjust("-4"), company(uscc))
    assert refused.value.rule == "insufficient_stock"
    with pytest.raises(Conflict) as refused:
        w.move(_adjust("-1", item_no=2), company(uscc))  # no stock at all
    assert refused.value.rule == "insufficient_stock"
    assert w.snapshot() == before


def test_a_shortage_never_takes_what_released_declarations_reserved():
    w, uscc = _world()
    lot = w.admit(uscc, "B1", "10")
    w.submit(uscc, "B1", flow="first_line_out", lines=[line(1, quantity="8")])
    for cmd in (_adjust("-3"), _adjust("-3", lot_id=lot)):
        with pytest.raises(Conflict) as refused:
            w.move(cmd, company(uscc))
        assert refused.value.rule == "insufficient_stock"
    assert w.move(_adjust("-2", lot_id=lot), company(uscc)).lots[0].quantity == D(-2)


@pytest.mark.parametrize(
    ("item_no", "delta", "flagged"),
    [
        # Laptops at 420 EUR: 10 of a lot of 1,000 (1%) bear ~4,500 CNY of VAT, over USD 100.
        (1, "-9", False),
        (1, "-10", True),
        (1, "-400", True),
        (1, "500", False),
        # Coffee at 8.50 EUR/kg: 1% of the lot, but its duty is under USD 100: not flagged.
        (2, "-10", False),
        (2, "-200", True),
    ],
)
def test_a_shortage_of_one_percent_of_the_lot_and_usd_100_of_duty_is_flagged(
    item_no, delta, flagged
):
    w, uscc = _world()
    w.admit(uscc, "B1", "1000", item_no=item_no)
    moved = w.move(_adjust(delta, item_no=item_no), company(uscc))
    assert moved.flagged is flagged
    # A flagged shortage is a duty liability, issued the day it was found.
    liability = w.uow.load(shortage_liability_id(moved.movement_id), Liability)
    assert (liability is not None) is flagged
    if liability is not None:
        assert liability.view.status == "unpaid" and liability.view.tax > 0
        (line,) = liability.view.lines
        assert line.quantity == -D(delta) and line.valued_by == "price_history"


def test_an_adjustment_names_an_item_of_the_callers_own_book():
    w, uscc = _world()
    for cmd, who, loc in (
        (_adjust("1", item_no=9), company(uscc), "$.item_no"),
        (_adjust("1"), company(w.enterprise(2)), "$.account_book"),
        (_adjust("0"), company(uscc), "$.quantity_delta"),
        (_adjust("1", lot_id=UUID(int=5)), company(uscc), "$.lot_id"),
    ):
        with pytest.raises(ValidationFailed) as refused:
            w.move(cmd, who)
        assert [e.loc for e in refused.value.errors] == [loc]


def _transfer_of(w: World, uscc: str, book_no: str) -> UUID:
    """A released transfer of 8 laptops from `book_no` (XCBZ) to a new XEPZ book, dispatched
    in full and received 5: 3 still in transit."""
    w.book(f"{book_no}-EPZ", uscc, zone="XEPZ")
    w.admit(uscc, book_no, "10")
    d = w.submit(
        uscc,
        book_no,
        flow="transfer",
        country="CN",
        destination_zone="XEPZ",
        destination_account_book=f"{book_no}-EPZ",
        lines=[line(1, quantity="8", origin_country=None)],
    )
    quantity = [ExitLine(line_no=1, quantity=D(8))]
    w.move(TransferDispatch(declaration=str(d.id), lines=quantity), gate("XCBZ"))
    got = [MovementLine(line_no=1, quantity=D(5))]
    w.move(TransferReceipt(declaration=str(d.id), lines=got), gate("XEPZ"))
    return d.id


def test_a_stocktake_explains_a_transfers_shortfall_as_lost_in_transit():
    w, uscc = _world()
    ref = _transfer_of(w, uscc, "B1")
    assert w.stock("B1").in_transit_out == D(3)
    before = w.snapshot()
    for delta, refusal in (("-4", "exceeds_dispatched_quantity"), ("2", "$.quantity_delta")):
        with pytest.raises((Conflict, ValidationFailed)) as refused:
            w.move(_adjust(delta, explains=str(ref)), company(uscc))
        if isinstance(refused.value, Conflict):
            assert refused.value.rule == refusal
        else:
            assert [e.loc for e in refused.value.errors] == [refusal]
    assert w.snapshot() == before
    view = w.move(_adjust("-3", explains=str(ref)), company(uscc))
    assert (view.kind, view.declaration, view.lots) == ("adjustment", ref, [])
    stock = w.stock("B1")
    assert (stock.in_transit_out, stock.on_hand) == (D(0), D(2))


def test_explaining_another_enterprises_transfer_gets_the_unknown_answer():
    w, uscc = _world()
    other = w.enterprise(2)
    w.book("B2", other)
    theirs = _transfer_of(w, other, "B2")
    w.admit(uscc, "B1", "10")
    answers = []
    for ref in (str(theirs), "900720260000000999", "nonsense"):
        with pytest.raises(ValidationFailed) as refused:
            w.move(_adjust("-1", explains=ref), company(uscc))
        answers.append(refused.value.errors)
    assert answers == [[FieldError("$.explains", "no such transfer declaration")]] * 3
    # An ordinary exit is not a transfer out of the book either.
    export = w.submit(uscc, "B1", flow="first_line_out", lines=[line(1, quantity="1")])
    w.move(
        GateOut(declaration=str(export.id), lines=[ExitLine(line_no=1, quantity=D(1))]),
        gate("XCBZ"),
    )
    with pytest.raises(ValidationFailed) as refused:
        w.move(_adjust("-1", explains=str(export.id)), company(uscc))
    assert [e.loc for e in refused.value.errors] == ["$.explains"]


def test_an_adjustment_reads_only_the_lots_it_changes_not_every_open_lot():
    """A book item may hold thousands of open lots (stocktake surpluses): a stocktake reads
    the lots it changes, so its cost does not grow with the item's open lots (issue #14)."""
    w, uscc = _world()
    lots = [w.admit(uscc, "B1", "1") for _ in range(30)]
    read: list[UUID] = []
    pending = w.uow.pending

    def counted(stream, kind):
        if kind is Lot:
            read.append(stream)
        return pending(stream, kind)

    w.uow.pending = counted  # type: ignore[method-assign]
    w.move(_adjust("-1", lot_id=lots[17]), company(uscc))
    assert read == [lots[17]]
    read.clear()
    w.move(_adjust("-2"), company(uscc))  # first in, first out: the two oldest
    assert read == lots[:2]
    read.clear()
    w.move(_adjust("3"), company(uscc))  # a surplus is a new lot, no open lot is read
    assert read == []
