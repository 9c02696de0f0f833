"""Default duty tables: the built-in tariff, monthly customs rates, assessable modes.

These are data with stated provenance, not authority. The tariff's rows are in
domain/data/tariff_2026.csv, each naming its source; figures marked [verify] come from memory
of public schedules or third-party lookups and must be checked against the Customs Tariff of
the PRC and the GACC monthly exchange-rate announcement before anyone relies on them; a
deployment publishes its own tables (docs/reference-data.md) rather than editing code: these
are only what a fresh ledger publishes as version 1.
"""

from __future__ import annotations

from decimal import Decimal
from importlib import resources

from domain.duties import DutyTables, ExchangeRates, TariffTable
from domain.tariff_csv import read_tariff

# VAT Law of the PRC (in force 2026-01-01): 13% unless the goods are on its 9% list (farm
# products, edible vegetable oils, books and newspapers, feed, fertilisers ...), which the
# CSV's rows say row by row.
_VAT_STANDARD = Decimal("0.13")
TARIFF_FILE = "tariff_2026.csv"


def _built_in_tariff() -> TariffTable:
    """The one table of the packaged CSV (every row takes effect on 2026-01-01)."""
    text = resources.files("domain").joinpath("data", TARIFF_FILE).read_text("utf-8")
    (table,) = read_tariff(text, TARIFF_FILE, default_vat_rate=_VAT_STANDARD)
    return table


TARIFF_2026 = _built_in_tariff()

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
# goods pay in full; the bonded retail modes pay under the e-commerce retail rules, and so does
# a 9610 parcel arriving by post or express (`direct_in`, GACC Announcement 2018 No. 194).
# Entering a zone from abroad (first line in), leaving abroad, and transfers between zones pay
# nothing.
ASSESSABLE = [
    ("second_line_out", "0110"),
    ("second_line_out", "5034"),
    ("second_line_out", "1210"),
    ("second_line_out", "1239"),
    ("direct_in", "9610"),
]

DEFAULT_TABLES = DutyTables(
    tariffs=[TARIFF_2026],
    exchange_rates=EXCHANGE_RATES_2026,
    assessable=ASSESSABLE,
)
