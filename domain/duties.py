"""Duties on second-line exit: customs value, tariff, consumption tax and import VAT in CNY."""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction
from typing import TYPE_CHECKING, Literal

import msgspec

from domain.errors import RefusedValue, ValidationFailed
from domain.values import Problems

if TYPE_CHECKING:  # only attributes are read, so domain.declaration may import this module
    from domain.declaration import DeclaredLine

Retail = Literal["within_limits", "full_tax"]
Mode = Literal["general", "retail_within_limits", "retail_full_tax", "not_assessable"]
MODES: dict[Retail | None, Mode] = {
    None: "general",
    "within_limits": "retail_within_limits",
    "full_tax": "retail_full_tax",
}

CENT = Decimal("0.01")
NOTHING = Decimal("0.00")
HS_PREFIX = re.compile(r"^\d{2,10}$")
RATE_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
CURRENCY = re.compile(r"^[A-Z]{3}$")
TAXES = ("tariff", "consumption_tax", "vat")
# Incoterms 2020: which costs to the place of import the invoice price leaves out.
ADD_FREIGHT = frozenset({"EXW", "FCA", "FAS", "FOB"})
ADD_INSURANCE = ADD_FREIGHT | {"CFR", "CPT"}
# GACC valuation rules (Order No. 213, art. 36 [verify]): insurance that cannot be determined
# or was not incurred counts as 3 per mille of the goods price plus freight.
DEEMED_INSURANCE = Decimal("0.003")
# Enough digits that no product of a 15-digit quantity, price and rate is ever cut short.
PRECISION = 100


def cents(amount: Decimal) -> Decimal:
    """Customs figures are in fen: 0.01 CNY, half-up."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def rate_month(on: date) -> str:
    return f"{on.year:04d}-{on.month:02d}"


def _check_rate(name: str, value: Decimal, *, below_one: bool) -> None:
    if not value.is_finite() or value < 0 or (below_one and value >= 1):
        raise RefusedValue(
            f"{name} must be a finite decimal in [0, 1), not {value}"
            if below_one
            else f"{name} must be a finite decimal at least 0, not {value}"
        )


def _digest(part: object) -> str:
    """SHA-256 (all 64 hex digits) of the canonical msgspec JSON of one part of the tables."""
    return hashlib.sha256(msgspec.json.encode(part, order="sorted")).hexdigest()


class TariffRate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Rates of one HS heading or subheading, with where the figures come from."""

    hs_prefix: str
    tariff_rate: Decimal
    vat_rate: Decimal
    consumption_rate: Decimal = Decimal(0)
    source: str

    def __post_init__(self) -> None:
        if not HS_PREFIX.match(self.hs_prefix):
            raise RefusedValue(f"hs_prefix {self.hs_prefix!r} must be 2 to 10 digits")
        _check_rate("tariff_rate", self.tariff_rate, below_one=False)
        _check_rate("vat_rate", self.vat_rate, below_one=True)
        # The composite price divides by (1 - rate): a rate of 1 has no assessable price.
        _check_rate("consumption_rate", self.consumption_rate, below_one=True)


