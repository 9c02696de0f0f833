"""Gate movements, decided directly: admission (domain/admission.py), exit (domain/exits.py)
and transfers between zones (domain/transfers.py)."""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

import msgspec
import pytest

from domain.admission import check_gate_in, decide_gate_in
from domain.errors import Conflict, FieldError, ValidationFailed
from domain.exits import GateOut
from domain.movements import (
    ChildLotCreated,
    ExitLine,
    GateIn,
    LotCreated,
    LotPick,
    MovementState,
    item_stock_id,
    lot_id,
)
from domain.papers import MovementRequest
from domain.transfers import TransferDispatch, TransferReceipt
from tests.memory_uow import MemoryUnitOfWork
from tests.unit.domain_world import NOW, ZONES, World, gate, line, lines

D = Decimal
XCBZ = gate("XCBZ")


def _world() -> tuple[World, str]:
    w = World()
    uscc = w.enterprise(1)
    w.book("B1", uscc)
    return w, uscc


def _exit(ref: object, quantity: str, picks: list[tuple[UUID, str]] | None = None) -> GateOut:
    chosen = [LotPick(lot_id=lot, quantity=D(q)) for lot, q in picks] if picks else None
    return GateOut(
        declaration=str(ref), lines=[ExitLine(line_no=1, quantity=D(quantity), lots=chosen)]
    )


# -- admission -------------------------------------------------------------------------------


def test_admission_makes_one_lot_per_line_and_grows_each_items_stock_in_one_write():
    w, uscc = _world()
    d = w.submit(uscc, "B1", lines=[line(1, quantity="10"), line(2, line_no=2, quantity="5.5")])
    req = MovementRequest(
        cmd=GateIn(declaration=d.declaration_no, lines=lines((1, "10"), (2, "2.25"))),
        movement_id=UUID(int=1),
        actor=XCBZ,
        zones=ZONES,
    )
    decision = decide_gate_in(w.uow, req, NOW)
    first, second = lot_id(UUID(int=1), 1), lot_id(UUID(int=1), 2)
    assert [p.id for p in decision.saves] == [
        UUID(int=1),
        d.id,
        item_stock_id("B1", 1),
        item_stock_id("B1", 2),
        first,
        second,
    ]
    view = w.uow.commit(decision)
    assert [(v.lot_id, v.item_no, v.quantity) for v in view.lots] == [
        (first, 1, D(10)),
        (second, 2, D("2.25")),
    ]
    assert (w.stock("B1", 1).on_hand, w.stock("B1", 2).on_hand) == (D(10), D("2.25"))
    lot = w.lot(first)
    assert (lot.zone, lot.goods_status, lot.on_hand, lot.parents) == ("XCBZ", "bonded", D(10), [])
    papers = msgspec.to_builtins(lot.documents)  # the papers the goods moved under
    assert {"kind": "declaration", "id": str(d.id), "number": d.declaration_no} in papers
    moved = [line.quantity_moved for line in w.declaration(d.id).facts.lines]
    assert moved == [D(10), D("2.25")]
    assert w.uow.load(UUID(int=1), MovementState) is not None


def test_goods_from_chinas_market_are_admitted_as_domestic_lots():
    w, uscc = _world()
    lot = w.admit(uscc, "B1", "7", flow="second_line_in")
    assert w.lot(lot).goods_status == "domestic"
    assert w.stock("B1").on_hand_of("domestic") == D(7)


def test_admissions_never_exceed_what_the_declaration_line_covers():
    w, uscc = _world()
    d = w.submit(uscc, "B1")  # 1000 laptops
    w.move(GateIn(declaration=str(d.id), lines=lines((1, "600"))), XCBZ)
    before = w.snapshot()
    with pytest.raises(Conflict) as refused:
        w.move(GateIn(declaration=str(d.id), lines=lines((1, "401"))), XCBZ)
    assert refused.value.rule == "exceeds_declared_quantity"
    assert w.snapshot() == before
    w.move(GateIn(declaration=str(d.id), lines=lines((1, "400"))), XCBZ)
    assert w.stock("B1").on_hand == D(1000)


def test_admission_lines_are_checked_against_the_declaration():
    w, uscc = _world()
    d = w.submit(uscc, "B1")
    for bad, loc in (
        (lines((9, "1")), "$.lines[0].line_no"),
        (lines((1, "1"), (1, "2")), "$.lines[1].line_no"),
        (lines((1, "1.5")), "$.lines[0].quantity"),  # laptops count whole pieces
        (lines((1, "0")), "$.lines[0].quantity"),
        ([], "$.lines"),
    ):
        with pytest.raises(ValidationFailed) as refused:
            w.move(GateIn(declaration=str(d.id), lines=bad), XCBZ)
        assert [e.loc for e in refused.value.errors] == [loc]


