"""How far the published reference data reaches (issue #15 item 2, "no cliff").

The customs exchange rates are published a month at a time. A month without rates refuses
every assessable declaration in a foreign currency, so the ledger says beforehand: from
`WARN_DAYS` days before the first month without rates, `/healthz` carries a warning (its status
stays `ok`), `/metrics` counts the days left, and the server logs the warning once a day.
"""

from __future__ import annotations

from datetime import date

import msgspec

from domain.duties import DutyTables

WARN_DAYS = 7
PUBLISH_RATES = (
    "an officer publishes them: POST /v1/reference/exchange-rates, or"
    " `customs-ledger reference load exchange-rates FILE.csv`"
)
# A table that reaches this far ahead is as good as "never runs out" for the outlook.
HORIZON_MONTHS = 120


class ReferenceOutlook(msgspec.Struct, frozen=True, kw_only=True):
    """What `/healthz` shows under `reference`."""

    exchange_rates_until: str | None  # the last month with rates, from this month on (None: none)
    first_month_without_rates: str
    exchange_rate_days_left: int  # days until that month starts (<= 0: it has started)
    tariff_rows: int  # rows of the tariff table in force today
    positive_list_rows: int  # HS prefixes of the retail import positive list in force today
    warnings: list[str]


def _next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def outlook(tables: DutyTables, today: date, positive_list_rows: int = 0) -> ReferenceOutlook:
    """The outlook of `tables` on `today`: months are walked from today's until the first one
    without a rate table (a gap counts: that month refuses declarations)."""
    published = {r.month for r in tables.exchange_rates}
    month = date(today.year, today.month, 1)
    until: str | None = None
    for _ in range(HORIZON_MONTHS):
        key = month.strftime("%Y-%m")
        if key not in published:
            break
        until = key
        month = _next_month(month)
    missing = month.strftime("%Y-%m")
    days_left = (month - today).days
    warnings = []
    if days_left <= WARN_DAYS:
        when = "since" if days_left <= 0 else f"in {days_left} days, on"
        warnings.append(
            f"no customs exchange rates for {missing}: declarations in a foreign currency are"
            f" refused {when} {month.isoformat()} until that month's rates are published"
            f" ({PUBLISH_RATES})"
        )
    in_force = [t for t in tables.tariffs if t.valid_from <= today]
    tariff_rows = len(max(in_force, key=lambda t: t.valid_from).rates) if in_force else 0
    if not in_force:
        warnings.append(f"no tariff table in force on {today.isoformat()}")
    return ReferenceOutlook(
        exchange_rates_until=until,
        first_month_without_rates=missing,
        exchange_rate_days_left=days_left,
        tariff_rows=tariff_rows,
        positive_list_rows=positive_list_rows,
        warnings=warnings,
    )
