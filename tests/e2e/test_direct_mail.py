"""9610 direct mail over HTTP: a parcel from abroad declared `direct_in` at a supervision site's
zone, in no account book, taxed as retail against the buyer's quota, released without touching
any book or making any lot, and found by the trace from its order number, waybill number and
transport reference (GACC Announcement 2014 No. 12; 2018 No. 194).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from api.cli import _trace_lines
from domain.scope import Scope
from tests.e2e.test_ecommerce import BUYER, pay, quota_used, retail_body, submit, year_of
from tests.support import Ledger, Tenant, new_key, onboard, running_ledger

FLIGHT = "CA908-20261127"


def direct_body(tenant: Tenant, amount: str = "4000.00", **fields: Any) -> dict[str, Any]:
    """A 9610 parcel of one laptop at `amount` CNY flown in to the XCBZ supervision site."""
    body = retail_body(
        tenant,
        amount,
        trade_mode="9610",
        flow="direct_in",
        country="DE",
        transport={"mode": "air", "reference": FLIGHT},
    )
    del body["account_book"]
    return body | fields


@pytest.fixture
def ledger(database_url):
    with running_ledger(database_url) as ledger:
        yield ledger


def trace(ledger: Ledger, who: str, ref: str) -> Any:
    return ledger.get("/v1/trace", who, params={"ref": ref})


def test_a_9610_parcel_is_taxed_released_in_no_book_and_found_by_the_trace(ledger):
    shop = onboard(ledger)
    r = submit(ledger, shop, direct_body(shop, "4000.00"))
    assert r.status_code == 201, r.text
    parcel = r.json()
    assert (parcel["flow"], parcel["trade_mode"], parcel["account_book"]) == (
        "direct_in",
        "9610",
        None,
    )
    # Retail within the limits: tariff 0, VAT 4000.00 x 13% x 70% = 364.00.
    assert parcel["duties"]["vat"] == "364.00" and parcel["duties"]["tariff"] == "0.00"
    assert parcel["status"] == "awaiting_payment"
    assert quota_used(ledger, BUYER, year_of(parcel)) == Decimal("4000.00")
    # The payment releases it, and writes only that and the parcel's price in the declarant's
    # own unit-value history (prices count once released): no reservation, no book, no lot.
    before = ledger.log_state()[0]
    r = pay(ledger, shop, parcel["id"], "364.00")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "released"
    written = ledger.services.app.log.select_log(None, 100_000)[before:]
    assert [e.topic for e in written] == [
        "domain.clearance:DutiesPaid",
        "domain.unit_values:UnitValueReleased",
    ]
    book = ledger.get(f"/v1/account-books/{shop.book_no}", shop.token_name).json()
    assert all(item["on_hand"] == item["pending_out"] == "0" for item in book["items"])
    # Listed with the declarations of its flow.
    listed = ledger.get("/v1/declarations", shop.token_name, params={"flow": "direct_in"}).json()
    assert [d["id"] for d in listed["items"]] == [parcel["id"]]

    order_no = parcel["ecommerce"]["order"]["order_no"]
    waybill_no = parcel["ecommerce"]["waybill"]["waybill_no"]
    for ref, kind in ((order_no, "order"), (waybill_no, "waybill"), (FLIGHT, "transport")):
        r = trace(ledger, shop.token_name, ref)
        assert r.status_code == 200, r.text
        found = r.json()
        assert found["lots"] == [] and found["events"] == [] and found["edges"] == []
        assert found["matched"] == [{"kind": kind, "id": ref}]
        assert found["zones"] == ["XCBZ"]
        [node] = found["parcels"]
        assert node["declaration_id"] == parcel["id"]
        assert node["declaration_no"] == parcel["declaration_no"]
        assert (node["status"], node["zone"], node["trade_mode"]) == ("released", "XCBZ", "9610")
        assert (node["order_no"], node["waybill_no"]) == (order_no, waybill_no)
        assert node["transport"] == {"mode": "air", "reference": FLIGHT, "container": None}
        assert node["lines"][0]["hs_code"] == "8471300000"
        # The buyer is never in a trace.
        assert BUYER not in r.text
    by_number = trace(ledger, "officer", parcel["declaration_no"]).json()
    assert [p["declaration_id"] for p in by_number["parcels"]] == [parcel["id"]]
    # The EPCIS export is about lots: a parcel-only trace exports no event.
    r = ledger.get("/v1/trace/epcis", "officer", params={"ref": order_no})
    assert r.status_code == 200, r.text
    assert r.json()["epcisBody"]["eventList"] == []
    # The CLI's text names the parcel.
    found = ledger.services.trace.trace(waybill_no, scope=Scope(role="officer"))
    text = "\n".join(_trace_lines(found, 500))
    assert f"matched: waybill {waybill_no}" in text
    assert f"9610 declaration {parcel['declaration_no']} released" in text
    assert f"transport air {FLIGHT}  order {order_no}  waybill {waybill_no}" in text


def test_the_parcel_is_its_declarants_and_its_zones(ledger):
    shop = onboard(ledger)
    parcel = submit(ledger, shop, direct_body(shop)).json()
    order_no = parcel["ecommerce"]["order"]["order_no"]
    other = onboard(ledger)
    ledger.issue("gate-xcbz-mail", "operator", zone="XCBZ")
    ledger.issue("gate-xhtz-mail", "operator", zone="XHTZ")
    for who in ("officer", "auditor", "gate-xcbz-mail", shop.token_name):
        assert trace(ledger, who, order_no).status_code == 200, who
        assert ledger.get(f"/v1/declarations/{parcel['id']}", who).status_code == 200, who
    for who in ("gate-xhtz-mail", other.token_name):
        assert trace(ledger, who, order_no).status_code == 404, who
        assert trace(ledger, who, FLIGHT).status_code == 404, who
        assert ledger.get(f"/v1/declarations/{parcel['id']}", who).status_code == 404, who


def test_a_flight_finds_its_parcels_a_page_at_a_time(ledger):
    shop = onboard(ledger)
    ids = [submit(ledger, shop, direct_body(shop, "100.00")).json()["id"] for _ in range(3)]
    first = trace(ledger, "officer", FLIGHT).json()
    assert [p["declaration_id"] for p in first["parcels"]] == ids
    r = ledger.get("/v1/trace", "officer", params={"ref": FLIGHT, "limit": 2})
    page = r.json()
    assert [p["declaration_id"] for p in page["parcels"]] == ids[:2]
    assert page["truncated"] is True and page["next_cursor"]
    params = {"ref": FLIGHT, "limit": 2, "cursor": page["next_cursor"]}
    rest = ledger.get("/v1/trace", "officer", params=params).json()
    assert [p["declaration_id"] for p in rest["parcels"]] == ids[2:]
    assert rest["truncated"] is False


@pytest.mark.parametrize(
    ("flow", "trade_mode"),
    [("second_line_out", "9610"), ("direct_in", "1210"), ("direct_in", "1239")],
)
def test_a_mode_on_the_wrong_flow_is_422_at_trade_mode_with_its_rule(ledger, flow, trade_mode):
    shop = onboard(ledger)
    body = direct_body(shop, flow=flow, trade_mode=trade_mode)
    if flow != "direct_in":
        body["account_book"] = shop.book_no
    before = ledger.log_state()
    r = submit(ledger, shop, body)
    assert r.status_code == 422, r.text
    problem = r.json()
    assert problem["rule"] == "mode_not_allowed_for_flow"
    assert [e for e in problem["errors"] if e["loc"] == "$.trade_mode"] == [
        {
            "loc": "$.trade_mode",
            "msg": "9610 is declared only with flow direct_in, and direct_in only with 9610",
            "rule": "mode_not_allowed_for_flow",
        }
    ]
    assert ledger.log_state() == before


def test_a_parcel_naming_an_account_book_is_422_and_writes_nothing(ledger):
    shop = onboard(ledger)
    before = ledger.log_state()
    r = submit(ledger, shop, direct_body(shop, account_book=shop.book_no))
    assert r.status_code == 422, r.text
    assert [e["loc"] for e in r.json()["errors"]] == ["$.account_book"]
    # Any other flow without its book is refused at the same field.
    body = direct_body(shop, flow="second_line_out", trade_mode="1210")
    r = submit(ledger, shop, body)
    assert r.status_code == 422, r.text
    assert [e["loc"] for e in r.json()["errors"]] == ["$.account_book"]
    assert ledger.log_state() == before


def test_no_gate_admits_a_parcel_into_a_book(ledger):
    shop = onboard(ledger)
    parcel = submit(ledger, shop, direct_body(shop)).json()
    pay(ledger, shop, parcel["id"], parcel["duties"]["outstanding"])
    ledger.issue("gate-xcbz-in", "operator", zone="XCBZ")
    before = ledger.log_state()
    body = {
        "kind": "gate_in",
        "declaration": parcel["id"],
        "lines": [{"line_no": 1, "quantity": "1"}],
    }
    r = ledger.post("/v1/movements", "gate-xcbz-in", body, key=new_key())
    assert r.status_code == 409, r.text
    assert r.json()["rule"] == "wrong_flow"
    assert ledger.log_state() == before


def test_a_parcel_needs_no_bonded_ecommerce_permit(ledger):
    # The export processing zone holds no bonded e-commerce permit; a 9610 parcel cleared at
    # a supervision site in it draws on no bonded stock.
    shop = onboard(ledger, zone="XEPZ")
    r = submit(ledger, shop, direct_body(shop, zone="XEPZ"))
    assert r.status_code == 201, r.text
    assert r.json()["duties"]["vat"] == "364.00"


def test_a_withdrawn_parcel_gives_its_amount_back_and_the_trace_says_so(ledger):
    shop = onboard(ledger)
    parcel = submit(ledger, shop, direct_body(shop, "1000.00")).json()
    year = year_of(parcel)
    assert quota_used(ledger, BUYER, year) == Decimal("1000.00")
    r = ledger.post(
        f"/v1/declarations/{parcel['id']}/withdrawal", shop.token_name, {"reason": "cancelled"}
    )
    assert r.status_code == 200, r.text
    assert quota_used(ledger, BUYER, year) == 0
    order_no = parcel["ecommerce"]["order"]["order_no"]
    [node] = trace(ledger, shop.token_name, order_no).json()["parcels"]
    assert node["status"] == "withdrawn"
