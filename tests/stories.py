"""The train-to-air story (tests/e2e/test_scenario_train_to_air.py, steps 1 to 6) told through the
API in one call, for the tests that need its whole chain: EPCIS export, trace viewer, replay."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from tests.samples import book_body, line
from tests.support import Ledger, Tenant, declaration_body, new_key, onboard

CHINA = timezone(timedelta(hours=8))
ADAPTER = {"item_no": 5, "hs_code": "8504401400", "name": "Laptop power adapters", "unit": "C62"}
KIT = {"item_no": 6, "hs_code": "8471300000", "name": "Laptop kits", "unit": "C62"}


@dataclass
class Story:
    ledger: Ledger
    tenant: Tenant
    arrival: dict[str, Any]  # the train's first-line import
    arrived_at: str  # its gate_in's business time, sent with +08:00
    train: dict[str, Any]  # the gate_in movement
    processing: dict[str, Any]  # the processing movement
    kit_lot: str
    export: dict[str, Any]  # the air export declaration
    domestic: dict[str, Any]  # the second-line exit declaration


def run_story(ledger: Ledger) -> Story:
    """The train-to-air story of test_scenario_train_to_air.py, steps 1 to 6."""
    for zone in ("XCBZ", "XEPZ", "XABZ"):
        ledger.issue(f"gate-{zone}", "operator", zone=zone)
    t = onboard(ledger)
    books = {"XCBZ": t.book_no}
    for zone in ("XEPZ", "XABZ"):
        books[zone] = f"{t.book_no}-{zone}"
        assert (
            ledger.post(
                "/v1/account-books", "admin", book_body(books[zone], t.uscc, zone)
            ).status_code
            == 201
        )
    for book in books.values():
        r = ledger.post(f"/v1/account-books/{book}/items", "admin", {"items": [ADAPTER, KIT]})
        assert r.status_code == 201, r.text

    def declare(**kw: Any) -> dict[str, Any]:
        zone = kw.pop("zone", "XCBZ")
        body = declaration_body(t.uscc, books[zone], zone=zone, **kw)
        r = ledger.post("/v1/declarations", t.token_name, body, key=new_key())
        assert r.status_code == 201, r.text
        return r.json()

    def move(who: str, kind: str, ref: str, *quantities: str, **extra: Any) -> dict[str, Any]:
        lines = [{"line_no": n, "quantity": q} for n, q in enumerate(quantities, 1)]
        body = {"kind": kind, "declaration": ref, "lines": lines, **extra}
        r = ledger.post("/v1/movements", who, body, key=new_key())
        assert r.status_code == 201, r.text
        return r.json()

    def transfer(src: str, dst: str, lines: list[dict[str, Any]]) -> dict[str, Any]:
        return declare(
            zone=src,
            flow="transfer",
            trade_mode="5034",
            country="CN",
            destination_zone=dst,
            destination_account_book=books[dst],
            lines=lines,
        )

    adapters = {
        "item_no": 5,
        "hs_code": "8504401400",
        "description": "Adapters",
        "unit_price": "9.50",
    }
    kits = {"item_no": 6, "description": "Laptop kits", "origin_country": None}
    # 1. The train X8024 arrives at the XCBZ gate, the time written in China time.
    arrival = declare(
        lines=[line(1, quantity="100"), {**line(1, quantity="100"), "line_no": 2, **adapters}]
    )
    arrived_at = (datetime.now(CHINA) - timedelta(minutes=30)).replace(microsecond=0).isoformat()
    train = move(
        "gate-XCBZ",
        "gate_in",
        arrival["id"],
        "100",
        "100",
        occurred_at=arrived_at,
        gate_note="GN-XCBZ-1127",
    )
    # 2. 40 of each go to the export processing zone.
    to_epz = transfer(
        "XCBZ",
        "XEPZ",
        [
            {**line(1, quantity="40"), "origin_country": None},
            {**line(1, quantity="40"), "line_no": 2, **adapters, "origin_country": None},
        ],
    )
    move("gate-XCBZ", "transfer_dispatch", to_epz["id"], "40", "40")
    move("gate-XEPZ", "transfer_receipt", to_epz["id"], "40", "40")
    # 3. Kits are made: a laptop and an adapter each.
    r = ledger.post(
        "/v1/movements",
        t.token_name,
        {
            "kind": "processing",
            "zone": "XEPZ",
            "account_book": books["XEPZ"],
            "inputs": [{"item_no": 1, "quantity": "40"}, {"item_no": 5, "quantity": "40"}],
            "outputs": [{"item_no": 6, "quantity": "40"}],
        },
        key=new_key(),
    )
    assert r.status_code == 201, r.text
    processing = r.json()
    kit_lot = next(x for x in processing["lots"] if x["item_no"] == 6)["lot_id"]
    # 4. The kits fly out from the aviation base zone.
    to_air = transfer("XEPZ", "XABZ", [{**line(1, quantity="40"), **kits}])
    move("gate-XEPZ", "transfer_dispatch", to_air["id"], "40")
    move("gate-XABZ", "transfer_receipt", to_air["id"], "40")
    export = declare(
        zone="XABZ",
        flow="first_line_out",
        trade_mode="0110",
        country="NL",
        transport={"mode": "air", "reference": "CK-XIY-AMS-1127"},
        lines=[{**line(1, quantity="40"), **kits}],
    )
    move("gate-XABZ", "gate_out", export["id"], "40")
    # 5. Ten laptops are sold into China: duties first, then the gate.
    domestic = declare(
        flow="second_line_out",
        trade_mode="0110",
        country="CN",
        lines=[{**line(1, quantity="10"), "origin_country": None}],
    )
    paid = ledger.post(
        f"/v1/declarations/{domestic['id']}/payments",
        t.token_name,
        {"amount": domestic["duties"]["outstanding"], "currency": "CNY", "reference": "BANK-1127"},
    )
    assert paid.json()["status"] == "released", paid.text
    move("gate-XCBZ", "gate_out", domestic["id"], "10")
    # 6. The stocktake finds two laptops damaged.
    r = ledger.post(
        "/v1/movements",
        t.token_name,
        {
            "kind": "adjustment",
            "account_book": books["XCBZ"],
            "item_no": 1,
            "quantity_delta": "-2",
            "reason": "damaged, stocktake 2026-11-30",
        },
        key=new_key(),
    )
    assert r.status_code == 201, r.text
    return Story(ledger, t, arrival, arrived_at, train, processing, kit_lot, export, domestic)
