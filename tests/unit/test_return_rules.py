"""Returns of retail goods as domain decisions: the refund and the quota restored, cumulative
and never more than the list's taxes and order; the window; readmission of bonded goods with
the lots that left as parents."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.declaration import (
    PayDuties,
    RecordInspection,
    RejectDeclaration,
    WithdrawDeclaration,
)
from domain.errors import Conflict, ValidationFailed
from domain.events import Actor
from domain.exits import GateOut
from domain.movements import ExitLine, GateIn
from domain.quota import ANNUAL_LIMIT_CNY, BuyerQuota
from domain.readmission import parents_of
from domain.returns import ReturnGoods, ReturnLine, ReturnView, decide_return, return_id
from domain.views import DeclarationView
from tests.unit.domain_world import (
    BUYER,
    NOW,
    OFFICER,
    World,
    buyer_quota_id,
    company,
    ecommerce,
    gate,
    line,
    lines,
    retail_body,
)

D = Decimal


def _world() -> tuple[World, str]:
    w = World()
    uscc = w.enterprise(1)
    w.book("B1", uscc)
    return w, uscc


def parcel(uscc: str, goods: list[tuple[int, str, str]]) -> dict[str, Any]:
    """A 9610 parcel of `goods` (item, quantity, unit price) in CNY, its order their sum."""
    rows = [
        line(item, line_no=n, quantity=q, unit_price=p)
        for n, (item, q, p) in enumerate(goods, start=1)
    ]
    amount = sum((D(q) * D(p) for _, q, p in goods), D(0)).quantize(D("0.01"))
    body = retail_body(
        uscc,
        "unused",
        f"{amount}",
        flow="direct_in",
        trade_mode="9610",
        transport={"mode": "air", "reference": "CA908-20261120"},
        lines=rows,
        ecommerce=ecommerce(f"{amount}"),
    )
    body.pop("account_book")
    return body


def paid(w: World, view: DeclarationView, uscc: str) -> DeclarationView:
    """The declaration with what is outstanding paid (released if nothing else holds it)."""
    duties = w.declaration(view.id).duties
    assert duties is not None
    if duties.outstanding > 0:
        cmd = PayDuties(amount=duties.outstanding, currency="CNY", reference="PAY")
        view = w.decide("payment", view.id, cmd, company(uscc))
    return view


def give_back(
    w: World, uscc: str, ref: object, returned: dict[int, str], days: int = 0
) -> ReturnView:
    cmd = ReturnGoods(
        lines=[ReturnLine(line_no=n, quantity=D(q)) for n, q in returned.items()], reason="x"
    )
    stream = return_id("tests", f"return-{len(w.uow.streams)}")
    now = NOW + timedelta(days=days)
    result: ReturnView = w.uow.run(decide_return, str(ref), cmd, stream, company(uscc), now)
    return result


def used(w: World) -> Decimal:
    quota = w.uow.load(buyer_quota_id(BUYER, NOW.year), BuyerQuota)
    return quota.used if quota is not None else D(0)


# -- the property ----------------------------------------------------------------------------

GOODS = st.lists(
    st.tuples(
        st.just(1),
        st.integers(min_value=1, max_value=4).map(str),
        st.decimals(min_value=D("0.01"), max_value=D("1200"), places=2).map(str),
    ),
    min_size=1,
    max_size=3,
)
LIST = st.integers(min_value=0, max_value=20)
STEP = st.one_of(
    # A list; `red`: of DPRK origin, so it goes to inspection (and may be rejected); `pay`:
    # its tax paid at once (a green list is then released).
    st.tuples(st.just("list"), GOODS, st.booleans(), st.booleans()),
    st.tuples(st.just("withdraw"), LIST),
    st.tuples(st.just("reject"), LIST),
    st.tuples(st.just("clear"), LIST),
    st.tuples(st.just("pay"), LIST),
    st.tuples(st.just("return"), LIST, st.integers(min_value=1, max_value=3), st.integers(1, 4)),
)


class Books:
    """What the test expects: the accepted orders, the shares returned, each list's refunds."""

    def __init__(self) -> None:
        self.views: list[DeclarationView] = []
        self.accepted = D(0)
        self.restored = D(0)
        self.refunds: dict[Any, Decimal] = {}

    def pick(self, n: int) -> DeclarationView | None:
        return self.views[n % len(self.views)] if self.views else None


