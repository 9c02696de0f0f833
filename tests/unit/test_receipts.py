"""Receipts (domain/receipts.py, issue #19): which log events are receipts, their types and
data, and how a subscription's patterns select them."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.clearance import DeclarationRejected, DutiesPaid, InspectionRecorded
from domain.errors import ValidationFailed
from domain.events import Actor
from domain.movements import LotView, MovementRecorded, MovementView
from domain.receipts import RECEIPT_TYPES, SUBJECTS, checked_patterns, draft, matches
from domain.stocktake import LotAdjusted

OFFICER = Actor(name="officer", role="officer")
NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


def _common():
    return {"originator_id": uuid4(), "originator_version": 2, "actor": OFFICER, "occurred_at": NOW}


def test_declaration_decisions_are_receipts_of_the_status_they_leave():
    inspected = InspectionRecorded(
        result="nonconform", findings="wrong HS code", status="rejected", **_common()
    )
    d = draft(inspected)
    assert d is not None and d.type == "declaration.rejected" and d.subject_kind == "declaration"
    assert d.subject_id == inspected.originator_id
    assert d.data == {
        "status": "rejected",
        "inspection": {"result": "nonconform", "findings": "wrong HS code"},
    }
    rejected = draft(DeclarationRejected(reason="no licence", **_common()))
    assert rejected is not None and rejected.data == {"status": "rejected", "reason": "no licence"}
    paid = DutiesPaid(
        amount=Decimal("12.30"), currency="CNY", reference="B-1", status="released", **_common()
    )
    d = draft(paid)
    assert d is not None and d.type == "declaration.released"
    assert d.data["paid"] == {"amount": Decimal("12.30"), "currency": "CNY"}


def test_a_movement_is_a_receipt_of_its_kind_with_its_lots():
    view = MovementView(
        movement_id=uuid4(),
        kind="gate_in",
        zone="XCBZ",
        account_book="B1",
        occurred_at=NOW,
        lots=[LotView(lot_id=uuid4(), item_no=1, quantity=Decimal(10))],
    )
    d = draft(MovementRecorded(view=view, **_common()))
    assert d is not None and d.type == "movement.gate_in"
    # As the API writes decimals: exact, as text.
    assert d.data["movement"]["lots"][0]["quantity"] == "10"


def test_the_ledger_s_own_facts_are_not_receipts():
    lot = LotAdjusted(movement_id=uuid4(), delta=Decimal(-1), reason="count", **_common())
    assert draft(lot) is None


def test_every_type_a_draft_can_have_is_a_known_receipt_type():
    assert len(set(RECEIPT_TYPES)) == len(RECEIPT_TYPES)
    assert {t.split(".")[0] for t in RECEIPT_TYPES} == set(SUBJECTS)


patterns = st.lists(
    st.sampled_from(["*", *RECEIPT_TYPES, *(f"{s}.*" for s in SUBJECTS)]), min_size=1, max_size=5
)


@given(patterns, st.sampled_from(RECEIPT_TYPES))
def test_a_pattern_selects_exactly_its_types(chosen, receipt_type):
    expected = any(
        p == "*" or p == receipt_type or (p.endswith(".*") and receipt_type.startswith(p[:-1]))
        for p in chosen
    )
    assert matches(chosen, receipt_type) is expected
    assert checked_patterns("$.events", chosen) == list(dict.fromkeys(chosen))


@pytest.mark.parametrize(
    ("given_patterns", "loc"),
    [
        ([], "$.events"),
        (["declaration.*", "declaration.paid"], "$.events[1]"),
        (["movement"], "$.events[0]"),
    ],
)
def test_an_unknown_pattern_is_refused_at_its_place(given_patterns, loc):
    with pytest.raises(ValidationFailed) as refused:
        checked_patterns("$.events", given_patterns)
    assert refused.value.errors[0].loc == loc