def test_only_a_released_inbound_declaration_admits_goods():
    w, uscc = _world()
    w.admit(uscc, "B1", "50")
    export = w.submit(uscc, "B1", flow="first_line_out", lines=[line(1, quantity="5")])
    with pytest.raises(Conflict) as refused:
        w.move(GateIn(declaration=str(export.id), lines=lines((1, "5"))), XCBZ)
    assert refused.value.rule == "wrong_flow"
    review = w.submit(uscc, "B1", lines=[line(3)])
    with pytest.raises(Conflict) as refused:
        w.move(GateIn(declaration=str(review.id), lines=lines((1, "5"))), XCBZ)
    assert (refused.value.rule, refused.value.current_status) == (
        "declaration_not_released",
        "document_review",
    )


def test_another_zones_operator_gets_the_answer_for_an_unknown_declaration():
    w, uscc = _world()
    d = w.submit(uscc, "B1")
    answers = []
    for ref, who in ((str(d.id), gate("XHTZ")), ("900720261000000042", XCBZ), ("x", XCBZ)):
        with pytest.raises(ValidationFailed) as refused:
            w.move(GateIn(declaration=ref, lines=lines((1, "1"))), who)
        answers.append(refused.value.errors)
    assert answers == [[FieldError("$.declaration", "no such declaration")]] * 3


def test_a_gate_admits_only_goods_declared_for_its_own_zone():
    # Through decide_gate_in another zone's operator never sees the declaration (the 422
    # above); the rule itself still holds for any gate zone it is given.
    w, uscc = _world()
    d = w.declaration(w.submit(uscc, "B1").id)
    cmd = GateIn(declaration=str(d.id), lines=lines((1, "1")))
    with pytest.raises(Conflict) as refused:
        check_gate_in(cmd, d, "XHTZ")
    assert refused.value.rule == "zone_mismatch"
    assert check_gate_in(cmd, d, "XCBZ") == {1: D(1)}


# -- exit ------------------------------------------------------------------------------------


def _three_lots(w: World, uscc: str) -> list[UUID]:
    return [w.admit(uscc, "B1", "100") for _ in range(3)]


def test_an_exit_draws_the_oldest_lots_first_and_turns_the_reservation_into_a_decrease():
    w, uscc = _world()
    first, second, third = _three_lots(w, uscc)
    export = w.submit(uscc, "B1", flow="first_line_out", lines=[line(1, quantity="150")])
    assert w.stock("B1").pending_out == D(150)
    out = w.move(_exit(export.id, "150"), XCBZ)
    assert [(v.lot_id, v.quantity) for v in out.lots] == [(first, D(100)), (second, D(50))]
    stock = w.stock("B1")
    assert (stock.on_hand, stock.pending_out) == (D(150), D(0))
    assert list(stock.lots) == [second, third]  # the emptied lot closed
    assert [w.lot(x).on_hand for x in (first, second, third)] == [D(0), D(50), D(100)]


def test_an_exit_draws_exactly_the_lots_its_line_names():
    w, uscc = _world()
    first, _, third = _three_lots(w, uscc)
    export = w.submit(uscc, "B1", flow="first_line_out", lines=[line(1, quantity="80")])
    out = w.move(_exit(export.id, "80", [(third, "60"), (first, "20")]), XCBZ)
    assert [(v.lot_id, v.quantity) for v in out.lots] == [(third, D(60)), (first, D(20))]
    assert [w.lot(x).on_hand for x in (first, third)] == [D(80), D(40)]


def test_named_lots_must_add_up_to_the_line_and_be_open_lots_of_its_item():
    w, uscc = _world()
    first, second, _ = _three_lots(w, uscc)
    domestic = w.admit(uscc, "B1", "10", flow="second_line_in")
    export = w.submit(uscc, "B1", flow="first_line_out", lines=[line(1, quantity="30")])
    before = w.snapshot()
    for picks, loc in (
        ([(first, "20")], "$.lines[0].lots"),
        ([(first, "20"), (first, "10")], "$.lines[0].lots[1].lot_id"),
        ([(UUID(int=7), "30")], "$.lines[0].lots[0].lot_id"),
        ([(domestic, "10"), (second, "20")], "$.lines[0].lots[0].lot_id"),  # not bonded
    ):
        with pytest.raises(ValidationFailed) as refused:
            w.move(_exit(export.id, "30", picks), XCBZ)
        assert [e.loc for e in refused.value.errors] == [loc], picks
    assert w.snapshot() == before


def test_an_exit_never_mixes_customs_statuses():
    w, uscc = _world()
    w.admit(uscc, "B1", "100", flow="second_line_in")  # older, domestic
    bonded = w.admit(uscc, "B1", "100")
    export = w.submit(uscc, "B1", flow="first_line_out", lines=[line(1, quantity="50")])
    out = w.move(_exit(export.id, "50"), XCBZ)
    assert [(v.lot_id, v.quantity) for v in out.lots] == [(bonded, D(50))]
    assert w.stock("B1").on_hand_of("domestic") == D(100)


