"""A write-off (核销, domain/write_offs.py) as a CSV file and as a PDF report.

The CSV is the write-off's figures, one row per item and customs status, for spreadsheets and
reconciliation tools. The PDF is the report an enterprise files and an auditor reads: the
header, the figures by goods status, the consumption check against the BOMs, the differences
and what the officer assessed of them, the certification, and where in the log the figures
were computed (so the auditor can replay the log to that position and compare).

Both take the items' descriptions (HS code, name, unit) from the caller: the view carries only
item numbers, and the book that describes them is the read side's. Item and enterprise names
are often Chinese, so the PDF sets each run of Chinese in reportlab's built-in CID font
STSong-Light (Adobe-GB1: no font file to ship, and the text stays extractable; the reader
supplies the glyphs) and the rest in Helvetica. The CSV and the XLSX are the same table
(`sheet`), written by api/spreadsheets.py: the CSV after a byte order mark so that Excel reads
it as UTF-8, the XLSX with number cells; text cells guarded against formula injection in both.
"""

from __future__ import annotations

import functools
import io
import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, NamedTuple
from xml.sax.saxutils import escape

# reportlab ships no type hints (no py.typed, no stubs in the lock): its names are Any here.
from reportlab.lib import colors  # type: ignore[import-untyped]
from reportlab.lib.pagesizes import A4, landscape  # type: ignore[import-untyped]
from reportlab.lib.styles import ParagraphStyle  # type: ignore[import-untyped]
from reportlab.lib.units import mm  # type: ignore[import-untyped]
from reportlab.pdfbase import pdfmetrics  # type: ignore[import-untyped]
from reportlab.pdfbase.cidfonts import UnicodeCIDFont  # type: ignore[import-untyped]
from reportlab.platypus import (  # type: ignore[import-untyped]
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from api.spreadsheets import Sheet, guard, to_csv
from domain.write_offs import (
    AssessedShortage,
    Certification,
    ConsumptionLine,
    WriteOffItem,
    WriteOffView,
)

# (hs_code, name, unit) of an item of the book, by item number.
ItemInfo = tuple[str, str, str]

CSV_HEADER = (
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
)
_NO_ITEM: ItemInfo = ("", "", "")

FONT = "STSong-Light"
LATIN = "Helvetica"
# Chinese characters, CJK punctuation and full-width forms: the runs set in the CID font.
_CJK = re.compile("[\u2e80-\u9fff\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef]+")
_MARGIN = 12 * mm
_GRID = colors.Color(0.55, 0.55, 0.55)
_HEAD_FILL = colors.Color(0.9, 0.9, 0.9)
_BEYOND_FILL = colors.Color(1.0, 0.88, 0.88)


# -- CSV and XLSX -----------------------------------------------------------------------------

# Text a spreadsheet would run as a formula starts with a quote (OWASP CSV injection): the one
# guard of every file the API writes (api/spreadsheets.py).
cell = guard


def _num(d: Decimal | None) -> str:
    """A decimal in plain notation (never 1E+3), None as nothing."""
    return "" if d is None else f"{d:f}"


def _figures(i: WriteOffItem) -> tuple[Decimal | None, ...]:
    """The item's figures in the order of CSV_HEADER, from `opening` on."""
    return (
        i.opening,
        i.receipts,
        i.issues,
        i.consumed,
        i.produced,
        i.by_products,
        i.scrap_made,
        i.scrap,
        i.adjustments,
        i.closing_book,
        i.counted,
        i.difference,
    )


def sheet(view: WriteOffView, items: dict[int, ItemInfo]) -> Sheet:
    """The write-off's rows (columns `CSV_HEADER`, headed in the request's language: in
    English the keys themselves), in the view's order; an item not counted has `counted` and
    `difference` empty."""
    rows = [
        (i.item_no, *items.get(i.item_no, _NO_ITEM), i.goods_status, *_figures(i))
        for i in view.items
    ]
    return Sheet.of("write-off", CSV_HEADER, rows)


def render_csv(view: WriteOffView, items: dict[int, ItemInfo]) -> str:
    """The write-off's rows as RFC 4180 CSV (header `CSV_HEADER`), in the view's order: the
    decimals in plain notation, an item not counted with `counted` and `difference` empty,
    the text cells guarded against formula injection, after a UTF-8 byte order mark."""
    return to_csv(sheet(view, items))


# -- PDF --------------------------------------------------------------------------------------


class _Styles(NamedTuple):
    title: Any
    heading: Any
    body: Any
    cell: Any


@functools.cache
def _styles() -> _Styles:
    """The report's paragraph styles, all in the CID font (registered once per process)."""
    pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    # Body text breaks at spaces only, so a number or a hash is never split across lines (a
    # run of Chinese longer than a line is still split); item names in cells break anywhere.
    body = ParagraphStyle("body", fontName=LATIN, fontSize=9, leading=12)
    return _Styles(
        title=ParagraphStyle("title", parent=body, fontSize=16, leading=20, spaceAfter=6),
        heading=ParagraphStyle(
            "heading", parent=body, fontSize=11, leading=14, spaceBefore=10, spaceAfter=4
        ),
        body=body,
        cell=ParagraphStyle("cell", parent=body, fontSize=7, leading=8.5, wordWrap="CJK"),
    )


def _p(text: str, style: Any) -> Any:
    """A paragraph of plain text (escaped: a name may hold `<` or `&`), Latin text in Helvetica
    and each run of Chinese in the CID font: a reader without a Chinese font then still sets
    the Latin text and the figures properly."""
    marked = _CJK.sub(lambda m: f'<font name="{FONT}">{m.group(0)}</font>', escape(text))
    return Paragraph(marked, style)


def _table(
    header: Sequence[str], rows: Sequence[Sequence[Any]], widths: Sequence[float] | None = None
) -> Any:
    """A gridded table in the CID font with a shaded header row repeated on every page."""
    s = _styles()
    data = [[_p(h, s.cell) for h in header], *rows]
    table = Table(data, colWidths=widths, repeatRows=1, hAlign="LEFT")
    table.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, -1), LATIN),
                ("FONTSIZE", (0, 0), (-1, -1), 7),
                ("LEADING", (0, 0), (-1, -1), 8.5),
                ("GRID", (0, 0), (-1, -1), 0.4, _GRID),
                ("BACKGROUND", (0, 0), (-1, 0), _HEAD_FILL),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    return table


