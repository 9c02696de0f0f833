"""The rules of collect then declare that need no ledger (domain/collected.py,
domain/standalone_checklists.py): the period and deadline a first passage sets, and the day
whose rates assess the consolidated declaration - refused when a tariff changed between the
first and the last exit."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain import standalone_checklists as sc
from domain.collected import assessment_day
from domain.declaration import SHANGHAI
from domain.duties import DutyTables, TariffRate, TariffTable
from domain.errors import ValidationFailed

LAPTOPS = TariffRate(
    hs_prefix="847130", tariff_rate=Decimal(0), vat_rate=Decimal("0.13"), source="t"
)


def tables(*starts: date) -> DutyTables:
    return DutyTables(
        tariffs=[TariffTable(valid_from=d, rates=[LAPTOPS]) for d in starts],
        exchange_rates=[],
        assessable=[("second_line_out", "0110")],
    )


def left(first: datetime, last: datetime) -> sc.Checklist:
    return sc.Checklist(
        id=uuid4(),
        version=3,
        checklist_no="QD900726E000000001",
        kind="collected",
        direction="E",
        account_book="B1",
        zone="XCBZ",
        enterprise="91610131MA6TXW8L83",
        lines=[],
        status="approved",
        filed_at=first,
        first_passed_at=first,
        last_passed_at=last,
        period=sc.period_of(first),
    )


def china(y: int, m: int, d: int, h: int = 12) -> datetime:
    return datetime(y, m, d, h, tzinfo=SHANGHAI)


def test_the_last_exit_day_assesses_when_one_tariff_covers_every_exit():
    found = [
        left(china(2026, 12, 2), china(2026, 12, 9)),
        left(china(2026, 12, 5), china(2026, 12, 28)),
    ]
    assert assessment_day(found, tables(date(2026, 1, 1))) == date(2026, 12, 28)


def test_a_tariff_that_took_effect_between_the_exits_is_refused():
    found = [left(china(2026, 12, 2), china(2026, 12, 20))]
    with pytest.raises(ValidationFailed) as raised:
        assessment_day(found, tables(date(2026, 1, 1), date(2026, 12, 15)))
    assert "$.collected_checklists" in str(raised.value.errors)
    # A tariff from the day after the last exit changes nothing.
    assert assessment_day(found, tables(date(2026, 1, 1), date(2026, 12, 21))) == date(2026, 12, 20)


def test_the_china_day_counts_not_the_utc_day():
    # 23:30 on 31 December in UTC is already 1 January in China: the new year's tariff.
    late = datetime(2026, 12, 31, 23, 30, tzinfo=UTC)
    found = [left(late, late)]
    assert assessment_day(found, tables(date(2026, 1, 1), date(2027, 1, 1))) == date(2027, 1, 1)


@given(
    st.datetimes(
        min_value=datetime(2020, 1, 1), max_value=datetime(2040, 12, 31), timezones=st.just(UTC)
    )
)
def test_a_first_passage_sets_its_month_and_a_deadline_ten_days_after_it(moment):
    due, period = sc.first_deadline("collected", moment)
    local = moment.astimezone(SHANGHAI)
    assert period == f"{local.year:04d}-{local.month:02d}"
    assert due is not None
    due_local = due.astimezone(SHANGHAI)
    end = due_local - timedelta(days=sc.COLLECTION_DAYS)
    # The period's end is the first midnight of the next month in China.
    assert (end.day, end.hour, end.minute) == (1, 0, 0)
    assert end > local and end - local <= timedelta(days=31)
    assert sc.period_of(end - timedelta(microseconds=1)) == period
    assert sc.period_of(end) != period


@given(
    st.datetimes(
        min_value=datetime(2020, 1, 1), max_value=datetime(2040, 12, 31), timezones=st.just(UTC)
    )
)
def test_enter_first_has_a_deadline_and_no_period(moment):
    due, period = sc.first_deadline("enter_first", moment)
    assert (due, period) == (moment + timedelta(days=sc.DECLARATION_DAYS), None)
