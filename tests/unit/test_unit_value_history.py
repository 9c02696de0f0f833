"""An item's unit-value history, decided directly (domain/unit_values.py): only released
declarations count, in the write that releases them, and absurd lines never do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.declaration import RejectDeclaration, ReleaseDeclaration, WithdrawDeclaration
from domain.events import stream_id
from domain.submission import decide_submission
from domain.unit_of_work import Decision
from domain.unit_values import (
    HISTORY_KEPT,
    SHARDS,
    UnitValueObserved,
    UnitValueReleased,
    UnitValues,
    merged,
    released_prices,
    unit_values_id,
)
from domain.value_checks import median
from domain.views import DeclarationView
from tests.samples import declaration_body
from tests.unit.domain_world import NOW, OFFICER, World, company, line

D = Decimal
LAPTOPS = unit_values_id("B1", 1, "EUR")
MEDICAMENTS = unit_values_id("B1", 3, "EUR")  # watched goods: always document review first
TYPO = "999999999999999.9999"


def _world() -> tuple[World, str]:
    w = World()
    uscc = w.enterprise(1)
    w.book("B1", uscc)
    return w, uscc


def _prices(w: World, stream: Any) -> list[Decimal]:
    history = w.uow.load(stream, UnitValues)
    return history.prices if history is not None else []


def _laptops(w: World, uscc: str, price: str = "420.00", quantity: str = "10") -> DeclarationView:
    return w.submit(uscc, "B1", lines=[line(1, quantity=quantity, unit_price=price)])


def test_the_issues_typo_goes_to_review_and_the_next_normal_laptop_stays_green() -> None:
    w, uscc = _world()
    for _ in range(3):
        assert _laptops(w, uscc).status == "released"
    typo = _laptops(w, uscc, TYPO, quantity="1")
    assert typo.status == "document_review"
    assert typo.risk_reasons[0].startswith(f"unit_price_absurd:line 1: {TYPO} (CNY ")
    w.decide("withdrawal", typo.id, WithdrawDeclaration(reason="typo"), company(uscc))
    after = _laptops(w, uscc)
    assert (after.status, after.risk_reasons) == ("released", [])
    assert _prices(w, LAPTOPS) == [D("420.00")] * 4


def test_an_absurd_line_released_after_review_still_never_moves_the_baseline() -> None:
    w, uscc = _world()
    for _ in range(3):
        _laptops(w, uscc)
    typo = _laptops(w, uscc, TYPO, quantity="1")
    w.cleared(typo)  # an officer lets it go: the goods may leave, the figure is still absurd
    assert _prices(w, LAPTOPS) == [D("420.00")] * 3
    assert _laptops(w, uscc).risk_reasons == []


def test_a_first_line_import_of_an_absurd_quantity_goes_to_review_naming_it() -> None:
    w, uscc = _world()
    view = _laptops(w, uscc, quantity="999999999999999")
    assert view.status == "document_review"
    assert view.risk_reasons[0] == "quantity_absurd:line 1: 999999999999999 over 1000000000"
    w.cleared(view)
    assert _prices(w, LAPTOPS) == []


def test_withdrawn_and_rejected_declarations_never_count_released_ones_do() -> None:
    w, uscc = _world()
    dear = [w.submit(uscc, "B1", lines=[line(3, unit_price="100.00")]) for _ in range(3)]
    assert {d.status for d in dear} == {"document_review"}
    w.decide("withdrawal", dear[0].id, WithdrawDeclaration(reason="no"), company(uscc))
    w.decide("rejection", dear[1].id, RejectDeclaration(reason="no licence"), OFFICER)
    # The third is still under review: pending counts no more than withdrawn or rejected.
    assert _prices(w, MEDICAMENTS) == []
    cheap = w.submit(uscc, "B1", lines=[line(3, unit_price="12.00")])
    assert not any(r.startswith("unit_value") for r in cheap.risk_reasons)
    # Released, the same prices make a history that 12.00 is far below.
    w.cleared(dear[2])
    for _ in range(2):
        w.cleared(w.submit(uscc, "B1", lines=[line(3, unit_price="100.00")]))
    assert _prices(w, MEDICAMENTS) == [D("100.00")] * 3
    again = w.submit(uscc, "B1", lines=[line(3, unit_price="12.00")])
    assert "unit_value_low:line 1: 12.00 vs median 100.00, MAD 0.00" in again.risk_reasons


def test_a_green_release_writes_its_history_in_the_submissions_own_write() -> None:
    w, uscc = _world()
    decision = decide_submission(w.uow, w.submission(declaration_body(uscc, "B1")), NOW)
    assert LAPTOPS in [p.id for p in decision.saves]
    # Under review, nothing is written to it.
    review = w.submission(declaration_body(uscc, "B1", lines=[line(3)]))
    assert MEDICAMENTS not in [p.id for p in decide_submission(w.uow, review, NOW).saves]


def test_observations_of_older_logs_are_kept_but_not_counted() -> None:
    """Before issue #16 a price was observed at submission, released or not (UnitValueObserved):
    such events still decode and fold, into a count of their own."""
    w, uscc = _world()
    pending = w.uow.pending(LAPTOPS, UnitValues)
    for price in ("420.00", TYPO):
        pending.record(
            UnitValueObserved,
            actor=company(uscc),
            occurred_at=NOW,
            declaration_id=UUID(int=7),
            unit_price=D(price),
        )
    w.uow.commit(Decision([pending], None))
    history = w.uow.load(LAPTOPS, UnitValues)
    assert history is not None
    assert (history.observed_at_submission, history.released, history.prices) == (2, 0, [])
    assert _laptops(w, uscc).risk_reasons == []
    assert _prices(w, LAPTOPS) == [D("420.00")]


# --- the property -----------------------------------------------------------------------------

fates = st.sampled_from(["release", "reject", "withdraw", "pending"])
priced = st.sampled_from(["11.50", "12.00", "12.40", "100.00", "0.0001", TYPO])
quantities = st.sampled_from(["5", "999999999999999"])
operations = st.lists(
    st.one_of(
        st.tuples(st.just("submit"), priced, quantities),
        st.tuples(st.just("decide"), st.integers(0, 20), fates),
    ),
    max_size=16,
)


def _absurd(price: Decimal, quantity: Decimal, history: list[Decimal]) -> bool:
    """The default rule's absurdity, written out: bounds, then 100 x off the median."""
    if quantity > 10**9 or price * D("8.2437") > 10**10:
        return True
    if len(history) < 3:
        return False
    centre = median(history)
    return price > centre * 100 or price * 100 < centre


