"""Spreadsheet imports (issue #20 item 2, docs/decisions/0032-imports.md): the pure parts.

A sheet is a table of goods lines as clerks keep them: one row per line, the document's
fields repeated on each of its lines (or left empty after its first), and a grouping column
(`ref` of a declaration, `order_no` of a retail list) that gathers the rows of one document.
Each document becomes the JSON body of the write route (`POST /v1/declarations`), which the
API layer decodes and submits exactly as the route does; this module only

- names the columns of each kind (English = the body's field, Chinese = the customs term),
  and matches a sheet's headers in either language or both ("商品编码 hs_code");
- turns cells into JSON values (numbers into decimal text, Excel's naive times into China
  time, numeric codes that lost their leading zeros padded back) and rows into bodies;
- maps an error at a body path (`$.lines[2].quantity`) back to its row and column;
- derives each document's Idempotency-Key from the file's SHA-256, the kind and its row.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

CHINA = timezone(timedelta(hours=8))
MAX_ROWS = 20_000
MAX_COLUMNS = 64

CellType = Literal["text", "code", "decimal", "integer", "time"]


@dataclass(frozen=True)
class Column:
    """One column of a kind's sheet.

    `name` is the English header and the body's field name; `zh` the Chinese header; `paths`
    where its value goes in the body (several: the same value in two fields); `line` whether
    it is a line's field (each row its own) or the document's (the same on every row of it);
    `digits` pads a code typed as a number back to its width (Excel drops leading zeros)."""

    name: str
    zh: str
    paths: tuple[tuple[str, ...], ...]
    cell: CellType
    required: bool
    example: Any
    en_help: str
    zh_help: str
    line: bool = False
    digits: int | None = None
    default: Any = None

    @property
    def header(self) -> str:
        """The template's header: both languages in one cell, Chinese first."""
        return f"{self.zh} {self.name}"


def _doc(
    name: str,
    zh: str,
    cell: CellType,
    required: bool,
    example: Any,
    en_help: str,
    zh_help: str,
    *paths: tuple[str, ...],
    digits: int | None = None,
    default: Any = None,
) -> Column:
    return Column(
        name,
        zh,
        paths or ((name,),),
        cell,
        required,
        example,
        en_help,
        zh_help,
        digits=digits,
        default=default,
    )


def _line(
    name: str,
    zh: str,
    cell: CellType,
    required: bool,
    example: Any,
    en_help: str,
    zh_help: str,
    digits: int | None = None,
) -> Column:
    return Column(
        name, zh, ((name,),), cell, required, example, en_help, zh_help, line=True, digits=digits
    )


# -- the columns of each kind ---------------------------------------------------------------

