"""Spreadsheet imports (issue #20 item 2, docs/imports.md): POST /v1/imports, GET
/v1/imports/{id}, the templates.

The issue's test: an XLSX of 1,000 retail lists with 30 faulty rows - the dry run names exactly
those 30 rows (at their columns) and changes nothing (event count and head hash); the real
run submits the 970 others; the second upload changes nothing; the file with the 30 rows
corrected submits exactly those 30 (the 970 are `already_imported`). Movements: an
operator's gate log, an enterprise's processing and adjustments, exits naming lots,
identical rows and a corrected file by another key of the enterprise. Then CSV in UTF-8 with a BOM
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
import uuid
from typing import Any

import openpyxl
import pytest

from domain import imports as im
from domain.movement_kinds import KINDS as MOVEMENT_KINDS
from tests.samples import declaration_body, line, make_resident_id, retail_row
from tests.support import Ledger, Tenant, admit, new_key, onboard, running_ledger

KIND = im.KINDS["retail_lists"]
HEADERS = [c.header for c in KIND.columns]


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
    ordered = orders(ledger, who)
    assert sorted(ordered) == [f"JD{r - 2:08d}" for r in range(2, 1002) if r not in expected]

    after = ledger.log_state()
    again = finished(ledger, who, upload(ledger, who, data, name="renamed.xlsx"))
    assert (again["accepted"], again["replayed"], again["refused"]) == (0, 970, 30)
    assert ledger.log_state() == after, "the same file again wrote to the log"

    # The file with the 30 rows corrected, uploaded whole (a new file: new row keys): the dry
    # run and the real run find the 970 already imported, by the first real run at the same
    # rows, and the real run submits exactly the 30.
    corrected = workbook([retail_row(tenant, n) for n in range(1000)])
    dry_fix = finished(ledger, who, upload(ledger, who, corrected, dry_run=True))
    assert ledger.log_state() == after, "a dry run wrote to the log"
    assert (dry_fix["accepted"], dry_fix["already_imported"], dry_fix["refused"]) == (30, 970, 0)
    fix = finished(ledger, who, upload(ledger, who, corrected, name="corrected.xlsx"))
    assert (fix["accepted"], fix["replayed"], fix["already_imported"], fix["refused"]) == (
        30,
        0,
        970,
        0,
    )
    assert {r["row"] for r in results(ledger, who, fix["id"], "accepted")} == set(expected)
    skipped = results(ledger, who, fix["id"], "already_imported")
    assert [(r["row"], r["earlier"], r["id"]) for r in skipped] == [
        (r["row"], {"import_id": real["id"], "row": r["row"]}, r["id"]) for r in accepted
    ]
    ordered = orders(ledger, who)
    assert sorted(ordered) == [f"JD{n:08d}" for n in range(1000)], "a list twice or missing"
    fixed_state = ledger.log_state()
    fix_again = finished(ledger, who, upload(ledger, who, corrected))
    assert (fix_again["accepted"], fix_again["replayed"], fix_again["already_imported"]) == (
        0,
        30,
        970,
    )
    assert ledger.log_state() == fixed_state, "the corrected file again wrote to the log"


def orders(ledger: Ledger, who: str) -> list[str]:
    """The order numbers of the retail lists the enterprise has (one entry per list)."""
    found: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
        page = ledger.get("/v1/declarations", who, params=params).json()
        found += [d["client_ref"] for d in page["items"] if d["client_ref"].startswith("JD")]
        cursor = page["next_cursor"]
        if cursor is None:
            return found


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


# -- movements ---------------------------------------------------------------------------------

MOVEMENTS = im.KINDS["movements"]


def movement_sheet(rows: list[dict[str, Any]]) -> bytes:
    """An XLSX of movements with the template's headers (one row per line)."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append([c.header for c in MOVEMENTS.columns])
    for r in rows:
        unknown = set(r) - {c.name for c in MOVEMENTS.columns}
        assert not unknown, unknown
        sheet.append([r.get(c.name) for c in MOVEMENTS.columns])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def released(ledger: Ledger, tenant: Tenant, **overrides: Any) -> dict[str, Any]:
    """A declaration of the tenant's, released (an officer releases one held for review)."""
    body = declaration_body(tenant.uscc, tenant.book_no, **overrides)
    d = ledger.post("/v1/declarations", tenant.token_name, body, key=new_key())
    assert d.status_code == 201, d.text
    if d.json()["status"] == "document_review":
        d = ledger.post(f"/v1/declarations/{d.json()['id']}/release", "officer", {})
    assert d.json()["status"] == "released", d.text
    return d.json()  # type: ignore[no-any-return]