class TariffTable(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The tariff in force from `valid_from` until the next table's date.

    `default_vat_rate` is the standard import VAT rate, for reference: a heading the table
    does not list has no known tariff rate, and such a line is refused, never assessed.
    """

    valid_from: date
    rates: list[TariffRate]
    default_vat_rate: Decimal = Decimal("0.13")

    def __post_init__(self) -> None:
        _check_rate("default_vat_rate", self.default_vat_rate, below_one=True)
        prefixes = [r.hs_prefix for r in self.rates]
        if len(set(prefixes)) != len(prefixes):
            raise RefusedValue(f"tariff table of {self.valid_from} lists a heading twice")

    def rate_of(self, hs_code: str) -> TariffRate | None:
        """The longest listed prefix of the 10-digit code: a subheading beats its heading."""
        by_prefix = {r.hs_prefix: r for r in self.rates}
        for length in range(len(hs_code), 1, -1):
            rate = by_prefix.get(hs_code[:length])
            if rate is not None:
                return rate
        return None

    def canonical(self) -> TariffTable:
        """The same table with its rates in prefix order, so listing order is not a version."""
        return msgspec.structs.replace(self, rates=sorted(self.rates, key=lambda r: r.hs_prefix))


class ExchangeRates(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Customs exchange rates of one calendar month: CNY per unit of each currency."""

    month: str
    to_cny: dict[str, Decimal]
    source: str

    def __post_init__(self) -> None:
        if not RATE_MONTH.match(self.month):
            raise RefusedValue(f"month {self.month!r} must be YYYY-MM")
        for code, rate in self.to_cny.items():
            if not CURRENCY.match(code):
                raise RefusedValue(f"{code!r} is not an ISO 4217 code")
            if not rate.is_finite() or rate <= 0:
                raise RefusedValue(f"the {code} rate must be greater than zero")

    def rate_of(self, currency: str) -> Decimal | None:
        return Decimal(1) if currency == "CNY" else self.to_cny.get(currency)


class DutyTables(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Everything an assessment depends on besides the declaration: all of it is data."""

    tariffs: list[TariffTable]
    exchange_rates: list[ExchangeRates]
    assessable: list[tuple[str, str]]
    # Tariff Law art. 32 / Import and Export Duties Regulations [verify]: a tax under CNY 50
    # on one declaration is not collected.
    waiver_cny: Decimal = Decimal("50")
    # Caiguanshui [2016] No. 18: retail imports within limits pay 70% of the statutory amount.
    retail_rate_factor: Decimal = Decimal("0.7")
    # A stocktake shortage of a lot is flagged (and bears a liability) when its duty reaches
    # this amount, converted at the month's customs rate (19 CFR 146.53: USD 100; the Chinese
    # figure is not published as such [verify]).
    shortage_threshold: Decimal = Decimal("100")
    shortage_threshold_currency: str = "USD"

    def __post_init__(self) -> None:
        days = [t.valid_from for t in self.tariffs]
        if len(set(days)) != len(days):
            raise RefusedValue("two tariff tables take effect on the same day")
        months = [r.month for r in self.exchange_rates]
        if len(set(months)) != len(months):
            raise RefusedValue("two exchange-rate tables for the same month")
        _check_rate("waiver_cny", self.waiver_cny, below_one=False)
        _check_rate("retail_rate_factor", self.retail_rate_factor, below_one=False)

    def tariff_on(self, day: date) -> TariffTable:
        """The table with the latest `valid_from` on or before `day`."""
        in_force = [t for t in self.tariffs if t.valid_from <= day]
        if not in_force:
            raise ValidationFailed.at("$.occurred_at", f"no tariff table in force on {day}")
        return max(in_force, key=lambda t: t.valid_from)

    def rates_for(self, month: str) -> ExchangeRates:
        for rates in self.exchange_rates:
            if rates.month == month:
                return rates
        raise ValidationFailed.at(
            "$.currency",
            f"no customs exchange rate for {month}: that month's rates are not published yet"
            " (`customs-ledger reference load exchange-rates FILE.csv` or POST"
            " /v1/reference/exchange-rates); a declaration in CNY needs none",
        )

    def cny_per_unit(self, currency: str, month: str) -> Decimal:
        """CNY per unit of `currency` in `month`: 1 for CNY whatever the month (a declaration
        in CNY needs no published rate), else the month's customs rate (422 at `$.currency`
        when the month or the currency has none)."""
        if currency == "CNY":
            return Decimal(1)
        rate = self.rates_for(month).rate_of(currency)
        if rate is None:
            raise ValidationFailed.at("$.currency", f"no customs exchange rate for {currency}")
        return rate

    def is_assessable(self, flow: str, trade_mode: str) -> bool:
        return (flow, trade_mode) in {tuple(pair) for pair in self.assessable}

    def versions(self, on: date) -> dict[str, str]:
        """Full SHA-256 hex digest of each part in force on `on` ("none" for a missing part).

        `assessable` also covers the waiver threshold and the retail factor: every figure
        that decides an assessment is in one of the three digests.
        """
        kept = _VERSIONS.get((id(self), on))
        if kept is not None and kept[0] is self:
            return dict(kept[1])
        digests = self._versions(on)
        if len(_VERSIONS) >= 256:
            _VERSIONS.clear()
        _VERSIONS[(id(self), on)] = (self, digests)  # the tables are frozen
        return dict(digests)

    def _versions(self, on: date) -> dict[str, str]:
        try:
            tariff = _digest(self.tariff_on(on).canonical())
        except ValidationFailed:
            tariff = "none"
        try:
            exchange_rates = _digest(self.rates_for(rate_month(on)))
        except ValidationFailed:
            exchange_rates = "none"
        rules = {
            "assessable": sorted({tuple(pair) for pair in self.assessable}),
            "waiver_cny": self.waiver_cny,
            "retail_rate_factor": self.retail_rate_factor,
        }
        return {"tariff": tariff, "exchange_rates": exchange_rates, "assessable": _digest(rules)}


# The digests of each DutyTables object by day (every submission asks its server's tables for
# the day). The object is kept with them, so a later object at the same id() is never mistaken.
_VERSIONS: dict[tuple[int, date], tuple[DutyTables, dict[str, str]]] = {}


class LineDuty(msgspec.Struct, frozen=True, kw_only=True):
    """The duties of one dutiable line in CNY; rates are those the line was assessed at."""

    line_no: int
    customs_value_cny: Decimal
    tariff_rate: Decimal
    tariff: Decimal
    consumption_rate: Decimal
    consumption_tax: Decimal
    vat_rate: Decimal
    vat: Decimal


class Assessment(msgspec.Struct, frozen=True, kw_only=True):
    """The outcome of assessing one declaration: a fact to record, never to recompute.

    `lines` holds the dutiable (bonded) lines only; each tax total is the sum of its line
    amounts. `exchange_rate` is 0 when nothing was assessed.
    """

    assessable: bool
    mode: Mode
    currency: str
    exchange_rate: Decimal
    rate_month: str
    customs_value_cny: Decimal
    lines: list[LineDuty]
    tariff: Decimal
    consumption_tax: Decimal
    vat: Decimal
    total: Decimal
    waived: list[str]
    tables: dict[str, str]


def assess(
    *,
    flow: str,
    trade_mode: str,
    currency: str,
    incoterm: str | None,
    freight: Decimal | None,
    insurance: Decimal | None,
    lines: Sequence[DeclaredLine],
    retail: Retail | None,
    on: date,
    tables: DutyTables,
) -> Assessment:
    """Assess a declaration on day `on` (its acceptance date in China) against `tables`.

    `retail` is the caller's decision on a retail list (the annual limit is a write-side
    fact): None assesses general trade, as for a list over the limits.
    """
    month = rate_month(on)
    versions = tables.versions(on)
    if not tables.is_assessable(flow, trade_mode):
        # Goods entering a zone from abroad, or moving between zones, stay duty-suspended.
        return _summed("not_assessable", currency, Decimal(0), month, [], [], versions)
    mode = MODES[retail]
    # Domestic lines entered by second_line_in were duty-paid or export-rebated already.
    # Any other line is presumed foreign: bonded status is never lost by omission.
    dutiable = [n for n, line in enumerate(lines) if line.goods_status != "domestic"]
    if not dutiable:
        return _summed(mode, currency, Decimal(0), month, [], [], versions)
    with localcontext() as context:
        context.prec = PRECISION
        context.rounding = ROUND_HALF_UP
        rates = _rates_of(tables.tariff_on(on), lines, dutiable)
        exchange_rate = tables.cny_per_unit(currency, month)
        goods = [line.quantity * line.unit_price for line in lines]
        invoice = sum(goods, Decimal(0))
        if retail is None:
            added = _freight_and_insurance(incoterm, freight, insurance, invoice)
        else:
            # Caiguanshui [2016] No. 18: a retail import's dutiable price is the actual
            # transaction price, goods plus freight plus insurance, whatever the incoterm:
            # the order amount (domain/retail.py holds the order to it).
            added = (freight or Decimal(0)) + (insurance or Decimal(0))
        # Freight and insurance belong to every line, domestic ones too, in proportion to
        # value; only the bonded lines' shares are dutiable.
        shares = apportion(cents((invoice + added) * exchange_rate), goods)
        waived: list[str] = []
        if retail is not None:
            duties = _retail_duties(lines, dutiable, shares, rates, mode, tables.retail_rate_factor)
        else:
            duties = [_line_duty(lines[n].line_no, shares[n], rates[n]) for n in dutiable]
            duties, waived = _waive_small_taxes(duties, tables.waiver_cny)
        return _summed(mode, currency, exchange_rate, month, duties, waived, versions)


def _summed(
    mode: Mode,
    currency: str,
    exchange_rate: Decimal,
    month: str,
    duties: list[LineDuty],
    waived: list[str],
    versions: dict[str, str],
) -> Assessment:
    """The declaration's figures are the sums of its lines' figures, never recomputed."""
    tariff, consumption, vat = (sum((getattr(d, tax) for d in duties), NOTHING) for tax in TAXES)
    return Assessment(
        assessable=mode != "not_assessable",
        mode=mode,
        currency=currency,
        exchange_rate=exchange_rate,
        rate_month=month,
        customs_value_cny=sum((d.customs_value_cny for d in duties), NOTHING),
        lines=duties,
        tariff=tariff,
        consumption_tax=consumption,
        vat=vat,
        total=tariff + consumption + vat,
        waived=waived,
        tables=versions,
    )


def _rates_of(
    table: TariffTable, lines: Sequence[DeclaredLine], dutiable: list[int]
) -> dict[int, TariffRate]:
    """The rate of every dutiable line; an unlisted heading is refused, never guessed."""
    problems = Problems()
    rates = {}
    for n in dutiable:
        rate = table.rate_of(lines[n].hs_code)
        if rate is None:
            problems.add(
                f"$.lines[{n}].hs_code",
                f"no tariff rate for HS {lines[n].hs_code} in the tariff in force (from"
                f" {table.valid_from}); customs publish rates with POST /v1/reference/tariff",
            )
        else:
            rates[n] = rate
    problems.raise_if_any()
    return rates


def _freight_and_insurance(
    incoterm: str | None, freight: Decimal | None, insurance: Decimal | None, goods: Decimal
) -> Decimal:
    """What the customs value (CIF: cost, insurance and freight to the place of import) adds
    to the invoice price, in the declaration's currency.

    Prices on CIF, CIP, D-terms or no incoterm already reach the place of import: the
    declared figures are used as given, and freight or insurance sent with them is not added
    a second time.
    """
    added = Decimal(0)
    if incoterm in ADD_FREIGHT:
        if freight is None:
            # Customs would substitute the usual cost of carriage: not ours to guess.
            raise ValidationFailed.at(
                "$.freight", f"a {incoterm} price needs the freight to the place of import"
            )
        added += freight
    if incoterm in ADD_INSURANCE:
        if insurance is None:
            insurance = cents((goods + added) * DEEMED_INSURANCE)
        added += insurance
    return added


def apportion(total: Decimal, weights: Sequence[Decimal]) -> list[Decimal]:
    """Split `total` (in cents) over lines in proportion to `weights`.

    Each line takes the rounded cumulative share minus the rounded share before it, so the
    last line takes the rounding remainder, the parts sum to `total` exactly, and no part is
    ever negative (a remainder taken only on the last line could be). Lines of no value share
    equally.
    """
    if not weights:
        return []
    whole = sum(weights, Decimal(0))
    if whole == 0:
        weights, whole = [Decimal(1)] * len(weights), Decimal(len(weights))
    parts, running, before = [], Decimal(0), NOTHING
    for weight in weights:
        running += weight
        upto = cents(total * running / whole)
        parts.append(upto - before)
        before = upto
    return parts


def line_duty(line_no: int, value: Decimal, rate: TariffRate) -> LineDuty:
    """The statutory taxes of `value` CNY of goods at `rate`, as a general-trade line (no
    waiver: that is per declaration); a shortage's liability is assessed so."""
    with localcontext() as context:
        context.prec = PRECISION
        context.rounding = ROUND_HALF_UP
        return _line_duty(line_no, value, rate)