def _submit(w: World, uscc: str, books: Books, goods: Any, red: bool, pay: bool) -> None:
    body = parcel(uscc, goods)
    if red:
        body["lines"] = [{**row, "origin_country": "KP"} for row in body["lines"]]
    try:
        view = w.submit_body(body)
    except Conflict as refused:
        assert refused.rule == "quota_exceeded"
        return
    except ValidationFailed as refused:  # more than one item over CNY 5,000: not a retail list
        assert refused.rule == "over_transaction_limit", refused.errors
        return
    assert view.ecommerce is not None
    books.accepted += view.ecommerce.order.amount
    books.views.append(view)
    if pay:
        paid(w, view, uscc)


def _decide(w: World, uscc: str, books: Books, step: tuple[Any, ...]) -> None:
    """One decision on a list the step picks; a refusal (409) is expected to write nothing."""
    kind = step[0]
    view = books.pick(step[1])
    if kind == "return":  # mostly of released lists, else the window of refusals is all
        out = [v for v in books.views if w.declaration(v.id).status == "released"]
        view = out[step[1] % len(out)] if out and step[1] % 4 else view
    if view is None:
        return
    d = w.declaration(view.id)
    assert d.facts.ecommerce is not None
    if kind == "withdraw":
        w.decide("withdrawal", view.id, WithdrawDeclaration(reason="x"), company(uscc))
        books.accepted -= d.facts.ecommerce.order.amount
    elif kind == "reject":
        w.decide("rejection", view.id, RejectDeclaration(reason="x"), OFFICER)
        books.accepted -= d.facts.ecommerce.order.amount
    elif kind == "clear":
        if d.status == "inspection":
            conform = RecordInspection(result="conform", findings="as declared")
            w.decide("inspection", view.id, conform, OFFICER)
    elif kind == "pay":
        paid(w, view, uscc)
    else:
        line_no = (step[2] - 1) % len(d.facts.lines) + 1
        back = give_back(w, uscc, view.id, {line_no: str(step[3])})
        books.restored += back.quota_restored
        books.refunds[d.id] = books.refunds.get(d.id, D(0)) + back.refund.total


@settings(max_examples=40, deadline=None)
@given(st.lists(STEP, min_size=1, max_size=14))
def test_quota_and_refunds_add_up_over_any_run_of_lists_and_returns(steps):
    """For any run of one buyer's lists, withdrawals, rejections, payments and returns in one
    year: `used` is the accepted order amounts minus the returned shares and never passes CNY
    26,000; each list's refunds never pass its taxes and equal them once all is back, and its
    restored quota then equals its order amount."""
    w, uscc = _world()
    books = Books()
    for step in steps:
        before = w.snapshot()
        if step[0] == "list":
            _submit(w, uscc, books, *step[1:])
        else:
            try:
                _decide(w, uscc, books, step)
            except Conflict:
                assert w.snapshot() == before
        assert used(w) == books.accepted - books.restored <= ANNUAL_LIMIT_CNY
    for view in books.views:
        d = w.declaration(view.id)
        assert d.duties is not None
        taxes = d.duties.vat + d.duties.consumption_tax
        assert d.duties.refunded == books.refunds.get(d.id, D(0)) <= taxes
        if all(d.returned.get(x.line_no, 0) == x.quantity for x in d.facts.lines):
            assert d.duties.refunded == taxes


@given(
    st.lists(st.integers(min_value=1, max_value=9), min_size=1, max_size=4),
    st.decimals(min_value=D("0"), max_value=D("30"), places=0),
    st.decimals(min_value=D("1"), max_value=D("10"), places=0),
)
def test_parents_are_the_next_slice_of_the_lots_that_left(drawn_sizes, before, quantity):
    from uuid import uuid4

    drawn = [(uuid4(), D(q)) for q in drawn_sizes]
    total = sum((q for _, q in drawn), D(0))
    parents = parents_of(drawn, before, quantity)
    if before + quantity > total:
        assert parents is None
        return
    assert parents is not None and sum(parents.values()) == quantity
    order = [lot for lot, _ in drawn]
    taken = [order.index(lot) for lot in parents]
    assert taken == sorted(taken)  # in exit order


