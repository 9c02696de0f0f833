"""The dashboard's figures (projections/stats.py `DashboardQueries`) against plain computations:
nearest-rank percentiles of clearance time over random submission and release times, the
period on the release's time, tenancy, channels and inspection rate, stock by zone and status.

The queries run on the real `view_declarations` (and trace and inventory) tables, in an
in-memory SQLite database filled by hand."""

from __future__ import annotations

import math
import sqlite3
from collections import defaultdict
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.declaration import SHANGHAI
from domain.scope import Scope
from projections.columns import utc_text
from projections.declarations import DeclarationsProjection
from projections.inventory import InventoryProjection
from projections.stats import DashboardQueries, clearance_seconds, nearest_rank
from projections.trace import TraceProjection

START = datetime(2026, 11, 1, tzinfo=UTC)
A, B = "91610131MA00000001", "91610131MA00000002"


class Views:
    """The `views.read()` the queries use, over one SQLite connection."""

    def __init__(self) -> None:
        self.conn = sqlite3.connect(":memory:")
        self.conn.row_factory = sqlite3.Row
        cur = self.conn.cursor()
        for projection in (DeclarationsProjection(), TraceProjection(), InventoryProjection()):
            projection.create_tables(cur)

    @contextmanager
    def read(self) -> Any:
        yield self.conn.cursor()

    def declaration(
        self,
        n: int,
        *,
        submitted: datetime,
        released: datetime | None,
        channel: str = "green",
        zone: str = "XCBZ",
        declarant: str = A,
        trade_mode: str = "5034",
        status: str | None = None,
    ) -> None:
        self.conn.execute(
            "INSERT INTO view_declarations (id, declaration_no, status, flow, trade_mode,"
            " declarant, zone, occurred_at, recorded_at, occurred_at_utc, business_day,"
            " position, first_position, state, history, channel, released_at_utc)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                f"id-{n}",
                f"{n:018d}",
                status or ("released" if released else "inspection"),
                "first_line_in",
                trade_mode,
                declarant,
                zone,
                submitted.isoformat(),
                utc_text(submitted),
                utc_text(submitted),
                submitted.astimezone(SHANGHAI).date().isoformat(),
                n,
                n,
                "{}",
                "[]",
                channel,
                None if released is None else utc_text(released),
            ),
        )


def plain_percentile(values: list[int], percent: int) -> int:
    """Nearest rank as the textbook says it: the smallest value with at least `percent`% of
    the values at or below it."""
    ordered = sorted(values)
    rank = math.ceil(Fraction(percent, 100) * len(ordered))
    return ordered[max(rank, 1) - 1]


def hours(seconds: int) -> str:
    return str((Decimal(seconds) / 3600).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


@given(st.lists(st.integers(min_value=0, max_value=10**7), min_size=1, max_size=200))
def test_nearest_rank_is_the_textbook_percentile(values):
    ordered = sorted(values)
    for percent in (1, 50, 90, 99, 100):
        assert nearest_rank(ordered, percent) == plain_percentile(values, percent)


def test_nearest_rank_of_small_lists():
    assert nearest_rank([7], 50) == nearest_rank([7], 90) == 7
    assert nearest_rank([1, 2, 3, 4], 50) == 2
    assert nearest_rank(list(range(1, 11)), 90) == 9
    assert nearest_rank(list(range(1, 12)), 90) == 10  # rank ceil(9.9) = 10


def test_clearance_seconds_are_whole_and_never_negative():
    s = datetime(2026, 11, 3, 1, 0, 0, 900_000, tzinfo=UTC)
    assert clearance_seconds(utc_text(s), utc_text(s + timedelta(seconds=59.5))) == 59
    assert clearance_seconds(utc_text(s), utc_text(s - timedelta(minutes=3))) == 0


declarations = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=60 * 24 * 50),  # submitted, minutes after START
        st.one_of(st.none(), st.integers(min_value=0, max_value=10**6)),  # seconds to release
        st.sampled_from(["green", "yellow", "red"]),
        st.sampled_from(["XCBZ", "XEPZ"]),
        st.sampled_from([A, B]),
        st.sampled_from(["5034", "0110"]),
    ),
    max_size=60,
)


