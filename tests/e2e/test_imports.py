"""Spreadsheet imports (issue #20 item 2, docs/imports.md): POST /v1/imports, GET
/v1/imports/{id}, the templates.

The issue's test: an XLSX of 1,000 retail lists with 30 faulty rows - the dry run names exactly
those 30 rows (at their columns) and changes nothing (event count and head hash); the real
run submits the 970 others; the second upload changes nothing. Then CSV in UTF-8 with a BOM
and in GB18030, a template downloaded, filled with openpyxl and imported, a document of
several rows, bad uploads (each a problem naming its field, nothing written), tenancy, and
a job read back after a restart of the server.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import time
from typing import Any

import openpyxl
import pytest

from domain import imports as im
from tests.samples import make_resident_id
from tests.support import Ledger, Tenant, admit, onboard, running_ledger

KIND = im.KINDS["retail_lists"]
HEADERS = [c.header for c in KIND.columns]


def retail_row(tenant: Tenant, n: int, **changes: Any) -> dict[str, Any]:
    """A retail list of one laptop at 400 CNY, to buyer n (each row its own buyer)."""
    buyer = make_resident_id(n)
    row: dict[str, Any] = {
        "order_no": f"JD{n:08d}",
        "trade_mode": "1210",
        "declarant": tenant.uscc,
        "zone": "XCBZ",
        "account_book": tenant.book_no,
        "transport_mode": "express",
        "transport_reference": f"SF{n:010d}",
        "country": "CN",
        "currency": "CNY",
        "incoterm": "DAP",
        "buyer_id": buyer,
        "buyer_name": "李华",
        "order_amount": 400,
        "payment_no": f"PAY{n:08d}",
        "payer_id": buyer,
        "payment_amount": 400,
        "waybill_no": f"WB{n:08d}",
        "consignee_id": make_resident_id(n + 1),
        "item_no": 1,
        "hs_code": 8471300000,
        "description": "笔记本电脑 Laptop",
        "quantity": 1,
        "unit": "C62",
        "unit_price": 400,
    }
    row.update(changes)
    return row


def workbook(rows: list[dict[str, Any]], headers: list[str] | None = None) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    names = [c.name for c in KIND.columns]
    sheet.append(headers or HEADERS)
    for r in rows:
        sheet.append([r.get(n) for n in names])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def csv_text(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([c.zh for c in KIND.columns])  # Chinese headers only
    for r in rows:
        writer.writerow(["" if r.get(c.name) is None else r.get(c.name) for c in KIND.columns])
    return out.getvalue()


def upload(
    ledger: Ledger,
    who: str,
    data: bytes,
    *,
    dry_run: bool = False,
    kind: str = "retail_lists",
    name: str = "lists.xlsx",
) -> Any:
    return ledger.client.post(
        "/v1/imports",
        headers=ledger.headers(who),
        data={"kind": kind, "dry_run": "true" if dry_run else "false"},
        files={"file": (name, data)},
    )


def finished(ledger: Ledger, who: str, r: Any) -> dict[str, Any]:
    """The job once done (a big file goes on after the answer)."""
    assert r.status_code == 201, r.text
    assert r.headers["location"] == f"/v1/imports/{r.json()['id']}"
    deadline = time.monotonic() + 300
    job = r.json()
    while job["status"] == "running":
        assert time.monotonic() < deadline, job
        time.sleep(0.2)
        job = ledger.get(r.headers["location"], who).json()
    assert job["status"] == "done", job
    return job


def results(ledger: Ledger, who: str, job_id: str, outcome: str | None = None) -> list[Any]:
    items: list[Any] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 1000}
        if outcome:
            params["outcome"] = outcome
        if cursor:
            params["cursor"] = cursor
        r = ledger.get(f"/v1/imports/{job_id}", who, params=params)
        assert r.status_code == 200, r.text
        items += r.json()["results"]["items"]
        cursor = r.json()["results"]["next_cursor"]
        if cursor is None:
            return items


@pytest.fixture
def ledger(database_url):
    with running_ledger(database_url) as ledger:
        yield ledger


@pytest.fixture
def tenant(ledger):
    tenant = onboard(ledger)
    admit(ledger, tenant, 1, "2000")
    return tenant


def faulty(tenant: Tenant, other: Tenant, n: int, fault: int) -> tuple[dict[str, Any], str]:
    """Row n made wrong in one of six ways, and the column its error must name."""
    if fault == 0:
        return retail_row(tenant, n, quantity="1,5"), "quantity"
    if fault == 1:
        return retail_row(tenant, n, payment_amount="399.00"), "payment_amount"
    if fault == 2:
        bad = make_resident_id(n)[:-1] + ("0" if make_resident_id(n)[-1] != "0" else "1")
        return retail_row(tenant, n, buyer_id=bad, payer_id=bad), "buyer_id"
    if fault == 3:
        return retail_row(tenant, n, declarant=other.uscc), "declarant"
    if fault == 4:
        return retail_row(tenant, n, currency="USD"), "currency"
    return retail_row(tenant, n, hs_code=None), "hs_code"


def test_1000_retail_lists_with_30_faulty_rows(ledger, tenant):
    other = onboard(ledger)
    rows: list[dict[str, Any]] = []
    expected: dict[int, str] = {}  # sheet row -> the column its error names
    for n in range(1000):
        if n % 33 == 5 and len(expected) < 30:
            row, column = faulty(tenant, other, n, len(expected) % 6)
            expected[n + 2] = KIND.column(column).header
        else:
            row = retail_row(tenant, n)
        rows.append(row)
    assert len(expected) == 30
    data = workbook(rows)
    who = tenant.token_name

    before = ledger.log_state()
    dry = finished(ledger, who, upload(ledger, who, data, dry_run=True))
    assert ledger.log_state() == before, "a dry run wrote to the log"
    assert (dry["rows"], dry["documents"], dry["accepted"], dry["refused"]) == (1000, 1000, 970, 30)
    refused = results(ledger, who, dry["id"], "refused")
    assert {r["row"] for r in refused} == set(expected)
    for r in refused:
        assert r["errors"][0]["column"] == expected[r["row"]], r
        assert all(e["row"] == r["row"] and e["msg"] for e in r["errors"]), r
    assert {r["status"] for r in refused} == {403, 422}

    real = finished(ledger, who, upload(ledger, who, data))
    assert (real["accepted"], real["replayed"], real["refused"]) == (970, 0, 30)
    assert {r["row"] for r in results(ledger, who, real["id"], "refused")} == set(expected)
    accepted = results(ledger, who, real["id"], "accepted")
    assert len({r["id"] for r in accepted}) == 970
    # The dry run named the ids the real run gave (derived from the same keys).
    dry_ids = {r["row"]: r["id"] for r in results(ledger, who, dry["id"], "accepted")}
    assert dry_ids == {r["row"]: r["id"] for r in accepted}
    listed = ledger.get("/v1/declarations", who, params={"limit": 1000}).json()["items"]
    ordered = {d["client_ref"] for d in listed if d["client_ref"].startswith("JD")}
    assert ordered == {f"JD{r - 2:08d}" for r in range(2, 1002) if r not in expected}

    after = ledger.log_state()
    again = finished(ledger, who, upload(ledger, who, data, name="renamed.xlsx"))
    assert (again["accepted"], again["replayed"], again["refused"]) == (0, 970, 30)
    assert ledger.log_state() == after, "the same file again wrote to the log"


def test_csv_in_utf8_with_a_bom_and_in_gb18030(ledger, tenant):
    who = tenant.token_name
    for encoding, first in (("utf-8-sig", 0), ("gb18030", 10)):
        text = csv_text([retail_row(tenant, n) for n in range(first, first + 3)])
        data = text.encode(encoding)
        assert data.startswith(b"\xef\xbb\xbf") == (encoding == "utf-8-sig")
        job = finished(ledger, who, upload(ledger, who, data, name="lists.csv"))
        assert (job["accepted"], job["refused"]) == (3, 0), results(ledger, who, job["id"])
        created = results(ledger, who, job["id"])
        d = ledger.get(f"/v1/declarations/{created[0]['id']}", who).json()
        assert d["lines"][0]["description"] == "笔记本电脑 Laptop"  # read in its encoding


def test_a_template_filled_in_with_openpyxl(ledger, tenant):
    assert ledger.client.get("/v1/imports/templates/retail_lists.xlsx").status_code == 401
    r = ledger.get("/v1/imports/templates/retail_lists.xlsx", tenant.token_name)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/vnd.openxmlformats")
    book = openpyxl.load_workbook(io.BytesIO(r.content))
    data, notes = book.worksheets
    headers = [c.value for c in data[1]]
    assert headers == HEADERS and "订单编号 order_no" in headers
    assert [c.value for c in notes["A"][1:]][: len(HEADERS)] == HEADERS
    data.delete_rows(2)  # the example row
    names = [c.name for c in KIND.columns]
    for n in range(20, 23):
        row = retail_row(tenant, n)
        data.append([row.get(name) for name in names])
    out = io.BytesIO()
    book.save(out)
    job = finished(ledger, tenant.token_name, upload(ledger, tenant.token_name, out.getvalue()))
    assert (job["accepted"], job["refused"]) == (3, 0)
    assert ledger.get("/v1/imports/templates/checklists.xlsx", "auditor").status_code == 200
    assert ledger.get("/v1/imports/templates/cheese.xlsx", "officer").status_code == 404


def test_one_document_of_several_rows_and_errors_at_their_line(ledger, tenant):
    """Rows with the same order number are the lines of one list; an error of its second
    line names the second row; a document field that differs on a later row is refused."""
    who = tenant.token_name
    a = retail_row(tenant, 40, order_amount=800, payment_amount=800)
    b = {"order_no": a["order_no"], "item_no": 1, "hs_code": "8471300000", "description": "x"}
    b |= {"quantity": 1, "unit": "C62", "unit_price": 400}
    lone = retail_row(tenant, 41)
    job = finished(ledger, who, upload(ledger, who, workbook([a, b, lone]), dry_run=True))
    assert (job["documents"], job["accepted"]) == (2, 2), results(ledger, who, job["id"])
    first = results(ledger, who, job["id"])[0]
    assert first["rows"] == [2, 3]

    bad = {**b, "quantity": "-1"}
    differs = {**b, "currency": "EUR"}
    job = finished(ledger, who, upload(ledger, who, workbook([a, bad, differs]), dry_run=True))
    (result,) = results(ledger, who, job["id"])
    assert result["outcome"] == "refused"
    assert [(e["row"], e["column"]) for e in result["errors"]] == [(4, "币制 currency")]
    job = finished(ledger, who, upload(ledger, who, workbook([a, bad]), dry_run=True))
    (result,) = results(ledger, who, job["id"])
    assert [(e["row"], e["column"]) for e in result["errors"]] == [(3, "申报数量 quantity")]


@pytest.mark.parametrize(
    ("fields", "files", "status", "loc"),
    [
        (
            {"kind": "retail_lists"},
            {"file": ("x.xlsx", b"%PDF-1.7 not a sheet\x00")},
            422,
            "$.file",
        ),
        ({"kind": "retail_lists"}, {"file": ("x.xls", b"\xd0\xcf\x11\xe0old")}, 422, "$.file"),
        ({"kind": "retail_lists"}, {"file": ("x.xlsx", b"PK\x03\x04broken")}, 422, "$.file"),
        ({"kind": "cheese"}, {"file": ("x.csv", b"a,b\n1,2\n")}, 422, "$.kind"),
        ({"kind": "retail_lists"}, {"file": ("x.csv", b"cheese,wine\n1,2\n")}, 422, "$.file"),
        ({"kind": "retail_lists"}, {"file": ("x.csv", "订单编号\n".encode())}, 422, "$.file"),
        ({"kind": "retail_lists", "dry_run": "maybe"}, {"file": ("x.csv", b"a")}, 422, "$.dry_run"),
        ({"kind": "retail_lists"}, {"nofile": ("x.csv", b"a")}, 422, "$.file"),
        (
            {"kind": "retail_lists"},
            {"file": ("x.csv", b"a" * (10 * 1024 * 1024 + 1))},
            413,
            "$.file",
        ),
    ],
)
def test_bad_uploads_are_a_problem_naming_the_field(ledger, fields, files, status, loc):
    tenant = onboard(ledger)
    before = ledger.log_state()
    r = ledger.client.post(
        "/v1/imports", headers=ledger.headers(tenant.token_name), data=fields, files=files
    )
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert [e["loc"] for e in r.json()["errors"]] == [loc], r.text
    assert ledger.log_state() == before


def test_missing_columns_and_too_many_rows(ledger, tenant):
    who = tenant.token_name
    headers = [h for h in HEADERS if "hs_code" not in h]
    r = upload(ledger, who, workbook([retail_row(tenant, 1)], headers=headers))
    assert r.status_code == 422 and "商品编码 hs_code" in r.json()["errors"][0]["msg"], r.text
    text = csv_text([]) + "\n".join(["x"] * (im.MAX_ROWS + 1))
    r = upload(ledger, who, text.encode(), name="big.csv")
    assert r.status_code == 422 and "20000" in r.json()["errors"][0]["msg"], r.text


def test_json_upload_and_other_content_types(ledger, tenant):
    who = tenant.token_name
    data = workbook([retail_row(tenant, 50)])
    body = {"kind": "retail_lists", "dry_run": True, "file": base64.b64encode(data).decode()}
    r = ledger.post("/v1/imports", who, body)
    assert r.status_code == 201 and r.json()["accepted"] == 1, r.text
    r = ledger.client.post(
        "/v1/imports", headers={**ledger.headers(who), "content-type": "text/csv"}, content=b"a"
    )
    assert r.status_code == 415


def test_tenancy(ledger, tenant):
    """Rows naming another enterprise are refused as the route refuses them (403 at the
    declarant); another enterprise's import is 404, as an unknown one; customs read any."""
    other = onboard(ledger)
    who = tenant.token_name
    data = workbook([retail_row(tenant, 60, declarant=other.uscc), retail_row(tenant, 61)])
    before = ledger.log_state()
    job = finished(ledger, who, upload(ledger, who, data))
    assert (job["accepted"], job["refused"]) == (1, 1)
    refused = results(ledger, who, job["id"], "refused")[0]
    assert refused["status"] == 403 and refused["errors"][0]["column"] == "申报单位 declarant"
    assert ledger.log_state() != before  # the other row was written
    path = f"/v1/imports/{job['id']}"
    assert ledger.get(path, other.token_name).status_code == 404
    unknown = ledger.get("/v1/imports/00000000-0000-4000-8000-000000000000", other.token_name)
    assert unknown.status_code == 404
    for role in ("officer", "auditor"):
        assert ledger.get(path, role).json()["accepted"] == 1
    for role in ("admin",):
        assert ledger.get(path, role).status_code == 403
    assert upload(ledger, "officer", data).status_code == 403
    assert ledger.client.post("/v1/imports").status_code == 401


