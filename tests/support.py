"""Helpers for tests: valid identifiers, a running app, keys for each role, sample bodies."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient
from stdnum.cn import ric, uscc

from api.app import create_app
from api.settings import Settings

_counter = itertools.count(1)


def make_uscc(serial: int | None = None) -> str:
    """A USCC with a correct check digit (python-stdnum computes it)."""
    n = next(_counter) if serial is None else serial
    base = f"91610131MA{n:07d}"
    return base + uscc.calc_check_digit(base)


def make_resident_id(serial: int = 1) -> str:
    base = f"61010219900101{serial % 1000:03d}"
    return base + ric.calc_check_digit(base)


@dataclass
class Ledger:
    """A running app with a client and a token per role."""

    client: TestClient
    services: Any
    tokens: dict[str, str]

    def headers(self, who: str, key: str | None = None) -> dict[str, str]:
        h = {"Authorization": f"Bearer {self.tokens[who]}"}
        if key is not None:
            h["Idempotency-Key"] = key
        return h

    def post(self, path: str, who: str, body: Any, key: str | None = None, **kw: Any) -> Any:
        return self.client.post(path, json=body, headers=self.headers(who, key), **kw)

    def get(self, path: str, who: str, **kw: Any) -> Any:
        return self.client.get(path, headers=self.headers(who), **kw)

    def issue(self, name: str, role: str, **bound: str) -> str:
        token = self.services.keys.issue(name=name, role=role, **bound)
        self.tokens[name] = token
        return token

    def log_state(self) -> tuple[int, str | None]:
        """Event count and head hash: what a rejected request must leave unchanged."""
        head = self.services.app.log.head()
        return self.services.app.log.count(), (head.hash.hex() if head else None)


@contextmanager
def running_ledger(database_url: str) -> Iterator[Ledger]:
    app = create_app(Settings(database_url=database_url))
    with TestClient(app) as client:
        services = app.state.services
        ledger = Ledger(client=client, services=services, tokens={})
        for role in ("admin", "officer", "auditor"):
            ledger.issue(role, role)
        yield ledger


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


@dataclass
class Tenant:
    uscc: str
    book_no: str
    token_name: str


def onboard(ledger: Ledger, zone: str = "XCBZ") -> Tenant:
    """Register an enterprise with a book in `zone` and give it a key."""
    code = make_uscc()
    r = ledger.post("/v1/enterprises", "admin", enterprise_body(code))
    assert r.status_code == 201, r.text
    book_no = f"B{code[-8:]}{zone}"
    r = ledger.post("/v1/account-books", "admin", book_body(book_no, code, zone))
    assert r.status_code == 201, r.text
    name = f"ent-{code}"
    ledger.issue(name, "enterprise", enterprise=code)
    return Tenant(uscc=code, book_no=book_no, token_name=name)


def new_key() -> str:
    return str(uuid.uuid4())
