"""The drill's areas configuration (bench/areas.py, docs/decisions/0036): `name=url,...`."""

from __future__ import annotations

import pytest

from bench.areas import parse_areas


def test_areas_are_read_in_order_with_their_urls():
    text = "xian=postgresql://app@db1/customs?schema=ledger, chengdu=postgresql://app@db2/customs"
    assert parse_areas(text) == {
        "xian": "postgresql://app@db1/customs?schema=ledger",
        "chengdu": "postgresql://app@db2/customs",
    }


@pytest.mark.parametrize(
    "text",
    ["xian", "=postgresql://db", "xian=", "Xian=postgresql://db", "a=x,a=y", "x y=postgresql://db"],
)
def test_a_malformed_or_repeated_area_is_refused(text):
    with pytest.raises(ValueError):
        parse_areas(text)
