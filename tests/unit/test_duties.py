"""The duties engine: worked examples with their arithmetic, the waiver, the tables, properties."""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal, localcontext

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.declaration import DeclaredLine
from domain.duties import (
    PRECISION,
    DutyTables,
    ExchangeRates,
    TariffRate,
    TariffTable,
    apportion,
    assess,
)
from domain.duty_tables import ASSESSABLE, DEFAULT_TABLES
from domain.errors import ValidationFailed

D = Decimal
ON = date(2026, 11, 27)
LAPTOP, COFFEE, WINE, COSMETICS = "8471300000", "0901210000", "2204210000", "3304990000"

LAPTOPS = TariffRate(hs_prefix="847130", tariff_rate=D("0"), vat_rate=D("0.13"), source="t")
RATES = [
    LAPTOPS,
    TariffRate(hs_prefix="090121", tariff_rate=D("0.15"), vat_rate=D("0.13"), source="t"),
    TariffRate(
        hs_prefix="220421",
        tariff_rate=D("0.14"),
        consumption_rate=D("0.10"),
        vat_rate=D("0.13"),
        source="t",
    ),
    TariffRate(
        hs_prefix="330499",
        tariff_rate=D("0.01"),
        consumption_rate=D("0.15"),
        vat_rate=D("0.13"),
        source="t",
    ),
    TariffRate(hs_prefix="4901", tariff_rate=D("0"), vat_rate=D("0.09"), source="t"),
]
NOVEMBER = ExchangeRates(
    month="2026-11", to_cny={"EUR": D("7.5"), "USD": D("7.1")}, source="given for the tests"
)
TABLES = DutyTables(
    tariffs=[TariffTable(valid_from=date(2026, 1, 1), rates=RATES)],
    exchange_rates=[NOVEMBER],
    assessable=ASSESSABLE,
)


def line(
    hs_code: str = LAPTOP,
    quantity: str = "1",
    unit_price: str = "4000",
    *,
    line_no: int = 1,
    goods_status: str | None = "bonded",
) -> DeclaredLine:
    return DeclaredLine(
        line_no=line_no,
        item_no=line_no,
        hs_code=hs_code,
        description="goods",
        quantity=D(quantity),
        unit="C62",
        unit_price=D(unit_price),
        origin_country=None,
        destination_item_no=None,
        goods_status=goods_status,  # type: ignore[arg-type]
    )


def duties(*lines: DeclaredLine, **overrides):  # type: ignore[no-untyped-def]
    given = {
        "flow": "second_line_out",
        "trade_mode": "0110",
        "currency": "CNY",
        "incoterm": None,
        "freight": None,
        "insurance": None,
        "lines": list(lines),
        "retail": None,
        "on": ON,
        "tables": TABLES,
    }
    return assess(**(given | overrides))


# Worked examples


def test_a_4000_cny_retail_laptop_order_within_limits_pays_70_percent_of_the_vat_only():
    a = duties(line(unit_price="4000"), trade_mode="1210", retail="within_limits")
    assert a.mode == "retail_within_limits"
    assert a.tariff == D("0.00")  # the tariff rate is set to 0% within limits
    assert a.vat == D("364.00")  # 4000 x 13% x 70% = 364.00
    assert a.total == D("364.00")


@pytest.mark.parametrize("incoterm", [None, "FOB", "CIF", "DAP"])
def test_a_1000_cny_retail_order_with_50_freight_pays_vat_on_1050_whatever_the_incoterm(incoterm):
    # Caiguanshui [2016] No. 18: the dutiable price is the transaction price including
    # freight and insurance: 1,050.00 x 13% x 70% = 95.55 (no deemed insurance, no incoterm).
    a = duties(
        line(unit_price="1000"),
        trade_mode="1210",
        retail="within_limits",
        incoterm=incoterm,
        freight=D("50.00"),
    )
    assert a.customs_value_cny == D("1050.00")
    assert (a.tariff, a.vat, a.total) == (D("0.00"), D("95.55"), D("95.55"))


def test_a_retail_list_splits_each_tax_over_its_lines_and_the_lines_add_up():
    # 3 x 333.33 + 0.01 freight = 1,000.00: VAT 1,000.00 x 13% x 70% = 91.00 for the list,
    # never 3 x 30.33 = 90.99 from rounding each line first.
    lines = [line(unit_price="333.33", line_no=n) for n in (1, 2, 3)]
    a = duties(*lines, trade_mode="1210", retail="within_limits", freight=D("0.01"))
    assert a.vat == D("91.00")
    assert sorted(d.vat for d in a.lines) == [D("30.33"), D("30.33"), D("30.34")]


