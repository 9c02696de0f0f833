"""The trace viewer in a real browser: the train-to-air story drawn lane by lane, lot by lot.

The ledger serves HTTP for real (uvicorn in a thread, on a SQLite file) and Debian's Chromium,
driven by Playwright, opens `/ui/trace`. Without Chromium or Playwright the browser tests are
skipped locally and fail in CI, which must run them (`.ci/run` installs Chromium). The page
speaks zh-CN and en: the tabs here are English browsers unless a test says otherwise, and the
Chinese screenshot needs a CJK font on the machine (Debian's fonts-wqy-microhei or
fonts-noto-cjk).
"""

# Chinese labels are written with full-width punctuation, as Chinese text is.
# ruff: noqa: RUF001

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.stories import run_story
from tests.support import running_ledger, serving

ROOT = Path(__file__).resolve().parents[2]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
TRAIN = "X8024-20261127"
TOKEN_KEY = "customs-ledger.trace-viewer.token"
LANGUAGE_KEY = "customs-ledger.trace-viewer.language"
CJK = re.compile("[\u4e00-\u9fff]")


def chromium_or_skip() -> str:
    """The Chromium executable; skip (locally) or fail (CI) naming whatever is missing."""
    missing = []
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the `playwright` Python package (pip install -e '.[dev]')")
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        missing.append("a `chromium` executable (apt-get install chromium)")
    if missing:
        message = "the trace viewer's browser test needs " + " and ".join(missing)
        if IN_CI:
            pytest.fail(message + "; CI must run it")
        pytest.skip(message)
    assert executable is not None
    return executable


@pytest.fixture(scope="module")
def story(tmp_path_factory) -> Iterator[dict[str, Any]]:
    chromium_or_skip()
    database = tmp_path_factory.mktemp("viewer") / "ledger.sqlite3"
    with serving(f"sqlite:///{database}") as (base, ledger):
        told = run_story(ledger)
        answer = ledger.get("/v1/trace", "officer", params={"ref": TRAIN})
        assert answer.status_code == 200, answer.text
        yield {
            "arrival": told.arrival,
            "kit_lot": told.kit_lot,
            "base": base,
            "ledger": ledger,
            "answer": answer.json(),
        }


@pytest.fixture(scope="module")
def browser(story) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    args = ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"]
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=chromium_or_skip(), args=args)
        yield launched
        launched.close()


@contextmanager
def new_tab(browser: Any, story: dict[str, Any], locale: str = "en-US") -> Iterator[Any]:
    """A fresh tab of a browser in `locale`; afterwards: no script error, no CSP violation,
    no request off the ledger."""
    context = browser.new_context(viewport={"width": 1600, "height": 1000}, locale=locale)
    context.set_default_timeout(15_000)
    tab = context.new_page()
    troubles: list[str] = []

    def note_console(message: Any) -> None:
        if "Content Security Policy" in message.text:
            troubles.append(message.text)

    def note_request(request: Any) -> None:
        if not request.url.startswith((story["base"], "data:")):
            troubles.append(f"request off the ledger: {request.url}")

    tab.on("pageerror", lambda error: troubles.append(f"script error: {error}"))
    tab.on("console", note_console)
    tab.on("request", note_request)
    yield tab
    context.close()
    assert troubles == []


@pytest.fixture
def page(browser, story) -> Iterator[Any]:
    """A fresh tab of an English browser (see `new_tab`)."""
    with new_tab(browser, story) as tab:
        yield tab


def open_and_trace(page: Any, story: dict[str, Any], token: str) -> None:
    page.goto(f"{story['base']}/ui/trace?ref={TRAIN}")
    assert page.input_value("#ref") == TRAIN
    page.fill("#token", token)
    page.click("#run")


