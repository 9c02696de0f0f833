"""The risk engine: the draw, the class floors and ceilings, watched goods and origins, versions."""

from __future__ import annotations

import ast
import hashlib
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.errors import ValidationFailed
from domain.reference import CREDIT_CLASSES
from domain.risk import (
    CHANNELS,
    ClassPolicy,
    LineRisk,
    RiskOutcome,
    RiskRules,
    UnitValueRule,
    WatchedGoods,
    WatchedOrigin,
    assess_risk,
    draw_for,
)
from domain.risk_rules import DEFAULT_RULES

D = Decimal
ID = uuid.UUID("0b5e3c52-6f0a-4d43-9d38-2a8f4f0c1e11")
replace = msgspec.structs.replace


def policy(base: str = "green", rate: str = "0", selected: str = "red") -> ClassPolicy:
    return ClassPolicy(base_channel=base, selection_rate=D(rate), selected_channel=selected)


def rules(**changes: object) -> RiskRules:
    """Small rules for the examples: nobody is drawn unless a test says so."""
    base = RiskRules(
        seed="test-seed",
        classes={
            "advanced_certified": policy(),
            "regular": policy(),
            "dishonest": policy("yellow"),
        },
        watched_goods=[
            WatchedGoods(hs_prefix="93", channel="red", reason="arms"),
            WatchedGoods(hs_prefix="9304", channel="yellow", reason="other arms"),
            WatchedGoods(hs_prefix="2402", channel="yellow", reason="tobacco"),
        ],
        watched_origins=[
            WatchedOrigin(country="KP", channel="red", reason="sanctions"),
            WatchedOrigin(country="DE", channel="yellow", reason="wine fraud", hs_prefix="2204"),
        ],
        unit_value=UnitValueRule(
            min_history=3, low_ratio=D("0.5"), high_ratio=D("3"), channel="yellow"
        ),
    )
    return replace(base, **changes)


def line(
    hs_code: str = "0901210000",
    *,
    line_no: int = 1,
    origin: str | None = "BR",
    price: str = "420.00",
    history: tuple[str, ...] = (),
    quantity: str = "10",
) -> LineRisk:
    return LineRisk(
        line_no=line_no,
        item_no=line_no,
        hs_code=hs_code,
        origin_country=origin,
        quantity=D(quantity),
        unit_price=D(price),
        history=[D(p) for p in history],
        cny_rate=D("8.2437"),
    )


def assess(
    r: RiskRules | None = None,
    credit_class: str = "regular",
    *lines: LineRisk,
    declaration_id: uuid.UUID = ID,
) -> RiskOutcome:
    return assess_risk(
        r or rules(), credit_class=credit_class, declaration_id=declaration_id, lines=lines
    )


def ids(n: int) -> list[uuid.UUID]:
    return [uuid.uuid5(uuid.NAMESPACE_URL, f"declaration/{i}") for i in range(n)]


# --- the draw ---------------------------------------------------------------------------------


