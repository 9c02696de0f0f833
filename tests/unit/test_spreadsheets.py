"""api/spreadsheets.py: the formula guard, the CSV writer and the XLSX writer, on tables built
by hand and on drawn text and numbers."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import openpyxl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.spreadsheets import (
    BLANKS,
    EXCEL_DIGITS,
    FORMULA_START,
    GUARD,
    PAPER_COLUMN_KEYS,
    XML_ILLEGAL,
    Sheet,
    file_name,
    guard,
    paper_cells,
    to_csv,
    to_xlsx,
    unguard,
)

D = Decimal
# The cases, each before a formula: `= + - @`, behind spaces, a no-break space, in
# full width; and the control characters spreadsheets act on.
DANGEROUS = [
    "=1+1",
    "+1",
    "-1+2",
    "@SUM(A1)",
    "  =1+1",
    "\u00a0=1+1",
    "\uff1d1+1",
    "\uff0b1",
    "\uff0d1",
    "\uff20x",
    "\u3000=x",
    "\u2007\u202f=x",
    "\u200b=x",
    "\tx",
    "\rx",
    "\nx",
    " \t=x",
    "'=1",  # already quoted: quoted again, so that unguard gives it back
    "'",
]
HARMLESS = ["", "   ", "笔记本电脑", "a=b", "1-2", 'Valves, "brass"', "x'", "\u00a0x"]


@pytest.mark.parametrize("text", DANGEROUS)
def test_text_a_spreadsheet_would_run_starts_with_the_guard(text):
    assert guard(text) == GUARD + text
    assert unguard(guard(text)) == text


@pytest.mark.parametrize("text", HARMLESS)
def test_other_text_is_left_as_it_is(text):
    assert guard(text) == text == unguard(text)


formula_like = st.builds(
    lambda blanks, start, rest: blanks + start + rest,
    st.text(alphabet=BLANKS, max_size=4),
    st.sampled_from(sorted(FORMULA_START)),
    st.text(max_size=20),
)


@given(st.one_of(st.text(), formula_like))
def test_no_guarded_text_starts_a_formula_and_each_is_given_back(text):
    cell = guard(text)
    # Never a formula after blanks, unless the guard comes first (then it is text).
    assert cell.startswith(GUARD) or cell.lstrip(BLANKS)[:1] not in FORMULA_START
    assert cell.startswith(GUARD) or cell[:1] not in ("\t", "\r", "\n")
    assert cell in (text, GUARD + text)
    assert unguard(cell) == text


@given(formula_like)
def test_every_formula_behind_blanks_is_guarded(text):
    assert guard(text) == GUARD + text


def _read_csv(text: str) -> list[list[str]]:
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:], newline="")))


def test_the_csv_has_a_bom_crlf_rfc4180_quoting_and_typed_values_as_text():
    moment = datetime(2026, 11, 27, 1, 30, 0, 123456, tzinfo=UTC)
    sheet = Sheet(
        "t",
        ("text", "number", "decimal", "instant", "day", "none", "flag"),
        [
            ('Valves, "brass"\nline two', 7, D("1E+3"), moment, date(2026, 11, 27), None, True),
            ("=HYPERLINK(1)", -3, D("0.00025"), moment.replace(tzinfo=None), None, None, False),
        ],
    )
    text = to_csv(sheet)
    assert text.startswith("\ufefftext,number,")
    assert text.endswith("\r\n") and '"Valves, ""brass""\nline two"' in text
    rows = _read_csv(text)
    assert rows[1] == [
        'Valves, "brass"\nline two',
        "7",
        "1000",
        "2026-11-27T09:30:00.123456+08:00",  # China time, exact, with its offset
        "2026-11-27",
        "",
        "true",
    ]
    assert rows[2] == [
        "'=HYPERLINK(1)",
        "-3",
        "0.00025",
        "2026-11-27T01:30:00.123456",
        "",
        "",
        "false",
    ]
    assert text.encode("utf-8").startswith(b"\xef\xbb\xbf")


@given(
    st.lists(
        st.lists(
            st.one_of(st.text(), st.integers(), st.decimals(allow_nan=False, allow_infinity=False)),
            min_size=3,
            max_size=3,
        ),
        max_size=5,
    )
)
def test_a_csv_parses_back_equal(rows):
    text = to_csv(Sheet("t", ("a", "b", "c"), rows))
    back = _read_csv(text)
    assert back[0] == ["a", "b", "c"]
    for got, wanted in zip(back[1:], rows, strict=True):
        for cell, value in zip(got, wanted, strict=True):
            if isinstance(value, str):
                assert unguard(cell) == value
            else:
                assert Decimal(cell) == value


def _load(sheets: list[Sheet]) -> openpyxl.Workbook:
    return openpyxl.load_workbook(io.BytesIO(to_xlsx(sheets)))


def test_the_xlsx_has_a_bold_frozen_header_and_typed_cells():
    moment = datetime(2026, 11, 27, 1, 30, 0, 123456, tzinfo=UTC)
    beijing = datetime(2026, 11, 27, 9, 30, tzinfo=timezone(timedelta(hours=8)))
    rows = [
        ("笔记本电脑", 7, D("420.50"), moment, date(2026, 11, 27), None, True),
        ("=1+1", 10**15, D("123456789012345.12345"), beijing, None, D("-3"), False),
        ("a\x01b\uffff", -(10**15) + 1, D("1E+3"), moment, None, D("0.00025"), None),
    ]
    header = ("text", "int", "decimal", "instant", "day", "more", "flag")
    wb = _load([Sheet("a sheet: [1]", header, rows), Sheet("second", ("x",), [])])
    assert wb.sheetnames == ["a sheet_ _1_", "second"]
    ws = wb.worksheets[0]
    assert ws.freeze_panes == "A2"
    (head,) = ws.iter_rows(max_row=1)
    assert [c.value for c in head] == list(header) and all(c.font.b for c in head)
    r1, r2, r3 = list(ws.iter_rows(min_row=2))
    assert (r1[0].data_type, r1[0].value) == ("s", "笔记本电脑")
    assert (r1[1].data_type, r1[1].value) == ("n", 7)
    assert (r1[2].data_type, r1[2].value, r1[2].number_format) == ("n", 420.5, "0.00")
    assert r1[3].is_date and r1[3].value == datetime(2026, 11, 27, 9, 30, 0, 123000)
    assert r1[3].number_format == "yyyy-mm-dd hh:mm:ss"
    assert r1[4].is_date and r1[4].value == datetime(2026, 11, 27)
    assert r1[4].number_format == "yyyy-mm-dd"
    assert r1[5].value is None and r1[6].value is True
    assert (r2[0].data_type, r2[0].value) == ("s", "'=1+1")
    assert (r2[1].data_type, r2[1].value) == ("s", str(10**15))  # more than Excel keeps: text
    assert (r2[2].data_type, r2[2].value) == ("s", "123456789012345.12345")
    assert r2[3].value == datetime(2026, 11, 27, 9, 30)
    assert (r2[5].value, r2[5].number_format) == (-3, "0")
    assert (r3[0].data_type, r3[0].value) == ("s", "a\ufffdb\ufffd")  # XML holds no \x01, \uffff
    assert (r3[1].data_type, r3[1].value) == ("n", -(10**15) + 1)
    assert (r3[2].value, r3[2].number_format) == (1000, "0")
    assert (r3[5].value, r3[5].number_format) == (0.00025, "0.00000")
    assert wb["second"].max_row == 1


def test_no_text_cell_is_ever_a_formula_in_the_xlsx():
    rows = [(text,) for text in DANGEROUS]
    data = to_xlsx([Sheet("s", ("name",), rows)])
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        xml = z.read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in xml and "<f " not in xml
    ws = openpyxl.load_workbook(io.BytesIO(data)).active
    for (cell,), text in zip(ws.iter_rows(min_row=2), DANGEROUS, strict=True):
        assert cell.data_type == "s"
        assert unguard(cell.value) == text.replace("\r", "\n")  # XML reads CR as LF


@given(st.lists(st.one_of(st.text(), formula_like), min_size=1, max_size=10))
def test_any_text_is_a_string_cell_never_a_formula_and_reads_back(texts):
    data = to_xlsx([Sheet("s", ("name",), [(t,) for t in texts])])
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        xml = z.read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in xml and "<f " not in xml
    ws = openpyxl.load_workbook(io.BytesIO(data)).active
    for (cell,), text in zip(ws.iter_rows(min_row=2), texts, strict=True):
        assert cell.data_type == "s" or (text == "" and cell.value is None)
        # The guarded text, but what XML cannot hold (U+FFFD instead) and its line ends (LF).
        written = XML_ILLEGAL.sub("\ufffd", guard(text))
        assert (cell.value or "") == written.replace("\r\n", "\n").replace("\r", "\n")


excel_decimals = st.decimals(
    min_value=D("-999999999999999"),
    max_value=D("999999999999999"),
    places=5,
    allow_nan=False,
    allow_infinity=False,
)


@given(st.lists(excel_decimals, min_size=1, max_size=20))
def test_decimals_read_back_equal_as_numbers_or_as_their_digits(values):
    """Figure for figure: a decimal of at most 15 digits is a number cell that reads back as
    the same number; a longer one is a text cell of its digits."""
    ws = _load([Sheet("s", ("x",), [(v,) for v in values])]).active
    for (cell,), value in zip(ws.iter_rows(min_row=2), values, strict=True):
        assert Decimal(str(cell.value)) == value
        short = len(value.normalize().as_tuple().digits) <= EXCEL_DIGITS
        assert cell.data_type == ("n" if short else "s")


def test_papers_are_columns_by_kind():
    documents = [
        {"kind": "declaration", "id": "u1", "number": "900720261000000042"},
        {"kind": "gate_note", "id": "G1", "number": "G1"},
        {"kind": "container", "id": "TGHU1234567", "number": "TGHU1234567"},
        {"kind": "container", "id": "MSCU7654321", "number": "MSCU7654321"},
        {"kind": "adjustment", "id": "m1", "number": "stocktake"},
    ]
    cells = dict(zip(PAPER_COLUMN_KEYS, paper_cells(documents), strict=True))
    assert cells == {
        "declaration_no": "900720261000000042",
        "checklist_no": None,
        "gate_pass_no": None,
        "gate_note": "G1",
        "transport_reference": None,
        "container": "TGHU1234567; MSCU7654321",
        "other_documents": "adjustment: stocktake",
    }


def test_file_names_are_safe():
    assert file_name('B1/../"x"\r\n红', "csv") == "B1_..__x____.csv"