def test_a_single_6000_cny_laptop_over_the_transaction_limit_pays_the_full_vat():
    a = duties(line(unit_price="6000"), trade_mode="1210", retail="full_tax")
    assert a.mode == "retail_full_tax"
    assert a.vat == D("780.00")  # 6000 x 13% = 780.00
    assert a.total == D("780.00")


def test_1000_laptops_fob_add_freight_and_insurance_to_reach_the_cif_value():
    a = duties(
        line(quantity="1000", unit_price="420.00"),
        currency="EUR",
        incoterm="FOB",
        freight=D("1200.00"),
        insurance=D("80.00"),
    )
    # CIF = 1000 x 420.00 + 1200.00 + 80.00 = EUR 421,280.00; x 7.5 = CNY 3,159,600.00
    assert a.exchange_rate == D("7.5") and a.rate_month == "2026-11"
    assert a.customs_value_cny == D("3159600.00")
    # 8471.30 is 0% under the ITA: nothing to pay, so nothing is waived either.
    assert a.tariff == D("0.00") and a.waived == []
    assert a.vat == D("410748.00")  # 3,159,600.00 x 13% = 410,748.00
    assert a.total == D("410748.00")


def test_cfr_adds_only_the_insurance_and_cif_adds_nothing():
    cfr = duties(line(unit_price="1000"), incoterm="CFR", freight=D("50"), insurance=D("10"))
    assert cfr.customs_value_cny == D("1010.00")  # 1000 + 10 insurance; freight is in the price
    cif = duties(line(unit_price="1000"), incoterm="CIF", freight=D("50"), insurance=D("10"))
    assert cif.customs_value_cny == D("1000.00")  # the declared CIF price is used as given


def test_an_fob_price_without_insurance_counts_3_per_mille_of_price_and_freight():
    a = duties(line(unit_price="10000"), incoterm="FOB", freight=D("500"))
    # insurance = (10,000 + 500) x 0.3% = 31.50; CIF = 10,531.50
    assert a.customs_value_cny == D("10531.50")


def test_an_fob_price_without_freight_is_refused_rather_than_guessed():
    with pytest.raises(ValidationFailed) as e:
        duties(line(), incoterm="FOB", insurance=D("10"))
    assert e.value.errors[0].loc == "$.freight"


def test_roasted_coffee_pays_tariff_and_vat_on_value_plus_tariff():
    a = duties(line(COFFEE, "2000", "12.50"), currency="USD", incoterm="CIF")
    # value = 2000 x 12.50 = USD 25,000 x 7.1 = CNY 177,500.00
    assert a.customs_value_cny == D("177500.00")
    assert a.tariff == D("26625.00")  # 177,500 x 15%
    assert a.vat == D("26536.25")  # (177,500 + 26,625) x 13% = 204,125 x 13%
    assert a.total == D("53161.25")  # 26,625.00 + 26,536.25


def test_wine_pays_consumption_tax_on_the_composite_assessable_price():
    a = duties(line(WINE, "1200", "8.00"), currency="EUR", incoterm="CIF")
    # value = 1200 x 8.00 = EUR 9,600 x 7.5 = CNY 72,000.00
    assert a.tariff == D("10080.00")  # 72,000 x 14%
    assert a.consumption_tax == D("9120.00")  # (72,000 + 10,080) / (1 - 10%) x 10%
    assert a.vat == D("11856.00")  # (72,000 + 10,080 + 9,120) x 13% = 91,200 x 13%
    assert a.total == D("31056.00")
    [wine] = a.lines
    assert (wine.tariff_rate, wine.consumption_rate, wine.vat_rate) == (
        D("0.14"),
        D("0.10"),
        D("0.13"),
    )


def test_books_pay_the_9_percent_vat_rate():
    a = duties(line("4901990000", "100", "60"))
    assert a.vat == D("540.00")  # 100 x 60 = 6,000 x 9%


def test_retail_cosmetics_within_limits_agree_with_the_comprehensive_rate():
    a = duties(
        line(COSMETICS, "1", "1000"), flow="direct_in", trade_mode="9610", retail="within_limits"
    )
    # statutory at a 0% tariff: consumption tax 1000 / (1 - 15%) x 15% = 176.47,
    # VAT (1000 + 176.47) x 13% = 152.94; at 70%: 123.53 and 107.06
    assert a.tariff == D("0.00")
    assert a.consumption_tax == D("123.53")
    assert a.vat == D("107.06")
    # comprehensive rate (15% + 13%) / (1 - 15%) x 70% = 23.0588...%: 1000 x it = 230.59
    comprehensive = (D("0.15") + D("0.13")) / (1 - D("0.15")) * D("0.7")
    assert a.total == (D(1000) * comprehensive).quantize(D("0.01")) == D("230.59")


