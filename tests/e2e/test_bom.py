"""Bills of materials: registered per book, immutable, and checked by processing under them."""

from __future__ import annotations

import uuid
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from domain.bom import Bom, BomInput, check_consumption, unit_consumption
from domain.errors import Conflict
from tests.support import admit, new_key, onboard, running_ledger


@pytest.fixture
def ledger(database_url):
    with running_ledger(database_url) as ledger:
        yield ledger


def _register(ledger, who, book_no, body, key=None):
    return ledger.post(f"/v1/account-books/{book_no}/boms", who, body, key=key)


# Medicaments (item 3) from laptops (item 1, C62) and coffee (item 2, KGM).
MEDICAMENTS = {
    "bom_ref": "MED-2026-1",
    "output_item_no": 3,
    "inputs": [
        {"item_no": 1, "net_consumption": "1.9", "loss_rate": "0.05"},
        {"item_no": 2, "net_consumption": "0.25", "loss_rate": "0.2"},
    ],
}


def _process(ledger, t, inputs, outputs, bom_ref=None, zone="XEPZ"):
    body = {
        "kind": "processing",
        "zone": zone,
        "account_book": t.book_no,
        "inputs": [{"item_no": i, "quantity": q} for i, q in inputs],
        "outputs": [{"item_no": i, "quantity": q} for i, q in outputs],
    }
    if bom_ref is not None:
        body["bom_ref"] = bom_ref
    return ledger.post("/v1/movements", t.token_name, body, key=new_key())


def test_a_bom_registers_once_and_reads_back_with_unit_consumption(ledger):
    t = onboard(ledger, zone="XEPZ")
    r = _register(ledger, t.token_name, t.book_no, MEDICAMENTS)
    assert r.status_code == 201, r.text
    view = r.json()
    assert view == {
        "bom_ref": "MED-2026-1",
        "account_book": t.book_no,
        "output_item_no": 3,
        "inputs": [
            # 1.9 / 0.95 and 0.25 / 0.8, at 6 decimals.
            {
                "item_no": 1,
                "net_consumption": "1.9",
                "loss_rate": "0.05",
                "unit_consumption": "2.000000",
            },
            {
                "item_no": 2,
                "net_consumption": "0.25",
                "loss_rate": "0.2",
                "unit_consumption": "0.312500",
            },
        ],
        "tolerance": "0.02",
    }
    path = f"/v1/account-books/{t.book_no}/boms/MED-2026-1"
    assert ledger.get(path, t.token_name).json() == view
    assert ledger.get(path, "officer").json() == view
    assert ledger.get(path, "admin").status_code == 200

    before = ledger.log_state()
    again = _register(ledger, t.token_name, t.book_no, MEDICAMENTS | {"tolerance": "0.1"})
    assert again.status_code == 409 and again.json()["rule"] == "already_exists"
    assert ledger.log_state() == before
    # An admin may register for the book; the view keeps the tolerance given.
    r = _register(
        ledger, "admin", t.book_no, MEDICAMENTS | {"bom_ref": "MED-2", "tolerance": "0.1"}
    )
    assert r.status_code == 201 and r.json()["tolerance"] == "0.1", r.text
    # The same reference in another book is another BOM.
    other = onboard(ledger, zone="XEPZ")
    assert _register(ledger, other.token_name, other.book_no, MEDICAMENTS).status_code == 201


def test_a_retry_with_the_same_key_gets_the_first_answer(ledger):
    t = onboard(ledger, zone="XEPZ")
    key = new_key()
    first = _register(ledger, t.token_name, t.book_no, MEDICAMENTS, key=key)
    assert first.status_code == 201
    state = ledger.log_state()
    again = _register(ledger, t.token_name, t.book_no, MEDICAMENTS, key=key)
    assert again.status_code == 201 and again.headers["Idempotency-Replayed"] == "true"
    assert again.json() == first.json() and ledger.log_state() == state


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"output_item_no": 99}, "$.output_item_no"),
        ({"bom_ref": " "}, "$.bom_ref"),
        ({"bom_ref": "x" * 65}, "$.bom_ref"),
        ({"inputs": []}, "$.inputs"),
        ({"tolerance": "1"}, "$.tolerance"),
        ({"tolerance": "-0.01"}, "$.tolerance"),
        ({"tolerance": "0.00001"}, "$.tolerance"),
        (
            {
                "inputs": [
                    MEDICAMENTS["inputs"][0],
                    {"item_no": 99, "net_consumption": "1", "loss_rate": "0"},
                ]
            },
            "$.inputs[1].item_no",
        ),
        (
            {"inputs": [{"item_no": 3, "net_consumption": "1", "loss_rate": "0"}]},
            "$.inputs[0].item_no",
        ),
        ({"inputs": [MEDICAMENTS["inputs"][0], MEDICAMENTS["inputs"][0]]}, "$.inputs[1].item_no"),
        (
            {"inputs": [{"item_no": 1, "net_consumption": "0", "loss_rate": "0"}]},
            "$.inputs[0].net_consumption",
        ),
        (
            {"inputs": [{"item_no": 1, "net_consumption": "0.000001", "loss_rate": "0"}]},
            "$.inputs[0].net_consumption",
        ),
        (
            {"inputs": [{"item_no": 1, "net_consumption": "NaN", "loss_rate": "0"}]},
            "$.inputs[0].net_consumption",
        ),
        (
            {"inputs": [{"item_no": 1, "net_consumption": "1", "loss_rate": "1"}]},
            "$.inputs[0].loss_rate",
        ),
        (
            {"inputs": [{"item_no": 1, "net_consumption": "1", "loss_rate": "0.12345"}]},
            "$.inputs[0].loss_rate",
        ),
        ({"inputs": [{"item_no": 1, "net_consumption": "1"}]}, "$.inputs[0].loss_rate"),
        ({"colour": "red"}, "$.colour"),
    ],
)
def test_invalid_boms_are_refused_naming_the_field(ledger, change, loc):
    t = onboard(ledger, zone="XEPZ")
    before = ledger.log_state()
    r = _register(ledger, t.token_name, t.book_no, MEDICAMENTS | change)
    assert r.status_code == 422, r.text
    assert loc in [e["loc"] for e in r.json()["errors"]], r.json()
    assert ledger.log_state() == before


