"""Decisions on an existing declaration, decided directly (domain/clearance.py): every entry
of DECISIONS, who may make it, the quota a retail list gives back, the stock a release reserves."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from domain.clearance import DECISIONS, decide_on_declaration
from domain.declaration import (
    AcceptTransfer,
    PayDuties,
    RecordInspection,
    RefuseTransfer,
    RejectDeclaration,
    ReleaseDeclaration,
    WithdrawDeclaration,
)
from domain.documents import series_id
from domain.errors import Conflict, InvalidTransition, NotFound, ValidationFailed
from domain.events import Actor
from domain.movements import item_stock_id
from domain.quota import BuyerQuota
from domain.unit_values import UnitValues, unit_values_id
from domain.views import DeclarationView
from tests.unit.domain_world import (
    BUYER,
    NOW,
    OFFICER,
    World,
    buyer_quota_id,
    company,
    line,
    retail_body,
)

D = Decimal
WITHDRAW = WithdrawDeclaration(reason="ordered by mistake")
REJECT = RejectDeclaration(reason="licence missing")
RELEASE = ReleaseDeclaration()
ACCEPT = AcceptTransfer()
REFUSE = RefuseTransfer(reason="we ordered no such goods")
CONFORM = RecordInspection(result="conform", findings="")
NONCONFORM = RecordInspection(result="nonconform", findings="seal broken")
# Second-line exit of 10 laptops under general trade: green, VAT outstanding.
IMPORT: dict[str, Any] = {
    "flow": "second_line_out",
    "trade_mode": "0110",
    "lines": [line(1, quantity="10")],
}


class Case:
    """A world with a declarant holding 100 bonded laptops in book B1 of XCBZ, and another
    enterprise with book B2 in XEPZ (a transfer into it waits for that enterprise)."""

    def __init__(self) -> None:
        self.w = World()
        self.uscc = self.w.enterprise(1)
        self.w.book("B1", self.uscc)
        self.w.admit(self.uscc, "B1", "100")
        self.declarant = company(self.uscc)
        self.destination = company(self.w.enterprise(2))
        self.w.book("B2", str(self.destination.enterprise), zone="XEPZ")

    def transfer(self) -> DeclarationView:
        """Eight laptops to the other enterprise's book B2: awaiting its acceptance."""
        goods = [line(1, quantity="8", origin_country=None)]
        view = self.w.submit(self.uscc, "B1", **transfer_body("B2", goods))
        assert view.status == "awaiting_acceptance"
        return view

    def declaration_in(self, status: str) -> DeclarationView:
        """A declaration in `status`; `transfer:status` is a transfer into B2 there."""
        w, u = self.w, self.uscc
        if status.startswith("transfer:"):
            return self.transfer_in(status.partition(":")[2])
        if status == "released":
            return w.submit(u, "B1")
        if status == "inspection":
            return w.submit(u, "B1", lines=[line(4)])
        if status == "awaiting_payment":
            return w.submit(u, "B1", **IMPORT)
        review = w.submit(u, "B1", lines=[line(3)])
        if status == "withdrawn":
            return w.decide("withdrawal", review.id, WITHDRAW, self.declarant)
        if status == "rejected":
            return w.decide("rejection", review.id, REJECT, OFFICER)
        assert status == "document_review"
        return review

    def transfer_in(self, status: str) -> DeclarationView:
        view = self.transfer()
        if status == "released":
            return self.w.decide("acceptance", view.id, ACCEPT, self.destination)
        if status == "refused":
            return self.w.decide("refusal", view.id, REFUSE, self.destination)
        if status == "withdrawn":
            return self.w.decide("withdrawal", view.id, WITHDRAW, self.declarant)
        assert status == "awaiting_acceptance"
        return view

    def who(self, name: str) -> Actor:
        return {"declarant": self.declarant, "destination": self.destination}.get(name, OFFICER)


def transfer_body(book: str, goods: list[Any], zone: str = "XEPZ") -> dict[str, Any]:
    return {
        "flow": "transfer",
        "trade_mode": "5034",
        "country": "CN",
        "destination_zone": zone,
        "destination_account_book": book,
        "lines": goods,
    }


