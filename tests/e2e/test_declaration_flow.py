"""The first slice end to end, on both stores: register, open a book, declare, read, audit."""

from __future__ import annotations

import itertools

import pytest

from tests.samples import line
from tests.support import declaration_body, new_key, onboard, running_ledger


@pytest.fixture
def ledger(database_url):
    with running_ledger(database_url) as ledger:
        yield ledger


def test_an_enterprise_declares_goods_and_reads_them_back(ledger):
    tenant = onboard(ledger)
    r = ledger.post(
        "/v1/declarations",
        tenant.token_name,
        declaration_body(tenant.uscc, tenant.book_no),
        key=new_key(),
    )
    assert r.status_code == 201, r.text
    created = r.json()
    # A regular enterprise's laptops from Germany into a bonded zone: green, nothing to pay.
    assert created["status"] == "released" and created["channel"] == "green"
    assert created["duties"]["total"] == "0.00" and created["duties"]["outstanding"] == "0.00"
    number = created["declaration_no"]
    assert len(number) == 18 and number.isdigit()
    assert number[:4] == "9007" and number[8] == "1" and number.endswith("000000001")
    assert created["lines"][0]["quantity"] == "1000"
    assert created["lines"][0]["quantity_moved"] == "0"
    assert created["freight"] == "1200.00"
    # Released at once, it filed its checklist (核注清单) in the same write.
    checklist_no = created["checklist_no"]
    assert checklist_no.startswith("QD9007") and checklist_no[8] == "I"
    assert len(checklist_no) == 18 and checklist_no[9:].isdigit()

    for ref in (created["id"], number):
        r = ledger.get(f"/v1/declarations/{ref}", tenant.token_name)
        assert r.status_code == 200, r.text
        detail = r.json()
        assert detail["declaration_no"] == number
        assert [h["type"] for h in detail["history"]] == [
            "DeclarationSubmitted",
            "DeclarationAssessed",
            "ChecklistFiled",
        ]
        assert detail["checklist_no"] == checklist_no
        assert detail["history"][0]["actor"] == {
            "name": tenant.token_name,
            "role": "enterprise",
            "enterprise": tenant.uscc,
        }
        assert detail["occurred_at"]


def test_declaration_numbers_follow_their_series(ledger):
    tenant = onboard(ledger)
    numbers = []
    for flow in ("first_line_in", "first_line_in", "second_line_in"):
        body = declaration_body(tenant.uscc, tenant.book_no, flow=flow)
        r = ledger.post("/v1/declarations", tenant.token_name, body, key=new_key())
        assert r.status_code == 201, r.text
        numbers.append(r.json()["declaration_no"])
    assert numbers[0][8:] == "1000000001"
    assert numbers[1][8:] == "1000000002"
    # second_line_in is an export from China's market into the zone: direction 0, its own series.
    assert numbers[2][8:] == "0000000001"


def test_withdrawal_is_final(ledger):
    tenant = onboard(ledger)
    # Medicaments are watched goods: the declaration waits in document review.
    body = declaration_body(tenant.uscc, tenant.book_no, lines=[line(3)])
    created = ledger.post("/v1/declarations", tenant.token_name, body, key=new_key()).json()
    r = ledger.post(
        f"/v1/declarations/{created['declaration_no']}/withdrawal",
        tenant.token_name,
        {"reason": "wrong container"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "withdrawn"
    again = ledger.post(
        f"/v1/declarations/{created['id']}/withdrawal", tenant.token_name, {"reason": "again"}
    )
    assert again.status_code == 409
    problem = again.json()
    assert problem["rule"] == "invalid_transition" and problem["current_status"] == "withdrawn"
    detail = ledger.get(f"/v1/declarations/{created['id']}", "officer").json()
    assert detail["status"] == "withdrawn"
    assert [h["type"] for h in detail["history"]] == [
        "DeclarationSubmitted",
        "DeclarationAssessed",
        "DeclarationWithdrawn",
    ]


def test_another_tenant_sees_nothing(ledger):
    a, b = onboard(ledger), onboard(ledger)
    created = ledger.post(
        "/v1/declarations", a.token_name, declaration_body(a.uscc, a.book_no), key=new_key()
    ).json()
    assert ledger.get(f"/v1/declarations/{created['id']}", b.token_name).status_code == 404
    assert ledger.get(f"/v1/account-books/{a.book_no}", b.token_name).status_code == 404
    listed = ledger.get("/v1/declarations", b.token_name).json()
    assert listed == {"items": [], "next_cursor": None}
    # b may not use a's book, and may not declare as a.
    r = ledger.post(
        "/v1/declarations", b.token_name, declaration_body(b.uscc, a.book_no), key=new_key()
    )
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == "$.account_book"
    r = ledger.post(
        "/v1/declarations", b.token_name, declaration_body(a.uscc, a.book_no), key=new_key()
    )
    assert r.status_code == 403
    r = ledger.post(
        f"/v1/declarations/{created['id']}/withdrawal", b.token_name, {"reason": "not mine"}
    )
    assert r.status_code == 404


def test_the_auditor_pages_and_verifies_the_log(ledger):
    tenant = onboard(ledger)
    ledger.post(
        "/v1/declarations",
        tenant.token_name,
        declaration_body(tenant.uscc, tenant.book_no),
        key=new_key(),
    )
    events, cursor = [], None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = ledger.get("/v1/events", "auditor", params=params).json()
        events += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [e["sequence"] for e in events] == list(range(1, len(events) + 1))
    types = [e["type"] for e in events]
    # The server's first start publishes its reference tables (one event a table: every month
    # of rates, the tariff, the positive list, the risk rules; docs/reference-data.md), then
    # the fixture's three keys, then the tenant: keys are events too (docs/decisions/0016).
    published = len(list(itertools.takewhile(lambda t: t == "ReferencePublished", types)))
    assert published >= 4
    types = types[published:]
    assert types[:6] == ["ApiKeyIssued"] * 3 + [
        "EnterpriseRegistered",
        "AccountBookOpened",
        "ApiKeyIssued",
    ]
    assert "DeclarationSubmitted" in types and "DeclarationNumberIssued" in types
    report = ledger.get("/v1/audit/verify", "auditor").json()
    assert report["ok"] is True and report["events_checked"] == len(events)
    digest = ledger.get("/v1/audit/digest", "officer").json()
    assert digest["sequence"] == len(events) and digest["head_hash"] == events[-1]["hash"]
    assert ledger.get("/v1/events", tenant.token_name).status_code == 403
    assert ledger.get("/v1/events", "admin").status_code == 403
