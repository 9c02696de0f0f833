"""Statistics for the pilot area's office: declarations, movements and CNY values by day, month,
trade mode and flow."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import msgspec

from domain.declaration import SHANGHAI
from domain.scope import Scope
from projections.columns import period_sql, tenancy_sql
from projections.declarations import declarations_sql


class StatsRow(msgspec.Struct, frozen=True, kw_only=True):
    key: str
    declarations: int
    movements: int
    value_cny: Decimal
    # The duties of these declarations, and the duty liabilities issued under this key (by
    # trade mode or flow: `within_zone`), still unpaid past their bills' due date, as of the
    # read's China day (projections/tax_bills.py).
    overdue_cny: Decimal = Decimal(0)


GROUPS: dict[str, Callable[[Any], str]] = {
    "day": lambda r: r["business_day"],
    "month": lambda r: r["business_day"][:7],
    "trade_mode": lambda r: r["trade_mode"],
    "flow": lambda r: r["flow"],
    "zone": lambda r: r["zone"],
}
# Processing and stocktake adjustments move goods within the zone under no declaration: they
# cross no line and have no trade mode, so by flow or trade mode they count under this key.
WITHIN_ZONE = "within_zone"

# One row per (China day, trade mode, flow) with how many movements it holds: the rows are
# counted in the database, grouped finer than any key, and added up by key here.
_MOVEMENTS = (
    "SELECT m.business_day, m.zone, d.trade_mode, d.flow, count(*) AS movements"
    " FROM view_movements m"
    " LEFT JOIN view_declarations d ON d.id = m.declaration"
    " LEFT JOIN view_books b ON b.book_no = m.account_book"
    " WHERE TRUE"
)


class StatsQueries:
    """Sums over the declarations and inventory views; CNY values are added as exact decimals.

    A declaration that never took effect (withdrawn, rejected, a transfer refused by its
    destination) is not counted. A movement is every recorded movement event of any kind
    (domain/movement_kinds.py), counted once however many lines or lots it moved: it is never
    undone (a correction is another movement), and it belongs to its own zone and book, and to
    the trade mode and flow of the declaration it moved goods under."""

    def __init__(self, views: Any) -> None:
        self.views = views

    def stats(
        self,
        *,
        group_by: str,
        zone: str | None,
        since: datetime | None,
        until: datetime | None,
        scope: Scope,
        today: date | None = None,
    ) -> list[StatsRow]:
        key_of = GROUPS[group_by]
        counts: dict[str, int] = defaultdict(int)
        values: dict[str, Decimal] = defaultdict(Decimal)
        overdue: dict[str, Decimal] = defaultdict(Decimal)
        moved: dict[str, int] = defaultdict(int)
        liable: set[str] = set()
        day = (today or datetime.now(SHANGHAI).date()).isoformat()
        with self.views.read() as cur:
            cur.execute(*_declarations(zone, since, until, scope, day))
            for row in cur.fetchall():
                key = key_of(row)
                counts[key] += 1
                values[key] += Decimal(row["value_cny"])
                if row["overdue"]:
                    overdue[key] += Decimal(row["tax"]) - Decimal(row["paid"])
            cur.execute(*_liabilities(zone, since, until, scope, day))
            for row in cur.fetchall():
                # A liability arises in the zone under no declaration: by trade mode or flow
                # it counts under `within_zone`, as processing and stocktakes do.
                grouped = {
                    "business_day": row["issued_on"],
                    "zone": row["zone"],
                    "trade_mode": WITHIN_ZONE,
                    "flow": WITHIN_ZONE,
                }
                key = key_of(grouped)
                overdue[key] += Decimal(row["tax"]) - Decimal(row["paid"])
                liable.add(key)
            cur.execute(*_movements(zone, since, until, scope))
            for row in cur.fetchall():
                grouped = {
                    "business_day": row["business_day"],
                    "zone": row["zone"],
                    "trade_mode": row["trade_mode"] or WITHIN_ZONE,
                    "flow": row["flow"] or WITHIN_ZONE,
                }
                moved[key_of(grouped)] += int(row["movements"])
        return [
            StatsRow(
                key=k,
                declarations=counts[k],
                movements=moved[k],
                value_cny=values[k],
                overdue_cny=overdue[k],
            )
            for k in sorted(counts.keys() | moved.keys() | liable)
        ]


def _declarations(
    zone: str | None, since: datetime | None, until: datetime | None, scope: Scope, day: str
) -> tuple[str, list[Any]]:
    """The declarations that took effect, in the declarations list's period and tenancy, each
    with its bill's tax and payments when the bill is overdue on `day`."""
    sql = (
        "SELECT business_day, zone, trade_mode, flow, value_cny, b.tax, b.paid,"
        " (b.billed = 1 AND b.settled = 0 AND b.cancelled = 0 AND b.due_by < ?)"
        " AS overdue FROM view_declarations"
        " LEFT JOIN (SELECT bill_id, tax, paid, billed, settled, cancelled, due_by"
        " FROM view_tax_bills)"
        " b ON b.bill_id = view_declarations.id"
        " WHERE status NOT IN ('withdrawn', 'rejected', 'refused')"
    )
    params: list[Any] = [day]
    if zone is not None:
        sql += " AND zone = ?"
        params.append(zone)
    return sql + declarations_sql(params, since=since, until=until, scope=scope), params