def _pay_all(view: DeclarationView) -> PayDuties:
    assert view.duties is not None
    return PayDuties(amount=view.duties.outstanding, currency="CNY", reference="BANK-1")


Command = object | Callable[[DeclarationView], object]
ALLOWED: list[tuple[str, str, Command, str, str]] = [
    ("withdrawal", "document_review", WITHDRAW, "declarant", "withdrawn"),
    ("withdrawal", "inspection", WITHDRAW, "declarant", "withdrawn"),
    ("withdrawal", "awaiting_payment", WITHDRAW, "declarant", "withdrawn"),
    ("payment", "awaiting_payment", _pay_all, "declarant", "released"),
    ("inspection", "inspection", CONFORM, "officer", "released"),
    ("inspection", "inspection", NONCONFORM, "officer", "document_review"),
    ("release", "document_review", RELEASE, "officer", "released"),
    ("rejection", "document_review", REJECT, "officer", "rejected"),
    ("rejection", "inspection", REJECT, "officer", "rejected"),
    ("withdrawal", "transfer:awaiting_acceptance", WITHDRAW, "declarant", "withdrawn"),
    ("acceptance", "transfer:awaiting_acceptance", ACCEPT, "destination", "released"),
    ("refusal", "transfer:awaiting_acceptance", REFUSE, "destination", "refused"),
]
REFUSED: list[tuple[str, str, object, str]] = [
    ("withdrawal", "released", WITHDRAW, "declarant"),
    ("withdrawal", "rejected", WITHDRAW, "declarant"),
    ("withdrawal", "withdrawn", WITHDRAW, "declarant"),
    ("payment", "released", PayDuties(amount=D(1), currency="CNY", reference="B"), "declarant"),
    ("payment", "withdrawn", PayDuties(amount=D(1), currency="CNY", reference="B"), "declarant"),
    ("inspection", "document_review", CONFORM, "officer"),
    ("inspection", "released", CONFORM, "officer"),
    ("release", "inspection", RELEASE, "officer"),
    ("release", "awaiting_payment", RELEASE, "officer"),
    ("release", "released", RELEASE, "officer"),
    ("rejection", "awaiting_payment", REJECT, "officer"),
    ("rejection", "released", REJECT, "officer"),
    ("rejection", "withdrawn", REJECT, "officer"),
    ("rejection", "transfer:awaiting_acceptance", REJECT, "officer"),
    ("release", "transfer:awaiting_acceptance", RELEASE, "officer"),
    ("inspection", "transfer:awaiting_acceptance", CONFORM, "officer"),
    ("withdrawal", "transfer:refused", WITHDRAW, "declarant"),
    (
        "payment",
        "transfer:refused",
        PayDuties(amount=D(1), currency="CNY", reference="B"),
        "declarant",
    ),
    ("acceptance", "transfer:released", ACCEPT, "destination"),
    ("acceptance", "transfer:refused", ACCEPT, "destination"),
    ("acceptance", "transfer:withdrawn", ACCEPT, "destination"),
    ("refusal", "transfer:released", REFUSE, "destination"),
    ("refusal", "transfer:refused", REFUSE, "destination"),
    ("refusal", "transfer:withdrawn", REFUSE, "destination"),
]


def test_every_decision_is_covered_by_both_tables():
    assert {row[0] for row in ALLOWED} == {row[0] for row in REFUSED} == set(DECISIONS)


@pytest.mark.parametrize(("action", "status", "cmd", "who", "after"), ALLOWED)
def test_a_decision_moves_the_declaration_along_the_transition_table(
    action, status, cmd, who, after
):
    case = Case()
    view = case.declaration_in(status)
    body = cmd(view) if callable(cmd) else cmd
    decided = case.w.decide(action, view.id, body, case.who(who))
    assert decided.status == after
    assert case.w.declaration(view.id).status == after


@pytest.mark.parametrize(("action", "status", "cmd", "who"), REFUSED)
def test_any_other_decision_is_refused_invalid_transition_and_saves_nothing(
    action, status, cmd, who
):
    case = Case()
    view = case.declaration_in(status)
    before = case.w.snapshot()
    with pytest.raises(InvalidTransition) as refused:
        case.w.decide(action, view.id, cmd, case.who(who))
    current = status.rpartition(":")[2]
    assert (refused.value.rule, refused.value.current_status) == ("invalid_transition", current)
    assert case.w.snapshot() == before


