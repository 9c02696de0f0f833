"""Which HS codes exist: the HS 2022 six-digit subheadings, shipped as package data.

China's 10-digit codes extend a WCO subheading with 2 national tariff digits and 2 supervision
digits; the national digits change with each year's tariff, but a code whose first 6 digits
are no HS 2022 subheading cannot be in any China tariff built on HS 2022 (in force since
2022-01-01). 8517.12 (mobile phones, HS 2017) is such a case: HS 2022 split it into 8517.13
(smartphones) and 8517.14 (other). Source and licence: domain/data/README.md.
"""

from __future__ import annotations

import csv
import io
from functools import cache
from importlib import resources

SUBHEADINGS_FILE = "hs2022_subheadings.csv"


@cache
def subheadings() -> frozenset[str]:
    """The 6-digit subheadings of the file, read once per process (5,612 short strings)."""
    text = resources.files("domain").joinpath("data", SUBHEADINGS_FILE).read_text("utf-8")
    return frozenset(row["hscode"] for row in csv.DictReader(io.StringIO(text)))


@cache
def headings() -> frozenset[str]:
    """The 4-digit headings: every HS 2022 heading has at least one subheading (XXXX.00 when
    it is not subdivided), so the headings are the subheadings' first four digits."""
    return frozenset(code[:4] for code in subheadings())


def subheading_exists(hs_code: str) -> bool:
    """Whether the first 6 digits of a (10-digit) HS code are an HS 2022 subheading."""
    return len(hs_code) >= 6 and hs_code[:6] in subheadings()


def heading_exists(heading: str) -> bool:
    """Whether a 4-digit code is an HS 2022 heading."""
    return heading in headings()


def subheadings_under(heading: str) -> list[str]:
    """The HS 2022 subheadings of a heading (or of any shorter prefix), in order."""
    return sorted(code for code in subheadings() if code.startswith(heading))


def dotted(subheading: str) -> str:
    """8517.12: the way the nomenclature writes a subheading."""
    return f"{subheading[:4]}.{subheading[4:6]}"
