"""Two-sided transfers, decided directly (domain/clearance.py, domain/submission.py): a transfer
into another enterprise's book waits in `awaiting_acceptance` until that enterprise accepts
(then it goes where its channel sends it) or refuses; nothing is reserved before; a transfer
between two books of one enterprise needs no acceptance; and a destination book the declarant
does not own that does not fit is refused word for word as an unknown one."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.declaration import (
    AcceptTransfer,
    RecordInspection,
    RefuseTransfer,
    RejectDeclaration,
    ReleaseDeclaration,
    WithdrawDeclaration,
)
from domain.errors import Conflict, InvalidTransition, NotFound, ValidationFailed
from domain.events import Actor
from domain.movements import ExitLine, ItemStock, held_key
from domain.transfers import TransferDispatch
from domain.views import DeclarationView
from tests.unit.domain_world import OFFICER, World, company, gate, line

D = Decimal
ACCEPT = AcceptTransfer()
REFUSE = RefuseTransfer(reason="we ordered no such goods")
# Item -> the channel the test rules give it, and where a declaration of it goes when it
# takes effect: laptops green (released: a transfer pays nothing), medicaments yellow,
# shotguns red.
CHANNEL_STATUS = {1: "released", 3: "document_review", 4: "inspection"}


class Transfers:
    """Enterprise A with 100 of items 1, 3 and 4 in A1 (XCBZ) and its own book A2 in XEPZ;
    enterprise B with book B2 in XEPZ; and a third enterprise C."""

    def __init__(self) -> None:
        self.w = World()
        self.a = self.w.enterprise(1)
        self.b = self.w.enterprise(2)
        self.c = self.w.enterprise(3)
        self.w.book("A1", self.a)
        self.w.book("A2", self.a, zone="XEPZ")
        self.w.book("B2", self.b, zone="XEPZ")
        for item in CHANNEL_STATUS:
            self.w.admit(self.a, "A1", "100", item)
        self.parties: dict[str, Actor] = {
            "declarant": company(self.a),
            "destination": company(self.b),
            "stranger": company(self.c),
            "officer": OFFICER,
        }

    def body(self, book: str, item: int = 1, quantity: str = "8", **line_kw: Any) -> Any:
        goods = [line(item, quantity=quantity, origin_country=None, **line_kw)]
        return {
            "flow": "transfer",
            "trade_mode": "5034",
            "country": "CN",
            "destination_zone": "XEPZ",
            "destination_account_book": book,
            "lines": goods,
        }

    def transfer(self, book: str = "B2", item: int = 1, quantity: str = "8") -> DeclarationView:
        return self.w.submit(self.a, "A1", **self.body(book, item, quantity))

    def reserved(self, view: DeclarationView, item: int = 1) -> Decimal:
        held = self.w.stock("A1", item).reserved.get(held_key(view.id, "bonded"))
        return held.quantity if held is not None else D(0)


def dispatch_of(view: DeclarationView) -> TransferDispatch:
    return TransferDispatch(declaration=str(view.id), lines=[ExitLine(line_no=1, quantity=D(8))])


def test_a_transfer_into_another_enterprises_book_waits_for_it_and_reserves_nothing():
    t = Transfers()
    before = t.w.stock("A1")
    view = t.transfer()
    assert (view.status, view.channel) == ("awaiting_acceptance", "green")
    assert t.w.declaration(view.id).status == "awaiting_acceptance"
    # Nothing reserved, nothing in transit: the source book reads as before.
    assert t.w.stock("A1").reserved == before.reserved == {}
    assert t.w.stock("A1").in_transit == {}
    # The source gate cannot dispatch it.
    dispatch = dispatch_of(view)
    with pytest.raises(Conflict) as refused:
        t.w.move(dispatch, gate("XCBZ"))
    assert refused.value.rule == "declaration_not_released"
    assert refused.value.current_status == "awaiting_acceptance"


def test_after_acceptance_it_proceeds_as_a_transfer_does_reserving_in_the_same_write():
    t = Transfers()
    view = t.transfer()
    accepted = t.w.decide("acceptance", view.id, ACCEPT, t.parties["destination"])
    assert accepted.status == "released"
    assert t.reserved(view) == D(8)
    moved = t.w.move(dispatch_of(view), gate("XCBZ"))
    assert moved.kind == "transfer_dispatch"
    stock = t.w.stock("A1")
    assert sum(sum(lots.values()) for lots in stock.in_transit.values()) == D(8)


def test_a_refused_transfer_is_final_and_nothing_moves():
    t = Transfers()
    view = t.transfer()
    refused = t.w.decide("refusal", view.id, REFUSE, t.parties["destination"])
    assert refused.status == "refused"
    assert t.w.stock("A1").reserved == {}
    for action, cmd, who in (
        ("acceptance", ACCEPT, "destination"),
        ("withdrawal", WithdrawDeclaration(reason="x"), "declarant"),
    ):
        with pytest.raises(InvalidTransition) as e:
            t.w.decide(action, view.id, cmd, t.parties[who])
        assert e.value.current_status == "refused"


def test_a_refusal_needs_a_reason():
    t = Transfers()
    view = t.transfer()
    before = t.w.snapshot()
    with pytest.raises(ValidationFailed) as e:
        t.w.decide("refusal", view.id, RefuseTransfer(reason="  "), t.parties["destination"])
    assert [x.loc for x in e.value.errors] == ["$.reason"]
    assert t.w.snapshot() == before


@pytest.mark.parametrize("who", ["declarant", "stranger", "officer"])
@pytest.mark.parametrize("action", ["acceptance", "refusal"])
def test_only_the_destination_enterprise_decides_anyone_else_finds_no_such_declaration(action, who):
    t = Transfers()
    view = t.transfer()
    before = t.w.snapshot()
    with pytest.raises(NotFound) as e:
        t.w.decide(action, view.id, ACCEPT if action == "acceptance" else REFUSE, t.parties[who])
    assert str(e.value) == f"no declaration {view.id}"
    assert t.w.snapshot() == before


def test_an_acceptance_beyond_the_available_stock_is_refused_and_saves_nothing():
    t = Transfers()
    view = t.transfer(quantity="150")  # more than the 100 in A1: submission alone is fine
    assert view.status == "awaiting_acceptance"
    before = t.w.snapshot()
    with pytest.raises(Conflict) as e:
        t.w.decide("acceptance", view.id, ACCEPT, t.parties["destination"])
    assert (e.value.rule, e.value.current_status) == ("insufficient_stock", "awaiting_acceptance")
    assert t.w.snapshot() == before


def test_a_transfer_between_two_books_of_one_enterprise_needs_no_acceptance():
    t = Transfers()
    view = t.transfer("A2")
    assert view.status == "released"
    assert t.reserved(view) == D(8)
    with pytest.raises(InvalidTransition) as e:
        t.w.decide("acceptance", view.id, ACCEPT, t.parties["declarant"])
    assert e.value.current_status == "released"
    # Another enterprise has nothing to accept here.
    with pytest.raises(NotFound):
        t.w.decide("acceptance", view.id, ACCEPT, t.parties["destination"])


# -- the destination book is no oracle ----------------------------------------------------------


def refusal_of(t: Transfers, body: dict[str, Any]) -> list[tuple[str, str]]:
    before = t.w.snapshot()
    with pytest.raises(ValidationFailed) as e:
        t.w.submit(t.a, "A1", **body)
    assert t.w.snapshot() == before
    return [(x.loc, x.msg) for x in e.value.errors]


FOREIGN_MISFITS = {
    "an item not in the book": {"destination_item_no": 7},
    "an item kept in another unit": {"destination_item_no": 2},
}


@pytest.mark.parametrize("misfit", sorted(FOREIGN_MISFITS))
def test_a_foreign_book_that_does_not_fit_is_refused_as_an_unknown_one(misfit):
    t = Transfers()
    unknown = refusal_of(t, t.body("NO-SUCH-BOOK"))
    assert unknown == [
        ("$.destination_account_book", "no such account book in the destination zone")
    ]
    assert refusal_of(t, t.body("B2", **FOREIGN_MISFITS[misfit])) == unknown
    in_another_zone = t.body("B2") | {"destination_zone": "XHTZ"}
    assert refusal_of(t, in_another_zone) == refusal_of(
        t, t.body("NO-SUCH-BOOK") | {"destination_zone": "XHTZ"}
    )


def test_the_declarants_own_book_still_names_the_line_and_the_item():
    t = Transfers()
    assert refusal_of(t, t.body("A2", destination_item_no=2)) == [
        ("$.lines[0].destination_item_no", "item 2 is kept in KGM")
    ]
    assert refusal_of(t, t.body("A2", destination_item_no=7)) == [
        ("$.lines[0].destination_item_no", "item 7 is not in the destination book")
    ]


# -- the status machine, at random ----------------------------------------------------------------

ACTIONS: dict[str, tuple[str, object, tuple[str, ...]]] = {
    # name: (decision, command, the statuses it is allowed in)
    "accept": ("acceptance", ACCEPT, ("awaiting_acceptance",)),
    "refuse": ("refusal", REFUSE, ("awaiting_acceptance",)),
    "withdraw": (
        "withdrawal",
        WithdrawDeclaration(reason="changed plans"),
        ("awaiting_acceptance", "document_review", "inspection", "awaiting_payment"),
    ),
    "release": ("release", ReleaseDeclaration(), ("document_review",)),
    "conform": ("inspection", RecordInspection(result="conform", findings=""), ("inspection",)),
    "reject": ("rejection", RejectDeclaration(reason="false"), ("document_review", "inspection")),
}
OFFICER_ACTIONS = ("release", "conform", "reject")
AFTER = {"refuse": "refused", "withdraw": "withdrawn", "reject": "rejected"}


def _expected(name: str, who: str, status: str, cross: bool, item: int) -> type[Exception] | str:
    """What the model says a decision does: the new status, or the error it is refused with."""
    decision, _, allowed = ACTIONS[name]
    if decision in ("acceptance", "refusal"):
        destination = "destination" if cross else "declarant"
        if who != destination:
            return NotFound
    elif decision == "withdrawal" and who != "declarant":
        return NotFound
    if status not in allowed:
        return InvalidTransition
    if name in AFTER:
        return AFTER[name]
    return CHANNEL_STATUS[item] if name == "accept" else "released"


@settings(max_examples=150, deadline=None)
@given(
    cross=st.booleans(),
    item=st.sampled_from(sorted(CHANNEL_STATUS)),
    steps=st.lists(
        st.tuples(
            st.sampled_from(sorted(ACTIONS)),
            st.sampled_from(["declarant", "destination", "stranger"]),
        ),
        max_size=6,
    ),
)
def test_the_transfer_status_machine_follows_the_table_and_reserves_only_when_released(
    cross: bool, item: int, steps: list[tuple[str, str]]
) -> None:
    t = Transfers()
    view = t.transfer("B2" if cross else "A2", item=item)
    status = "awaiting_acceptance" if cross else CHANNEL_STATUS[item]
    assert view.status == status
    for name, who in steps:
        actor = "officer" if name in OFFICER_ACTIONS else who
        decision, cmd, _ = ACTIONS[name]
        expected = _expected(name, actor, status, cross, item)
        before = t.w.snapshot()
        if isinstance(expected, str):
            assert t.w.decide(decision, view.id, cmd, t.parties[actor]).status == expected
            status = expected
        else:
            with pytest.raises(expected):
                t.w.decide(decision, view.id, cmd, t.parties[actor])
            assert t.w.snapshot() == before
        assert t.w.declaration(view.id).status == status
        # Stock is reserved exactly while the transfer is released; never in transit here.
        assert t.reserved(view, item) == (D(8) if status == "released" else D(0))
        stock: ItemStock = t.w.stock("A1", item)
        assert stock.in_transit == {}