def test_draws_a_lane_per_zone_the_lots_by_time_the_edges_and_the_timeline(page, story):
    answer, token = story["answer"], story["ledger"].tokens["officer"]
    open_and_trace(page, story, token)
    page.wait_for_selector("svg#chain g.lot")
    chain = page.locator("svg#chain")
    assert chain.locator("text.lane-label").all_text_contents() == ["XCBZ", "XEPZ", "XABZ"]
    assert answer["zones"] == ["XCBZ", "XEPZ", "XABZ"]
    # The train's laptops and adapters, both received in XEPZ, the kits there and in XABZ.
    assert chain.locator("g.lot").count() == len(answer["lots"]) == 6
    assert chain.locator("g.edge").count() == len(answer["edges"]) == 5
    labels = sorted(chain.locator("g.edge > text").all_text_contents())
    assert labels == ["processing 40", "processing 40", "transfer 40", "transfer 40", "transfer 40"]
    texts = chain.locator("g.lot").all_text_contents()
    assert any("Laptop computers" in x and "100 C62 · bonded" in x for x in texts), texts
    assert sum("Laptop kits" in x for x in texts) == 2
    # Left to right by business time: x never decreases along the answer's time order.
    xs = {
        node.get_attribute("data-lot-id"): float(
            re.match(r"translate\(([\d.]+),", node.get_attribute("transform")).group(1)
        )
        for node in chain.locator("g.lot").all()
    }
    ordered = sorted(answer["lots"], key=lambda x: datetime.fromisoformat(x["occurred_at"]))
    assert [xs[x["lot_id"]] for x in ordered] == sorted(xs.values())
    assert xs[story["kit_lot"]] > min(xs.values())
    # The timeline lists every event of the chain in order, with documents and actors.
    rows = page.locator("#timeline tbody tr")
    assert rows.count() == len(answer["events"])
    types = page.locator("#timeline tbody td.type").all_text_contents()
    assert types == [e["type"] for e in answer["events"]]
    assert {"admitted", "dispatched", "received", "consumed", "produced", "exited"} <= set(types)
    first = rows.first.inner_text()
    assert "XCBZ" in first and "admitted" in first and story["arrival"]["declaration_no"] in first
    assert not page.locator("#warning").is_visible()
    # The token stays in this tab's session storage, never in the address.
    assert page.evaluate(f"sessionStorage.getItem('{TOKEN_KEY}')") == token
    assert token not in page.url and "direction=both" in page.url


def test_selecting_a_lot_shows_its_details_events_and_documents(page, story, tmp_path):
    open_and_trace(page, story, story["ledger"].tokens["officer"])
    kit = page.locator(f'svg#chain g.lot[data-lot-id="{story["kit_lot"]}"]')
    kit.click()
    details = page.locator("#details-body")
    assert "Laptop kits" in details.locator("h3").first.inner_text()
    text = details.inner_text()
    assert story["kit_lot"] in text and "XEPZ" in text and "processing" in text
    assert details.locator("h3", has_text="Came from").count() == 1
    events = details.locator(".lot-events").inner_text()
    assert "produced 40" in events and "dispatched -40" in events
    assert kit.get_attribute("aria-pressed") == "true"
    # Keyboard: Tab reaches the lots; Enter selects one.
    train_lot = next(x for x in story["answer"]["lots"] if x["origin"] == "gate_in")
    node = page.locator(f'svg#chain g.lot[data-lot-id="{train_lot["lot_id"]}"]')
    node.focus()
    page.keyboard.press("Enter")
    assert train_lot["lot_id"] in details.inner_text()
    documents = details.locator(".lot-documents").inner_text()
    assert story["arrival"]["declaration_no"] in documents and TRAIN in documents
    kit.click()
    for path in screenshot_paths(tmp_path):
        path.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(path), full_page=True)
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def screenshot_paths(tmp_path: Path, name: str = "trace-viewer.png") -> list[Path]:
    """The test artifact (under the repo with LEDGER_ARTIFACTS set) and, on request, the docs'."""
    artifacts = ROOT / "artifacts" if os.environ.get("LEDGER_ARTIFACTS") else tmp_path
    paths = [artifacts / name]
    if os.environ.get("LEDGER_UPDATE_DOCS_SCREENSHOT") == "1":
        paths.append(ROOT / "docs" / "img" / name)
    return paths


