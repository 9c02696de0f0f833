"""A small world for the monitoring dashboard (tests/e2e/test_dashboard.py and its screenshots):
two enterprises in two zones, declarations in every channel submitted over the past weeks and
released after hours or at once, goods in stock, a duty bill overdue and a rejection.

Submissions are dated back (a business time up to 90 days before the record is accepted, API.md
"Time"); the officers' releases happen now, so each clearance time is the time it was dated back
by. Values in CNY, so no month needs a customs exchange rate."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.samples import line
from tests.support import Ledger, Tenant, declaration_body, new_key, onboard

ZONES = ("XCBZ", "XEPZ")


@dataclass
class DashboardWorld:
    ledger: Ledger
    a: Tenant  # in XCBZ
    b: Tenant  # in XEPZ
    declarations: list[dict[str, Any]]


def make_dashboard_world(ledger: Ledger) -> DashboardWorld:
    for zone in ZONES:
        ledger.issue(f"gate-{zone}", "operator", zone=zone)
    a, b = onboard(ledger, "XCBZ"), onboard(ledger, "XEPZ")
    now = datetime.now(UTC)
    made: list[dict[str, Any]] = []

    def declare(t: Tenant, zone: str, hours_ago: float, **overrides: Any) -> dict[str, Any]:
        body = declaration_body(
            t.uscc,
            t.book_no,
            zone=zone,
            currency="CNY",
            occurred_at=(now - timedelta(hours=hours_ago)).isoformat(),
            **overrides,
        )
        r = ledger.post("/v1/declarations", t.token_name, body, key=new_key())
        assert r.status_code == 201, r.text
        made.append(r.json())
        return r.json()  # type: ignore[no-any-return]

    def officer(d: dict[str, Any], action: str, body: dict[str, Any]) -> dict[str, Any]:
        r = ledger.post(f"/v1/declarations/{d['id']}/{action}", "officer", body)
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    def clear(d: dict[str, Any]) -> dict[str, Any]:
        """The officer's decision that releases it: after document review or inspection."""
        if d["status"] == "document_review":
            d = officer(d, "release", {})
        elif d["status"] == "inspection":
            d = officer(d, "inspection-results", {"result": "conform", "findings": ""})
        assert d["status"] == "released", d
        return d

    def gate_in(d: dict[str, Any], zone: str, quantity: str) -> None:
        body = {
            "kind": "gate_in",
            "declaration": d["id"],
            "lines": [{"line_no": 1, "quantity": quantity}],
        }
        r = ledger.post("/v1/movements", f"gate-{zone}", body, key=new_key())
        assert r.status_code == 201, r.text

    # Green laptops and coffee, released on submission, over the past weeks; into stock.
    for t, zone, days, item, quantity in (
        (a, "XCBZ", 50, 1, "400"),
        (a, "XCBZ", 33, 2, "1200"),
        (a, "XCBZ", 21, 1, "250"),
        (a, "XCBZ", 3, 1, "120"),
        (b, "XEPZ", 40, 1, "300"),
        (b, "XEPZ", 8, 2, "800"),
    ):
        d = declare(t, zone, days * 24, lines=[line(item, quantity=quantity)])
        gate_in(clear(d), zone, quantity)
    # Medicaments (document review, yellow) and shotguns (inspection, red): released now,
    # hours after their submission.
    for t, zone, hours, item in (
        (a, "XCBZ", 6, 3),
        (a, "XCBZ", 18, 3),
        (a, "XCBZ", 30, 3),
        (a, "XCBZ", 26, 4),
        (a, "XCBZ", 52, 4),
        (b, "XEPZ", 11, 3),
        (b, "XEPZ", 40, 4),
    ):
        d = clear(declare(t, zone, hours, lines=[line(item, quantity="20")]))
        gate_in(d, zone, "20")
    # A review that ends in a rejection: counted by channel, never released.
    officer(
        declare(b, "XEPZ", 4, lines=[line(3, quantity="5")]),
        "rejection",
        {"reason": "the import registration certificate is missing"},
    )
    # Laptops sold into China 30 days ago whose duties were never paid: an overdue bill.
    sale = declaration_body(
        a.uscc,
        a.book_no,
        flow="second_line_out",
        trade_mode="0110",
        country="CN",
        currency="CNY",
        incoterm="CIF",
        occurred_at=(now - timedelta(days=30)).isoformat(),
        lines=[{**line(1, quantity="10"), "origin_country": None}],
    )
    del sale["freight"], sale["insurance"]
    r = ledger.post("/v1/declarations", a.token_name, sale, key=new_key())
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "awaiting_payment", r.text
    made.append(r.json())
    return DashboardWorld(ledger=ledger, a=a, b=b, declarations=made)
