"""The dashboard's routes over HTTP on both stores: GET /v1/stats/clearance-time, /channels,
/stock and GET /v1/stats?group_by=zone, on tests/dashboard_data.py's world - explicit figures,
tenancy, a bad `group_by` (422 naming it), no data (an empty list), and replay == live."""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import api
from tests.dashboard_data import DashboardWorld, make_dashboard_world
from tests.soak.server import scratch_database
from tests.support import running_ledger

HOUR = 3600
# api/static/vendor/echarts/README.md: the dist file of echarts@5.6.0.
ECHARTS_SHA256 = "bf4a223524e40b77c304bec67e1222cf551f14880cf42c69dc046558e11c07b1"


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def world(request: pytest.FixtureRequest, tmp_path_factory: Any) -> Iterator[DashboardWorld]:
    if request.param == "postgres":
        request.getfixturevalue("postgres_available")
    workdir = tmp_path_factory.mktemp("dashboard")
    with scratch_database(request.param, workdir) as url, running_ledger(url) as ledger:
        yield make_dashboard_world(ledger)


def items(world: DashboardWorld, path: str, who: str = "officer", **params: Any) -> Any:
    r = world.ledger.get(path, who, params=params)
    assert r.status_code == 200, r.text
    assert r.json()["next_cursor"] is None
    return r.json()["items"]


def near(seconds: int, hours: float) -> bool:
    """A clearance time the world dated back by `hours`, give or take the test's own minutes."""
    return 0 <= seconds - hours * HOUR < 15 * 60


def test_clearance_time_by_channel(world):
    rows = {r["key"]: r for r in items(world, "/v1/stats/clearance-time")}
    assert set(rows) == {"green", "yellow", "red"}
    # Green: released on submission, 6 of them. Yellow: 6, 18, 30 h (A) and 11 h (B);
    # nearest rank p50 of 4 is the 2nd (11 h), p90 the 4th (30 h). Red: 26, 52 (A), 40 h (B).
    assert (rows["green"]["released"], rows["green"]["p50_seconds"]) == (6, 0)
    assert rows["green"]["p90_hours"] == "0.00"
    assert rows["yellow"]["released"] == 4
    assert near(rows["yellow"]["p50_seconds"], 11) and near(rows["yellow"]["p90_seconds"], 30)
    assert rows["red"]["released"] == 3
    assert near(rows["red"]["p50_seconds"], 40) and near(rows["red"]["p90_seconds"], 52)
    for row in rows.values():
        for p in ("p50", "p90"):
            hours = Decimal(row[f"{p}_seconds"]) / HOUR
            assert row[f"{p}_hours"] == str(hours.quantize(Decimal("0.01")))


def test_clearance_time_tenancy_zone_and_groups(world):
    a, b = world.a, world.b
    mine = items(world, "/v1/stats/clearance-time", a.token_name, group_by="zone")
    assert [(r["key"], r["released"]) for r in mine] == [("XCBZ", 4 + 5)]
    theirs = items(world, "/v1/stats/clearance-time", b.token_name, group_by="zone")
    assert [(r["key"], r["released"]) for r in theirs] == [("XEPZ", 2 + 2)]
    world.ledger.issue("gate-xepz-reader", "operator", zone="XEPZ")
    assert items(world, "/v1/stats/clearance-time", "gate-xepz-reader", group_by="zone") == theirs
    for who in ("auditor", "admin"):
        assert items(world, "/v1/stats/clearance-time", who, group_by="zone") == [
            *mine,
            *theirs,
        ]
    assert items(world, "/v1/stats/clearance-time", zone="XEPZ", group_by="zone") == theirs
    modes = items(world, "/v1/stats/clearance-time", group_by="trade_mode")
    assert [(r["key"], r["released"]) for r in modes] == [("5034", 13)]
    # By the China month of the release: the green ones were released when submitted, weeks ago.
    months = items(world, "/v1/stats/clearance-time", group_by="month")
    assert sum(r["released"] for r in months) == 13
    assert [r["key"] for r in months] == sorted({r["key"] for r in months})


def test_no_release_in_the_period_is_an_empty_list(world):
    period = {"from": "2020-01-01T00:00:00+08:00", "to": "2020-02-01T00:00:00+08:00"}
    assert items(world, "/v1/stats/clearance-time", **period) == []
    assert items(world, "/v1/stats/channels", **period) == []
    assert items(world, "/v1/stats/stock", zone="NOWHERE") == []


@pytest.mark.parametrize("path", ["/v1/stats/clearance-time", "/v1/stats/channels"])
def test_a_bad_group_by_is_422_naming_it(world, path):
    r = world.ledger.get(path, "officer", params={"group_by": "week"})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "query.group_by" in [e["loc"] for e in r.json()["errors"]], r.text
    assert world.ledger.client.get(path).status_code == 401