def test_another_tenants_book_and_bom_do_not_exist_for_the_caller(ledger):
    t = onboard(ledger, zone="XEPZ")
    other = onboard(ledger, zone="XEPZ")
    ledger.issue("gate-xepz", "operator", zone="XEPZ")
    ledger.issue("gate-xcbz", "operator", zone="XCBZ")
    assert _register(ledger, t.token_name, t.book_no, MEDICAMENTS).status_code == 201
    before = ledger.log_state()
    assert _register(ledger, other.token_name, t.book_no, MEDICAMENTS).status_code == 404
    assert _register(ledger, "gate-xepz", t.book_no, MEDICAMENTS).status_code == 403
    assert _register(ledger, "officer", t.book_no, MEDICAMENTS).status_code == 403
    assert _register(ledger, t.token_name, "NO-SUCH-BOOK", MEDICAMENTS).status_code == 404
    assert ledger.log_state() == before
    path = f"/v1/account-books/{t.book_no}/boms/MED-2026-1"
    assert ledger.get(path, other.token_name).status_code == 404
    assert ledger.get(path, "gate-xcbz").status_code == 404
    assert ledger.get(path, "gate-xepz").status_code == 200
    assert ledger.get(f"/v1/account-books/{t.book_no}/boms/NOPE", t.token_name).status_code == 404
    assert (
        ledger.get(f"/v1/account-books/{other.book_no}/boms/MED-2026-1", t.token_name).status_code
        == 404
    )


@pytest.fixture
def plant(ledger):
    """A book in the export processing zone with 20 laptops and 10 kg coffee, and the BOM."""
    t = onboard(ledger, zone="XEPZ")
    admit(ledger, t, 1, "20", zone="XEPZ")
    admit(ledger, t, 2, "10", zone="XEPZ")
    assert _register(ledger, t.token_name, t.book_no, MEDICAMENTS).status_code == 201
    return t


def test_processing_within_the_tolerance_is_recorded_with_its_bom(ledger, plant):
    t = plant
    # 4 medicaments: expected 8 laptops (+/- 0.16) and 1.25 kg coffee (+/- 0.025).
    r = _process(ledger, t, [(1, "8"), (2, "1.27")], [(3, "4")], bom_ref="MED-2026-1")
    assert r.status_code == 201, r.text
    assert r.json()["bom_ref"] == "MED-2026-1"
    got = ledger.get(f"/v1/movements/{r.json()['movement_id']}", t.token_name).json()
    assert got["bom_ref"] == "MED-2026-1"
    # Without a BOM nothing is checked, and the movement names none.
    r = _process(ledger, t, [(1, "1")], [(3, "7")])
    assert r.status_code == 201 and r.json()["bom_ref"] is None
    # Scrap beside the product is not the BOM's output: only the product is checked (a scrap
    # line of item 4 would otherwise be 422 at $.outputs, as below).
    body = {
        "kind": "processing",
        "zone": "XEPZ",
        "account_book": t.book_no,
        "inputs": [{"item_no": 1, "quantity": "8"}, {"item_no": 2, "quantity": "1.25"}],
        "outputs": [
            {"item_no": 3, "quantity": "4"},
            {"item_no": 4, "quantity": "1", "role": "scrap"},
        ],
        "bom_ref": "MED-2026-1",
    }
    r = ledger.post("/v1/movements", t.token_name, body, key=new_key())
    assert r.status_code == 201, r.text


