"""Enterprise registration: identifiers checked, credit classes are the rules' data."""

from __future__ import annotations

import pytest

from tests.support import enterprise_body, make_uscc, running_ledger


@pytest.fixture(scope="module")
def ledger(tmp_path_factory):
    with running_ledger(f"sqlite:///{tmp_path_factory.mktemp('ent')}/l.sqlite3") as ledger:
        yield ledger


def test_a_credit_class_the_rules_do_not_know_is_refused(ledger):
    before = ledger.log_state()
    body = enterprise_body(make_uscc()) | {"credit_class": "certified"}
    r = ledger.post("/v1/enterprises", "admin", body)
    assert r.status_code == 422
    assert r.json()["errors"][0]["loc"] == "$.credit_class"
    assert "advanced_certified" in r.json()["errors"][0]["msg"]
    assert ledger.log_state() == before


def test_changing_to_an_unknown_class_is_refused(ledger):
    code = make_uscc()
    assert ledger.post("/v1/enterprises", "admin", enterprise_body(code)).status_code == 201
    r = ledger.post(
        f"/v1/enterprises/{code}/credit-class",
        "officer",
        {"credit_class": "seriously_dishonest", "reason": "decree"},
    )
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == "$.credit_class"


@pytest.mark.parametrize(
    ("field", "value"),
    [("uscc", "91610131MA6TXW8L84"), ("customs_code", "61013"), ("name", "  ")],
)
def test_bad_identifiers_name_their_field(ledger, field, value):
    body = enterprise_body(make_uscc()) | {field: value}
    r = ledger.post("/v1/enterprises", "admin", body)
    assert r.status_code == 422
    assert [e["loc"] for e in r.json()["errors"]] == [f"$.{field}"]


def test_a_uscc_registers_once(ledger):
    body = enterprise_body(make_uscc())
    assert ledger.post("/v1/enterprises", "admin", body).status_code == 201
    r = ledger.post("/v1/enterprises", "admin", body)
    assert r.status_code == 409 and r.json()["rule"] == "already_exists"
