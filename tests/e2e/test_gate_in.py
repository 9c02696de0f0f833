"""Goods enter a zone through its gate under a released inbound declaration (gate_in)."""

from __future__ import annotations

import threading

import pytest

from tests.samples import line
from tests.support import declaration_body, new_key, onboard, running_ledger


@pytest.fixture
def ledger(database_url):
    with running_ledger(database_url) as ledger:
        ledger.issue("gate-xcbz", "operator", zone="XCBZ")
        ledger.issue("gate-xepz", "operator", zone="XEPZ")
        yield ledger


def _released_import(ledger, t, quantity="100", **overrides):
    overrides.setdefault("lines", [line(1, quantity=quantity)])
    body = declaration_body(t.uscc, t.book_no, **overrides)
    r = ledger.post("/v1/declarations", t.token_name, body, key=new_key())
    assert r.status_code == 201 and r.json()["status"] == "released", r.text
    return r.json()


def _gate_in(ledger, who, declaration, quantity, key=None, **extra):
    body = {
        "kind": "gate_in",
        "declaration": declaration,
        "lines": [{"line_no": 1, "quantity": quantity}],
        **extra,
    }
    return ledger.post("/v1/movements", who, body, key=key or new_key())


def test_goods_pass_the_gate_in_two_trucks_and_become_lots(ledger):
    t = onboard(ledger)
    d = _released_import(ledger, t, quantity="100")
    first = _gate_in(
        ledger, "gate-xcbz", d["declaration_no"], "60", gate_note="HF-0001", vehicle="陕A12345"
    )
    assert first.status_code == 201, first.text
    moved = first.json()
    assert moved["kind"] == "gate_in" and moved["zone"] == "XCBZ"
    assert [(x["item_no"], x["quantity"]) for x in moved["lots"]] == [(1, "60")]
    second = _gate_in(ledger, "gate-xcbz", d["id"], "40")
    assert second.status_code == 201, second.text

    book = ledger.get(f"/v1/account-books/{t.book_no}", t.token_name).json()
    laptops = next(i for i in book["items"] if i["item_no"] == 1)
    assert laptops["on_hand"] == "100" and laptops["available"] == "100"
    decl = ledger.get(f"/v1/declarations/{d['id']}", t.token_name).json()
    assert decl["lines"][0]["quantity_moved"] == "100"

    lot = ledger.get(f"/v1/lots/{moved['lots'][0]['lot_id']}", "officer").json()
    # Entered from abroad: bonded; its papers are the declaration, the gate note, the train
    # and the container.
    assert lot["goods_status"] == "bonded" and lot["quantity_in"] == "60"
    kinds = {doc["kind"]: doc["number"] for doc in lot["documents"]}
    assert kinds["declaration"] == d["declaration_no"] and kinds["gate_note"] == "HF-0001"
    assert kinds["transport"] == "X8024-20261127" and kinds["container"] == "TGHU1234567"
    again = ledger.get(f"/v1/movements/{moved['movement_id']}", t.token_name).json()
    assert again == moved


def test_no_more_passes_than_the_line_covers(ledger):
    t = onboard(ledger)
    d = _released_import(ledger, t, quantity="100")
    assert _gate_in(ledger, "gate-xcbz", d["id"], "70").status_code == 201
    before = ledger.log_state()
    r = _gate_in(ledger, "gate-xcbz", d["id"], "31")
    assert r.status_code == 409 and r.json()["rule"] == "exceeds_declared_quantity"
    assert ledger.log_state() == before