# -- examples ----------------------------------------------------------------------------


def test_a_list_returned_line_by_line_refunds_each_lines_share_and_the_rest_at_the_end():
    w, uscc = _world()
    view = paid(w, w.submit_body(parcel(uscc, [(1, "3", "333.33"), (1, "2", "500.01")])), uscc)
    assert view.duties is not None and view.status == "released"
    # 999.99 + 1,000.02 = 2,000.01 x 13% x 70% = 182.00091: VAT 182.00 for the list.
    assert view.duties.vat == D("182.00")
    first = give_back(w, uscc, view.id, {1: "1"})
    second = give_back(w, uscc, view.id, {1: "2", 2: "1"})
    last = give_back(w, uscc, view.id, {2: "1"})
    refunds = [r.refund.vat for r in (first, second, last)]
    restored = [r.quota_restored for r in (first, second, last)]
    assert sum(refunds) == D("182.00") and all(r > 0 for r in refunds)
    assert sum(restored) == D("2000.01") and restored[0] == D("333.33")
    assert used(w) == 0
    assert w.declaration(view.id).duties.refunded == D("182.00")  # type: ignore[union-attr]


def test_the_window_counts_china_calendar_days_from_the_release_day():
    w, uscc = _world()
    view = paid(w, w.submit_body(parcel(uscc, [(1, "2", "100.00")])), uscc)
    assert give_back(w, uscc, view.id, {1: "1"}, days=30).refund.vat > 0
    before = w.snapshot()
    with pytest.raises(Conflict) as closed:
        give_back(w, uscc, view.id, {1: "1"}, days=31)
    assert closed.value.rule == "return_window_closed"
    assert w.snapshot() == before


def test_a_bonded_return_comes_back_as_lots_of_the_lots_that_left():
    w, uscc = _world()
    first = w.admit(uscc, "B1", "2")
    second = w.admit(uscc, "B1", "3")
    body = retail_body(uscc, "B1", "4000.00", lines=[line(1, quantity="4", unit_price="1000.00")])
    body["ecommerce"] = ecommerce("4000.00")
    view = paid(w, w.submit_body(body), uscc)
    out = GateOut(declaration=str(view.id), lines=[ExitLine(line_no=1, quantity=D(4))])
    w.move(out, gate("XCBZ"))
    back = give_back(w, uscc, view.id, {1: "3"})
    operator: Actor = gate("XCBZ")
    a = w.move(GateIn(return_id=back.return_id, lines=lines((1, "1"))), operator)
    b = w.move(GateIn(return_id=back.return_id, lines=lines((1, "2"))), operator)
    # FIFO took 2 from the first lot and 2 from the second: the first readmission comes from
    # the first lot, the next two laptops from the rest of it and then the second lot.
    assert w.lot(a.lots[0].lot_id).parents == [first]
    assert w.lot(b.lots[0].lot_id).parents == [first, second]
    assert w.lot(first).children == [a.lots[0].lot_id, b.lots[0].lot_id]
    assert w.stock("B1").on_hand == D(1) + D(3)
    with pytest.raises(Conflict) as over:
        w.move(GateIn(return_id=back.return_id, lines=lines((1, "1"))), operator)
    assert over.value.rule == "exceeds_returned_quantity"


def test_goods_that_never_left_the_zone_are_not_readmitted():
    w, uscc = _world()
    w.admit(uscc, "B1", "2")
    body = retail_body(uscc, "B1", "2000.00", lines=[line(1, quantity="2", unit_price="1000.00")])
    body["ecommerce"] = ecommerce("2000.00")
    view = paid(w, w.submit_body(body), uscc)
    back = give_back(w, uscc, view.id, {1: "1"})
    before = w.snapshot()
    with pytest.raises(Conflict) as early:
        w.move(GateIn(return_id=back.return_id, lines=lines((1, "1"))), gate("XCBZ"))
    assert early.value.rule == "returned_goods_not_exited"
    assert w.snapshot() == before