def test_a_wrong_token_shows_the_401_problem_and_an_unknown_reference_the_404(page, story):
    from playwright.sync_api import expect

    expected = story["ledger"].client.get(
        "/v1/trace", params={"ref": TRAIN}, headers={"Authorization": "Bearer wrong"}
    )
    assert expected.status_code == 401
    open_and_trace(page, story, "wrong")
    problem = page.locator("#problem")
    problem.wait_for(state="visible")
    assert problem.locator("h2").inner_text() == f"401 {expected.json()['title']}"
    assert page.locator("svg#chain").count() == 0
    page.fill("#token", story["ledger"].tokens["officer"])
    page.fill("#ref", "nothing-here")
    page.click("#run")
    # The problem panel is rebuilt while the new request runs: wait for its heading to exist.
    # A locator wait, not wait_for_function: that one evaluates a string in the page, which
    # the viewer's CSP (script-src 'self', no 'unsafe-eval') refuses in newer Chromium.
    expect(problem.locator("h2")).to_have_text(re.compile(r"^404"))
    assert "nothing-here" in problem.inner_text()


def test_a_kept_token_traces_at_once_until_it_is_forgotten(page, story):
    open_and_trace(page, story, story["ledger"].tokens["officer"])
    page.wait_for_selector("svg#chain g.lot")
    page.reload()  # the tab still holds the token: the reference is traced without a click
    page.wait_for_selector("svg#chain g.lot")
    page.click("#forget")
    assert page.evaluate(f"sessionStorage.getItem('{TOKEN_KEY}')") is None
    assert page.input_value("#token") == ""
    assert not page.locator("#result").is_visible()
    page.reload()
    assert page.locator("#token-state").inner_text() == "No token kept."
    assert not page.locator("#result").is_visible()


def test_the_page_needs_no_token_loads_nothing_from_elsewhere_and_sets_a_strict_csp(sqlite_url):
    with running_ledger(sqlite_url) as ledger:
        page = ledger.client.get("/ui/trace", params={"ref": "<script>alert(1)</script>"})
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "<script>alert" not in page.text  # the page never echoes the query
        csp = page.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp
        assert "unsafe-inline" not in csp and "connect-src 'self'" in csp
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["referrer-policy"] == "no-referrer"
        sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert sorted(sources) == ["data:,", "static/trace.css", "static/trace.js"]
        scripts = re.findall(r"<script[^>]*>", page.text)
        assert scripts == ['<script type="module" src="static/trace.js">']
        assert "<style" not in page.text and not re.search(r"\s(on[a-z]+|style)=", page.text)
        assets = ("trace.js", "trace-labels.js", "language.js", "chain.js", "dom.js", "trace.css")
        for asset in assets:
            r = ledger.client.get(f"/ui/static/{asset}")
            media = "text/css" if asset.endswith(".css") else "text/javascript"
            assert r.status_code == 200 and r.headers["content-type"].startswith(media)
            assert r.headers["x-content-type-options"] == "nosniff"
            urls = set(re.findall(r"https?://[^\s\"']+", r.text))
            assert urls <= {"http://www.w3.org/2000/svg"}, urls  # the SVG namespace only
            assert not re.search(r"\.innerHTML|\.outerHTML|insertAdjacentHTML|eval\(", r.text)
            # Every module a script imports is one of the page's files, served.
            for imported in re.findall(r'from "\./([^"]+)"', r.text):
                assert imported in assets, (asset, imported)
        for name in ("app.py", "..%2Fapp.py", "trace.html.bak"):
            missing = ledger.client.get(f"/ui/static/{name}")
            assert missing.status_code == 404, name
            assert missing.headers["content-type"] == "application/problem+json"
        assert not [p for p in ledger.client.get("/openapi.json").json()["paths"] if "/ui/" in p]