_HEAD_COMMON = (
    _doc(
        "declarant",
        "申报单位",
        "code",
        True,
        "91610131MA00000018",
        "The declarant's USCC (18 characters): your own enterprise",
        "申报单位统一社会信用代码(18位),须为本企业",
    ),
    _doc(
        "zone",
        "区域代码",
        "code",
        True,
        "XCBZ",
        "The zone's code (GET /v1/zones)",
        "海关特殊监管区域代码(见 GET /v1/zones)",
    ),
    _doc(
        "account_book",
        "账册编号",
        "code",
        False,
        "B00000001XCBZ",
        "The account book; required on every flow but direct_in",
        "账册编号;除 direct_in(9610直购)外必填",
    ),
)
_TRANSPORT = (
    _doc(
        "transport_mode",
        "运输方式",
        "text",
        True,
        "rail",
        "rail, air, road, sea, express, post or other",
        "rail 铁路、air 航空、road 公路、sea 水路、express 快递、post 邮递、other 其他",
        ("transport", "mode"),
    ),
    _doc(
        "transport_reference",
        "运输工具编号",
        "text",
        True,
        "X8024-20261127",
        "The train, flight or vehicle reference (a retail list: the express waybill)",
        "运输工具编号(车次、航班号、车牌;跨境电商为快递运单号)",
        ("transport", "reference"),
    ),
    _doc(
        "container",
        "集装箱号",
        "text",
        False,
        "TGHU1234567",
        "ISO 6346 container number",
        "集装箱号(ISO 6346)",
        ("transport", "container"),
    ),
)
_TERMS = (
    _doc(
        "country",
        "贸易国别",
        "code",
        True,
        "DE",
        "Trading country, ISO 3166 alpha-2 (CN for goods into China)",
        "贸易国(地区)代码,ISO 3166 两位字母(进入境内为 CN)",
    ),
    _doc(
        "currency",
        "币制",
        "code",
        True,
        "EUR",
        "Currency of the prices, ISO 4217 (retail lists: CNY)",
        "币制,ISO 4217 三位字母(跨境电商零售为 CNY)",
    ),
    _doc(
        "incoterm",
        "成交方式",
        "code",
        False,
        "FOB",
        "Incoterm: EXW, FCA, FAS, FOB, CFR, CIF, CPT, CIP, DAP, DPU or DDP",
        "成交方式(国际贸易术语):EXW、FCA、FOB、CFR、CIF、DAP 等",
    ),
    _doc(
        "freight",
        "运费",
        "decimal",
        False,
        "1200.00",
        "Freight, in the document's currency",
        "运费(与币制相同)",
    ),
    _doc(
        "insurance",
        "保费",
        "decimal",
        False,
        "80.00",
        "Insurance, in the document's currency",
        "保费(与币制相同)",
    ),
)
_LINES = (
    _line(
        "line_no",
        "序号",
        "integer",
        False,
        1,
        "The line's number in its document (empty: 1, 2, ... in row order)",
        "商品序号(空:按行序 1、2、……)",
    ),
    _line(
        "item_no",
        "备案序号",
        "integer",
        True,
        1,
        "The item's number in the account book",
        "账册备案序号(料号)",
    ),
    _line(
        "hs_code",
        "商品编码",
        "code",
        True,
        "8471300000",
        "HS code, 10 digits",
        "商品编码(HS编码,10位)",
        digits=10,
    ),
    _line(
        "description",
        "商品名称",
        "text",
        True,
        "Laptop computers",
        "Description of the goods",
        "商品名称及规格",
    ),
    _line(
        "quantity",
        "申报数量",
        "decimal",
        True,
        "1000",
        "Declared quantity in the item's unit (whole for pieces)",
        "申报数量(按计量单位;件数须为整数)",
    ),
    _line(
        "unit",
        "计量单位",
        "code",
        True,
        "C62",
        "Unit, UN/ECE Rec. 20 (C62 pieces, KGM kilograms)",
        "计量单位,UN/ECE 第20号建议代码(C62 个/件,KGM 千克)",
    ),
    _line(
        "unit_price",
        "申报单价",
        "decimal",
        True,
        "420.00",
        "Unit price in the document's currency (at most 4 decimals)",
        "申报单价(与币制相同,最多4位小数)",
    ),
    _line(
        "origin_country",
        "原产国",
        "code",
        False,
        "DE",
        "Country of origin, ISO 3166 alpha-2",
        "原产国(地区)代码,ISO 3166 两位字母",
    ),
)
_TAIL = (
    _doc(
        "occurred_at",
        "业务时间",
        "time",
        False,
        "",
        "When it happened (default: now); a time without an offset is China time",
        "业务发生时间(空:当前时间);未注明时区按北京时间",
    ),
)

DECLARATION_COLUMNS: tuple[Column, ...] = (
    _doc(
        "ref",
        "企业内部编号",
        "text",
        False,
        "PO-7781",
        "Your reference: the rows with the same ref are the lines of one declaration",
        "企业内部编号:编号相同的各行为同一报关单的商品项",
        ("client_ref",),
    ),
    _doc(
        "flow",
        "业务类型",
        "code",
        True,
        "first_line_in",
        "first_line_in, first_line_out, second_line_in, second_line_out, transfer or direct_in",
        "业务类型:first_line_in 一线进境、first_line_out 一线出境、second_line_in 二线入区、"
        "second_line_out 二线出区、transfer 区间结转、direct_in 直购进口",
    ),
    _doc(
        "trade_mode",
        "监管方式",
        "code",
        True,
        "5034",
        "Trade mode, 4 digits (GET /v1/reference/trade-modes)",
        "监管方式代码(4位,见 GET /v1/reference/trade-modes)",
        digits=4,
    ),
    *_HEAD_COMMON,
    *_TRANSPORT,
    *_TERMS,
    _doc(
        "destination_zone",
        "转入区域",
        "code",
        False,
        "",
        "A transfer's destination zone",
        "结转转入区域代码",
    ),
    _doc(
        "destination_account_book",
        "转入账册",
        "code",
        False,
        "",
        "A transfer's destination account book",
        "结转转入账册编号",
    ),
    *_LINES,
    _line(
        "goods_status",
        "货物状态",
        "code",
        False,
        "",
        "bonded or domestic (where the flow asks for it)",
        "货物状态:bonded 保税、domestic 非保税",
    ),
    _line(
        "destination_item_no",
        "转入备案序号",
        "integer",
        False,
        "",
        "A transfer line's item number in the destination book",
        "结转转入账册备案序号",
    ),
    *_TAIL,
)

