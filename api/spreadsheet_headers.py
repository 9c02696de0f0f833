"""The header row of every spreadsheet the ledger writes, in English and in Chinese (issue #20,
decisions 0031 and 0034): one table, column key -> (en, zh-CN).

A route names its columns by key (`ENTRY_COLUMNS = ("position", "recorded_at", ...)`) and
`api.spreadsheets.Sheet.of` writes each key's header in the request's language. The English
header is the one the files had before they had a Chinese one (`occurred_at (UTC+8)`,
`tariff (CNY)`), kept byte for byte: a client that sends no `Accept-Language` reads what it
always read. The Chinese is written with the terms of docs/glossary.md (项号, 账册, 核注清单,
核放单, 批次, 保税 ...) and, for a declaration's fields, the names the import templates give
them (domain/imports.py: 监管方式, 运输工具编号, 贸易国别 ...). Only the header changes: the
cells (codes, enum values, numbers, names) are the same in both languages.
"""

# The Chinese headers are written with full-width parentheses, as Chinese text is.
# ruff: noqa: RUF001

from __future__ import annotations

from api.i18n import Language

# Column key -> (English header, Chinese header). A key that is an instant (INSTANTS) gets the
# China time note of its language after either.
HEADERS: dict[str, tuple[str, str]] = {
    # The log and the chain.
    "position": ("position", "日志位置"),
    "recorded_at": ("recorded_at", "记账时间"),
    "occurred_at": ("occurred_at", "业务时间"),
    "submitted_at": ("submitted_at", "申报时间"),
    "type": ("type", "事件类型"),
    "actor": ("actor", "操作人"),
    "actor_role": ("actor_role", "操作人角色"),
    # Books, items and lots.
    "zone": ("zone", "监管区域"),
    "account_book": ("account_book", "账册编号"),
    "item_no": ("item_no", "项号"),
    "hs_code": ("hs_code", "商品编码"),
    "name": ("name", "商品名称"),
    "unit": ("unit", "计量单位"),
    "goods_status": ("goods_status", "货物状态"),
    "entry_kind": ("entry_kind", "记账类型"),
    "quantity": ("quantity", "数量"),
    "balance_after": ("balance_after", "变动后结存"),
    "lot_id": ("lot_id", "批次编号"),
    "quantity_in": ("quantity_in", "入账数量"),
    "on_hand": ("on_hand", "在库数量"),
    "origin": ("origin", "批次来源"),
    "movement_id": ("movement_id", "库存变动编号"),
    # A trace's edges: the parent lot, the child lot, how one became the other.
    "from": ("from", "来源批次"),
    "to": ("to", "去向批次"),
    "kind": ("kind", "关联类型"),
    # The papers goods moved under (api.spreadsheets.PAPER_COLUMNS).
    "declaration_no": ("declaration_no", "报关单号"),
    "checklist_no": ("checklist_no", "核注清单编号"),
    "gate_pass_no": ("gate_pass_no", "核放单编号"),
    "gate_note": ("gate_note", "卡口单号"),
    "transport_reference": ("transport_reference", "运输工具编号"),
    "container": ("container", "集装箱号"),
    "other_documents": ("other_documents", "其他单证"),
    # A statement's and a write-off's figures.
    "opening": ("opening", "期初结存"),
    "receipts": ("receipts", "本期入库"),
    "issues": ("issues", "本期出库"),
    "adjustments": ("adjustments", "本期调整"),
    "closing": ("closing", "期末结存"),
    "consumed": ("consumed", "加工耗用"),
    "produced": ("produced", "加工产出"),
    "by_products": ("by_products", "其中副产品"),
    "scrap_made": ("scrap_made", "其中边角料"),
    "scrap": ("scrap", "销毁"),
    "closing_book": ("closing_book", "期末账面结存"),
    "counted": ("counted", "盘点数量"),
    "difference": ("difference", "盘点差异"),
    # A declaration (the buyer's, payer's and consignee's data are never in a file).
    "id": ("id", "报关单标识"),
    "status": ("status", "报关单状态"),
    "channel": ("channel", "风险通道"),
    "risk_reasons": ("risk_reasons", "布控原因"),
    "flow": ("flow", "业务类型"),
    "trade_mode": ("trade_mode", "监管方式"),
    "declarant": ("declarant", "申报单位"),
    "destination_zone": ("destination_zone", "转入区域"),
    "destination_account_book": ("destination_account_book", "转入账册"),
    "transport_mode": ("transport_mode", "运输方式"),
    "country": ("country", "贸易国别"),
    "currency": ("currency", "币制"),
    "incoterm": ("incoterm", "成交方式"),
    "freight": ("freight", "运费"),
    "insurance": ("insurance", "保费"),
    "lines": ("lines", "表体行数"),
    "tariff": ("tariff (CNY)", "关税（人民币元）"),
    "vat": ("vat (CNY)", "增值税（人民币元）"),
    "consumption_tax": ("consumption_tax (CNY)", "消费税（人民币元）"),
    "duties_total": ("duties_total (CNY)", "税款合计（人民币元）"),
    "duties_paid": ("duties_paid (CNY)", "已缴税款（人民币元）"),
    "duties_outstanding": ("duties_outstanding (CNY)", "未缴税款（人民币元）"),
    "order_no": ("order_no", "订单编号"),
    "waybill_no": ("waybill_no", "物流运单编号"),
    "client_ref": ("client_ref", "企业内部编号"),
}

# The columns whose cells are instants, written in China time: the header says so.
INSTANTS = frozenset({"recorded_at", "occurred_at", "submitted_at"})
CHINA_TIME: dict[Language, str] = {"en": " (UTC+8)", "zh-CN": "（北京时间）"}

# Sheet key -> (English, Chinese) name of its XLSX worksheet.
TITLES: dict[str, tuple[str, str]] = {
    "statement": ("statement", "进出存报表"),
    "entries": ("entries", "账册明细"),
    "declarations": ("declarations", "报关单"),
    "write-off": ("write-off", "核销"),
    "events": ("events", "事件"),
    "lots": ("lots", "批次"),
    "edges": ("edges", "批次关联"),
}


def header(key: str, language: Language) -> str:
    """Column `key`'s header in `language` (KeyError for a column the table lacks)."""
    en, zh = HEADERS[key]
    text = zh if language == "zh-CN" else en
    return text + CHINA_TIME[language] if key in INSTANTS else text


def title(key: str, language: Language) -> str:
    """Sheet `key`'s worksheet name in `language`."""
    en, zh = TITLES[key]
    return zh if language == "zh-CN" else en
