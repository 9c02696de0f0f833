"""HS codes that exist, over HTTP (issue #15 item 3): items are registered and declared only
under a code whose 6-digit subheading is in HS 2022. Smartphones (8517.13, new in HS 2022) are
taken; HS 2017's cellular telephones (8517.12, split into 8517.13 and 8517.14) are 422 at the
field, and nothing is written."""

from __future__ import annotations

import pytest

from tests.samples import line
from tests.support import declaration_body, new_key, onboard, running_ledger

SMARTPHONES = {"item_no": 5, "hs_code": "8517130000", "name": "Smartphones", "unit": "C62"}
HS_2017_PHONES = {**SMARTPHONES, "item_no": 6, "hs_code": "8517120000"}
REFUSED = "HS 8517120000: subheading 8517.12 is not in the HS 2022 nomenclature"


@pytest.fixture
def ledger(sqlite_url):
    # The check is the domain's, before any write: one store shows it.
    with running_ledger(sqlite_url) as ledger:
        yield ledger


def _errors_at(response, loc: str) -> list[str]:
    return [e["msg"] for e in response.json()["errors"] if e["loc"] == loc]


def test_an_item_under_a_subheading_of_hs_2022_is_registered(ledger):
    tenant = onboard(ledger)
    r = ledger.post(f"/v1/account-books/{tenant.book_no}/items", "admin", {"items": [SMARTPHONES]})
    assert r.status_code == 201, r.text
    assert {i["item_no"]: i["hs_code"] for i in r.json()["items"]}[5] == "8517130000"


def test_an_item_under_a_subheading_hs_2022_deleted_is_refused_and_nothing_is_written(ledger):
    tenant = onboard(ledger)
    before = ledger.log_state()
    r = ledger.post(
        f"/v1/account-books/{tenant.book_no}/items",
        "admin",
        {"items": [SMARTPHONES, HS_2017_PHONES]},
    )
    assert r.status_code == 422, r.text
    assert _errors_at(r, "$.items[1].hs_code") == [REFUSED]
    assert _errors_at(r, "$.items[0].hs_code") == []
    assert ledger.log_state() == before


def test_a_book_opened_with_an_hs_2017_item_is_refused_at_that_item(ledger):
    tenant = onboard(ledger)
    before = ledger.log_state()
    body = {
        "book_no": f"{tenant.book_no}-2",
        "enterprise": tenant.uscc,
        "zone": "XCBZ",
        "items": [SMARTPHONES, HS_2017_PHONES],
    }
    r = ledger.post("/v1/account-books", "admin", body)
    assert r.status_code == 422, r.text
    assert _errors_at(r, "$.items[1].hs_code") == [REFUSED]
    assert ledger.log_state() == before


def _phones_line(hs_code: str) -> dict:
    return {**line(1), "item_no": 5, "hs_code": hs_code, "description": "Smartphones"}


def test_a_line_under_a_subheading_of_hs_2022_is_declared_and_one_hs_2022_deleted_is_not(
    ledger,
):
    tenant = onboard(ledger)
    r = ledger.post(f"/v1/account-books/{tenant.book_no}/items", "admin", {"items": [SMARTPHONES]})
    assert r.status_code == 201, r.text

    before = ledger.log_state()
    body = declaration_body(tenant.uscc, tenant.book_no, lines=[_phones_line("8517120000")])
    refused = ledger.post("/v1/declarations", tenant.token_name, body, key=new_key())
    assert refused.status_code == 422, refused.text
    assert REFUSED in _errors_at(refused, "$.lines[0].hs_code")
    assert ledger.log_state() == before

    body = declaration_body(tenant.uscc, tenant.book_no, lines=[_phones_line("8517130000")])
    taken = ledger.post("/v1/declarations", tenant.token_name, body, key=new_key())
    assert taken.status_code == 201, taken.text
    assert taken.json()["lines"][0]["hs_code"] == "8517130000"