def test_only_the_declarant_may_withdraw_or_pay_anyone_else_finds_no_such_declaration():
    declarant_only = {a for a, rule in DECISIONS.items() if rule.party == "declarant"}
    assert declarant_only == {"withdrawal", "payment"}
    case = Case()
    view = case.declaration_in("awaiting_payment")
    stranger = company(case.w.enterprise(3))
    before = case.w.snapshot()
    for who in (stranger, OFFICER):
        for action, cmd in (("withdrawal", WITHDRAW), ("payment", _pay_all(view))):
            with pytest.raises(NotFound):
                case.w.decide(action, view.id, cmd, who)
    assert case.w.snapshot() == before
    assert case.w.decide("withdrawal", view.declaration_no, WITHDRAW, case.declarant).status == (
        "withdrawn"
    )


@pytest.mark.parametrize("action", sorted(DECISIONS))
@pytest.mark.parametrize("ref", ["900720261000000999", str(uuid.uuid4()), "no-such-thing"])
def test_an_unknown_declaration_is_not_found_for_every_decision(action, ref):
    case = Case()
    with pytest.raises(NotFound):
        case.w.decide(action, ref, WITHDRAW, case.declarant)


def test_payments_count_until_the_duties_are_settled_and_never_exceed_them():
    case = Case()
    view = case.declaration_in("awaiting_payment")
    assert view.duties is not None
    due = view.duties.outstanding
    part = PayDuties(amount=D("100.00"), currency="CNY", reference="BANK-1")
    after = case.w.decide("payment", view.id, part, case.declarant)
    assert after.status == "awaiting_payment"
    assert after.duties is not None and after.duties.paid == D("100.00")
    assert after.duties.outstanding == due - D("100.00")
    before = case.w.snapshot()
    too_much = PayDuties(amount=due, currency="CNY", reference="BANK-2")
    with pytest.raises(Conflict) as refused:
        case.w.decide("payment", view.id, too_much, case.declarant)
    assert (refused.value.rule, refused.value.current_status) == (
        "payment_exceeds_outstanding",
        "awaiting_payment",
    )
    for bad, loc in (
        (PayDuties(amount=D(1), currency="EUR", reference="B"), "$.currency"),
        (PayDuties(amount=D("0.001"), currency="CNY", reference="B"), "$.amount"),
        (PayDuties(amount=D(0), currency="CNY", reference="B"), "$.amount"),
        (PayDuties(amount=D(1), currency="CNY", reference=" "), "$.reference"),
    ):
        with pytest.raises(ValidationFailed) as invalid:
            case.w.decide("payment", view.id, bad, case.declarant)
        assert [e.loc for e in invalid.value.errors] == [loc]
    assert case.w.snapshot() == before


def test_a_nonconforming_inspection_needs_findings_and_a_rejection_a_reason():
    case = Case()
    view = case.declaration_in("inspection")
    before = case.w.snapshot()
    silent = RecordInspection(result="nonconform", findings="  ")
    with pytest.raises(ValidationFailed) as refused:
        case.w.decide("inspection", view.id, silent, OFFICER)
    assert [e.loc for e in refused.value.errors] == ["$.findings"]
    with pytest.raises(ValidationFailed) as refused:
        case.w.decide("rejection", view.id, RejectDeclaration(reason=""), OFFICER)
    assert [e.loc for e in refused.value.errors] == ["$.reason"]
    assert case.w.snapshot() == before


