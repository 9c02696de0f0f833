"""The pure parts of spreadsheet imports (domain/imports.py): row keys, headers, cells, the
grouping of rows into documents, the movements' layouts (lines, lots, inputs and outputs, one
row), the mapping of a body path back to a row and column, and content keys."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain import imports as im

RETAIL = im.KINDS["retail_lists"]
DECLARATIONS = im.KINDS["declarations"]


def keys(data: bytes, rows: range, kind: str = "retail_lists") -> list[str]:
    digest = im.file_digest(data)
    return [im.row_key(kind, digest, row) for row in rows]


@given(st.binary(min_size=1, max_size=2000), st.data())
def test_the_same_file_gives_the_same_keys_and_any_changed_byte_others(data, draw):
    rows = range(2, 12)
    assert keys(data, rows) == keys(bytes(data), rows)
    at = draw.draw(st.integers(0, len(data) - 1))
    changed = bytearray(data)
    changed[at] = (changed[at] + draw.draw(st.integers(1, 255))) % 256
    assert set(keys(bytes(changed), rows)).isdisjoint(keys(data, rows))
    grown = data + draw.draw(st.binary(min_size=1, max_size=8))
    assert set(keys(grown, rows)).isdisjoint(keys(data, rows))


def test_keys_differ_by_row_and_kind_and_are_valid_idempotency_keys():
    data = b"order_no\nJD1\n"
    retail, declarations = keys(data, range(2, 5)), keys(data, range(2, 5), "declarations")
    assert len(set(retail)) == 3 and set(retail).isdisjoint(declarations)
    assert all(1 <= len(k) <= 255 and k.isprintable() for k in retail + declarations)


@pytest.mark.parametrize(
    "spelling",
    [
        "商品编码 hs_code",
        "商品编码",
        "hs_code",
        "HS_CODE",
        " 商品编码\nhs_code ",
        "hs_code 商品编码",
    ],
)
def test_a_header_in_either_language_or_both(spelling):
    cells = [c.header for c in RETAIL.columns if c.name != "hs_code"] + [spelling]
    header = im.read_header(RETAIL, cells)
    assert header.columns[-1] == RETAIL.column("hs_code")
    assert header.written["hs_code"] == " ".join(spelling.split())


def test_unknown_twice_and_missing_headers_are_named():
    with pytest.raises(im.HeaderProblem, match="unknown columns: cheese"):
        im.read_header(RETAIL, [*(c.header for c in RETAIL.columns), "cheese"])
    with pytest.raises(im.HeaderProblem, match="named twice: hs_code"):
        im.read_header(RETAIL, [*(c.header for c in RETAIL.columns), "hs_code"])
    with pytest.raises(im.HeaderProblem, match="missing required columns: 商品编码 hs_code"):
        im.read_header(RETAIL, [c.header for c in RETAIL.columns if c.name != "hs_code"])
    with pytest.raises(im.HeaderProblem, match="first row must name the columns"):
        im.read_header(RETAIL, ["JD1", "1210"])


def test_cells_become_the_routes_json_values():
    hs, price, item, when, text = (
        RETAIL.column(n) for n in ("hs_code", "unit_price", "item_no", "occurred_at", "buyer_name")
    )
    assert im.cell_value(hs, 901210000) == "0901210000"  # Excel dropped the leading zero
    assert im.cell_value(hs, "0901210000") == "0901210000"
    assert im.cell_value(RETAIL.column("trade_mode"), 110) == "0110"
    assert im.cell_value(price, 420.5) == "420.5"
    assert im.cell_value(price, 1e-05) == "0.00001"  # never an exponent
    assert im.cell_value(price, 1000) == "1000"
    assert im.cell_value(price, Decimal("3.10")) == "3.10"
    assert im.cell_value(price, " 1,5 ") == "1,5"  # text is left for the route to judge
    assert im.cell_value(item, 3.0) == 3 and im.cell_value(item, "7") == 7
    assert im.cell_value(item, "七") == "七"
    assert im.cell_value(when, datetime(2026, 12, 1, 9, 30)) == "2026-12-01T09:30:00+08:00"
    assert im.cell_value(text, 12.0) == "12"


def test_rows_gather_into_documents_by_their_grouping_column():
    rows = [
        (2, {"order_no": "A", "currency": "CNY", "item_no": 1}),
        (3, {"order_no": "B", "item_no": 1}),
        (4, {"order_no": "A", "item_no": 2}),
        (5, {"item_no": 3}),
        (6, {"item_no": 4}),
    ]
    docs = im.documents(RETAIL, rows)
    assert [d.rows for d in docs] == [(2, 4), (3,), (5,), (6,)]
    built = im.body_of(RETAIL, docs[0])
    body = built.body
    assert built.errors == []
    assert built.places == {"$.lines[0]": 2, "$.lines[1]": 4}
    assert body["client_ref"] == body["ecommerce"]["order"]["order_no"] == "A"
    assert body["flow"] == "second_line_out"  # the kind's default
    assert body["lines"] == [{"item_no": 1, "line_no": 1}, {"item_no": 2, "line_no": 2}]
    differs = im.documents(
        RETAIL,
        [(2, {"order_no": "A", "currency": "CNY"}), (3, {"order_no": "A", "currency": "EUR"})],
    )
    conflicts = im.body_of(RETAIL, differs[0]).errors
    assert [(c.row, c.column, c.loc) for c in conflicts] == [(3, "currency", "$.currency")]


@pytest.mark.parametrize(
    ("loc", "row", "column"),
    [
        ("$.lines[1].quantity", 4, "quantity"),
        ("$.lines[0].hs_code", 2, "hs_code"),
        ("$.lines[1]", 4, None),
        ("$.ecommerce.order.amount", 2, "order_amount"),
        ("$.ecommerce.payment.payer_id", 2, "payer_id"),
        ("$.ecommerce.order", 2, "order_no"),
        ("$.client_ref", 2, "order_no"),
        ("$.transport", 2, "transport_mode"),
        ("$.transport.reference", 2, "transport_reference"),
        ("$.declarant", 2, "declarant"),
        ("$", 2, None),
        ("$.nothing", 2, None),
    ],
)
def test_a_body_path_maps_back_to_its_row_and_column(loc, row, column):
    doc = im.Document(rows=(2, 4), cells=({}, {}))
    assert im.locate(RETAIL, doc, loc) == (row, column)


def test_every_column_has_both_languages_and_help():
    for kind in im.KINDS.values():
        names = [c.name for c in kind.columns]
        assert len(names) == len(set(names))
        assert kind.group in names
        for c in kind.columns:
            assert c.zh and c.en_help and c.zh_help
            assert not c.zh.isascii()


def test_messages_are_one_table():
    assert im.message("too_many_rows", limit=im.MAX_ROWS) == "at most 20000 rows of data"
    with pytest.raises(KeyError):
        im.message("no such message")


MOVEMENTS = im.KINDS["movements"]


def movement(*rows: dict) -> im.Built:
    (doc,) = im.documents(MOVEMENTS, [(n, {"ref": "M", **r}) for n, r in enumerate(rows, 2)])
    return im.body_of(MOVEMENTS, doc)


def test_a_gate_movements_rows_are_its_lines():
    built = movement(
        {"kind": "gate_in", "declaration": "D1", "line_no": 1, "quantity": 10, "vehicle": "陕A1"},
        {"line_no": 2, "quantity": "2.5"},
    )
    assert built.errors == []
    assert built.body == {
        "kind": "gate_in",
        "declaration": "D1",
        "vehicle": "陕A1",
        "lines": [{"line_no": 1, "quantity": "10"}, {"line_no": 2, "quantity": "2.5"}],
    }
    assert built.places == {"$.lines[0]": 2, "$.lines[1]": 3}


def test_exit_rows_naming_lots_are_one_line_per_line_no():
    built = movement(
        {"kind": "gate_out", "declaration": "D", "line_no": 1, "lot_id": "A", "quantity": 5},
        {"line_no": 2, "quantity": 1},
        {"line_no": 1, "lot_id": "B", "quantity": "3.5"},
        {"line_no": 1, "lot_id": "C", "quantity": 1, "item_no": 7},
    )
    assert built.body["lines"] == [
        {
            "line_no": 1,
            "lots": [
                {"lot_id": "A", "quantity": "5"},
                {"lot_id": "B", "quantity": "3.5"},
                {"lot_id": "C", "quantity": "1", "item_no": 7},
            ],
            "quantity": "9.5",
        },
        {"line_no": 2, "quantity": "1"},
    ]
    doc = im.Document(rows=(2, 3, 4, 5), cells=({},) * 4)
    assert im.locate(MOVEMENTS, doc, "$.lines[0].lots[2].item_no", built.places) == (5, "item_no")
    assert im.locate(MOVEMENTS, doc, "$.lines[0].lots[1].lot_id", built.places) == (4, "lot_id")
    assert im.locate(MOVEMENTS, doc, "$.lines[0].lots", built.places) == (2, "lot_id")
    assert im.locate(MOVEMENTS, doc, "$.lines[1].quantity", built.places) == (3, "quantity")
    bad = movement(
        {"kind": "gate_out", "declaration": "D", "line_no": 1, "lot_id": "A", "quantity": "1,5"},
        {"line_no": 1, "lot_id": "B", "quantity": 1},
    )
    assert "quantity" not in bad.body["lines"][0]  # no sum of a refused number


def test_processing_rows_are_inputs_and_outputs_by_their_role():
    built = movement(
        {"kind": "processing", "zone": "XCBZ", "account_book": "B", "role": "input"}
        | {"item_no": 1, "quantity": 4, "lot_id": "L"},
        {"role": "product", "item_no": 3, "quantity": 2},
        {"role": "input", "item_no": 2, "quantity": 1, "goods_status": "domestic"},
        {"item_no": 4, "quantity": 1},
        {"role": "by_product", "item_no": 5, "quantity": 1},
    )
    assert built.body["inputs"] == [
        {"item_no": 1, "quantity": "4", "lot_id": "L"},
        {"item_no": 2, "quantity": "1", "goods_status": "domestic"},
    ]
    assert built.body["outputs"] == [
        {"item_no": 3, "quantity": "2", "role": "product"},
        {"item_no": 5, "quantity": "1", "role": "by_product"},
    ]
    assert built.places == {
        "$.inputs[0]": 2,
        "$.inputs[1]": 4,
        "$.outputs[0]": 3,
        "$.outputs[1]": 6,
    }
    assert [(e.row, e.column) for e in built.errors] == [(5, "role")]


def test_an_adjustment_is_one_row_its_quantity_the_difference():
    built = movement(
        {"kind": "adjustment", "account_book": "B", "item_no": 1, "quantity": -2, "reason": "x"}
    )
    assert built.body == {
        "kind": "adjustment",
        "account_book": "B",
        "reason": "x",
        "item_no": 1,
        "quantity_delta": "-2",
    }
    doc = im.Document(rows=(2,), cells=({},))
    assert im.locate(MOVEMENTS, doc, "$.quantity_delta", built.places) == (2, "quantity")
    assert im.locate(MOVEMENTS, doc, "$.item_no", built.places) == (2, "item_no")
    two = movement({"kind": "adjustment", "item_no": 1}, {"item_no": 2}, {"item_no": 3})
    assert [(e.row, e.column) for e in two.errors] == [(3, "ref"), (4, "ref")]


def test_an_in_zone_transfer_of_one_row_without_lines_receives_all():
    assert movement({"kind": "in_zone_transfer", "checklist": "C1"}).body == {
        "kind": "in_zone_transfer",
        "checklist": "C1",
    }
    built = movement({"kind": "in_zone_transfer", "checklist": "C1", "line_no": 2, "quantity": 1})
    assert built.body["lines"] == [{"line_no": 2, "quantity": "1"}]


def test_every_movement_kind_has_a_layout_and_an_unknown_kind_is_left_to_the_route():
    from domain.movement_kinds import KINDS as MOVEMENT_KINDS

    assert set(im.MOVEMENT_LAYOUTS) == set(MOVEMENT_KINDS)
    built = movement({"kind": "teleport", "line_no": 1, "quantity": 1})
    assert built.body == {"kind": "teleport", "lines": [{"line_no": 1, "quantity": "1"}]}


class Body(msgspec.Struct, kw_only=True):
    quantity: Decimal
    at: datetime
    lines: list[int]


def test_content_keys_are_of_the_request_the_kind_and_the_party():
    a = Body(
        quantity=Decimal("1.50"), at=datetime.fromisoformat("2026-12-01T09:00:00+08:00"), lines=[1]
    )
    same = Body(
        quantity=Decimal("1.5"), at=datetime.fromisoformat("2026-12-01T01:00:00+00:00"), lines=[1]
    )
    other = Body(quantity=Decimal("1.5"), at=a.at, lines=[2])
    keys = im.content_keys("movements", "enterprise:X", [a, same, None, other, a])
    assert keys[0] is not None and keys[0].endswith(":1")
    assert keys[1] == keys[0][:-1] + "2"  # the same request again: its second occurrence
    assert keys[2] is None
    assert len(set(keys)) == 5 and keys[4] == keys[0][:-1] + "3"
    assert im.content_keys("movements", "enterprise:Y", [a]) != keys[:1]
    assert im.content_keys("checklists", "enterprise:X", [a]) != keys[:1]
    assert all(1 <= len(k) <= 255 for k in keys if k)


def test_the_party_of_a_caller():
    from domain.events import Actor

    assert im.party_of(Actor(name="k", role="enterprise", enterprise="U")) == "enterprise:U"
    assert im.party_of(Actor(name="g", role="operator", zone="XCBZ")) == "zone:XCBZ"
    assert im.party_of(Actor(name="o", role="officer")) == "key:o"
