"""No cliff at a month without exchange rates, over HTTP (issue #15 item 2): the ledger runs
with tables that have no customs exchange rate for this month. `/healthz` stays 200 and says
so under `reference`, `/metrics` counts the days (<= 0), a dutiable declaration in EUR is 422 at
`$.currency` naming the month and changes nothing, and the same declaration in CNY is taken.
A currency that never had a customs rate cannot be valued against the value checks' bounds:
a first-line import in it (which pays nothing) goes to document review (domain/value_checks.py)."""

from __future__ import annotations

import re

import msgspec

from api.reference_watch import today_in_china
from domain.assessment import ClearanceRules
from tests import samples
from tests.samples import declaration_body, line
from tests.support import admit, laptop_exit, new_key, onboard, running_ledger


def _rules_without_rates() -> ClearanceRules:
    rules = samples.rules_without_draws()
    return ClearanceRules(
        risk=rules.risk, duties=msgspec.structs.replace(rules.duties, exchange_rates=[])
    )


def test_a_month_without_rates_warns_refuses_foreign_currency_and_takes_cny(database_url):
    month = today_in_china().strftime("%Y-%m")
    with running_ledger(database_url, rules=_rules_without_rates()) as ledger:
        health = ledger.client.get("/healthz")
        assert health.status_code == 200 and health.json()["status"] == "ok", health.text
        reference = health.json()["reference"]
        assert reference["exchange_rates_until"] is None
        assert reference["first_month_without_rates"] == month
        assert reference["exchange_rate_days_left"] <= 0
        assert month in reference["warnings"][0]
        metrics = ledger.client.get("/metrics").text
        days = re.search(
            r'^ledger_reference_days_left\{kind="exchange-rates"\} (\S+)$', metrics, re.M
        )
        assert days is not None and float(days.group(1)) <= 0, metrics[-2000:]

        tenant = onboard(ledger)
        unvalued = ledger.post(
            "/v1/declarations",
            tenant.token_name,
            declaration_body(tenant.uscc, tenant.book_no, lines=[line(1, quantity="10")]),
            key=new_key(),
        )
        assert unvalued.status_code == 201, unvalued.text
        assert unvalued.json()["status"] == "document_review"
        assert unvalued.json()["risk_reasons"] == [
            "value_unrated:line 1: no customs exchange rate for the currency"
        ]
        admit(ledger, tenant, 1, "10", currency="CNY")
        before = ledger.log_state()
        refused = ledger.post(
            "/v1/declarations", tenant.token_name, laptop_exit(tenant, "EUR"), key=new_key()
        )
        assert refused.status_code == 422, refused.text
        error = refused.json()["errors"][0]
        assert error["loc"] == "$.currency" and month in error["msg"], error
        assert ledger.log_state() == before

        taken = ledger.post(
            "/v1/declarations", tenant.token_name, laptop_exit(tenant, "CNY"), key=new_key()
        )
        assert taken.status_code == 201, taken.text
        assert taken.json()["duties"]["currency"] == "CNY"


def test_healthz_shows_the_reference_outlook_of_the_built_in_tables(sqlite_url):
    with running_ledger(sqlite_url) as ledger:
        reference = ledger.client.get("/healthz").json()["reference"]
        assert reference["tariff_rows"] > 0
        assert set(reference) == {
            "exchange_rates_until",
            "first_month_without_rates",
            "exchange_rate_days_left",
            "tariff_rows",
            "positive_list_rows",
            "warnings",
        }
