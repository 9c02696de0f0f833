"""Helpers for tests: a running app, keys for each role, onboarding a tenant."""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import uvicorn
from fastapi.testclient import TestClient

from api.app import create_app
from api.services import Services
from api.settings import RateLimits, Settings
from tests import samples
from tests.samples import book_body, declaration_body, enterprise_body, make_resident_id

__all__ = [
    "Ledger",
    "Tenant",
    "admit",
    "book_body",
    "declaration_body",
    "enterprise_body",
    "make_resident_id",
    "make_uscc",
    "new_key",
    "onboard",
    "running_ledger",
    "serving",
]

_counter = itertools.count(1)

# The suite's own clients are one address sending thousands of requests a second, many of
# them deliberately refused (401): the limits stay on (their code runs in every test) but are
# raised out of reach. tests/e2e/test_rate_limits.py tests the defaults.
RAISED_LIMITS = RateLimits(
    address_per_second=1e9,
    address_burst=1e9,
    key_per_second=1e9,
    key_burst=1e9,
    auth_failures_per_minute=1e9,
    auth_failures_burst=1e9,
)
# The same for a `customs-ledger serve` process the tests start (its environment).
RAISED_LIMITS_ENV = {
    "LEDGER_RATE_ADDRESS_PER_SECOND": "1e9",
    "LEDGER_RATE_ADDRESS_BURST": "1e9",
    "LEDGER_RATE_KEY_PER_SECOND": "1e9",
    "LEDGER_RATE_KEY_BURST": "1e9",
    "LEDGER_AUTH_FAILURES_PER_MINUTE": "1e9",
    "LEDGER_AUTH_FAILURES_BURST": "1e9",
}


def make_uscc(serial: int | None = None) -> str:
    """A USCC with a correct check digit; a new one on each call unless `serial` is given."""
    return samples.make_uscc(next(_counter) if serial is None else serial)


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
def running_ledger(
    database_url: str, rules: Any = None, limits: RateLimits = RAISED_LIMITS, **more: Any
) -> Iterator[Ledger]:
    """The app on a store, with the test risk rules (no random selection) unless given, and
    the rate limits raised unless given; `more`: other settings."""
    settings = Settings(database_url=database_url, rate_limits=limits, **more)
    app = create_app(settings, rules=rules or samples.rules_without_draws())
    with TestClient(app) as client:
        services = app.state.services
        ledger = Ledger(client=client, services=services, tokens={})
        for role in ("admin", "officer", "auditor"):
            # Unique names, so a test may start the ledger again on the same store.
            name = f"{role}-{uuid.uuid4().hex[:8]}"
            ledger.tokens[role] = services.keys.issue(name=name, role=role)
        yield ledger


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


def admit(
    ledger: Ledger,
    tenant: Tenant,
    item_no: int,
    quantity: str,
    zone: str = "XCBZ",
    currency: str = "EUR",
) -> None:
    """Put bonded goods in a tenant's book: a released first-line import, then gate_in."""
    from tests.samples import line

    gate = f"gate-{zone.lower()}-{uuid.uuid4().hex[:6]}"
    ledger.issue(gate, "operator", zone=zone)
    body = declaration_body(
        tenant.uscc,
        tenant.book_no,
        zone=zone,
        currency=currency,
        lines=[line(item_no, quantity=quantity)],
    )
    d = ledger.post("/v1/declarations", tenant.token_name, body, key=new_key())
    assert d.status_code == 201, d.text
    if d.json()["status"] == "document_review":
        # An item's first declaration over the first-value bound waits for an officer's review
        # (domain/value_checks.py); the officer releases it, as at a real first arrival.
        assert all(r.startswith("first_value_high") for r in d.json()["risk_reasons"]), d.text
        d = ledger.post(f"/v1/declarations/{d.json()['id']}/release", "officer", {})
        assert d.status_code == 200, d.text
    assert d.json()["status"] == "released", d.text
    moved = ledger.post(
        "/v1/movements",
        gate,
        {
            "kind": "gate_in",
            "declaration": d.json()["id"],
            "lines": [{"line_no": 1, "quantity": quantity}],
        },
        key=new_key(),
    )
    assert moved.status_code == 201, moved.text


