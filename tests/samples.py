"""Sample identifiers and request bodies, shared by the tests and the benchmarks."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec
from stdnum.cn import ric, uscc


def make_uscc(serial: int) -> str:
    """A USCC with a correct check digit (python-stdnum computes it)."""
    base = f"91610131MA{serial:07d}"
    return base + uscc.calc_check_digit(base)


def make_resident_id(serial: int = 1) -> str:
    base = f"61010219900101{serial % 1000:03d}"
    # python-stdnum computes the check digit of a full 18-character number (it ignores the last).
    return base + ric.calc_check_digit(base + "0")


def enterprise_body(
    uscc_code: str, name: str = "Xi'an Silk Road Trading Co., Ltd."
) -> dict[str, Any]:
    return {
        "uscc": uscc_code,
        "customs_code": "6101340001",
        "name": name,
        "credit_class": "regular",
    }


def book_body(book_no: str, enterprise: str, zone: str = "XCBZ") -> dict[str, Any]:
    return {
        "book_no": book_no,
        "enterprise": enterprise,
        "zone": zone,
        "items": [
            {"item_no": 1, "hs_code": "8471300000", "name": "Laptop computers", "unit": "C62"},
            {"item_no": 2, "hs_code": "0901210000", "name": "Roasted coffee", "unit": "KGM"},
            # Watched goods under TEST_RULES: medicaments go to document review (yellow),
            # sporting shotguns to inspection (red).
            {"item_no": 3, "hs_code": "3004900000", "name": "Medicaments", "unit": "C62"},
            {"item_no": 4, "hs_code": "9303200000", "name": "Sporting shotguns", "unit": "C62"},
        ],
    }


def declaration_body(declarant: str, book_no: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "flow": "first_line_in",
        "trade_mode": "5034",
        "declarant": declarant,
        "zone": "XCBZ",
        "account_book": book_no,
        "transport": {"mode": "rail", "reference": "X8024-20261127", "container": "TGHU1234567"},
        "country": "DE",
        "currency": "EUR",
        "incoterm": "FOB",
        "freight": "1200.00",
        "insurance": "80.00",
        "lines": [
            {
                "line_no": 1,
                "item_no": 1,
                "hs_code": "8471300000",
                "description": "Laptop computers",
                "quantity": "1000",
                "unit": "C62",
                "unit_price": "420.00",
                "origin_country": "DE",
            }
        ],
        "client_ref": "PO-7781",
    }
    body.update(overrides)
    return body


def _no_draws() -> Any:
    from domain.risk_rules import DEFAULT_RULES

    classes = {
        name: msgspec.structs.replace(policy, selection_rate=Decimal(0))
        for name, policy in DEFAULT_RULES.classes.items()
    }
    return msgspec.structs.replace(DEFAULT_RULES, seed="tests", classes=classes)


def _rates_for_this_month() -> Any:
    """The default duty tables, with November 2026's customs rates copied to the current
    month when the table has none for it, so that tests keep passing after the table ends.
    The current month is China's (the assessment's), and the next one too: a test that starts
    late on a month's last day may declare after midnight in Xi'an."""
    from datetime import UTC, datetime, timedelta

    from domain.declaration import SHANGHAI
    from domain.duty_tables import DEFAULT_TABLES

    now = datetime.now(UTC).astimezone(SHANGHAI)
    months = {now.strftime("%Y-%m"), (now + timedelta(days=1)).strftime("%Y-%m")}
    missing = sorted(months - {r.month for r in DEFAULT_TABLES.exchange_rates})
    if not missing:
        return DEFAULT_TABLES
    november = next(r for r in DEFAULT_TABLES.exchange_rates if r.month == "2026-11")
    copies = [
        msgspec.structs.replace(november, month=m, source="tests: copy of 2026-11") for m in missing
    ]
    return msgspec.structs.replace(
        DEFAULT_TABLES, exchange_rates=[*DEFAULT_TABLES.exchange_rates, *copies]
    )


def rules_without_draws() -> Any:
    """The default risk rules without random selection, so a test knows each channel."""
    from domain.assessment import ClearanceRules

    return ClearanceRules(risk=_no_draws(), duties=_rates_for_this_month())


def line(item_no: int, **overrides: Any) -> dict[str, Any]:
    """A declaration line for one of book_body's items."""
    items = {
        1: ("8471300000", "Laptop computers", "C62", "420.00"),
        2: ("0901210000", "Roasted coffee", "KGM", "8.50"),
        3: ("3004900000", "Medicaments", "C62", "12.00"),
        4: ("9303200000", "Sporting shotguns", "C62", "900.00"),
    }
    hs, name, unit, price = items[item_no]
    body: dict[str, Any] = {
        "line_no": 1,
        "item_no": item_no,
        "hs_code": hs,
        "description": name,
        "quantity": "10",
        "unit": unit,
        "unit_price": price,
        "origin_country": "DE",
    }
    body.update(overrides)
    return body


def retail_row(tenant: Any, n: int, **changes: Any) -> dict[str, Any]:
    """The cells of an import row (domain/imports.py `retail_lists`, by column name): a retail
    list of one laptop at 400 CNY into the tenant's book, to buyer n (each row its own buyer)."""
    buyer = make_resident_id(n)
    row: dict[str, Any] = {
        "order_no": f"JD{n:08d}",
        "trade_mode": "1210",
        "declarant": tenant.uscc,
        "zone": "XCBZ",
        "account_book": tenant.book_no,
        "transport_mode": "express",
        "transport_reference": f"SF{n:010d}",
        "country": "CN",
        "currency": "CNY",
        "incoterm": "DAP",
        "buyer_id": buyer,
        "buyer_name": "李华",
        "order_amount": 400,
        "payment_no": f"PAY{n:08d}",
        "payer_id": buyer,
        "payment_amount": 400,
        "waybill_no": f"WB{n:08d}",
        "consignee_id": make_resident_id(n + 1),
        "item_no": 1,
        "hs_code": 8471300000,
        "description": "笔记本电脑 Laptop",
        "quantity": 1,
        "unit": "C62",
        "unit_price": 400,
    }
    row.update(changes)
    return row
