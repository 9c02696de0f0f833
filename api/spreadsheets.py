"""Spreadsheets out: a read's answer as a CSV or an XLSX file (issue #20 item 3, decision 0031).

A route builds one or more `Sheet`s (a title, a header row, rows of typed values) and answers
them with `file_response` when the caller asked `?format=csv` or `?format=xlsx`:

- **CSV**: UTF-8 after a byte order mark (so that Excel reads Chinese names as UTF-8), RFC 4180
  quoting by the csv module, CRLF line ends, a header row. Decimals in plain notation (never an
  exponent), instants in China time with their offset (`2026-11-27T09:30:00.123456+08:00`),
  days as `2026-11-27`, nothing for a missing value. Only the first sheet.
- **XLSX** (openpyxl, write-only mode): one worksheet per sheet, the header row bold and
  frozen; numbers are number cells, written in the file as the JSON writes them (the decimal's
  own digits, not a binary float's) with a number format showing its decimals, as long as
  Excel can hold them exactly (at most 15 significant digits); a longer one is a text cell of
  the same digits. Instants are date cells in China time (Excel has no time zones: the header
  says `(UTC+8)`, in Chinese `北京时间`), to the millisecond (Excel's precision); days are
  date cells.

The header row and the worksheets' names are in the request's language (api/i18n.py: zh-CN when
`Accept-Language` asks for Chinese, else English): a route names its columns by key and
`Sheet.of` writes each as api/spreadsheet_headers.py says, the one table of every column a
file of the ledger has. The English headers are the ones the files had before there was a
Chinese one, so a client that sends no `Accept-Language` reads the same header as ever. The
data rows never change with the language.

Every text cell, in both formats, goes through `guard`: a text a spreadsheet would run as a
formula starts with an apostrophe, and so does one that already started with an apostrophe, so
that `unguard` gives back the original of any cell. In XLSX a text cell is never a formula
anyway (an inline string, never `<f>`); the apostrophe is there too so that editing the cell,
copying it or saving the sheet as CSV cannot turn it into one.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import Query
from fastapi.responses import Response

# openpyxl ships no type hints (no py.typed, no stubs in the lock): its names are Any here.
from openpyxl import Workbook  # type: ignore[import-untyped]
from openpyxl.cell import WriteOnlyCell  # type: ignore[import-untyped]
from openpyxl.styles import Font  # type: ignore[import-untyped]
from openpyxl.utils import get_column_letter  # type: ignore[import-untyped]
from starlette.concurrency import run_in_threadpool

from api.i18n import Language, language
from api.spreadsheet_headers import header, title
from domain.declaration import SHANGHAI

CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
BOM = "\ufeff"
# The most rows one file holds: a list's file is its rows from `cursor` on, up to this many,
# and `X-Next-Cursor` names where the next file starts when more remain.
EXPORT_ROWS = 10_000
# The significant digits Excel keeps of a number: a decimal with more is written as text.
EXCEL_DIGITS = 15
NEXT_CURSOR_HEADER = "X-Next-Cursor"

FileFormat = Literal["csv", "xlsx"]
Format = Annotated[
    Literal["json", "csv", "xlsx"],
    Query(
        description="`json` (default), `csv` (UTF-8 with a byte order mark) or `xlsx`"
        " (typed cells): docs/api.md, 'Spreadsheets'"
    ),
]
Cell = str | int | Decimal | datetime | date | bool | None

# -- The formula guard -------------------------------------------------------------------------

# What a spreadsheet takes for the start of a formula (OWASP CSV injection), also in the full
# width a Chinese or Japanese input method types (U+FF1D, U+FF0B, U+FF0D, U+FF20).
FORMULA_START = frozenset("=+-@\uff1d\uff0b\uff0d\uff20")
# Control characters some spreadsheets act on at the start of a cell, whatever follows.
CONTROL_START = frozenset("\t\r\n")
GUARD = "'"
# The blanks a spreadsheet may skip before a formula: every Unicode space (space, no-break,
# ideographic, figure, narrow no-break, ..., tab, CR, LF) and the zero-width characters.
BLANKS = (
    "".join(c for c in map(chr, range(0x3001)) if c.isspace()) + "\u200b\u200c\u200d\u2060\ufeff"
)


def guard(text: str) -> str:
    """The text as a spreadsheet cell that is never run as a formula: a text whose first
    character past any blanks starts a formula, or that starts with a tab, CR or LF, gets a
    leading apostrophe; so does one that starts with an apostrophe, so that `unguard` is exact."""
    first = text[:1]
    if first == GUARD or first in CONTROL_START or text.lstrip(BLANKS)[:1] in FORMULA_START:
        return GUARD + text
    return text


def unguard(cell: str) -> str:
    """The text a guarded cell was made from: without one leading apostrophe, if it has one."""
    return cell[1:] if cell.startswith(GUARD) else cell


# -- Sheets ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sheet:
    """A table: its title (an XLSX worksheet's name), its header and its rows of values."""

    title: str
    header: Sequence[str]
    rows: Sequence[Sequence[Cell]]

    @classmethod
    def of(
        cls,
        key: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Cell]],
        lang: Language | None = None,
    ) -> Sheet:
        """Sheet `key` of these columns (keys of api/spreadsheet_headers.py), its name and
        header in `lang`, by default the request's (`Accept-Language`)."""
        lang = lang or language()
        return cls(title(key, lang), tuple(header(c, lang) for c in columns), rows)