# The CNY 50 waiver


def test_a_general_trade_vat_of_49_99_is_waived():
    a = duties(line(unit_price="384.54"))  # 384.54 x 13% = 49.9902 -> 49.99
    assert a.vat == D("0.00") and a.lines[0].vat == D("0.00")
    assert a.waived == ["vat"]
    assert a.total == D("0.00")


def test_a_general_trade_vat_of_exactly_50_00_is_due():
    a = duties(line(unit_price="384.62"))  # 384.62 x 13% = 50.0006 -> 50.00
    assert a.vat == D("50.00") and a.waived == []


def test_the_waiver_looks_at_each_tax_on_its_own():
    a = duties(line(COFFEE, "1", "300"))
    # tariff 300 x 15% = 45.00 (waived); VAT (300 + 45) x 13% = 44.85 (waived as well)
    assert a.waived == ["tariff", "vat"] and a.total == D("0.00")
    b = duties(line(COFFEE, "1", "340"))
    # tariff 340 x 15% = 51.00 (due); VAT (340 + 51) x 13% = 50.83 (due)
    assert (b.tariff, b.vat, b.waived) == (D("51.00"), D("50.83"), [])


def test_retail_lists_never_get_the_waiver():
    a = duties(line(unit_price="10"), flow="direct_in", trade_mode="9610", retail="within_limits")
    assert a.vat == D("0.91")  # 10 x 13% x 70% = 0.91, collected
    assert a.waived == []


# What is not dutiable


def test_domestic_lines_pay_nothing():
    a = duties(line(unit_price="6000", goods_status="domestic"))
    assert a.assessable and a.mode == "general"
    assert (a.lines, a.total) == ([], D("0.00"))


def test_freight_is_shared_with_domestic_lines_and_only_the_bonded_share_is_dutiable():
    a = duties(
        line(unit_price="3000", line_no=1),
        line(unit_price="1000", line_no=2, goods_status="domestic"),
        incoterm="FOB",
        freight=D("400"),
        insurance=D("0"),
    )
    # the bonded line is 3/4 of the invoice: 3000 + 3/4 x 400 = 3,300.00
    assert [d.line_no for d in a.lines] == [1]
    assert a.customs_value_cny == D("3300.00")
    assert a.vat == D("429.00")  # 3,300 x 13%


def test_goods_entering_a_zone_from_abroad_pay_nothing():
    a = duties(line(unit_price="6000", goods_status=None), flow="first_line_in")
    assert not a.assessable and a.mode == "not_assessable"
    assert a.total == D("0.00")
    assert a.tables == TABLES.versions(ON)  # the versions are recorded all the same


def test_the_assessable_pairs_are_data():
    tables = msgspec.structs.replace(TABLES, assessable=[("second_line_out", "9610")])
    assert duties(line(), tables=tables).mode == "not_assessable"


# The tables


def test_a_heading_the_table_does_not_list_is_refused_at_its_line():
    with pytest.raises(ValidationFailed) as e:
        duties(line(LAPTOP, line_no=1), line("9503000000", line_no=2))
    [error] = e.value.errors
    assert error.loc == "$.lines[1].hs_code"
    assert "no tariff rate for HS 9503000000 in the tariff in force" in error.msg


def test_an_unknown_heading_on_the_first_line_names_lines_0():
    with pytest.raises(ValidationFailed) as e:
        duties(line("9503000000"))
    assert e.value.errors[0].loc == "$.lines[0].hs_code"


def test_a_month_without_customs_rates_is_refused_in_a_foreign_currency_naming_the_month():
    with pytest.raises(ValidationFailed) as e:
        duties(line(), on=date(2026, 12, 1), currency="EUR")
    assert e.value.errors[0].loc == "$.currency"
    msg = e.value.errors[0].msg
    assert "no customs exchange rate for 2026-12" in msg
    assert "customs-ledger reference load exchange-rates" in msg


