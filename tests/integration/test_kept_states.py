"""Kept states on PostgreSQL: a process decides on the committed states it keeps, and another
process's writes to the streams it only read still count.

Two applications on one schema stand for two server processes. The first keeps the states
of its first submission (enterprise, book, number series, unit values); the second then
changes the enterprise's credit class or registers a new item in the book.
"""

from __future__ import annotations

import json

import msgspec
import pytest

from api.services import load_zones
from domain.account_book import BookItem, RegisterItems
from domain.declaration import SubmitDeclaration, declaration_id
from domain.enterprise import ChangeCreditClass
from domain.errors import ValidationFailed
from domain.events import Actor
from ledger.application import LedgerApplication
from ledger.commands import Idempotency, Ledger
from ledger.database import parse_database_url
from tests.samples import rules_without_draws
from tests.support import declaration_body, onboard, running_ledger

pytestmark = pytest.mark.postgres

ADMIN = Actor(name="admin", role="admin")
OFFICER = Actor(name="officer", role="officer")


def _process(url: str) -> tuple[LedgerApplication, Ledger]:
    app = LedgerApplication(parse_database_url(url))
    return app, Ledger(app, load_zones(None), rules=rules_without_draws())


def _submit(ledger: Ledger, actor: Actor, body: dict, key: str):
    cmd = msgspec.convert(body, SubmitDeclaration)
    return ledger.submit_declaration(cmd, actor, Idempotency(actor.name, key, "POST", "/x"))


def _assessed_class(app: LedgerApplication, actor: Actor, key: str) -> str:
    records = app.log.select_stream(declaration_id(actor.name, key))
    assessed = [r for r in records if r.topic.endswith(":DeclarationAssessed")]
    assert len(assessed) == 1, [r.topic for r in records]
    return str(json.loads(assessed[0].state)["credit_class"])


def _failed_puts(app: LedgerApplication) -> list[BaseException]:
    """Record the errors of the application's group commits from now on."""
    failures: list[BaseException] = []
    real_put = app.events.put

    def put(events, **kw):
        try:
            return real_put(events, **kw)
        except BaseException as e:
            failures.append(e)
            raise

    app.events.put = put  # type: ignore[method-assign]
    return failures


def test_a_write_decided_on_a_read_only_stream_another_process_moved_is_decided_again(
    postgres_url,
):
    with running_ledger(postgres_url) as ledger:
        t = onboard(ledger)
    actor = Actor(name=t.token_name, role="enterprise", enterprise=t.uscc)
    body = declaration_body(t.uscc, t.book_no)
    first, first_ledger = _process(postgres_url)
    second, second_ledger = _process(postgres_url)
    try:
        assert _submit(first_ledger, actor, body, "k1").status_code == 201
        assert _assessed_class(first, actor, "k1") == "regular"
        # Another process changes the class of the enterprise the first one keeps.
        second_ledger.change_credit_class(
            t.uscc, ChangeCreditClass(credit_class="dishonest", reason="audit"), OFFICER
        )
        failures = _failed_puts(first)
        out = _submit(first_ledger, actor, body, "k2")
        assert out.status_code == 201
        # The kept enterprise was stale: its group was refused under the table lock and the
        # command decided again on the stored class.
        assert len(failures) == 1 and "decided on version" in str(failures[0])
        assert _assessed_class(first, actor, "k2") == "dishonest"
        # And the kept state is current again: the next one goes through at once.
        assert _submit(first_ledger, actor, body, "k3").status_code == 201
        assert len(failures) == 1
        assert _assessed_class(first, actor, "k3") == "dishonest"
    finally:
        first.close()
        second.close()


def test_a_refusal_on_a_kept_state_another_process_moved_is_decided_again(postgres_url):
    with running_ledger(postgres_url) as ledger:
        t = onboard(ledger)
    actor = Actor(name=t.token_name, role="enterprise", enterprise=t.uscc)
    first, first_ledger = _process(postgres_url)
    second, second_ledger = _process(postgres_url)
    try:
        out = _submit(first_ledger, actor, declaration_body(t.uscc, t.book_no), "k1")
        assert out.status_code == 201
        # Another process registers item 5 in the book the first one keeps (items 1-4).
        second_ledger.register_items(
            t.book_no,
            RegisterItems(
                items=[BookItem(item_no=5, hs_code="8471300000", name="Tablets", unit="C62")]
            ),
            ADMIN,
        )
        line = {**declaration_body(t.uscc, t.book_no)["lines"][0], "item_no": 5}
        out = _submit(first_ledger, actor, declaration_body(t.uscc, t.book_no, lines=[line]), "k2")
        assert out.status_code == 201, out.body
        # An item that no process registered is still refused, with the field named.
        line = {**line, "item_no": 6}
        with pytest.raises(ValidationFailed) as refused:
            _submit(first_ledger, actor, declaration_body(t.uscc, t.book_no, lines=[line]), "k3")
        assert [(e.loc, e.msg) for e in refused.value.errors] == [
            ("$.lines[0].item_no", "item 6 is not registered in the book")
        ]
    finally:
        first.close()
        second.close()