def _line_duty(line_no: int, value: Decimal, rate: TariffRate) -> LineDuty:
    """Statutory taxes of one general-trade line, each rounded to the fen on the line;
    declaration totals add them."""
    return _statutory(line_no, value, rate, rate.tariff_rate)


def _retail_duties(
    lines: Sequence[DeclaredLine],
    dutiable: list[int],
    shares: list[Decimal],
    rates: dict[int, TariffRate],
    mode: Mode,
    factor: Decimal,
) -> list[LineDuty]:
    """The taxes of a retail list: each computed exactly on the lines' shares of the order
    amount and rounded once for the list, then apportioned to the lines by their exact
    amounts (so a one-rate list pays exactly the formula on its order amount, and the lines
    add up to it).

    Within limits (Caiguanshui [2016] No. 18) the tariff rate is 0% and consumption tax and
    VAT are 70% of the statutory amounts: consumption tax = 70% x amount / (1 - c) x c; VAT =
    70% x (amount + the statutory consumption tax) x v. A single indivisible item over CNY
    5,000 (Caiguanshui [2018] No. 49) pays the full tariff, consumption tax and VAT.
    """
    within = mode == "retail_within_limits"
    # Exact rational arithmetic: dividing by (1 - c) rarely terminates, and a list's total of
    # truncated line figures can fall just under half a fen where the exact total is on it.
    exact: list[dict[str, Fraction]] = []
    for n in dutiable:
        value, rate = Fraction(shares[n]), rates[n]
        tariff = value * (Fraction(0) if within else Fraction(rate.tariff_rate))
        c = Fraction(rate.consumption_rate)
        consumption = (value + tariff) / (1 - c) * c
        vat = (value + tariff + consumption) * Fraction(rate.vat_rate)
        if within:
            consumption, vat = consumption * Fraction(factor), vat * Fraction(factor)
        exact.append({"tariff": tariff, "consumption_tax": consumption, "vat": vat})
    parts = {
        tax: apportion(
            _fen(sum((e[tax] for e in exact), Fraction(0))),
            [Decimal(e[tax].numerator) / Decimal(e[tax].denominator) for e in exact],
        )
        for tax in TAXES
    }
    return [
        LineDuty(
            line_no=lines[n].line_no,
            customs_value_cny=shares[n],
            tariff_rate=Decimal(0) if within else rates[n].tariff_rate,
            tariff=parts["tariff"][i],
            consumption_rate=rates[n].consumption_rate,
            consumption_tax=parts["consumption_tax"][i],
            vat_rate=rates[n].vat_rate,
            vat=parts["vat"][i],
        )
        for i, n in enumerate(dutiable)
    ]