def test_a_declaration_in_cny_needs_no_published_rate():
    """Issue #15 item 2: with the clock past the last published month, a CNY declaration was
    refused for want of an exchange rate it does not use."""
    month_without = date(2026, 12, 1)
    with pytest.raises(ValidationFailed):
        TABLES.rates_for("2026-12")
    a = duties(line(), on=month_without)
    assert a.exchange_rate == D(1)
    assert a == duties(line(), on=month_without, currency="CNY")
    assert TABLES.cny_per_unit("CNY", "2026-12") == D(1)


@given(
    st.sampled_from(["CNY", "EUR", "USD", "CHF", "RUB"]), st.sampled_from(["2026-11", "2026-12"])
)
def test_cny_per_unit_is_1_for_cny_and_the_months_rate_or_422_otherwise(currency, month):
    try:
        published = TABLES.rates_for(month).rate_of(currency)
    except ValidationFailed:
        published = None
    if currency == "CNY":
        assert TABLES.cny_per_unit(currency, month) == D(1)
    elif published is None:
        with pytest.raises(ValidationFailed) as e:
            TABLES.cny_per_unit(currency, month)
        assert e.value.errors[0].loc == "$.currency"
    else:
        assert TABLES.cny_per_unit(currency, month) == published


def test_a_currency_missing_from_the_month_is_refused_and_cny_is_always_1():
    with pytest.raises(ValidationFailed) as e:
        duties(line(), currency="CHF")
    assert e.value.errors[0].loc == "$.currency"
    assert duties(line()).exchange_rate == D(1)


def test_the_longest_listed_prefix_wins():
    table = TariffTable(
        valid_from=date(2026, 1, 1),
        rates=[
            TariffRate(hs_prefix="84", tariff_rate=D("0.05"), vat_rate=D("0.13"), source="t"),
            LAPTOPS,
        ],
    )
    assert table.rate_of(LAPTOP) == LAPTOPS
    assert table.rate_of("8450110000").tariff_rate == D("0.05")  # type: ignore[union-attr]
    assert table.rate_of("9503000000") is None


def test_the_tariff_in_force_is_the_latest_on_or_before_the_day():
    old = TariffTable(valid_from=date(2025, 1, 1), rates=[])
    new = TariffTable(valid_from=date(2026, 7, 1), rates=[LAPTOPS])
    tables = msgspec.structs.replace(TABLES, tariffs=[new, old])
    assert tables.tariff_on(date(2026, 6, 30)) is old
    assert tables.tariff_on(date(2026, 7, 1)) is new
    with pytest.raises(ValidationFailed):
        tables.tariff_on(date(2024, 12, 31))


def test_versions_change_when_a_rate_changes_and_not_otherwise():
    before = TABLES.versions(ON)
    assert set(before) == {"tariff", "exchange_rates", "assessable"}
    assert all(len(v) == 64 for v in before.values())  # full SHA-256 hex digests
    reordered = msgspec.structs.replace(
        TABLES,
        tariffs=[TariffTable(valid_from=date(2026, 1, 1), rates=RATES[::-1])],
        assessable=ASSESSABLE[::-1],
    )
    assert reordered.versions(ON) == before
    eur = ExchangeRates(month="2026-11", to_cny={"EUR": D("7.6"), "USD": D("7.1")}, source="x")
    rerated = msgspec.structs.replace(TABLES, exchange_rates=[eur])
    assert rerated.versions(ON) == before | {
        "exchange_rates": rerated.versions(ON)["exchange_rates"]
    }
    assert rerated.versions(ON)["exchange_rates"] != before["exchange_rates"]
    dearer = msgspec.structs.replace(LAPTOPS, tariff_rate=D("0.05"))
    retariffed = msgspec.structs.replace(
        TABLES, tariffs=[TariffTable(valid_from=date(2026, 1, 1), rates=[dearer, *RATES[1:]])]
    )
    assert retariffed.versions(ON)["tariff"] != before["tariff"]
    assert retariffed.versions(ON)["exchange_rates"] == before["exchange_rates"]
    stricter = msgspec.structs.replace(TABLES, waiver_cny=D("0"))
    assert stricter.versions(ON)["assessable"] != before["assessable"]


def test_a_table_in_force_another_day_does_not_change_the_version():
    december = ExchangeRates(month="2026-12", to_cny={"EUR": D("9")}, source="x")
    more = msgspec.structs.replace(TABLES, exchange_rates=[NOVEMBER, december])
    assert more.versions(ON) == TABLES.versions(ON)


