"""Unit-value histories in shards (decision 0040): two applications (two server processes) on
one PostgreSQL store release the same goods at once.

Each claims its own shard (advisory locks), so their releases never race on a history stream:
once each holds its number blocks, no command is decided twice, and each application's
assessments read both shards merged, the other's as of at most GLANCE_SECONDS ago. (SQLite has
one writer process per file, which writes shard 0, the stream of logs written before shards:
the golden log, tests/integration/test_golden_log.py, is unchanged.)
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from unittest import mock

import msgspec
import pytest

from api.services import load_zones
from domain.account_book import OpenAccountBook
from domain.declaration import SubmitDeclaration
from domain.enterprise import RegisterEnterprise
from domain.events import Actor
from domain.unit_values import SHARDS, UnitValues, released_prices, unit_values_id
from ledger import application
from ledger.application import LedgerApplication
from ledger.commands import Idempotency, Ledger
from ledger.database import parse_database_url
from ledger.unit_of_work import CommandUnitOfWork
from tests.samples import book_body, declaration_body, enterprise_body, rules_without_draws
from tests.support import make_uscc

ADMIN = Actor(name="admin", role="admin")
EACH = 12  # releases per application


pytestmark = pytest.mark.postgres


@pytest.fixture
def two_servers(postgres_url: str) -> Iterator[tuple[Ledger, Ledger]]:
    apps = [LedgerApplication(parse_database_url(postgres_url)) for _ in range(2)]
    try:
        yield tuple(Ledger(app, load_zones(None), rules=rules_without_draws()) for app in apps)  # type: ignore[misc]
    finally:
        for app in apps:
            app.close()


def _book(ledger: Ledger) -> tuple[str, str]:
    uscc = make_uscc()
    ledger.register_enterprise(msgspec.convert(enterprise_body(uscc), RegisterEnterprise), ADMIN)
    book = f"B{uscc[-8:]}XCBZ"
    ledger.open_account_book(msgspec.convert(book_body(book, uscc, "XCBZ"), OpenAccountBook), ADMIN)
    return uscc, book


def _release(ledger: Ledger, uscc: str, book: str, key: str, price: str) -> None:
    body = declaration_body(uscc, book)
    body["lines"] = [{**body["lines"][0], "unit_price": price}]
    actor = Actor(name="ent", role="enterprise", enterprise=uscc)
    idem = Idempotency("ent", key, "POST", "/v1/declarations")
    view = ledger.submit_declaration(msgspec.convert(body, SubmitDeclaration), actor, idem).body
    assert (view.status, view.channel) == ("released", "green"), view


def test_two_servers_release_the_same_goods_without_a_lost_race(
    two_servers: tuple[Ledger, Ledger],
) -> None:
    first, _ = two_servers
    uscc, book = _book(first)
    assert [ledger.app.history_shard for ledger in two_servers] == [0, 1]
    prices = {0: "420.00", 1: "421.00"}
    # Each server's first release reserves its number blocks (those race, as they may).
    for which, ledger in enumerate(two_servers):
        _release(ledger, uscc, book, f"{which}-first", prices[which])
    lost: list[object] = []
    back_off = application._back_off

    def counted(lost_on: Any, attempt: int) -> None:
        lost.append(lost_on)
        back_off(lost_on, attempt)

    with mock.patch.object(application, "_back_off", counted):
        threads = [
            threading.Thread(
                target=_release, args=(two_servers[w], uscc, book, f"{w}-{n}", prices[w])
            )
            for n in range(EACH)
            for w in (0, 1)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not lost, f"{len(lost)} groups of commands decided again"
    # Every release recorded its price once, in its own server's shard.
    stored = {k: first.app.stored(unit_values_id(book, 1, "EUR", k)) for k in range(SHARDS)}
    assert {k: s.released for k, s in stored.items() if isinstance(s, UnitValues)} == {
        0: EACH + 1,
        1: EACH + 1,
    }
    for k in (0, 1):
        shard = stored[k]
        assert isinstance(shard, UnitValues) and set(shard.prices) == {Decimal(prices[k])}
    # Each server reads the history of both once its glance is due again.
    with mock.patch.object(application, "GLANCE_SECONDS", 0.0):
        for ledger in two_servers:
            history = released_prices(CommandUnitOfWork(ledger.app, None), book, 1, "EUR")
            assert history.released == 2 * (EACH + 1)
            assert set(history.prices) == {Decimal(p) for p in prices.values()}


def test_a_glance_is_read_again_only_when_due(two_servers: tuple[Ledger, Ledger]) -> None:
    """The other server's shard is read again once its glance is due; the own one at once."""
    first, second = two_servers
    uscc, book = _book(first)
    _release(first, uscc, book, "a-1", "420.00")
    _release(second, uscc, book, "b-1", "420.00")

    def read(ledger: Ledger) -> int:
        return released_prices(CommandUnitOfWork(ledger.app, None), book, 1, "EUR").released

    with mock.patch.object(application, "GLANCE_SECONDS", 0.0):
        assert read(first) == 2
    with mock.patch.object(application, "GLANCE_SECONDS", 3600.0):
        _release(second, uscc, book, "b-2", "420.00")
        assert read(first) == 2  # the glance at the second server's shard is not due
        assert read(second) == 3  # its own shard, exactly
    with mock.patch.object(application, "GLANCE_SECONDS", 0.0):
        assert read(first) == 3


def test_a_third_server_finds_the_next_free_shard_and_a_closed_one_frees_its_own(
    postgres_url: str, two_servers: tuple[Ledger, Ledger]
) -> None:
    # Claimed when first asked for (an assessment), not before; /healthz shows the claim.
    assert [ledger.app.claimed_history_shard for ledger in two_servers] == [None, None]
    assert [ledger.app.history_shard for ledger in two_servers] == [0, 1]
    assert [ledger.app.claimed_history_shard for ledger in two_servers] == [0, 1]
    third = LedgerApplication(parse_database_url(postgres_url))
    try:
        assert third.history_shard == 2
    finally:
        third.close()
    two_servers[1].app.close()
    again = LedgerApplication(parse_database_url(postgres_url))
    try:
        assert again.history_shard == 1
    finally:
        again.close()