@settings(max_examples=60, deadline=None)
@given(declarations, st.sampled_from(["channel", "zone", "trade_mode", "month"]))
def test_clearance_time_is_the_percentiles_of_what_was_released_in_the_period(rows, group_by):
    views = Views()
    kept = []
    for n, (minutes, to_release, channel, zone, declarant, mode) in enumerate(rows, 1):
        submitted = START + timedelta(minutes=minutes)
        released = None if to_release is None else submitted + timedelta(seconds=to_release)
        views.declaration(
            n,
            submitted=submitted,
            released=released,
            channel=channel,
            zone=zone,
            declarant=declarant,
            trade_mode=mode,
        )
        kept.append((submitted, released, channel, zone, declarant, mode))
    since, until = START + timedelta(days=10), START + timedelta(days=40)
    queries = DashboardQueries(views)
    for scope, sees in (
        (Scope(role="officer"), lambda r: True),
        (Scope(role="enterprise", enterprise=A), lambda r: r[4] == A),
        (Scope(role="operator", zone="XEPZ"), lambda r: r[3] == "XEPZ"),
    ):
        got = queries.clearance_time(
            group_by=group_by, zone=None, since=since, until=until, scope=scope
        )
        expected: dict[str, list[int]] = defaultdict(list)
        for r in kept:
            submitted, released = r[0], r[1]
            if released is None or not (since <= released < until) or not sees(r):
                continue
            key = {
                "channel": r[2],
                "zone": r[3],
                "trade_mode": r[5],
                "month": released.astimezone(SHANGHAI).strftime("%Y-%m"),
            }[group_by]
            expected[key].append(int((released - submitted).total_seconds()))
        assert [(row.key, row.released, row.p50_seconds, row.p90_seconds) for row in got] == [
            (k, len(v), plain_percentile(v, 50), plain_percentile(v, 90))
            for k, v in sorted(expected.items())
        ]
        assert [(str(row.p50_hours), str(row.p90_hours)) for row in got] == [
            (hours(row.p50_seconds), hours(row.p90_seconds)) for row in got
        ]


def test_no_release_is_an_empty_list_and_the_zone_filter_applies():
    views = Views()
    queries = DashboardQueries(views)
    officer = Scope(role="officer")
    assert (
        queries.clearance_time(group_by="channel", zone=None, since=None, until=None, scope=officer)
        == []
    )
    views.declaration(1, submitted=START, released=None)
    assert (
        queries.clearance_time(group_by="channel", zone=None, since=None, until=None, scope=officer)
        == []
    )
    views.declaration(2, submitted=START, released=START + timedelta(hours=5), zone="XEPZ")
    views.declaration(3, submitted=START, released=START + timedelta(hours=1), channel="red")
    (only,) = queries.clearance_time(
        group_by="channel", zone="XEPZ", since=None, until=None, scope=officer
    )
    assert (only.key, only.released, only.p50_seconds, str(only.p90_hours)) == (
        "green",
        1,
        5 * 3600,
        "5.00",
    )
    # The period is on the release's time, not the submission's.
    late = queries.clearance_time(
        group_by="channel",
        zone=None,
        since=START + timedelta(hours=2),
        until=None,
        scope=officer,
    )
    assert [r.key for r in late] == ["green"]