def test_a_job_is_read_back_after_a_restart(database_url):
    with running_ledger(database_url) as ledger:
        tenant = onboard(ledger)
        admit(ledger, tenant, 1, "10")
        job = finished(
            ledger,
            tenant.token_name,
            upload(ledger, tenant.token_name, workbook([retail_row(tenant, 70)])),
        )
    with running_ledger(database_url) as ledger:
        ledger.tokens[tenant.token_name] = ledger.issue(
            f"{tenant.token_name}-again", "enterprise", enterprise=tenant.uscc
        )
        again = ledger.get(f"/v1/imports/{job['id']}", tenant.token_name).json()
        assert (again["status"], again["accepted"]) == ("done", 1)
        (result,) = results(ledger, tenant.token_name, job["id"])
        assert result["outcome"] == "accepted" and result["number"]


def test_a_job_left_running_by_a_stopped_server_reads_interrupted(ledger, tenant):
    """A job its server stopped before finishing (running, not saved for 30 s) is reported
    `interrupted`; the same file again does the rest and writes nothing twice."""
    who = tenant.token_name
    data = workbook([retail_row(tenant, 80), retail_row(tenant, 81)])
    job = finished(ledger, who, upload(ledger, who, data))
    imports = ledger.client.app.state.imports
    store = imports.store
    stopped = {**job, "status": "running", "done": 1, "accepted": 1, "finished_at": None}
    stopped.pop("results")
    store.save(job["id"], tenant.uscc, who, json.dumps(stopped).encode())
    assert ledger.get(f"/v1/imports/{job['id']}", who).json()["status"] == "running"
    with store._cursor() as cur:
        cur.execute(store.sql("UPDATE {jobs} SET updated_at = 0 WHERE id = ?"), (job["id"],))
    shown = ledger.get(f"/v1/imports/{job['id']}", who).json()
    assert shown["status"] == "interrupted" and "upload the same file again" in shown["detail"]
    before = ledger.log_state()
    again = finished(ledger, who, upload(ledger, who, data))
    assert (again["replayed"], again["accepted"]) == (2, 0)
    assert ledger.log_state() == before