def test_a_release_reserves_the_outbound_stock_and_records_its_prices_in_the_same_write():
    case = Case()
    w = case.w
    # Exported medicaments (watched goods): document review, nothing reserved yet.
    w.admit(case.uscc, "B1", "40", item_no=3)
    export = w.submit(case.uscc, "B1", flow="first_line_out", lines=[line(3, quantity="15")])
    assert export.status == "document_review"
    assert w.stock("B1", 3).pending_out == 0
    decision = decide_on_declaration(w.uow, "release", str(export.id), RELEASE, OFFICER, NOW)
    history = unit_values_id("B1", 3, "EUR")
    checklists = series_id("checklist", export.declaration_no[:4], 2026, "E")
    assert [p.id for p in decision.saves] == [
        export.id,
        item_stock_id("B1", 3),
        history,
        checklists,
    ]
    w.uow.commit(decision)
    stock = w.stock("B1", 3)
    assert stock.reserved[export.id].quantity == D(15)
    assert (stock.on_hand, stock.pending_out, stock.available_of("bonded")) == (D(40), D(15), D(25))
    # The export's price counts from its release on (the admission's counted at its own).
    assert w.uow.load(history, UnitValues).prices == [D("12.00"), D("12.00")]  # type: ignore[union-attr]


def test_a_release_beyond_the_available_stock_is_refused_insufficient_stock_and_saves_nothing():
    case = Case()
    w = case.w
    w.admit(case.uscc, "B1", "10", item_no=3)
    export = w.submit(case.uscc, "B1", flow="first_line_out", lines=[line(3, quantity="15")])
    before = w.snapshot()
    with pytest.raises(Conflict) as refused:
        w.decide("release", export.id, RELEASE, OFFICER)
    assert (refused.value.rule, refused.value.current_status) == (
        "insufficient_stock",
        "document_review",
    )
    assert w.snapshot() == before
    assert w.declaration(export.id).status == "document_review"


def test_the_payment_that_settles_an_import_releases_it_and_reserves_its_stock():
    case = Case()
    view = case.declaration_in("awaiting_payment")
    assert case.w.stock("B1").pending_out == 0
    case.w.decide("payment", view.id, _pay_all(view), case.declarant)
    assert case.w.stock("B1").reserved[view.id].quantity == D(10)
    # A released declaration takes no further decision: it reserves once.
    with pytest.raises(InvalidTransition):
        case.w.decide("release", view.id, RELEASE, OFFICER)
    assert case.w.stock("B1").pending_out == D(10)


def _retail(case: Case, uscc: str, book: str) -> DeclarationView:
    return case.w.submit_body(retail_body(uscc, book, "1500.00"))


def test_a_withdrawn_retail_list_gives_its_amount_back_to_the_buyers_quota():
    case = Case()
    listed = _retail(case, case.uscc, "B1")
    quota = buyer_quota_id(BUYER, 2026)
    assert case.w.uow.load(quota, BuyerQuota).used == D("1500.00")  # type: ignore[union-attr]
    case.w.decide("withdrawal", listed.id, WITHDRAW, case.declarant)
    state = case.w.uow.load(quota, BuyerQuota)
    assert state is not None and (state.used, state.by_declaration) == (D(0), {})


def test_a_rejected_retail_list_gives_its_amount_back_but_a_paid_one_keeps_it():
    case = Case()
    dishonest = case.w.enterprise(5, credit_class="dishonest")
    case.w.book("B5", dishonest)
    reviewed = _retail(case, dishonest, "B5")
    assert reviewed.status == "document_review"
    paid = _retail(case, case.uscc, "B1")
    quota = buyer_quota_id(BUYER, 2026)
    case.w.decide("rejection", reviewed.id, REJECT, OFFICER)
    case.w.decide("payment", paid.id, _pay_all(paid), case.declarant)
    state = case.w.uow.load(quota, BuyerQuota)
    assert state is not None and state.used == D("1500.00")
    assert state.by_declaration == {paid.id: D("1500.00")}


@pytest.mark.parametrize(
    "findings", ["\x1bseal broken", "seal\u202ebroken", "seal\u200b", "a\u2028b"]
)
def test_findings_refuse_control_bidirectional_and_invisible_characters(findings):
    """Found by the hostile fuzz run (tests/e2e/test_fuzz_hostile.py): an ESC in the findings
    of an inspection went into the log, where every other text field refuses it."""
    case = Case()
    view = case.declaration_in("inspection")
    before = case.w.snapshot()
    for result in ("conform", "nonconform"):
        hostile = RecordInspection(result=result, findings=findings)
        with pytest.raises(ValidationFailed) as refused:
            case.w.decide("inspection", view.id, hostile, OFFICER)
        assert [e.loc for e in refused.value.errors] == ["$.findings"]
    assert case.w.snapshot() == before
