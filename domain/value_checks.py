"""The risk engine's value checks: a line's unit price against its item's released history,
and configured bounds on its price, quantity and value.

The history's centre is its median and its spread the median absolute deviation (MAD): one
typo among many prices moves neither, where it moved the mean without limit (issue #16: one
price of 999999999999999.9999 sent every later normal price to document review). A figure
beyond a bound or far outside the history is absurd: it goes at least to document review,
whatever the rules say, and its line never enters the history (docs/decisions/0023).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal, localcontext

import msgspec

from domain.errors import RefusedValue
from domain.unit_values import HISTORY_KEPT

# ASYCUDA's lanes: green = release, yellow = document review, red = physical inspection.
CHANNELS = ("green", "yellow", "red")
# An absurd figure is never released unreviewed, whatever a rules file says.
ABSURD_FLOOR = "yellow"
# Enough digits for 15-digit quantities times 15-digit prices times a rate, exactly.
PRECISION = 60
CENT = Decimal("0.01")


def _plain(value: Decimal) -> str:
    """Plain notation for reasons: 0.005, never 5E-3."""
    return format(value, "f")


def _worse(a: str, b: str) -> str:
    return max(a, b, key=CHANNELS.index)


def _positive(name: str, value: Decimal) -> None:
    if not value.is_finite() or value <= 0:
        raise RefusedValue(f"{name} must be a decimal above 0, not {value}")


class UnitValueRule(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True
):
    """The value checks' figures (defaults and their reasoning: domain/risk_rules.py).

    Fields after `channel` came with issue #16; their defaults are the built-in figures, so a
    rule set published before decodes to the same checks and keeps its digest.
    """

    # Released observations of the item (in the currency) before its history speaks.
    min_history: int
    # A price below median x low_ratio or above median x high_ratio is unusual ...
    low_ratio: Decimal
    high_ratio: Decimal
    # ... the channel such findings give (absurd ones: at least ABSURD_FLOOR).
    channel: str
    # ... when it also lies more than spread_factor MADs from the median.
    spread_factor: Decimal = Decimal("3")
    # Above median x absurd_ratio or below median / absurd_ratio: absurd.
    absurd_ratio: Decimal = Decimal("100")
    # Bounds that need no history: a unit price and a line's value in CNY, a quantity in the
    # item's legal unit. Beyond any of them: absurd.
    max_unit_price_cny: Decimal = Decimal("10000000000")
    max_quantity: Decimal = Decimal("1000000000")
    max_value_cny: Decimal = Decimal("10000000000")
    # Until the history speaks, an item worth more than this in one declaration is reviewed.
    first_value_cny: Decimal = Decimal("10000000")

    def __post_init__(self) -> None:
        if not 1 <= self.min_history <= HISTORY_KEPT:
            raise RefusedValue(f"min_history must be from 1 to {HISTORY_KEPT}")
        if not self.low_ratio.is_finite() or not Decimal(0) < self.low_ratio <= Decimal(1):
            raise RefusedValue(f"low_ratio must be in (0, 1], not {self.low_ratio}")
        if not self.high_ratio.is_finite() or self.high_ratio < Decimal(1):
            raise RefusedValue(f"high_ratio must be at least 1, not {self.high_ratio}")
        if self.channel not in CHANNELS:
            raise RefusedValue(f"channel {self.channel!r} is not one of {', '.join(CHANNELS)}")
        if not self.spread_factor.is_finite() or self.spread_factor < 0:
            raise RefusedValue(f"spread_factor must not be negative, not {self.spread_factor}")
        _positive("absurd_ratio", self.absurd_ratio)
        if self.absurd_ratio < self.high_ratio or self.absurd_ratio * self.low_ratio < 1:
            raise RefusedValue("absurd_ratio must lie beyond high_ratio and 1 / low_ratio")
        for name in ("max_unit_price_cny", "max_quantity", "max_value_cny", "first_value_cny"):
            _positive(name, getattr(self, name))
        if self.first_value_cny > self.max_value_cny:
            raise RefusedValue("first_value_cny must not exceed max_value_cny")


class LineRisk(msgspec.Struct, frozen=True, kw_only=True):
    """What the engine needs of one declaration line, supplied by the caller: the item's
    released unit prices in the declaration's currency before this declaration (oldest
    first), and CNY per unit of that currency (None: no customs rate was ever published)."""

    line_no: int
    item_no: int
    hs_code: str
    origin_country: str | None
    quantity: Decimal
    unit_price: Decimal
    history: list[Decimal]
    cny_rate: Decimal | None


@dataclass
class ValueFindings:
    """The value checks' verdict: the channel, the reasons, and the lines that never enter
    the history."""

    channel: str = "green"
    reasons: list[str] = field(default_factory=list)
    outlier_lines: list[int] = field(default_factory=list)

    def unusual(self, rule: UnitValueRule, reason: str) -> None:
        self.channel = _worse(self.channel, rule.channel)
        if reason not in self.reasons:
            self.reasons.append(reason)

    def absurd(self, rule: UnitValueRule, line_no: int, reason: str) -> None:
        self.unusual(rule, reason)
        self.channel = _worse(self.channel, ABSURD_FLOOR)
        if line_no not in self.outlier_lines:
            self.outlier_lines.append(line_no)


def median(values: Sequence[Decimal]) -> Decimal:
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    with localcontext(prec=PRECISION):
        return (ordered[middle - 1] + ordered[middle]) / 2


def mad(values: Sequence[Decimal], centre: Decimal) -> Decimal:
    """The median absolute deviation from `centre`: the spread one outlier cannot inflate."""
    with localcontext(prec=PRECISION):
        return median([abs(v - centre) for v in values])


def _price_finding(rule: UnitValueRule, line: LineRisk, f: ValueFindings) -> None:
    """The price against its history, once the history speaks (a free item has no ratio)."""
    if len(line.history) < rule.min_history:
        return
    centre = median(line.history)
    if centre <= 0:
        return
    price, n = line.unit_price, line.line_no
    with localcontext(prec=PRECISION):
        spread = mad(line.history, centre)
        against = f"vs median {_plain(centre)}, MAD {_plain(spread)}"
        if price > centre * rule.absurd_ratio or price * rule.absurd_ratio < centre:
            f.absurd(rule, n, f"unit_price_absurd:line {n}: {_plain(price)} {against}")
            return
        if abs(price - centre) <= rule.spread_factor * spread:
            return
        if price < centre * rule.low_ratio:
            f.unusual(rule, f"unit_value_low:line {n}: {_plain(price)} {against}")
        elif price > centre * rule.high_ratio:
            f.unusual(rule, f"unit_value_high:line {n}: {_plain(price)} {against}")


def _bounds_findings(rule: UnitValueRule, line: LineRisk, f: ValueFindings) -> bool:
    """The bounds that need no history (a price or value with no rate to judge it is
    reviewed); whether the price itself is absurd."""
    n = line.line_no
    if line.quantity > rule.max_quantity:
        over = f"over {_plain(rule.max_quantity)}"
        f.absurd(rule, n, f"quantity_absurd:line {n}: {_plain(line.quantity)} {over}")
    if line.cny_rate is None:
        f.unusual(rule, f"value_unrated:line {n}: no customs exchange rate for the currency")
        f.channel = _worse(f.channel, ABSURD_FLOOR)
        return False
    with localcontext(prec=PRECISION):
        price_cny = (line.unit_price * line.cny_rate).quantize(CENT)
        value_cny = (line.quantity * line.unit_price * line.cny_rate).quantize(CENT)
    if price_cny > rule.max_unit_price_cny:
        figure = f"{_plain(line.unit_price)} (CNY {_plain(price_cny)})"
        bound = f"over CNY {_plain(rule.max_unit_price_cny)}"
        f.absurd(rule, n, f"unit_price_absurd:line {n}: {figure} {bound}")
    if value_cny > rule.max_value_cny:
        bound = f"over CNY {_plain(rule.max_value_cny)}"
        f.absurd(rule, n, f"line_value_absurd:line {n}: CNY {_plain(value_cny)} {bound}")
    return price_cny > rule.max_unit_price_cny


def _first_value_findings(rule: UnitValueRule, lines: list[LineRisk], f: ValueFindings) -> None:
    """An item whose history does not speak yet, worth more than `first_value_cny` over the
    declaration's lines of it (splitting it into lines changes nothing): document review."""
    firsts: dict[int, LineRisk] = {}
    worth: dict[int, Decimal] = {}
    for line in lines:
        if len(line.history) >= rule.min_history or line.cny_rate is None:
            continue
        firsts.setdefault(line.item_no, line)
        with localcontext(prec=PRECISION):
            value = line.quantity * line.unit_price * line.cny_rate
            worth[line.item_no] = worth.get(line.item_no, Decimal(0)) + value
    for item_no, first in firsts.items():
        with localcontext(prec=PRECISION):
            value = worth[item_no].quantize(CENT)
        if value > rule.first_value_cny:
            known = f"{len(first.history)} of {rule.min_history} released before"
            figure = f"item {item_no} worth CNY {_plain(value)}"
            bound = f"over CNY {_plain(rule.first_value_cny)}"
            f.unusual(rule, f"first_value_high:line {first.line_no}: {figure} {bound}, {known}")


def value_findings(rule: UnitValueRule, lines: Sequence[LineRisk]) -> ValueFindings:
    """Every value check on every line, in line-number order (each reason once)."""
    ordered = sorted(lines, key=lambda item: item.line_no)
    found = ValueFindings()
    for line in ordered:
        if not _bounds_findings(rule, line, found):
            _price_finding(rule, line, found)
    _first_value_findings(rule, ordered, found)
    return found