def test_the_tables_survive_a_json_round_trip_with_their_versions():
    decoded = msgspec.json.decode(msgspec.json.encode(DEFAULT_TABLES), type=DutyTables)
    assert decoded.versions(ON) == DEFAULT_TABLES.versions(ON)


@pytest.mark.parametrize(
    "bad",
    [
        {"hs_prefix": "8"},
        {"tariff_rate": "-0.1"},
        {"tariff_rate": "NaN"},
        {"vat_rate": "1"},
        {"consumption_rate": "1"},  # the composite price would divide by zero
    ],
)
def test_a_tariff_rate_out_of_range_is_refused_when_loaded(bad):
    good = {"hs_prefix": "220421", "tariff_rate": "0.14", "vat_rate": "0.13", "source": "x"}
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(msgspec.json.encode(good | bad), type=TariffRate)


def test_the_default_tables_carry_the_headings_with_their_sources():
    table = DEFAULT_TABLES.tariff_on(ON)
    laptops, wine = table.rate_of(LAPTOP), table.rate_of(WINE)
    assert (
        laptops is not None
        and laptops.tariff_rate == 0
        and "Information Technology" in (laptops.source)
    )
    assert wine is not None and (wine.tariff_rate, wine.consumption_rate) == (
        D("0.14"),
        D("0.10"),
    )
    assert all(rate.source for rate in table.rates)
    for month in ("2026-10", "2026-11", "2026-12"):
        rates = DEFAULT_TABLES.rates_for(month)
        assert set(rates.to_cny) == {"EUR", "USD", "GBP", "JPY", "HKD", "CNY"}
        assert "[verify" in rates.source
    assert DEFAULT_TABLES.is_assessable("second_line_out", "1239")
    assert not DEFAULT_TABLES.is_assessable("first_line_in", "0110")


# Properties

headings = st.sampled_from([LAPTOP, COFFEE, WINE, COSMETICS, "4901990000"])
lines_st = st.lists(
    st.builds(
        line,
        hs_code=headings,
        quantity=st.integers(1, 10**6).map(str),
        unit_price=st.decimals(min_value=0, max_value=10**6, places=4).map(str),
        goods_status=st.sampled_from(["bonded", "bonded", "domestic", None]),
    ),
    min_size=1,
    max_size=6,
).map(lambda ls: [msgspec.structs.replace(x, line_no=n + 1) for n, x in enumerate(ls)])
money = st.none() | st.decimals(min_value=0, max_value=10**6, places=2)
declarations = st.fixed_dictionaries(
    {
        "lines": lines_st,
        "currency": st.sampled_from(["CNY", "EUR", "USD"]),
        "incoterm": st.sampled_from([None, "FOB", "EXW", "CFR", "CIF", "DAP"]),
        "freight": st.decimals(min_value=0, max_value=10**5, places=2),
        "insurance": money,
        "trade_mode": st.sampled_from(["0110", "5034", "9610", "1210"]),
        "retail": st.sampled_from([None, "within_limits", "full_tax"]),
    }
)


def _amounts(a) -> list[Decimal]:  # type: ignore[no-untyped-def]
    per_line = [
        x for d in a.lines for x in (d.customs_value_cny, d.tariff, d.consumption_tax, d.vat)
    ]
    return [a.customs_value_cny, a.tariff, a.consumption_tax, a.vat, a.total, *per_line]


@settings(max_examples=200, deadline=None)
@given(declarations)
def test_duties_are_never_negative_and_exact_to_the_fen(declaration):
    a = duties(**declaration)
    for amount in _amounts(a):
        assert isinstance(amount, Decimal)
        assert amount >= 0 and amount.as_tuple().exponent == -2


@settings(max_examples=200, deadline=None)
@given(declarations)
def test_the_total_is_the_sum_of_its_parts_and_the_lines_add_up(declaration):
    a = duties(**declaration)
    assert a.total == a.tariff + a.consumption_tax + a.vat
    for tax in ("tariff", "consumption_tax", "vat"):
        assert getattr(a, tax) == sum((getattr(d, tax) for d in a.lines), D("0.00"))
    assert a.customs_value_cny == sum((d.customs_value_cny for d in a.lines), D("0.00"))


@settings(max_examples=200, deadline=None)
@given(
    total=st.decimals(min_value=0, max_value=10**9, places=2),
    weights=st.lists(st.decimals(min_value=0, max_value=10**6, places=4), min_size=1, max_size=8),
)
def test_apportioned_line_values_sum_to_the_customs_value_exactly(total, weights):
    parts = apportion(total, weights)
    assert sum(parts) == total
    assert all(p >= 0 and p.as_tuple().exponent == -2 for p in parts)
    whole = sum(weights)
    for part, weight in zip(parts, weights, strict=True):
        if whole:  # each line is within a fen of its exact share
            assert abs(part - total * weight / whole) <= D("0.01")