def test_channels_count_every_declaration_submitted_and_the_share_inspected():
    views = Views()
    channels = ["green"] * 5 + ["yellow"] * 2 + ["red"] * 3 + ["red"]
    for n, channel in enumerate(channels, 1):
        zone = "XEPZ" if n == 11 else "XCBZ"
        declarant = B if n == 11 else A
        status = "rejected" if n == 10 else None  # still counted: sent to inspection
        views.declaration(
            n,
            submitted=START + timedelta(hours=n),
            released=None,
            channel=channel,
            zone=zone,
            declarant=declarant,
            status=status,
        )
    queries = DashboardQueries(views)
    rows = queries.channels(
        group_by="zone", zone=None, since=None, until=None, scope=Scope(role="auditor")
    )
    assert [
        (r.key, r.declarations, r.green, r.yellow, r.red, str(r.inspection_rate)) for r in rows
    ] == [
        ("XCBZ", 10, 5, 2, 3, "0.3000"),
        ("XEPZ", 1, 0, 0, 1, "1.0000"),
    ]
    mine = queries.channels(
        group_by="month",
        zone=None,
        since=None,
        until=None,
        scope=Scope(role="enterprise", enterprise=B),
    )
    assert [(r.key, r.declarations, r.red) for r in mine] == [("2026-11", 1, 1)]
    # Two of three: 0.6667 (4 decimals, half up).
    views.conn.execute("DELETE FROM view_declarations WHERE id IN ('id-1','id-2','id-3','id-4')")
    views.conn.execute("DELETE FROM view_declarations WHERE id IN ('id-5','id-6','id-7','id-8')")
    (third,) = queries.channels(
        group_by="trade_mode", zone="XCBZ", since=None, until=None, scope=Scope(role="officer")
    )
    assert (third.declarations, third.red, str(third.inspection_rate)) == (2, 2, "1.0000")
    views.declaration(20, submitted=START, released=None, channel="green")
    (third,) = queries.channels(
        group_by="trade_mode", zone="XCBZ", since=None, until=None, scope=Scope(role="officer")
    )
    assert (third.declarations, str(third.inspection_rate)) == (3, "0.6667")


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        (
            Scope(role="officer"),
            [
                ("XCBZ", "bonded", "C62", 2, "15"),
                ("XCBZ", "bonded", "KGM", 1, "2.5"),
                ("XEPZ", "domestic", "C62", 1, "4"),
            ],
        ),
        (Scope(role="enterprise", enterprise=B), [("XEPZ", "domestic", "C62", 1, "4")]),
        (
            Scope(role="operator", zone="XCBZ"),
            [("XCBZ", "bonded", "C62", 2, "15"), ("XCBZ", "bonded", "KGM", 1, "2.5")],
        ),
    ],
)
def test_stock_sums_what_lots_hold_by_zone_status_and_unit(scope, expected):
    views = Views()
    items = [("BA", 1, "XCBZ", A, "C62"), ("BA", 2, "XCBZ", A, "KGM"), ("BB", 1, "XEPZ", B, "C62")]
    for key, (book, item, zone, enterprise, unit) in enumerate(items, 1):
        views.conn.execute(
            "INSERT INTO view_book_items (item_key, stream, book_no, item_no, zone, enterprise,"
            " hs_code, name, unit, on_hand, pending_out, in_transit_out, recorded_at)"
            " VALUES (?,?,?,?,?,?,?,?,?,'0','0','0','')",
            (key, f"s-{book}-{item}", book, item, zone, enterprise, "8471300000", "x", unit),
        )
    lots = [
        ("l1", "XCBZ", "BA", A, 1, "bonded", "10"),
        ("l2", "XCBZ", "BA", A, 1, "bonded", "5"),
        ("l3", "XCBZ", "BA", A, 1, "bonded", "0"),  # nothing left: not counted
        ("l4", "XCBZ", "BA", A, 2, "bonded", "2.5"),
        ("l5", "XEPZ", "BB", B, 1, "domestic", "4"),
    ]
    for lot, zone, book, enterprise, item, status, on_hand in lots:
        views.conn.execute(
            "INSERT INTO view_trace_lots (lot_id, zone, account_book, enterprise, item_no,"
            " goods_status, quantity_in, on_hand, origin, movement_id, position, occurred_at)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (lot, zone, book, enterprise, item, status, on_hand, on_hand, "gate_in", "m", 1,
             START.isoformat()),
        )  # fmt: skip
    rows = DashboardQueries(views).stock(zone=None, scope=scope)
    assert [(r.zone, r.goods_status, r.unit, r.lots, str(r.on_hand)) for r in rows] == expected