def _liabilities(
    zone: str | None, since: datetime | None, until: datetime | None, scope: Scope, day: str
) -> tuple[str, list[Any]]:
    """The duty liabilities (write-off differences, stocktake shortages) overdue on `day`,
    issued in the period (China days of `[from, to)`), in the zone and tenancy."""
    sql = (
        "SELECT issued_on, zone, tax, paid FROM view_tax_bills"
        " WHERE subject_kind <> 'declaration'"
        " AND billed = 1 AND settled = 0 AND cancelled = 0 AND due_by < ?"
    )
    params: list[Any] = [day]
    if zone is not None:
        sql += " AND zone = ?"
        params.append(zone)
    if since is not None:
        sql += " AND issued_on >= ?"
        params.append(since.astimezone(SHANGHAI).date().isoformat())
    if until is not None:
        sql += " AND issued_on < ?"
        params.append(until.astimezone(SHANGHAI).date().isoformat())
    return sql + tenancy_sql(scope, params, enterprise=("enterprise",), zone=("zone",)), params


def _movements(
    zone: str | None, since: datetime | None, until: datetime | None, scope: Scope
) -> tuple[str, list[Any]]:
    """The movements counted per (day, trade mode, flow): `zone` and an operator's zone are
    where the goods moved, an enterprise sees the movements of its own books (as GET
    /v1/movements/{id}), and the period is on the movement's business time."""
    sql, params = _MOVEMENTS, []
    if zone is not None:
        sql += " AND m.zone = ?"
        params.append(zone)
    sql += period_sql(params, since=since, until=until, column="m.occurred_at_utc")
    sql += tenancy_sql(scope, params, enterprise=("b.enterprise",), zone=("m.zone",))
    sql += " GROUP BY m.business_day, m.zone, d.trade_mode, d.flow"
    return sql, params


# -- the monitoring dashboard (GET /v1/stats/channels, /clearance-time, /stock) --------------

CHANNELS = ("green", "yellow", "red")
RATE = Decimal("0.0001")
HOUR = Decimal(3600)
CENT = Decimal("0.01")


class ChannelRow(msgspec.Struct, frozen=True, kw_only=True):
    """Declarations submitted under a key, by the risk channel their assessment gave them."""

    key: str
    declarations: int
    green: int
    yellow: int
    red: int
    # red / declarations, 4 decimals (half up): the share sent to physical inspection (查验率).
    inspection_rate: Decimal


class ClearanceRow(msgspec.Struct, frozen=True, kw_only=True):
    """Clearance time (submission to release) of the declarations released under a key."""

    key: str
    released: int
    # Nearest-rank percentiles of the whole seconds from submission to release.
    p50_seconds: int
    p90_seconds: int
    # The same in hours, 2 decimals (half up), for display.
    p50_hours: Decimal
    p90_hours: Decimal


class StockRow(msgspec.Struct, frozen=True, kw_only=True):
    """What is on hand in a zone, by goods status and unit (quantities of different units are
    never added up)."""

    zone: str
    goods_status: str
    unit: str
    lots: int  # lots with something on hand
    on_hand: Decimal


CLEARANCE_GROUPS: dict[str, Callable[[Any], str]] = {
    "channel": lambda r: r["channel"] or "none",
    "zone": lambda r: r["zone"],
    "trade_mode": lambda r: r["trade_mode"],
    # The China month of the release.
    "month": lambda r: _china_day(r["released_at_utc"])[:7],
}


