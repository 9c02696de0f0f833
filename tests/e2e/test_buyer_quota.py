"""GET /v1/buyers/{buyer_id}/quota: a buyer's year as the next retail list is checked against
it, for the enterprises, officers and auditors; the identity number never in the logs."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest

from domain.declaration import SHANGHAI
from tests.e2e.test_ecommerce import BUYER, retail_body, submit
from tests.e2e.test_observability import captured_log, json_lines
from tests.samples import make_resident_id
from tests.support import onboard, running_ledger

QUOTA = f"/v1/buyers/{BUYER}/quota"


@pytest.fixture
def ledger(database_url):
    with running_ledger(database_url) as ledger:
        yield ledger


def test_the_quota_is_the_limit_what_the_accepted_lists_used_and_what_remains(ledger):
    shop = onboard(ledger)
    this_year = datetime.now(SHANGHAI).year
    fresh = ledger.get(QUOTA, shop.token_name)
    assert fresh.status_code == 200, fresh.text
    assert fresh.json() == {
        "year": this_year,
        "limit": "26000.00",
        "used": "0.00",
        "remaining": "26000.00",
    }
    lists = []
    for amount in ("5000.00", "4000.00", "1234.56"):
        r = submit(ledger, shop, retail_body(shop, amount))
        assert r.status_code == 201, r.text
        lists.append(r.json())
    # 5,000.00 + 4,000.00 + 1,234.56 = 10,234.56; 26,000.00 - 10,234.56 = 15,765.44.
    for who in (shop.token_name, "officer", "auditor"):
        r = ledger.get(QUOTA, who)
        assert r.status_code == 200, (who, r.text)
        assert (r.json()["used"], r.json()["remaining"]) == ("10234.56", "15765.44")
    # A withdrawal gives its amount back: 10,234.56 - 4,000.00 = 6,234.56.
    r = ledger.post(
        f"/v1/declarations/{lists[1]['id']}/withdrawal", shop.token_name, {"reason": "cancelled"}
    )
    assert r.status_code == 200, r.text
    assert ledger.get(QUOTA, "auditor").json()["used"] == "6234.56"
    # Another year, another buyer: nothing used.
    r = ledger.get(QUOTA, "officer", params={"year": this_year - 1})
    assert r.json() == {
        "year": this_year - 1,
        "limit": "26000.00",
        "used": "0.00",
        "remaining": "26000.00",
    }
    other = ledger.get(f"/v1/buyers/{make_resident_id(9)}/quota", shop.token_name)
    assert other.json()["used"] == "0.00"
    # The lookup moves with each accepted list: 19,765.44 - 5,000.00 = 14,765.44.
    r = submit(ledger, shop, retail_body(shop, "5000.00"))
    assert r.status_code == 201, r.text
    assert ledger.get(QUOTA, "officer").json()["remaining"] == "14765.44"


def test_admins_operators_and_strangers_may_not_look_a_buyer_up(ledger):
    ledger.issue("gate-xcbz-quota", "operator", zone="XCBZ")
    for who, status in (("admin", 403), ("gate-xcbz-quota", 403)):
        r = ledger.get(QUOTA, who)
        assert r.status_code == status, (who, r.text)
    assert ledger.client.get(QUOTA).status_code == 401


def test_a_wrong_check_digit_or_year_is_a_422_naming_it_and_writes_nothing(ledger):
    shop = onboard(ledger)
    before = ledger.log_state()
    assert BUYER.endswith("X")
    r = ledger.get(f"/v1/buyers/{BUYER[:17]}1/quota", shop.token_name)
    assert r.status_code == 422, r.text
    assert [e["loc"] for e in r.json()["errors"]] == ["path.buyer_id"]
    assert BUYER[:17] not in r.text  # the answer does not repeat the number either
    for year in ("1999", "2100", "twenty", "2026.0"):
        r = ledger.get(QUOTA, shop.token_name, params={"year": year})
        assert r.status_code == 422, (year, r.text)
        assert [e["loc"] for e in r.json()["errors"]] == ["query.year"]
    assert ledger.get("/v1/buyers/" + "9" * 70 + "/quota", shop.token_name).status_code == 422
    assert ledger.log_state() == before


def test_the_identity_number_is_never_written_to_the_log(database_url):
    """The access line of the route carries its template as `route` and as `path`; a path
    under /v1/buyers/ that no route matches (a trailing slash, a typo) is logged as
    `/v1/buyers/{redacted}`."""
    wrong = BUYER[:17] + "1"
    with running_ledger(database_url) as ledger, captured_log() as stream:
        shop = onboard(ledger)
        for path in (
            QUOTA,
            f"/v1/buyers/{wrong}/quota",
            f"/v1/buyers/{BUYER}/quota/",
            f"/v1/buyers/{BUYER}",
        ):
            ledger.get(path, shop.token_name, params={"year": 2026}, follow_redirects=False)
        ledger.get(QUOTA, "admin")  # refused with 403: logged all the same
    # Every record the server wrote (the test's HTTP client, httpx, logs its own requests).
    records = [r for r in json_lines(stream) if r["logger"] != "httpx"]
    assert {r["logger"] for r in records} >= {"customs_ledger.access"}
    text = "\n".join(str(r) for r in records)
    assert BUYER[:17] not in text and BUYER[-8:] not in text
    access = [r for r in records if r["logger"] == "customs_ledger.access"]
    lookups = [r for r in access if r["path"].startswith("/v1/buyers/")]
    assert [(r["route"], r["path"], r["status"]) for r in lookups] == [
        ("/v1/buyers/{buyer_id}/quota", "/v1/buyers/{buyer_id}/quota", 200),
        ("/v1/buyers/{buyer_id}/quota", "/v1/buyers/{buyer_id}/quota", 422),
        ("unmatched", "/v1/buyers/{redacted}", 404),
        ("unmatched", "/v1/buyers/{redacted}", 404),
        ("/v1/buyers/{buyer_id}/quota", "/v1/buyers/{buyer_id}/quota", 403),
    ]
    assert all(r["msg"].startswith("GET /v1/buyers/{") for r in lookups)


def test_the_quota_counts_what_a_list_before_sealing_used(ledger):
    """A buyer's lists written before sealing count in a stream named by the number
    (domain/quota.py `carried_over`): the lookup adds it, as the next list's check does."""
    from domain import quota
    from domain.events import Actor

    app = ledger.services.app
    shop = onboard(ledger)
    year = datetime.now(SHANGHAI).year

    def write(uow, now):  # type: ignore[no-untyped-def]
        legacy = uow.pending(quota.quota_id(BUYER, year), quota.BuyerQuota)
        quota.use(
            legacy,
            quota.quota_id("old-list", year),
            Decimal("21000.00"),
            actor=Actor(name="before-sealing", role="enterprise"),
            occurred_at=now,
        )
        from domain.unit_of_work import Decision

        return Decision([legacy], None)

    app.run(lambda uow: write(uow, datetime.now(SHANGHAI)))
    r = ledger.get(QUOTA, shop.token_name)
    assert (r.json()["used"], r.json()["remaining"]) == ("21000.00", "5000.00")
    assert submit(ledger, shop, retail_body(shop, "5000.00")).status_code == 201
    assert submit(ledger, shop, retail_body(shop, "0.01")).status_code == 409
    assert ledger.get(QUOTA, "auditor").json()["remaining"] == "0.00"
