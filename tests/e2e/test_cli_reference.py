"""`customs-ledger reference load|export` (issue #15 item 1): the API's checks, progress and a
summary, problems named by the file's line, exit codes, and a round trip through export.

Also: every example file in docs/examples/ reads and passes the checks of a publication."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.reference_csv import read_bodies
from domain.reference_data import checked_content
from tests.support import run_cli, running_ledger

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
KINDS = {
    "exchange-rates-2027-01.csv": "exchange-rates",
    "tariff-excerpt.csv": "tariff",
    "positive-list.csv": "positive-list",
    "risk-rules.json": "risk-rules",
}


@pytest.mark.parametrize(("name", "kind"), KINDS.items())
def test_every_example_file_reads_and_passes_the_checks(name, kind):
    assert sorted(p.name for p in EXAMPLES.iterdir()) == sorted(KINDS)
    bodies = read_bodies(kind, (EXAMPLES / name).read_bytes(), None, None)
    assert bodies
    for body, _ in bodies:
        checked_content(body)


def test_load_publishes_reports_and_a_second_load_changes_nothing(database_url, tmp_path):
    with running_ledger(database_url) as ledger:
        before = ledger.log_state()[0]
        rates = EXAMPLES / "exchange-rates-2027-01.csv"
        done = run_cli(database_url, "reference", "load", "exchange-rates", str(rates))
        assert done.returncode == 0, done.stderr
        assert "[1/1] exchange-rates of 2027-01: published as version 1" in done.stderr
        assert "1 published, 0 unchanged, 0 refused" in done.stdout
        assert ledger.log_state()[0] == before + 1
        # The server sees it at once (SQLite: the kept register is checked against the store).
        seen = ledger.client.get("/v1/reference/exchange-rates", params={"on": "2027-01-15"})
        assert seen.status_code == 200 and seen.json()["rates"]["EUR"] == "8.265", seen.text
        assert seen.json()["published_by"].startswith("cli:")

        again = run_cli(database_url, "reference", "load", "exchange-rates", str(rates))
        assert again.returncode == 0 and "0 published, 1 unchanged" in again.stdout
        assert ledger.log_state()[0] == before + 1

        exported = tmp_path / "rates.csv"
        out = run_cli(
            database_url, "reference", "export", "exchange-rates", "--on", "2027-01-02",
            "-o", str(exported),
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        # The export reads back as the same figures: loading it is "unchanged".
        back = run_cli(database_url, "reference", "load", "exchange-rates", str(exported))
        assert back.returncode == 0 and "1 unchanged" in back.stdout, back.stdout + back.stderr


def test_a_correction_needs_a_reason_and_a_bad_row_is_named_by_its_line(sqlite_url, tmp_path):
    with running_ledger(sqlite_url) as ledger:
        first = tmp_path / "feb.csv"
        first.write_text("month,currency,cny_per_unit,source\n2027-02,EUR,8.30,GACC\n")
        assert (
            run_cli(sqlite_url, "reference", "load", "exchange-rates", str(first)).returncode == 0
        )
        fixed = tmp_path / "feb-fixed.csv"
        fixed.write_text("month,currency,cny_per_unit,source\n2027-02,EUR,8.31,GACC\n")
        refused = run_cli(sqlite_url, "reference", "load", "exchange-rates", str(fixed))
        assert refused.returncode == 1 and "correction needs a reason" in refused.stderr
        done = run_cli(
            sqlite_url, "reference", "load", "exchange-rates", str(fixed), "--reason", "typo"
        )
        assert done.returncode == 0, done.stderr
        assert "version 2, correcting version 1" in done.stderr

        before = ledger.log_state()
        bad = tmp_path / "tariff.csv"
        bad.write_text(
            "effective_from,hs_prefix,tariff_rate,vat_rate\n"
            "2027-03-01,847130,0,0.13\n"
            "2027-03-01,851712,0,0.13\n"
            "2027-03-01,950300,0,1.3\n"
        )
        refused = run_cli(sqlite_url, "reference", "load", "tariff", str(bad))
        assert refused.returncode == 1
        assert "tariff.csv line 3 hs_prefix: HS 851712: subheading 8517.12" in refused.stderr
        assert "tariff.csv line 4 vat_rate: must be a fraction below 1" in refused.stderr
        assert ledger.log_state() == before

        unreadable = tmp_path / "rates.csv"
        unreadable.write_text("month,currency,rate\n2027-02,EUR,8.3\n")
        form = run_cli(sqlite_url, "reference", "load", "exchange-rates", str(unreadable))
        assert form.returncode == 2 and "line 1: the header must be" in form.stderr
        missing = run_cli(sqlite_url, "reference", "load", "tariff", str(tmp_path / "none.csv"))
        assert missing.returncode == 2 and "none.csv" in missing.stderr
        assert ledger.log_state() == before


RATES = st.decimals(min_value="0.000001", max_value="100", places=6).map(lambda d: f"{d:f}")


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.sampled_from(["EUR", "USD", "GBP", "JPY", "HKD"]), RATES, min_size=1))
def test_a_rates_file_reads_as_the_figures_it_lists(rates):
    text = "month,currency,cny_per_unit,source\n" + "".join(
        f"2027-04,{code},{rate},test\n" for code, rate in rates.items()
    )
    ((body, lines),) = read_bodies("exchange-rates", text.encode(), None, None)
    assert {c: str(v) for c, v in body.rates.items()} == rates
    assert sorted(lines.values()) == list(range(2, len(rates) + 2))
    content = checked_content(body)
    assert content.rates is not None
    assert {c: float(v) for c, v in content.rates.items()} == {
        c: float(v) for c, v in rates.items()
    }
