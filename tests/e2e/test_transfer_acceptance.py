"""Two-sided transfers over HTTP (issue #14, item 1): a transfer into another enterprise's
book waits in `awaiting_acceptance` until that enterprise accepts or refuses it; nothing is
reserved or moves before; one between two books of one enterprise needs no acceptance; and
another enterprise's book is no oracle: whatever does not fit is the unknown book's answer,
byte for byte."""

from __future__ import annotations

from typing import Any

import pytest

from tests.samples import book_body, line
from tests.support import Tenant, admit, declaration_body, new_key, onboard, running_ledger


@pytest.fixture
def ledger(database_url):
    with running_ledger(database_url) as ledger:
        ledger.issue("gate-xcbz", "operator", zone="XCBZ")
        ledger.issue("gate-xepz", "operator", zone="XEPZ")
        yield ledger


@pytest.fixture
def parties(ledger):
    """A with 10 laptops in XCBZ; B with a book in XEPZ."""
    a, b = onboard(ledger), onboard(ledger, zone="XEPZ")
    admit(ledger, a, 1, "10")
    return a, b


def transfer_body(a: Tenant, destination_book: str, **line_kw: Any) -> dict[str, Any]:
    return declaration_body(
        a.uscc,
        a.book_no,
        flow="transfer",
        trade_mode="5034",
        country="CN",
        destination_zone="XEPZ",
        destination_account_book=destination_book,
        lines=[line(1, quantity="8", origin_country=None, **line_kw)],
    )


def laptops(ledger, who: str, book: str) -> tuple[str, str, str]:
    items = ledger.get(f"/v1/account-books/{book}", who).json()["items"]
    x = next(i for i in items if i["item_no"] == 1)
    return x["on_hand"], x["pending_out"], x["in_transit_out"]


def move(ledger, who: str, kind: str, ref: str) -> Any:
    body = {"kind": kind, "declaration": ref, "lines": [{"line_no": 1, "quantity": "8"}]}
    return ledger.post("/v1/movements", who, body, key=new_key())


