"""Sample identifiers and request bodies, shared by the tests and the benchmarks."""

from __future__ import annotations

from typing import Any

from stdnum.cn import ric, uscc


def make_uscc(serial: int) -> str:
    """A USCC with a correct check digit (python-stdnum computes it)."""
    base = f"91610131MA{serial:07d}"
    return base + uscc.calc_check_digit(base)


def make_resident_id(serial: int = 1) -> str:
    base = f"61010219900101{serial % 1000:03d}"
    return base + ric.calc_check_digit(base)


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