def test_channels_count_every_declaration_submitted(world):
    declared = world.declarations
    by_zone = {r["key"]: r for r in items(world, "/v1/stats/channels", group_by="zone")}
    for zone in ("XCBZ", "XEPZ"):
        counted = Counter(d["channel"] for d in declared if d["zone"] == zone)
        row = by_zone[zone]
        assert row["declarations"] == sum(counted.values())
        assert (row["green"], row["yellow"], row["red"]) == (
            counted["green"],
            counted["yellow"],
            counted["red"],
        )
        rate = Decimal(counted["red"]) / sum(counted.values())
        assert row["inspection_rate"] == str(rate.quantize(Decimal("0.0001")))
    # A: 4 green + 1 sale (green), 3 yellow, 2 red; B: 2 green, 2 yellow (one rejected), 1 red.
    assert (by_zone["XCBZ"]["declarations"], by_zone["XCBZ"]["red"]) == (10, 2)
    assert by_zone["XCBZ"]["inspection_rate"] == "0.2000"
    assert (by_zone["XEPZ"]["declarations"], by_zone["XEPZ"]["yellow"]) == (5, 2)
    mine = items(world, "/v1/stats/channels", world.b.token_name, group_by="zone")
    assert mine == [by_zone["XEPZ"]]


def test_stats_by_zone_and_overdue(world):
    rows = {r["key"]: r for r in items(world, "/v1/stats", group_by="zone")}
    # Not the rejected one; every movement a gate-in.
    assert (rows["XCBZ"]["declarations"], rows["XCBZ"]["movements"]) == (10, 9)
    assert (rows["XEPZ"]["declarations"], rows["XEPZ"]["movements"]) == (4, 4)
    sale = world.declarations[-1]
    assert Decimal(rows["XCBZ"]["overdue_cny"]) == Decimal(sale["duties"]["total"]) > 0
    assert rows["XEPZ"]["overdue_cny"] == "0"
    mine = items(world, "/v1/stats", world.a.token_name, group_by="zone")
    assert mine == [rows["XCBZ"]]


def test_stock_by_zone_goods_status_and_unit(world):
    rows = items(world, "/v1/stats/stock")
    got = [(r["zone"], r["goods_status"], r["unit"], r["lots"], r["on_hand"]) for r in rows]
    # XCBZ: laptops 400 + 250 + 120, medicaments 3 x 20, shotguns 2 x 20; coffee 1200 kg.
    assert got == [
        ("XCBZ", "bonded", "C62", 3 + 3 + 2, "870"),
        ("XCBZ", "bonded", "KGM", 1, "1200"),
        ("XEPZ", "bonded", "C62", 1 + 1 + 1, "340"),
        ("XEPZ", "bonded", "KGM", 1, "800"),
    ]
    # The lots' sums agree with the inventory's per item.
    inventory = items(world, "/v1/inventory", limit=1000)
    for zone, _status, unit, _, on_hand in got:
        assert Decimal(on_hand) == sum(
            Decimal(i["on_hand"]) for i in inventory if i["zone"] == zone and i["unit"] == unit
        )
    assert items(world, "/v1/stats/stock", world.a.token_name) == rows[:2]
    assert items(world, "/v1/stats/stock", zone="XEPZ") == rows[2:]


def test_a_replay_rebuilds_the_release_times_and_channels_as_live(world):
    """The declarations view's `channel` and `released_at_utc` (version 4): a replay of the
    whole log into a scratch store gives the same rows, so the same figures."""
    r = world.ledger.client.post(
        "/v1/audit/replay", json={}, headers=world.ledger.headers("auditor")
    )
    assert r.status_code == 200, r.text
    declarations = r.json()["projections"]["declarations"]
    assert declarations["equal"] is True, declarations
    assert r.json()["equal"] is True, r.json()["differences"]


def test_the_page_its_files_and_the_chart_library_are_served_with_the_strict_policy(world):
    """As the trace viewer: same-origin files only, no inline script or style, no markup built
    from strings in the page's own scripts, out of /openapi.json; ECharts from the package."""
    client = world.ledger.client
    page = client.get("/ui/dashboard")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "style-src 'self'" in policy
    scripts = re.findall(r"<script[^>]*>", page.text)
    assert scripts == [
        '<script src="static/echarts.min.js">',
        '<script type="module" src="static/dashboard.js">',
    ]
    assert "<style" not in page.text and not re.search(r"\s(on[a-z]+|style)=", page.text)
    for asset in ("dashboard.js", "dashboard-labels.js", "dashboard.css"):
        r = client.get(f"/ui/static/{asset}")
        media = "text/css" if asset.endswith(".css") else "text/javascript"
        assert r.status_code == 200 and r.headers["content-type"].startswith(media)
        assert r.headers["x-content-type-options"] == "nosniff"
        assert not re.findall(r"https?://", r.text), asset
        assert not re.search(r"\.innerHTML|\.outerHTML|insertAdjacentHTML|eval\(", r.text)
    library = client.get("/ui/static/echarts.min.js")
    assert library.status_code == 200
    assert library.headers["content-type"].startswith("text/javascript")
    vendored = Path(api.__file__).parent / "static" / "vendor" / "echarts"
    assert library.content == (vendored / "echarts.min.js").read_bytes()
    assert hashlib.sha256(library.content).hexdigest() == ECHARTS_SHA256
    assert "Apache License" in (vendored / "LICENSE").read_text()
    assert "Apache ECharts" in (vendored / "NOTICE").read_text()
    for name in ("vendor/echarts/LICENSE", "vendor%2Fecharts%2Fecharts.min.js", "LICENSE"):
        assert client.get(f"/ui/static/{name}").status_code == 404, name
    assert not [p for p in client.get("/openapi.json").json()["paths"] if "/ui/" in p]
