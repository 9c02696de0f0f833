"""Credit classes, the workflow's transition table and its roles, listing filters and statistics,
over HTTP on both stores.

The ledger runs on the test's own clock (`TestClock`, from 27 November 2026), so business days,
the 90-day window and the customs rate of the month are the same whatever day the suite runs,
and the worked figures below are always checked."""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import msgspec
import pytest

from domain.assessment import ClearanceRules
from domain.declaration import SHANGHAI
from domain.duty_tables import DEFAULT_TABLES
from domain.enterprise import enterprise_id
from domain.risk_rules import DEFAULT_RULES
from tests.samples import book_body, line, rules_without_draws
from tests.support import (
    Ledger,
    Tenant,
    declaration_body,
    make_uscc,
    new_key,
    onboard,
    running_ledger,
)


class TestClock:
    """Business time for the ledger's commands: `start`, moving on with real time."""

    __test__ = False

    def __init__(self, start: datetime) -> None:
        self.start = start
        self.began = time.monotonic()

    def __call__(self) -> datetime:
        return self.start + timedelta(seconds=time.monotonic() - self.began)


# 10:00 in China on 27 November 2026: November's customs rates apply (EUR 8.2437).
START = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)


@pytest.fixture
def ledger(database_url):
    with running_ledger(database_url) as ledger:
        # The clock the commands read their `now` from (the app's is the wall clock).
        ledger.services.ledger.clock = TestClock(START)
        yield ledger


def declare(ledger: Ledger, tenant: Tenant, **overrides: Any) -> dict[str, Any]:
    body = declaration_body(tenant.uscc, tenant.book_no, **overrides)
    r = ledger.post("/v1/declarations", tenant.token_name, body, key=new_key())
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def change_class(ledger: Ledger, uscc: str, credit_class: str, who: str = "officer") -> Any:
    body = {"credit_class": credit_class, "reason": "customs credit review 2026/11"}
    return ledger.post(f"/v1/enterprises/{uscc}/credit-class", who, body)


# -- credit classes ----------------------------------------------------------------------


def test_an_officer_changes_a_credit_class_with_a_reason(ledger):
    tenant = onboard(ledger)
    ledger.issue("officer-wang", "officer")
    ledger.issue("gate-xcbz", "operator", zone="XCBZ")
    body = {"credit_class": "dishonest", "reason": "false declarations, case XA-2026-117"}
    before = ledger.log_state()
    for who in ("admin", tenant.token_name, "auditor", "gate-xcbz"):
        r = ledger.post(f"/v1/enterprises/{tenant.uscc}/credit-class", who, body)
        assert r.status_code == 403, (who, r.text)
    assert (
        ledger.client.post(f"/v1/enterprises/{tenant.uscc}/credit-class", json=body).status_code
        == 401
    )
    assert ledger.log_state() == before

    r = ledger.post(f"/v1/enterprises/{tenant.uscc}/credit-class", "officer-wang", body)
    assert r.status_code == 200, r.text
    assert r.json()["uscc"] == tenant.uscc and r.json()["credit_class"] == "dishonest"
    assert ledger.get(f"/v1/enterprises/{tenant.uscc}", "officer").json()["credit_class"] == (
        "dishonest"
    )
    events = ledger.get(f"/v1/streams/{enterprise_id(tenant.uscc)}/events", "auditor").json()
    assert [e["type"] for e in events["items"]] == ["EnterpriseRegistered", "CreditClassChanged"]
    change = events["items"][-1]["payload"]
    assert change["credit_class"] == "dishonest" and change["previous"] == "regular"
    assert change["reason"] == "false declarations, case XA-2026-117"
    assert change["actor"] == {"name": "officer-wang", "role": "officer"}

    before = ledger.log_state()
    r = ledger.post(f"/v1/enterprises/{tenant.uscc}/credit-class", "officer", body)
    assert r.status_code == 409, r.text
    assert r.json()["rule"] == "credit_class_unchanged"
    r = ledger.post(f"/v1/enterprises/{make_uscc()}/credit-class", "officer", body)
    assert r.status_code == 404, r.text
    r = ledger.post(
        f"/v1/enterprises/{tenant.uscc}/credit-class",
        "officer",
        {"credit_class": "platinum", "reason": "no such class"},
    )
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == "$.credit_class"
    r = ledger.post(
        f"/v1/enterprises/{tenant.uscc}/credit-class",
        "officer",
        {"credit_class": "regular", "reason": "   "},
    )
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == "$.reason"
    assert ledger.log_state() == before

    # Decisions use the class in force when they are recorded.
    after = declare(ledger, tenant)
    assert after["channel"] == "yellow" and after["status"] == "document_review"
    assert change_class(ledger, tenant.uscc, "regular").status_code == 200
    again = declare(ledger, tenant)
    assert again["channel"] == "green" and again["status"] == "released"