def test_the_destination_accepts_and_only_then_the_goods_are_reserved_and_move(ledger, parties):
    a, b = parties
    r = ledger.post("/v1/declarations", a.token_name, transfer_body(a, b.book_no), key=new_key())
    assert r.status_code == 201, r.text
    t = r.json()
    assert (t["status"], t["channel"]) == ("awaiting_acceptance", "green")
    assert laptops(ledger, a.token_name, a.book_no) == ("10", "0", "0")
    refused = move(ledger, "gate-xcbz", "transfer_dispatch", t["id"])
    assert refused.status_code == 409, refused.text
    assert refused.json()["rule"] == "declaration_not_released"
    assert refused.json()["current_status"] == "awaiting_acceptance"
    # B finds what waits for it.
    waiting = ledger.get(
        "/v1/declarations", b.token_name, params={"status": "awaiting_acceptance"}
    ).json()["items"]
    assert [d["id"] for d in waiting] == [t["id"]]
    # Nobody but B decides: the declarant and a stranger find no such declaration, other
    # roles may not use the route; none of it changes the log.
    stranger = onboard(ledger)
    unknown = ledger.post("/v1/declarations/900799999999999999/acceptance", a.token_name, {})
    before = ledger.log_state()
    for who in (a.token_name, stranger.token_name):
        answer = ledger.post(f"/v1/declarations/{t['id']}/acceptance", who, {})
        assert answer.status_code == 404, answer.text
        assert answer.json()["detail"] == f"no declaration {t['id']}"
        assert answer.json().keys() == unknown.json().keys()
    for role in ("officer", "admin", "auditor", "gate-xepz"):
        assert ledger.post(f"/v1/declarations/{t['id']}/acceptance", role, {}).status_code == 403
    assert ledger.log_state() == before
    # B accepts with an empty body: released, and the release reserves A's stock.
    accepted = ledger.client.post(
        f"/v1/declarations/{t['id']}/acceptance", headers=ledger.headers(b.token_name)
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "released"
    assert laptops(ledger, a.token_name, a.book_no) == ("10", "8", "0")
    detail = ledger.get(f"/v1/declarations/{t['declaration_no']}", a.token_name).json()
    assert detail["status"] == "released"
    # The acceptance released it; the release filed its checklist in the same write.
    assert [h["type"] for h in detail["history"]][-2:] == ["TransferAccepted", "ChecklistFiled"]
    assert detail["history"][-2]["actor"]["enterprise"] == b.uscc
    again = ledger.post(f"/v1/declarations/{t['id']}/acceptance", b.token_name, {})
    assert again.status_code == 409 and again.json()["current_status"] == "released"
    # From here on it is a transfer as any other.
    assert move(ledger, "gate-xcbz", "transfer_dispatch", t["id"]).status_code == 201
    assert laptops(ledger, a.token_name, a.book_no) == ("2", "0", "8")
    assert move(ledger, "gate-xepz", "transfer_receipt", t["id"]).status_code == 201
    assert laptops(ledger, b.token_name, b.book_no) == ("8", "0", "0")


def test_the_destination_refuses_with_a_reason_and_nothing_ever_moves(ledger, parties):
    a, b = parties
    t = ledger.post(
        "/v1/declarations", a.token_name, transfer_body(a, b.book_no), key=new_key()
    ).json()
    path = f"/v1/declarations/{t['id']}/refusal"
    before = ledger.log_state()
    for body in ({}, {"reason": "   "}):
        r = ledger.post(path, b.token_name, body)
        assert r.status_code == 422 and r.json()["errors"][0]["loc"] == "$.reason", r.text
    assert ledger.post(path, a.token_name, {"reason": "x"}).status_code == 404
    assert ledger.log_state() == before
    r = ledger.post(path, b.token_name, {"reason": "we ordered no such goods"})
    assert r.status_code == 200 and r.json()["status"] == "refused", r.text
    assert laptops(ledger, a.token_name, a.book_no) == ("10", "0", "0")
    history = ledger.get(f"/v1/declarations/{t['id']}", b.token_name).json()["history"]
    assert history[-1]["type"] == "TransferRefused"
    for who, action, body in (
        (b.token_name, "acceptance", {}),
        (a.token_name, "withdrawal", {"reason": "x"}),
    ):
        r = ledger.post(f"/v1/declarations/{t['id']}/{action}", who, body)
        assert r.status_code == 409, r.text
        assert (r.json()["rule"], r.json()["current_status"]) == ("invalid_transition", "refused")
    assert move(ledger, "gate-xcbz", "transfer_dispatch", t["id"]).status_code == 409
    # A refused transfer never took effect: statistics leave it out.
    flows = ledger.get("/v1/stats", a.token_name, params={"group_by": "flow"}).json()["items"]
    assert "transfer" not in {row["key"] for row in flows}


def test_a_transfer_between_two_books_of_one_enterprise_needs_no_acceptance(ledger, parties):
    a, _ = parties
    own = f"{a.book_no}-EPZ"
    assert (
        ledger.post("/v1/account-books", "admin", book_body(own, a.uscc, "XEPZ")).status_code == 201
    )
    r = ledger.post("/v1/declarations", a.token_name, transfer_body(a, own), key=new_key())
    assert r.status_code == 201 and r.json()["status"] == "released", r.text
    assert laptops(ledger, a.token_name, a.book_no) == ("10", "8", "0")
    again = ledger.post(f"/v1/declarations/{r.json()['id']}/acceptance", a.token_name, {})
    assert again.status_code == 409 and again.json()["current_status"] == "released"


def test_another_enterprises_book_gets_the_unknown_books_answer_byte_for_byte(ledger, parties):
    """The probe of issue #14: `item 2 is kept in KGM`, `item 5 is not in the destination
    book`, `no such account book in the destination zone` told A about B's book."""
    a, b = parties
    before = ledger.log_state()

    def submit(body: dict[str, Any]) -> Any:
        return ledger.post("/v1/declarations", a.token_name, body, key="probe")

    unknown = submit(transfer_body(a, "B00000000XEPZ"))
    assert unknown.status_code == 422
    assert unknown.json()["errors"] == [
        {"loc": "$.destination_account_book", "msg": "no such account book in the destination zone"}
    ]
    probes = {
        "an item kept in another unit": transfer_body(a, b.book_no, destination_item_no=2),
        "an item not in the book": transfer_body(a, b.book_no, destination_item_no=5),
    }
    for name, body in probes.items():
        r = submit(body)
        assert (r.status_code, r.content) == (unknown.status_code, unknown.content), name
        assert r.headers["content-type"] == unknown.headers["content-type"], name
    # In another zone than the one named: the unknown book in that zone, byte for byte.
    elsewhere = transfer_body(a, b.book_no) | {"destination_zone": "XHTZ"}
    unknown_elsewhere = submit(transfer_body(a, "B00000000XEPZ") | {"destination_zone": "XHTZ"})
    assert submit(elsewhere).content == unknown_elsewhere.content
    assert ledger.log_state() == before
    # The declarant's own book still says what is wrong, line by line.
    own = f"{a.book_no}-EPZ"
    ledger.post("/v1/account-books", "admin", book_body(own, a.uscc, "XEPZ"))
    mine = submit(transfer_body(a, own, destination_item_no=2))
    assert mine.json()["errors"] == [
        {"loc": "$.lines[0].destination_item_no", "msg": "item 2 is kept in KGM"}
    ]