def _header_section(view: WriteOffView) -> list[Any]:
    """The title and who, which book, where and when."""
    s = _styles()
    period = f"{view.period.from_.isoformat()} to {view.period.to.isoformat()}"
    submitted = f"{view.submitted_by} at {view.submitted_at.isoformat()}"
    rows = [
        ("Write-off", str(view.write_off_id)),
        ("Enterprise (USCC)", view.enterprise),
        ("Account book", view.account_book),
        ("Zone", view.zone),
        ("Period", period),
        ("Status", view.status),
        ("Submitted by", submitted),
        ("Note", view.note if view.note is not None else "none"),
    ]
    data = [[_p(k, s.body), _p(v, s.body)] for k, v in rows]
    block = Table(data, colWidths=[40 * mm, 160 * mm], hAlign="LEFT")
    block.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP")]))
    return [_p("Write-off report 核销报告", s.title), block]


_ITEM_HEADER = (
    "item",
    "HS code",
    "name",
    "unit",
    "status",
    "opening",
    "receipts",
    "issues",
    "consumed",
    "produced",
    "scrap",
    "adjustments",
    "closing (book)",
    "counted",
    "difference",
)
_ITEM_WIDTHS = [10 * mm, 19 * mm, 40 * mm, 11 * mm, 15 * mm] + [17.7 * mm] * 10


def _item_row(i: WriteOffItem, info: ItemInfo) -> list[Any]:
    hs_code, name, unit = info
    figures = (i.opening, i.receipts, i.issues, i.consumed, i.produced, i.scrap, i.adjustments)
    counted = _num(i.counted) if i.counted is not None else "not counted"
    return [
        str(i.item_no),
        hs_code,
        _p(name, _styles().cell),
        unit,
        i.goods_status,
        *map(_num, figures),
        _num(i.closing_book),
        counted,
        _num(i.difference),
    ]