def china_time(moment: datetime) -> datetime:
    """An instant as China's wall clock (naive, as a spreadsheet holds it); naive as given."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(SHANGHAI).replace(tzinfo=None)


def _csv_text(value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return f"{value:f}"
    if isinstance(value, datetime):
        return value.astimezone(SHANGHAI).isoformat() if value.tzinfo else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return guard(value)


def to_csv(sheet: Sheet) -> str:
    """The sheet as RFC 4180 CSV after a UTF-8 byte order mark: a header row, CRLF line ends,
    quotes only where needed, every text cell guarded."""
    out = io.StringIO()
    out.write(BOM)
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([guard(h) for h in sheet.header])
    for row in sheet.rows:
        writer.writerow([_csv_text(v) for v in row])
    return out.getvalue()


# What XML 1.0 cannot hold (openpyxl's ILLEGAL_CHARACTERS_RE has the control characters only):
# control characters but tab, LF and CR, surrogates, U+FFFE and U+FFFF. An XLSX cell shows
# U+FFFD instead, rather than a file Excel refuses to open.
XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_BOLD = Font(bold=True)
_DATE_TIME_FORMAT = "yyyy-mm-dd hh:mm:ss"
_DATE_FORMAT = "yyyy-mm-dd"


def _text_cell(ws: Any, text: str) -> Any:
    """A string cell (never a formula), guarded; characters XML cannot hold become U+FFFD."""
    return _string_cell(ws, XML_ILLEGAL.sub("\ufffd", guard(text)))


def _string_cell(ws: Any, text: str) -> Any:
    cell = WriteOnlyCell(ws, value=text)
    cell.data_type = "s"
    return cell


def _number_format(places: int) -> str:
    return "0" if places <= 0 else "0." + "0" * places


def _xlsx_cell(ws: Any, value: Cell) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        # A number's digits as text (never guarded: they are no formula, and stay digits).
        return value if abs(value) < 10**EXCEL_DIGITS else _string_cell(ws, str(value))
    if isinstance(value, Decimal):
        text = f"{value:f}"
        if not value.is_finite() or len(value.normalize().as_tuple().digits) > EXCEL_DIGITS:
            return _string_cell(ws, text)
        # The decimal's own text as the cell's value: openpyxl would write a float with 16
        # digits ("%.16g"), which is not always the decimal read back.
        cell = WriteOnlyCell(ws, value=text)
        cell.data_type = "n"
        exponent = value.as_tuple().exponent
        cell.number_format = _number_format(-exponent if isinstance(exponent, int) else 0)
        return cell
    if isinstance(value, datetime):
        cell = WriteOnlyCell(ws, value=china_time(value))
        cell.number_format = _DATE_TIME_FORMAT
        return cell
    if isinstance(value, date):
        cell = WriteOnlyCell(ws, value=value)
        cell.number_format = _DATE_FORMAT
        return cell
    return _text_cell(ws, value)


def _title(title: str) -> str:
    """A worksheet name Excel takes: at most 31 characters, none of `[]:*?/\\`."""
    return re.sub(r"[\[\]:*?/\\]", "_", title)[:31] or "sheet"


def _width(text: str) -> int:
    """How many character widths a text takes in a column: a Chinese character two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def to_xlsx(sheets: Sequence[Sheet]) -> bytes:
    """The sheets as an XLSX workbook, one worksheet each, header bold and frozen."""
    wb = Workbook(write_only=True)
    for sheet in sheets:
        ws = wb.create_sheet(_title(sheet.title))
        ws.freeze_panes = "A2"
        for n, name in enumerate(sheet.header, start=1):
            ws.column_dimensions[get_column_letter(n)].width = min(max(_width(name) + 2, 10), 40)
        head = []
        for name in sheet.header:
            cell = _text_cell(ws, name)
            cell.font = _BOLD
            head.append(cell)
        ws.append(head)
        for row in sheet.rows:
            ws.append([_xlsx_cell(ws, v) for v in row])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


# -- Answers -----------------------------------------------------------------------------------


def file_name(stem: str, extension: str) -> str:
    """A file name safe in a header and on any file system: ASCII letters, digits, `._+-`."""
    return re.sub(r"[^A-Za-z0-9._+-]", "_", stem)[:150] + "." + extension


