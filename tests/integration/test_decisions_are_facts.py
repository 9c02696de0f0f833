"""Assessments are recorded facts: new tables change new decisions, never old ones."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from domain.declaration import SHANGHAI
from tests.samples import line, rules_without_draws
from tests.support import declaration_body, new_key, onboard, running_ledger


def _laptops_out(t):
    return declaration_body(
        t.uscc,
        t.book_no,
        flow="second_line_out",
        trade_mode="0110",
        lines=[line(1, quantity="10", unit_price="420.00")],
    )


def test_old_assessments_keep_their_figures_and_name_their_tables(sqlite_url):
    with running_ledger(sqlite_url) as ledger:
        t = onboard(ledger)
        first = ledger.post("/v1/declarations", t.token_name, _laptops_out(t), key=new_key()).json()
    # The tariff changes: an officer publishes a newer table in force today (another laptop
    # VAT), and the ledger, restarted, decides with it; its configured tables do not count.
    with running_ledger(sqlite_url, rules=rules_without_draws()) as ledger:
        today = datetime.now(SHANGHAI).date().isoformat()
        row = {"hs_prefix": "847130", "tariff_rate": "0", "vat_rate": "0.20"}
        body = {"effective_from": today, "rows": [row], "source": "a test's newer tariff"}
        published = ledger.post("/v1/reference/tariff", "officer", body)
        assert published.status_code == 201, published.text
        ledger.tokens[t.token_name] = ledger.issue(
            t.token_name + "-2", "enterprise", enterprise=t.uscc
        )
        second = ledger.post(
            "/v1/declarations", t.token_name + "-2", _laptops_out(t), key=new_key()
        ).json()
        old = ledger.get(f"/v1/declarations/{first['id']}", "officer").json()
        events = ledger.get(f"/v1/streams/{first['id']}/events", "auditor").json()["items"]
        new_events = ledger.get(f"/v1/streams/{second['id']}/events", "auditor").json()["items"]
    # The first declaration keeps the VAT it was assessed with; the second uses the new rate.
    assert old["duties"] == first["duties"]
    assert Decimal(second["duties"]["vat"]) > Decimal(first["duties"]["vat"])
    assessed = next(e for e in events if e["type"] == "DeclarationAssessed")["payload"]
    newer = next(e for e in new_events if e["type"] == "DeclarationAssessed")["payload"]
    # Each assessment names the versions of the tables and rules that produced it.
    assert set(assessed["duties"]["tables"]) == {"tariff", "exchange_rates", "assessable"}
    assert assessed["duties"]["tables"]["tariff"] != newer["duties"]["tables"]["tariff"]
    assert (
        assessed["duties"]["tables"]["exchange_rates"]
        == newer["duties"]["tables"]["exchange_rates"]
    )
    assert assessed["risk"]["rules_version"] == newer["risk"]["rules_version"]
    assert Decimal(assessed["risk"]["draw"]) >= 0
    assert [x["rate"] if "rate" in x else x["vat_rate"] for x in assessed["duties"]["lines"]] == [
        "0.13"
    ]