# A retail list's examples where a declaration's would not do (a parcel to a buyer in China,
# priced in CNY, delivered: DAP).
_RETAIL_EXAMPLES: dict[str, Any] = {
    "transport_mode": "express",
    "transport_reference": "SF1234567890",
    "container": "",
    "country": "CN",
    "currency": "CNY",
    "incoterm": "DAP",
    "freight": "",
    "insurance": "",
    "description": "笔记本电脑 Laptop",
    "quantity": "1",
    "unit_price": "4000.00",
}


def _retail(columns: tuple[Column, ...]) -> tuple[Column, ...]:
    return tuple(
        replace(c, example=_RETAIL_EXAMPLES[c.name]) if c.name in _RETAIL_EXAMPLES else c
        for c in columns
    )


RETAIL_COLUMNS: tuple[Column, ...] = (
    _doc(
        "order_no",
        "订单编号",
        "text",
        True,
        "JD20261127000001",
        "The e-commerce order: the rows with the same order are one retail list",
        "电商订单编号:订单编号相同的各行为同一清单的商品项",
        ("ecommerce", "order", "order_no"),
        ("client_ref",),
    ),
    _doc(
        "flow",
        "业务类型",
        "code",
        False,
        "second_line_out",
        "second_line_out (bonded, 1210/1239) or direct_in (9610); empty: second_line_out",
        "业务类型:second_line_out 保税出区(1210/1239)或 direct_in 直购(9610);空为 second_line_out",
        default="second_line_out",
    ),
    _doc(
        "trade_mode",
        "监管方式",
        "code",
        True,
        "1210",
        "1210, 1239 or 9610",
        "监管方式代码:1210 保税电商、1239 保税电商A、9610 电子商务",
        digits=4,
    ),
    *_HEAD_COMMON,
    *_retail(_TRANSPORT),
    *_retail(_TERMS),
    _doc(
        "buyer_id",
        "订购人证件号",
        "code",
        True,
        "61010219900101001X",
        "The buyer's resident identity number",
        "订购人身份证件号码",
        ("ecommerce", "order", "buyer_id"),
    ),
    _doc(
        "buyer_name",
        "订购人姓名",
        "text",
        True,
        "李华",
        "The buyer's name",
        "订购人姓名",
        ("ecommerce", "order", "buyer_name"),
    ),
    _doc(
        "order_amount",
        "订单金额",
        "decimal",
        True,
        "4000.00",
        "The order's amount in CNY (goods + freight + insurance)",
        "订单实际支付金额(人民币,含运费、保费)",
        ("ecommerce", "order", "amount"),
    ),
    _doc(
        "payment_no",
        "支付单号",
        "text",
        True,
        "PAY-JD20261127000001",
        "The payment's transaction number",
        "支付交易编号",
        ("ecommerce", "payment", "payment_no"),
    ),
    _doc(
        "payer_id",
        "支付人证件号",
        "code",
        True,
        "61010219900101001X",
        "The payer's resident identity number (the buyer's)",
        "支付人身份证件号码(须为订购人)",
        ("ecommerce", "payment", "payer_id"),
    ),
    _doc(
        "payment_amount",
        "支付金额",
        "decimal",
        True,
        "4000.00",
        "The amount paid, in CNY (the order's)",
        "支付金额(人民币,须等于订单金额)",
        ("ecommerce", "payment", "amount"),
    ),
    _doc(
        "waybill_no",
        "物流运单编号",
        "text",
        True,
        "SF1234567890",
        "The logistics waybill",
        "物流运单编号",
        ("ecommerce", "waybill", "waybill_no"),
    ),
    _doc(
        "consignee_id",
        "收件人证件号",
        "code",
        True,
        "610102199001010028",
        "The consignee's resident identity number",
        "收件人身份证件号码",
        ("ecommerce", "waybill", "consignee_id"),
    ),
    *_retail(_LINES),
    *_TAIL,
)