def file_part(moment: datetime | None, missing: str) -> str:
    """An instant in a file name: its date, with the time when it is not midnight."""
    if moment is None:
        return missing
    if (moment.hour, moment.minute, moment.second, moment.microsecond) == (0, 0, 0, 0):
        return moment.date().isoformat()
    return moment.strftime("%Y-%m-%dT%H%M%S%z")


async def file_response(
    fmt: FileFormat,
    sheets: Sequence[Sheet],
    stem: str,
    *,
    position: int | None = None,
    next_cursor: str | None = None,
) -> Response:
    """The sheets as a CSV (the first only) or XLSX attachment named `stem`, rendered off the
    event loop, with `X-Ledger-Position` and, when given, `X-Next-Cursor`. The header row
    is in the request's language (`Sheet.of`): the answer says which, and that it varies."""
    headers = {
        "Content-Disposition": f'attachment; filename="{file_name(stem, fmt)}"',
        "Content-Language": language(),
        "Vary": "Accept-Language",
    }
    if position is not None:
        headers["X-Ledger-Position"] = str(position)
    if next_cursor is not None:
        headers[NEXT_CURSOR_HEADER] = next_cursor
    if fmt == "csv":
        text = await run_in_threadpool(to_csv, sheets[0])
        return Response(text, media_type=CSV_MEDIA_TYPE, headers=headers)
    body = await run_in_threadpool(to_xlsx, sheets)
    return Response(body, media_type=XLSX_MEDIA_TYPE, headers=headers)


def export_limit() -> int:
    """How many rows a list's file reads: one more than it holds, to know whether more remain."""
    return EXPORT_ROWS + 1


def bounded(rows: list[tuple[int, Any]]) -> tuple[list[tuple[int, Any]], str | None]:
    """A list's rows read with `limit=export_limit()`: the first EXPORT_ROWS, and the cursor
    the next file starts from when there were more."""
    if len(rows) <= EXPORT_ROWS:
        return rows, None
    kept = rows[:EXPORT_ROWS]
    return kept, str(kept[-1][0])


# -- OpenAPI -----------------------------------------------------------------------------------

CSV_CONTENT = {"text/csv": {"schema": {"type": "string"}}}
XLSX_CONTENT = {XLSX_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}}
FILE_HEADERS: dict[str, Any] = {
    "Content-Disposition": {
        "description": 'With `format=csv` or `format=xlsx`: attachment; filename="..."',
        "required": False,
        "schema": {"type": "string", "pattern": '^attachment; filename="[^"]+"$'},
    },
    "Content-Language": {
        "description": "With `format=csv` or `format=xlsx`: the language of the header row"
        " (`Accept-Language`: zh-CN for Chinese, en otherwise); the rows never change with it",
        "required": False,
        "schema": {"type": "string", "enum": ["en", "zh-CN"]},
    },
    NEXT_CURSOR_HEADER: {
        "description": "A file that stopped at its bound: the `cursor` the next one starts from",
        "required": False,
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    },
}


def with_files(kwargs: dict[str, Any]) -> dict[str, Any]:
    """A `doc()`'s route keywords whose 200 answer may also be a CSV and an XLSX file."""
    ok = kwargs["responses"][200]
    ok["content"].update({**CSV_CONTENT, **XLSX_CONTENT})
    ok["headers"] = {**ok.get("headers", {}), **FILE_HEADERS}
    ok["description"] = "OK: JSON, or with `format` a CSV or XLSX file"
    return kwargs


# -- Papers ------------------------------------------------------------------------------------

# The columns of the papers goods moved under (`documents: [{kind, id, number}]` of entries
# and trace events), by kind; any other kind (an adjustment's reason) in `other_documents`.
PAPER_COLUMNS = (
    ("declaration", "declaration_no"),
    ("checklist", "checklist_no"),
    ("gate_pass", "gate_pass_no"),
    ("gate_note", "gate_note"),
    ("transport", "transport_reference"),
    ("container", "container"),
)
PAPER_COLUMN_KEYS = (*(name for _, name in PAPER_COLUMNS), "other_documents")
_PAPER_KINDS = {kind for kind, _ in PAPER_COLUMNS}


def paper_cells(documents: Sequence[dict[str, str]]) -> tuple[str | None, ...]:
    """The papers as the cells of PAPER_COLUMN_KEYS: each kind's numbers (two of a kind joined by
    `; `), the others as `kind: number`."""

    def joined(values: list[str]) -> str | None:
        return "; ".join(values) if values else None

    by_kind = [
        joined([d.get("number") or d.get("id", "") for d in documents if d.get("kind") == kind])
        for kind, _ in PAPER_COLUMNS
    ]
    others = [
        f"{d.get('kind', '')}: {d.get('number') or d.get('id', '')}"
        for d in documents
        if d.get("kind") not in _PAPER_KINDS
    ]
    return (*by_kind, joined(others))
