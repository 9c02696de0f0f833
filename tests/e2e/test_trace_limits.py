"""A hub reference is answered a page at a time (issue #14 item 5): `limit` applies to the lots
the reference matches, `truncated` says so, and `next_cursor` walks the rest, each lot once."""

from __future__ import annotations

import pytest

from tests.support import admit, onboard, running_ledger

CONTAINER = "TGHU1234567"  # every sample declaration's container: the hub
LOTS = 23


@pytest.fixture
def ledger(database_url):
    """Both stores: the paging reads the matched rows a page at a time from each's cursor."""
    with running_ledger(database_url) as ledger:
        tenant = onboard(ledger)
        for _ in range(LOTS):
            admit(ledger, tenant, 1, "2")
        yield ledger


def _page(ledger, path, **params):
    r = ledger.get(path, "officer", params={"ref": CONTAINER, **params})
    assert r.status_code == 200, r.text
    return r


@pytest.mark.parametrize("limit", [1, 5, 10, 22])
def test_the_matched_lots_come_a_page_at_a_time_each_once(ledger, limit):
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        answer = _page(ledger, "/v1/trace", **params).json()
        pages += 1
        lots = [lot["lot_id"] for lot in answer["lots"]]
        assert len(lots) <= limit
        seen += lots
        cursor = answer["next_cursor"]
        if cursor is None:
            assert answer["truncated"] is False
            break
        assert answer["truncated"] is True and len(lots) == limit
    assert len(seen) == len(set(seen)) == LOTS
    assert pages == -(-LOTS // limit)


def test_a_limit_above_the_matched_set_answers_it_whole_without_a_cursor(ledger):
    answer = _page(ledger, "/v1/trace", limit=LOTS).json()
    assert len(answer["lots"]) == LOTS
    assert (answer["truncated"], answer["next_cursor"]) == (False, None)


def test_the_epcis_export_takes_the_same_pages(ledger):
    first = _page(ledger, "/v1/trace", limit=4).json()
    document = _page(ledger, "/v1/trace/epcis", limit=4).json()
    exported = document["epcisBody"]["eventList"]
    assert exported and len(first["lots"]) == 4
    nxt = _page(ledger, "/v1/trace/epcis", limit=4, cursor=first["next_cursor"]).json()
    assert nxt["epcisBody"]["eventList"] != exported


@pytest.mark.parametrize("cursor", ["-1", "abc", "1" * 20, "1.5"])
def test_a_cursor_that_is_not_one_an_answer_gave_is_422(ledger, cursor):
    r = ledger.get("/v1/trace", "officer", params={"ref": CONTAINER, "cursor": cursor})
    assert r.status_code == 422, r.text