def test_the_negative_list_holds_the_dishonest_enterprises_only(ledger):
    honest, dishonest, reformed = onboard(ledger), onboard(ledger), onboard(ledger)
    assert change_class(ledger, dishonest.uscc, "dishonest").status_code == 200
    assert change_class(ledger, reformed.uscc, "dishonest").status_code == 200
    assert change_class(ledger, reformed.uscc, "advanced_certified").status_code == 200
    for who in ("admin", "officer", "auditor"):
        r = ledger.get("/v1/enterprises", who, params={"credit_class": "dishonest"})
        assert r.status_code == 200, r.text
        assert [e["uscc"] for e in r.json()["items"]] == [dishonest.uscc]
        assert {e["credit_class"] for e in r.json()["items"]} == {"dishonest"}
    everyone = ledger.get("/v1/enterprises", "officer").json()["items"]
    assert [e["uscc"] for e in everyone] == [honest.uscc, dishonest.uscc, reformed.uscc]
    certified = ledger.get("/v1/enterprises?credit_class=advanced_certified", "officer").json()
    assert [e["uscc"] for e in certified["items"]] == [reformed.uscc]
    # An enterprise sees itself only, on the list or not.
    r = ledger.get("/v1/enterprises?credit_class=dishonest", honest.token_name)
    assert r.status_code == 200 and r.json()["items"] == []
    r = ledger.get("/v1/enterprises?credit_class=dishonest", dishonest.token_name)
    assert [e["uscc"] for e in r.json()["items"]] == [dishonest.uscc]
    ledger.issue("gate-xcbz", "operator", zone="XCBZ")
    assert ledger.get("/v1/enterprises?credit_class=dishonest", "gate-xcbz").status_code == 403


def _dishonest_policy_says_green() -> ClearanceRules:
    """A rules file that tries to let dishonest enterprises through: the law's floor holds."""
    classes = dict(DEFAULT_RULES.classes)
    classes["dishonest"] = msgspec.structs.replace(
        classes["dishonest"], base_channel="green", selection_rate=Decimal(0)
    )
    risk = msgspec.structs.replace(DEFAULT_RULES, classes=classes)
    return ClearanceRules(risk=risk, duties=rules_without_draws().duties)


@pytest.mark.parametrize(
    "rules",
    [
        pytest.param(lambda: None, id="test-rules-without-draws"),
        # The default rules draw 50% of dishonest declarations for inspection.
        pytest.param(
            lambda: ClearanceRules(risk=DEFAULT_RULES, duties=rules_without_draws().duties),
            id="default-rules-with-draws",
        ),
        pytest.param(_dishonest_policy_says_green, id="rules-file-says-green"),
    ],
)
def test_a_dishonest_enterprises_declarations_are_never_green(database_url, rules):
    with running_ledger(database_url, rules=rules()) as ledger:
        tenant = onboard(ledger)
        assert change_class(ledger, tenant.uscc, "dishonest").status_code == 200
        channels = []
        for n in range(12):
            # Laptops, coffee, into the zone and out to the market: goods no rule watches.
            overrides: dict[str, Any] = {"lines": [line(1 + n % 2)]}
            if n % 3 == 2:
                overrides["flow"] = "second_line_out"
            created = declare(ledger, tenant, **overrides)
            assert created["channel"] in ("yellow", "red"), created
            assert created["status"] in ("document_review", "inspection"), created
            assert created["risk_reasons"][0] == "credit_class:dishonest"
            channels.append(created["channel"])
        assert len(channels) == 12


# -- the transition table ----------------------------------------------------------------


