"""The write-off's rules on their own (domain/write_offs.py): the figures add up from any book
entries, the consumption check, periods that never overlap, the period being over."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import Conflict, ValidationFailed
from domain.events import Actor, Pending
from domain.write_offs import (
    COLUMN_OF,
    BomTerms,
    BookPeriods,
    FigureSums,
    ProcessingRun,
    WriteOffPeriod,
    check_period,
    claim,
    consumption_lines,
    trimmed,
)
from projections.inventory.fold import BOOK_ENTRIES, DRAW_KINDS, MADE_ENTRIES

SYSTEM = Actor(name="test", role="enterprise")
KINDS = sorted(COLUMN_OF)
quantities = st.decimals(min_value=Decimal("0.00001"), max_value=Decimal(10**6), places=5)


def test_every_entry_kind_the_inventory_writes_is_in_one_column():
    written = {*BOOK_ENTRIES.values(), *MADE_ENTRIES.values(), *DRAW_KINDS.values()}
    assert written <= set(COLUMN_OF), written - set(COLUMN_OF)


@given(
    st.lists(
        st.tuples(
            st.integers(1, 3),
            st.sampled_from(("bonded", "domestic")),
            st.sampled_from(KINDS),
            quantities,
            st.booleans(),
        ),
        max_size=40,
    )
)
def test_the_figures_add_up_to_the_entries(entries):
    """opening + receipts - issues - consumed + produced - scrap + adjustments = closing_book,
    and closing_book is every entry's signed quantity added up (what the book holds)."""
    sums = FigureSums()
    held: dict[tuple[int, str], Decimal] = {}
    for item, status, kind, q, before in entries:
        # Entries that take goods off the book are negative in the book, as the inventory
        # writes them; an adjustment may be either.
        signed = -q if COLUMN_OF[kind] in ("issues", "consumed", "scrap") else q
        sums.add(item, status, kind, signed, before)
        held[(item, status)] = held.get((item, status), Decimal(0)) + signed
    for f in sums.figures():
        flow = f.opening + f.receipts - f.issues - f.consumed + f.produced - f.scrap + f.adjustments
        assert flow == f.closing_book == held[(f.item_no, f.goods_status)]
        assert min(f.receipts, f.issues, f.consumed, f.produced, f.scrap) >= 0
        assert f.by_products + f.scrap_made <= f.produced


@given(
    made=quantities,
    net=st.decimals(min_value=Decimal("0.00001"), max_value=Decimal(100), places=5),
    loss=st.decimals(min_value=Decimal(0), max_value=Decimal("0.9"), places=4),
    tolerance=st.decimals(min_value=Decimal(0), max_value=Decimal("0.5"), places=4),
    skew=st.decimals(min_value=Decimal("-0.9"), max_value=Decimal("0.9"), places=4),
)
def test_the_consumption_check_is_the_bom_s_rule_over_the_period(made, net, loss, tolerance, skew):
    expected = made * net / (1 - loss)
    actual = (expected * (1 + skew)).quantize(Decimal("0.00001"))
    runs = {"B": ProcessingRun(made={9: made}, consumed={1: actual})}
    terms = {"B": BomTerms(output_item_no=9, tolerance=tolerance, inputs={1: (net, loss)})}
    (line,) = consumption_lines(runs, terms)
    assert line.beyond_tolerance == (abs(actual - expected) > tolerance * expected)
    assert (line.output_quantity, line.actual, line.input_item_no) == (made, actual, 1)
    # A BOM the period's processing named but the book no longer finds is not checked.
    assert consumption_lines(runs, {}) == []


days = st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31))


@given(st.lists(st.tuples(days, st.integers(0, 400)), min_size=1, max_size=12))
def test_periods_of_a_book_never_overlap(spans):
    periods: Pending[BookPeriods] = Pending(None, uuid4())
    claimed: list[tuple[date, date]] = []
    for start, length in spans:
        period = WriteOffPeriod(from_=start, to=start + timedelta(days=length))
        overlaps = any(a <= period.to and period.from_ <= b for a, b in claimed)
        if overlaps:
            with pytest.raises(Conflict) as refused:
                claim(periods, period, uuid4(), actor=SYSTEM, occurred_at=datetime.now(UTC))
            assert refused.value.rule == "period_overlaps"
        else:
            claim(periods, period, uuid4(), actor=SYSTEM, occurred_at=datetime.now(UTC))
            claimed.append((period.from_, period.to))
    assert [(p.start, p.end) for p in periods.current.periods] == claimed


@pytest.mark.parametrize(
    ("now", "over"),
    [
        ("2026-12-31T23:59:59+08:00", False),  # the last day is not over yet
        ("2027-01-01T00:00:00+08:00", True),  # China midnight: it is
        ("2026-12-31T16:00:00+00:00", True),  # the same instant in UTC
    ],
)
def test_a_period_is_over_at_china_midnight_after_its_last_day(now, over):
    period = WriteOffPeriod(from_=date(2026, 10, 1), to=date(2026, 12, 31))
    if over:
        check_period(period, datetime.fromisoformat(now))
    else:
        with pytest.raises(ValidationFailed) as refused:
            check_period(period, datetime.fromisoformat(now))
        assert refused.value.errors[0].loc == "$.period.to"


def test_figures_are_shown_without_trailing_zeros():
    places = Decimal("0.00001")
    assert [str(trimmed(Decimal(x), places)) for x in ("30.000000", "-0.000001", "2.50")] == [
        "30",
        "0",
        "2.5",
    ]


@pytest.mark.parametrize(
    ("start", "end", "loc"),
    [
        (date(1, 1, 1), date(1, 1, 2), "$.period.from"),
        (date(2026, 1, 1), date(9999, 12, 31), "$.period.to"),
        (date(1899, 12, 31), date(1900, 1, 1), "$.period.from"),
    ],
)
def test_a_period_beyond_the_calendar_is_refused_at_its_day(start, end, loc):
    with pytest.raises(ValidationFailed) as refused:
        check_period(WriteOffPeriod(from_=start, to=end), datetime(2026, 12, 6, tzinfo=UTC))
    assert refused.value.errors[0].loc == loc
