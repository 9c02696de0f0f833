"""On SQLite one server owns the file, but `customs-ledger reference load` writes beside it: the
server's kept register states are checked against the store (at most once a second), so its
decisions use a publication made by another process without a restart."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from domain.events import Actor
from domain.reference_data import PublishExchangeRates, ReferenceRegister, register_id
from ledger import application
from ledger.application import LedgerApplication
from ledger.commands import Ledger
from ledger.database import parse_database_url
from ledger.unit_of_work import CommandUnitOfWork
from tests.samples import rules_without_draws

ADMIN = Actor(name="cli:test", role="admin")


def _months(ledger: Ledger) -> set[str]:
    """The months of rates a command of this process decides with."""
    uow = CommandUnitOfWork(ledger.app, None)
    register = uow.load(register_id("exchange-rates"), ReferenceRegister)
    assert register is not None
    return {p.month or "" for p in register.publications}


def test_a_publication_by_another_process_is_seen_by_the_servers_decisions(
    sqlite_url, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(application, "REFRESH_SECONDS", 0.0)
    server_app = LedgerApplication(parse_database_url(sqlite_url))
    cli_app = LedgerApplication(parse_database_url(sqlite_url))
    try:
        server = Ledger(server_app, {}, rules=rules_without_draws())
        server.publish_builtins([], lambda heading: [], now=datetime(2026, 12, 1, tzinfo=UTC))
        before = _months(server)  # kept from now on
        assert "2031-01" not in before
        cli = Ledger(cli_app, {}, rules=rules_without_draws())
        body = PublishExchangeRates(month="2031-01", rates={"EUR": Decimal("8.3")}, source="t")
        cli.publish_reference("exchange-rates", body, ADMIN)
        assert _months(server) == before | {"2031-01"}
        # Once a second at most: a check within the second keeps the state it has.
        monkeypatch.setattr(application, "REFRESH_SECONDS", 3600.0)
        body = PublishExchangeRates(month="2031-02", rates={"EUR": Decimal("8.3")}, source="t")
        cli.publish_reference("exchange-rates", body, ADMIN)
        assert "2031-02" not in _months(server)
        assert date(2031, 2, 1) in {
            p.effective_from for p in cli.register("exchange-rates").publications
        }
    finally:
        server_app.close()
        cli_app.close()