def test_checklists_filed_on_their_own(ledger):
    """Checklists (核注清单) from a CSV with English headers: two rows of one checklist, one
    refused at its item; its number answered; the same file again writes nothing."""
    tenant = onboard(ledger)
    who = tenant.token_name
    head = "ref,kind,direction,account_book,item_no,quantity\n"
    rows = [
        f"QD-1,enter_first,I,{tenant.book_no},1,100",
        "QD-1,,,,2,50.5",
        f"QD-2,enter_first,I,{tenant.book_no},9,1",
    ]
    data = (head + "\n".join(rows) + "\n").encode()
    before = ledger.log_state()
    dry = finished(ledger, who, upload(ledger, who, data, dry_run=True, kind="checklists"))
    assert ledger.log_state() == before
    first, second = results(ledger, who, dry["id"])
    assert (first["rows"], first["outcome"]) == ([2, 3], "accepted"), first
    assert second["outcome"] == "refused"
    assert [(e["row"], e["column"]) for e in second["errors"]] == [(4, "item_no")], second
    real = finished(ledger, who, upload(ledger, who, data, kind="checklists"))
    (filed,) = results(ledger, who, real["id"], "accepted")
    shown = ledger.get(f"/v1/checklists/{filed['number']}", who).json()
    assert shown["kind"] == "enter_first" and len(shown["lines"]) == 2
    after = ledger.log_state()
    again = finished(ledger, who, upload(ledger, who, data, kind="checklists"))
    assert (again["replayed"], again["refused"]) == (1, 1)
    assert ledger.log_state() == after


@pytest.mark.parametrize("kind", sorted(im.KINDS))
def test_each_templates_example_row_is_accepted_once_it_names_your_book(ledger, tenant, kind):
    r = ledger.get(f"/v1/imports/templates/{kind}.xlsx", tenant.token_name)
    book = openpyxl.load_workbook(io.BytesIO(r.content))
    data = book.worksheets[0]
    for cell in data[1]:
        name = str(cell.value).split()[-1]
        if name == "declarant":
            data.cell(row=2, column=cell.column, value=tenant.uscc)
        if name == "account_book":
            data.cell(row=2, column=cell.column, value=tenant.book_no)
    out = io.BytesIO()
    book.save(out)
    who = tenant.token_name
    job = finished(ledger, who, upload(ledger, who, out.getvalue(), dry_run=True, kind=kind))
    assert job["accepted"] == 1, results(ledger, who, job["id"])
