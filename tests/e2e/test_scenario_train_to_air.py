"""A story across the zones, checked at every step.

A Chang'an freight-train consignment of laptops and adapters enters the Xi'an Comprehensive
Bonded Zone; part goes to the Export Processing Zone and is made into laptop kits; the kits move
to the Aviation Base zone and leave by air; some laptops are released to China's market after
duties; a stocktake finds two damaged.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal

from tests.samples import book_body, line
from tests.support import declaration_body, new_key, onboard, running_ledger

ADAPTER = {"item_no": 5, "hs_code": "8504401400", "name": "Laptop power adapters", "unit": "C62"}
KIT = {"item_no": 6, "hs_code": "8471300000", "name": "Laptop kits", "unit": "C62"}


def test_from_the_train_to_the_plane(sqlite_url):
    with running_ledger(sqlite_url) as ledger:
        for zone in ("XCBZ", "XEPZ", "XABZ"):
            ledger.issue(f"gate-{zone}", "operator", zone=zone)
        t = onboard(ledger)  # its XCBZ book
        books = {"XCBZ": t.book_no}
        for zone in ("XEPZ", "XABZ"):
            books[zone] = f"{t.book_no}-{zone}"
            body = book_body(books[zone], t.uscc, zone=zone)
            assert ledger.post("/v1/account-books", "admin", body).status_code == 201
        for book in books.values():
            r = ledger.post(f"/v1/account-books/{book}/items", "admin", {"items": [ADAPTER, KIT]})
            assert r.status_code == 201, r.text

        def declare(**kw):
            zone = kw.pop("zone", "XCBZ")
            body = declaration_body(t.uscc, books[zone], zone=zone, **kw)
            r = ledger.post("/v1/declarations", t.token_name, body, key=new_key())
            assert r.status_code == 201, r.text
            return r.json()

        def move(who, kind, ref, *quantities):
            lines = [{"line_no": n, "quantity": q} for n, q in enumerate(quantities, 1)]
            r = ledger.post(
                "/v1/movements",
                who,
                {"kind": kind, "declaration": ref, "lines": lines},
                key=new_key(),
            )
            assert r.status_code == 201, r.text
            return r.json()

        snapshots = []  # (instant, zone, book as the write side answered then)

        def stock(zone):
            book = ledger.get(f"/v1/account-books/{books[zone]}", "officer").json()
            # The inventory view (fed by the catch-up runner) says the same as the write side.
            listed = ledger.get(
                "/v1/inventory", "officer", params={"account_book": books[zone]}
            ).json()["items"]
            assert [
                {k: v for k, v in i.items() if k not in ("zone", "account_book")} for i in listed
            ] == [{k: v for k, v in i.items() if k != "name"} for i in book["items"]]
            snapshots.append((datetime.now(UTC).isoformat(), zone, book))
            time.sleep(0.002)  # the next write is recorded strictly after the instant noted
            return {
                i["item_no"]: (i["on_hand"], i["pending_out"], i["in_transit_out"])
                for i in book["items"]
                if i["on_hand"] != "0" or i["in_transit_out"] != "0"
            }

        # 1. The train X8024 arrives: 100 laptops and 100 adapters enter XCBZ.
        adapters = {
            "item_no": 5,
            "hs_code": "8504401400",
            "description": "Adapters",
            "unit_price": "9.50",
        }
        arrival = declare(
            lines=[
                line(1, quantity="100"),
                {**line(1, quantity="100"), "line_no": 2, **adapters},
            ]
        )
        assert arrival["status"] == "released"
        train = move("gate-XCBZ", "gate_in", arrival["id"], "100", "100")
        assert stock("XCBZ") == {1: ("100", "0", "0"), 5: ("100", "0", "0")}

        # 2. 40 of each go to the export processing zone.
        def transfer(src, dst, lines):
            return declare(
                zone=src,
                flow="transfer",
                trade_mode="5034",
                country="CN",
                destination_zone=dst,
                destination_account_book=books[dst],
                lines=lines,
            )

        to_epz = transfer(
            "XCBZ",
            "XEPZ",
            [
                {**line(1, quantity="40"), "origin_country": None},
                {
                    **line(1, quantity="40"),
                    "line_no": 2,
                    "item_no": 5,
                    "hs_code": "8504401400",
                    "description": "Adapters",
                    "unit_price": "9.50",
                    "origin_country": None,
                },
            ],
        )
        assert stock("XCBZ") == {1: ("100", "40", "0"), 5: ("100", "40", "0")}
        move("gate-XCBZ", "transfer_dispatch", to_epz["id"], "40", "40")
        assert stock("XCBZ") == {1: ("60", "0", "40"), 5: ("60", "0", "40")}
        received = move("gate-XEPZ", "transfer_receipt", to_epz["id"], "40", "40")
        assert stock("XCBZ") == {1: ("60", "0", "0"), 5: ("60", "0", "0")}
        assert stock("XEPZ") == {1: ("40", "0", "0"), 5: ("40", "0", "0")}

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
        kit_lot = next(x for x in r.json()["lots"] if x["item_no"] == 6)["lot_id"]
        assert stock("XEPZ") == {6: ("40", "0", "0")}
        kit = ledger.get(f"/v1/lots/{kit_lot}", "officer").json()
        assert sorted(kit["parents"]) == sorted(x["lot_id"] for x in received["lots"])

        # 4. The kits fly out from the aviation base zone.
        to_air = transfer(
            "XEPZ",
            "XABZ",
            [
                {
                    **line(1, quantity="40"),
                    "item_no": 6,
                    "description": "Laptop kits",
                    "origin_country": None,
                }
            ],
        )
        move("gate-XEPZ", "transfer_dispatch", to_air["id"], "40")
        move("gate-XABZ", "transfer_receipt", to_air["id"], "40")
        export = declare(
            zone="XABZ",
            flow="first_line_out",
            trade_mode="0110",
            country="NL",
            transport={"mode": "air", "reference": "CK-XIY-AMS-1127"},
            lines=[
                {
                    **line(1, quantity="40"),
                    "item_no": 6,
                    "description": "Laptop kits",
                    "origin_country": None,
                }
            ],
        )
        assert export["status"] == "released"
        move("gate-XABZ", "gate_out", export["id"], "40")
        assert stock("XABZ") == {}

        # 5. Ten laptops are sold into China: duties first, then the gate.
        domestic = declare(
            flow="second_line_out",
            trade_mode="0110",
            country="CN",
            lines=[{**line(1, quantity="10"), "origin_country": None}],
        )
        assert domestic["status"] == "awaiting_payment"
        # 10 x EUR 420 plus freight and insurance, converted at the month's rate: VAT 13%.
        assert domestic["duties"]["vat"] != "0.00"
        paid = ledger.post(
            f"/v1/declarations/{domestic['id']}/payments",
            t.token_name,
            {
                "amount": domestic["duties"]["outstanding"],
                "currency": "CNY",
                "reference": "BANK-1127",
            },
        )
        assert paid.json()["status"] == "released"
        move("gate-XCBZ", "gate_out", domestic["id"], "10")
        assert stock("XCBZ") == {1: ("50", "0", "0"), 5: ("60", "0", "0")}

        # 6. The stocktake finds two laptops damaged: 2 of 50 is 4%, flagged for an officer.
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
        assert r.status_code == 201 and r.json()["flagged"] is True
        assert stock("XCBZ") == {1: ("48", "0", "0"), 5: ("60", "0", "0")}
        # Conservation: 100 laptops = 48 here + 40 in kits that left by air + 10 sold + 2 lost.
        assert ledger.get("/v1/audit/verify", "auditor").json()["ok"] is True
        assert train["lots"][0]["quantity"] == "100"

        # 7. The books as of every moment noted above equal what the ledger answered then.
        for instant, zone, book in snapshots:
            then = ledger.get(
                f"/v1/account-books/{books[zone]}", "auditor", params={"as_of": instant}
            )
            assert then.status_code == 200, then.text
            assert then.json() == book, (instant, zone)

        # 8. The XCBZ laptop entries tell the story in log order, with a running balance.
        r = ledger.get(
            f"/v1/account-books/{books['XCBZ']}/entries", t.token_name, params={"item_no": 1}
        )
        entries = r.json()["items"]
        assert [(e["entry_kind"], e["quantity"], e["balance_after"]) for e in entries] == [
            ("receipt", "100", "100"),
            ("transfer_out", "-40", "60"),
            ("issue", "-10", "50"),
            ("adjustment", "-2", "48"),
        ]
        assert entries[0]["lot_id"] == train["lots"][0]["lot_id"]
        assert {
            "kind": "declaration",
            "id": arrival["id"],
            "number": arrival["declaration_no"],
        } in (entries[0]["documents"])
        # The kits' book in XEPZ: received, consumed, produced, dispatched.
        r = ledger.get(f"/v1/account-books/{books['XEPZ']}/entries", "officer")
        kinds = [(e["item_no"], e["entry_kind"], e["quantity"]) for e in r.json()["items"]]
        assert kinds == [
            (1, "transfer_in", "40"),
            (5, "transfer_in", "40"),
            (1, "consumption", "-40"),
            (5, "consumption", "-40"),
            (6, "production", "40"),
            (6, "transfer_out", "-40"),
        ]

        # 9. The period's statement reconciles: closing = opening + receipts - issues + adjustments.
        r = ledger.get(f"/v1/account-books/{books['XCBZ']}/statement", "auditor")
        lines = {x["item_no"]: x for x in r.json()["items"]}
        assert lines[1] == {
            "item_no": 1,
            "opening": "0",
            "receipts": "100",
            "issues": "50",
            "adjustments": "-2",
            "closing": "48",
        }
        for x in lines.values():
            assert Decimal(x["closing"]) == (
                Decimal(x["opening"])
                + Decimal(x["receipts"])
                - Decimal(x["issues"])
                + Decimal(x["adjustments"])
            )

        # 10. The trace: upstream from the air export reaches the train, through the transfer
        # to XEPZ, the processing into kits and the transfer to XABZ.
        up = ledger.get(
            "/v1/trace",
            "officer",
            params={"ref": export["declaration_no"], "direction": "upstream"},
        )
        assert up.status_code == 200, up.text
        chain = up.json()
        assert {"kind": "declaration", "id": export["id"]} in chain["matched"]
        assert chain["zones"] == ["XCBZ", "XEPZ", "XABZ"]
        kinds = sorted({(e["kind"]) for e in chain["edges"]})
        assert kinds == ["processing", "transfer"]
        assert {lot["lot_id"] for lot in chain["lots"]} >= {train["lots"][0]["lot_id"], kit_lot}
        arrival_lot = next(x for x in chain["lots"] if x["lot_id"] == train["lots"][0]["lot_id"])
        assert (arrival_lot["zone"], arrival_lot["origin"], arrival_lot["quantity_in"]) == (
            "XCBZ",
            "gate_in",
            "100",
        )
        # The chain is in log order: the arrival first; the kits' exit by air is in it.
        assert chain["events"][0]["type"] == "admitted"
        assert chain["events"][0]["lot_id"] == train["lots"][0]["lot_id"]
        assert ("exited", "XABZ", "-40") in {
            (e["type"], e["zone"], e["quantity"]) for e in chain["events"]
        }
        positions = [e["position"] for e in chain["events"]]
        assert positions == sorted(positions)
        assert not chain["truncated"]
        # Downstream from the train's reference reaches every exit: the kits by air, the
        # laptops sold into China, and the stocktake's write-off.
        down = ledger.get(
            "/v1/trace", "officer", params={"ref": "X8024-20261127", "direction": "downstream"}
        ).json()
        exits = {
            (e["type"], e["zone"], e["quantity"])
            for e in down["events"]
            if e["type"] in ("exited", "adjusted")
        }
        assert exits == {
            ("exited", "XABZ", "-40"),
            ("exited", "XCBZ", "-10"),
            ("adjusted", "XCBZ", "-2"),
        }
        # Another enterprise sees nothing of it; an unknown reference is 404.
        other = onboard(ledger)
        r = ledger.get("/v1/trace", other.token_name, params={"ref": "X8024-20261127"})
        assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem")
        assert ledger.get("/v1/trace", "officer", params={"ref": "nothing-here"}).status_code == 404
