"""/docs works offline and /openapi.json describes the msgspec bodies exactly."""

from __future__ import annotations

import re

import msgspec
import pytest

from domain.declaration import SubmitDeclaration
from tests.support import running_ledger


@pytest.fixture(scope="module")
def ledger(tmp_path_factory):
    with running_ledger(f"sqlite:///{tmp_path_factory.mktemp('docs')}/l.sqlite3") as ledger:
        yield ledger


def test_docs_load_nothing_from_the_internet(ledger):
    page = ledger.client.get("/docs")
    assert page.status_code == 200
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources, page.text[:500]
    assert not [s for s in sources if s.startswith(("http://", "https://", "//"))]
    for src in sources:
        assert ledger.client.get(src).status_code == 200, src


def test_openapi_uses_the_same_schema_the_handlers_decode_with(ledger):
    doc = ledger.client.get("/openapi.json").json()
    schemas = doc["components"]["schemas"]
    _, expected = msgspec.json.schema_components(
        [SubmitDeclaration], ref_template="#/components/schemas/{name}"
    )
    assert schemas["SubmitDeclaration"] == expected["SubmitDeclaration"]
    post = doc["paths"]["/v1/declarations"]["post"]
    body = post["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/SubmitDeclaration"}
    assert {"201", "400", "401", "403", "409", "413", "422"} <= set(post["responses"])
    key = [p for p in post["parameters"] if p["name"] == "Idempotency-Key"]
    assert key and key[0]["required"] is True


def test_every_documented_ref_resolves(ledger):
    text = ledger.client.get("/openapi.json").text
    schemas = ledger.client.get("/openapi.json").json()["components"]["schemas"]
    refs = set(re.findall(r'"#/components/schemas/([^"]+)"', text))
    assert refs and refs <= set(schemas)


def test_every_event_says_who_did_it_and_when(ledger):
    from tests.support import declaration_body, new_key, onboard

    t = onboard(ledger)
    ledger.post(
        "/v1/declarations", t.token_name, declaration_body(t.uscc, t.book_no), key=new_key()
    )
    events = ledger.get("/v1/events", "auditor", params={"after": 0, "limit": 1000}).json()["items"]
    assert events
    for e in events:
        payload = e["payload"]
        assert payload["actor"]["name"] and payload["actor"]["role"], e
        assert payload["occurred_at"] and e["recorded_at"].endswith("Z"), e
    later = ledger.get("/v1/events", "auditor", params={"after": events[1]["position"]}).json()
    assert [e["position"] for e in later["items"]] == [e["position"] for e in events[2:]]


def test_every_error_is_documented_as_problem_json_and_auth_as_bearer(ledger):
    doc = ledger.client.get("/openapi.json").json()
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            for status, response in op["responses"].items():
                if status.startswith(("4", "5")):
                    assert list(response["content"]) == ["application/problem+json"], (
                        path,
                        method,
                        status,
                    )
            public = path.startswith(("/v1/zones", "/v1/reference/", "/healthz", "/metrics"))
            assert op["security"] == ([] if public else [{"bearer": []}]), path
