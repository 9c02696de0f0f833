"""The value checks (domain/value_checks.py): the median and MAD of an item's released prices,
the bounds that need no history, first declarations, and what never enters the history."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.events import Actor
from domain.risk import RiskRules
from domain.risk_rules import DEFAULT_RULES, UNIT_VALUE
from domain.unit_values import HISTORY_KEPT, UnitValueReleased, UnitValues
from domain.value_checks import LineRisk, UnitValueRule, mad, median, value_findings

D = Decimal
EUR = D("8.2437")  # November 2026's illustrative customs rate
NORMAL = [D("420.00")] * 3
STREAM = UUID(int=1)
OFFICER = Actor(name="officer", role="officer")
replace = msgspec.structs.replace


def line(
    price: str = "420.00",
    quantity: str = "10",
    *,
    line_no: int = 1,
    item_no: int = 1,
    history: list[Decimal] | None = None,
    rate: Decimal | None = EUR,
) -> LineRisk:
    return LineRisk(
        line_no=line_no,
        item_no=item_no,
        hs_code="8471300000",
        origin_country="DE",
        quantity=D(quantity),
        unit_price=D(price),
        history=NORMAL if history is None else history,
        cny_rate=rate,
    )


def test_median_and_mad_of_odd_and_even_histories() -> None:
    assert median([D(3), D(1), D(2)]) == 2
    assert median([D(4), D(1), D(3), D(2)]) == D("2.5")
    # Deviations from 3 of 1..5: 2, 1, 0, 1, 2 -> their median is 1.
    assert mad([D(n) for n in range(1, 6)], D(3)) == 1


def test_a_normal_line_with_a_history_has_no_findings() -> None:
    found = value_findings(UNIT_VALUE, [line()])
    assert (found.channel, found.reasons, found.outlier_lines) == ("green", [], [])


def test_the_issues_typo_goes_to_review_naming_the_figure_and_never_enters_the_history() -> None:
    found = value_findings(UNIT_VALUE, [line("999999999999999.9999", "1")])
    assert found.channel == "yellow"
    assert found.reasons == [
        "unit_price_absurd:line 1: 999999999999999.9999 (CNY 8243700000000000.00)"
        " over CNY 10000000000",
        "line_value_absurd:line 1: CNY 8243700000000000.00 over CNY 10000000000",
    ]
    assert found.outlier_lines == [1]


def test_a_price_a_hundred_times_off_the_median_is_absurd_though_within_the_bounds() -> None:
    # 100 x 420 = 42,000: above it absurd, at it only high (over 3 x the median).
    found = value_findings(UNIT_VALUE, [line("42000.01", "1")])
    assert found.reasons == ["unit_price_absurd:line 1: 42000.01 vs median 420.00, MAD 0.00"]
    assert found.outlier_lines == [1]
    high = value_findings(UNIT_VALUE, [line("42000.00", "1")])
    assert high.reasons == ["unit_value_high:line 1: 42000.00 vs median 420.00, MAD 0.00"]
    assert high.outlier_lines == []
    # A hundredth of the median is a misplaced decimal point, not a valuation question.
    assert value_findings(UNIT_VALUE, [line("4.19")]).outlier_lines == [1]
    assert value_findings(UNIT_VALUE, [line("4.20")]).outlier_lines == []


def test_an_absurd_quantity_goes_to_review_naming_it_whatever_the_price() -> None:
    found = value_findings(UNIT_VALUE, [line("0", "999999999999999", history=[])])
    assert found.channel == "yellow"
    assert found.reasons == ["quantity_absurd:line 1: 999999999999999 over 1000000000"]
    assert found.outlier_lines == [1]
    at_bound = value_findings(UNIT_VALUE, [line("0.0001", "1000000000", history=[])])
    assert (at_bound.channel, at_bound.outlier_lines) == ("green", [])


def test_an_absurd_figure_goes_to_review_even_when_the_rules_say_green() -> None:
    lenient = replace(UNIT_VALUE, channel="green")
    assert value_findings(lenient, [line("999999999999999.9999", "1")]).channel == "yellow"
    unusual = value_findings(lenient, [line("100.00")])
    assert (unusual.channel, unusual.outlier_lines) == ("green", [])
    assert unusual.reasons == ["unit_value_low:line 1: 100.00 vs median 420.00, MAD 0.00"]


def test_a_new_items_first_declarations_above_the_value_go_to_review() -> None:
    # 3,000 laptops at EUR 420: CNY 10,387,062.00, over CNY 10 million.
    young = [D("420.00")] * 2
    found = value_findings(UNIT_VALUE, [line(quantity="3000", history=young)])
    assert (found.channel, found.outlier_lines) == ("yellow", [])
    assert found.reasons == [
        "first_value_high:line 1: item 1 worth CNY 10387062.00 over CNY 10000000,"
        " 2 of 3 released before"
    ]
    assert value_findings(UNIT_VALUE, [line(quantity="2800", history=[])]).reasons == []
    # Once the history speaks, the item's value alone is no finding.
    assert value_findings(UNIT_VALUE, [line(quantity="3000")]).reasons == []


def test_splitting_a_new_item_into_lines_does_not_escape_the_first_value() -> None:
    halves = [line(quantity="1500", line_no=n, history=[]) for n in (1, 2)]
    other = line(quantity="1500", line_no=3, item_no=2, history=[])
    found = value_findings(UNIT_VALUE, [*halves, other])
    assert found.reasons == [
        "first_value_high:line 1: item 1 worth CNY 10387062.00 over CNY 10000000,"
        " 0 of 3 released before"
    ]


def test_a_currency_without_any_customs_rate_cannot_be_valued_so_it_is_reviewed() -> None:
    found = value_findings(UNIT_VALUE, [line(rate=None)])
    assert found.channel == "yellow"
    assert found.reasons == ["value_unrated:line 1: no customs exchange rate for the currency"]
    assert found.outlier_lines == []


def test_the_built_in_figures_are_the_rules_defaults_so_old_rule_sets_keep_their_meaning() -> None:
    bare = UnitValueRule(min_history=3, low_ratio=D("0.5"), high_ratio=D("3"), channel="yellow")
    assert bare == UNIT_VALUE
    # Published before issue #16: the same JSON, so the same digest, and it decodes.
    assert msgspec.json.encode(UNIT_VALUE) == msgspec.json.encode(bare)
    assert set(msgspec.to_builtins(UNIT_VALUE)) == {
        "min_history",
        "low_ratio",
        "high_ratio",
        "channel",
    }
    published = msgspec.json.encode(replace(DEFAULT_RULES, seed=""))
    assert msgspec.json.decode(published, type=RiskRules).unit_value == UNIT_VALUE


def test_the_history_keeps_the_last_hundred_released_prices() -> None:
    state = None
    for n in range(HISTORY_KEPT + 5):
        event = UnitValueReleased(
            originator_id=STREAM,
            originator_version=n + 1,
            actor=OFFICER,
            occurred_at=datetime(2026, 11, 20, tzinfo=UTC),
            declaration_id=UUID(int=n),
            line_no=1,
            unit_price=D(n),
        )
        state = event.apply(state)
    assert isinstance(state, UnitValues)
    assert state.released == HISTORY_KEPT + 5
    assert state.prices == [D(n) for n in range(5, HISTORY_KEPT + 5)]


# --- properties -------------------------------------------------------------------------------

normal_prices = st.decimals(min_value=400, max_value=440, places=2)
absurd_prices = st.one_of(
    st.decimals(min_value=50_000, max_value=D("999999999999999.9999"), places=4),
    st.decimals(min_value=0, max_value=D("3.99"), places=4),
)
# Rules under which prices of 400 to 440 are normal among themselves (440 / 400 = 1.1).
rules_speaking = st.builds(
    UnitValueRule,
    min_history=st.integers(1, 6),
    low_ratio=st.decimals(min_value=D("0.5"), max_value=D("0.9"), places=2),
    high_ratio=st.decimals(min_value=D("1.1"), max_value=3, places=2),
    channel=st.just("yellow"),
    spread_factor=st.decimals(min_value=0, max_value=5, places=1),
)


@settings(max_examples=200)
@given(
    rule=rules_speaking,
    history=st.lists(normal_prices, min_size=6, max_size=30),
    price=normal_prices,
    outlier=absurd_prices,
    at=st.integers(0, 30),
)
def test_one_absurd_observation_among_enough_normal_ones_changes_no_verdict(
    rule: UnitValueRule, history: list[Decimal], price: Decimal, outlier: Decimal, at: int
) -> None:
    assert len(history) >= rule.min_history
    poisoned = [*history[:at], outlier, *history[at:]]
    clean = value_findings(rule, [line(str(price), "1", history=history)])
    dirty = value_findings(rule, [line(str(price), "1", history=poisoned)])
    assert (dirty.channel, dirty.outlier_lines) == (clean.channel, clean.outlier_lines)
    # The centre stays among the normal prices, wherever the outlier lies.
    assert min(history) <= median(poisoned) <= max(history)


@given(
    rule=rules_speaking,
    history=st.lists(normal_prices, min_size=6, max_size=30),
    outlier=absurd_prices,
)
def test_an_absurd_price_against_enough_normal_ones_is_always_kept_out_of_the_history(
    rule: UnitValueRule, history: list[Decimal], outlier: Decimal
) -> None:
    found = value_findings(rule, [line(str(outlier), "1", history=history)])
    assert found.outlier_lines == [1]
    assert found.channel == "yellow"
    assert any(format(outlier, "f") in reason for reason in found.reasons)


def test_the_mean_would_have_moved_where_the_median_does_not() -> None:
    history = [*NORMAL, D("999999999999999.9999")]
    mean = sum(history) / len(history)
    assert mean > 1000 * D("420.00")  # the old rule: every normal price "low" against it
    assert median(history) == D("420.00")
