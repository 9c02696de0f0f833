"""Spreadsheet imports (issue #20 item 2, docs/decisions/0032-imports.md): the pure parts.

A sheet is a table of lines as clerks keep them: one row per line, the document's fields
repeated on each of its lines (or left empty after its first), and a grouping column (`ref`
of a declaration, a checklist or a movement, `order_no` of a retail list) that gathers the
rows of one document. Each document becomes the JSON body of its write route (`POST
/v1/declarations`, `/v1/checklists`, `/v1/movements`), which the API layer decodes and submits
exactly as the route does; this module only

- names the columns of each kind (English = the body's field, Chinese = the customs term),
  and matches a sheet's headers in either language or both ("商品编码 hs_code");
- turns cells into JSON values (numbers into decimal text, Excel's naive times into China
  time, numeric codes that lost their leading zeros padded back) and rows into bodies: the
  document's fields once, its rows' line fields arranged as the kind's body has them (lines;
  a movement's inputs and outputs, its lots, or one row's fields at the top);
- maps an error at a body path (`$.lines[2].quantity`) back to its row and column;
- derives each document's Idempotency-Key from the file's SHA-256, the kind and its row, and
  its content key from the request it becomes (a corrected file re-uploaded skips what went
  in before).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, get_args

import msgspec

from domain.events import Actor
from domain.movements import MovementKind
from domain.processing import OutputRole

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


def _ref(zh: str, example: str, en_help: str, zh_help: str) -> Column:
    """A grouping column that is no field of the body (checklists, movements)."""
    return Column("ref", zh, (), "text", False, example, en_help, zh_help)


def _as(column: Column, en_help: str, zh_help: str, **changes: Any) -> Column:
    """A shared column with this kind's help (and example, requirement ...)."""
    return replace(column, en_help=en_help, zh_help=zh_help, **changes)


# -- the columns of each kind ---------------------------------------------------------------
# Columns several kinds share are written once; a kind that reads one differently gives it
# its own help (`_as`).

_ACCOUNT_BOOK = _doc(
    "account_book",
    "账册编号",
    "code",
    False,
    "B00000001XCBZ",
    "The account book; required on every flow but direct_in",
    "账册编号;除 direct_in(9610直购)外必填",
)
_DESTINATION_BOOK = _doc(
    "destination_account_book",
    "转入账册",
    "code",
    False,
    "",
    "A transfer's destination account book",
    "结转转入账册编号",
)
_ITEM_NO = _line(
    "item_no",
    "备案序号",
    "integer",
    True,
    1,
    "The item's number in the account book",
    "账册备案序号(项号)",
)
_QUANTITY = _line(
    "quantity",
    "申报数量",
    "decimal",
    True,
    "1000",
    "Declared quantity in the item's unit (whole for pieces)",
    "申报数量(按计量单位;件数须为整数)",
)
_GOODS_STATUS = _line(
    "goods_status",
    "货物状态",
    "code",
    False,
    "",
    "bonded or domestic (where the flow asks for it)",
    "货物状态:bonded 保税、domestic 非保税",
)
_DESTINATION_ITEM = _line(
    "destination_item_no",
    "转入备案序号",
    "integer",
    False,
    "",
    "A transfer line's item number in the destination book",
    "结转转入账册备案序号",
)
_CONTAINER = _doc(
    "container",
    "集装箱号",
    "text",
    False,
    "TGHU1234567",
    "ISO 6346 container number",
    "集装箱号(ISO 6346)",
    ("transport", "container"),
)
_OCCURRED_AT = _doc(
    "occurred_at",
    "业务时间",
    "time",
    False,
    "",
    "When it happened (default: now); a time without an offset is China time",
    "业务发生时间(空:当前时间);未注明时区按北京时间",
)

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
    _ACCOUNT_BOOK,
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
    _CONTAINER,
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
    _ITEM_NO,
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
    _QUANTITY,
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
    _DESTINATION_BOOK,
    *_LINES,
    _GOODS_STATUS,
    _DESTINATION_ITEM,
    _OCCURRED_AT,
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
    _OCCURRED_AT,
)