def in_status(ledger: Ledger, tenant: Tenant) -> dict[str, dict[str, Any]]:
    """One declaration in each status of the table."""
    out = {
        # A regular enterprise's laptops into the zone: green, nothing to pay.
        "released": declare(ledger, tenant),
        # Watched goods: medicaments go to document review, shotguns to inspection.
        "document_review": declare(ledger, tenant, lines=[line(3)]),
        "inspection": declare(ledger, tenant, lines=[line(4)]),
        # Laptops out to the domestic market: VAT is due, green waits for the payment.
        "awaiting_payment": declare(ledger, tenant, flow="second_line_out", lines=[line(1)]),
    }
    rejected = declare(ledger, tenant, lines=[line(3)])
    r = ledger.post(f"/v1/declarations/{rejected['id']}/rejection", "officer", {"reason": "no"})
    assert r.status_code == 200, r.text
    out["rejected"] = r.json()
    withdrawn = declare(ledger, tenant, lines=[line(3)])
    r = ledger.post(
        f"/v1/declarations/{withdrawn['id']}/withdrawal", tenant.token_name, {"reason": "typo"}
    )
    assert r.status_code == 200, r.text
    out["withdrawn"] = r.json()
    assert {status: d["status"] for status, d in out.items()} == {s: s for s in out}
    assert Decimal(out["awaiting_payment"]["duties"]["outstanding"]) > 0
    return out


ACTIONS = {
    "release": ("officer", "release", {}),
    "inspection": ("officer", "inspection-results", {"result": "conform", "findings": ""}),
    "rejection": ("officer", "rejection", {"reason": "documents missing"}),
    "withdrawal": ("declarant", "withdrawal", {"reason": "changed our mind"}),
    "payment": ("declarant", "payments", {"amount": "1.00", "currency": "CNY", "reference": "P1"}),
}
# What the table allows; every other (action, status) pair is 409 invalid_transition.
ALLOWED = {
    "release": {"document_review"},
    "inspection": {"inspection"},
    "rejection": {"document_review", "inspection"},
    "withdrawal": {"document_review", "inspection", "awaiting_payment"},
    "payment": {"document_review", "inspection", "awaiting_payment"},
}
STATUSES = (
    "released",
    "document_review",
    "inspection",
    "awaiting_payment",
    "rejected",
    "withdrawn",
)


def test_every_transition_outside_the_table_is_409_invalid_transition(ledger):
    tenant = onboard(ledger)
    declarations = in_status(ledger, tenant)
    refused = 0
    for action, (who, path, body) in ACTIONS.items():
        for status in STATUSES:
            if status in ALLOWED[action]:
                continue
            caller = tenant.token_name if who == "declarant" else who
            before = ledger.log_state()
            ref = declarations[status]["declaration_no"]
            r = ledger.post(f"/v1/declarations/{ref}/{path}", caller, body)
            assert r.status_code == 409, (action, status, r.text)
            problem = r.json()
            assert problem["rule"] == "invalid_transition", (action, status, problem)
            assert problem["current_status"] == status, (action, status, problem)
            assert ledger.log_state() == before
            refused += 1
    # 5 + 5 + 4 + 3 + 3 pairs outside the table.
    assert refused == 20
    # Nothing moved.
    for status, d in declarations.items():
        assert ledger.get(f"/v1/declarations/{d['id']}", "officer").json()["status"] == status