def test_goods_lost_in_transit_are_drawn_as_their_own_node_with_a_lost_edge(page, story):
    from tests.e2e.test_trace_lost import REASON, tell_lost_story

    ledger = story["ledger"]
    _, transfer, dispatched, _, _ = tell_lost_story(ledger)
    ref = transfer["declaration_no"]
    answer = ledger.get("/v1/trace", "officer", params={"ref": ref}).json()
    (lost,) = [lot for lot in answer["lots"] if lot["origin"] == "lost"]
    page.goto(f"{story['base']}/ui/trace?ref={ref}")
    page.fill("#token", ledger.tokens["officer"])
    page.click("#run")
    node = page.locator(f'svg#chain g.lot.lost[data-lot-id="{lost["lot_id"]}"]')
    node.wait_for()
    assert page.locator("svg#chain g.lot.lost").count() == 1
    assert "3 C62 · lost in transit" in node.text_content()
    assert "lost in transit" in node.get_attribute("aria-label")
    # The edge from the lot the goods were dispatched from, labelled with what was lost.
    edge = page.locator(f'svg#chain g.edge-lost[data-to="{lost["lot_id"]}"]')
    assert edge.count() == 1
    assert edge.get_attribute("data-from") == dispatched["lots"][1]["lot_id"]
    assert edge.locator("text").text_content() == "lost 3"
    # Its event in the timeline carries the stocktake's reason; the panel says what it is.
    row = page.locator(f'#timeline tbody tr[data-lot-id="{lost["lot_id"]}"]')
    assert "lost" in row.inner_text() and REASON in row.inner_text()
    node.click()
    details = page.locator("#details-body")
    assert "lost in transit, written off by a stocktake" in details.inner_text()
    assert REASON in details.inner_text()


# -- Languages ------------------------------------------------------------------------------

HEADERS_ZH = ["日志位置", "业务时间", "监管区域", "事件", "批次", "数量", "单证", "操作人"]
HEADERS_EN = ["#", "Time", "Zone", "Event", "Lot", "Quantity", "Documents", "Actor"]


def figures(page: Any) -> dict[str, Any]:
    """What the page shows of the answer, without its words: where each lot is drawn and its
    quantities, the edges and their quantities, the timeline's values, the summary's numbers
    and the selected lot's values."""
    nodes = {
        node.get_attribute("data-lot-id"): (
            node.get_attribute("transform"),
            node.locator("text.lot-qty").text_content().split(" · ")[0],
            node.locator("text.lot-meta").text_content().split()[-1],
        )
        for node in page.locator("svg#chain g.lot").all()
    }
    edges = sorted(
        (e.get_attribute("data-from"), e.get_attribute("data-to"), label.split()[-1])
        for e in page.locator("svg#chain g.edge").all()
        for label in [e.locator("text").text_content()]
    )
    rows = [
        [
            row.locator("td.position").inner_text(),
            row.locator("td").nth(1).inner_text(),
            row.locator("td.zone").inner_text(),
            row.get_attribute("data-lot-id"),
            row.locator("td.qty").inner_text(),
            row.locator("td.type").get_attribute("data-type"),
        ]
        for row in page.locator("#timeline tbody tr").all()
    ]
    details = page.locator("#details-body dd").all_inner_texts()
    # A selected lot's id, book, HS code, quantities, movement and time.
    kept = [details[i] for i in (0, 2, 4, 6, 7, 9, 10)] if details else []
    summary = sorted(re.findall(r"\d+", page.inner_text("#summary")))
    return {"nodes": nodes, "edges": edges, "rows": rows, "details": kept, "summary": summary}