def by_row(items: list[Any]) -> dict[int, Any]:
    return {r["row"]: r for r in items}


def test_a_gate_log_imported_by_the_zones_operator(ledger, tenant):
    """An operator's gate log: a gate_in of two lines (two rows of one ref), then rows each
    refused as POST /v1/movements refuses them - more than the line has left (only the real
    run, deciding the rows in file order, sees it), a kind the operator does not record (403 at
    its kind), an unknown declaration, a field the kind does not have - each at its row and
    column. The same file again writes nothing; another zone's operator cannot read the job."""
    ledger.issue("gate-xcbz", "operator", zone="XCBZ")
    ledger.issue("gate-xepz", "operator", zone="XEPZ")
    d = released(ledger, tenant, lines=[line(1, quantity="10"), line(2, line_no=2, quantity="5")])
    rows = [
        {"ref": "G1", "kind": "gate_in", "declaration": d["declaration_no"], "line_no": 1}
        | {"quantity": 10, "vehicle": "陕A12345", "gate_note": "GN-1"},
        {"ref": "G1", "line_no": 2, "quantity": "5"},
        {"ref": "G2", "kind": "gate_in", "declaration": d["id"], "line_no": 1, "quantity": 1},
        {"ref": "A1", "kind": "adjustment", "account_book": tenant.book_no, "item_no": 1}
        | {"quantity": 2, "reason": "盘盈"},
        {"kind": "gate_in", "declaration": "900720269999999999", "line_no": 1, "quantity": 1},
        {"kind": "gate_in", "declaration": d["id"], "line_no": 2, "quantity": 1, "item_no": 2},
    ]
    data = movement_sheet(rows)
    who = "gate-xcbz"

    before = ledger.log_state()
    dry = finished(ledger, who, upload(ledger, who, data, dry_run=True, kind="movements"))
    assert ledger.log_state() == before
    assert (dry["rows"], dry["documents"], dry["accepted"], dry["refused"]) == (6, 5, 2, 3)

    real = finished(ledger, who, upload(ledger, who, data, kind="movements"))
    assert (real["accepted"], real["refused"]) == (1, 4), results(ledger, who, real["id"])
    found = by_row(results(ledger, who, real["id"]))
    assert (found[2]["outcome"], found[2]["rows"]) == ("accepted", [2, 3])
    movement = ledger.get(f"/v1/movements/{found[2]['id']}", who).json()
    assert (movement["kind"], movement["vehicle"], movement["gate_note"]) == (
        "gate_in",
        "陕A12345",
        "GN-1",
    )
    assert sorted((x["item_no"], x["quantity"]) for x in movement["lots"]) == [(1, "10"), (2, "5")]
    # Decided after G1 in file order: line 1 has nothing left.
    assert found[4]["status"] == 409 and found[4]["errors"][0]["row"] == 4
    assert [(e["row"], e["column"]) for e in found[5]["errors"]] == [(5, "变动类型 kind")]
    assert found[5]["status"] == 403
    assert found[5]["errors"][0]["msg"] == MOVEMENT_KINDS["adjustment"].rules.refusal
    assert [(e["row"], e["column"]) for e in found[6]["errors"]] == [(6, "报关单号 declaration")]
    assert [(e["row"], e["column"]) for e in found[7]["errors"]] == [(7, "备案序号 item_no")]

    after = ledger.log_state()
    again = finished(ledger, who, upload(ledger, who, data, kind="movements"))
    assert (again["replayed"], again["accepted"], again["refused"]) == (1, 0, 4)
    assert ledger.log_state() == after
    path = f"/v1/imports/{real['id']}"
    assert ledger.get(path, "gate-xepz").status_code == 404
    assert ledger.get(path, tenant.token_name).status_code == 404
    assert ledger.get(path, "officer").status_code == 200
    assert ledger.get(path, who).json()["accepted"] == 1