@contextmanager
def serving(
    database_url: str,
    read_wait_seconds: float = 2.0,
    limits: RateLimits = RAISED_LIMITS,
    **more: Any,
) -> Iterator[tuple[str, Ledger]]:
    """The ledger over real HTTP on a free port (uvicorn in a thread), with an httpx client
    and tokens for admin, officer and auditor; yields (base URL, ledger). The rate limits
    are raised unless given; `more`: other settings."""
    settings = Settings(
        database_url=database_url, read_wait_seconds=read_wait_seconds, rate_limits=limits, **more
    )
    app = create_app(settings, rules=samples.rules_without_draws())
    # As `serve` does: a stream left open never holds the stop for long.
    config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the ledger did not start"
        time.sleep(0.05)
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        with httpx.Client(base_url=base, timeout=30) as client:
            ledger = Ledger(client=client, services=app.state.services, tokens={})  # type: ignore[arg-type]
            for role in ("admin", "officer", "auditor"):
                ledger.issue(role, role)
            yield base, ledger
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


def pg_conninfo(db: Any) -> str:
    """libpq's keywords for a parsed PostgreSQL URL (ledger.database.Database), quoted; an empty
    password is left out (`password= dbname=test` would make "dbname=test" the password, and a
    schema would be made in the user's own database instead of the test database)."""
    from psycopg.conninfo import make_conninfo

    parts = {
        "host": db.host,
        "port": db.port,
        "user": db.user,
        "password": db.password,
        "dbname": db.dbname,
    }
    return make_conninfo(**{k: v for k, v in parts.items() if v})


# What chooses the language of a command (api/i18n.py `from_environment`).
LOCALE_VARIABLES = ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")


def run_cli(
    url: str, *args: str, timeout: float = 120, **env_vars: str
) -> subprocess.CompletedProcess[str]:
    """`customs-ledger ARGS` on the store at `url` (this interpreter, `python -m api.cli`),
    with extra environment variables; its output captured as text. The locale variables of
    the tests' own environment are left out (the command speaks English) unless given."""
    inherited = {k: v for k, v in os.environ.items() if k not in LOCALE_VARIABLES}
    env = dict(inherited, LEDGER_DATABASE_URL=url, **env_vars)
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class Clock:
    """The ledger's clock, moved by the test."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@contextmanager
def clocked_ledger(database_url: str, clock: Clock, rules: Any) -> Iterator[Ledger]:
    """The app on a store, with `clock` as its time (the ledger's and the reference outlook's)."""
    settings = Settings(database_url=database_url, rate_limits=RAISED_LIMITS)
    services = Services.build(settings, rules)
    services.ledger.clock = clock
    services.reference.clock = clock
    with TestClient(create_app(settings, services=services)) as client:
        ledger = Ledger(client=client, services=services, tokens={})
        for role in ("admin", "officer", "auditor"):
            name = f"{role}-{uuid.uuid4().hex[:8]}"
            ledger.tokens[role] = services.keys.issue(name=name, role=role)
        yield ledger


def first_start_events() -> int:
    """The events a server's first start writes on an empty log with the built-in tables:
    one publication per month of exchange rates, the tariff, the positive list and the risk
    rules (docs/reference-data.md)."""
    from domain.duty_tables import DEFAULT_TABLES

    return len(DEFAULT_TABLES.exchange_rates) + len(DEFAULT_TABLES.tariffs) + 2


def publications_in(ledger: Ledger) -> int:
    """How many reference publications the ledger's log holds (the first start's, at least)."""
    topic = "domain.reference_data:ReferencePublished"
    return len(ledger.services.app.log.select_log(None, 100_000, topics=[topic]))


def china(text: str) -> datetime:
    """A wall-clock time in China (`2027-01-04T09:00`) as an aware datetime."""
    from domain.declaration import SHANGHAI

    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def laptop_exit(tenant: Tenant, currency: str = "EUR", price: str = "420.00") -> dict[str, Any]:
    """One laptop (HS 8471.30: MFN 0%, VAT 13%) into China from a tenant's book, priced CIF,
    without freight or insurance: its VAT is price x rate x 13%."""
    body = declaration_body(
        tenant.uscc,
        tenant.book_no,
        flow="second_line_out",
        trade_mode="0110",
        country="CN",
        currency=currency,
        incoterm="CIF",
        lines=[{**samples.line(1, quantity="1", unit_price=price), "origin_country": None}],
    )
    del body["freight"], body["insurance"]
    return body