def nearest_rank(ordered: Sequence[int], percent: int) -> int:
    """The nearest-rank percentile of ascending `ordered` (not empty): its value at rank
    ceil(percent / 100 * n), counting from 1 (so p50 of 1..4 is 2, p90 of 1..10 is 9)."""
    rank = max(1, -(-percent * len(ordered) // 100))
    return ordered[rank - 1]


def clearance_seconds(submitted_utc: str, released_utc: str) -> int:
    """Whole seconds from submission to release (rounded down; 0 if the release's business
    time is before the submission's, which a submission dated ahead can make)."""
    delta = _instant(released_utc) - _instant(submitted_utc)
    return max(0, delta // timedelta(seconds=1))


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _china_day(text: str) -> str:
    return _instant(text).astimezone(SHANGHAI).date().isoformat()


def _hours(seconds: int) -> Decimal:
    return (Decimal(seconds) / HOUR).quantize(CENT, rounding=ROUND_HALF_UP)


class DashboardQueries:
    """The dashboard's figures beside GET /v1/stats: channels and inspection rate, clearance
    time, stock by zone and goods status; each with the tenancy of GET /v1/stats."""

    def __init__(self, views: Any) -> None:
        self.views = views

    def channels(
        self,
        *,
        group_by: str,
        zone: str | None,
        since: datetime | None,
        until: datetime | None,
        scope: Scope,
    ) -> list[ChannelRow]:
        """Every declaration submitted in `[since, until)` (business time), whatever became
        of it since: the channel is decided at submission."""
        key_of = GROUPS[group_by]
        counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        sql = "SELECT business_day, zone, trade_mode, flow, channel FROM view_declarations"
        sql += " WHERE TRUE"
        params: list[Any] = []
        if zone is not None:
            sql += " AND zone = ?"
            params.append(zone)
        sql += declarations_sql(params, since=since, until=until, scope=scope)
        with self.views.read() as cur:
            cur.execute(sql, params)
            for row in cur.fetchall():
                key = counts[key_of(row)]
                key["declarations"] += 1
                key[row["channel"] or "none"] += 1
        rows = []
        for k in sorted(counts):
            c = counts[k]
            rate = (Decimal(c["red"]) / c["declarations"]).quantize(RATE, rounding=ROUND_HALF_UP)
            rows.append(
                ChannelRow(
                    key=k,
                    declarations=c["declarations"],
                    green=c["green"],
                    yellow=c["yellow"],
                    red=c["red"],
                    inspection_rate=rate,
                )
            )
        return rows

    def clearance_time(
        self,
        *,
        group_by: str,
        zone: str | None,
        since: datetime | None,
        until: datetime | None,
        scope: Scope,
    ) -> list[ClearanceRow]:
        """The declarations released in `[since, until)` (the release's business time), each
        from its submission to the event that made it `released`."""
        key_of = CLEARANCE_GROUPS[group_by]
        found: dict[str, list[int]] = defaultdict(list)
        sql = (
            "SELECT zone, trade_mode, channel, occurred_at_utc, released_at_utc"
            " FROM view_declarations WHERE released_at_utc IS NOT NULL"
        )
        params: list[Any] = []
        if zone is not None:
            sql += " AND zone = ?"
            params.append(zone)
        sql += period_sql(params, since=since, until=until, column="released_at_utc")
        sql += tenancy_sql(
            scope,
            params,
            enterprise=("declarant", "destination_enterprise"),
            zone=("zone", "destination_zone"),
        )
        with self.views.read() as cur:
            cur.execute(sql, params)
            for row in cur.fetchall():
                seconds = clearance_seconds(row["occurred_at_utc"], row["released_at_utc"])
                found[key_of(row)].append(seconds)
        rows = []
        for k in sorted(found):
            ordered = sorted(found[k])
            p50, p90 = nearest_rank(ordered, 50), nearest_rank(ordered, 90)
            rows.append(
                ClearanceRow(
                    key=k,
                    released=len(ordered),
                    p50_seconds=p50,
                    p90_seconds=p90,
                    p50_hours=_hours(p50),
                    p90_hours=_hours(p90),
                )
            )
        return rows

    def stock(self, *, zone: str | None, scope: Scope) -> list[StockRow]:
        """What the lots hold now (the trace's lots: each with its zone, enterprise and goods
        status), summed per zone, goods status and the unit of its book item."""
        sql = (
            "SELECT l.zone, l.goods_status, i.unit, l.on_hand FROM view_trace_lots l"
            " JOIN view_book_items i ON i.book_no = l.account_book AND i.item_no = l.item_no"
            " WHERE TRUE"
        )
        params: list[Any] = []
        if zone is not None:
            sql += " AND l.zone = ?"
            params.append(zone)
        sql += tenancy_sql(scope, params, enterprise=("l.enterprise",), zone=("l.zone",))
        lots: dict[tuple[str, str, str], int] = defaultdict(int)
        on_hand: dict[tuple[str, str, str], Decimal] = defaultdict(Decimal)
        with self.views.read() as cur:
            cur.execute(sql, params)
            for row in cur.fetchall():
                quantity = Decimal(row["on_hand"])
                if quantity <= 0:
                    continue
                key = (row["zone"], row["goods_status"], row["unit"])
                lots[key] += 1
                on_hand[key] += quantity
        return [
            StockRow(
                zone=z, goods_status=g, unit=u, lots=lots[(z, g, u)], on_hand=on_hand[(z, g, u)]
            )
            for z, g, u in sorted(lots)
        ]
