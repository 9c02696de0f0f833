"""The monitoring dashboard in a real browser: every chart's series hold exactly the figures of
the route it came from, the filters ask for what they say, the language switch changes the
labels and survives a reload, and an enterprise's token sees only its own.

As tests/e2e/test_trace_viewer.py: the ledger serves HTTP for real (uvicorn in a thread, on a
SQLite file) and Debian's Chromium, driven by Playwright, opens `/ui/dashboard`; without them
the tests are skipped locally and fail in CI. With LEDGER_UPDATE_DOCS_SCREENSHOT=1 the
screenshots are written to docs/img/dashboard-zh.png and docs/img/dashboard-en.png (CJK text
needs a CJK font on the machine, e.g. Debian's fonts-wqy-microhei or fonts-noto-cjk).
"""

# Chinese labels are written with full-width parentheses, as Chinese text is.
# ruff: noqa: RUF001

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.dashboard_data import DashboardWorld, make_dashboard_world
from tests.e2e.test_trace_viewer import chromium_or_skip
from tests.support import serving

ROOT = Path(__file__).resolve().parents[2]
LANGUAGE_KEY = "customs-ledger.dashboard.language"
CHARTS = ("declarations", "channels", "clearance", "stock", "overdue")


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[tuple[str, DashboardWorld]]:
    chromium_or_skip()
    database = tmp_path_factory.mktemp("dashboard") / "ledger.sqlite3"
    with serving(f"sqlite:///{database}") as (base, ledger):
        yield base, make_dashboard_world(ledger)


@pytest.fixture(scope="module")
def browser(world) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    args = ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"]
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=chromium_or_skip(), args=args)
        yield launched
        launched.close()


@pytest.fixture
def page(browser, world) -> Iterator[Any]:
    """A fresh tab (English browser); afterwards: no script error, no console error, no CSP
    violation, no request off the ledger."""
    base = world[0]
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="en-US")
    context.set_default_timeout(15_000)
    tab = context.new_page()
    troubles: list[str] = []

    def note_console(message: Any) -> None:
        # The browser logs a refused request (the wrong-token test's 401) as an error of its
        # own: the page shows that answer, it is no fault of the page.
        refused = message.text.startswith("Failed to load resource: the server responded with")
        if (message.type == "error" and not refused) or "Content Security Policy" in message.text:
            troubles.append(f"console {message.type}: {message.text}")

    def note_request(request: Any) -> None:
        if not request.url.startswith((base, "data:")):
            troubles.append(f"request off the ledger: {request.url}")

    tab.on("pageerror", lambda error: troubles.append(f"script error: {error}"))
    tab.on("console", note_console)
    tab.on("request", note_request)
    yield tab
    context.close()
    assert troubles == []


def show(page: Any, base: str, token: str, query: str = "") -> None:
    page.goto(f"{base}/ui/dashboard{query}")
    page.fill("#token", token)
    page.click("#run")
    page.wait_for_selector("body[data-state=ready]")


def drawn(page: Any, name: str) -> dict[str, Any]:
    """What chart `name` draws: its categories and each series' id, name and data."""
    return page.evaluate(  # type: ignore[no-any-return]
        """name => {
            const option = window.dashboard.charts[name].getOption();
            return {
                keys: option.xAxis[0].data,
                series: option.series.map(s => ({id: s.id, name: s.name, data: s.data})),
            };
        }""",
        name,
    )


def api(world: DashboardWorld, path: str, who: str, **params: Any) -> list[dict[str, Any]]:
    r = world.ledger.get(path, who, params={k: v for k, v in params.items() if v is not None})
    assert r.status_code == 200, r.text
    return r.json()["items"]  # type: ignore[no-any-return]