CHECKLIST_COLUMNS: tuple[Column, ...] = (
    Column(
        "ref",
        "单据编号",
        (),  # groups rows; not a field of the checklist
        "text",
        False,
        "QD-001",
        "Your reference: the rows with the same ref are the lines of one checklist",
        "企业内部单据编号:编号相同的各行为同一核注清单的表体",
    ),
    _doc(
        "kind",
        "清单类型",
        "code",
        True,
        "enter_first",
        "enter_first, collected, in_zone_transfer, processing or destruction",
        "清单类型:enter_first 先入区后报关、collected 分送集报、in_zone_transfer 区内流转、"
        "processing 加工、destruction 销毁",
    ),
    _doc(
        "direction",
        "进出标志",
        "code",
        True,
        "I",
        "I (goods in) or E (goods out)",
        "进出标志:I 进、E 出",
    ),
    _doc(
        "account_book",
        "账册编号",
        "code",
        True,
        "B00000001XCBZ",
        "Your account book",
        "本企业账册编号",
    ),
    _doc(
        "declaration",
        "关联报关单",
        "code",
        False,
        "",
        "A declaration it belongs to (its id or 18-digit number), where the kind asks for one",
        "关联报关单(编号或18位报关单号),按清单类型需要时填写",
    ),
    _doc(
        "destination_account_book",
        "转入账册",
        "code",
        False,
        "",
        "in_zone_transfer: the receiving book",
        "区内流转:转入账册编号",
    ),
    _line(
        "item_no", "备案序号", "integer", True, 1, "The item's number in the book", "账册备案序号"
    ),
    _line(
        "quantity",
        "申报数量",
        "decimal",
        True,
        "100",
        "Quantity in the item's unit",
        "申报数量(按账册计量单位)",
    ),
    _line(
        "goods_status",
        "货物状态",
        "code",
        False,
        "",
        "bonded or domestic (where the kind asks for it)",
        "货物状态:bonded 保税、domestic 非保税",
    ),
    _line(
        "destination_item_no",
        "转入备案序号",
        "integer",
        False,
        "",
        "in_zone_transfer: the receiving book's item (default: the same number)",
        "区内流转:转入账册备案序号(空为相同序号)",
    ),
)


@dataclass(frozen=True)
class Kind:
    """What a sheet of this kind becomes: the route it is submitted to, its columns, the
    column that groups rows into one document."""

    name: str
    zh: str
    path: str
    columns: tuple[Column, ...]
    group: str

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind("declarations", "报关单", "/v1/declarations", DECLARATION_COLUMNS, "ref"),
        Kind("retail_lists", "跨境电商零售清单", "/v1/declarations", RETAIL_COLUMNS, "order_no"),
        Kind("checklists", "核注清单", "/v1/checklists", CHECKLIST_COLUMNS, "ref"),
    )
}


# -- headers ----------------------------------------------------------------------------------


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("\u3000", " ")).strip().lower()


def header_names(kind: Kind) -> dict[str, Column]:
    """Every accepted spelling of each header (normalized: blanks collapsed, lower case)."""
    names: dict[str, Column] = {}
    for c in kind.columns:
        for spelling in (c.name, c.zh, c.header, f"{c.name} {c.zh}"):
            names[_norm(spelling)] = c
    return names


@dataclass(frozen=True)
class Header:
    """The header row matched: per sheet position, its column (None: an empty cell), and the
    header text of each column as the file wrote it."""

    columns: tuple[Column | None, ...]
    written: Mapping[str, str]


class HeaderProblem(ValueError):
    """The header row is not one this kind has."""