def test_an_enterprises_movements_processing_adjustments_and_what_it_may_not_record(ledger, tenant):
    """Processing (one row per input or output, by `role`), an adjustment (one row: its
    quantity the difference), and refusals at their row: a processing row without a role, an
    adjustment of two rows, a destruction (an officer's)."""
    who = tenant.token_name
    book = {"account_book": tenant.book_no}
    rows = [
        {"ref": "P1", "kind": "processing", "zone": "XCBZ", **book, "role": "input"}
        | {"item_no": 1, "quantity": 4},
        {"ref": "P1", "role": "product", "item_no": 3, "quantity": 2},
        {"ref": "P1", "role": "scrap", "item_no": 2, "quantity": "0.5"},
        {"ref": "A1", "kind": "adjustment", **book, "item_no": 1, "quantity": -3}
        | {"reason": "盘亏 stocktake shortage"},
        {"ref": "P2", "kind": "processing", "zone": "XCBZ", **book, "role": "input"}
        | {"item_no": 1, "quantity": 1},
        {"ref": "P2", "item_no": 3, "quantity": 1},
        {"ref": "A2", "kind": "adjustment", **book, "item_no": 1, "quantity": 1, "reason": "x"},
        {"ref": "A2", "item_no": 2, "quantity": 1},
        {"kind": "destruction", **book, "item_no": 1, "quantity": 1, "reason": "破损"},
    ]
    job = finished(ledger, who, upload(ledger, who, movement_sheet(rows), kind="movements"))
    found = by_row(results(ledger, who, job["id"]))
    assert {r: x["outcome"] for r, x in found.items()} == {
        2: "accepted",
        5: "accepted",
        6: "refused",
        8: "refused",
        10: "refused",
    }
    processing = ledger.get(f"/v1/movements/{found[2]['id']}", who).json()
    assert processing["kind"] == "processing"
    assert sorted((x["item_no"], x["quantity"]) for x in processing["lots"]) == [
        (1, "-4"),
        (2, "0.5"),
        (3, "2"),
    ]
    adjustment = ledger.get(f"/v1/movements/{found[5]['id']}", who).json()
    assert (adjustment["kind"], adjustment["reason"]) == ("adjustment", "盘亏 stocktake shortage")
    assert [x["quantity"] for x in adjustment["lots"]] == ["-3"]
    assert [(e["row"], e["column"]) for e in found[6]["errors"]] == [(7, "料件/成品 role")]
    assert [(e["row"], e["column"]) for e in found[8]["errors"]] == [(9, "单据编号 ref")]
    assert found[10]["status"] == 403
    assert [(e["row"], e["column"]) for e in found[10]["errors"]] == [(10, "变动类型 kind")]