def _fen(amount: Fraction) -> Decimal:
    """An exact non-negative amount rounded to the fen, half up."""
    fen = math.floor(amount * 100 + Fraction(1, 2))
    return (Decimal(fen) / 100).quantize(CENT)


def _statutory(line_no: int, value: Decimal, rate: TariffRate, tariff_rate: Decimal) -> LineDuty:
    tariff = cents(value * tariff_rate)
    c = rate.consumption_rate
    # Ad valorem consumption tax on the composite assessable price, which includes the tax
    # itself: (customs value + tariff) / (1 - consumption tax rate).
    consumption = cents((value + tariff) / (1 - c) * c)
    # Import VAT on customs value + tariff + consumption tax.
    vat = cents((value + tariff + consumption) * rate.vat_rate)
    return LineDuty(
        line_no=line_no,
        customs_value_cny=value,
        tariff_rate=tariff_rate,
        tariff=tariff,
        consumption_rate=c,
        consumption_tax=consumption,
        vat=vat,
        vat_rate=rate.vat_rate,
    )


def _waive_small_taxes(duties: list[LineDuty], waiver: Decimal) -> tuple[list[LineDuty], list[str]]:
    """A tax whose declaration total is under the waiver is not collected at all.

    The waiver is per tax and per declaration (general trade only, never retail lists). A
    waived tax is set to 0 on every line so the lines still add up to the totals; a tax that
    is 0 anyway is not named as waived.
    """
    waived = [tax for tax in TAXES if 0 < sum((getattr(d, tax) for d in duties), NOTHING) < waiver]
    if waived:
        duties = [msgspec.structs.replace(d, **dict.fromkeys(waived, NOTHING)) for d in duties]
    return duties, waived
