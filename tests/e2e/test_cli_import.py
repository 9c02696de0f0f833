"""`customs-ledger import FILE --kind K [--dry-run]`: a client of a running server's
POST /v1/imports, with a progress bar on stderr, refused rows on stdout and its exit codes."""

from __future__ import annotations

import io

import openpyxl
import pytest

from domain import imports as im
from tests.support import onboard, run_cli, serving

KIND = im.KINDS["declarations"]


def sheet(tenant, rows):
    """Declarations of ten laptops into the tenant's book (`quantity` per row)."""
    book = openpyxl.Workbook()
    data = book.active
    data.append([c.header for c in KIND.columns])
    for n, quantity in enumerate(rows):
        values = {
            "ref": f"PO-{n}",
            "flow": "first_line_in",
            "trade_mode": "5034",
            "declarant": tenant.uscc,
            "zone": "XCBZ",
            "account_book": tenant.book_no,
            "transport_mode": "rail",
            "transport_reference": f"X8024-{n}",
            "country": "DE",
            "currency": "EUR",
            "incoterm": "FOB",
            "item_no": 1,
            "hs_code": "8471300000",
            "description": "Laptop computers",
            "quantity": quantity,
            "unit": "C62",
            "unit_price": "420.00",
            "origin_country": "DE",
        }
        data.append([values.get(c.name) for c in KIND.columns])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


@pytest.fixture
def server(sqlite_url):
    with serving(sqlite_url) as (base, ledger):
        yield sqlite_url, base, ledger


def test_import_from_the_command_line(server, tmp_path):
    url, base, ledger = server
    tenant = onboard(ledger)
    token = ledger.tokens[tenant.token_name]
    path = tmp_path / "declarations.xlsx"
    path.write_bytes(sheet(tenant, ["10", "1,5", "3"]))

    def run(*args: str):
        return run_cli(
            url,
            "import",
            str(path),
            "--kind",
            "declarations",
            "--url",
            base,
            *args,
            LEDGER_TOKEN=token,
        )

    before = ledger.log_state()
    dry = run("--dry-run")
    assert dry.returncode == 1, dry.stderr
    assert "3/3 documents" in dry.stderr  # the progress bar
    assert (
        "2 would be accepted, 0 replayed (this file, imported before), 0 already in (from an"
        " earlier file), 1 refused"
    ) in dry.stdout
    assert "row 3\t申报数量 quantity\t" in dry.stdout
    assert ledger.log_state() == before

    real = run()
    assert real.returncode == 1 and "2 accepted, 0 replayed" in real.stdout, real.stdout
    after = ledger.log_state()
    again = run()
    assert again.returncode == 1 and "0 accepted, 2 replayed" in again.stdout
    assert ledger.log_state() == after

    # The file corrected (its third row 1 instead of "1,5"): a new file, whose two rows that
    # went in the first time are already in, not submitted again; only the corrected one is.
    path.write_bytes(sheet(tenant, ["10", "1", "3"]))
    fixed = run()
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "1 accepted, 0 replayed (this file, imported before), 2 already in" in fixed.stdout

    path.write_bytes(sheet(tenant, ["4"]))
    assert run().returncode == 0

    path.write_bytes(b"not a sheet\x00")
    bad = run()
    assert bad.returncode == 2 and "$.file" in bad.stderr
    assert (
        run_cli(url, "import", str(path), "--kind", "declarations", "--url", base).returncode == 2
    )
    unknown = run_cli(
        url, "import", str(path), "--kind", "declarations", "--url", base, LEDGER_TOKEN="nope"
    )
    assert unknown.returncode == 2 and "401" in unknown.stderr


def test_import_movements_from_the_command_line(server, tmp_path):
    """`--kind movements`: an enterprise's stocktake adjustments from a CSV with English
    headers; a row of a kind it does not record (an operator's gate_in) is refused at its row."""
    url, base, ledger = server
    tenant = onboard(ledger)
    path = tmp_path / "stocktake.csv"
    path.write_text(
        "kind,account_book,item_no,quantity,reason,declaration,line_no\n"
        f"adjustment,{tenant.book_no},1,3,found in bay 4,,\n"
        f"adjustment,{tenant.book_no},2,1.5,found in bay 7,,\n"
        "gate_in,,,1,,900720260000000001,1\n",
        encoding="utf-8",
    )
    run = run_cli(
        url,
        "import",
        str(path),
        "--kind",
        "movements",
        "--url",
        base,
        LEDGER_TOKEN=ledger.tokens[tenant.token_name],
    )
    assert run.returncode == 1, run.stderr
    assert "3/3 documents" in run.stderr
    assert "2 accepted, 0 replayed (this file, imported before), 0 already in" in run.stdout
    assert "1 refused" in run.stdout, run.stdout
    assert "row 4\tkind\tgate movements are recorded by an operator of the zone" in run.stdout
    listed = ledger.get(
        "/v1/movements", tenant.token_name, params={"kind": "adjustment", "limit": 10}
    )
    assert sorted(m["reason"] for m in listed.json()["items"]) == [
        "found in bay 4",
        "found in bay 7",
    ]
