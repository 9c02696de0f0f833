"""The write-off's CSV file and PDF report (api/write_off_report.py), from a view built by hand:
a bonded item short of its book and assessed, a domestic one left uncounted."""

from __future__ import annotations

import csv
import hashlib
import io
from datetime import date, datetime
from decimal import Decimal as D
from uuid import UUID

import msgspec
import pypdf
import pytest

from api.write_off_report import CSV_HEADER, ItemInfo, cell, render_csv, render_pdf
from domain.declaration import SHANGHAI
from domain.write_offs import (
    AssessedShortage,
    BookAlignment,
    Certification,
    ConsumptionLine,
    WriteOffItem,
    WriteOffPeriod,
    WriteOffView,
)

WRITE_OFF = UUID("6f1d2c3b-4a59-4e68-8f7a-0b1c2d3e4f50")
BILL = UUID("0c9b8a7d-6e5f-4a3b-9c2d-1e0f9a8b7c6d")
HEAD_HASH = hashlib.sha256(b"write-off report test").hexdigest()
POSITION = 4711
INJECTION = "=cmd|' /C calc'!A0"
ITEMS: dict[int, ItemInfo] = {
    1: ("8471300000", "笔记本电脑", "C62"),
    7: ("3923100000", INJECTION, "KGM"),
}
CHECK = ConsumptionLine(
    bom_ref="BOM-KIT-01",
    output_item_no=9,
    output_quantity=D("20"),
    input_item_no=1,
    expected=D("40"),
    actual=D("42"),
    deviation=D("0.050000"),
    tolerance=D("0.030000"),
    beyond_tolerance=True,
)


def _figures(**changed: D) -> dict[str, D]:
    zero = D("0")
    figures = {
        k: zero
        for k in (
            "opening",
            "receipts",
            "issues",
            "consumed",
            "produced",
            "by_products",
            "scrap_made",
            "scrap",
            "adjustments",
        )
    }
    return figures | changed


# 1204 + 380 - 295 - 42 - 7 = 1240 on the book, 1223 counted: 17 short.
LAPTOPS = WriteOffItem(
    item_no=1,
    goods_status="bonded",
    **_figures(
        opening=D("1204"), receipts=D("380"), issues=D("295"), consumed=D("42"), scrap=D("7")
    ),
    closing_book=D("1240"),
    counted=D("1223"),
    difference=D("-17"),
    consumption_check=[CHECK],
)
# 10.500 + 2.250 - 12.750: nothing left, so not counted.
BAGS = WriteOffItem(
    item_no=7,
    goods_status="domestic",
    **_figures(opening=D("10.500"), receipts=D("2.250"), issues=D("12.750")),
    closing_book=D("0.000"),
    counted=None,
    difference=None,
    consumption_check=[],
)
SHORTAGE = AssessedShortage(
    item_no=1,
    hs_code="8471300000",
    quantity=D("17"),
    unit_price=D("412.5000"),
    currency="USD",
    exchange_rate=D("7.1034"),
    customs_value_cny=D("49812.59"),
    tariff_rate=D("0.050"),
    tariff=D("2490.63"),
    consumption_rate=D("0"),
    consumption_tax=D("0.00"),
    vat_rate=D("0.13"),
    vat=D("6799.42"),
    valued_by="officer",
)
CERTIFICATION = Certification(
    result="differences_assessed",
    reason="短缺17台 shortage of 17 laptops assessed",
    officer="officer-wang",
    certified_at=datetime(2026, 7, 15, 10, 5, tzinfo=SHANGHAI),
    assessed=[SHORTAGE],
    tax=D("9290.05"),
    bill_id=BILL,
    movement_id=UUID("3e2d1c0b-9a8f-4e7d-8c6b-5a4f3e2d1c0b"),
    alignment=[BookAlignment(item_no=1, goods_status="bonded", wanted=D("-17"), adjusted=D("-17"))],
)
VIEW = WriteOffView(
    write_off_id=WRITE_OFF,
    account_book="T5101W000123",
    enterprise="91610131MA6W2R7X0K",
    zone="XCBZ",
    period=WriteOffPeriod(from_=date(2026, 1, 1), to=date(2026, 6, 30)),
    status="differences_assessed",
    items=[LAPTOPS, BAGS],
    consumption_deviations=[CHECK],
    unchecked_processing=3,
    note="半年核销 half-year write-off",
    submitted_by="clerk-li",
    submitted_at=datetime(2026, 7, 2, 9, 30, tzinfo=SHANGHAI),
    position=POSITION,
    head_hash=HEAD_HASH,
    certification=CERTIFICATION,
)


def _rows(text: str) -> list[list[str]]:
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:], newline="")))


def _pdf_text(data: bytes) -> str:
    """All pages' text, every run of blanks and line breaks one space."""
    reader = pypdf.PdfReader(io.BytesIO(data))
    return " ".join(" ".join(page.extract_text() for page in reader.pages).split())


# -- CSV --------------------------------------------------------------------------------------


def test_the_csv_has_the_header_and_every_figure_of_each_row():
    text = render_csv(VIEW, ITEMS)
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", "")
    rows = _rows(text)
    assert rows[0] == list(CSV_HEADER)
    assert rows[1] == [
        "1", "8471300000", "笔记本电脑", "C62", "bonded",
        "1204", "380", "295", "42", "0", "0", "0", "7", "0", "1240", "1223", "-17",
    ]  # fmt: skip
    assert rows[2] == [
        "7", "3923100000", "'" + INJECTION, "KGM", "domestic",
        "10.500", "2.250", "12.750", "0", "0", "0", "0", "0", "0", "0.000", "", "",
    ]  # fmt: skip
    assert len(rows) == 3