def test_the_officer_paths_through_the_table(ledger):
    tenant = onboard(ledger)
    ledger.issue("officer-zhao", "officer")
    # Inspection, nonconform (findings required) -> document review -> release.
    shotguns = declare(ledger, tenant, lines=[line(4)])
    url = f"/v1/declarations/{shotguns['id']}"
    r = ledger.post(
        f"{url}/inspection-results", "officer", {"result": "nonconform", "findings": ""}
    )
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == "$.findings"
    r = ledger.post(
        f"{url}/inspection-results",
        "officer-zhao",
        {"result": "nonconform", "findings": "serial numbers do not match the licence"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "document_review"
    r = ledger.post(f"{url}/release", "officer-zhao", {})
    assert r.status_code == 200, r.text
    # Into the zone: nothing to pay, so released at once.
    assert r.json()["status"] == "released"
    detail = ledger.get(url, tenant.token_name).json()
    assert [(h["type"], h["actor"]["role"]) for h in detail["history"]] == [
        ("DeclarationSubmitted", "enterprise"),
        ("DeclarationAssessed", "enterprise"),
        ("InspectionRecorded", "officer"),
        ("ReleaseGranted", "officer"),
        # The release filed the declaration's checklist (domain/checklists.py).
        ("ChecklistFiled", "officer"),
    ]
    assert detail["history"][2]["actor"] == {"name": "officer-zhao", "role": "officer"}

    # Inspection conform -> released; document review -> rejected.
    more_shotguns = declare(ledger, tenant, lines=[line(4)])
    r = ledger.post(
        f"/v1/declarations/{more_shotguns['id']}/inspection-results",
        "officer",
        {"result": "conform", "findings": "as declared"},
    )
    assert r.status_code == 200 and r.json()["status"] == "released"
    medicaments = declare(ledger, tenant, lines=[line(3)])
    r = ledger.post(
        f"/v1/declarations/{medicaments['id']}/rejection",
        "officer",
        {"reason": "no drug import registration"},
    )
    assert r.status_code == 200 and r.json()["status"] == "rejected"
    events = ledger.get(f"/v1/streams/{medicaments['id']}/events", "auditor").json()["items"]
    assert events[-1]["type"] == "DeclarationRejected"
    assert events[-1]["payload"]["reason"] == "no drug import registration"


def test_officer_routes_are_for_officers_and_payments_for_the_declarant(ledger):
    tenant, other = onboard(ledger), onboard(ledger)
    ledger.issue("gate-xcbz", "operator", zone="XCBZ")
    review = declare(ledger, tenant, lines=[line(3)])
    due = declare(ledger, tenant, flow="second_line_out", lines=[line(1)])
    before = ledger.log_state()
    for path, body in (
        ("inspection-results", {"result": "conform", "findings": "ok"}),
        ("release", {}),
        ("rejection", {"reason": "no"}),
    ):
        for who in (tenant.token_name, "admin", "auditor", "gate-xcbz"):
            r = ledger.post(f"/v1/declarations/{review['id']}/{path}", who, body)
            assert r.status_code == 403, (path, who, r.text)
    payment = {"amount": "1.00", "currency": "CNY", "reference": "P1"}
    for who in ("officer", "admin", "auditor", "gate-xcbz"):
        r = ledger.post(f"/v1/declarations/{due['id']}/payments", who, payment)
        assert r.status_code == 403, (who, r.text)
    # Another enterprise cannot tell the declaration exists.
    r = ledger.post(f"/v1/declarations/{due['id']}/payments", other.token_name, payment)
    assert r.status_code == 404, r.text
    assert ledger.client.post(f"/v1/declarations/{due['id']}/release", json={}).status_code == 401
    assert ledger.log_state() == before
    r = ledger.post(f"/v1/declarations/{due['id']}/payments", tenant.token_name, payment)
    assert r.status_code == 200, r.text


# -- listing and statistics --------------------------------------------------------------


def at(day: date, hh: int, mm: int = 0, offset: str = "+08:00") -> str:
    """An RFC 3339 business time on `day` at hh:mm in the given offset."""
    return f"{day.isoformat()}T{hh:02d}:{mm:02d}:00{offset}"


def china_now(ledger: Ledger) -> datetime:
    """Now on the ledger's clock, in China."""
    return ledger.services.ledger.clock().astimezone(SHANGHAI)  # type: ignore[no-any-return]


def china_today(ledger: Ledger) -> date:
    return china_now(ledger).date()


def open_second_book(ledger: Ledger, tenant: Tenant, zone: str) -> Tenant:
    book_no = f"B{tenant.uscc[-8:]}{zone}"
    r = ledger.post("/v1/account-books", "admin", book_body(book_no, tenant.uscc, zone))
    assert r.status_code == 201, r.text
    return Tenant(uscc=tenant.uscc, book_no=book_no, token_name=tenant.token_name)


def walk(ledger: Ledger, who: str, **params: Any) -> list[dict[str, Any]]:
    """Every page of GET /v1/declarations with limit=2."""
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(50):
        query = {"limit": 2, **params} | ({"cursor": cursor} if cursor else {})
        r = ledger.get("/v1/declarations", who, params=query)
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["items"]) <= 2
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("pagination never ended")


def test_listing_declarations_filters_pages_and_keeps_tenants_apart(ledger):
    a, b = onboard(ledger), onboard(ledger)
    a_htz = open_second_book(ledger, a, "XHTZ")
    d0 = china_today(ledger) - timedelta(days=6)
    d = {
        "d1": declare(ledger, a, occurred_at=at(d0, 9)),
        # 02:00Z is 10:00 in China, the next day.
        "d2": declare(
            ledger,
            a,
            flow="second_line_in",
            occurred_at=at(d0 + timedelta(days=1), 2, offset="Z"),
        ),
        "d3": declare(ledger, a, lines=[line(3)], occurred_at=at(d0 + timedelta(days=2), 9)),
        # 23:30 at UTC-5 is 12:30 the next day in China.
        "d4": declare(
            ledger,
            a_htz,
            zone="XHTZ",
            occurred_at=at(d0 + timedelta(days=3), 23, 30, offset="-05:00"),
        ),
        "d5": declare(ledger, a, lines=[line(3)], occurred_at=at(d0 + timedelta(days=5), 9)),
        "b1": declare(ledger, b, occurred_at=at(d0 + timedelta(days=2), 12)),
    }
    r = ledger.post(f"/v1/declarations/{d['d5']['id']}/withdrawal", a.token_name, {"reason": "x"})
    assert r.status_code == 200, r.text
    ids = {name: x["id"] for name, x in d.items()}

    def names(who: str, **params: Any) -> list[str]:
        r = ledger.get("/v1/declarations", who, params=params)
        assert r.status_code == 200, r.text
        by_id = {v: k for k, v in ids.items()}
        return [by_id[item["id"]] for item in r.json()["items"]]

    assert names("officer") == ["d1", "d2", "d3", "d4", "d5", "b1"]
    assert names("officer", status="released") == ["d1", "d2", "d4", "b1"]
    assert names("officer", status="document_review") == ["d3"]
    assert names("officer", status="withdrawn") == ["d5"]
    assert names("officer", flow="second_line_in") == ["d2"]
    assert names("officer", zone="XHTZ") == ["d4"]
    assert names("auditor", declarant=b.uscc) == ["b1"]
    assert names("admin", declarant=a.uscc, status="released") == ["d1", "d2", "d4"]

    # [from, to) on business time: from d2's instant (inclusive) to d4's (exclusive), written
    # with +08:00 offsets. d2 = (d0+1) 10:00+08:00; d4 = (d0+4) 12:30+08:00.
    since = at(d0 + timedelta(days=1), 10)
    until = at(d0 + timedelta(days=4), 12, 30)
    assert names("officer", **{"from": since, "to": until}) == ["d2", "d3", "b1"]
    assert "%2B08%3A00" in str(
        ledger.get("/v1/declarations", "officer", params={"from": since}).url
    )
    # The same with a raw "+" in the query string, which arrives as a space.
    raw = ledger.get(f"/v1/declarations?from={since}&to={until}", "officer")
    assert "+08:00" in str(raw.url)
    assert [item["id"] for item in raw.json()["items"]] == [ids["d2"], ids["d3"], ids["b1"]]
    # One microsecond either side of a bound moves it in or out.
    just_after = (datetime.fromisoformat(since) + timedelta(microseconds=1)).isoformat()
    assert names("officer", **{"from": just_after, "to": until}) == ["d3", "b1"]
    just_after_d4 = (datetime.fromisoformat(until) + timedelta(microseconds=1)).isoformat()
    assert names("officer", **{"from": since, "to": just_after_d4}) == ["d2", "d3", "d4", "b1"]
    r = ledger.get("/v1/declarations", "officer", params={"from": "2026-11-01T00:00:00"})
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == "query.from"

    # Cursor pagination walks every item once, in submission order.
    assert [x["id"] for x in walk(ledger, "officer")] == list(ids.values())
    assert [x["id"] for x in walk(ledger, a.token_name)] == [
        ids[n] for n in ("d1", "d2", "d3", "d4", "d5")
    ]
    released = walk(ledger, "officer", status="released")
    assert [x["id"] for x in released] == [ids[n] for n in ("d1", "d2", "d4", "b1")]

    # Tenancy: b sees its own only, whatever it asks for; an operator sees its zone.
    assert names(b.token_name) == ["b1"]
    assert names(b.token_name, declarant=a.uscc) == []
    assert names(a.token_name, declarant=b.uscc) == []
    ledger.issue("gate-xhtz", "operator", zone="XHTZ")
    assert names("gate-xhtz") == ["d4"]


CENT = Decimal("0.01")


def eur_rate(month: str) -> Decimal:
    """The customs EUR rate of `month` from DEFAULT_TABLES (2026-10 to 2026-12); after that,
    from the test rules, which copy 2026-11 into the current month."""
    tables = DEFAULT_TABLES
    if not any(r.month == month for r in tables.exchange_rates):
        tables = rules_without_draws().duties
    rate = tables.rates_for(month).rate_of("EUR")
    assert rate is not None
    return rate


def month_of_assessment(ledger: Ledger, declaration: dict[str, Any]) -> str:
    """The month whose customs rates the declaration's assessment used, as recorded: the month
    (China time) of the ledger's clock when it was submitted."""
    events = ledger.get(f"/v1/streams/{declaration['id']}/events", "auditor").json()["items"]
    (assessed,) = [e for e in events if e["type"] == "DeclarationAssessed"]
    return assessed["payload"]["duties"]["rate_month"]  # type: ignore[no-any-return]


def expected_value(ledger: Ledger, declaration: dict[str, Any]) -> Decimal:
    """sum(quantity x unit_price) x the EUR rate of the month the declaration was assessed in
    (rates apply as of the recorded time), rounded half-up to 0.01 CNY."""
    goods = sum(
        (Decimal(x["quantity"]) * Decimal(x["unit_price"]) for x in declaration["lines"]),
        Decimal(0),
    )
    rate = eur_rate(month_of_assessment(ledger, declaration))
    return (goods * rate).quantize(Decimal("0.01"), ROUND_HALF_UP)


def business_day(occurred_at: str) -> str:
    return datetime.fromisoformat(occurred_at).astimezone(SHANGHAI).date().isoformat()


def test_stats_count_and_value_declarations_exactly(ledger):
    a, b = onboard(ledger), onboard(ledger)
    a_htz = open_second_book(ledger, a, "XHTZ")
    today = china_today(ledger)
    d1 = today - timedelta(days=4)
    # 35 days back is always an earlier calendar month, and within the 90-day window.
    earlier_month = today - timedelta(days=35)
    plan: list[tuple[Tenant, dict[str, Any]]] = [
        # 1000 laptops x 420.00 EUR, into the zone.
        (a, {"occurred_at": at(d1, 10)}),
        # 10 kg of coffee x 8.50 EUR; 17:30Z is 01:30 the next day in China.
        (a, {"lines": [line(2)], "occurred_at": at(d1, 17, 30, offset="Z")}),
        # 10 laptops from the domestic market into the zone, general trade.
        (
            a,
            {
                "flow": "second_line_in",
                "trade_mode": "0110",
                "lines": [line(1)],
                "occurred_at": at(d1 + timedelta(days=1), 15),
            },
        ),
        (a, {"lines": [line(1, quantity="3")], "occurred_at": at(earlier_month, 12)}),
        (a_htz, {"zone": "XHTZ", "lines": [line(1, quantity="7")], "occurred_at": at(d1, 11)}),
        (b, {"lines": [line(1, quantity="2")], "occurred_at": at(d1, 12)}),
    ]
    counted = [(t, declare(ledger, t, **overrides)) for t, overrides in plan]
    # Withdrawn and rejected declarations are left out.
    gone = declare(ledger, a, lines=[line(3)], occurred_at=at(d1, 13))
    r = ledger.post(f"/v1/declarations/{gone['id']}/withdrawal", a.token_name, {"reason": "x"})
    assert r.status_code == 200, r.text
    refused = declare(ledger, a, lines=[line(3)], occurred_at=at(d1, 14))
    r = ledger.post(f"/v1/declarations/{refused['id']}/rejection", "officer", {"reason": "no"})
    assert r.status_code == 200, r.text

    # The worked figures: 1000 x 420.00 = 420,000.00 EUR and 10 x 8.50 = 85.00 EUR, at the
    # month's customs rate; for 2026-11 (EUR 8.2437): 420,000.00 x 8.2437 = 3,462,354.00 CNY
    # and 85.00 x 8.2437 = 700.7145, half-up 700.71 CNY.
    rate = eur_rate(month_of_assessment(ledger, counted[0][1]))
    assert expected_value(ledger, counted[0][1]) == (Decimal("420000.00") * rate).quantize(CENT)
    assert expected_value(ledger, counted[1][1]) == (Decimal("85.00") * rate).quantize(
        CENT, ROUND_HALF_UP
    )
    # On the test's clock, which runs from START.
    assert {month_of_assessment(ledger, x) for _, x in counted} == {"2026-11"}
    assert rate == Decimal("8.2437")
    assert expected_value(ledger, counted[0][1]) == Decimal("3462354.00")
    assert expected_value(ledger, counted[1][1]) == Decimal("700.71")

    rows = [
        {
            "tenant": t.uscc,
            "zone": x["zone"],
            "day": business_day(x["occurred_at"]),
            "at": datetime.fromisoformat(x["occurred_at"]),
            "trade_mode": x["trade_mode"],
            "flow": x["flow"],
            "value": expected_value(ledger, x),
        }
        for t, x in counted
    ]

    def expect(group_by: str, keep: Any = lambda row: True) -> list[dict[str, Any]]:
        key_of = {
            "day": lambda row: row["day"],
            "month": lambda row: row["day"][:7],
            "trade_mode": lambda row: row["trade_mode"],
            "flow": lambda row: row["flow"],
        }[group_by]
        counts: dict[str, int] = defaultdict(int)
        values: dict[str, Decimal] = defaultdict(Decimal)
        for row in filter(keep, rows):
            counts[key_of(row)] += 1
            values[key_of(row)] += row["value"]
        return [
            {
                "key": k,
                "declarations": counts[k],
                "movements": 0,
                "value_cny": str(values[k]),
                "overdue_cny": "0",  # nothing is due yet: bills fall due 15 days on
            }
            for k in sorted(counts)
        ]

    def stats(who: str, **params: Any) -> list[dict[str, Any]]:
        r = ledger.get("/v1/stats", who, params=params)
        assert r.status_code == 200, r.text
        assert r.json()["next_cursor"] is None
        return r.json()["items"]  # type: ignore[no-any-return]

    for group_by in ("flow", "trade_mode", "day", "month"):
        for who in ("officer", "auditor", "admin"):
            assert stats(who, group_by=group_by) == expect(group_by), (group_by, who)
        # Tenancy: each enterprise counts its own declarations only.
        assert stats(a.token_name, group_by=group_by) == expect(
            group_by, lambda row: row["tenant"] == a.uscc
        )
        assert stats(b.token_name, group_by=group_by) == expect(
            group_by, lambda row: row["tenant"] == b.uscc
        )
    # Explicit figures, so the test does not only agree with itself.
    assert rows[1]["day"] == (d1 + timedelta(days=1)).isoformat()  # 17:30Z is 01:30 next day
    by_flow = {row["key"]: row for row in stats("officer", group_by="flow")}
    assert by_flow["first_line_in"]["declarations"] == 5
    assert by_flow["second_line_in"]["declarations"] == 1
    # 10 laptops x 420.00 = 4,200.00 EUR at the month's rate.
    assert by_flow["second_line_in"]["value_cny"] == str(
        (Decimal("4200.00") * eur_rate(month_of_assessment(ledger, counted[2][1]))).quantize(CENT)
    )

    # Zone filter, the operator's zone, and [from, to) on business time.
    assert stats("officer", group_by="flow", zone="XHTZ") == expect(
        "flow", lambda row: row["zone"] == "XHTZ"
    )
    ledger.issue("gate-xhtz", "operator", zone="XHTZ")
    assert stats("gate-xhtz", group_by="month") == expect(
        "month", lambda row: row["zone"] == "XHTZ"
    )
    # [from, to) = [d1 11:00, d1+1 15:00) China time: the XHTZ laptops at 11:00 (the bound
    # itself), b's at 12:00 and the coffee at 01:30 the next day; not the 10:00 laptops nor the
    # second-line entry at 15:00 (the excluded end), nor the withdrawn and rejected ones.
    since, until = at(d1, 11), at(d1 + timedelta(days=1), 15)
    lo, hi = datetime.fromisoformat(since), datetime.fromisoformat(until)
    for group_by in ("day", "trade_mode"):
        got = stats("officer", group_by=group_by, **{"from": since, "to": until})
        assert got == expect(group_by, lambda row: lo <= row["at"] < hi)
    (only,) = stats("officer", group_by="trade_mode", **{"from": since, "to": until})
    assert only["key"] == "5034" and only["declarations"] == 3
    assert Decimal(only["value_cny"]) == sum(
        (expected_value(ledger, counted[n][1]) for n in (1, 4, 5)), Decimal(0)
    )
    r = ledger.get("/v1/stats", "officer", params={"group_by": "week"})
    assert r.status_code == 422
