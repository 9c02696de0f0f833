"""Default duty tables: a handful of real headings, monthly customs rates, assessable modes.

These are data with stated provenance, not authority. Figures marked [verify] come from
memory of public schedules and must be checked against the Customs Tariff of the PRC and
the GACC monthly exchange-rate announcement before anyone relies on them; a deployment
replaces the whole set rather than editing code.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from domain.duties import DutyTables, ExchangeRates, TariffRate, TariffTable

_VAT_STANDARD = Decimal("0.13")
# VAT Law of the PRC (in force 2026-01-01) keeps 9% for the goods it lists: farm products,
# books and newspapers, edible oils, tap water, heating, gas ... [verify the list].
_VAT_LISTED = Decimal("0.09")

TARIFF_2026 = TariffTable(
    valid_from=date(2026, 1, 1),
    default_vat_rate=_VAT_STANDARD,
    rates=[
        TariffRate(
            hs_prefix="847130",
            tariff_rate=Decimal("0"),
            vat_rate=_VAT_STANDARD,
            source="Customs Tariff of the PRC 8471.30 portable computers: MFN 0%, bound at zero "
            "under the WTO Information Technology Agreement; import VAT 13% (standard rate)",
        ),
        TariffRate(
            hs_prefix="851713",
            tariff_rate=Decimal("0"),
            vat_rate=_VAT_STANDARD,
            source="Customs Tariff of the PRC 8517.13 smartphones (HS 2022 subheading): MFN 0% "
            "under the Information Technology Agreement; import VAT 13%",
        ),
        TariffRate(
            hs_prefix="090121",
            tariff_rate=Decimal("0.15"),
            vat_rate=_VAT_STANDARD,
            source="Customs Tariff of the PRC 0901.21 roasted coffee, not decaffeinated: MFN 15% "
            "[verify]; import VAT 13%: roasting makes it a processed good, outside the 9% list "
            "of farm products [verify]",
        ),
        TariffRate(
            hs_prefix="330499",
            tariff_rate=Decimal("0.01"),
            consumption_rate=Decimal("0.15"),
            vat_rate=_VAT_STANDARD,
            source="Customs Tariff of the PRC 3304.99 beauty and skin-care preparations: MFN 1% "
            "since the 2018-07-01 cut on consumer goods [verify]; consumption tax 15% on "
            "high-end cosmetics (Caishui [2016] No. 103: CNY 10/ml or 15/piece and above) - "
            "this table assumes high-end, ordinary skin care carries none [verify]; VAT 13%",
        ),
        TariffRate(
            hs_prefix="220421",
            tariff_rate=Decimal("0.14"),
            consumption_rate=Decimal("0.10"),
            vat_rate=_VAT_STANDARD,
            source="Customs Tariff of the PRC 2204.21 wine in containers of 2 l or less: MFN 14%; "
            "consumption tax 10% ad valorem (other alcoholic drinks); import VAT 13% [verify]",
        ),
        TariffRate(
            hs_prefix="6403",
            tariff_rate=Decimal("0.10"),
            vat_rate=_VAT_STANDARD,
            source="Customs Tariff of the PRC 6403 footwear with leather uppers: MFN 10% on most "
            "subheadings after the 2017-12-01 cut on consumer goods (some differ) [verify]; "
            "import VAT 13%",
        ),
        TariffRate(
            hs_prefix="4901",
            tariff_rate=Decimal("0"),
            vat_rate=_VAT_LISTED,
            source="Customs Tariff of the PRC 4901 printed books, brochures, leaflets: MFN 0% "
            "[verify]; import VAT 9%: books are on the list of the reduced rate",
        ),
    ],
)

# GACC sets each month's customs rate from the People's Bank of China central parity of the
# third Wednesday of the month before [verify]. The figures below are illustrative.
_RATES_SOURCE = (
    "illustrative {month} figures near the PBoC central parity [verify against the GACC monthly "
    "customs rate]"
)


def _month(month: str, **to_cny: str) -> ExchangeRates:
    return ExchangeRates(
        month=month,
        to_cny={"CNY": Decimal(1)} | {code: Decimal(rate) for code, rate in to_cny.items()},
        source=_RATES_SOURCE.format(month=month),
    )


EXCHANGE_RATES_2026 = [
    _month("2026-10", EUR="8.2512", USD="7.1205", GBP="9.5318", JPY="0.047612", HKD="0.91572"),
    _month("2026-11", EUR="8.2437", USD="7.1180", GBP="9.5240", JPY="0.047490", HKD="0.91540"),
    _month("2026-12", EUR="8.2601", USD="7.1092", GBP="9.5465", JPY="0.047388", HKD="0.91436"),
]

# Second-line exit into the domestic market is an import: general trade and zone logistics
# goods pay in full; the three retail modes pay under the e-commerce retail rules. Entering a
# zone from abroad (first line in), leaving abroad, and transfers between zones pay nothing.
ASSESSABLE = [
    ("second_line_out", "0110"),
    ("second_line_out", "5034"),
    ("second_line_out", "9610"),
    ("second_line_out", "1210"),
    ("second_line_out", "1239"),
]

DEFAULT_TABLES = DutyTables(
    tariffs=[TARIFF_2026],
    exchange_rates=EXCHANGE_RATES_2026,
    assessable=ASSESSABLE,
)
