"""Trace queries: any reference an officer holds, upstream and downstream, within the caller's
sight, bounded."""

from __future__ import annotations

import pytest

from tests.samples import book_body, line
from tests.support import admit, declaration_body, new_key, onboard, running_ledger


@pytest.fixture
def ledger(database_url):
    with running_ledger(database_url) as ledger:
        for zone in ("XCBZ", "XEPZ", "XHTZ"):
            ledger.issue(f"gate-{zone.lower()}", "operator", zone=zone)
        yield ledger


def _move(ledger, who, kind, ref, quantity, **extra):
    body = {
        "kind": kind,
        "declaration": ref,
        "lines": [{"line_no": 1, "quantity": quantity}],
        **extra,
    }
    r = ledger.post("/v1/movements", who, body, key=new_key())
    assert r.status_code == 201, r.text
    return r.json()


def _trace(ledger, who, ref, **params):
    return ledger.get("/v1/trace", who, params={"ref": ref, **params})


@pytest.fixture
def handover(ledger):
    """Enterprise A's laptops go from its XCBZ book to enterprise B's XEPZ book."""
    a, b = onboard(ledger), onboard(ledger, zone="XEPZ")
    gate_in = {"gate_note": "HF-XCBZ-0001", "container": "MSKU9070323"}
    d = ledger.post(
        "/v1/declarations",
        a.token_name,
        declaration_body(a.uscc, a.book_no, lines=[line(1, quantity="10")]),
        key=new_key(),
    ).json()
    arrival = _move(ledger, "gate-xcbz", "gate_in", d["id"], "10", **gate_in)
    transfer = ledger.post(
        "/v1/declarations",
        a.token_name,
        declaration_body(
            a.uscc,
            a.book_no,
            flow="transfer",
            trade_mode="5034",
            country="CN",
            destination_zone="XEPZ",
            destination_account_book=b.book_no,
            lines=[line(1, quantity="6", origin_country=None)],
        ),
        key=new_key(),
    )
    # Into B's book: it waits for B's acceptance, and until then nothing moves.
    assert transfer.status_code == 201, transfer.text
    assert transfer.json()["status"] == "awaiting_acceptance", transfer.text
    t = transfer.json()
    early = ledger.post(
        "/v1/movements",
        "gate-xcbz",
        {
            "kind": "transfer_dispatch",
            "declaration": t["id"],
            "lines": [{"line_no": 1, "quantity": "6"}],
        },
        key=new_key(),
    )
    assert early.status_code == 409 and early.json()["rule"] == "declaration_not_released"
    assert _trace(ledger, "officer", t["declaration_no"]).status_code == 404  # nothing moved
    accepted = ledger.post(f"/v1/declarations/{t['id']}/acceptance", b.token_name, {})
    assert accepted.status_code == 200 and accepted.json()["status"] == "released", accepted.text
    _move(ledger, "gate-xcbz", "transfer_dispatch", t["id"], "6")
    received = _move(ledger, "gate-xepz", "transfer_receipt", t["id"], "6")
    return {
        "a": a,
        "b": b,
        "import": d,
        "transfer": t,
        "a_lot": arrival["lots"][0]["lot_id"],
        "b_lot": received["lots"][0]["lot_id"],
    }


def test_officers_see_the_whole_chain_with_edge_quantities(ledger, handover):
    r = _trace(ledger, "officer", handover["transfer"]["declaration_no"])
    assert r.status_code == 200, r.text
    chain = r.json()
    assert {x["lot_id"] for x in chain["lots"]} == {handover["a_lot"], handover["b_lot"]}
    assert chain["edges"] == [
        {"from": handover["a_lot"], "to": handover["b_lot"], "kind": "transfer", "quantity": "6"}
    ]
    assert chain["zones"] == ["XCBZ", "XEPZ"]
    assert [e["type"] for e in chain["events"]] == ["admitted", "dispatched", "received"]
    admitted = chain["events"][0]
    assert admitted["actor"]["role"] == "operator" and admitted["zone"] == "XCBZ"
    kinds = {d["kind"] for d in admitted["documents"]}
    assert {"declaration", "gate_note", "transport", "container"} <= kinds


@pytest.mark.parametrize(
    "ref",
    ["HF-XCBZ-0001", "MSKU9070323", "X8024-20261127", "lot", "import_no", "import_id"],
)
def test_every_reference_a_document_carries_finds_the_goods(ledger, handover, ref):
    value = {
        "lot": handover["a_lot"],
        "import_no": handover["import"]["declaration_no"],
        "import_id": handover["import"]["id"],
    }.get(ref, ref)
    r = _trace(ledger, "auditor", value, direction="downstream")
    assert r.status_code == 200, r.text
    lots = {x["lot_id"] for x in r.json()["lots"]}
    assert lots == {handover["a_lot"], handover["b_lot"]}
    assert r.json()["matched"]


