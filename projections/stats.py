"""Statistics for the pilot area's office: declarations and CNY values by day, month, mode, flow."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec

from domain.scope import Scope
from projections.declarations import declarations_sql


class StatsRow(msgspec.Struct, frozen=True, kw_only=True):
    key: str
    declarations: int
    movements: int
    value_cny: Decimal


GROUPS: dict[str, Callable[[Any], str]] = {
    "day": lambda r: r["business_day"],
    "month": lambda r: r["business_day"][:7],
    "trade_mode": lambda r: r["trade_mode"],
    "flow": lambda r: r["flow"],
}


class StatsQueries:
    """Sums over the declarations view; CNY values are added as exact decimals. A declaration
    that never took effect (withdrawn, rejected, a transfer refused by its destination) is
    not counted."""

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
    ) -> list[StatsRow]:
        sql = (
            "SELECT business_day, trade_mode, flow, value_cny FROM view_declarations"
            " WHERE status NOT IN ('withdrawn', 'rejected', 'refused')"
        )
        params: list[Any] = []
        if zone is not None:
            sql += " AND zone = ?"
            params.append(zone)
        sql += declarations_sql(params, since=since, until=until, scope=scope)
        key_of = GROUPS[group_by]
        counts: dict[str, int] = defaultdict(int)
        values: dict[str, Decimal] = defaultdict(Decimal)
        with self.views.read() as cur:
            cur.execute(sql, params)
            for row in cur.fetchall():
                key = key_of(row)
                counts[key] += 1
                values[key] += Decimal(row["value_cny"])
        # Movements arrive with the movements issue; until then none are counted.
        return [
            StatsRow(key=k, declarations=counts[k], movements=0, value_cny=values[k])
            for k in sorted(counts)
        ]
