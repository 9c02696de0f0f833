"""Each projection owns its tables (names, keys, DDL); the read side names movement kinds from
the registry exactly as it did by hand; queries turn a Scope into SQL on their own columns."""

from __future__ import annotations

import sqlite3

import pytest

from domain.scope import Scope
from projections.columns import filter_sql, tenancy_sql
from projections.epcis import OBJECT_EVENTS
from projections.inventory.fold import BOOK_ENTRIES
from projections.read_models import read_model_projections, read_model_tables
from projections.trace.fold import CREATED, DRAWN, EDGE_KINDS


def test_every_projection_names_the_tables_its_ddl_creates_with_their_keys():
    conn = sqlite3.connect(":memory:")
    for projection in read_model_projections():
        projection.create_tables(conn.cursor())
    created = {
        name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    }
    named = [t for tables in read_model_tables().values() for t in tables]
    assert sorted(t.name for t in named) == sorted(created)
    for table in named:
        columns = conn.execute(f"SELECT name, type, pk FROM pragma_table_info('{table.name}')")
        rows = sorted((pk, name, kind) for name, kind, pk in columns if pk)
        assert tuple(name for _, name, _ in rows) == table.key, table.name
        integers = tuple(name for _, name, kind in rows if kind == "BIGINT")
        assert integers == table.integer_key, table.name


def test_the_digest_order_of_each_read_model_is_kept():
    # A read model's digest covers its tables in this order (replays compare digests).
    assert {name: [t.name for t in ts] for name, ts in read_model_tables().items()} == {
        "declarations": ["view_declarations"],
        "enterprises": ["view_enterprises"],
        "inventory": [
            "view_books",
            "view_book_items",
            "view_reservations",
            "view_transit",
            "view_stock_history",
            "view_book_entries",
            "view_movements",
        ],
        "trace": [
            "view_trace_lots",
            "view_trace_edges",
            "view_trace_events",
            "view_trace_refs",
            "view_trace_books",
            "view_trace_movements",
            "view_trace_parcels",
            "view_trace_transit",
        ],
        "documents": ["view_checklists", "view_gate_passes"],
        "tax_bills": ["view_tax_bills"],
        "write_offs": ["view_write_offs", "view_write_off_versions"],
        "receipts": [
            "view_subscriptions",
            "view_receipt_subjects",
            "view_outbox",
            "view_receipt_log",
        ],
    }


def test_the_movement_kind_registry_names_what_the_read_side_named_by_hand():
    assert BOOK_ENTRIES == {
        "gate_in": "receipt",
        "transfer_receipt": "transfer_in",
        "processing": "production",
        "adjustment": "adjustment",
        "in_zone_transfer": "transfer_in",
    }
    assert CREATED == {
        "gate_in": "admitted",
        "transfer_receipt": "received",
        "processing": "produced",
        "adjustment": "surplus",
        "in_zone_transfer": "transferred_in",
    }
    assert DRAWN == {
        "gate_out": "exited",
        "transfer_dispatch": "dispatched",
        "processing": "consumed",
        "adjustment": "adjusted",
        "in_zone_transfer": "transferred_out",
        "destruction": "destroyed",
    }
    # A gate_in's lots have parents only when it readmits a retail return (decision 0024).
    assert EDGE_KINDS == {
        "gate_in": "return",
        "transfer_receipt": "transfer",
        "processing": "processing",
        "in_zone_transfer": "transfer",
    }
    assert OBJECT_EVENTS == {
        "admitted": ("ADD", "arriving", "in_progress"),
        "received": ("ADD", "receiving", "in_progress"),
        "dispatched": ("OBSERVE", "shipping", "in_transit"),
        "surplus": ("ADD", "stock_taking", None),
        "adjusted": ("OBSERVE", "stock_taking", None),
        "transferred_in": ("ADD", "receiving", "in_progress"),
        "transferred_out": ("OBSERVE", "departing", "in_progress"),
        "destroyed": ("DELETE", "destroying", "destroyed"),
    }


@pytest.mark.parametrize(
    ("scope", "sql", "params"),
    [
        (
            Scope(role="enterprise", enterprise="E1"),
            " AND (declarant = ? OR destination_enterprise = ?)",
            ["E1", "E1"],
        ),
        (Scope(role="operator", zone="XCBZ"), " AND (zone = ?)", ["XCBZ"]),
        (Scope(role="officer"), "", []),
        (Scope(role="auditor", enterprise="E1", zone="XCBZ"), "", []),
        # A key of a tenant's role bound to nothing narrows nothing (as `visible()` did).
        (Scope(role="enterprise"), "", []),
    ],
)
def test_a_scope_becomes_conditions_on_the_columns_the_query_names(scope, sql, params):
    found: list[object] = []
    assert (
        tenancy_sql(
            scope, found, enterprise=("declarant", "destination_enterprise"), zone=("zone",)
        )
        == sql
    )
    assert found == params


def test_filters_are_only_those_a_query_names_a_column_for():
    params: list[object] = []
    columns = {"zone": "i.zone", "item_no": "i.item_no"}
    assert filter_sql(params, {"zone": "XCBZ", "item_no": None}, columns) == " AND i.zone = ?"
    assert params == ["XCBZ"]
    with pytest.raises(KeyError):
        filter_sql([], {"zone; DROP TABLE x": None}, columns)