def test_concurrent_gates_never_admit_more_than_declared(ledger):
    t = onboard(ledger)
    d = _released_import(ledger, t, quantity="10")
    codes: list[int] = []
    barrier = threading.Barrier(6)

    def push() -> None:
        barrier.wait()
        codes.append(_gate_in(ledger, "gate-xcbz", d["id"], "3").status_code)

    threads = [threading.Thread(target=push) for _ in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(codes) == [201, 201, 201, 409, 409, 409]
    book = ledger.get(f"/v1/account-books/{t.book_no}", "officer").json()
    assert next(i for i in book["items"] if i["item_no"] == 1)["on_hand"] == "9"


def test_a_retried_gate_in_admits_once(ledger):
    t = onboard(ledger)
    d = _released_import(ledger, t, quantity="10")
    key = new_key()
    first = _gate_in(ledger, "gate-xcbz", d["id"], "4", key=key)
    again = _gate_in(ledger, "gate-xcbz", d["id"], "4", key=key)
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotency-Replayed"] == "true" and again.json() == first.json()
    book = ledger.get(f"/v1/account-books/{t.book_no}", "officer").json()
    assert next(i for i in book["items"] if i["item_no"] == 1)["on_hand"] == "4"


def test_the_gate_refuses_what_it_may_not_admit(ledger):
    t = onboard(ledger)
    d = _released_import(ledger, t)
    # Another zone's gate: the declaration is not its to see (the same answer as unknown).
    before = ledger.log_state()
    r = _gate_in(ledger, "gate-xepz", d["id"], "1")
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == "$.declaration"
    assert ledger.log_state() == before
    # Not an operator.
    assert _gate_in(ledger, t.token_name, d["id"], "1").status_code == 403
    assert _gate_in(ledger, "officer", d["id"], "1").status_code == 403
    # A declaration still in document review (medicaments are watched).
    body = declaration_body(t.uscc, t.book_no, lines=[line(3)])
    waiting = ledger.post("/v1/declarations", t.token_name, body, key=new_key()).json()
    r = _gate_in(ledger, "gate-xcbz", waiting["id"], "1")
    assert r.status_code == 409 and r.json()["rule"] == "declaration_not_released"
    assert r.json()["current_status"] == "document_review"
    # Unknown declaration, unknown line, fractional pieces, no key.
    assert _gate_in(ledger, "gate-xcbz", "900720269999999999", "1").status_code == 422
    r = ledger.post(
        "/v1/movements",
        "gate-xcbz",
        {"kind": "gate_in", "declaration": d["id"], "lines": [{"line_no": 9, "quantity": "1"}]},
        key=new_key(),
    )
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == "$.lines[0].line_no"
    r = _gate_in(ledger, "gate-xcbz", d["id"], "1.5")
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == "$.lines[0].quantity"
    r = ledger.client.post(
        "/v1/movements",
        json={"kind": "gate_in", "declaration": d["id"], "lines": []},
        headers={"Authorization": f"Bearer {ledger.tokens['gate-xcbz']}"},
    )
    assert r.status_code == 400
    # Kinds of later work are refused, not half-done.
    r = ledger.post("/v1/movements", "gate-xcbz", {"kind": "bom_registration"}, key=new_key())
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == "$.kind"


def test_other_tenants_and_zones_do_not_see_lots_or_movements(ledger):
    a, b = onboard(ledger), onboard(ledger)
    d = _released_import(ledger, a)
    moved = _gate_in(ledger, "gate-xcbz", d["id"], "5").json()
    lot = moved["lots"][0]["lot_id"]
    assert ledger.get(f"/v1/lots/{lot}", b.token_name).status_code == 404
    assert ledger.get(f"/v1/lots/{lot}", "gate-xepz").status_code == 404
    assert ledger.get(f"/v1/lots/{lot}", "gate-xcbz").status_code == 200
    assert ledger.get(f"/v1/movements/{moved['movement_id']}", b.token_name).status_code == 404
    assert ledger.get("/v1/lots/not-a-uuid", a.token_name).status_code == 404


def test_lots_keep_their_customs_status_in_the_book_item(ledger):
    from domain.movements import item_stock_id

    t = onboard(ledger)
    abroad = _released_import(ledger, t, quantity="5")
    domestic = _released_import(
        ledger,
        t,
        quantity="3",
        flow="second_line_in",
        country="CN",
        lines=[line(1, quantity="3", origin_country="CN")],
    )
    assert _gate_in(ledger, "gate-xcbz", abroad["id"], "5").status_code == 201
    assert _gate_in(ledger, "gate-xcbz", domestic["id"], "3").status_code == 201
    stock = ledger.services.app.load(item_stock_id(t.book_no, 1))
    assert stock.on_hand == 8
    assert stock.on_hand_of("bonded") == 5 and stock.on_hand_of("domestic") == 3
    # Admission order is FIFO order.
    assert [b.goods_status for b in stock.lots.values()] == ["bonded", "domestic"]
