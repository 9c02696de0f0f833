"""HS codes that exist: a 10-digit code is taken iff its first 6 digits are an HS 2022
subheading of the shipped list (issue #15 item 3)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain import hs_nomenclature, values
from domain.errors import ValidationFailed
from tests.strategies import any_hs_codes, real_hs_codes

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "domain" / "data" / "hs2022_subheadings.csv"
# The WCO list as published (domain/data/README.md), beside the project when it is there.
SOURCE = ROOT.parent / "shared" / "data" / "hs" / "harmonized-system.csv"


def _rows() -> list[dict[str, str]]:
    with DATA.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


# Read here with csv, not through the module, so the property compares two readings.
SUBHEADINGS = frozenset(row["hscode"] for row in _rows())


def _taken(code: str) -> bool:
    try:
        values.hs_code("$.items[0].hs_code", code)
    except ValidationFailed:
        return False
    return True


def test_the_shipped_list_is_the_5612_subheadings_of_hs_2022_with_their_descriptions():
    rows = _rows()
    assert list(rows[0]) == ["hscode", "description"]
    assert len(rows) == len(SUBHEADINGS) == 5612
    assert all(len(r["hscode"]) == 6 and r["hscode"].isdigit() for r in rows)
    assert all(r["description"].strip() for r in rows)
    assert hs_nomenclature.subheadings() == SUBHEADINGS


@pytest.mark.skipif(not SOURCE.exists(), reason=f"the published list is not at {SOURCE}")
def test_the_shipped_list_is_the_level_6_rows_of_the_published_one():
    with SOURCE.open(encoding="utf-8", newline="") as f:
        published = [r for r in csv.DictReader(f) if r["level"] == "6" and r["section"] != "TOTAL"]
    assert [(r["hscode"], r["description"]) for r in published] == [
        (r["hscode"], r["description"]) for r in _rows()
    ]


def test_smartphones_are_a_subheading_of_hs_2022():
    assert values.hs_code("$.items[0].hs_code", "8517130000") == "8517130000"
    assert hs_nomenclature.subheading_exists("8517130000")


def test_hs_2017_cellular_telephones_are_refused_naming_the_subheading():
    with pytest.raises(ValidationFailed) as e:
        values.hs_code("$.lines[2].hs_code", "8517120000")
    [error] = e.value.errors
    assert error.loc == "$.lines[2].hs_code"
    assert error.msg == "HS 8517120000: subheading 8517.12 is not in the HS 2022 nomenclature"


def test_the_headings_are_the_four_digit_stems_of_the_subheadings():
    assert hs_nomenclature.heading_exists("9503")  # toys: 9503.00, not subdivided
    assert hs_nomenclature.heading_exists("8517")
    assert not hs_nomenclature.heading_exists("7701")  # chapter 77 is reserved
    assert not hs_nomenclature.heading_exists("9999")  # a statistics code, no heading


@given(st.one_of(any_hs_codes, real_hs_codes))
def test_a_code_is_taken_iff_its_first_six_digits_are_a_row_of_the_file(code):
    assert _taken(code) == (code[:6] in SUBHEADINGS)


@given(real_hs_codes)
def test_every_code_drawn_from_the_real_list_is_taken(code):
    assert _taken(code)
