"""Two servers on one PostgreSQL see a publication at once, without a restart (issue #15).

Server B has assessed a declaration already, so it keeps the reference registers it read.
On 2027-01-04 it refuses a declaration in EUR (no rates for the month); an officer publishes
January's rates through server A; B's very next EUR declaration is assessed with them, and
B's reads show them. A correction through A is used by B's next declaration too.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from domain.assessment import ClearanceRules
from domain.duty_tables import DEFAULT_TABLES
from tests import samples
from tests.support import Clock, admit, china, clocked_ledger, laptop_exit, new_key, onboard

pytestmark = pytest.mark.postgres


def test_a_publication_through_one_server_is_used_by_the_other_at_once(postgres_url):
    rules = ClearanceRules(risk=samples.rules_without_draws().risk, duties=DEFAULT_TABLES)
    clock = Clock(china("2026-12-30T09:00"))
    with (
        clocked_ledger(postgres_url, clock, rules) as a,
        clocked_ledger(postgres_url, clock, rules) as b,
    ):
        b.tokens.update(a.tokens)
        tenant = onboard(a)
        b.tokens[tenant.token_name] = a.tokens[tenant.token_name]
        admit(a, tenant, 1, "10")
        december = b.post("/v1/declarations", tenant.token_name, laptop_exit(tenant), key=new_key())
        assert december.status_code == 201, december.text  # B now keeps the registers

        clock.at = china("2027-01-04T09:00")
        refused = b.post("/v1/declarations", tenant.token_name, laptop_exit(tenant), key=new_key())
        assert refused.status_code == 422 and "2027-01" in refused.text, refused.text

        published = a.post(
            "/v1/reference/exchange-rates",
            "officer",
            {"month": "2027-01", "rates": {"EUR": "8.30"}, "source": "GACC, January 2027"},
        )
        assert published.status_code == 201, published.text

        seen = b.client.get("/v1/reference/exchange-rates", params={"on": "2027-01-04"})
        assert seen.status_code == 200 and seen.json()["version"] == 1, seen.text
        taken = b.post("/v1/declarations", tenant.token_name, laptop_exit(tenant), key=new_key())
        assert taken.status_code == 201, taken.text
        assert Decimal(taken.json()["duties"]["vat"]) == Decimal("453.18")  # 420 x 8.30 x 13%

        corrected = a.post(
            "/v1/reference/exchange-rates",
            "officer",
            {
                "month": "2027-01",
                "rates": {"EUR": "8.40"},
                "source": "GACC, January 2027",
                "reason": "corrected EUR rate",
            },
        )
        assert corrected.status_code == 201 and corrected.json()["version"] == 2
        later = b.post("/v1/declarations", tenant.token_name, laptop_exit(tenant), key=new_key())
        assert later.status_code == 201, later.text
        assert Decimal(later.json()["duties"]["vat"]) == Decimal("458.64")
        used = {t["kind"]: t["version"] for t in later.json()["assessed_with"]}
        assert used["exchange-rates"] == 2
