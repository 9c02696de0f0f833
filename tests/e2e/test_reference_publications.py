"""Reference data published as events (issue #15 items 1 and 2), with the test's own clock.

A ledger runs on the built-in tables, whose exchange rates end with 2026-12. Days before
2027-01 `/healthz` warns; on 2027-01-04 a declaration in EUR is refused naming the month and
the command that publishes it; an officer publishes the month's rates and the same declaration
is accepted, recording the version it used; a correction (with its reason) is used by later
declarations while earlier ones keep theirs; an auditor's as-of read shows which version was in
force; and the log alone reproduces every assessment's figures.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import msgspec
import pytest

from domain.assessment import ClearanceRules
from domain.duty_tables import DEFAULT_TABLES
from ledger.reassess import reassess
from tests import samples
from tests.support import Clock, admit, china, clocked_ledger, laptop_exit, new_key, onboard


def _built_in_tables() -> ClearanceRules:
    """The built-in tariff and rates (2026-10 to 2026-12), the risk rules without draws."""
    return ClearanceRules(risk=samples.rules_without_draws().risk, duties=DEFAULT_TABLES)


def test_a_month_is_published_by_an_officer_and_declarations_record_the_version(database_url):
    clock = Clock(china("2026-12-28T09:00"))
    with clocked_ledger(database_url, clock, _built_in_tables()) as ledger:
        # Days before: the warning names the month, the status stays ok.
        health = ledger.client.get("/healthz").json()
        assert health["status"] == "ok"
        reference = health["reference"]
        assert reference["exchange_rates_until"] == "2026-12"
        assert reference["exchange_rate_days_left"] == 4
        assert "2027-01" in reference["warnings"][0]
        assert "reference load exchange-rates" in reference["warnings"][0]
        assert reference["positive_list_rows"] > 0 and reference["tariff_rows"] > 0

        tenant = onboard(ledger)
        admit(ledger, tenant, 1, "10")

        # 2027-01-04: refused, naming the month and the command; nothing written.
        clock.at = china("2027-01-04T09:00")
        assert ledger.client.get("/healthz").json()["reference"]["exchange_rate_days_left"] <= 0
        before = ledger.log_state()
        refused = ledger.post(
            "/v1/declarations", tenant.token_name, laptop_exit(tenant), key=new_key()
        )
        assert refused.status_code == 422, refused.text
        (error,) = refused.json()["errors"]
        assert error["loc"] == "$.currency"
        assert "2027-01" in error["msg"] and "reference load exchange-rates" in error["msg"]
        assert ledger.log_state() == before

        # The officer publishes January's rates.
        january = {"month": "2027-01", "rates": {"EUR": "8.30", "USD": "7.10"}}
        published = ledger.post(
            "/v1/reference/exchange-rates",
            "officer",
            {**january, "source": "GACC customs exchange rates, January 2027"},
        )
        assert published.status_code == 201, published.text
        first = published.json()
        assert first["version"] == 1 and first["effective_from"] == "2027-01-01"
        assert first["position"] == ledger.log_state()[0]

        taken = ledger.post(
            "/v1/declarations", tenant.token_name, laptop_exit(tenant), key=new_key()
        )
        assert taken.status_code == 201, taken.text
        # 420 EUR x 8.30 = 3,486.00 CNY customs value; VAT 13% = 453.18.
        assert Decimal(taken.json()["duties"]["vat"]) == Decimal("453.18")
        used = {t["kind"]: t for t in taken.json()["assessed_with"]}
        assert used["exchange-rates"] == {
            "kind": "exchange-rates",
            "effective_from": "2027-01-01",
            "version": 1,
            "digest": first["digest"],
        }
        assert used["tariff"]["version"] == 1 and "risk-rules" in used

        # A correction needs a reason; the same figures again change nothing.
        clock.at = china("2027-01-04T11:00")
        corrected = {**january, "rates": {"EUR": "8.40", "USD": "7.10"}, "source": "GACC"}
        without = ledger.post("/v1/reference/exchange-rates", "officer", corrected)
        assert without.status_code == 422 and without.json()["errors"][0]["loc"] == "$.reason"
        again = ledger.post(
            "/v1/reference/exchange-rates",
            "officer",
            {**january, "source": "again", "reason": "resent"},
        )
        assert again.status_code == 409 and again.json()["rule"] == "reference_unchanged"
        second = ledger.post(
            "/v1/reference/exchange-rates",
            "officer",
            {**corrected, "reason": "EUR rate mistyped in the announcement"},
        )
        assert second.status_code == 201, second.text
        assert second.json()["version"] == 2 and second.json()["corrects"] == 1

        later = ledger.post(
            "/v1/declarations", tenant.token_name, laptop_exit(tenant), key=new_key()
        )
        assert later.status_code == 201, later.text
        assert Decimal(later.json()["duties"]["vat"]) == Decimal("458.64")  # 420 x 8.40 x 13%
        later_used = {t["kind"]: t for t in later.json()["assessed_with"]}
        assert later_used["exchange-rates"]["version"] == 2

        # The earlier declaration keeps the version and figures it was assessed with.
        ledger.client.headers["X-Ledger-Min-Position"] = str(ledger.log_state()[0])
        detail = ledger.get(f"/v1/declarations/{taken.json()['id']}", tenant.token_name)
        assert detail.status_code == 200, detail.text
        assert Decimal(detail.json()["duties"]["vat"]) == Decimal("453.18")
        assert {t["kind"]: t for t in detail.json()["assessed_with"]} == used

        # As known at 10:00 (between the two publications) version 1 was in force.
        between = (china("2027-01-04T10:00")).isoformat()
        as_known = ledger.client.get(
            "/v1/reference/exchange-rates", params={"on": "2027-01-04", "as_of": between}
        )
        assert as_known.status_code == 200 and as_known.json()["version"] == 1
        now = ledger.client.get("/v1/reference/exchange-rates", params={"on": "2027-01-20"})
        assert now.json()["version"] == 2 and now.json()["rates"]["EUR"] == "8.4"
        versions = ledger.client.get("/v1/reference/exchange-rates/versions").json()["items"]
        january_versions = [v for v in versions if v.get("month") == "2027-01"]
        assert [v["version"] for v in january_versions] == [1, 2]
        assert january_versions[1]["reason"] == "EUR rate mistyped in the announcement"
        assert january_versions[0]["published_by"].startswith("officer-")

        # The log alone reproduces every assessment's figures with its recorded tables.
        found = reassess(ledger.services.app.log, DEFAULT_TABLES)
        assert found.assessments >= 3 and not found.differences, found.differences
        assert found.reproduced == found.assessments


def test_a_fresh_ledger_publishes_its_tables_as_version_1_by_system(sqlite_url):
    clock = Clock(china("2026-12-05T09:00"))
    with clocked_ledger(sqlite_url, clock, _built_in_tables()) as ledger:
        for kind in ("exchange-rates", "tariff", "positive-list"):
            versions = ledger.client.get(f"/v1/reference/{kind}/versions")
            assert versions.status_code == 200, versions.text
            items = versions.json()["items"]
            assert items and all(v["version"] == 1 for v in items)
            assert {v["published_by"] for v in items} == {"system"}
        tariff = ledger.client.get("/v1/reference/tariff", params={"on": "2026-12-05"}).json()
        # The built-in 8-digit-free headings are published as their 6-digit subheadings.
        assert all(6 <= len(r["hs_prefix"]) <= 10 for r in tariff["rows"])
        assert any(r["hs_prefix"] == "847130" for r in tariff["rows"])
        # Risk rules are selection criteria: officers and auditors only.
        assert ledger.client.get("/v1/reference/risk-rules").status_code == 401
        rules = ledger.get("/v1/reference/risk-rules", "auditor")
        assert rules.status_code == 200 and "seed" not in rules.json()["rules"]
        assert ledger.get("/v1/reference/risk-rules/versions", "officer").status_code == 200
    # Started again on the same store: nothing is published a second time.
    with clocked_ledger(sqlite_url, clock, _built_in_tables()) as ledger:
        items = ledger.client.get("/v1/reference/tariff/versions").json()["items"]
        assert len(items) == 1


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        (
            {
                "effective_from": "2027-01-01",
                "rows": [
                    {"hs_prefix": "847130", "tariff_rate": "0", "vat_rate": "0.13"},
                    {"hs_prefix": "851713", "tariff_rate": "0", "vat_rate": "13"},
                ],
                "source": "x",
            },
            "$.rows[1].vat_rate",
        ),
        (
            {
                "effective_from": "2027-01-01",
                "rows": [{"hs_prefix": "8471", "tariff_rate": "0", "vat_rate": "0.13"}],
                "source": "x",
            },
            "$.rows[0].hs_prefix",
        ),
        (
            {
                "effective_from": "2027-01-01",
                "rows": [{"hs_prefix": "847130", "tariff_rate": "-0.1", "vat_rate": "0.13"}],
                "source": "x",
            },
            "$.rows[0].tariff_rate",
        ),
        (
            {"effective_from": "2027-01-01", "rows": [], "source": "x"},
            "$.rows",
        ),
    ],
)
def test_bad_tariff_rows_are_422_naming_the_row_and_change_nothing(sqlite_url, body, loc):
    clock = Clock(china("2026-12-05T09:00"))
    with clocked_ledger(sqlite_url, clock, _built_in_tables()) as ledger:
        before = ledger.log_state()
        r = ledger.post("/v1/reference/tariff", "officer", body)
        assert r.status_code == 422, r.text
        assert loc in [e["loc"] for e in r.json()["errors"]]
        assert ledger.log_state() == before


def test_only_officers_publish(sqlite_url):
    clock = Clock(china("2026-12-05T09:00"))
    body = {"month": "2027-02", "rates": {"EUR": "8.3"}, "source": "x"}
    with clocked_ledger(sqlite_url, clock, _built_in_tables()) as ledger:
        before = ledger.log_state()
        for role in ("admin", "auditor"):
            r = ledger.post("/v1/reference/exchange-rates", role, body)
            assert r.status_code == 403, r.text
        assert ledger.client.post("/v1/reference/exchange-rates", json=body).status_code == 401
        assert ledger.log_state() == before


def test_a_tariff_correction_is_used_from_then_on(sqlite_url):
    """A tariff published for a later date takes over from that date; the old one stays in
    force before it (exchange rates are by month, tariffs by effective date)."""
    clock = Clock(china("2026-12-05T09:00"))
    with clocked_ledger(sqlite_url, clock, _built_in_tables()) as ledger:
        rows = [{"hs_prefix": "847130", "tariff_rate": "0.05", "vat_rate": "0.13"}]
        r = ledger.post(
            "/v1/reference/tariff",
            "officer",
            {"effective_from": "2026-12-10", "rows": rows, "source": "test tariff"},
        )
        assert r.status_code == 201, r.text
        on_9th = ledger.client.get("/v1/reference/tariff", params={"on": "2026-12-09"}).json()
        on_10th = ledger.client.get("/v1/reference/tariff", params={"on": "2026-12-10"}).json()
        assert on_9th["effective_from"] == "2026-01-01"
        assert on_10th["effective_from"] == "2026-12-10" and len(on_10th["rows"]) == 1
        assert ledger.client.get("/v1/reference/tariff", params={"on": "12/10"}).status_code == 422
        clock.at = china("2026-12-10T09:00") + timedelta(hours=1)
        tenant = onboard(ledger)
        admit(ledger, tenant, 1, "10")
        body = laptop_exit(tenant, currency="CNY")
        d = ledger.post("/v1/declarations", tenant.token_name, body, key=new_key())
        assert d.status_code == 201, d.text
        # 420 CNY: tariff 5% = 21.00 (under the CNY 50 waiver: not collected), VAT on 441.
        used = {t["kind"]: t for t in d.json()["assessed_with"]}
        assert used["tariff"]["effective_from"] == "2026-12-10"
        assert "exchange-rates" not in used  # a declaration in CNY reads no rate
        found = reassess(ledger.services.app.log, DEFAULT_TABLES)
        assert found.reproduced == found.assessments and not found.differences


def test_reassessment_reports_an_assessment_its_tables_do_not_reproduce(sqlite_url):
    """The check can fail: with other configured modes, waiver or factor it says so."""
    clock = Clock(china("2026-12-05T09:00"))
    with clocked_ledger(sqlite_url, clock, _built_in_tables()) as ledger:
        tenant = onboard(ledger)
        admit(ledger, tenant, 1, "10")
        body = laptop_exit(tenant, price="10.00")
        d = ledger.post("/v1/declarations", tenant.token_name, body, key=new_key())
        assert d.status_code == 201, d.text
        other = msgspec.structs.replace(DEFAULT_TABLES, waiver_cny=Decimal("0"))
        found = reassess(ledger.services.app.log, other)
        assert found.differences and "assessable" in found.differences[0]


def test_an_assessable_line_without_a_tariff_row_is_422_at_submission(sqlite_url):
    """Refused when declared, at the line's hs_code, never later at the gate."""
    clock = Clock(china("2026-12-05T09:00"))
    with clocked_ledger(sqlite_url, clock, _built_in_tables()) as ledger:
        tenant = onboard(ledger)
        admit(ledger, tenant, 1, "10")
        rows = [{"hs_prefix": "851713", "tariff_rate": "0", "vat_rate": "0.13"}]
        body = {"effective_from": "2026-12-01", "rows": rows, "source": "a tariff without laptops"}
        assert ledger.post("/v1/reference/tariff", "officer", body).status_code == 201
        before = ledger.log_state()
        refused = ledger.post(
            "/v1/declarations", tenant.token_name, laptop_exit(tenant), key=new_key()
        )
        assert refused.status_code == 422, refused.text
        (error,) = refused.json()["errors"]
        assert error["loc"] == "$.lines[0].hs_code" and "8471300000" in error["msg"]
        assert "/v1/reference/tariff" in error["msg"]
        assert ledger.log_state() == before
