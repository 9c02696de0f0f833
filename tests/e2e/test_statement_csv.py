"""GET /v1/account-books/{book}/statement.csv: the JSON statement's figures as a CSV file."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from tests.samples import line
from tests.support import declaration_body, new_key, onboard, running_ledger

HEADER = "item_no,hs_code,name,unit,opening,receipts,issues,adjustments,closing"


@pytest.fixture
def ledger(database_url):
    with running_ledger(database_url) as ledger:
        ledger.issue("gate-xcbz", "operator", zone="XCBZ")
        ledger.issue("gate-xhtz", "operator", zone="XHTZ")
        yield ledger


def _admit(ledger, t, quantity: str, occurred_at: datetime, item: int = 1) -> None:
    d = ledger.post(
        "/v1/declarations",
        t.token_name,
        declaration_body(t.uscc, t.book_no, lines=[line(item, quantity=quantity)]),
        key=new_key(),
    ).json()
    body = {
        "kind": "gate_in",
        "declaration": d["id"],
        "lines": [{"line_no": 1, "quantity": quantity}],
        "occurred_at": occurred_at.isoformat(),
    }
    r = ledger.post("/v1/movements", "gate-xcbz", body, key=new_key())
    assert r.status_code == 201, r.text


def _adjust(ledger, t, item: int, delta: str, occurred_at: datetime) -> None:
    body = {
        "kind": "adjustment",
        "account_book": t.book_no,
        "item_no": item,
        "quantity_delta": delta,
        "reason": "stocktake",
        "occurred_at": occurred_at.isoformat(),
    }
    r = ledger.post("/v1/movements", t.token_name, body, key=new_key())
    assert r.status_code == 201, r.text


def test_the_csv_carries_the_json_statement_quoted_and_named(ledger):
    t = onboard(ledger)
    awkward = [
        {"item_no": 7, "hs_code": "8481800000", "name": 'Valves, "brass", 1/2 in', "unit": "C62"},
        {"item_no": 8, "hs_code": "0902300000", "name": "红茶 (black tea)", "unit": "KGM"},
        {"item_no": 9, "hs_code": "8471300000", "name": "=HYPERLINK(1)", "unit": "C62"},
    ]
    r = ledger.post(f"/v1/account-books/{t.book_no}/items", t.token_name, {"items": awkward})
    assert r.status_code == 201, r.text
    now = datetime.now(UTC)
    _admit(ledger, t, "50", now - timedelta(days=30))  # before the period: opening
    _admit(ledger, t, "20", now - timedelta(days=10))
    _adjust(ledger, t, 1, "-3", now - timedelta(days=9))
    _admit(ledger, t, "10.5", now - timedelta(days=10), item=2)  # KGM: decimals
    _adjust(ledger, t, 8, "1.25", now - timedelta(days=9))
    period = {
        "from": (now - timedelta(days=20)).replace(hour=0, minute=0, second=0, microsecond=0),
        "to": (now - timedelta(days=5)).replace(hour=0, minute=0, second=0, microsecond=0),
    }
    params = {k: v.isoformat() for k, v in period.items()}
    base = f"/v1/account-books/{t.book_no}/statement"
    r = ledger.get(base + ".csv", "auditor", params=params)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    start, end = (period[k].date().isoformat() for k in ("from", "to"))
    assert r.headers["content-disposition"] == (
        f'attachment; filename="{t.book_no}-statement-{start}-{end}.csv"'
    )
    text = r.content.decode("utf-8")
    assert text.startswith("\ufeff" + HEADER + "\r\n")  # a byte order mark, then this header
    text = text.removeprefix("\ufeff")
    assert '"Valves, ""brass"", 1/2 in"' in text  # RFC 4180 quoting by the csv module
    rows = list(csv.DictReader(io.StringIO(text)))
    as_json = ledger.get(base, "auditor", params=params).json()["items"]
    assert [int(row["item_no"]) for row in rows] == [x["item_no"] for x in as_json]
    for row, figures in zip(rows, as_json, strict=True):
        assert {k: row[k] for k in figures if k != "item_no"} == {
            k: v for k, v in figures.items() if k != "item_no"
        }
    by_item = {row["item_no"]: row for row in rows}
    assert by_item["1"] == {
        "item_no": "1",
        "hs_code": "8471300000",
        "name": "Laptop computers",
        "unit": "C62",
        "opening": "50",
        "receipts": "20",
        "issues": "0",
        "adjustments": "-3",
        "closing": "67",
    }
    assert by_item["7"]["name"] == 'Valves, "brass", 1/2 in'
    assert (by_item["2"]["receipts"], by_item["2"]["closing"]) == ("10.5", "10.5")
    assert (by_item["8"]["name"], by_item["8"]["adjustments"]) == ("红茶 (black tea)", "1.25")
    assert by_item["9"]["name"] == "'=HYPERLINK(1)"  # never run as a formula by a spreadsheet
    assert all("E" not in row[k] for row in rows for k in ("opening", "closing"))


def test_without_a_period_the_file_is_named_start_end_and_as_of_cuts_on_record_time(ledger):
    t = onboard(ledger)
    _admit(ledger, t, "5", datetime.now(UTC))
    before = datetime.now(UTC).isoformat()
    _adjust(ledger, t, 1, "-1", datetime.now(UTC))
    path = f"/v1/account-books/{t.book_no}/statement.csv"
    r = ledger.get(path, t.token_name)
    assert r.status_code == 200, r.text
    assert r.headers["content-disposition"].endswith(f'"{t.book_no}-statement-start-end.csv"')
    rows = {
        row["item_no"]: row for row in csv.DictReader(io.StringIO(r.content.decode("utf-8-sig")))
    }
    assert (rows["1"]["receipts"], rows["1"]["adjustments"], rows["1"]["closing"]) == (
        "5",
        "-1",
        "4",
    )
    then = ledger.get(path, t.token_name, params={"as_of": before})
    rows = {
        row["item_no"]: row for row in csv.DictReader(io.StringIO(then.content.decode("utf-8-sig")))
    }
    assert (rows["1"]["adjustments"], rows["1"]["closing"]) == ("0", "5")


def test_tenancy_auth_and_bad_queries(ledger):
    a, b = onboard(ledger), onboard(ledger)
    path = f"/v1/account-books/{a.book_no}/statement.csv"
    for who in (b.token_name, "gate-xhtz"):  # another enterprise, another zone's operator
        r = ledger.get(path, who)
        assert r.status_code == 404, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
    unknown = ledger.get(f"/v1/account-books/NOPE{a.book_no}/statement.csv", "auditor")
    assert unknown.status_code == 404
    for who in (a.token_name, "officer", "auditor", "admin", "gate-xcbz"):
        assert ledger.get(path, who).status_code == 200, who
    assert ledger.client.get(path).status_code == 401
    now = datetime.now(UTC)
    backwards = {"from": now.isoformat(), "to": (now - timedelta(days=1)).isoformat()}
    r = ledger.get(path, "auditor", params=backwards)
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == "query.to"
    r = ledger.get(path, "auditor", params={"as_of": "2026-11-01T00:00:00"})
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == "query.as_of"


def test_the_route_is_in_the_openapi_document(ledger):
    spec = ledger.client.get("/openapi.json").json()
    route = spec["paths"]["/v1/account-books/{book_no}/statement.csv"]["get"]
    assert "text/csv" in route["responses"]["200"]["content"]
    assert {p["name"] for p in route["parameters"]} >= {"book_no", "from", "to", "as_of"}


@pytest.mark.parametrize(
    "name",
    [
        " =HYPERLINK(1)",  # a leading space: spreadsheets skip it and run the formula
        "\u00a0+SUM(A1)",  # a no-break space
        "\u3000-1+1",  # an ideographic space
        "\uff1dHYPERLINK(1)",  # a full-width equals sign, as a Chinese IME types it
        "\uff20SUM(A1)",  # a full-width commercial at
    ],
)
def test_a_formula_behind_blanks_or_in_full_width_is_quoted_too(ledger, name):
    t = onboard(ledger)
    items = {"items": [{"item_no": 9, "hs_code": "8471300000", "name": name, "unit": "C62"}]}
    r = ledger.post(f"/v1/account-books/{t.book_no}/items", "admin", items)
    assert r.status_code == 201, r.text
    params = {"from": "2026-01-01T00:00:00Z", "to": "2027-01-01T00:00:00Z"}
    r = ledger.get(f"/v1/account-books/{t.book_no}/statement.csv", "auditor", params=params)
    text = r.content.decode("utf-8-sig")
    by_item = {row["item_no"]: row for row in csv.DictReader(io.StringIO(text))}
    assert by_item["9"]["name"] == "'" + name