CHECKLIST_COLUMNS: tuple[Column, ...] = (
    _ref(
        "单据编号",
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
    _as(_ACCOUNT_BOOK, "Your account book", "本企业账册编号", required=True),
    _doc(
        "declaration",
        "关联报关单",
        "code",
        False,
        "",
        "A declaration it belongs to (its id or 18-digit number), where the kind asks for one",
        "关联报关单(编号或18位报关单号),按清单类型需要时填写",
    ),
    _as(_DESTINATION_BOOK, "in_zone_transfer: the receiving book", "区内流转:转入账册编号"),
    _as(_ITEM_NO, "The item's number in the book", "账册备案序号"),
    _as(_QUANTITY, "Quantity in the item's unit", "申报数量(按账册计量单位)", example="100"),
    _as(
        _GOODS_STATUS,
        "bonded or domestic (where the kind asks for it)",
        "货物状态:bonded 保税、domestic 非保税",
    ),
    _as(
        _DESTINATION_ITEM,
        "in_zone_transfer: the receiving book's item (default: the same number)",
        "区内流转:转入账册备案序号(空为相同序号)",
    ),
)


# Movements (POST /v1/movements): one sheet for every kind, a row per line - of a gate
# movement, the declaration's line; of processing, an input or an output; of a destruction,
# an item - and the rows with the same `ref` one movement. The example is an adjustment: a
# movement an enterprise records with nothing but its book (the template's example row is
# accepted once it names your book).
MOVEMENT_COLUMNS: tuple[Column, ...] = (
    _ref(
        "单据编号",
        "PD-001",
        "Your reference: the rows with the same ref are the lines of one movement (empty: the"
        " row is a movement of its own)",
        "单据编号:编号相同的各行为同一笔库存变动的各行;空为单独一笔",
    ),
    _doc(
        "kind",
        "变动类型",
        "code",
        True,
        "adjustment",
        "gate_in, gate_out, transfer_dispatch, transfer_receipt (an operator of the zone);"
        " processing, adjustment, in_zone_transfer (the book's enterprise); destruction (the"
        " officer who witnessed it)",
        "gate_in 入区、gate_out 出区、transfer_dispatch 区间流转发出、transfer_receipt 区间流转"
        "收货(区域运营方);processing 加工、adjustment 盘点调整、in_zone_transfer 区内流转"
        "(账册企业);destruction 销毁(监督销毁的海关关员)",
    ),
    _doc(
        "declaration",
        "报关单号",
        "code",
        False,
        "",
        "gate_in, gate_out, transfer_dispatch, transfer_receipt: the declaration (its id or"
        " 18-digit number)",
        "卡口类(gate_in、gate_out、transfer_dispatch、transfer_receipt):报关单编号或18位报关单号",
    ),
    _doc(
        "return_id",
        "退货单编号",
        "code",
        False,
        "",
        "gate_in of returned retail goods (1210/1239): the return, instead of a declaration",
        "退货入区(1210/1239):退货单编号,代替报关单号",
    ),
    _doc(
        "checklist",
        "核注清单编号",
        "code",
        False,
        "",
        "in_zone_transfer: its checklist; processing: an approved processing checklist whose"
        " materials it consumes",
        "区内流转:核注清单编号;加工:所耗用料件的已审批加工核注清单",
    ),
    _doc(
        "zone",
        "区域代码",
        "code",
        False,
        "",
        "processing: the zone (GET /v1/zones)",
        "加工:海关特殊监管区域代码",
    ),
    _as(
        _ACCOUNT_BOOK,
        "processing, adjustment, destruction: the account book",
        "加工、盘点调整、销毁:账册编号",
    ),
    _doc(
        "operation",
        "加工方式",
        "code",
        False,
        "",
        "processing: processing (default) or simple_processing",
        "加工:processing 加工(默认)或 simple_processing 简单加工",
    ),
    _doc(
        "bom_ref",
        "单耗编号",
        "text",
        False,
        "",
        "processing: a bill of materials registered in the book",
        "加工:账册已备案的单耗编号",
    ),
    _doc(
        "reason",
        "原因",
        "text",
        False,
        "盘盈 stocktake surplus",
        "adjustment, destruction: why (required there)",
        "盘点调整、销毁:原因(必填)",
    ),
    _doc(
        "explains",
        "在途短少报关单",
        "code",
        False,
        "",
        "adjustment: the transfer declaration whose shortfall in transit this decrease settles",
        "盘点调整:本次核减所说明的在途短少对应的区间流转报关单",
    ),
    _doc(
        "certificate",
        "销毁证明编号",
        "text",
        False,
        "",
        "destruction: its certificate",
        "销毁:销毁证明编号",
    ),
    _doc(
        "gate_note",
        "卡口单号",
        "text",
        False,
        "",
        "gate kinds: the gate's own note",
        "卡口类:卡口单编号",
    ),
    _doc(
        "vehicle",
        "车牌号",
        "text",
        False,
        "",
        "gate kinds: the vehicle (plate, train or flight)",
        "卡口类:车牌号(或车次、航班号)",
    ),
    _as(
        _CONTAINER,
        "gate kinds: ISO 6346 container number",
        "卡口类:集装箱号(ISO 6346)",
        paths=(("container",),),
        example="",
    ),
    _line(
        "line_no",
        "表体行号",
        "integer",
        False,
        "",
        "gate kinds and in_zone_transfer: the declaration's (or checklist's) line",
        "卡口类、区内流转:报关单(或核注清单)的表体行号",
    ),
    _as(
        _ITEM_NO,
        "processing, adjustment, destruction: the item's number in the book",
        "加工、盘点调整、销毁:账册备案序号(项号)",
        required=False,
    ),
    _as(
        _QUANTITY,
        "The quantity in the item's unit; adjustment: the difference counted (negative: a"
        " loss); in_zone_transfer without line_no and quantity: all that is left",
        "数量(按计量单位);盘点调整为盘盈盘亏差额(盘亏为负数);区内流转不填表体行号和数量为全部剩余",
        zh="数量",
        required=False,
        example="5",
    ),
    _line(
        "role",
        "料件/成品",
        "code",
        False,
        "",
        "processing: input, or the output's role: product, by_product or scrap",
        "加工:input 料件,或产出 product 成品、by_product 副产品、scrap 边角料",
    ),
    _as(
        _GOODS_STATUS,
        "processing inputs, destruction: bonded (default) or domestic",
        "加工料件、销毁:bonded 保税(默认)、domestic 非保税",
    ),
    _line(
        "lot_id",
        "批次编号",
        "code",
        False,
        "",
        "The lot to draw on (processing inputs, adjustment, destruction); gate_out and"
        " transfer_dispatch: the rows of one line_no that name lots are that line's lots",
        "指定扣减的批次(加工料件、盘点调整、销毁);gate_out、transfer_dispatch:"
        "同一表体行号下填写批次的各行为该行的各批次",
    ),
    _OCCURRED_AT,
)


# -- how a document's rows make its body --------------------------------------------------------

# A document's rows as (sheet row, its line fields as JSON values), in row order.
Rows = list[tuple[int, dict[str, Any]]]


@dataclass(frozen=True)
class CellError:
    """An error of one document at a row and column (`column`: its name, None when the error
    is the document's as a whole); `loc` is the body path."""

    row: int
    column: str | None
    loc: str
    msg: str
    rule: str | None = None


# Puts a document's rows into its body (which holds the document's fields already); returns
# where each list item came from (`$.lines[1]` -> its row) and the rows that do not fit.
Arrange = Callable[[dict[str, Any], Rows], tuple[dict[str, int], list[CellError]]]


def _listed(body: dict[str, Any], key: str, rows: Rows) -> dict[str, int]:
    """Each row one item of the body's list `key`."""
    body[key] = [fields for _, fields in rows]
    return {f"$.{key}[{i}]": row for i, (row, _) in enumerate(rows)}


def as_lines(body: dict[str, Any], rows: Rows) -> tuple[dict[str, int], list[CellError]]:
    """Each row a line of `lines`."""
    return _listed(body, "lines", rows), []


def as_numbered_lines(body: dict[str, Any], rows: Rows) -> tuple[dict[str, int], list[CellError]]:
    """Each row a line, numbered 1, 2, ... in row order unless its `line_no` is given."""
    for position, (_, fields) in enumerate(rows, start=1):
        fields.setdefault("line_no", position)
    return as_lines(body, rows)


def _lines_or_all(body: dict[str, Any], rows: Rows) -> tuple[dict[str, int], list[CellError]]:
    """in_zone_transfer: one row without line fields receives all that is left (no `lines`)."""
    if len(rows) == 1 and not rows[0][1]:
        return {}, []
    return as_lines(body, rows)


def _lots(body: dict[str, Any], rows: Rows) -> tuple[dict[str, int], list[CellError]]:
    """gate_out, transfer_dispatch: a row naming a `lot_id` draws its quantity from that lot,
    and the rows of one `line_no` that name lots are one line (its quantity their sum); a
    row without a lot is a line drawing first-in first-out."""
    lines: list[dict[str, Any]] = []
    places: dict[str, int] = {}
    by_line: dict[str, int] = {}
    for row, fields in rows:
        lot = fields.pop("lot_id", None)
        if lot is None:
            places[f"$.lines[{len(lines)}]"] = row
            lines.append(fields)
            continue
        pick: dict[str, Any] = {"lot_id": lot}
        if "quantity" in fields:
            pick["quantity"] = fields.pop("quantity")
        number = fields.get("line_no")
        at = by_line.get(str(number)) if number is not None else None
        if at is None:
            at = len(lines)
            if number is not None:
                by_line[str(number)] = at
            places[f"$.lines[{at}]"] = row
            # The picks first: an error in one of them is found before the line's sum.
            lines.append({**({"line_no": number} if number is not None else {}), "lots": []})
            lines[at].update((k, v) for k, v in fields.items() if k != "line_no")
        else:
            # Any other field of a later row goes with its pick: refused there, at its row.
            pick.update((k, v) for k, v in fields.items() if k != "line_no")
        places[f"$.lines[{at}].lots[{len(lines[at]['lots'])}]"] = row
        lines[at]["lots"].append(pick)
    for line in lines:
        if "lots" in line:
            total = _sum(p.get("quantity") for p in line["lots"])
            if total is not None:
                line["quantity"] = total
    body["lines"] = lines
    return places, []


_DECIMAL_TEXT = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def _sum(values: Iterable[Any]) -> str | None:
    """The sum of decimal texts, None when one is not (the route then refuses that one)."""
    total = Decimal(0)
    for value in values:
        if not isinstance(value, str) or not _DECIMAL_TEXT.fullmatch(value):
            return None
        total += Decimal(value)
    return _plain(total)


INPUT = "input"
OUTPUT_ROLES: tuple[str, ...] = get_args(OutputRole)


def _sides(body: dict[str, Any], rows: Rows) -> tuple[dict[str, int], list[CellError]]:
    """processing: each row an input (`role` input) or an output (`role` product, by_product
    or scrap)."""
    inputs: Rows = []
    outputs: Rows = []
    problems: list[CellError] = []
    for row, fields in rows:
        role = fields.pop("role", None)
        if role == INPUT:
            inputs.append((row, fields))
        elif role in OUTPUT_ROLES:
            outputs.append((row, {**fields, "role": role}))
        else:
            problems.append(CellError(row, "role", "$", message("processing_role")))
    return _listed(body, "inputs", inputs) | _listed(body, "outputs", outputs), problems


# A line field that a movement of one row has at its top under another name.
_TOP_NAMES = {"quantity": "quantity_delta"}


def _one_row(body: dict[str, Any], rows: Rows) -> tuple[dict[str, int], list[CellError]]:
    """adjustment: one row, its line fields the movement's own (`quantity` its
    `quantity_delta`); another row with the same ref is refused at that row."""
    (first, fields), *more = rows
    for name, value in fields.items():
        body[_TOP_NAMES.get(name, name)] = value
    problems = [
        CellError(row, "ref", "$", message("one_row_movement", kind=body.get("kind"), row=first))
        for row, _ in more
    ]
    return {}, problems


# How each movement kind's rows make its body; a new kind chooses one here.
MOVEMENT_LAYOUTS: dict[str, Arrange] = {
    "gate_in": as_lines,
    "gate_out": _lots,
    "transfer_dispatch": _lots,
    "transfer_receipt": as_lines,
    "processing": _sides,
    "adjustment": _one_row,
    "in_zone_transfer": _lines_or_all,
    "destruction": as_lines,
}
assert set(MOVEMENT_LAYOUTS) == set(get_args(MovementKind)), "every movement kind has a layout"


def as_movement(body: dict[str, Any], rows: Rows) -> tuple[dict[str, int], list[CellError]]:
    """A movement's rows as its kind has them (an unknown kind: as lines, for the route to
    refuse at `$.kind`)."""
    return MOVEMENT_LAYOUTS.get(str(body.get("kind")), as_lines)(body, rows)


@dataclass(frozen=True)
class Kind:
    """What a sheet of this kind becomes: the route it is submitted to, its columns, the
    column that groups rows into one document, and how its rows make the body (`arrange`).
    `ordered`: its documents are decided one at a time in file order (movements: which lots
    an exit draws depends on what came in before it). `aliases`: body fields that a column
    fills under another name (for mapping an error back to its column). `notes`: lines for
    the template's explanation sheet, (Chinese, English)."""

    name: str
    zh: str
    path: str
    columns: tuple[Column, ...]
    group: str
    arrange: Arrange = as_lines
    ordered: bool = False
    aliases: Mapping[str, str] = field(default_factory=dict)
    notes: tuple[tuple[str, str], ...] = ()

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


MOVEMENT_NOTES = (
    (
        "gate_in、transfer_receipt:报关单号(或退货单编号)、每行一个表体行号及数量;卡口单号、车牌号、"
        "集装箱号可填。",
        "gate_in, transfer_receipt: declaration (or return_id), a line_no and quantity per row;"
        " gate_note, vehicle, container optional.",
    ),
    (
        "gate_out、transfer_dispatch:同上;填写批次编号的行从该批次扣减,同一表体行号的各行为一行。",
        "gate_out, transfer_dispatch: the same; a row with a lot_id draws from that lot, the"
        " rows of one line_no are one line.",
    ),
    (
        "processing:区域代码、账册编号,每行一项料件或产出(料件/成品、备案序号、数量);"
        "加工方式、单耗编号、核注清单编号可填。",
        "processing: zone, account_book, a row per input or output (role, item_no, quantity);"
        " operation, bom_ref, checklist optional.",
    ),
    (
        "adjustment:一行一笔:账册编号、备案序号、数量(差额)、原因;批次编号、在途短少报关单可填。",
        "adjustment: one row each: account_book, item_no, quantity (the difference), reason;"
        " lot_id, explains optional.",
    ),
    (
        "in_zone_transfer:核注清单编号;每行一个表体行号及数量,或一行均不填为全部剩余。",
        "in_zone_transfer: checklist; a line_no and quantity per row, or one row without them"
        " for all that is left.",
    ),
    (
        "destruction:账册编号、原因,每行一个备案序号及数量;货物状态、批次编号、销毁证明编号可填。",
        "destruction: account_book, reason, an item_no and quantity per row; goods_status,"
        " lot_id, certificate optional.",
    ),
    (
        "每行按其变动类型由相应角色录入:卡口类为区域运营方,加工、盘点调整、区内流转为账册企业,"
        "销毁为海关关员;其他角色导入的行被拒绝(403)。",
        "Each row is recorded by its kind's role: gate kinds an operator of the zone; processing,"
        " adjustment, in_zone_transfer the book's enterprise; destruction an officer. A row of"
        " another role's kind is refused (403).",
    ),
)

KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind(
            "declarations",
            "报关单",
            "/v1/declarations",
            DECLARATION_COLUMNS,
            "ref",
            as_numbered_lines,
        ),
        Kind(
            "retail_lists",
            "跨境电商零售清单",
            "/v1/declarations",
            RETAIL_COLUMNS,
            "order_no",
            as_numbered_lines,
        ),
        Kind("checklists", "核注清单", "/v1/checklists", CHECKLIST_COLUMNS, "ref"),
        Kind(
            "movements",
            "库存变动",
            "/v1/movements",
            MOVEMENT_COLUMNS,
            "ref",
            as_movement,
            ordered=True,
            aliases={"quantity_delta": "quantity", "lots": "lot_id"},
            notes=MOVEMENT_NOTES,
        ),
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
    return format(number, "f")


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
class Built:
    """A document's body, the errors found in building it (a document field that a later
    row gives differently from its first; rows that do not fit the kind's layout), and where
    each list item of the body came from (`$.lines[1]` -> its row)."""

    body: dict[str, Any]
    errors: list[CellError]
    places: Mapping[str, int]


def body_of(kind: Kind, doc: Document) -> Built:
    """The route's JSON body for a document: its document fields once (a later row that gives
    one differently is an error at that row), its rows' line fields as the kind arranges
    them."""
    body: dict[str, Any] = {}
    errors: list[CellError] = []
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
                errors.append(
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
    rows: Rows = [
        (
            number,
            {
                c.name: cell_value(c, cells[c.name])
                for c in kind.columns
                if c.line and c.name in cells
            },
        )
        for number, cells in zip(doc.rows, doc.cells, strict=True)
    ]
    places, problems = kind.arrange(body, rows)
    return Built(body, errors + problems, places)


def _put(body: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = body
    for name in path[:-1]:
        node = node.setdefault(name, {})
    node[path[-1]] = value


_NAMES = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)")


def locate(
    kind: Kind, doc: Document, loc: str, places: Mapping[str, int] | None = None
) -> tuple[int, str | None]:
    """The row and column (by name) of an error at a body path. The row: the one the
    innermost list item on the path came from (`places`; by default a document's rows are its
    `lines` in order), else the document's first. The column: a document column whose field
    the path is; else the column the path's last field is (or is an alias of); else the first
    document column within the path (`$.transport` is its mode's); else None."""
    if places is None:
        places = {f"$.lines[{i}]": row for i, row in enumerate(doc.rows)}
    row, best = doc.row, ""
    for prefix, at in places.items():
        within = loc == prefix or loc.startswith((prefix + ".", prefix + "["))
        if within and len(prefix) > len(best):
            row, best = at, prefix
    return row, _column_at(kind, loc)


def _column_at(kind: Kind, loc: str) -> str | None:
    if not loc.startswith("$"):
        return None
    path: tuple[str, ...] = tuple(_NAMES.findall(loc))
    if not path:
        return None
    fields = [c for c in kind.columns if not c.line and c.paths]
    if "[" not in loc:
        exact = next((c.name for c in fields if path in c.paths), None)
        if exact is not None:
            return exact
    name = kind.aliases.get(path[-1], path[-1])
    if any(c.name == name for c in kind.columns):
        return name
    return next((c.name for c in fields if any(p[: len(path)] == path for p in c.paths)), None)


# -- keys -------------------------------------------------------------------------------------


def file_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def row_key(kind: str, digest: str, row: int) -> str:
    """The Idempotency-Key of the document starting at `row` of a file with this SHA-256: the
    same file (the same bytes, whatever its name) gives the same keys, so a second upload
    replays every answer; any other file, other keys."""
    return f"import:{kind}:{digest}:{row}"


def party_of(actor: Actor) -> str:
    """Whose imports a content key is compared with: an enterprise's keys share them, so do
    the operators of one zone; anyone else's are their key's own."""
    if actor.role == "enterprise" and actor.enterprise:
        return f"enterprise:{actor.enterprise}"
    if actor.role == "operator" and actor.zone:
        return f"zone:{actor.zone}"
    return f"key:{actor.name}"


def canonical(request: Any) -> bytes:
    """A decoded request as canonical JSON: keys sorted, no blanks, decimals in their
    shortest plain form (`1.50` and `1.5` are one value), times in UTC - the same request
    whether its cells were typed as text or numbers, in CSV or XLSX."""
    plain = msgspec.to_builtins(request, builtin_types=(Decimal, datetime))
    return json.dumps(
        _normal(plain), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode()


def _normal(value: Any) -> Any:
    if isinstance(value, Decimal):
        return _plain(value.normalize()) if value else "0"
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normal(v) for v in value]
    return value


def content_keys(kind: str, party: str, requests: Iterable[Any]) -> list[str | None]:
    """Each request's content key (None for None: a document that did not decode): the
    SHA-256 of the kind, the party (`party_of`) and the canonical request, and its occurrence
    in the file - the second of two identical documents is `...:2`, so a file that holds a
    document twice is matched twice, never one for both."""
    seen: dict[str, int] = {}
    keys: list[str | None] = []
    for request in requests:
        if request is None:
            keys.append(None)
            continue
        digest = hashlib.sha256(
            b"\n".join((kind.encode(), party.encode(), canonical(request)))
        ).hexdigest()
        seen[digest] = occurrence = seen.get(digest, 0) + 1
        keys.append(f"content:{digest}:{occurrence}")
    return keys


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
    "processing_role": "a processing row is an input or an output: input, product, by_product"
    " or scrap",
    "one_row_movement": "a movement of kind {kind} is one row: this row has the ref of row {row}",
    "already_imported": "imported before, as row {row} of import {import_id}: not submitted again",
}


def message(name: str, **values: Any) -> str:
    """The English text of a message, filled in."""
    return MESSAGES[name].format(**values)