def test_an_exit_whose_rows_name_lots(ledger):
    """gate_out rows of one line that name lots are one line drawing from them (its quantity
    their sum); an unknown lot is refused at its own row."""
    ledger.issue("gate-xcbz", "operator", zone="XCBZ")
    tenant = onboard(ledger)
    admit(ledger, tenant, 1, "6")
    admit(ledger, tenant, 1, "6")
    ins = ledger.get(
        "/v1/movements", tenant.token_name, params={"kind": "gate_in", "limit": 10}
    ).json()
    a, b = (m["lots"][0]["lot_id"] for m in ins["items"])
    export = released(
        ledger,
        tenant,
        flow="first_line_out",
        trade_mode="0110",
        country="KZ",
        lines=[line(1, quantity="8", origin_country=None)],
    )
    head = {"ref": "OUT-1", "kind": "gate_out", "declaration": export["id"], "line_no": 1}
    who = "gate-xcbz"
    wrong = str(uuid.uuid4())
    rows = [head | {"lot_id": b, "quantity": 5}, {"ref": "OUT-1", "line_no": 1, "lot_id": wrong}]
    rows[1]["quantity"] = 3
    job = finished(ledger, who, upload(ledger, who, movement_sheet(rows), kind="movements"))
    (refused,) = results(ledger, who, job["id"])
    assert [(e["row"], e["column"], e["loc"]) for e in refused["errors"]] == [
        (3, "批次编号 lot_id", "$.lines[0].lots[1].lot_id")
    ]
    rows[1]["lot_id"] = a
    job = finished(ledger, who, upload(ledger, who, movement_sheet(rows), kind="movements"))
    (accepted,) = results(ledger, who, job["id"])
    assert accepted["outcome"] == "accepted", accepted
    movement = ledger.get(f"/v1/movements/{accepted['id']}", who).json()
    assert [(x["lot_id"], x["quantity"]) for x in movement["lots"]] == [(b, "5"), (a, "3")]


def test_identical_rows_and_a_corrected_movements_file(ledger, tenant):
    """Two identical adjustments in one file are two movements; the file corrected (a refused
    row fixed, a third identical adjustment added) and uploaded whole by another key of the
    same enterprise adds exactly the fixed row and the third: the rows already in are
    `already_imported`, naming the import and row that got them in, in the caller's
    language."""
    who = tenant.token_name
    same = {"kind": "adjustment", "account_book": tenant.book_no, "item_no": 1, "quantity": 1}
    same |= {"reason": "盘盈 found"}
    bad = {**same, "item_no": 99}
    first = finished(
        ledger, who, upload(ledger, who, movement_sheet([same, same, bad]), kind="movements")
    )
    assert (first["accepted"], first["refused"]) == (2, 1)

    ledger.issue("clerk-2", "enterprise", enterprise=tenant.uscc)
    fixed = movement_sheet([same, same, {**bad, "item_no": 2}, same])
    before = ledger.log_state()
    dry = finished(
        ledger, "clerk-2", upload(ledger, "clerk-2", fixed, dry_run=True, kind="movements")
    )
    assert ledger.log_state() == before
    assert (dry["accepted"], dry["already_imported"], dry["refused"]) == (2, 2, 0)
    real = finished(ledger, "clerk-2", upload(ledger, "clerk-2", fixed, kind="movements"))
    assert (real["accepted"], real["already_imported"], real["refused"]) == (2, 2, 0)
    r = ledger.client.get(
        f"/v1/imports/{real['id']}",
        params={"outcome": "already_imported"},
        headers={**ledger.headers("clerk-2"), "Accept-Language": "zh-CN"},
    )
    skipped = r.json()["results"]["items"]
    firsts = by_row(results(ledger, who, first["id"]))
    assert [(s["row"], s["earlier"]) for s in skipped] == [
        (2, {"import_id": first["id"], "row": 2}),
        (3, {"import_id": first["id"], "row": 3}),
    ]
    assert [s["id"] for s in skipped] == [firsts[2]["id"], firsts[3]["id"]]
    assert [(s["status"], s["detail"]) for s in skipped] == [
        (200, f"已由导入任务 {first['id']} 的第 {row} 行导入，不再重复提交")  # noqa: RUF001
        for row in (2, 3)
    ]
    listed = ledger.get("/v1/movements", who, params={"kind": "adjustment", "limit": 100}).json()[
        "items"
    ]
    assert len(listed) == 4  # 2 + the fixed row + the third identical one