def chinese_everywhere(page: Any) -> None:
    """Every word the page writes of its own is Chinese."""
    assert page.evaluate("document.documentElement.lang") == "zh-CN"
    assert CJK.search(page.title())
    labelled = page.locator("[data-label]").all()
    assert len(labelled) > 20
    for element in labelled:
        text = element.text_content()
        assert CJK.search(text), (element.get_attribute("data-label"), text)
    assert CJK.search(page.get_attribute("#ref", "placeholder"))
    assert CJK.search(page.get_attribute("#query", "aria-label"))
    assert page.locator("#timeline thead th").all_inner_texts() == HEADERS_ZH


def test_the_language_switch_writes_the_page_in_chinese_and_back_and_survives_a_reload(
    page, story, tmp_path
):
    ledger = story["ledger"]
    # As the ledger answers now (another test may have added to the train's chain).
    answer = ledger.get("/v1/trace", "officer", params={"ref": TRAIN}).json()
    zones = {z["code"]: z for z in ledger.client.get("/v1/zones").json()["items"]}
    open_and_trace(page, story, ledger.tokens["officer"])
    page.wait_for_selector("svg#chain g.lot")
    page.locator(f'svg#chain g.lot[data-lot-id="{story["kit_lot"]}"]').click()
    assert page.evaluate(f"localStorage.getItem('{LANGUAGE_KEY}')") is None  # an English browser
    assert page.inner_text("h1") == "Trace viewer" and page.input_value("#lang") == "en"
    english = figures(page)
    assert len(english["nodes"]) == len(answer["lots"]) >= 6
    assert len(english["rows"]) == len(answer["events"])
    edge_words = {"processing": "加工", "transfer": "流转", "lost": "在途灭失"}
    edges_zh = sorted(f"{edge_words[e['kind']]} {e['quantity']}" for e in answer["edges"])
    edges_en = sorted(f"{e['kind']} {e['quantity']}" for e in answer["edges"])
    assert {"processing 40", "transfer 40"} <= set(edges_en)

    page.select_option("#lang", "zh-CN")
    chinese_everywhere(page)
    assert page.inner_text("h1") == "货物追溯"
    assert page.inner_text("#token-state") == "令牌保存在本标签页的会话存储中，关闭标签页即清除。"
    assert page.locator("#direction option").all_inner_texts() == [
        "双向",
        "上游（来源）",
        "下游（去向）",
    ]
    chain = page.locator("svg#chain")
    # The lanes keep the zones' codes, with their Chinese names (name_zh of GET /v1/zones).
    assert chain.locator("text.lane-label").all_text_contents() == answer["zones"]
    assert chain.locator("text.lane-name").all_text_contents() == [
        zones[code]["name_zh"] for code in answer["zones"]
    ]
    assert zones["XEPZ"]["name_zh"] == "西安出口加工区"
    assert sorted(chain.locator("g.edge > text").all_text_contents()) == edges_zh
    assert "加工 40" in edges_zh and "流转 40" in edges_zh
    texts = chain.locator("g.lot").all_text_contents()
    assert any("Laptop computers" in x and "100 C62 · 保税" in x for x in texts), texts
    assert "批次" in chain.locator("g.lot").first.get_attribute("aria-label")
    types = page.locator("#timeline tbody td.type").all_text_contents()
    assert types[0] == "入区" and "加工产出" in types and "出区" in types
    assert all(CJK.search(t) for t in types), types
    first = page.locator("#timeline tbody tr").first.inner_text()
    assert "报关单 " + story["arrival"]["declaration_no"] in first and "区域运营方" in first
    summary = page.inner_text("#summary")
    assert summary.startswith(f"“{TRAIN}”（双向）匹配 运输工具 ")
    assert f"{len(answer['lots'])} 个批次" in summary
    # The selected lot stays selected, its details in Chinese; values as the ledger wrote them.
    details = page.locator("#details-body")
    assert details.locator("dt").all_inner_texts()[:3] == ["批次", "监管区域", "账册编号"]
    assert "XEPZ 西安出口加工区" in details.inner_text()
    assert details.locator("h3", has_text="来源").count() == 1
    assert "加工产出 40" in details.locator(".lot-events").inner_text()
    # The figures do not change with the language.
    assert figures(page) == english
    assert page.evaluate(f"localStorage.getItem('{LANGUAGE_KEY}')") == "zh-CN"
    for path in screenshot_paths(tmp_path, "trace-viewer-zh.png"):
        path.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(path), full_page=True)
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    page.reload()  # the choice is kept; the tab's token traces again at once
    assert page.input_value("#lang") == "zh-CN"
    page.wait_for_selector("svg#chain g.lot")
    chinese_everywhere(page)
    assert sorted(chain.locator("g.edge > text").all_text_contents()) == edges_zh
    assert figures(page)["rows"] == english["rows"]

    page.select_option("#lang", "en")
    assert page.inner_text("h1") == "Trace viewer"
    assert page.evaluate("document.documentElement.lang") == "en"
    words = page.locator("[data-label]").all()
    assert all(w.text_content() != w.get_attribute("data-label") for w in words)
    assert page.locator("#direction option").all_inner_texts() == [
        "both",
        "upstream",
        "downstream",
    ]
    assert page.locator("#timeline thead th").all_inner_texts() == HEADERS_EN
    assert sorted(chain.locator("g.edge > text").all_text_contents()) == edges_en
    assert chain.locator("text.lane-name").first.text_content().startswith("Xi'an")
    assert page.evaluate(f"localStorage.getItem('{LANGUAGE_KEY}')") == "en"
    page.reload()
    assert page.inner_text("h1") == "Trace viewer"


