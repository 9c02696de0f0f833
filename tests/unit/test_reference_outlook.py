"""How far the reference data reaches (issue #15 item 2, "no cliff"): the outlook names the
last month with customs exchange rates and the first without, counts the days to it, and
warns from 7 days before; /healthz shows it, /metrics counts the days, the server logs the
warning once a day."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.reference_watch import ReferenceWatch
from domain.duties import DutyTables, ExchangeRates
from domain.duty_tables import DEFAULT_TABLES
from domain.reference_outlook import WARN_DAYS, outlook


def tables_with(*months: str) -> DutyTables:
    rates = [ExchangeRates(month=m, to_cny={"EUR": Decimal("7.8")}, source="t") for m in months]
    return msgspec.structs.replace(DEFAULT_TABLES, exchange_rates=rates)


def test_the_built_in_tables_run_out_after_2026_12():
    o = outlook(DEFAULT_TABLES, date(2026, 12, 5))
    assert (o.exchange_rates_until, o.first_month_without_rates) == ("2026-12", "2027-01")
    assert o.exchange_rate_days_left == 27 and o.warnings == []
    assert o.tariff_rows == len(DEFAULT_TABLES.tariffs[-1].rates) > 0


def test_seven_days_before_the_cliff_it_warns_naming_the_month():
    o = outlook(DEFAULT_TABLES, date(2026, 12, 25))
    assert o.exchange_rate_days_left == 7
    [warning] = o.warnings
    assert "2027-01" in warning and "in 7 days" in warning
    assert outlook(DEFAULT_TABLES, date(2026, 12, 24)).warnings == []


def test_past_the_cliff_the_warning_says_since_when():
    o = outlook(DEFAULT_TABLES, date(2027, 1, 4))
    assert o.exchange_rates_until is None and o.first_month_without_rates == "2027-01"
    assert o.exchange_rate_days_left == -3
    assert "since 2027-01-01" in o.warnings[0]


def test_a_gap_is_the_cliff_even_with_later_months_published():
    o = outlook(tables_with("2026-12", "2027-02"), date(2026, 12, 28))
    assert (o.exchange_rates_until, o.first_month_without_rates) == ("2026-12", "2027-01")
    assert o.warnings


MONTHS = [f"{y}-{m:02d}" for y in (2026, 2027) for m in range(1, 13)]


@given(st.sets(st.sampled_from(MONTHS)), st.dates(date(2026, 1, 1), date(2027, 12, 31)))
def test_the_outlook_is_the_first_unpublished_month_from_today(published, today):
    o = outlook(tables_with(*sorted(published)), today)
    first = date(today.year, today.month, 1)
    while first.strftime("%Y-%m") in published:
        first = (first + timedelta(days=32)).replace(day=1)
    assert o.first_month_without_rates == first.strftime("%Y-%m")
    assert o.exchange_rate_days_left == (first - today).days
    assert bool(o.warnings) == (o.exchange_rate_days_left <= WARN_DAYS)
    if o.exchange_rates_until is not None:
        assert o.exchange_rates_until in published
        assert o.exchange_rates_until < o.first_month_without_rates


def test_the_server_logs_the_warning_once_a_day(caplog: pytest.LogCaptureFixture):
    now = [datetime(2026, 12, 28, 2, 0, tzinfo=UTC)]
    watch = ReferenceWatch(lambda: DEFAULT_TABLES, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="customs_ledger.reference"):
        for _ in range(3):
            assert watch.outlook().warnings
        now[0] += timedelta(days=1)
        watch.outlook()
    logged = [r for r in caplog.records if "2027-01" in r.getMessage()]
    assert len(logged) == 2  # 2026-12-28 and 2026-12-29 (China time), once each


def test_today_is_chinas_day():
    """Late on 2026-12-24 UTC it is already the 25th in Xi'an: 7 days left, a warning."""
    watch = ReferenceWatch(
        lambda: DEFAULT_TABLES, clock=lambda: datetime(2026, 12, 24, 20, 0, tzinfo=UTC)
    )
    assert watch.outlook().exchange_rate_days_left == 7