def expected(
    world: DashboardWorld,
    who: str,
    group_by: str = "month",
    zone: str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> dict[str, dict[str, Any]]:
    """Each chart as the routes answer the same question: categories and series data."""
    period = {"zone": zone, "from": since, "to": until}
    stats = api(world, "/v1/stats", who, group_by=group_by, **period)
    channels = api(world, "/v1/stats/channels", who, group_by=group_by, **period)
    clearance = api(world, "/v1/stats/clearance-time", who, group_by="channel", **period)
    stock = api(world, "/v1/stats/stock", who, zone=zone)
    overdue = api(world, "/v1/stats", who, group_by="zone", **period)
    zones = sorted({r["zone"] for r in stock})
    kinds = sorted({(r["goods_status"], r["unit"]) for r in stock})
    on_hand = {(r["zone"], r["goods_status"], r["unit"]): r["on_hand"] for r in stock}
    return {
        "declarations": {
            "keys": [r["key"] for r in stats],
            "declarations": [r["declarations"] for r in stats],
            "value_cny": [r["value_cny"] for r in stats],
        },
        "channels": {
            "keys": [r["key"] for r in channels],
            **{f: [r[f] for r in channels] for f in ("green", "yellow", "red", "inspection_rate")},
        },
        "clearance": {
            "keys": [r["key"] for r in clearance],
            **{f: [r[f] for r in clearance] for f in ("p50_hours", "p90_hours")},
        },
        "stock": {
            "keys": zones,
            **{f"stock:{s}|{u}": [on_hand.get((z, s, u)) for z in zones] for s, u in kinds},
        },
        "overdue": {
            "keys": [r["key"] for r in overdue],
            "overdue_cny": [r["overdue_cny"] for r in overdue],
        },
    }


def assert_charts_equal_the_api(page: Any, want: dict[str, dict[str, Any]]) -> None:
    for name in CHARTS:
        got = drawn(page, name)
        assert got["keys"] == want[name]["keys"], name
        series = {s["id"]: s["data"] for s in got["series"]}
        assert series == {k: v for k, v in want[name].items() if k != "keys"}, name


def overdue_counts(world: DashboardWorld, who: str, zone: str | None = None) -> tuple[str, str]:
    bills = api(world, "/v1/tax-bills", who, status="overdue", limit=1000)
    checklists = api(world, "/v1/checklists", who, overdue="true", zone=zone, limit=1000)
    return str(sum(zone is None or b["zone"] == zone for b in bills)), str(len(checklists))


def test_every_chart_draws_its_routes_figures_as_they_are(page, world):
    base, w = world
    show(page, base, w.ledger.tokens["officer"])
    want = expected(w, "officer")
    assert_charts_equal_the_api(page, want)
    # Not only agreeing with itself: the figures tests/dashboard_data.py made.
    assert sum(drawn(page, "declarations")["series"][0]["data"]) == 14
    assert drawn(page, "clearance")["keys"] == ["green", "red", "yellow"]
    assert drawn(page, "overdue")["keys"] == ["XCBZ", "XEPZ"]
    bills, checklists = overdue_counts(w, "officer")
    assert bills == "1"
    assert page.inner_text("#count-bills") == bills
    assert page.inner_text("#count-checklists") == checklists
    # Each card names the route it was drawn from.
    assert page.inner_text("#src-clearance") == "GET /v1/stats/clearance-time?group_by=channel"
    assert page.inner_text("#src-stock") == "GET /v1/stats/stock"


def test_the_filters_ask_for_the_zone_period_and_grouping_chosen(page, world):
    base, w = world
    token = w.ledger.tokens["auditor"]
    show(page, base, token)
    today = date.today()
    first, last = today - timedelta(days=45), today
    page.select_option("#zone", "XEPZ")
    page.select_option("#group", "zone")
    page.fill("#from", first.isoformat())
    page.fill("#to", last.isoformat())
    page.evaluate("document.body.dataset.state = 'asked'")
    page.click("#run")
    page.wait_for_selector("body[data-state=ready]")
    since = f"{first.isoformat()}T00:00:00+08:00"
    until = f"{(last + timedelta(days=1)).isoformat()}T00:00:00+08:00"
    want = expected(w, "auditor", group_by="zone", zone="XEPZ", since=since, until=until)
    assert_charts_equal_the_api(page, want)
    assert want["declarations"]["keys"] == ["XEPZ"] and want["stock"]["keys"] == ["XEPZ"]
    assert (page.inner_text("#count-bills"), page.inner_text("#count-checklists")) == (
        overdue_counts(w, "auditor", "XEPZ")
    )
    # The address keeps the filters (never the token); a reload asks the same again.
    assert "zone=XEPZ" in page.url and "group_by=zone" in page.url and token not in page.url
    page.reload()
    page.wait_for_selector("body[data-state=ready]")
    assert page.input_value("#zone") == "XEPZ" and page.input_value("#from") == first.isoformat()
    assert_charts_equal_the_api(page, want)


def test_the_language_switch_changes_the_labels_and_survives_a_reload(page, world):
    base, w = world
    show(page, base, w.ledger.tokens["officer"])
    assert page.inner_text("h1") == "Customs monitoring dashboard"
    assert drawn(page, "channels")["series"][3]["name"] == "Inspection rate"
    before = {name: drawn(page, name) for name in CHARTS}
    page.select_option("#lang", "zh-CN")
    assert page.inner_text("h1") == "海关监管统计看板"
    assert page.inner_text("#h-clearance") == "整体通关时间（申报至放行）"
    assert page.evaluate("document.documentElement.lang") == "zh-CN"
    names = {s["id"]: s["name"] for s in drawn(page, "channels")["series"]}
    assert names["inspection_rate"] == "查验率" and names["red"] == "红色通道（查验）"
    assert drawn(page, "declarations")["series"][0]["name"] == "报关单（票）"
    # The figures do not change with the language.
    for name in CHARTS:
        assert [s["data"] for s in drawn(page, name)["series"]] == [
            s["data"] for s in before[name]["series"]
        ], name
    assert page.evaluate(f"localStorage.getItem('{LANGUAGE_KEY}')") == "zh-CN"
    page.reload()
    assert page.inner_text("h1") == "海关监管统计看板"
    assert page.input_value("#lang") == "zh-CN"
    page.wait_for_selector("body[data-state=ready]")  # the tab's token asks again
    assert drawn(page, "stock")["series"][0]["name"].startswith("保税")
    page.select_option("#lang", "en")
    assert page.inner_text("h1") == "Customs monitoring dashboard"


def test_an_enterprise_sees_only_its_own_figures(page, world):
    base, w = world
    show(page, base, w.ledger.tokens[w.b.token_name])
    want = expected(w, w.b.token_name)
    assert_charts_equal_the_api(page, want)
    assert drawn(page, "overdue")["keys"] == ["XEPZ"]
    assert drawn(page, "stock")["keys"] == ["XEPZ"]
    officer = expected(w, "officer")
    assert (
        sum(want["declarations"]["declarations"])
        == 4
        < sum(officer["declarations"]["declarations"])
    )
    assert page.inner_text("#count-bills") == "0"  # the overdue bill is A's


def test_a_wrong_token_shows_the_401_problem(page, world):
    base, _ = world
    page.goto(f"{base}/ui/dashboard")
    page.fill("#token", "wrong")
    page.click("#run")
    page.wait_for_selector("body[data-state=error]")
    assert page.inner_text("#problem h2").startswith("401")
    assert page.locator("#board").is_hidden()


def test_a_refusal_comes_in_the_pages_language_not_the_browsers(page, world):
    """The browser asks in English (en-US); the page switched to Chinese asks the API in
    Chinese, so the 401's title is Chinese; switched back, English again."""
    base, _ = world
    page.goto(f"{base}/ui/dashboard")
    titles = {}
    for language in ("zh-CN", "en"):
        page.select_option("#lang", language)
        page.fill("#token", "wrong")
        page.click("#run")
        page.wait_for_selector("body[data-state=error]")
        titles[language] = page.inner_text("#problem h2")
        page.evaluate("document.body.removeAttribute('data-state')")
    assert all(t.startswith("401 ") for t in titles.values()), titles
    assert any("\u4e00" <= c <= "\u9fff" for c in titles["zh-CN"]), titles
    assert not any("\u4e00" <= c <= "\u9fff" for c in titles["en"]), titles


def test_screenshots_in_both_languages(page, world, tmp_path):
    base, w = world
    page.set_viewport_size({"width": 1400, "height": 1100})
    first, last = date.today() - timedelta(days=60), date.today()
    show(page, base, w.ledger.tokens["officer"], f"?from={first}&to={last}&group_by=month")
    assert page.input_value("#from") == first.isoformat()
    artifacts = ROOT / "artifacts" if os.environ.get("LEDGER_ARTIFACTS") else tmp_path
    for language, suffix in (("zh-CN", "zh"), ("en", "en")):
        page.select_option("#lang", language)
        paths = [artifacts / f"dashboard-{suffix}.png"]
        if os.environ.get("LEDGER_UPDATE_DOCS_SCREENSHOT") == "1":
            paths.append(ROOT / "docs" / "img" / f"dashboard-{suffix}.png")
        for path in paths:
            path.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(path), full_page=True)
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