def test_processing_outside_the_tolerance_is_refused_and_changes_nothing(ledger, plant):
    t = plant
    before = ledger.log_state()
    r = _process(ledger, t, [(1, "8"), (2, "1.28")], [(3, "4")], bom_ref="MED-2026-1")
    assert r.status_code == 409 and r.json()["rule"] == "bom_ratio", r.text
    detail = r.json()["detail"]
    assert "item 2" in detail and "consumed 1.28" in detail and "expected 1.250000" in detail
    r = _process(ledger, t, [(1, "9"), (2, "1.25")], [(3, "4")], bom_ref="MED-2026-1")
    assert r.status_code == 409 and r.json()["rule"] == "bom_ratio"
    assert "item 1" in r.json()["detail"]
    # Two entries of one input count together: 5 + 4 = 9 laptops is too many as well.
    r = _process(ledger, t, [(1, "5"), (1, "4"), (2, "1.25")], [(3, "4")], bom_ref="MED-2026-1")
    assert r.status_code == 409 and r.json()["rule"] == "bom_ratio"
    assert ledger.log_state() == before


def test_processing_must_consume_and_produce_what_the_bom_says(ledger, plant):
    t = plant
    before = ledger.log_state()
    r = _process(ledger, t, [(1, "8")], [(3, "4")], bom_ref="MED-2026-1")
    assert r.status_code == 409 and r.json()["rule"] == "bom_mismatch", r.text
    r = _process(ledger, t, [(1, "8"), (2, "1.25"), (4, "1")], [(3, "4")], bom_ref="MED-2026-1")
    assert r.status_code == 409 and r.json()["rule"] == "bom_mismatch"
    for outputs in ([(4, "4")], [(3, "4"), (4, "1")]):
        r = _process(ledger, t, [(1, "8"), (2, "1.25")], outputs, bom_ref="MED-2026-1")
        assert r.status_code == 422 and r.json()["errors"][0]["loc"] == "$.outputs", r.text
    r = _process(ledger, t, [(1, "8"), (2, "1.25")], [(3, "4")], bom_ref="NO-SUCH-BOM")
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == "$.bom_ref"
    # Another book's BOM is not this book's: the same answer as an unknown one.
    other = onboard(ledger, zone="XEPZ")
    body = MEDICAMENTS | {"bom_ref": "THEIRS"}
    assert _register(ledger, other.token_name, other.book_no, body).status_code == 201
    before = ledger.log_state()
    r = _process(ledger, t, [(1, "8"), (2, "1.25")], [(3, "4")], bom_ref="THEIRS")
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == "$.bom_ref"
    assert ledger.log_state() == before


# -- the decision equals the formula ------------------------------------------------------


def _bom(net: Decimal, loss: Decimal, tolerance: Decimal) -> Bom:
    return Bom(
        id=uuid.uuid4(),
        version=1,
        book_no="B1",
        bom_ref="P",
        output_item_no=2,
        inputs=[BomInput(item_no=1, net_consumption=net, loss_rate=loss)],
        tolerance=tolerance,
    )


places5 = st.decimals(min_value=Decimal("0.00001"), max_value=Decimal(100000), places=5)
rates = st.decimals(min_value=Decimal(0), max_value=Decimal("0.9999"), places=4)


@settings(max_examples=300, deadline=None)
@given(
    net=places5,
    loss=rates,
    tolerance=rates,
    produced=places5,
    offset=st.fractions(min_value=Fraction(-3, 2), max_value=Fraction(3, 2)),
)
@example(Decimal(2), Decimal("0.2"), Decimal("0.1"), Decimal(2), Fraction(1))  # exact edge
@example(Decimal(2), Decimal("0.2"), Decimal("0.1"), Decimal(2), Fraction(-1))
@example(Decimal(1), Decimal(0), Decimal(0), Decimal(1), Fraction(0))
def test_the_bom_check_accepts_exactly_what_the_formula_allows(
    net, loss, tolerance, produced, offset
):
    expected = Fraction(produced) * Fraction(net) / (1 - Fraction(loss))
    # Consumption near the edge of the band: expected x (1 + offset x tolerance), 5 decimals.
    target = expected * (1 + offset * Fraction(tolerance))
    consumed = max(Decimal(round(target * 100000)).scaleb(-5), Decimal("0.00001"))
    accept = abs(Fraction(consumed) - expected) <= Fraction(tolerance) * expected
    bom = _bom(net, loss, tolerance)
    try:
        check_consumption(bom, {1: consumed}, {2: produced})
        decided = True
    except Conflict as e:
        assert e.rule == "bom_ratio"
        decided = False
    assert decided == accept
    shown = unit_consumption(net, loss)
    assert abs(Fraction(shown) - Fraction(net) / (1 - Fraction(loss))) <= Fraction(1, 2_000_000)
