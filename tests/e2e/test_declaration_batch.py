"""POST /v1/declarations/batch: many submissions, each with its own key and answer."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import declaration_body, new_key, onboard, running_ledger

PATH = "/v1/declarations/batch"


@pytest.fixture
def ledger(database_url):
    with running_ledger(database_url) as ledger:
        yield ledger


@pytest.fixture
def tenant(ledger):
    return onboard(ledger)


def item(key, body):
    return {"idempotency_key": key, "body": body}


def without_position(body):
    return {k: v for k, v in body.items() if k != "position"}


def test_each_item_answers_as_the_single_route_would(ledger, tenant):
    other = onboard(ledger)
    good = declaration_body(tenant.uscc, tenant.book_no)
    bad_line = declaration_body(tenant.uscc, tenant.book_no)
    bad_line["lines"][0]["quantity"] = "-1"
    not_ours = declaration_body(other.uscc, other.book_no)
    twin_key = new_key()
    items = [
        item(new_key(), good),
        item(new_key(), bad_line),
        item("", good),
        item(new_key(), not_ours),
        item(twin_key, good),
        item(twin_key, good),
        item(twin_key, declaration_body(tenant.uscc, tenant.book_no, client_ref="PO-other")),
        item(new_key(), {"declarant": tenant.uscc}),
        item(new_key(), [1, 2]),
    ]
    before = ledger.services.app.log.count()
    r = ledger.post(PATH, tenant.token_name, {"items": items})
    assert r.status_code == 207, r.text
    results = r.json()["results"]
    assert [x["status"] for x in results] == [201, 422, 422, 403, 201, 201, 409, 422, 400]
    assert results[0]["body"]["status"] in ("released", "document_review", "inspection")
    assert results[0]["body"]["declarant"] == tenant.uscc
    assert [e["loc"] for e in results[1]["body"]["errors"]] == ["$.lines[0].quantity"]
    assert results[2]["body"]["errors"][0]["loc"] == "$.items[2].idempotency_key"
    assert results[3]["body"]["status"] == 403
    # The twin: the second is the first's answer again, the third another body with its key.
    assert "replayed" not in results[4]
    assert results[5]["replayed"] is True
    assert results[5]["body"] == results[4]["body"]
    assert results[6]["body"]["rule"] == "idempotency_key_reused"
    assert "$.items" not in str(results[7]["body"]["errors"])
    assert results[8]["body"]["type"].endswith("not-an-object")
    for refused in (results[1], results[2], results[3], results[6], results[7], results[8]):
        assert refused["body"]["status"] == refused["status"]
        assert refused["body"]["detail"]
    # Exactly the two accepted submissions are in the log, each readable by its number.
    assert int(r.headers["X-Ledger-Position"]) == ledger.services.app.log.count()
    assert ledger.services.app.log.count() > before
    for accepted in (results[0], results[4]):
        got = ledger.get(
            f"/v1/declarations/{accepted['body']['declaration_no']}", tenant.token_name
        )
        assert got.status_code == 200
        assert got.json()["declaration_no"] == accepted["body"]["declaration_no"]


def test_the_batch_sent_again_replays_every_item(ledger, tenant):
    items = [item(new_key(), declaration_body(tenant.uscc, tenant.book_no)) for _ in range(5)]
    items.insert(2, item(new_key(), {"declarant": tenant.uscc}))
    first = ledger.post(PATH, tenant.token_name, {"items": items})
    assert first.status_code == 207
    state = ledger.log_state()
    again = ledger.post(PATH, tenant.token_name, {"items": items})
    assert again.status_code == 207
    assert ledger.log_state() == state
    for a, b in zip(first.json()["results"], again.json()["results"], strict=True):
        assert a["status"] == b["status"]
        assert a["body"] == b["body"] or without_position(a["body"]) == without_position(b["body"])
        assert b.get("replayed", False) is (a["status"] == 201)
    # An item's key is the single route's: the same key there answers the same declaration.
    single = ledger.post(
        "/v1/declarations", tenant.token_name, items[0]["body"], key=items[0]["idempotency_key"]
    )
    assert single.status_code == 201
    assert single.headers["Idempotency-Replayed"] == "true"
    assert single.json() == first.json()["results"][0]["body"]


def test_a_key_first_used_alone_is_replayed_in_a_batch(ledger, tenant):
    key, body = new_key(), declaration_body(tenant.uscc, tenant.book_no)
    alone = ledger.post("/v1/declarations", tenant.token_name, body, key=key)
    assert alone.status_code == 201
    r = ledger.post(PATH, tenant.token_name, {"items": [item(key, body)]})
    assert r.json()["results"] == [{"status": 201, "body": alone.json(), "replayed": True}]


@pytest.mark.parametrize(
    ("body", "status", "loc"),
    [
        ([], 400, None),
        ({"items": []}, 422, "$.items"),
        ({"items": [{"idempotency_key": "k"}]}, 422, "$.items[0].body"),
        ({"items": [{"idempotency_key": "k", "body": {}}], "extra": 1}, 422, "$.extra"),
        ({"items": [{"idempotency_key": 5, "body": {}}]}, 422, "$.items[0].idempotency_key"),
    ],
)
def test_a_bad_envelope_is_refused_whole(ledger, tenant, body, status, loc):
    state = ledger.log_state()
    r = ledger.post(PATH, tenant.token_name, body)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    if loc is not None:
        assert loc in [e["loc"] for e in r.json()["errors"]]
    assert ledger.log_state() == state


def test_at_most_500_items(ledger, tenant):
    body = {"declarant": tenant.uscc}
    state = ledger.log_state()
    r = ledger.post(PATH, tenant.token_name, {"items": [item(str(i), body) for i in range(501)]})
    assert r.status_code == 422
    assert r.json()["errors"][0]["loc"] == "$.items"
    assert ledger.log_state() == state


def test_only_enterprises_submit_batches(ledger, tenant):
    body = {"items": [item(new_key(), declaration_body(tenant.uscc, tenant.book_no))]}
    state = ledger.log_state()
    assert ledger.post(PATH, "officer", body).status_code == 403
    assert ledger.client.post(PATH, json=body).status_code == 401
    assert ledger.log_state() == state


def test_refusals_are_in_the_request_language(ledger, tenant):
    bad = declaration_body(tenant.uscc, tenant.book_no)
    bad["lines"][0]["quantity"] = "-1"
    headers = ledger.headers(tenant.token_name) | {"Accept-Language": "zh-CN"}
    r = ledger.client.post(PATH, json={"items": [item(new_key(), bad)]}, headers=headers)
    assert r.status_code == 207
    assert r.headers["Content-Language"] == "zh-CN"
    problem = r.json()["results"][0]["body"]
    english = ledger.post(PATH, tenant.token_name, {"items": [item(new_key(), bad)]})
    assert problem["title"] != english.json()["results"][0]["body"]["title"]


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(kinds=st.lists(st.sampled_from(["good", "bad", "twin", "foreign"]), min_size=1, max_size=12))
def test_a_batch_answers_what_its_items_sent_alone_answer(ledger, tenant, kinds):
    """Property: for any mix of items, each item sent again alone (its key, its body) through
    the single route gets the batch's answer for it (accepted ones replayed), and the log
    holds exactly the accepted ones."""
    other = onboard(ledger)
    items = []
    for kind in kinds:
        if kind == "twin" and items:
            items.append(dict(items[-1]))
            continue
        body = declaration_body(tenant.uscc, tenant.book_no)
        if kind == "bad":
            body["lines"][0]["quantity"] = "0"
        if kind == "foreign":
            body = declaration_body(other.uscc, other.book_no)
        items.append(item(new_key(), body))
    r = ledger.post(PATH, tenant.token_name, {"items": items})
    assert r.status_code == 207
    results = r.json()["results"]
    assert len(results) == len(items)
    state = ledger.log_state()
    for sent, got in zip(items, results, strict=True):
        alone = ledger.post(
            "/v1/declarations", tenant.token_name, sent["body"], key=sent["idempotency_key"]
        )
        assert alone.status_code == got["status"]
        if got["status"] == 201:
            assert alone.headers["Idempotency-Replayed"] == "true"
            assert alone.json() == got["body"]
        else:
            assert alone.json()["type"] == got["body"]["type"]
    assert ledger.log_state() == state


def test_an_items_decimals_keep_the_contract_grammar(ledger, tenant):
    """A decimal in an item's body is held to the grammar the single route holds it to."""
    body = declaration_body(tenant.uscc, tenant.book_no)
    raw = json.dumps({"items": [{"idempotency_key": new_key(), "body": body}]})
    raw = raw.replace('"quantity": "1000"', '"quantity": "1e3"', 1)
    assert '"1e3"' in raw
    state = ledger.log_state()
    headers = ledger.headers(tenant.token_name) | {"Content-Type": "application/json"}
    r = ledger.client.post(PATH, content=raw, headers=headers)
    assert r.status_code == 207
    (result,) = r.json()["results"]
    assert result["status"] == 422
    assert [e["loc"] for e in result["body"]["errors"]] == ["$.lines[0].quantity"]
    assert ledger.log_state() == state