def test_the_draw_is_what_an_auditor_recomputes_from_the_documented_recipe() -> None:
    digest = hashlib.sha256(f"xian-pilot-2026:{ID}".encode()).digest()
    n = int.from_bytes(digest[:8], "big")
    # floor(n / 2**64) to six decimals, in integers: exact, no float anywhere.
    expected = D(n * 10**6 // 2**64) / D(10**6)
    assert draw_for("xian-pilot-2026", ID) == expected.quantize(D("0.000001"))
    assert draw_for("xian-pilot-2026", ID) == draw_for("xian-pilot-2026", ID)


def test_the_draw_differs_per_declaration_id_and_per_seed() -> None:
    draws = [draw_for("seed", i) for i in ids(1000)]
    # 1000 draws from a million values: a handful of birthday collisions at most.
    assert len(set(draws)) > 990
    assert draw_for("seed", ID) != draw_for("other seed", ID)


@given(seed=st.text(min_size=1, max_size=40), declaration_id=st.uuids())
def test_the_draw_lies_in_zero_to_one_with_six_decimals(
    seed: str, declaration_id: uuid.UUID
) -> None:
    draw = draw_for(seed, declaration_id)
    assert D(0) <= draw < D(1)
    assert draw.as_tuple().exponent == -6


@pytest.mark.parametrize("rate", ["0.005", "0.05", "0.5"])
def test_selection_frequency_over_20000_declarations_is_close_to_the_rate(rate: str) -> None:
    n, p = 20_000, D(rate)
    r = rules(classes={"regular": policy(rate=rate)})
    selected = sum(assess(r, "regular", declaration_id=i).selected for i in ids(n))
    # Five binomial standard deviations: for 0.05 that is 1000 +/- 154.
    tolerance = 5 * (n * p * (1 - p)).sqrt()
    assert abs(selected - n * p) <= tolerance


def test_a_drawn_declaration_goes_to_the_selected_channel_and_says_why() -> None:
    r = rules(classes={"regular": policy(rate="0.05")})
    drawn = next(i for i in ids(1000) if draw_for("test-seed", i) < D("0.05"))
    outcome = assess(r, "regular", declaration_id=drawn)
    assert outcome.selected and outcome.channel == "red"
    assert outcome.reasons == [f"random_selection:{outcome.draw}<0.05"]


def test_a_rate_of_zero_never_selects_and_a_rate_of_one_always_does() -> None:
    never = rules(classes={"regular": policy(rate="0")})
    always = rules(classes={"regular": policy(rate="1")})
    assert not any(assess(never, "regular", declaration_id=i).selected for i in ids(200))
    assert all(assess(always, "regular", declaration_id=i).selected for i in ids(200))


# --- classes ----------------------------------------------------------------------------------

channels = st.sampled_from(CHANNELS)
rates = st.decimals(min_value=0, max_value=1, places=3)
policies = st.builds(
    ClassPolicy, base_channel=channels, selection_rate=rates, selected_channel=channels
)
aeo_policies = st.builds(
    ClassPolicy,
    base_channel=st.sampled_from(["green", "yellow"]),
    selection_rate=rates,
    selected_channel=channels,
)
chapters = st.sampled_from(["93", "24", "30", "09", "22"])
headings = st.sampled_from(["02", "04"])
prefixes = st.one_of(chapters, st.builds(str.__add__, chapters, headings))
hs_codes = st.builds(
    lambda c, h, rest: c + h + rest, chapters, headings, st.from_regex(r"\A\d{6}\Z")
)
countries = st.sampled_from(["KP", "DE", "US", "BR"])
reasons = st.sampled_from(["why", "because", "listed"])
watched_goods = st.lists(
    st.builds(WatchedGoods, hs_prefix=prefixes, channel=channels, reason=reasons),
    unique_by=lambda w: w.hs_prefix,
    max_size=5,
)
watched_origins = st.lists(
    st.builds(
        WatchedOrigin,
        country=countries,
        channel=channels,
        reason=reasons,
        hs_prefix=st.none() | prefixes,
    ),
    unique_by=lambda w: w.key,
    max_size=4,
)
unit_rules = st.builds(
    UnitValueRule,
    min_history=st.integers(1, 5),
    low_ratio=st.decimals(min_value=D("0.01"), max_value=1, places=2),
    high_ratio=st.decimals(min_value=1, max_value=5, places=2),
    channel=channels,
)
all_rules = st.builds(
    RiskRules,
    seed=st.text(min_size=1, max_size=20).filter(str.strip),
    classes=st.fixed_dictionaries(
        {"advanced_certified": aeo_policies, "regular": policies, "dishonest": policies}
    ),
    watched_goods=watched_goods,
    watched_origins=watched_origins,
    unit_value=unit_rules,
)
prices = st.decimals(min_value=0, max_value=10_000, places=4)
lines_without_numbers = st.builds(
    LineRisk,
    line_no=st.just(0),
    item_no=st.integers(1, 3),
    hs_code=hs_codes,
    origin_country=st.none() | countries,
    quantity=st.decimals(min_value="0.00001", max_value=10**15, places=5),
    unit_price=prices,
    history=st.lists(prices, max_size=6),
    cny_rate=st.none() | st.sampled_from([D(1), D("8.2437"), D("0.04749")]),
)
line_lists = st.lists(lines_without_numbers, max_size=6).map(
    lambda ls: [replace(x, line_no=no) for no, x in enumerate(ls, start=1)]
)


@given(r=all_rules, lines=line_lists, declaration_id=st.uuids())
def test_dishonest_enterprises_never_get_green_whatever_the_rules_say(
    r: RiskRules, lines: list[LineRisk], declaration_id: uuid.UUID
) -> None:
    outcome = assess_risk(r, credit_class="dishonest", declaration_id=declaration_id, lines=lines)
    assert outcome.channel != "green"
    assert outcome.reasons[0] == "credit_class:dishonest"


def _never_red(r: RiskRules) -> RiskRules:
    """The same rules with every rule and the AEO draw capped at yellow."""

    def cap(channel: str) -> str:
        return "yellow" if channel == "red" else channel

    aeo = r.classes["advanced_certified"]
    return replace(
        r,
        classes=r.classes
        | {"advanced_certified": replace(aeo, selected_channel=cap(aeo.selected_channel))},
        watched_goods=[replace(w, channel=cap(w.channel)) for w in r.watched_goods],
        watched_origins=[replace(w, channel=cap(w.channel)) for w in r.watched_origins],
        unit_value=replace(r.unit_value, channel=cap(r.unit_value.channel)),
    )


@given(r=all_rules, lines=line_lists, declaration_id=st.uuids())
def test_advanced_certified_enterprises_get_red_only_by_a_rule_or_the_draw(
    r: RiskRules, lines: list[LineRisk], declaration_id: uuid.UUID
) -> None:
    outcome = assess(r, "advanced_certified", *lines, declaration_id=declaration_id)
    if outcome.channel == "red":
        assert any(not reason.startswith("credit_class:") for reason in outcome.reasons)
    # Take away every red that a rule or the draw can give, and nothing else makes it red.
    capped = assess(_never_red(r), "advanced_certified", *lines, declaration_id=declaration_id)
    assert capped.channel != "red"


def test_an_advanced_certified_class_with_a_red_base_is_refused() -> None:
    with pytest.raises(ValueError, match="advanced_certified must not have a red base_channel"):
        rules(classes={"advanced_certified": policy("red")})


def test_a_clean_declaration_of_a_regular_enterprise_is_green_with_no_reasons() -> None:
    outcome = assess(None, "regular", line())
    assert outcome == RiskOutcome(
        channel="green",
        reasons=[],
        draw=draw_for("test-seed", ID),
        selected=False,
        rules_version=rules().version(),
    )


def test_a_class_with_a_stricter_base_says_so() -> None:
    outcome = assess(rules(classes={"regular": policy("yellow")}), "regular", line())
    assert (outcome.channel, outcome.reasons) == ("yellow", ["credit_class:regular"])


def test_an_unknown_credit_class_is_refused_at_the_declarant() -> None:
    with pytest.raises(ValidationFailed) as e:
        assess(None, "seriously_dishonest", line())
    assert [(err.loc, err.msg) for err in e.value.errors] == [
        ("$.declarant", "unknown credit class")
    ]


# --- watched goods and origins ----------------------------------------------------------------


def test_watched_goods_raise_the_channel_with_their_reason() -> None:
    outcome = assess(None, "regular", line("9302000000"), line("2402200000", line_no=2))
    assert outcome.channel == "red"
    assert outcome.reasons == ["watched_goods:93:arms", "watched_goods:2402:tobacco"]


def test_the_longest_watched_prefix_applies_to_a_line() -> None:
    # 9304 refines chapter 93: yellow for that heading, red for the rest of the chapter.
    outcome = assess(None, "advanced_certified", line("9304000000"))
    assert (outcome.channel, outcome.reasons) == ("yellow", ["watched_goods:9304:other arms"])


def test_two_lines_under_one_watched_rule_give_one_reason() -> None:
    outcome = assess(None, "regular", line("2402100000"), line("2402200000", line_no=2))
    assert outcome.reasons == ["watched_goods:2402:tobacco"]


def test_a_watched_origin_raises_the_channel_for_every_good() -> None:
    outcome = assess(None, "regular", line(origin="KP"))
    assert (outcome.channel, outcome.reasons) == ("red", ["watched_origin:KP:sanctions"])


def test_an_origin_watched_for_some_goods_leaves_the_others_alone() -> None:
    wine = assess(None, "regular", line("2204210000", origin="DE"))
    assert (wine.channel, wine.reasons) == ("yellow", ["watched_origin:DE:2204:wine fraud"])
    laptops = assess(None, "regular", line("8471300000", origin="DE"))
    assert (laptops.channel, laptops.reasons) == ("green", [])
    assert assess(None, "regular", line(origin=None)).reasons == []


# --- unit values ------------------------------------------------------------------------------


NORMAL = ("420.00", "420.00", "420.00")


def test_a_low_unit_price_needs_min_history_before_it_counts() -> None:
    young = assess(None, "regular", line(price="210.00", history=NORMAL[:2]))
    assert (young.channel, young.reasons) == ("green", [])
    known = assess(None, "regular", line(price="209.99", history=NORMAL))
    assert known.channel == "yellow"
    assert known.reasons == ["unit_value_low:line 1: 209.99 vs median 420.00, MAD 0.00"]
    # Half the median exactly is not yet below half of it.
    assert assess(None, "regular", line(price="210.00", history=NORMAL)).reasons == []


def test_a_high_unit_price_is_an_anomaly_too() -> None:
    outcome = assess(None, "regular", line(price="1260.01", history=NORMAL * 2))
    assert outcome.reasons == ["unit_value_high:line 1: 1260.01 vs median 420.00, MAD 0.00"]
    assert assess(None, "regular", line(price="1260.00", history=NORMAL * 2)).reasons == []


def test_the_history_is_judged_by_its_median_so_one_typo_among_normal_prices_changes_nothing() -> (
    None
):
    poisoned = (*NORMAL, "999999999999999.9999")
    # The mean of these is 250000000000315.0000: every normal price was "low" against it.
    outcome = assess(None, "regular", line(price="420.00", history=poisoned))
    assert (outcome.channel, outcome.reasons) == ("green", [])
    low = assess(None, "regular", line(price="209.99", history=poisoned))
    assert low.reasons == ["unit_value_low:line 1: 209.99 vs median 420.00, MAD 0.00"]


def test_a_price_outside_the_ratios_but_within_the_items_own_spread_is_not_unusual() -> None:
    # Prices that genuinely vary (several models under one item): median 300, MAD 100.
    varied = ("100", "200", "300", "400", "500")
    assert assess(None, "regular", line(price="140", history=varied)).reasons == []
    # 3 MADs below the median is 0: only the absurd test still speaks below that.
    assert assess(None, "regular", line(price="1000", history=varied)).reasons == [
        "unit_value_high:line 1: 1000 vs median 300, MAD 100"
    ]


# --- order and replay -------------------------------------------------------------------------


def test_reasons_come_class_goods_origins_unit_values_then_draw() -> None:
    r = rules(classes={"dishonest": policy("yellow", rate="1")})
    outcome = assess(
        r,
        "dishonest",
        line("8471300000", line_no=3, origin="KP", price="40", history=("100",) * 3),
        line("9302000000", line_no=1),
        line("2402200000", line_no=2),
    )
    assert outcome.reasons == [
        "credit_class:dishonest",
        "watched_goods:93:arms",
        "watched_goods:2402:tobacco",
        "watched_origin:KP:sanctions",
        "unit_value_low:line 3: 40 vs median 100, MAD 0",
        f"random_selection:{outcome.draw}<1",
    ]


@given(
    r=all_rules,
    lines=line_lists,
    declaration_id=st.uuids(),
    credit_class=st.sampled_from(CREDIT_CLASSES),
    data=st.data(),
)
@settings(max_examples=50)
def test_the_same_data_gives_the_same_outcome_in_any_line_order(
    r: RiskRules,
    lines: list[LineRisk],
    declaration_id: uuid.UUID,
    credit_class: str,
    data: st.DataObject,
) -> None:
    first = assess(r, credit_class, *lines, declaration_id=declaration_id)
    shuffled = data.draw(st.permutations(lines))
    assert assess(r, credit_class, *shuffled, declaration_id=declaration_id) == first
    # As the event stores it and a replay reads it back.
    encoded = msgspec.json.encode(first)
    assert msgspec.json.decode(encoded, type=RiskOutcome) == first


# --- versions ---------------------------------------------------------------------------------

R = rules()
ARMS_YELLOW = replace(R.watched_goods[0], channel="yellow")
ARMS_GUNS = replace(R.watched_goods[0], reason="guns")
CHANGES = {
    "seed": replace(R, seed="another seed"),
    "a class rate": replace(R, classes=R.classes | {"regular": policy(rate="0.01")}),
    "a class base": replace(R, classes=R.classes | {"regular": policy("yellow")}),
    "a class drawn channel": replace(R, classes=R.classes | {"regular": policy(selected="yellow")}),
    "a new class": replace(R, classes=R.classes | {"certified": policy()}),
    "a watched channel": replace(R, watched_goods=[*R.watched_goods[1:], ARMS_YELLOW]),
    "a watched reason": replace(R, watched_goods=[*R.watched_goods[1:], ARMS_GUNS]),
    "a watched entry gone": replace(R, watched_goods=R.watched_goods[1:]),
    "an origin's goods": replace(
        R, watched_origins=[replace(R.watched_origins[0], hs_prefix="93"), R.watched_origins[1]]
    ),
    "min history": replace(R, unit_value=replace(R.unit_value, min_history=4)),
    "low ratio": replace(R, unit_value=replace(R.unit_value, low_ratio=D("0.4"))),
    "high ratio": replace(R, unit_value=replace(R.unit_value, high_ratio=D("4"))),
    "unit channel": replace(R, unit_value=replace(R.unit_value, channel="red")),
    "spread factor": replace(R, unit_value=replace(R.unit_value, spread_factor=D("2"))),
    "absurd ratio": replace(R, unit_value=replace(R.unit_value, absurd_ratio=D("50"))),
    "max unit price": replace(R, unit_value=replace(R.unit_value, max_unit_price_cny=D(10**9))),
    "max quantity": replace(R, unit_value=replace(R.unit_value, max_quantity=D(10**8))),
    "max value": replace(R, unit_value=replace(R.unit_value, max_value_cny=D(10**9))),
    "first value": replace(R, unit_value=replace(R.unit_value, first_value_cny=D(10**6))),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_the_version_changes_when_any_rule_changes(change: str) -> None:
    assert CHANGES[change].version() != R.version()


def test_the_version_is_a_full_sha256_and_ignores_listing_order_and_round_trips() -> None:
    assert len(R.version()) == 64 and int(R.version(), 16) >= 0
    assert rules().version() == R.version()
    reordered = replace(
        R,
        watched_goods=list(reversed(R.watched_goods)),
        watched_origins=list(reversed(R.watched_origins)),
        classes=dict(reversed(R.classes.items())),
    )
    assert reordered.version() == R.version()
    decoded = msgspec.json.decode(msgspec.json.encode(R), type=RiskRules)
    assert decoded.version() == R.version()


# --- rules as data ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: policy("blue"), "base_channel 'blue'"),
        (lambda: policy(rate="1.5"), "selection_rate"),
        (lambda: policy(rate="NaN"), "selection_rate"),
        (lambda: WatchedGoods(hs_prefix="930", channel="red", reason="x"), "hs_prefix"),
        (lambda: WatchedGoods(hs_prefix="93", channel="red", reason=" "), "reason"),
        (lambda: WatchedOrigin(country="XX", channel="red", reason="x"), "ISO 3166"),
        (lambda: replace(R.unit_value, min_history=0), "min_history"),
        (lambda: replace(R.unit_value, low_ratio=D("1.5")), "low_ratio"),
        (lambda: replace(R.unit_value, high_ratio=D("0.9")), "high_ratio"),
        (lambda: replace(R.unit_value, min_history=101), "min_history"),
        (lambda: replace(R.unit_value, spread_factor=D("-1")), "spread_factor"),
        (lambda: replace(R.unit_value, absurd_ratio=D("2")), "absurd_ratio"),
        (lambda: replace(R.unit_value, absurd_ratio=D("NaN")), "absurd_ratio"),
        (lambda: replace(R.unit_value, max_quantity=D(0)), "max_quantity"),
        (lambda: replace(R.unit_value, max_value_cny=D("Infinity")), "max_value_cny"),
        (lambda: replace(R.unit_value, first_value_cny=D(10**11)), "first_value_cny"),
        (lambda: replace(R, watched_goods=R.watched_goods * 2), "share an hs_prefix"),
        (lambda: replace(R, seed=" "), "seed"),
    ],
)
def test_invalid_rules_are_refused(make: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()


def test_a_rules_file_with_a_bad_figure_is_refused_with_its_path() -> None:
    raw = msgspec.to_builtins(R)
    raw["classes"]["regular"]["selection_rate"] = "2"
    with pytest.raises(msgspec.ValidationError, match=r"selection_rate.*\$\.classes"):
        msgspec.json.decode(msgspec.json.encode(raw), type=RiskRules)


def test_the_default_rules_cover_every_credit_class_and_keep_their_promises() -> None:
    classes = DEFAULT_RULES.classes
    assert set(classes) == set(CREDIT_CLASSES)
    assert classes["advanced_certified"].selection_rate < classes["regular"].selection_rate
    assert classes["regular"].selection_rate < classes["dishonest"].selection_rate
    assert classes["dishonest"].base_channel != "green"
    # No public seed: the ledger gives the rules its secret one (ledger/selection_seed.py).
    assert DEFAULT_RULES.seed == ""
    with pytest.raises(ValueError, match="no selection seed"):
        assess(DEFAULT_RULES, "regular", line("0901210000"))
    seeded = replace(DEFAULT_RULES, seed="a ledger's secret")
    coffee = assess(seeded, "regular", line("0901210000"), declaration_id=ids(1)[0])
    assert not any(r.startswith("watched_goods") for r in coffee.reasons)
    pistol = assess(seeded, "advanced_certified", line("9302000000"))
    assert pistol.channel == "red" and pistol.reasons[0].startswith("watched_goods:93:")


def test_the_risk_modules_use_no_clock_no_randomness_and_no_io() -> None:
    banned = {"random", "secrets", "time", "datetime", "os", "pathlib", "io", "socket"}
    for name in ("risk.py", "risk_rules.py", "value_checks.py"):
        tree = ast.parse((Path(__file__).parents[2] / "domain" / name).read_text())
        nodes = list(ast.walk(tree))
        modules = {a.name for n in nodes if isinstance(n, ast.Import) for a in n.names}
        modules |= {n.module or "" for n in nodes if isinstance(n, ast.ImportFrom)}
        assert not {m.split(".")[0] for m in modules} & banned, name