# The job store's tables as they were before content keys and operators' jobs.
OLD_STORE = (
    "CREATE TABLE {jobs} (id TEXT PRIMARY KEY, enterprise TEXT, principal TEXT NOT NULL,"
    " job TEXT NOT NULL, updated_at DOUBLE PRECISION NOT NULL)",
    "CREATE TABLE {results} (job_id TEXT NOT NULL, row BIGINT NOT NULL, outcome TEXT NOT NULL,"
    " result TEXT NOT NULL, PRIMARY KEY (job_id, row))",
)


def old_job_store(ledger: Ledger, tenant: Tenant) -> str:
    """A job store as the first version of imports left it, with one done job of the
    tenant's: made where the server will look for it, before it opens it; the job's id."""
    import sqlite3

    db = ledger.services.database
    job_id = str(uuid.uuid4())
    job = {
        "id": job_id,
        "kind": "retail_lists",
        "dry_run": False,
        "status": "done",
        "file_name": "old.xlsx",
        "sha256": "0" * 64,
        "rows": 1,
        "documents": 1,
        "done": 1,
        "accepted": 1,
        "replayed": 0,
        "refused": 0,
        "created_at": "2026-01-05T08:00:00Z",
        "finished_at": "2026-01-05T08:00:01Z",
    }
    result = {"row": 2, "rows": [2], "outcome": "accepted", "status": 201, "id": "x"}
    rows = (
        ("INSERT INTO {jobs} VALUES (?,?,?,?,?)", (job_id, tenant.uscc, "old", json.dumps(job), 0)),
        ("INSERT INTO {results} VALUES (?,?,?,?)", (job_id, 2, "accepted", json.dumps(result))),
    )
    if db.kind == "postgresql":
        names = {"jobs": f'"{db.schema}".import_jobs', "results": f'"{db.schema}".import_results'}
        with ledger.services.app.factory.datastore.transaction(commit=True) as cur:
            for statement in OLD_STORE:
                cur.execute(statement.format(**names))
            for statement, values in rows:
                cur.execute(statement.format(**names).replace("?", "%s"), values)
        return job_id
    assert db.path.endswith(".sqlite3")
    names = {"jobs": "import_jobs", "results": "import_results"}
    with sqlite3.connect(db.path[: -len(".sqlite3")] + ".imports.sqlite3") as conn:
        for statement in OLD_STORE:
            conn.execute(statement.format(**names))
        for statement, values in rows:
            conn.execute(statement.format(**names), values)
    return job_id


def test_a_job_store_from_before_content_keys_keeps_working(database_url):
    """A store without the content keys' table and the jobs' `zone` column gets both when the
    server opens it: its old jobs read as before, and new imports record content keys."""
    with running_ledger(database_url) as ledger:
        tenant = onboard(ledger)
        admit(ledger, tenant, 1, "10")
        assert getattr(ledger.client.app.state, "imports", None) is None  # not opened yet
        old = old_job_store(ledger, tenant)
        who = tenant.token_name
        shown = ledger.get(f"/v1/imports/{old}", who).json()
        assert (shown["status"], shown["accepted"], shown["already_imported"]) == ("done", 1, 0)
        assert [r["id"] for r in shown["results"]["items"]] == ["x"]
        first = finished(ledger, who, upload(ledger, who, workbook([retail_row(tenant, 90)])))
        assert first["accepted"] == 1
        both = workbook([retail_row(tenant, 90), retail_row(tenant, 91)])
        second = finished(ledger, who, upload(ledger, who, both))
        assert (second["accepted"], second["already_imported"]) == (1, 1)
    with running_ledger(database_url) as ledger:  # opened again: nothing to add
        ledger.issue("again", "enterprise", enterprise=tenant.uscc)
        assert ledger.get(f"/v1/imports/{old}", "again").json()["accepted"] == 1
        third = finished(ledger, "again", upload(ledger, "again", both))
        assert (third["accepted"], third["already_imported"]) == (0, 2)
