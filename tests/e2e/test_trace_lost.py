"""Goods written off as lost in transit are a node of the trace: API, CLI, EPCIS.

The story: 60 and 40 laptops admitted in XCBZ (two lots), a transfer of 100 to XEPZ
dispatched whole, 97 received, the 3 missing written off by a stocktake that explains the
shortfall. Before, the trace showed -100 and +97 and nothing of the 3.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from projections.epcis import EXTENSION
from tests.e2e.test_epcis import assert_valid_epcis
from tests.samples import book_body, line
from tests.support import admit, declaration_body, new_key, onboard, run_cli, running_ledger

REASON = "3 lost on the road, police report 2026-118"


def _move(ledger, who, kind, ref, quantity):
    body = {"kind": kind, "declaration": ref, "lines": [{"line_no": 1, "quantity": quantity}]}
    r = ledger.post("/v1/movements", who, body, key=new_key())
    assert r.status_code == 201, r.text
    return r.json()


def tell_lost_story(ledger):
    """100 laptops of two lots dispatched, 97 received, 3 written off by a stocktake:
    (tenant, transfer declaration, dispatch, receipt, adjustment) answers."""
    for gate, zone in (("gate-xcbz", "XCBZ"), ("gate-xepz", "XEPZ")):
        if gate not in ledger.tokens:  # another story on the same ledger may have them
            ledger.issue(gate, "operator", zone=zone)
    t = onboard(ledger)
    xepz_book = f"{t.book_no}-EPZ"
    r = ledger.post("/v1/account-books", "admin", book_body(xepz_book, t.uscc, zone="XEPZ"))
    assert r.status_code == 201, r.text
    admit(ledger, t, 1, "60")
    admit(ledger, t, 1, "40")
    body = declaration_body(
        t.uscc,
        t.book_no,
        flow="transfer",
        trade_mode="5034",
        country="CN",
        destination_zone="XEPZ",
        destination_account_book=xepz_book,
        lines=[line(1, quantity="100", origin_country=None)],
    )
    d = ledger.post("/v1/declarations", t.token_name, body, key=new_key()).json()
    dispatched = _move(ledger, "gate-xcbz", "transfer_dispatch", d["id"], "100")
    received = _move(ledger, "gate-xepz", "transfer_receipt", d["id"], "97")
    adjustment = {
        "kind": "adjustment",
        "account_book": t.book_no,
        "item_no": 1,
        "quantity_delta": "-3",
        "reason": REASON,
        "explains": d["id"],
    }
    r = ledger.post("/v1/movements", t.token_name, adjustment, key=new_key())
    assert r.status_code == 201, r.text
    return t, d, dispatched, received, r.json()


@pytest.fixture
def story(database_url):
    with running_ledger(database_url) as ledger:
        yield (ledger, *tell_lost_story(ledger))


def _lost(trace):
    return [lot for lot in trace["lots"] if lot["origin"] == "lost"]


def test_the_trace_of_the_transfer_shows_the_lost_goods_with_the_stocktake(story):
    ledger, t, d, dispatched, received, adjustment = story
    trace = ledger.get("/v1/trace", "officer", params={"ref": d["declaration_no"]}).json()
    (node,) = _lost(trace)
    assert node["zone"] == "XCBZ" and node["account_book"] == t.book_no
    assert Decimal(node["quantity_in"]) == 3 and Decimal(node["on_hand"]) == 0
    assert node["movement_id"] == adjustment["movement_id"]
    # Dispatched in order (the 60-lot first), received in that order: the 97 took all of the
    # first lot and 37 of the second, so the 3 lost were the second lot's.
    _, second = (lot["lot_id"] for lot in dispatched["lots"])
    lost_edges = [e for e in trace["edges"] if e["to"] == node["lot_id"]]
    assert lost_edges == [{"from": second, "to": node["lot_id"], "kind": "lost", "quantity": "3"}]
    (event,) = [e for e in trace["events"] if e["lot_id"] == node["lot_id"]]
    assert event["type"] == "lost" and Decimal(event["quantity"]) == -3
    assert event["actor"]["role"] == "enterprise"
    kinds = {doc["kind"]: doc["number"] for doc in event["documents"]}
    assert kinds == {"declaration": d["declaration_no"], "adjustment": REASON}
    # -100, +97 and -3: every unit dispatched is accounted for in the chain.
    moved = {}
    for e in trace["events"]:
        if e["type"] in ("dispatched", "received", "lost"):
            moved[e["type"]] = moved.get(e["type"], 0) + Decimal(e["quantity"])
    assert moved == {"dispatched": -100, "received": 97, "lost": -3}
    # Downstream from the lot the goods were lost from finds the node too; the enterprise sees
    # it, an operator of the destination zone does not.
    down = ledger.get(
        "/v1/trace", t.token_name, params={"ref": second, "direction": "downstream"}
    ).json()
    assert [lot["lot_id"] for lot in _lost(down)] == [node["lot_id"]]
    other_side = ledger.get("/v1/trace", "gate-xepz", params={"ref": received["lots"][0]["lot_id"]})
    assert _lost(other_side.json()) == []


def test_the_cli_prints_the_lost_node_and_its_edge(story, database_url):
    ledger, _, d, _, _, _ = story
    ledger.get("/v1/trace", "officer", params={"ref": d["declaration_no"]})  # views caught up
    out = run_cli(database_url, "trace", d["declaration_no"])
    assert out.returncode == 0, out.stderr
    lost_lines = [x for x in out.stdout.splitlines() if " lost " in x]
    assert any("-3 C62" in x and REASON in x and "(enterprise)" in x for x in lost_lines), (
        out.stdout
    )
    assert any("lost 3 C62" in x and "->" in x for x in lost_lines), out.stdout


def test_the_epcis_export_writes_the_loss_off_with_a_disposition(story):
    ledger, _, d, dispatched, _, _ = story
    r = ledger.get("/v1/trace/epcis", "officer", params={"ref": d["declaration_no"]})
    assert r.status_code == 200, r.text
    document = r.json()
    assert_valid_epcis(document)
    (lost,) = [
        e
        for e in document["epcisBody"]["eventList"]
        if e.get("disposition") == EXTENSION + "disp/lost"
    ]
    assert lost["type"] == "ObjectEvent" and lost["action"] == "DELETE"
    assert lost["bizStep"] == "stock_taking"
    second = dispatched["lots"][1]["lot_id"]
    assert [(q["epcClass"].rsplit("/", 1)[1], q["quantity"]) for q in lost["quantityList"]] == [
        (second, 3)
    ]
    assert lost["cl:reason"] == REASON
    assert "bizLocation" not in lost
