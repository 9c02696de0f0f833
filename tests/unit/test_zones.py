"""Zones are data: five Xi'an defaults, or a file with dated permits."""

from __future__ import annotations

import json
from datetime import date

import pytest

from api.services import ZonesFileError, load_zones


def test_the_defaults_are_the_five_xian_zones_with_their_offices():
    zones = load_zones(None)
    assert sorted(zones) == ["XABZ", "XCBZ", "XEPZ", "XHTZ", "XXLC"]
    assert zones["XCBZ"].customs_office == "9007"
    # The logistics centre may repack, label and sort, but not manufacture.
    permits = zones["XXLC"].permits_on(date(2026, 11, 27))
    assert "simple_processing" in permits and "processing" not in permits
    # Zones that may manufacture may also repack, label and sort.
    for code in ("XCBZ", "XHTZ", "XABZ", "XEPZ"):
        permits = zones[code].permits_on(date(2026, 11, 27))
        assert {"processing", "simple_processing"} <= set(permits), code


def test_a_zones_file_replaces_the_defaults_and_permits_are_dated(tmp_path):
    path = tmp_path / "zones.json"
    path.write_text(
        json.dumps(
            [
                {
                    "code": "CDBZ",
                    "name": "Chengdu Hi-tech Comprehensive Bonded Zone",
                    "kind": "comprehensive_bonded_zone",
                    "customs_office": "7901",
                    "permits": [
                        {"permit": "storage", "valid_from": "2020-01-01"},
                        {
                            "permit": "processing",
                            "valid_from": "2020-01-01",
                            "valid_to": "2026-01-01",
                        },
                    ],
                }
            ]
        )
    )
    zones = load_zones(str(path))
    assert list(zones) == ["CDBZ"]
    assert zones["CDBZ"].permits_on(date(2025, 12, 31)) == ["storage", "processing"]
    assert zones["CDBZ"].permits_on(date(2026, 1, 1)) == ["storage"]


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        '[{"code": "X"}]',
        '[{"code": "X", "name": "n", "kind": "k", "customs_office": "12", "permits": []}]',
    ],
)
def test_a_bad_zones_file_is_refused_with_its_path(tmp_path, content):
    path = tmp_path / "zones.json"
    path.write_text(content)
    with pytest.raises(ZonesFileError):
        load_zones(str(path))
