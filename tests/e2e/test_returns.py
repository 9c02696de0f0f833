"""Returns of cross-border retail goods over HTTP (#16 item 4): within 30 days of release the
declarant records the buyer's return; the taxes are refunded pro rata, the returned share of
the order goes back to the buyer's quota, and a bonded list's goods come back into the zone as
lots whose parents are the lots that left, so the trace shows the round trip.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tests.e2e.test_direct_mail import direct_body
from tests.e2e.test_ecommerce import BUYER, pay, quota_used, retail_body, submit, year_of
from tests.samples import line, rules_without_draws
from tests.support import (
    Clock,
    Ledger,
    Tenant,
    admit,
    china,
    clocked_ledger,
    declaration_body,
    new_key,
    onboard,
    running_ledger,
)


@pytest.fixture
def ledger(database_url):
    with running_ledger(database_url) as ledger:
        ledger.issue("gate-xcbz", "operator", zone="XCBZ")
        yield ledger


def laptops(tenant: Tenant, quantity: str, price: str = "1000.00") -> dict[str, Any]:
    """A 1210 retail list of `quantity` laptops at `price` CNY (VAT 13% x 70%, no other tax)."""
    amount = str(Decimal(quantity) * Decimal(price))
    return retail_body(tenant, amount, lines=[line(1, quantity=quantity, unit_price=price)])


def released(ledger: Ledger, tenant: Tenant, body: dict[str, Any]) -> dict[str, Any]:
    """The list submitted and its duties paid: released, its stock reserved."""
    r = submit(ledger, tenant, body)
    assert r.status_code == 201, r.text
    r = pay(ledger, tenant, r.json()["id"], r.json()["duties"]["outstanding"])
    assert r.status_code == 200 and r.json()["status"] == "released", r.text
    return r.json()  # type: ignore[no-any-return]


def move(ledger: Ledger, body: dict[str, Any]) -> Any:
    return ledger.post("/v1/movements", "gate-xcbz", body, key=new_key())


def gate_out(ledger: Ledger, ref: str, quantity: str, **line_fields: Any) -> dict[str, Any]:
    body = {
        "kind": "gate_out",
        "declaration": ref,
        "lines": [{"line_no": 1, "quantity": quantity, **line_fields}],
    }
    r = move(ledger, body)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def give_back(
    ledger: Ledger, tenant: Tenant, ref: str, quantity: str, key: str | None = None
) -> Any:
    body = {"lines": [{"line_no": 1, "quantity": quantity}], "reason": "does not fit"}
    path = f"/v1/declarations/{ref}/returns"
    return ledger.post(path, tenant.token_name, body, key=key or new_key())


def readmit(ledger: Ledger, return_id: str, quantity: str) -> Any:
    body = {
        "kind": "gate_in",
        "return_id": return_id,
        "lines": [{"line_no": 1, "quantity": quantity}],
    }
    return move(ledger, body)


def test_a_1210_list_returned_in_part_comes_back_into_the_zone_and_is_sold_again(ledger):
    shop = onboard(ledger)
    admit(ledger, shop, 1, "5")
    sold = released(ledger, shop, laptops(shop, "3"))
    # 3,000.00 x 13% x 70% = 273.00, paid; the buyer used 3,000.00 of the year.
    assert sold["duties"]["total"] == "273.00" and sold["duties"]["refunded"] == "0.00"
    year = year_of(sold)
    assert quota_used(ledger, BUYER, year) == Decimal("3000.00")
    exit_lot = gate_out(ledger, sold["id"], "3")["lots"][0]["lot_id"]

    r = give_back(ledger, shop, sold["declaration_no"], "1")
    assert r.status_code == 201, r.text
    first = r.json()
    assert first["declaration_no"] == sold["declaration_no"]
    assert first["lines"] == [{"line_no": 1, "item_no": 1, "quantity": "1"}]
    # One laptop of three: a third of each tax and of the order.
    assert first["refund"] == {"vat": "91.00", "consumption_tax": "0.00", "total": "91.00"}
    assert first["quota_restored"] == "1000.00"
    assert first["readmission"] == "gate_in"
    # Where the return stands in the log (its idempotency record is written after it).
    assert first["position"] == ledger.log_state()[0] - 1
    assert quota_used(ledger, BUYER, year) == Decimal("2000.00")
    detail = ledger.get(f"/v1/declarations/{sold['id']}", shop.token_name).json()
    assert detail["status"] == "released" and detail["duties"]["refunded"] == "91.00"
    assert detail["history"][-1]["type"] == "GoodsReturned"

    # The zone's operator admits it back: a bonded lot whose parent is the lot that left.
    r = readmit(ledger, first["return_id"], "1")
    assert r.status_code == 201, r.text
    back = r.json()
    assert back["kind"] == "gate_in" and back["declaration_no"] == sold["declaration_no"]
    (lot,) = back["lots"]
    assert (lot["item_no"], lot["quantity"]) == (1, "1")
    returned_lot = lot["lot_id"]
    state = ledger.get(f"/v1/lots/{returned_lot}", shop.token_name).json()
    assert state["parents"] == [exit_lot] and state["goods_status"] == "bonded"
    # Nothing more of this return to admit.
    before = ledger.log_state()
    again = readmit(ledger, first["return_id"], "1")
    assert again.status_code == 409 and again.json()["rule"] == "exceeds_returned_quantity"
    assert ledger.log_state() == before

    # Sold again: the returned laptop leaves under a new list.
    resold = released(ledger, shop, laptops(shop, "1"))
    gate_out(ledger, resold["id"], "1", lots=[{"lot_id": returned_lot, "quantity": "1"}])
    r = ledger.get("/v1/trace", "officer", params={"ref": exit_lot, "direction": "downstream"})
    assert r.status_code == 200, r.text
    chain = r.json()
    assert chain["edges"] == [
        {"from": exit_lot, "to": returned_lot, "kind": "return", "quantity": "1"}
    ]
    trips = [(e["lot_id"], e["type"]) for e in chain["events"]]
    assert trips == [
        (exit_lot, "admitted"),
        (exit_lot, "exited"),
        (returned_lot, "admitted"),
        (returned_lot, "exited"),
    ]

    # The rest comes back: the last return takes what is left of the taxes and the order.
    r = give_back(ledger, shop, sold["id"], "2")
    assert r.status_code == 201, r.text
    assert r.json()["refund"]["total"] == "182.00" and r.json()["quota_restored"] == "2000.00"
    assert Decimal("91.00") + Decimal("182.00") == Decimal(sold["duties"]["total"])
    # Used: the resold laptop's 1,000.00 only.
    assert quota_used(ledger, BUYER, year) == Decimal("1000.00")
    before = ledger.log_state()
    r = give_back(ledger, shop, sold["id"], "0.5")
    assert r.status_code == 422  # laptops are counted in whole pieces
    r = give_back(ledger, shop, sold["id"], "1")
    assert r.status_code == 409, r.text
    assert r.json()["rule"] == "exceeds_declared_quantity"
    assert ledger.log_state() == before


def test_a_retried_return_answers_the_same_and_writes_nothing(ledger):
    shop = onboard(ledger)
    admit(ledger, shop, 1, "2")
    sold = released(ledger, shop, laptops(shop, "2", "1000.05"))
    assert sold["duties"]["vat"] == "182.01"
    key = new_key()
    first = give_back(ledger, shop, sold["id"], "1", key=key)
    assert first.status_code == 201, first.text
    # 2,000.10 x 13% x 70% = 182.0091, rounded once for the list: 182.01; half of it to the
    # fen, half-up: 91.01 (the second return takes the remaining 91.00).
    assert first.json()["refund"]["vat"] == "91.01"
    before = ledger.log_state()
    again = give_back(ledger, shop, sold["id"], "1", key=key)
    assert again.status_code == 201 and again.json() == first.json()
    assert ledger.log_state() == before
    last = give_back(ledger, shop, sold["id"], "1")
    assert last.json()["refund"]["vat"] == "91.00"
    assert last.json()["quota_restored"] == "1000.05"


def test_refusals_name_their_rule_and_leave_the_log_unchanged(ledger):
    shop, other = onboard(ledger), onboard(ledger)
    admit(ledger, shop, 1, "5")
    waiting = submit(ledger, shop, laptops(shop, "1")).json()
    assert waiting["status"] == "awaiting_payment"
    general = ledger.post(
        "/v1/declarations",
        shop.token_name,
        declaration_body(shop.uscc, shop.book_no, lines=[line(1, quantity="1")]),
        key=new_key(),
    ).json()
    sold = released(ledger, shop, laptops(shop, "1"))
    before = ledger.log_state()

    r = give_back(ledger, shop, waiting["id"], "1")
    assert r.status_code == 409 and r.json()["rule"] == "declaration_not_released"
    assert r.json()["current_status"] == "awaiting_payment"
    r = give_back(ledger, shop, general["id"], "1")
    assert r.status_code == 409 and r.json()["rule"] == "not_a_retail_list"
    # Another enterprise's list is unknown to it.
    assert give_back(ledger, other, sold["id"], "1").status_code == 404
    r = give_back(ledger, shop, sold["id"], "2")
    assert r.status_code == 409 and r.json()["rule"] == "exceeds_declared_quantity"
    body = {"lines": [{"line_no": 2, "quantity": "1"}], "reason": " "}
    r = ledger.post(f"/v1/declarations/{sold['id']}/returns", shop.token_name, body, key=new_key())
    assert r.status_code == 422
    assert {e["loc"] for e in r.json()["errors"]} == {"$.reason", "$.lines[0].line_no"}
    # The Idempotency-Key is required.
    body = {"lines": [{"line_no": 1, "quantity": "1"}], "reason": "x"}
    r = ledger.post(f"/v1/declarations/{sold['id']}/returns", shop.token_name, body)
    assert r.status_code == 400
    # Officers do not record returns.
    r = ledger.post(f"/v1/declarations/{sold['id']}/returns", "officer", body, key=new_key())
    assert r.status_code == 403
    # A gate_in names a declaration or a return, not both; an unknown return is 422.
    both = {
        "kind": "gate_in",
        "declaration": sold["id"],
        "return_id": new_key(),
        "lines": [{"line_no": 1, "quantity": "1"}],
    }
    assert move(ledger, both).status_code == 422
    r = readmit(ledger, new_key(), "1")
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == "$.return_id"
    assert ledger.log_state() == before


def test_a_9610_return_is_refunded_and_has_nothing_to_admit(ledger):
    shop = onboard(ledger)
    parcel = submit(ledger, shop, direct_body(shop, "4000.00")).json()
    assert pay(ledger, shop, parcel["id"], "364.00").json()["status"] == "released"
    r = give_back(ledger, shop, parcel["id"], "1")
    assert r.status_code == 201, r.text
    returned = r.json()
    assert returned["refund"]["total"] == "364.00" and returned["quota_restored"] == "4000.00"
    assert returned["readmission"] == "none"
    assert quota_used(ledger, BUYER, year_of(parcel)) == Decimal("0.00")
    before = ledger.log_state()
    r = readmit(ledger, returned["return_id"], "1")
    assert r.status_code == 409 and r.json()["rule"] == "return_not_bonded"
    assert ledger.log_state() == before


def test_the_return_window_is_30_days_after_release_in_china(database_url):
    clock = Clock(china("2026-11-20T10:00"))
    with clocked_ledger(database_url, clock, rules_without_draws()) as ledger:
        shop = onboard(ledger)
        admit(ledger, shop, 1, "2")
        sold = released(ledger, shop, laptops(shop, "2"))
        # Day 30 after the release day (China's calendar): still within the window.
        clock.at = china("2026-12-20T23:59")
        r = give_back(ledger, shop, sold["id"], "1")
        assert r.status_code == 201, r.text
        # Day 31: closed.
        clock.at = china("2026-12-21T00:00")
        before = ledger.log_state()
        r = give_back(ledger, shop, sold["id"], "1")
        assert r.status_code == 409, r.text
        assert r.json()["rule"] == "return_window_closed"
        assert r.json()["current_status"] == "released"
        assert ledger.log_state() == before
