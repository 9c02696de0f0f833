"""A ledger with one enterprise, its account book and an enterprise key, and a valid body.

The same data as tests/support.py (`make_uscc`, `onboard`, `declaration_body`), set up through
the write side directly so that the benchmarks need neither the test client nor a server.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import msgspec

from domain.account_book import OpenAccountBook
from domain.declaration import SubmitDeclaration
from domain.enterprise import RegisterEnterprise
from domain.events import Actor
from domain.reference import DEFAULT_ZONES
from ledger.application import LedgerApplication
from ledger.commands import Ledger
from ledger.database import parse_database_url
from ledger.keys import ApiKeys
from tests.samples import declaration_body, make_uscc

ZONE = "XCBZ"
ADMIN = Actor(name="bench-admin", role="admin")


def book_no_of(code: str) -> str:
    return f"B{code[-8:]}{ZONE}"


def body_bytes(serial: int = 1) -> bytes:
    """The HTTP body `onboard(ledger, serial)`'s tenant submits (compact JSON)."""
    code = make_uscc(serial)
    return json.dumps(declaration_body(code, book_no_of(code)), separators=(",", ":")).encode()


@dataclass(frozen=True)
class Tenant:
    uscc: str
    book_no: str
    actor: Actor
    token: str | None
    body: bytes  # a valid declaration body, as sent over HTTP

    def command(self) -> SubmitDeclaration:
        return msgspec.json.decode(self.body, type=SubmitDeclaration)


def onboard(ledger: Ledger, serial: int = 1, keys: ApiKeys | None = None) -> Tenant:
    """Register an enterprise and its book in XCBZ; with `keys`, issue its enterprise key."""
    code = make_uscc(serial)
    ledger.register_enterprise(
        RegisterEnterprise(
            uscc=code,
            customs_code="6101340001",
            name="Xi'an Silk Road Trading Co., Ltd.",
            credit_class="regular",
        ),
        ADMIN,
    )
    book_no = book_no_of(code)
    ledger.open_account_book(
        msgspec.convert(
            {
                "book_no": book_no,
                "enterprise": code,
                "zone": ZONE,
                "items": [
                    {
                        "item_no": 1,
                        "hs_code": "8471300000",
                        "name": "Laptop computers",
                        "unit": "C62",
                    },
                    {
                        "item_no": 2,
                        "hs_code": "0901210000",
                        "name": "Roasted coffee",
                        "unit": "KGM",
                    },
                ],
            },
            OpenAccountBook,
        ),
        ADMIN,
    )
    name = f"ent-{code}"
    token = keys.issue(name=name, role="enterprise", enterprise=code) if keys else None
    return Tenant(
        uscc=code,
        book_no=book_no,
        actor=Actor(name=name, role="enterprise", enterprise=code),
        token=token,
        body=body_bytes(serial),
    )


def open_ledger(database_url: str) -> tuple[LedgerApplication, Ledger]:
    app = LedgerApplication(parse_database_url(database_url))
    return app, Ledger(app, {z.code: z for z in DEFAULT_ZONES})


def prepare_server_database(database_url: str) -> Tenant:
    """Write the tenant and its key into a new database a server will then open."""
    app, ledger = open_ledger(database_url)
    try:
        return onboard(ledger, keys=ApiKeys(app))
    finally:
        app.close()