def test_the_csv_writes_decimals_in_plain_notation_and_an_unknown_item_blank():
    item = msgspec.structs.replace(LAPTOPS, item_no=99, opening=D("1E+3"), counted=D("2.5E-4"))
    rows = _rows(render_csv(msgspec.structs.replace(VIEW, items=[item]), ITEMS))
    assert rows[1][:6] == ["99", "", "", "", "bonded", "1000"]
    assert rows[1][CSV_HEADER.index("counted")] == "0.00025"


@pytest.mark.parametrize(
    ("text", "guarded"),
    [
        ("=1+1", True),
        ("+86 29 1234", True),
        ("-3", True),
        ("@SUM(A1)", True),
        ("\tx", True),
        ("\rx", True),
        (" \u00a0\u3000=x", True),
        ("\uff1d1+1", True),
        ("\uff0b1", True),
        ("\uff0d1", True),
        ("\uff20x", True),
        ("笔记本电脑", False),
        ("a=b", False),
        ("", False),
        ("   ", False),
    ],
)
def test_cells_a_spreadsheet_would_run_as_formulas_start_with_a_quote(text, guarded):
    assert cell(text) == ("'" + text if guarded else text)


# -- PDF --------------------------------------------------------------------------------------


def test_the_pdf_carries_the_figures_the_assessment_and_the_log_position():
    data = render_pdf(VIEW, ITEMS)
    assert data.startswith(b"%PDF")
    text = _pdf_text(data)
    words = set(text.split())
    # Each item's row, cell by cell (reportlab draws a table row by row, left to right): the
    # opening, the movements, the closing on the book, the count and the difference.
    assert "1 8471300000 笔记本电脑 C62 bonded 1204 380 295 42 0 7 0 1240 1223 -17" in text
    assert (
        f"7 3923100000 {INJECTION} KGM domestic 10.500 2.250 12.750 0 0 0 0 0.000 not counted"
        in text
    )
    # The shortage among the differences.
    assert "1 8471300000 笔记本电脑 bonded 1240 1223 -17" in text
    # The consumption check: the line beyond tolerance, and the processing without a BOM.
    assert {"BOM-KIT-01", "0.050000", "0.030000", "yes"} <= words
    assert "Processing movements without a BOM (consumption unchecked): 3" in text
    # The assessment: customs value, tariff, VAT, the total and the bill.
    assert {"49812.59", "2490.63", "6799.42", "412.5000", "7.1034", "officer"} <= words
    assert f"Total tax: 9290.05 CNY; tax bill: {BILL}" in text
    # The certification and the alignment it made.
    assert "Result: differences_assessed" in text
    assert "item status wanted adjusted 1 bonded -17 -17" in text
    assert "Officer: officer-wang" in text
    assert "Certified at: 2026-07-15T10:05:00+08:00" in text
    assert "Reason: 短缺17台 shortage of 17 laptops assessed" in text
    # The header and the auditor's footing.
    for fact in ("T5101W000123", "91610131MA6W2R7X0K", "XCBZ", "2026-01-01 to 2026-06-30"):
        assert fact in text
    assert f"Computed at log position {POSITION}, head hash {HEAD_HASH}" in text
    assert f"the link at position {POSITION} must carry the head hash" in " ".join(text.split())
    assert "customs-ledger replay --as-of" in text


def test_the_pdf_text_in_chinese_and_the_formula_like_name_come_out_as_written():
    # pypdf maps STSong-Light's UniGB-UCS2-H codes back to Unicode, so the Chinese is
    # extractable (and searchable in a viewer) without embedding a font.
    text = _pdf_text(render_pdf(VIEW, ITEMS))
    assert "Write-off report 核销报告" in text
    assert "笔记本电脑" in text
    assert "半年核销 half-year write-off" in text
    # A PDF runs no formulas: the name is printed as the book has it.
    assert INJECTION in text and "'" + INJECTION not in text


def test_a_write_off_not_certified_says_so_and_assesses_nothing():
    view = msgspec.structs.replace(VIEW, status="submitted", certification=None)
    text = _pdf_text(render_pdf(view, ITEMS))
    assert "Certification not certified yet" in text
    assert "Status submitted" in text
    assert "Total tax" not in text and "officer-wang" not in text
    # The shortage is still listed among the differences.
    assert "1 8471300000 笔记本电脑 bonded 1240 1223 -17" in text


def test_the_pdf_names_the_write_off_and_is_the_same_for_the_same_view():
    data = render_pdf(VIEW, ITEMS)
    meta = pypdf.PdfReader(io.BytesIO(data)).metadata
    assert meta is not None
    assert meta.title == f"customs-ledger write-off {WRITE_OFF}"
    assert meta.author == f"customs-ledger write-off {WRITE_OFF}"
    assert render_pdf(VIEW, ITEMS) == data


def test_a_view_with_no_rows_no_checks_and_no_differences_says_none():
    view = msgspec.structs.replace(
        VIEW, items=[], consumption_deviations=[], unchecked_processing=0, certification=None
    )
    text = _pdf_text(render_pdf(view, ITEMS))
    assert "Items by goods status" in text
    assert "Consumption check none" in text
    assert "Differences and assessment none" in text
    assert render_csv(view, ITEMS) == "\ufeff" + ",".join(CSV_HEADER) + "\r\n"