def test_goods_leave_only_under_a_released_outbound_declaration_within_its_lines():
    w, uscc = _world()
    w.admit(uscc, "B1", "100")
    inbound = w.submit(uscc, "B1")
    with pytest.raises(Conflict) as refused:
        w.move(_exit(inbound.id, "1"), XCBZ)
    assert refused.value.rule == "wrong_flow"
    export = w.submit(uscc, "B1", flow="first_line_out", lines=[line(1, quantity="10")])
    with pytest.raises(Conflict) as refused:
        w.move(_exit(export.id, "11"), XCBZ)
    assert refused.value.rule == "exceeds_declared_quantity"
    unpaid = w.submit(uscc, "B1", flow="second_line_out", trade_mode="0110")
    with pytest.raises(Conflict) as refused:
        w.move(_exit(unpaid.id, "1"), XCBZ)
    assert (refused.value.rule, refused.value.current_status) == (
        "declaration_not_released",
        "awaiting_payment",
    )


# -- transfers -------------------------------------------------------------------------------


def _transfer(quantity: str = "8") -> tuple[World, str, list[UUID], UUID]:
    """10 bonded laptops in XCBZ (lots of 6 and 4); a released transfer of `quantity` to the
    same enterprise's book B2 in XEPZ."""
    w, uscc = _world()
    w.book("B2", uscc, zone="XEPZ")
    lots = [w.admit(uscc, "B1", "6"), w.admit(uscc, "B1", "4")]
    d = w.submit(
        uscc,
        "B1",
        flow="transfer",
        country="CN",
        destination_zone="XEPZ",
        destination_account_book="B2",
        lines=[line(1, quantity=quantity, origin_country=None)],
    )
    assert d.status == "released"
    return w, uscc, lots, d.id


def _dispatch(ref: UUID, quantity: str) -> TransferDispatch:
    return TransferDispatch(declaration=str(ref), lines=[ExitLine(line_no=1, quantity=D(quantity))])


def _receipt(ref: UUID, quantity: str) -> TransferReceipt:
    return TransferReceipt(declaration=str(ref), lines=lines((1, quantity)))


def test_a_transfer_is_received_as_child_lots_of_the_dispatched_ones():
    w, _, (six, four), ref = _transfer()
    w.move(_dispatch(ref, "8"), XCBZ)
    source = w.stock("B1")
    assert (source.on_hand, source.pending_out, source.in_transit_out) == (D(2), D(0), D(8))
    got = w.move(_receipt(ref, "7"), gate("XEPZ"))
    (child,) = got.lots
    created = w.uow.events_of(child.lot_id)[0]
    assert isinstance(created, LotCreated)
    assert created.parent_quantities == {six: D(6), four: D(1)}  # in dispatch order
    lot = w.lot(child.lot_id)
    assert (lot.zone, lot.account_book, lot.goods_status) == ("XEPZ", "B2", "bonded")
    assert w.lot(six).children == [child.lot_id] == w.lot(four).children
    assert [type(e) for e in w.uow.events_of(six)][-1] is ChildLotCreated
    assert w.stock("B1").in_transit_out == D(1)
    assert w.stock("B2").on_hand == D(7)
    facts = w.declaration(ref).facts.lines[0]
    assert (facts.quantity_moved, facts.quantity_received) == (D(8), D(7))


def test_what_is_received_never_exceeds_what_was_dispatched():
    w, _, _, ref = _transfer()
    w.move(_dispatch(ref, "5"), XCBZ)
    before = w.snapshot()
    with pytest.raises(Conflict) as refused:
        w.move(_receipt(ref, "6"), gate("XEPZ"))
    assert refused.value.rule == "exceeds_dispatched_quantity"
    assert w.snapshot() == before
    w.move(_receipt(ref, "5"), gate("XEPZ"))
    with pytest.raises(Conflict) as refused:
        w.move(_receipt(ref, "1"), gate("XEPZ"))
    assert refused.value.rule == "exceeds_dispatched_quantity"


def test_each_side_of_a_transfer_has_its_own_gate_and_a_third_zone_sees_nothing():
    w, _, _, ref = _transfer()
    with pytest.raises(Conflict) as refused:
        w.move(_dispatch(ref, "1"), gate("XEPZ"))
    assert refused.value.rule == "zone_mismatch"
    w.move(_dispatch(ref, "1"), XCBZ)
    with pytest.raises(Conflict) as refused:
        w.move(_receipt(ref, "1"), XCBZ)
    assert refused.value.rule == "zone_mismatch"
    with pytest.raises(ValidationFailed) as unknown:
        w.move(_receipt(ref, "1"), gate("XHTZ"))
    assert unknown.value.errors == [FieldError("$.declaration", "no such declaration")]


def test_two_admissions_decided_on_the_same_state_cannot_both_commit():
    w, uscc = _world()
    d = w.submit(uscc, "B1")
    racer = MemoryUnitOfWork()
    racer.streams = w.uow.streams  # another command, reading the same committed log
    first, second = (
        decide_gate_in(
            uow,
            MovementRequest(
                cmd=GateIn(declaration=str(d.id), lines=lines((1, "600"))),
                movement_id=UUID(int=n),
                actor=XCBZ,
                zones=ZONES,
            ),
            NOW,
        )
        for n, uow in ((1, w.uow), (2, racer))
    )
    w.uow.commit(first)
    before = w.snapshot()
    with pytest.raises(AssertionError, match="fork"):
        racer.commit(second)  # 1200 of 1000 admitted, were it not refused
    assert w.snapshot() == before
    assert w.stock("B1").on_hand == D(600)
