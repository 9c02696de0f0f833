"""Spreadsheets out (issue #20 item 3, decision 0031): statements, entries, declaration lists,
write-offs and traces as CSV (UTF-8 with a byte order mark) and XLSX (typed cells), read back
with the same library they were written with and compared with the JSON answers, on both stores.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import openpyxl
import pytest

from api.spreadsheets import XLSX_MEDIA_TYPE, unguard
from domain.declaration import SHANGHAI
from tests import samples
from tests.e2e.test_ecommerce import BUYER, CONSIGNEE, retail_body, submit
from tests.e2e.test_write_off import COUNTS, QUARTER, quarter
from tests.samples import line
from tests.support import (
    Clock,
    admit,
    china,
    clocked_ledger,
    declaration_body,
    new_key,
    onboard,
    running_ledger,
)

FIGURES = ("opening", "receipts", "issues", "adjustments", "closing")
STATEMENT_HEADER = ["item_no", "hs_code", "name", "unit", *FIGURES]
# Names a spreadsheet would run as formulas (the issue's list, and the control characters).
INJECTIONS = ["=1+1", "+1", "-1+2", "@SUM(A1)", "  =1+1", "\u00a0=1+1", "\uff1d1+1", "\u3000@x"]
# Quantities in KGM (up to 5 decimals), one with more digits than Excel keeps (20): text.
LONG = "123456789012345.12345"


@pytest.fixture
def ledger(database_url):
    with running_ledger(database_url) as ledger:
        ledger.issue("gate-xcbz", "operator", zone="XCBZ")
        ledger.issue("gate-xhtz", "operator", zone="XHTZ")
        yield ledger


def _ok(r: Any, status: int = 200) -> Any:
    assert r.status_code == status, r.text
    return r


# The items _book registers beside book_body's (1: laptops, C62; 2: coffee, KGM).
TEA = {"item_no": 8, "hs_code": "0902300000", "name": "红茶 (black tea)", "unit": "KGM"}
VALVES = {"item_no": 7, "hs_code": "8481800000", "name": 'Valves, "brass"', "unit": "C62"}
ITEMS = [TEA, VALVES] + [
    {"item_no": 10 + n, "hs_code": "8471300000", "name": name, "unit": "C62"}
    for n, name in enumerate(INJECTIONS)
]


def _gate_in(ledger, t, item: int, quantity: str, occurred_at: datetime, price: str = "1.00"):
    """Goods of the item declared and gated in at `occurred_at`."""
    known = {i["item_no"]: i for i in ITEMS}.get(item)
    if known is None:  # one of book_body's items
        body_line = line(item, quantity=quantity, unit_price=price)
    else:
        body_line = {
            **line(1, quantity=quantity, unit_price=price),
            "item_no": item,
            "hs_code": known["hs_code"],
            "description": known["name"],
            "unit": known["unit"],
        }
    lines = [body_line]
    body = declaration_body(t.uscc, t.book_no, lines=lines)
    d = _ok(ledger.post("/v1/declarations", t.token_name, body, key=new_key()), 201).json()
    if d["status"] == "document_review":
        d = _ok(ledger.post(f"/v1/declarations/{d['id']}/release", "officer", {})).json()
    move = {
        "kind": "gate_in",
        "declaration": d["id"],
        "lines": [{"line_no": 1, "quantity": quantity}],
        "occurred_at": occurred_at.isoformat(),
    }
    _ok(ledger.post("/v1/movements", "gate-xcbz", move, key=new_key()), 201)
    return d


def _adjust(ledger, t, item: int, delta: str, occurred_at: datetime) -> None:
    body = {
        "kind": "adjustment",
        "account_book": t.book_no,
        "item_no": item,
        "quantity_delta": delta,
        "reason": "stocktake",
        "occurred_at": occurred_at.isoformat(),
    }
    _ok(ledger.post("/v1/movements", t.token_name, body, key=new_key()), 201)


def _book(ledger) -> tuple[Any, dict[str, str]]:
    """A tenant whose book has Chinese, quoted and formula-like names, decimals, a negative
    adjustment and a figure longer than Excel keeps; and a period around its movements."""
    t = onboard(ledger)
    _ok(ledger.post(f"/v1/account-books/{t.book_no}/items", t.token_name, {"items": ITEMS}), 201)
    now = datetime.now(UTC)
    _gate_in(ledger, t, 1, "50", now - timedelta(days=30))
    _gate_in(ledger, t, 1, "20", now - timedelta(days=10))
    _adjust(ledger, t, 1, "-3", now - timedelta(days=9))
    _gate_in(ledger, t, 8, "10.5", now - timedelta(days=10))
    _adjust(ledger, t, 8, "0.00025", now - timedelta(days=9))
    _gate_in(ledger, t, 8, LONG, now - timedelta(days=8), price="0.0001")
    _gate_in(ledger, t, 10, "4", now - timedelta(days=8))
    period = {
        "from": (now - timedelta(days=20)).isoformat(),
        "to": (now - timedelta(days=5)).isoformat(),
    }
    return t, period


def _workbook(r: Any) -> Any:
    assert r.headers["content-type"] == XLSX_MEDIA_TYPE
    assert r.headers["content-disposition"].startswith('attachment; filename="')
    assert r.headers["content-disposition"].endswith('.xlsx"')
    return openpyxl.load_workbook(io.BytesIO(r.content))


def _csv_rows(r: Any) -> list[dict[str, str]]:
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert r.content.startswith(b"\xef\xbb\xbf")  # the UTF-8 byte order mark
    text = r.content.decode("utf-8-sig")
    assert text.endswith("\r\n")
    return list(csv.DictReader(io.StringIO(text)))


def _number(cell: Any) -> Decimal:
    """A figure as the sheet holds it: a number cell, or the digits of a text cell."""
    return Decimal(str(cell.value))


def _china(text: str) -> datetime:
    """A JSON instant as a sheet holds it: China's wall clock, to the millisecond."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(SHANGHAI)
    return moment.replace(tzinfo=None, microsecond=moment.microsecond // 1000 * 1000)


def _same_instant(cell: Any, text: str) -> None:
    assert cell.is_date and isinstance(cell.value, datetime), cell.value
    assert abs(cell.value - _china(text)) <= timedelta(milliseconds=1), (cell.value, text)


def test_excel_round_trip_a_statement_equals_the_json_figure_for_figure(ledger):
    t, period = _book(ledger)
    path = f"/v1/account-books/{t.book_no}/statement"
    as_json = _ok(ledger.get(path, t.token_name, params=period)).json()["items"]
    r = _ok(ledger.get(path, t.token_name, params={**period, "format": "xlsx"}))
    assert r.headers["x-ledger-position"].isdigit()
    wb = _workbook(r)
    assert wb.sheetnames == ["statement"]
    ws = wb["statement"]
    assert ws.freeze_panes == "A2"
    rows = list(ws.iter_rows())
    assert [c.value for c in rows[0]] == STATEMENT_HEADER
    assert all(c.font.b for c in rows[0]) and not any(c.font.b for c in rows[1])
    assert len(rows) - 1 == len(as_json)
    book = {
        i["item_no"]: i
        for i in ledger.get(f"/v1/account-books/{t.book_no}", "admin").json()["items"]
    }
    long_seen = False
    for cells, figures in zip(rows[1:], as_json, strict=True):
        by_name = dict(zip(STATEMENT_HEADER, cells, strict=True))
        assert by_name["item_no"].data_type == "n"
        assert by_name["item_no"].value == figures["item_no"]
        item = book[figures["item_no"]]
        for column in ("hs_code", "name", "unit"):
            assert by_name[column].data_type == "s"
            assert unguard(by_name[column].value) == item[column]
        for column in FIGURES:
            cell, wanted = by_name[column], Decimal(figures[column])
            assert _number(cell) == wanted, (column, cell.value, figures[column])
            if len(wanted.as_tuple().digits) <= 15:
                assert cell.data_type == "n" and not isinstance(cell.value, str), column
                places = max(0, -int(wanted.as_tuple().exponent))
                assert cell.number_format == ("0" if places == 0 else "0." + "0" * places)
            else:  # more digits than Excel keeps: the exact digits, as text
                assert cell.data_type == "s" and cell.value == figures[column]
                long_seen = True
    assert long_seen
    by_item = {row[0].value: row for row in rows[1:]}
    assert [c.value for c in by_item[1][4:]] == [50, 20, 0, -3, 67]
    assert by_item[8][5].value == "123456789012355.62345"  # receipts: 10.5 + LONG, as text
    assert _number(by_item[8][7]) == Decimal("0.00025")


def test_the_statement_csv_has_a_bom_and_parses_back_equal_by_either_route(ledger):
    t, period = _book(ledger)
    path = f"/v1/account-books/{t.book_no}/statement"
    as_json = _ok(ledger.get(path, "auditor", params=period)).json()["items"]
    by_format = _ok(ledger.get(path, "auditor", params={**period, "format": "csv"}))
    by_route = _ok(ledger.get(path + ".csv", "auditor", params=period))
    assert by_format.content == by_route.content
    assert by_format.headers["content-disposition"] == by_route.headers["content-disposition"]
    rows = _csv_rows(by_format)
    assert list(rows[0]) == STATEMENT_HEADER
    assert [int(row["item_no"]) for row in rows] == [x["item_no"] for x in as_json]
    for row, figures in zip(rows, as_json, strict=True):
        assert {k: row[k] for k in FIGURES} == {k: figures[k] for k in FIGURES}
    names = {row["item_no"]: row["name"] for row in rows}
    assert names["8"] == "红茶 (black tea)" and names["7"] == 'Valves, "brass"'


def test_formula_injection_is_neutralised_in_csv_and_xlsx(ledger):
    t, _ = _book(ledger)
    path = f"/v1/account-books/{t.book_no}/statement"
    rows = {row["item_no"]: row for row in _csv_rows(ledger.get(path + ".csv", "auditor"))}
    r = _ok(ledger.get(path, "auditor", params={"format": "xlsx"}))
    sheet = {row[0].value: row for row in _workbook(r)["statement"].iter_rows(min_row=2)}
    for n, name in enumerate(INJECTIONS):
        assert rows[str(10 + n)]["name"] == "'" + name
        cell = sheet[10 + n][2]
        # A string cell (an inline string, never a formula) that starts with the apostrophe,
        # as in the CSV, so that editing, copying or saving it as CSV keeps it text.
        assert cell.data_type == "s" and cell.value == "'" + name
    with zipfile.ZipFile(io.BytesIO(r.content)) as z:
        xml = z.read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in xml and "<f " not in xml


def test_entries_as_files_carry_date_cells_in_china_time_and_the_papers(ledger):
    t, _ = _book(ledger)
    path = f"/v1/account-books/{t.book_no}/entries"
    as_json = _ok(ledger.get(path, t.token_name, params={"limit": 1000})).json()["items"]
    wb = _workbook(_ok(ledger.get(path, t.token_name, params={"format": "xlsx"})))
    rows = list(wb["entries"].iter_rows())
    header = [c.value for c in rows[0]]
    assert header[:3] == ["position", "recorded_at (UTC+8)", "occurred_at (UTC+8)"]
    assert len(rows) - 1 == len(as_json) > 0
    for cells, entry in zip(rows[1:], as_json, strict=True):
        cell = dict(zip(header, cells, strict=True))
        assert cell["position"].value == entry["position"]
        _same_instant(cell["recorded_at (UTC+8)"], entry["recorded_at"])
        _same_instant(cell["occurred_at (UTC+8)"], entry["occurred_at"])
        assert cell["occurred_at (UTC+8)"].number_format == "yyyy-mm-dd hh:mm:ss"
        assert (cell["item_no"].value, cell["entry_kind"].value) == (
            entry["item_no"],
            entry["entry_kind"],
        )
        assert _number(cell["quantity"]) == Decimal(entry["quantity"])
        assert _number(cell["balance_after"]) == Decimal(entry["balance_after"])
        assert cell["lot_id"].value == entry["lot_id"]
        numbers = [d["number"] for d in entry["documents"] if d["kind"] == "declaration"]
        assert cell["declaration_no"].value == ("; ".join(numbers) or None)
        assert cell["declaration_no"].data_type in ("s", "n") and (
            cell["declaration_no"].value is None or isinstance(cell["declaration_no"].value, str)
        )  # 18 digits stay text, never a rounded number
    kinds = {row[header.index("entry_kind")].value for row in rows[1:]}
    assert kinds == {"receipt", "adjustment"}
    rows_csv = _csv_rows(_ok(ledger.get(path, t.token_name, params={"format": "csv"})))
    assert [int(r["position"]) for r in rows_csv] == [e["position"] for e in as_json]
    first = rows_csv[0]
    moment = datetime.fromisoformat(first["occurred_at (UTC+8)"])
    assert moment.utcoffset() == timedelta(hours=8)
    assert moment == datetime.fromisoformat(as_json[0]["occurred_at"].replace("Z", "+00:00"))


def test_a_list_file_stops_at_its_bound_and_the_next_cursor_gets_the_rest(ledger, monkeypatch):
    t, _ = _book(ledger)
    path = f"/v1/account-books/{t.book_no}/entries"
    every = _ok(ledger.get(path, t.token_name, params={"limit": 1000})).json()["items"]
    monkeypatch.setattr("api.spreadsheets.EXPORT_ROWS", 3)
    got: list[int] = []
    params: dict[str, str] = {"format": "csv"}
    files = 0
    while True:
        r = _ok(ledger.get(path, t.token_name, params=params))
        rows = _csv_rows(r)
        files += 1
        assert len(rows) <= 3
        got += [int(row["position"]) for row in rows]
        cursor = r.headers.get("x-next-cursor")
        if cursor is None:
            break
        assert len(rows) == 3
        params = {"format": "csv", "cursor": cursor}
    assert got == [e["position"] for e in every]
    assert files >= 2
    # `limit` is the JSON page's: a file is not cut at it.
    monkeypatch.setattr("api.spreadsheets.EXPORT_ROWS", 10_000)
    r = _ok(ledger.get(path, t.token_name, params={"format": "xlsx", "limit": 1}))
    assert r.headers.get("x-next-cursor") is None
    assert wb_rows(r) == len(every)


def wb_rows(r: Any) -> int:
    return _workbook(r).active.max_row - 1


def test_declaration_lists_as_files_follow_the_filters_and_hold_no_buyer(ledger):
    shop, other = onboard(ledger), onboard(ledger)
    admit(ledger, shop, 1, "5")
    admit(ledger, other, 1, "5")
    retail = _ok(submit(ledger, shop, retail_body(shop)), 201).json()
    params = {"declarant": shop.uscc, "limit": 1000}
    as_json = _ok(ledger.get("/v1/declarations", "officer", params=params)).json()["items"]
    assert len(as_json) == 2
    r = _ok(ledger.get("/v1/declarations", "officer", params={**params, "format": "xlsx"}))
    rows = list(_workbook(r)["declarations"].iter_rows())
    header = [c.value for c in rows[0]]
    assert header[0:3] == ["id", "declaration_no", "status"]
    assert "submitted_at (UTC+8)" in header and "duties_total (CNY)" in header
    for cells, d in zip(rows[1:], as_json, strict=True):
        cell = dict(zip(header, cells, strict=True))
        assert cell["id"].value == d["id"]
        assert cell["declaration_no"].data_type == "s"
        assert cell["declaration_no"].value == d["declaration_no"]  # 18 digits, exact
        assert cell["status"].value == d["status"]
        assert cell["lines"].value == len(d["lines"])
        if d["duties"] is not None:
            assert _number(cell["duties_total (CNY)"]) == Decimal(d["duties"]["total"])
        _same_instant(cell["occurred_at (UTC+8)"], d["occurred_at"])
        _same_instant(cell["submitted_at (UTC+8)"], d["history"][0]["recorded_at"])
    (retail_row,) = [row for row in rows[1:] if row[0].value == retail["id"]]
    cell = dict(zip(header, retail_row, strict=True))
    assert cell["order_no"].value == retail["ecommerce"]["order"]["order_no"]
    csv_answer = _ok(ledger.get("/v1/declarations", "officer", params={**params, "format": "csv"}))
    for secret in (BUYER, CONSIGNEE, "Li Hua"):
        assert secret.encode() not in csv_answer.content
    with zipfile.ZipFile(io.BytesIO(r.content)) as z:
        assert not any(BUYER in z.read(n).decode() for n in z.namelist())
    assert [row["id"] for row in _csv_rows(csv_answer)] == [d["id"] for d in as_json]
    # Another tenant's declarations are not in the caller's file, as not in its JSON pages.
    theirs = {"declarant": other.uscc, "format": "csv"}
    assert _csv_rows(_ok(ledger.get("/v1/declarations", shop.token_name, params=theirs))) == []
    mine = _csv_rows(_ok(ledger.get("/v1/declarations", shop.token_name, params={"format": "csv"})))
    assert {row["declarant"] for row in mine} == {shop.uscc}


def test_a_trace_as_files_one_row_per_event_and_sheets_of_lots_and_edges(ledger):
    t, _ = _book(ledger)
    d = _gate_in(ledger, t, 7, "3", datetime.now(UTC))
    params = {"ref": d["id"]}
    as_json = _ok(ledger.get("/v1/trace", t.token_name, params=params)).json()
    rows = _csv_rows(_ok(ledger.get("/v1/trace", t.token_name, params={**params, "format": "csv"})))
    assert [int(r["position"]) for r in rows] == [e["position"] for e in as_json["events"]]
    lots = {lot["lot_id"]: lot for lot in as_json["lots"]}
    for row, e in zip(rows, as_json["events"], strict=True):
        lot = lots[e["lot_id"]]
        assert (row["type"], row["lot_id"], row["account_book"], row["item_no"]) == (
            e["type"],
            e["lot_id"],
            lot["account_book"],
            str(lot["item_no"]),
        )
        assert row["name"] == lot["name"] == 'Valves, "brass"'
        assert Decimal(row["quantity"]) == Decimal(e["quantity"])
        assert row["declaration_no"] == d["declaration_no"]
    r = _ok(ledger.get("/v1/trace", "officer", params={**params, "format": "xlsx"}))
    wb = _workbook(r)
    assert wb.sheetnames == ["events", "lots", "edges"]
    lot_rows = list(wb["lots"].iter_rows(values_only=True))
    assert [row[0] for row in lot_rows[1:]] == [lot["lot_id"] for lot in as_json["lots"]]
    (lot,) = as_json["lots"]
    assert _number(wb["lots"]["J2"]) == Decimal(lot["quantity_in"])  # quantity_in, a number
    assert wb["lots"]["J2"].data_type == "n"
    assert wb["edges"].max_row == 1 + len(as_json["edges"])


def test_a_write_off_as_xlsx_carries_the_csv_table_with_number_cells(database_url):
    clock = Clock(china("2026-10-05T09:00"))
    with clocked_ledger(database_url, clock, samples.rules_without_draws()) as ledger:
        t = quarter(ledger, clock)
        clock.at = china("2027-01-04T09:30")
        body = {"period": QUARTER, "counts": COUNTS}
        w = _ok(
            ledger.post(
                f"/v1/account-books/{t.book_no}/write-offs", t.token_name, body, key=new_key()
            ),
            201,
        ).json()
        path = f"/v1/write-offs/{w['write_off_id']}"
        table = _csv_rows(_ok(ledger.get(path, t.token_name, params={"format": "csv"})))
        r = _ok(ledger.get(path, t.token_name, params={"format": "xlsx"}))
        assert r.headers["content-disposition"] == (
            f'attachment; filename="{t.book_no}-write-off-2026-10-01-2026-12-31.xlsx"'
        )
        rows = list(_workbook(r)["write-off"].iter_rows())
        header = [c.value for c in rows[0]]
        assert header == list(table[0])
        assert len(rows) - 1 == len(table) == len(w["items"])
        for cells, row, item in zip(rows[1:], table, w["items"], strict=True):
            for name, cell in zip(header, cells, strict=True):
                text = row[name]
                if name in ("hs_code", "name", "unit", "goods_status"):
                    assert cell.data_type == "s" and cell.value == text
                elif text == "":
                    assert cell.value is None
                else:
                    assert cell.data_type == "n" and _number(cell) == Decimal(text), name
            assert _number(cells[header.index("closing_book")]) == Decimal(item["closing_book"])
        # Asked in Chinese: the same table under a Chinese header, on a worksheet named 核销.
        assert header == ENGLISH["write-off"]
        plain, chinese = _in_languages(ledger, path, t.token_name, {"format": "csv"})
        _same_csv_but_the_header(plain, chinese, ENGLISH["write-off"])
        plain, chinese = _in_languages(ledger, path, t.token_name, {"format": "xlsx"})
        assert _same_xlsx_but_the_header(plain, chinese, ["write-off"]) == ["核销"]
        other = onboard(ledger, zone="XEPZ")
        for fmt in ("json", "csv", "xlsx", "pdf"):
            r = ledger.get(path, other.token_name, params={"format": fmt})
            assert r.status_code == 404 and r.headers["content-type"].startswith(
                "application/problem+json"
            )


def test_another_tenant_gets_the_same_404_as_for_json(ledger):
    t, _ = _book(ledger)
    d = _gate_in(ledger, t, 7, "1", datetime.now(UTC))
    stranger = onboard(ledger)
    reads = [
        (f"/v1/account-books/{t.book_no}/statement", {}),
        (f"/v1/account-books/{t.book_no}/entries", {}),
        ("/v1/trace", {"ref": d["id"]}),
    ]
    for path, params in reads:
        for who in (stranger.token_name, "gate-xhtz"):
            answers = [
                ledger.get(path, who, params=params if fmt == "json" else {**params, "format": fmt})
                for fmt in ("json", "csv", "xlsx")
            ]
            assert {a.status_code for a in answers} == {404}, path
            assert {a.headers["content-type"] for a in answers} == {"application/problem+json"}
            assert len({a.content for a in answers}) == 1, path  # word for word
        mine = _ok(ledger.get(path, "auditor", params={**params, "format": "xlsx"}))
        assert mine.content[:2] == b"PK"
        assert ledger.client.get(path, params={**params, "format": "csv"}).status_code == 401


@pytest.mark.parametrize("bad", ["XLSX", "xls", "pdf", "", "csv "])
def test_a_bad_format_is_422_naming_query_format(ledger, bad):
    t = onboard(ledger)
    paths = [
        f"/v1/account-books/{t.book_no}/statement",
        f"/v1/account-books/{t.book_no}/entries",
        "/v1/declarations",
        "/v1/trace",
    ]
    for path in paths:
        r = ledger.get(path, "auditor", params={"format": bad, "ref": "anything"})
        assert r.status_code == 422, (path, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["errors"][0]["loc"] == "query.format"
    r = ledger.get("/v1/write-offs/00000000-0000-0000-0000-000000000000", "auditor",
                   params={"format": "xls"})  # fmt: skip
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == "query.format"


def test_the_openapi_document_names_the_file_types_of_each_route(ledger):
    spec = ledger.client.get("/openapi.json").json()["paths"]
    for path in (
        "/v1/account-books/{book_no}/statement",
        "/v1/account-books/{book_no}/entries",
        "/v1/declarations",
        "/v1/trace",
        "/v1/write-offs/{write_off_id}",
    ):
        route = spec[path]["get"]
        content = route["responses"]["200"]["content"]
        assert {"application/json", "text/csv", XLSX_MEDIA_TYPE} <= set(content), path
        assert content[XLSX_MEDIA_TYPE]["schema"] == {"type": "string", "format": "binary"}
        (fmt,) = [p for p in route["parameters"] if p["name"] == "format"]
        assert {"json", "csv", "xlsx"} <= set(fmt["schema"]["enum"]), path


def test_dates_in_files_are_china_days(ledger):
    """A gate_in at 23:30 UTC is the next day in China: the sheet's cell says so."""
    t = onboard(ledger)
    late = datetime.now(UTC).replace(hour=23, minute=30, second=0, microsecond=0) - timedelta(
        days=1
    )
    _gate_in(ledger, t, 1, "1", late)
    wb = _workbook(
        _ok(
            ledger.get(
                f"/v1/account-books/{t.book_no}/entries", t.token_name, params={"format": "xlsx"}
            )
        )
    )
    occurred = wb["entries"]["C2"].value
    assert occurred == late.astimezone(SHANGHAI).replace(tzinfo=None)
    assert occurred.date() == (late + timedelta(hours=8)).date() != late.date()
    assert isinstance(occurred.date(), date)


# -- The header row in the request's language ------------------------------------------------

# The header rows the files had before they had Chinese ones (decision 0031), byte for byte: a
# client that sends no Accept-Language (or asks for English) reads exactly these.
PAPERS = [
    "declaration_no",
    "checklist_no",
    "gate_pass_no",
    "gate_note",
    "transport_reference",
    "container",
    "other_documents",
]
LOT_DESCRIPTION = ["zone", "account_book", "item_no", "hs_code", "name", "unit", "goods_status"]
ENGLISH = {
    "statement": STATEMENT_HEADER,
    "entries": [
        "position",
        "recorded_at (UTC+8)",
        "occurred_at (UTC+8)",
        "item_no",
        "hs_code",
        "name",
        "unit",
        "entry_kind",
        "quantity",
        "balance_after",
        "lot_id",
        "movement_id",
        *PAPERS,
    ],
    "declarations": [
        "id",
        "declaration_no",
        "status",
        "channel",
        "risk_reasons",
        "flow",
        "trade_mode",
        "declarant",
        "zone",
        "account_book",
        "destination_zone",
        "destination_account_book",
        "transport_mode",
        "transport_reference",
        "container",
        "country",
        "currency",
        "incoterm",
        "freight",
        "insurance",
        "lines",
        "tariff (CNY)",
        "vat (CNY)",
        "consumption_tax (CNY)",
        "duties_total (CNY)",
        "duties_paid (CNY)",
        "duties_outstanding (CNY)",
        "order_no",
        "waybill_no",
        "client_ref",
        "checklist_no",
        "occurred_at (UTC+8)",
        "submitted_at (UTC+8)",
    ],
    "events": [
        "position",
        "occurred_at (UTC+8)",
        "recorded_at (UTC+8)",
        "type",
        "lot_id",
        *LOT_DESCRIPTION,
        "quantity",
        *PAPERS,
        "movement_id",
        "actor",
        "actor_role",
    ],
    "lots": [
        "lot_id",
        *LOT_DESCRIPTION,
        "quantity_in",
        "on_hand",
        "origin",
        "movement_id",
        "occurred_at (UTC+8)",
    ],
    "edges": ["from", "to", "kind", "quantity"],
    "write-off": [
        "item_no",
        "hs_code",
        "name",
        "unit",
        "goods_status",
        "opening",
        "receipts",
        "issues",
        "consumed",
        "produced",
        "by_products",
        "scrap_made",
        "scrap",
        "adjustments",
        "closing_book",
        "counted",
        "difference",
    ],
}
CJK = re.compile("[\u4e00-\u9fff]")
# What a Chinese browser sends, and an English one that would take Chinese second.
CHINESE = "zh-CN,zh;q=0.9,en;q=0.8"
ENGLISH_FIRST = "en-US,en;q=0.9,zh-CN;q=0.8"


def _in_languages(ledger, path: str, who: str, params: dict[str, str]) -> tuple[Any, Any]:
    """The file asked without Accept-Language and asked in Chinese; asked in English first, it
    is the one without, byte for byte (a CSV; an XLSX, cell for cell)."""

    def ask(language: str | None) -> Any:
        extra = {"Accept-Language": language} if language else {}
        return _ok(ledger.client.get(path, params=params, headers={**ledger.headers(who), **extra}))

    plain, chinese, english = ask(None), ask(CHINESE), ask(ENGLISH_FIRST)
    assert plain.headers["content-language"] == english.headers["content-language"] == "en"
    assert chinese.headers["content-language"] == "zh-CN"
    assert "accept-language" in chinese.headers["vary"].lower()
    if params.get("format") == "xlsx":  # the same cells (a zip's bytes hold its write time)
        assert _cells(plain) == _cells(english)
    else:
        assert plain.content == english.content
    return plain, chinese


def _cells(r: Any) -> dict[str, list[tuple[Any, ...]]]:
    wb = _workbook(r)
    return {name: list(wb[name].iter_rows(values_only=True)) for name in wb.sheetnames}


def _a_chinese_header(chinese: list[str], english: list[str]) -> None:
    """As many columns as the English, in its order: each named in Chinese, instants noted as
    China time in Chinese where the English says (UTC+8)."""
    assert len(chinese) == len(english), (chinese, english)
    assert all(CJK.search(name) for name in chinese), chinese
    assert len(set(chinese)) == len(chinese), chinese
    for zh, en in zip(chinese, english, strict=True):
        assert zh.endswith("（北京时间）") == en.endswith(" (UTC+8)"), (zh, en)  # noqa: RUF001
        assert "(UTC+8)" not in zh and "CNY" not in zh, zh
        if en.endswith("(CNY)"):
            assert zh.endswith("（人民币元）"), zh  # noqa: RUF001


def _same_csv_but_the_header(plain: Any, chinese: Any, english: list[str]) -> None:
    assert plain.content.startswith(b"\xef\xbb\xbf") and chinese.content.startswith(b"\xef\xbb\xbf")
    head_en, _, rows_en = plain.content.decode("utf-8-sig").partition("\r\n")
    head_zh, _, rows_zh = chinese.content.decode("utf-8-sig").partition("\r\n")
    assert head_en == ",".join(english)
    _a_chinese_header(next(csv.reader([head_zh])), english)
    assert rows_zh == rows_en  # the data rows, byte for byte


def _same_xlsx_but_the_header(plain: Any, chinese: Any, sheets: list[str]) -> list[str]:
    """The worksheets' Chinese names, after checking headers and cells sheet by sheet."""
    en_wb, zh_wb = _workbook(plain), _workbook(chinese)
    assert en_wb.sheetnames == sheets
    assert len(zh_wb.sheetnames) == len(sheets)
    assert all(CJK.search(name) for name in zh_wb.sheetnames), zh_wb.sheetnames
    for name, zh_name in zip(sheets, zh_wb.sheetnames, strict=True):
        en_rows, zh_rows = list(en_wb[name].iter_rows()), list(zh_wb[zh_name].iter_rows())
        assert [c.value for c in en_rows[0]] == ENGLISH[name]
        _a_chinese_header([c.value for c in zh_rows[0]], ENGLISH[name])
        assert all(c.font.b for c in zh_rows[0]) and zh_wb[zh_name].freeze_panes == "A2"
        typed = [[(c.value, c.data_type, c.number_format) for c in row] for row in en_rows[1:]]
        assert typed == [
            [(c.value, c.data_type, c.number_format) for c in row] for row in zh_rows[1:]
        ]
        assert len(en_rows) > 1 or name == "edges", name
    return list(zh_wb.sheetnames)


def test_every_file_has_its_header_in_chinese_when_asked_and_the_same_rows(ledger):
    t, period = _book(ledger)
    d = _gate_in(ledger, t, 7, "3", datetime.now(UTC))
    book = f"/v1/account-books/{t.book_no}"
    reads = [
        ("statement", f"{book}/statement", period),
        ("entries", f"{book}/entries", {}),
        ("declarations", "/v1/declarations", {"declarant": t.uscc}),
    ]
    for name, path, params in reads:
        for fmt in ("csv", "xlsx"):
            plain, chinese = _in_languages(ledger, path, "auditor", {**params, "format": fmt})
            if fmt == "csv":
                _same_csv_but_the_header(plain, chinese, ENGLISH[name])
            else:
                _same_xlsx_but_the_header(plain, chinese, [name])
    plain, chinese = _in_languages(ledger, f"{book}/statement.csv", "auditor", period)
    _same_csv_but_the_header(plain, chinese, STATEMENT_HEADER)
    trace = {"ref": d["declaration_no"]}
    plain, chinese = _in_languages(ledger, "/v1/trace", "auditor", {**trace, "format": "csv"})
    _same_csv_but_the_header(plain, chinese, ENGLISH["events"])
    plain, chinese = _in_languages(ledger, "/v1/trace", "auditor", {**trace, "format": "xlsx"})
    names = _same_xlsx_but_the_header(plain, chinese, ["events", "lots", "edges"])
    assert names == ["事件", "批次", "批次关联"]
    # The glossary's terms: 项号 for the book's item number, 账册 for the book.
    statement = _ok(
        ledger.client.get(
            f"{book}/statement.csv",
            params=period,
            headers={**ledger.headers("auditor"), "Accept-Language": "zh"},
        )
    )
    head = statement.content.decode("utf-8-sig").partition("\r\n")[0].split(",")
    assert head[:4] == ["项号", "商品编码", "商品名称", "计量单位"]