def _items_section(view: WriteOffView, items: dict[int, ItemInfo]) -> list[Any]:
    """The figures per item, bonded rows first, then domestic (each by item number)."""
    s = _styles()
    ordered = sorted(view.items, key=lambda i: (i.goods_status != "bonded", i.item_no))
    rows = [_item_row(i, items.get(i.item_no, _NO_ITEM)) for i in ordered]
    equation = (
        "opening + receipts - issues - consumed + produced - scrap + adjustments = closing"
        " (book); difference = counted - closing (book), negative for a shortage."
    )
    return [
        _p("Items by goods status", s.heading),
        _p(equation, s.body),
        Spacer(1, 2 * mm),
        _table(_ITEM_HEADER, rows, _ITEM_WIDTHS) if rows else _p("none", s.body),
    ]


def _consumption_lines(view: WriteOffView) -> list[ConsumptionLine]:
    """Every BOM line checked (the bonded inputs carry them), with the deviations beyond
    tolerance the view lists, each once, by BOM, output and input."""
    lines = [line for i in view.items for line in i.consumption_check]
    lines += [line for line in view.consumption_deviations if line not in lines]
    return sorted(lines, key=lambda c: (c.bom_ref, c.output_item_no, c.input_item_no))


_CONSUMPTION_HEADER = (
    "BOM",
    "output item",
    "output quantity",
    "input item",
    "expected",
    "actual",
    "deviation",
    "tolerance",
    "beyond tolerance",
)


def _consumption_table(lines: Sequence[ConsumptionLine]) -> Any:
    rows = [
        [
            _p(c.bom_ref, _styles().cell),
            str(c.output_item_no),
            _num(c.output_quantity),
            str(c.input_item_no),
            *map(_num, (c.expected, c.actual, c.deviation, c.tolerance)),
            "yes" if c.beyond_tolerance else "no",
        ]
        for c in lines
    ]
    table = _table(_CONSUMPTION_HEADER, rows)
    beyond = [n for n, c in enumerate(lines, start=1) if c.beyond_tolerance]
    table.setStyle(TableStyle([("BACKGROUND", (0, n), (-1, n), _BEYOND_FILL) for n in beyond]))
    return table


def _consumption_section(view: WriteOffView) -> list[Any]:
    """What processing consumed against what its BOMs say it should have."""
    s = _styles()
    lines = _consumption_lines(view)
    unchecked = (
        f"Processing movements without a BOM (consumption unchecked): {view.unchecked_processing}"
    )
    return [
        _p("Consumption check", s.heading),
        _consumption_table(lines) if lines else _p("none", s.body),
        Spacer(1, 2 * mm),
        _p(unchecked, s.body),
    ]


_DIFFERENCE_HEADER = (
    "item",
    "HS code",
    "name",
    "status",
    "closing (book)",
    "counted",
    "difference",
)
_ASSESSED_HEADER = (
    "item",
    "HS code",
    "quantity",
    "unit price",
    "exchange rate",
    "customs value (CNY)",
    "tariff rate",
    "tariff",
    "consumption tax rate",
    "consumption tax",
    "VAT rate",
    "VAT",
    "valued by",
)


def _difference_rows(view: WriteOffView, items: dict[int, ItemInfo]) -> list[list[Any]]:
    rows: list[list[Any]] = []
    for i in view.items:
        if i.difference is None or i.difference == 0:
            continue
        hs_code, name, _ = items.get(i.item_no, _NO_ITEM)
        rows.append(
            [
                str(i.item_no),
                hs_code,
                _p(name, _styles().cell),
                i.goods_status,
                *map(_num, (i.closing_book, i.counted, i.difference)),
            ]
        )
    return rows