def read_header(kind: Kind, cells: Sequence[Any]) -> Header:
    """Match a header row: each column named once, in Chinese, English or both; an unknown
    header or a required column missing is a problem naming them."""
    names = header_names(kind)
    found: list[Column | None] = []
    written: dict[str, str] = {}
    unknown: list[str] = []
    twice: list[str] = []
    for cell in cells:
        text = "" if cell is None else str(cell)
        if not text.strip():
            found.append(None)
            continue
        column = names.get(_norm(text))
        if column is None:
            unknown.append(text.strip())
            found.append(None)
        elif column.name in written:
            twice.append(text.strip())
            found.append(None)
        else:
            written[column.name] = " ".join(text.split())
            found.append(column)
    missing = [c.header for c in kind.columns if c.required and c.name not in written]
    problems = []
    if not written:
        problems.append(message("no_header", kind=kind.name))
    else:
        if unknown:
            problems.append(message("unknown_columns", names=", ".join(unknown)))
        if twice:
            problems.append(message("columns_twice", names=", ".join(twice)))
        if missing:
            problems.append(message("missing_columns", names=", ".join(missing)))
    if problems:
        raise HeaderProblem("; ".join(problems))
    return Header(tuple(found), written)


# -- cells and bodies -------------------------------------------------------------------------


def blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def cell_value(column: Column, value: Any) -> Any:
    """A cell as the JSON value of its field: text stays text (trimmed) for the route's
    decoder to judge; numbers become decimal text (never through an exponent) or integers;
    a code typed as a number gets its leading zeros back; an Excel time without an offset is
    China time."""
    if isinstance(value, str):
        text = value.strip()
        if column.cell == "integer" and text.isascii() and text.isdigit() and len(text) <= 18:
            return int(text)
        return text
    if isinstance(value, bool):
        return value
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=CHINA)
        return moment.isoformat()
    if isinstance(value, date):
        return datetime.combine(value, time(), CHINA).isoformat()
    if isinstance(value, int | float | Decimal):
        number = _decimal(value)
        if number is None:
            return str(value)
        if column.cell == "integer":
            return int(number) if number == number.to_integral_value() else _plain(number)
        if column.cell in ("text", "code") and number == number.to_integral_value():
            text = str(int(number))
            return text.zfill(column.digits) if column.digits else text
        return _plain(number)
    return str(value)


def _decimal(value: int | float | Decimal) -> Decimal | None:
    try:
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _plain(number: Decimal) -> str:
    text = format(number, "f")
    return text


@dataclass(frozen=True)
class Document:
    """The rows of one document: `rows` their sheet row numbers, `cells` per row the
    non-empty cells by column name."""

    rows: tuple[int, ...]
    cells: tuple[Mapping[str, Any], ...]

    @property
    def row(self) -> int:
        return self.rows[0]


def documents(kind: Kind, rows: Iterable[tuple[int, Mapping[str, Any]]]) -> list[Document]:
    """Gather rows into documents by the kind's grouping column, in the order of each
    document's first row; a row with an empty grouping cell is a document of its own."""
    groups: dict[Any, tuple[list[int], list[Mapping[str, Any]]]] = {}
    for number, cells in rows:
        key = cells.get(kind.group)
        marker: Any = ("row", number) if blank(key) else ("ref", str(key).strip())
        rows_of, cells_of = groups.setdefault(marker, ([], []))
        rows_of.append(number)
        cells_of.append(cells)
    return [Document(tuple(r), tuple(c)) for r, c in groups.values()]


@dataclass(frozen=True)
class CellError:
    """An error of one document at a row and column (`column`: its header as the file wrote
    it, None when the error is the document's as a whole); `loc` is the body path."""

    row: int
    column: str | None
    loc: str
    msg: str
    rule: str | None = None


def body_of(kind: Kind, doc: Document) -> tuple[dict[str, Any], list[CellError]]:
    """The route's JSON body for a document, and the conflicts between its rows (a document
    field that a later row gives differently from its first)."""
    body: dict[str, Any] = {}
    conflicts: list[CellError] = []
    lines: list[dict[str, Any]] = []
    numbered = any(c.line and c.name == "line_no" for c in kind.columns)
    for c in kind.columns:
        if c.line or not c.paths:
            continue
        first: tuple[int, Any] | None = None
        for number, cells in zip(doc.rows, doc.cells, strict=True):
            if c.name not in cells:
                continue
            value = cell_value(c, cells[c.name])
            if first is None:
                first = (number, value)
            elif value != first[1]:
                conflicts.append(
                    CellError(
                        number,
                        c.name,
                        "$." + ".".join(c.paths[0]),
                        message("differs_in_document", row=first[0]),
                    )
                )
        value = first[1] if first is not None else c.default
        if value is not None:
            for path in c.paths:
                _put(body, path, value)
    for position, cells in enumerate(doc.cells, start=1):
        line: dict[str, Any] = {}
        for c in kind.columns:
            if c.line and c.name in cells:
                line[c.name] = cell_value(c, cells[c.name])
        if numbered:
            line.setdefault("line_no", position)
        lines.append(line)
    body["lines"] = lines
    return body, conflicts


