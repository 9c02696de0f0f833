"""A `cursor` that is digits to `str.isdigit` but not to `int` (superscripts, other scripts'
digits) is 422 at the parameter, never a 5xx (found by the OpenAPI fuzz run, seed 3800039385)."""

from __future__ import annotations

import pytest

from tests.support import onboard, running_ledger


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('cursor')}/ledger.sqlite3"
    with running_ledger(url) as ledger:
        yield ledger, onboard(ledger)


@pytest.mark.parametrize("cursor", ["\u00b21", "\u0661\u0662", "\uff11\uff12", "12\u00b9"])
def test_a_cursor_of_non_ascii_digits_is_422(world, cursor):
    ledger, t = world
    before = ledger.log_state()
    for path in (f"/v1/account-books/{t.book_no}/entries", "/v1/declarations"):
        r = ledger.get(path, t.token_name, params={"cursor": cursor})
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["loc"] == "query.cursor"
    assert ledger.log_state() == before