def test_each_enterprise_sees_only_its_own_lots_and_never_the_others(ledger, handover):
    a, b = handover["a"], handover["b"]
    ref = handover["transfer"]["declaration_no"]
    mine = _trace(ledger, a.token_name, ref).json()
    assert {x["lot_id"] for x in mine["lots"]} == {handover["a_lot"]}
    theirs = _trace(ledger, b.token_name, ref).json()
    assert {x["lot_id"] for x in theirs["lots"]} == {handover["b_lot"]}
    for answer, other in ((mine, b), (theirs, a)):
        text = str(answer)
        assert other.book_no not in text and other.token_name not in text
        assert answer["edges"] == []
    # B cannot start from A's arrival papers at all.
    assert _trace(ledger, b.token_name, "HF-XCBZ-0001").status_code == 404
    assert _trace(ledger, b.token_name, handover["a_lot"]).status_code == 404
    # A stranger sees nothing.
    stranger = onboard(ledger)
    assert _trace(ledger, stranger.token_name, ref).status_code == 404


def test_an_operator_sees_its_zones_lots(ledger, handover):
    ref = handover["transfer"]["declaration_no"]
    epz = _trace(ledger, "gate-xepz", ref).json()
    assert {x["zone"] for x in epz["lots"]} == {"XEPZ"}
    assert _trace(ledger, "gate-xhtz", ref).status_code == 404


def test_a_wide_graph_is_bounded_and_says_so(ledger):
    t = onboard(ledger, zone="XEPZ")
    admit(ledger, t, 1, "12", zone="XEPZ")
    body = {
        "kind": "processing",
        "zone": "XEPZ",
        "account_book": t.book_no,
        "inputs": [{"item_no": 1, "quantity": "12"}],
        "outputs": [{"item_no": 3, "quantity": "1"} for _ in range(12)],
    }
    r = ledger.post("/v1/movements", t.token_name, body, key=new_key())
    assert r.status_code == 201, r.text
    source = next(x["lot_id"] for x in r.json()["lots"] if x["quantity"].startswith("-"))
    full = _trace(ledger, "officer", source, direction="downstream").json()
    assert len(full["lots"]) == 13 and not full["truncated"]
    assert {e["kind"] for e in full["edges"]} == {"processing"}
    bounded = _trace(ledger, "officer", source, direction="downstream", limit=5).json()
    assert len(bounded["lots"]) == 5 and bounded["truncated"] is True
    # Upstream from one output finds the one input.
    output = full["edges"][0]["to"]
    up = _trace(ledger, "officer", output, direction="upstream").json()
    assert {x["lot_id"] for x in up["lots"]} == {source, output}


def test_bad_queries_are_422_naming_the_parameter(ledger):
    r = ledger.get("/v1/trace", "officer")
    assert r.status_code == 422 and "ref" in r.text
    r = ledger.get("/v1/trace", "officer", params={"ref": "x", "direction": "sideways"})
    assert r.status_code == 422 and "direction" in r.text
    assert ledger.get("/v1/trace", "officer", params={"ref": "x" * 65}).status_code == 422
    assert ledger.client.get("/v1/trace", params={"ref": "x"}).status_code == 401


def test_the_same_enterprises_two_books_trace_through(ledger):
    """Transfers between one enterprise's books keep the whole chain in its sight."""
    t = onboard(ledger)
    epz = f"{t.book_no}-EPZ"
    assert (
        ledger.post("/v1/account-books", "admin", book_body(epz, t.uscc, zone="XEPZ")).status_code
        == 201
    )
    admit(ledger, t, 1, "4")
    d = ledger.post(
        "/v1/declarations",
        t.token_name,
        declaration_body(
            t.uscc,
            t.book_no,
            flow="transfer",
            trade_mode="5034",
            country="CN",
            destination_zone="XEPZ",
            destination_account_book=epz,
            lines=[line(1, quantity="4", origin_country=None)],
        ),
        key=new_key(),
    ).json()
    _move(ledger, "gate-xcbz", "transfer_dispatch", d["id"], "4")
    got = _move(ledger, "gate-xepz", "transfer_receipt", d["id"], "4")
    up = _trace(ledger, t.token_name, got["lots"][0]["lot_id"], direction="upstream").json()
    assert [x["zone"] for x in up["lots"]] == ["XCBZ", "XEPZ"]
    assert up["edges"][0]["quantity"] == "4"
