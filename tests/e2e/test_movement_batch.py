"""POST /v1/movements/batch: movements in one request, decided in order (api/batch.py)."""

from __future__ import annotations

import pytest

from tests.samples import line
from tests.support import declaration_body, new_key, onboard, running_ledger

PATH = "/v1/movements/batch"


@pytest.fixture
def ledger(database_url):
    with running_ledger(database_url) as ledger:
        ledger.issue("gate-xcbz", "operator", zone="XCBZ")
        yield ledger


def _released_import(ledger, t, quantity):
    body = declaration_body(t.uscc, t.book_no, lines=[line(1, quantity=quantity)])
    r = ledger.post("/v1/declarations", t.token_name, body, key=new_key())
    assert r.status_code == 201 and r.json()["status"] == "released", r.text
    return r.json()


def _gate_in(declaration, quantity):
    return {
        "kind": "gate_in",
        "declaration": declaration,
        "lines": [{"line_no": 1, "quantity": quantity}],
    }


def test_movements_are_decided_in_order_each_with_its_answer(ledger):
    t = onboard(ledger)
    d = _released_import(ledger, t, "100")["id"]
    items = [
        {"idempotency_key": new_key(), "body": _gate_in(d, "40")},
        {"idempotency_key": new_key(), "body": _gate_in(d, "50")},
        # Only 10 are left once the two before it passed: refused, as it would be alone.
        {"idempotency_key": new_key(), "body": _gate_in(d, "11")},
        {"idempotency_key": new_key(), "body": _gate_in(d, "1.5")},
        {"idempotency_key": new_key(), "body": _gate_in(d, "10")},
    ]
    r = ledger.post(PATH, "gate-xcbz", {"items": items})
    assert r.status_code == 207, r.text
    results = r.json()["results"]
    assert [x["status"] for x in results] == [201, 201, 409, 422, 201]
    assert results[2]["body"]["rule"] == "exceeds_declared_quantity"
    assert results[3]["body"]["errors"][0]["loc"] == "$.lines[0].quantity"
    positions = [results[i]["body"]["position"] for i in (0, 1, 4)]
    assert positions == sorted(positions)
    for i in (0, 1, 4):
        got = ledger.get(f"/v1/movements/{results[i]['body']['movement_id']}", t.token_name)
        assert got.json() == results[i]["body"]
    book = ledger.get(f"/v1/account-books/{t.book_no}", t.token_name).json()
    assert next(i for i in book["items"] if i["item_no"] == 1)["on_hand"] == "100"
    # Sent again: every item answers as it first did, and nothing more is recorded.
    state = ledger.log_state()
    again = ledger.post(PATH, "gate-xcbz", {"items": items}).json()["results"]
    assert ledger.log_state() == state
    assert [x["status"] for x in again] == [201, 201, 409, 422, 201]
    for i in (0, 1, 4):
        assert again[i]["replayed"] is True
        assert again[i]["body"] == results[i]["body"]


def test_each_movement_keeps_its_roles(ledger):
    t = onboard(ledger)
    d = _released_import(ledger, t, "5")["id"]
    state = ledger.log_state()
    r = ledger.post(
        PATH, t.token_name, {"items": [{"idempotency_key": new_key(), "body": _gate_in(d, "5")}]}
    )
    assert r.status_code == 207
    assert r.json()["results"][0]["status"] == 403
    assert ledger.post(PATH, "auditor", {"items": []}).status_code == 403
    assert ledger.log_state() == state
