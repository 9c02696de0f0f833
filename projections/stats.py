"""Statistics for the pilot area's office: declarations, movements and CNY values by day, month,
trade mode and flow."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
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
}
# Processing and stocktake adjustments move goods within the zone under no declaration: they
# cross no line and have no trade mode, so by flow or trade mode they count under this key.
WITHIN_ZONE = "within_zone"

# One row per (China day, trade mode, flow) with how many movements it holds: the rows are
# counted in the database, grouped finer than any key, and added up by key here.
_MOVEMENTS = (
    "SELECT m.business_day, d.trade_mode, d.flow, count(*) AS movements"
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
        "SELECT business_day, trade_mode, flow, value_cny, b.tax, b.paid,"
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
        "SELECT issued_on, tax, paid FROM view_tax_bills WHERE subject_kind <> 'declaration'"
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
    sql += " GROUP BY m.business_day, d.trade_mode, d.flow"
    return sql, params