def test_a_chinese_browser_starts_in_chinese(browser, story):
    with new_tab(browser, story, locale="zh-CN") as tab:
        tab.goto(f"{story['base']}/ui/trace?ref={TRAIN}")
        assert tab.input_value("#lang") == "zh-CN"
        chinese_everywhere(tab)
        assert tab.inner_text("#token-state") == "未保存令牌。"
        assert tab.evaluate(f"localStorage.getItem('{LANGUAGE_KEY}')") is None  # not chosen
        tab.click("#run")  # no token: the page's own problem, in Chinese
        assert tab.inner_text("#problem h2") == "请输入访问令牌"


def test_the_ledgers_problems_come_in_the_pages_language(page, story):
    """An English browser switched to Chinese asks the ledger in Chinese: the 401's title is
    the one the API gives for Accept-Language zh-CN, the hint under it Chinese too."""
    from playwright.sync_api import expect

    in_chinese = story["ledger"].client.get(
        "/v1/trace",
        params={"ref": TRAIN},
        headers={"Authorization": "Bearer wrong", "Accept-Language": "zh-CN"},
    )
    title = in_chinese.json()["title"]
    assert in_chinese.status_code == 401 and CJK.search(title)
    asked: list[str | None] = []
    page.on(
        "request",
        lambda r: asked.append(r.headers.get("accept-language")) if "/v1/trace" in r.url else None,
    )
    page.goto(f"{story['base']}/ui/trace?ref={TRAIN}")
    page.select_option("#lang", "zh-CN")
    page.fill("#token", "wrong")
    page.click("#run")
    problem = page.locator("#problem")
    expect(problem.locator("h2")).to_have_text(f"401 {title}")
    assert "令牌缺失、未知或已吊销" in problem.inner_text()
    assert asked == ["zh-CN"]
    # Switched back, the page's hint is English at once; the next answer is English again.
    page.select_option("#lang", "en")
    assert "The token is missing, unknown or revoked" in problem.inner_text()
    page.click("#run")
    expect(problem.locator("h2")).to_have_text(re.compile(r"^401 [\x20-\x7e]+$"))
    assert asked == ["zh-CN", "en"]
