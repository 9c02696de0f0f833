"""Reference publications as events (domain/reference_data.py): the digest, versions per date,
corrections, and which version is in force on a day as known at an instant."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.errors import Conflict, ValidationFailed
from domain.events import Actor, Pending
from domain.reference_data import (
    PublishExchangeRates,
    PublishTariff,
    ReferenceRegister,
    TariffRow,
    checked_content,
    digest_of,
    publish,
    register_id,
)

OFFICER = Actor(name="officer-1", role="officer")
T0 = datetime(2026, 12, 1, tzinfo=UTC)
PREFIXES = ["847130", "851713", "090121", "330499", "220421", "950300", "61091000"]


def _row(prefix: str, tariff: str = "0", vat: str = "0.13") -> TariffRow:
    return TariffRow(hs_prefix=prefix, tariff_rate=Decimal(tariff), vat_rate=Decimal(vat))


rows = st.lists(
    st.builds(
        _row,
        st.sampled_from(PREFIXES),
        st.sampled_from(["0", "0.05", "0.10", "0.140"]),
        st.sampled_from(["0.13", "0.09", "0.130"]),
    ),
    min_size=1,
    max_size=len(PREFIXES),
    unique_by=lambda r: r.hs_prefix,
)


@settings(max_examples=80)
@given(rows, st.randoms(use_true_random=False), st.sampled_from(["GACC", "MOF notice", "x"]))
def test_the_digest_covers_the_figures_not_their_order_source_or_trailing_zeros(
    listed, shuffle, source
):
    day = date(2027, 1, 1)
    shuffled = list(listed)
    shuffle.shuffle(shuffled)
    a = checked_content(PublishTariff(effective_from=day, rows=listed, source="GACC"))
    b = checked_content(PublishTariff(effective_from=day, rows=shuffled, source=source))
    assert digest_of("tariff", day, a) == digest_of("tariff", day, b)
    changed = [_row(listed[0].hs_prefix, "0.99"), *listed[1:]]
    c = checked_content(PublishTariff(effective_from=day, rows=changed, source="GACC"))
    assert (digest_of("tariff", day, c) == digest_of("tariff", day, a)) == (
        listed[0].tariff_rate == Decimal("0.99")
    )
    assert digest_of("tariff", day + timedelta(days=1), a) != digest_of("tariff", day, a)
    padded = [_row(r.hs_prefix, f"{r.tariff_rate}00", f"{r.vat_rate}0") for r in listed]
    d = checked_content(PublishTariff(effective_from=day, rows=padded, source="GACC"))
    assert digest_of("tariff", day, d) == digest_of("tariff", day, a)


def _register() -> Pending[ReferenceRegister]:
    return Pending(None, register_id("exchange-rates"))


def _rates(month: str, eur: str, reason: str | None = None) -> PublishExchangeRates:
    return PublishExchangeRates(
        month=month, rates={"EUR": Decimal(eur)}, source="GACC", reason=reason
    )


publications = st.lists(
    st.tuples(
        st.sampled_from(["2027-01", "2027-02", "2027-03"]), st.sampled_from(["8.1", "8.2", "8.3"])
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=120)
@given(publications)
def test_versions_count_per_month_and_the_newest_known_is_in_force(sequence):
    pending = _register()
    newest: dict[str, tuple[int, str]] = {}
    at = T0
    for month, eur in sequence:
        at += timedelta(minutes=1)
        before = newest.get(month)
        try:
            answer = publish(pending, "exchange-rates", _rates(month, eur, "fix"), OFFICER, at)
        except Conflict as e:
            assert e.rule == "reference_unchanged" and before is not None and before[1] == eur
            continue
        assert answer.version == (before[0] + 1 if before else 1)
        assert answer.corrects == (before[0] if before else None)
        newest[month] = (answer.version, eur)
    register = pending.current
    for month, (version, eur) in newest.items():
        day = date(int(month[:4]), int(month[5:]), 15)
        found = register.in_force(day)
        assert found is not None and found.version == version
        assert found.content.rates == {"EUR": Decimal(eur)}
        # As known before anything was published: nothing; at each publication: that one.
        assert register.in_force(day, known_at=T0) is None
        for p in register.publications:
            if p.month == month:
                seen = register.in_force(day, known_at=p.published_at)
                assert seen is not None and seen.version == p.version


def test_a_correction_needs_a_reason_and_the_same_figures_are_refused():
    pending = _register()
    publish(pending, "exchange-rates", _rates("2027-01", "8.3"), OFFICER, T0)
    with pytest.raises(ValidationFailed) as e:
        publish(pending, "exchange-rates", _rates("2027-01", "8.4"), OFFICER, T0)
    assert e.value.errors[0].loc == "$.reason"
    with pytest.raises(Conflict) as c:
        publish(pending, "exchange-rates", _rates("2027-01", "8.30", "again"), OFFICER, T0)
    assert c.value.rule == "reference_unchanged"
    assert pending.current.latest(date(2027, 1, 1)).version == 1  # type: ignore[union-attr]


def test_a_tariff_is_in_force_from_its_date_until_the_next():
    pending = Pending[ReferenceRegister](None, register_id("tariff"))
    for day in (date(2026, 1, 1), date(2027, 1, 1)):
        body = PublishTariff(effective_from=day, rows=[_row("847130")], source="t")
        publish(pending, "tariff", body, OFFICER, T0)
    register = pending.current
    assert register.in_force(date(2025, 12, 31)) is None
    assert register.in_force(date(2026, 12, 31)).effective_from == date(2026, 1, 1)  # type: ignore[union-attr]
    assert register.in_force(date(2027, 1, 1)).effective_from == date(2027, 1, 1)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("rates", "loc"),
    [
        ({"CNY": "1"}, "$.rates.CNY"),
        ({"XYZ": "1"}, "$.rates.XYZ"),
        ({"EUR": "0"}, "$.rates.EUR"),
        ({"EUR": "8.123456789"}, "$.rates.EUR"),
        ({}, "$.rates"),
    ],
)
def test_bad_rates_are_named(rates, loc):
    body = PublishExchangeRates(
        month="2027-01", rates={k: Decimal(v) for k, v in rates.items()}, source="s"
    )
    with pytest.raises(ValidationFailed) as e:
        checked_content(body)
    assert loc in [err.loc for err in e.value.errors]