def _assessed_row(a: AssessedShortage) -> list[str]:
    return [
        str(a.item_no),
        a.hs_code,
        _num(a.quantity),
        f"{a.unit_price:f} {a.currency}",
        *map(_num, (a.exchange_rate, a.customs_value_cny, a.tariff_rate, a.tariff)),
        *map(_num, (a.consumption_rate, a.consumption_tax, a.vat_rate, a.vat)),
        a.valued_by,
    ]


def _assessment(c: Certification) -> list[Any]:
    """The duties the officer assessed on the bonded shortages, and the bill they went on."""
    s = _styles()
    bill = str(c.bill_id) if c.bill_id is not None else "none"
    return [
        Spacer(1, 3 * mm),
        _p("Assessed shortages (duties in CNY)", s.body),
        _table(_ASSESSED_HEADER, [_assessed_row(a) for a in c.assessed]),
        Spacer(1, 2 * mm),
        _p(f"Total tax: {c.tax:f} CNY; tax bill: {bill}", s.body),
    ]


def _differences_section(view: WriteOffView, items: dict[int, ItemInfo]) -> list[Any]:
    """The rows whose count differs from the book, and what was assessed of them."""
    s = _styles()
    rows = _difference_rows(view, items)
    story = [
        _p("Differences and assessment", s.heading),
        _table(_DIFFERENCE_HEADER, rows) if rows else _p("none", s.body),
    ]
    if view.certification is not None and view.certification.assessed:
        story += _assessment(view.certification)
    return story


def _certification_section(view: WriteOffView) -> list[Any]:
    """The officer's decision and how it brought the book to the count."""
    s = _styles()
    c = view.certification
    if c is None:
        return [_p("Certification", s.heading), _p("not certified yet", s.body)]
    facts = (
        ("Result", c.result),
        ("Reason", c.reason),
        ("Officer", c.officer),
        ("Certified at", c.certified_at.isoformat()),
    )
    rows = [[str(a.item_no), a.goods_status, _num(a.wanted), _num(a.adjusted)] for a in c.alignment]
    return [
        _p("Certification", s.heading),
        *(_p(f"{k}: {v}", s.body) for k, v in facts),
        Spacer(1, 2 * mm),
        _p("Book brought to the count", s.body),
        _table(("item", "status", "wanted", "adjusted"), rows) if rows else _p("none", s.body),
    ]


def _auditor_section(view: WriteOffView) -> list[Any]:
    """Where in the log the figures were computed, and how to get back there."""
    s = _styles()
    at = f"Computed at log position {view.position}, head hash {view.head_hash}"
    replay = (
        f"customs-ledger verify checks the log's chain: the link at position {view.position}"
        " must carry the head hash above. customs-ledger replay --as-of"
        f" {view.submitted_at.isoformat()} rebuilds the views as the log stood when the"
        " write-off was submitted; the book's statement for the period then gives these"
        " figures."
    )
    return [_p("For the auditor", s.heading), _p(at, s.body), _p(replay, s.body)]


def _footer(view: WriteOffView) -> Any:
    """Draws the write-off id and the page number at the foot of every page."""

    def draw(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont(LATIN, 7)
        text = f"customs-ledger write-off {view.write_off_id} - page {doc.page}"
        canvas.drawString(_MARGIN, _MARGIN / 2, text)
        canvas.restoreState()

    return draw


def render_pdf(view: WriteOffView, items: dict[int, ItemInfo]) -> bytes:
    """The write-off as a PDF report, A4 landscape, every text in the CID font; the same view
    and items give the same bytes (reportlab's invariant mode: fixed dates and document id)."""
    out = io.BytesIO()
    name = f"customs-ledger write-off {view.write_off_id}"
    doc = SimpleDocTemplate(
        out,
        pagesize=landscape(A4),
        leftMargin=_MARGIN,
        rightMargin=_MARGIN,
        topMargin=_MARGIN,
        bottomMargin=_MARGIN,
        title=name,
        author=name,
        invariant=True,
    )
    story = [
        *_header_section(view),
        *_items_section(view, items),
        *_consumption_section(view),
        *_differences_section(view, items),
        *_certification_section(view),
        *_auditor_section(view),
    ]
    footer = _footer(view)
    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return out.getvalue()
