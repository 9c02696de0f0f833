"""Idempotency-Key exactly as API.md says, on both stores."""

from __future__ import annotations

import json
import threading

import pytest

from tests.support import declaration_body, new_key, onboard, running_ledger


@pytest.fixture
def ledger(database_url):
    with running_ledger(database_url) as ledger:
        yield ledger


def test_the_key_is_required_on_declarations(ledger):
    tenant = onboard(ledger)
    before = ledger.log_state()
    r = ledger.post(
        "/v1/declarations", tenant.token_name, declaration_body(tenant.uscc, tenant.book_no)
    )
    assert r.status_code == 400
    assert r.headers["content-type"] == "application/problem+json"
    assert "Idempotency-Key" in r.json()["detail"]
    assert ledger.log_state() == before


def test_a_retry_gets_the_original_answer(ledger):
    tenant = onboard(ledger)
    key = new_key()
    body = declaration_body(tenant.uscc, tenant.book_no)
    first = ledger.post("/v1/declarations", tenant.token_name, body, key=key)
    assert first.status_code == 201
    assert "Idempotency-Replayed" not in first.headers
    state = ledger.log_state()
    # Same body, other key order and spacing: compared after decoding.
    reordered = json.dumps(dict(reversed(list(body.items()))), indent=3)
    again = ledger.client.post(
        "/v1/declarations",
        content=reordered,
        headers=ledger.headers(tenant.token_name, key) | {"Content-Type": "application/json"},
    )
    assert again.status_code == 201
    assert again.headers["Idempotency-Replayed"] == "true"
    assert again.json() == first.json()
    assert ledger.log_state() == state


def test_the_same_key_with_another_body_is_refused(ledger):
    tenant = onboard(ledger)
    key = new_key()
    body = declaration_body(tenant.uscc, tenant.book_no)
    assert ledger.post("/v1/declarations", tenant.token_name, body, key=key).status_code == 201
    state = ledger.log_state()
    other = declaration_body(tenant.uscc, tenant.book_no, client_ref="PO-other")
    r = ledger.post("/v1/declarations", tenant.token_name, other, key=key)
    assert r.status_code == 409
    assert r.json()["rule"] == "idempotency_key_reused"
    assert ledger.log_state() == state


def test_a_rejected_request_may_be_retried_with_its_key(ledger):
    tenant = onboard(ledger)
    key = new_key()
    bad = declaration_body(tenant.uscc, tenant.book_no, country="XX")
    assert ledger.post("/v1/declarations", tenant.token_name, bad, key=key).status_code == 422
    good = declaration_body(tenant.uscc, tenant.book_no)
    assert ledger.post("/v1/declarations", tenant.token_name, good, key=key).status_code == 201


def test_keys_are_scoped_per_principal(ledger):
    a, b = onboard(ledger), onboard(ledger)
    key = new_key()
    ra = ledger.post("/v1/declarations", a.token_name, declaration_body(a.uscc, a.book_no), key=key)
    rb = ledger.post("/v1/declarations", b.token_name, declaration_body(b.uscc, b.book_no), key=key)
    assert ra.status_code == rb.status_code == 201
    assert ra.json()["id"] != rb.json()["id"]


def test_concurrent_retries_of_one_key_create_one_declaration(ledger):
    tenant = onboard(ledger)
    key = new_key()
    body = declaration_body(tenant.uscc, tenant.book_no)
    results: list = []
    barrier = threading.Barrier(8)

    def submit() -> None:
        barrier.wait()
        results.append(ledger.post("/v1/declarations", tenant.token_name, body, key=key))

    threads = [threading.Thread(target=submit) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.status_code for r in results) == [201] * 8
    assert len({r.json()["id"] for r in results}) == 1
    assert sum(r.headers.get("Idempotency-Replayed") == "true" for r in results) == 7
    listed = ledger.get("/v1/declarations", tenant.token_name).json()["items"]
    assert len(listed) == 1


def test_other_posts_honour_a_key_when_given(ledger):
    from tests.support import enterprise_body, make_uscc

    key = new_key()
    body = enterprise_body(make_uscc())
    first = ledger.post("/v1/enterprises", "admin", body, key=key)
    again = ledger.post("/v1/enterprises", "admin", body, key=key)
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotency-Replayed"] == "true"
    # Without a key, registering the same USCC twice is a conflict, not a replay.
    assert ledger.post("/v1/enterprises", "admin", body).status_code == 409