def _put(body: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = body
    for name in path[:-1]:
        node = node.setdefault(name, {})
    node[path[-1]] = value


_LOC = re.compile(
    r"^\$(?P<head>(?:\.[A-Za-z_][A-Za-z0-9_]*)*)(?:\.lines\[(?P<i>\d+)\](?P<tail>.*))?$"
)


def locate(kind: Kind, doc: Document, loc: str) -> tuple[int, str | None]:
    """The row and column (by name) of an error at a body path: a line's field is that line's
    row, a document's field its first row; the column is the one whose field the path names
    (or lies within: `$.transport` is its mode's), None when no column does."""
    match = _LOC.match(loc)
    if match is None:
        return doc.row, None
    if match["i"] is not None and match["head"] == "":
        index = int(match["i"])
        row = doc.rows[index] if index < len(doc.rows) else doc.row
        tail = tuple(p for p in match["tail"].split(".") if p)
        return row, _line_column(kind, tail)
    path = tuple(p for p in match["head"].split(".") if p)
    return doc.row, _document_column(kind, path)


def _line_column(kind: Kind, path: tuple[str, ...]) -> str | None:
    return next((c.name for c in kind.columns if c.line and c.paths[0] == path), None)


def _document_column(kind: Kind, path: tuple[str, ...]) -> str | None:
    """The document column whose field is `path`, else the first one within it."""
    if not path or path == ("lines",):
        return None
    fields = [c for c in kind.columns if not c.line]
    exact = next((c.name for c in fields if path in c.paths), None)
    if exact is not None:
        return exact
    return next((c.name for c in fields if any(p[: len(path)] == path for p in c.paths)), None)


# -- idempotency keys -------------------------------------------------------------------------


def file_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def row_key(kind: str, digest: str, row: int) -> str:
    """The Idempotency-Key of the document starting at `row` of a file with this SHA-256: the
    same file (the same bytes, whatever its name) gives the same keys, so a second upload
    replays every answer; any other file, other keys."""
    return f"import:{kind}:{digest}:{row}"


# -- messages ---------------------------------------------------------------------------------

# Every message an import adds, in English, in one table: the translations (gettext, issue #20
# item 1) look them up by these texts.
MESSAGES: dict[str, str] = {
    "no_header": "the first row must name the columns (a template: GET /v1/imports/templates/"
    "{kind}.xlsx)",
    "unknown_columns": "unknown columns: {names}",
    "columns_twice": "columns named twice: {names}",
    "missing_columns": "missing required columns: {names}",
    "differs_in_document": "differs from row {row} of the same document",
    "too_many_rows": "at most {limit} rows of data",
    "too_many_columns": "at most {limit} columns",
    "no_rows": "the sheet has no rows of data under its header",
    "not_a_spreadsheet": "not an XLSX workbook or a CSV text (UTF-8 or GB18030)",
    "old_excel": "an Excel 97-2003 .xls workbook: save it as .xlsx",
    "unreadable_xlsx": "the XLSX workbook cannot be read: {why}",
    "unknown_kind": "unknown kind {kind!r}: one of {kinds}",
    "too_large": "the file is {size} bytes: at most {limit}",
    "missing_file": "a file is required",
    "dry_run_value": "true or false",
    "no_import": "no import {id}",
    "no_template": "no template {kind}: one of {kinds}",
    "kind_required": "a kind is required: one of {kinds}",
    "not_base64": "not base64",
    "role_may_not_import": "the {role} role may not import {kind}",
    "upload_too_slow": "the upload took over {seconds} s",
    "not_multipart": "send the file as multipart/form-data (kind, dry_run, file) or as JSON",
    "busy": "the ledger was busy: upload the same file again (the rows done are not written twice)",
    "interrupted": "the server stopped before it finished: upload the same file again (the"
    " rows done are not written twice)",
}


def message(name: str, **values: Any) -> str:
    """The English text of a message, filled in."""
    return MESSAGES[name].format(**values)