@settings(max_examples=60, deadline=None)
@given(ops=operations)
def test_the_history_is_exactly_the_released_lines_that_were_not_absurd_in_release_order(
    ops: list[tuple[str, Any, Any]],
) -> None:
    w, uscc = _world()
    expected: list[Decimal] = []
    waiting: list[tuple[DeclarationView, bool]] = []
    for op in ops:
        if op[0] == "submit":
            price, quantity = D(op[1]), D(op[2])
            absurd = _absurd(price, quantity, expected)
            goods = [line(3, unit_price=op[1], quantity=op[2])]
            view = w.submit(uscc, "B1", lines=goods)
            assert view.status == "document_review"  # watched goods
            assert any("_absurd:" in r for r in view.risk_reasons) == absurd
            waiting.append((view, absurd))
        elif waiting:
            view, absurd = waiting.pop(op[1] % len(waiting))
            if op[2] == "release":
                w.decide("release", view.id, ReleaseDeclaration(), OFFICER)
                if not absurd:
                    expected.append(view_price(w, view))
            elif op[2] == "reject":
                w.decide("rejection", view.id, RejectDeclaration(reason="no"), OFFICER)
            elif op[2] == "withdraw":
                w.decide("withdrawal", view.id, WithdrawDeclaration(reason="no"), company(uscc))
            else:
                waiting.append((view, absurd))
        assert _prices(w, MEDICAMENTS) == expected


def view_price(w: World, view: DeclarationView) -> Decimal:
    return w.declaration(view.id).facts.lines[0].unit_price


def _released(stream: UUID, state: UnitValues | None, n: int, at: datetime, price: D) -> UnitValues:
    event = UnitValueReleased(
        originator_id=stream,
        originator_version=state.version + 1 if state else 1,
        actor=OFFICER,
        occurred_at=at,
        declaration_id=UUID(int=n),
        line_no=1,
        unit_price=price,
    )
    return event.apply(state)


@settings(max_examples=80, deadline=None)
@given(
    releases=st.lists(
        st.tuples(st.integers(0, SHARDS - 1), st.integers(1, 10**6), st.integers(1, 90)),
        max_size=2 * HISTORY_KEPT + 20,
    )
)
def test_shards_merged_read_as_the_one_history_a_single_writer_keeps(
    releases: list[tuple[int, int, int]],
) -> None:
    """However releases are spread over shards (several servers, decision 0040), the merged
    history is the one stream a single writer would have kept: the same count and the last
    HISTORY_KEPT prices in release order."""
    one: UnitValues | None = None
    shards: dict[int, UnitValues] = {}
    at = datetime(2026, 12, 6, tzinfo=UTC)
    for n, (shard, cents, seconds_later) in enumerate(releases):
        at += timedelta(seconds=seconds_later)
        price = D(cents) / 100
        one = _released(LAPTOPS, one, n, at, price)
        stream = unit_values_id("B1", 1, "EUR", shard)
        shards[shard] = _released(stream, shards.get(shard), n, at, price)
    history = merged([*shards.values(), None])
    assert history.released == len(releases)
    assert history.prices == (one.prices if one is not None else [])


def test_the_first_shard_is_the_history_stream_of_logs_written_before_shards() -> None:
    """A log written before shards keeps its history on the stream shard 0 names."""
    assert unit_values_id("B1", 1, "EUR", 0) == unit_values_id("B1", 1, "EUR")
    assert unit_values_id("B1", 1, "EUR", 0) == stream_id("unit-values", "B1:1:EUR")
    others = {unit_values_id("B1", 1, "EUR", k) for k in range(1, SHARDS)}
    assert len(others) == SHARDS - 1 and LAPTOPS not in others


def test_a_second_process_writes_its_own_shard_and_both_read_the_merged_history() -> None:
    w, uscc = _world()
    for _ in range(3):
        _laptops(w, uscc, "420.00")
    first = w.uow
    w.uow = first.process()  # another server on the same streams, shard 1
    for _ in range(2):
        _laptops(w, uscc, "430.00")
    assert _prices(w, LAPTOPS) == [D("420.00")] * 3
    assert _prices(w, unit_values_id("B1", 1, "EUR", 1)) == [D("430.00")] * 2
    for uow in (first, w.uow):
        history = released_prices(uow, "B1", 1, "EUR")
        assert (history.released, history.prices) == (5, [D("420.00")] * 3 + [D("430.00")] * 2)