def _formula(amount: Decimal, rate: TariffRate, factor: Decimal) -> dict[str, Decimal]:
    """The retail taxes of `amount` under one rate, exactly (no rounding): Caiguanshui [2016]
    No. 18 within limits (factor 0.7, tariff 0) or [2018] No. 49 in full (factor 1).

    Dividing by (1 - c) rarely terminates, so "exactly" needs far more than the default 28
    digits: at 28, a consumption tax just under half a fen (1467.46499...) read as 1467.4650
    and rounded the wrong way (a case Hypothesis found). The engine computes at `PRECISION`
    digits; so does this."""
    with localcontext() as context:
        context.prec = PRECISION
        tariff = amount * (rate.tariff_rate if factor == 1 else D(0))
        c, v = rate.consumption_rate, rate.vat_rate
        consumption = (amount + tariff) / (1 - c) * c
        vat = (amount + tariff + consumption) * v
        return {"tariff": tariff, "consumption_tax": consumption * factor, "vat": vat * factor}


one_rate_lists = st.sampled_from(RATES[:4]).flatmap(
    lambda rate: st.tuples(
        st.just(rate),
        st.lists(
            st.builds(
                line,
                hs_code=st.just(rate.hs_prefix.ljust(10, "0")),
                quantity=st.integers(1, 50).map(str),
                unit_price=st.decimals(min_value=0, max_value=2000, places=4).map(str),
            ),
            min_size=1,
            max_size=5,
        ).map(lambda ls: [msgspec.structs.replace(x, line_no=n + 1) for n, x in enumerate(ls)]),
    )
)
cents_st = st.decimals(min_value=0, max_value=500, places=2)


@settings(max_examples=200, deadline=None)
@given(one_rate_lists, cents_st, cents_st, st.sampled_from(["within_limits", "full_tax"]))
def test_a_retail_list_pays_exactly_the_formula_on_its_order_amount(
    listed, freight, insurance, mode
):
    """Whatever the split into lines, a one-rate list pays each tax on the order amount (goods
    + freight + insurance) rounded once, to the fen; the lines add up to it."""
    rate, lines = listed
    a = duties(*lines, trade_mode="1210", retail=mode, freight=freight, insurance=insurance)
    goods = sum((x.quantity * x.unit_price for x in lines), D(0))
    amount = (goods + freight + insurance).quantize(D("0.01"), ROUND_HALF_UP)
    assert a.customs_value_cny == amount
    exact = _formula(amount, rate, D("0.7") if mode == "within_limits" else D(1))
    for tax in ("tariff", "consumption_tax", "vat"):
        assert getattr(a, tax) == exact[tax].quantize(D("0.01"), ROUND_HALF_UP), tax
        assert getattr(a, tax) == sum((getattr(d, tax) for d in a.lines), D("0.00"))


@settings(max_examples=200, deadline=None)
@given(lines_st.map(lambda ls: [msgspec.structs.replace(x, goods_status="bonded") for x in ls]))
def test_within_limits_pays_70_percent_of_the_statutory_consumption_tax_and_vat(lines):
    # Within limits the tariff rate is set to 0%, so the statutory figures are those of a
    # full-tax assessment against the same table with every tariff rate at 0: each tax of
    # the list is 70% of the statutory one, to within the fen of each rounding.
    zero = TariffTable(
        valid_from=date(2026, 1, 1),
        rates=[msgspec.structs.replace(r, tariff_rate=D(0)) for r in RATES],
    )
    at_zero = msgspec.structs.replace(TABLES, tariffs=[zero])
    within = duties(*lines, trade_mode="1210", retail="within_limits")
    full = duties(*lines, trade_mode="1210", retail="full_tax", tables=at_zero)
    assert within.tariff == 0
    for tax in ("consumption_tax", "vat"):
        paid, statutory = getattr(within, tax), getattr(full, tax)
        assert abs(paid - statutory * D("0.7")) <= D("0.01")
    for w in within.lines:  # and each line is within a fen or two of the comprehensive rate
        c, v = w.consumption_rate, w.vat_rate
        paid = w.consumption_tax + w.vat
        assert abs(paid - w.customs_value_cny * (c + v) / (1 - c) * D("0.7")) <= D("0.02")
