"""A reference-data file that cannot be used is refused with an error named after it."""

from __future__ import annotations

import pytest

from api.services import (
    DutyTablesFileError,
    ReferenceFileError,
    RiskRulesFileError,
    ZonesFileError,
    load_clearance_rules,
    load_zones,
)
from api.settings import Settings


@pytest.mark.parametrize(
    ("setting", "variable", "error"),
    [
        ("risk_rules_file", "LEDGER_RISK_RULES_FILE", RiskRulesFileError),
        ("duty_tables_file", "LEDGER_DUTY_TABLES_FILE", DutyTablesFileError),
    ],
)
def test_a_bad_rules_file_raises_its_own_error_naming_the_variable(
    tmp_path, setting, variable, error
):
    path = tmp_path / "rules.json"
    path.write_text("not json")
    with pytest.raises(error, match=variable) as raised:
        load_clearance_rules(Settings(**{setting: str(path)}))
    assert str(path) in str(raised.value)
    assert not isinstance(raised.value, ZonesFileError)


def test_every_reference_file_error_is_a_reference_file_error(tmp_path):
    missing = str(tmp_path / "absent.json")
    for call in (
        lambda: load_zones(missing),
        lambda: load_clearance_rules(Settings(risk_rules_file=missing)),
        lambda: load_clearance_rules(Settings(duty_tables_file=missing)),
    ):
        with pytest.raises(ReferenceFileError):
            call()
