"""The XLSX template of each import kind (GET /v1/imports/templates/{kind}.xlsx).

Sheet 1 (`数据 data`, the one an import reads): one header row, each header in both
languages in one cell ("商品编码 hs_code": a Chinese clerk reads the first word, Excel sorts
and filters one row, and an import takes either language or both), required headers in bold,
one example row, text columns formatted as text (`@`) so Excel keeps a code's leading zeros.
Sheet 2 (`说明 columns`): each column's meaning in Chinese and English, its type, whether it
is required and its example; then how rows make a document, and the kind's own notes (a
movements sheet: which columns each movement kind reads).
"""

from __future__ import annotations

import io

from domain import imports as im

CELL_TYPES = {
    "text": ("文本", "text"),
    "code": ("代码(文本)", "code (text)"),
    "decimal": ("数字(小数)", "decimal number"),
    "integer": ("整数", "whole number"),
    "time": ("日期时间", "date and time"),
}


def template(kind: im.Kind) -> bytes:
    # openpyxl ships no type hints: its names are Any here.
    from openpyxl import Workbook  # type: ignore[import-untyped]
    from openpyxl.styles import Alignment, Font, PatternFill  # type: ignore[import-untyped]
    from openpyxl.utils import get_column_letter  # type: ignore[import-untyped]

    book = Workbook()
    data = book.active
    assert data is not None
    data.title = "数据 data"
    bold, plain = Font(bold=True), Font(bold=False)
    fill = PatternFill("solid", fgColor="DDEBF7")
    for index, column in enumerate(kind.columns, 1):
        letter = get_column_letter(index)
        head = data.cell(row=1, column=index, value=column.header)
        head.font = bold if column.required else plain
        head.fill = fill
        head.alignment = Alignment(wrap_text=True, vertical="top")
        example = column.example if column.example != "" else None
        cell = data.cell(row=2, column=index, value=example)
        if column.cell in ("text", "code"):
            cell.number_format = "@"
            data.column_dimensions[letter].number_format = "@"
        data.column_dimensions[letter].width = max(14, len(column.header) + 6)
    data.freeze_panes = "A2"

    notes = book.create_sheet("说明 columns")
    heads = ("列名 header", "必填 required", "类型 type", "说明", "meaning", "示例 example")
    for index, text in enumerate(heads, 1):
        cell = notes.cell(row=1, column=index, value=text)
        cell.font = bold
        cell.fill = fill
    for row, column in enumerate(kind.columns, 2):
        zh_type, en_type = CELL_TYPES[column.cell]
        values = (
            column.header,
            "是 yes" if column.required else "否 no",
            f"{zh_type} {en_type}",
            column.zh_help,
            column.en_help,
            column.example if column.example != "" else None,
        )
        for index, value in enumerate(values, 1):
            notes.cell(row=row, column=index, value=value)
    group = kind.column(kind.group)
    last = len(kind.columns) + 3
    notes.cell(
        row=last,
        column=1,
        value=f"每行一个商品项;“{group.header}”相同的各行为同一份{kind.zh}。首行为表头,可用中文、"
        "英文或中英文列名。",
    )
    notes.cell(
        row=last + 1,
        column=1,
        value=f"One row per goods line; the rows with the same {group.name} are one document. "
        "The first row names the columns, in Chinese, English or both.",
    )
    for offset, (zh, en) in enumerate(kind.notes):
        notes.cell(row=last + 2 + 2 * offset, column=1, value=zh)
        notes.cell(row=last + 3 + 2 * offset, column=1, value=en)
    for letter, width in zip("ABCDEF", (26, 12, 22, 48, 56, 24), strict=True):
        notes.column_dimensions[letter].width = width
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
