"""The tariff as CSV: the built-in table's file, and the format a published tariff is read in.

One row per HS prefix and date: `effective_from,hs_prefix,tariff_rate,vat_rate,
consumption_tax_rate,source` (domain/data/README.md). The rows of one `effective_from` make one
TariffTable. Every problem names the file and the row (the line number an editor shows, the
header being row 1), so a wrong figure is found without reading the loader.
"""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from datetime import date
from decimal import Decimal

from domain import hs_nomenclature
from domain.duties import TariffRate, TariffTable

COLUMNS = [
    "effective_from",
    "hs_prefix",
    "tariff_rate",
    "vat_rate",
    "consumption_tax_rate",
    "source",
]
# 4 to 10 digits, a heading (4) or a subheading (6) preferred: a chapter (2) is too coarse
# for one rate. The longest listed prefix of a code wins (TariffTable.rate_of).
HS_PREFIX = re.compile(r"[0-9]{4,10}")
# A decimal fraction in plain digits, `0.13`: never `13%`, never an exponent.
FRACTION = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def read_tariff(text: str, name: str, *, default_vat_rate: Decimal) -> list[TariffTable]:
    """The tables of a tariff CSV, one per `effective_from`, earliest first; ValueError
    `{name} row {n}: ...` at the first bad row."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if reader.fieldnames != COLUMNS:
        raise ValueError(f"{name} row 1: the header must be {','.join(COLUMNS)}")
    by_day: dict[date, list[TariffRate]] = defaultdict(list)
    first_row: dict[tuple[date, str], int] = {}
    for row in reader:
        n = reader.line_num
        day, rate = _row(row, f"{name} row {n}")
        earlier = first_row.setdefault((day, rate.hs_prefix), n)
        if earlier != n:
            raise ValueError(
                f"{name} row {n}: hs_prefix {rate.hs_prefix} from {day} is already in row {earlier}"
            )
        by_day[day].append(rate)
    return [
        TariffTable(valid_from=day, rates=by_day[day], default_vat_rate=default_vat_rate)
        for day in sorted(by_day)
    ]


def _row(row: dict[str, str], at: str) -> tuple[date, TariffRate]:
    if None in row or any(row[c] is None for c in COLUMNS):
        raise ValueError(f"{at}: a row has exactly the {len(COLUMNS)} columns of the header")
    try:
        day = date.fromisoformat(row["effective_from"])
    except ValueError:
        raise ValueError(
            f"{at}: effective_from {row['effective_from']!r} is not YYYY-MM-DD"
        ) from None
    prefix = _prefix(row["hs_prefix"], at)
    if not row["source"].strip():
        raise ValueError(f"{at}: source must say where the figures come from")
    try:
        rate = TariffRate(
            hs_prefix=prefix,
            tariff_rate=_fraction(row, "tariff_rate", at),
            vat_rate=_fraction(row, "vat_rate", at),
            consumption_rate=_fraction(row, "consumption_tax_rate", at),
            source=row["source"],
        )
    except ValueError as e:  # a rate out of its range (TariffRate.__post_init__)
        message = str(e).replace("consumption_rate", "consumption_tax_rate")
        raise ValueError(f"{at}: {message}") from None
    return day, rate


def _prefix(prefix: str, at: str) -> str:
    """A heading of HS 2022, or a code within one of its subheadings."""
    if not HS_PREFIX.fullmatch(prefix):
        raise ValueError(f"{at}: hs_prefix {prefix!r} must be 4 to 10 digits")
    if not hs_nomenclature.heading_exists(prefix[:4]):
        raise ValueError(f"{at}: hs_prefix {prefix}: heading {prefix[:4]} is not in HS 2022")
    if len(prefix) >= 6 and not hs_nomenclature.subheading_exists(prefix):
        subheading = hs_nomenclature.dotted(prefix)
        raise ValueError(f"{at}: hs_prefix {prefix}: subheading {subheading} is not in HS 2022")
    return prefix


def _fraction(row: dict[str, str], column: str, at: str) -> Decimal:
    text = row[column]
    if not FRACTION.fullmatch(text):
        raise ValueError(f"{at}: {column} {text!r} must be a decimal fraction such as 0.13")
    return Decimal(text)
