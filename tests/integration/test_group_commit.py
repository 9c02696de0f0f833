"""Group commit: commands that arrive together share one transaction, and a failed group
takes every command decided on top of it back to the start - no gaps, nothing lost."""

from __future__ import annotations

import threading
from collections import defaultdict

import msgspec
from eventsourcing.persistence import IntegrityError

from api.services import load_zones
from domain.declaration import SubmitDeclaration
from domain.events import Actor
from ledger.application import LedgerApplication
from ledger.audit import verify
from ledger.commands import Idempotency, Ledger
from ledger.database import parse_database_url
from tests.samples import rules_without_draws
from tests.support import declaration_body, onboard, running_ledger


def _world(url: str):
    with running_ledger(url) as ledger:
        t = onboard(ledger)
    app = LedgerApplication(parse_database_url(url))
    actor = Actor(name=t.token_name, role="enterprise", enterprise=t.uscc)
    body = msgspec.convert(declaration_body(t.uscc, t.book_no), SubmitDeclaration)
    return app, Ledger(app, load_zones(None), rules=rules_without_draws()), actor, body


def _streams_are_gapless(app: LedgerApplication) -> None:
    versions = defaultdict(list)
    for r in app.log.select_log(0, 100_000):
        versions[r.stream_id].append(r.version)
    for stream, seen in versions.items():
        assert seen == list(range(1, len(seen) + 1)), stream


def test_failed_groups_are_retried_with_everything_decided_on_them(database_url):
    app, ledger, actor, body = _world(database_url)
    real_put = app.events.put
    failures = {"left": 3}
    lock = threading.Lock()

    def flaky_put(events, **kw):
        with lock:
            fail = failures["left"] > 0 and len(events) > 3
            if fail:
                failures["left"] -= 1
        if fail:
            raise IntegrityError("simulated: another process took these versions")
        return real_put(events, **kw)

    app.events.put = flaky_put  # type: ignore[method-assign]
    numbers: list[str] = []
    errors: list[Exception] = []

    def submit(n: int) -> None:
        for i in range(15):
            try:
                idem = Idempotency(actor.name, f"g{n}-{i}", "POST", "/v1/declarations")
                out = ledger.submit_declaration(body, actor, idem)
                with lock:
                    numbers.append(out.body.declaration_no)
            except Exception as e:  # collected and asserted below
                errors.append(e)

    try:
        threads = [threading.Thread(target=submit, args=(n,)) for n in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert failures["left"] == 0, "the test did not exercise a failing group"
        assert sorted(int(x[9:]) for x in numbers) == list(range(1, 91))
        _streams_are_gapless(app)
        assert verify(app.log).ok
    finally:
        app.close()


def test_commands_that_arrive_together_share_a_transaction(sqlite_url):
    app, ledger, actor, body = _world(sqlite_url)
    sizes: list[int] = []
    real_put = app.events.put

    def counting_put(events, **kw):
        sizes.append(len(events))
        return real_put(events, **kw)

    app.events.put = counting_put  # type: ignore[method-assign]
    events_before = app.log.count()
    barrier = threading.Barrier(8)

    def submit(n: int) -> None:
        barrier.wait()
        for i in range(10):
            ledger.submit_declaration(
                body, actor, Idempotency(actor.name, f"t{n}-{i}", "POST", "/v1/declarations")
            )

    try:
        threads = [threading.Thread(target=submit, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # Every event of the 80 declarations went through, in fewer transactions than that.
        assert sum(sizes) == app.log.count() - events_before
        assert len(sizes) < 80
        _streams_are_gapless(app)
    finally:
        app.close()


def test_a_batch_is_decided_in_order_and_committed_in_one_group(database_url):
    """`Ledger.submit_declarations`: up to HELD_TICKETS items share one group commit, their
    numbers follow the items' order, and a refused item is its error without stopping the
    rest; the same batch again is every accepted item's first answer, replayed."""
    app, ledger, actor, body = _world(database_url)
    groups: list[int] = []
    app.on_appended = groups.append
    other = msgspec.structs.replace(body, declarant="91350100M000100Y43")  # not the caller's
    items = []
    for i in range(60):
        chosen = other if i % 7 == 3 else body
        items.append((chosen, Idempotency(actor.name, f"batch-{i}", "POST", "/v1/declarations")))
    try:
        outcomes = ledger.submit_declarations(items, actor)
        assert len(groups) == 1
        refused = [i for i, o in enumerate(outcomes) if isinstance(o, BaseException)]
        assert refused == [i for i in range(60) if i % 7 == 3]
        accepted = [o for o in outcomes if not isinstance(o, BaseException)]
        numbers = [o.body.declaration_no for o in accepted]
        assert numbers == sorted(numbers)
        assert len(set(numbers)) == len(numbers)
        positions = [o.position for o in accepted]
        assert positions == sorted(positions)
        state = app.log.count()
        again = ledger.submit_declarations(items, actor)
        assert app.log.count() == state
        for first, second in zip(outcomes, again, strict=True):
            if isinstance(first, BaseException):
                assert type(second) is type(first)
            else:
                assert second.replayed
                assert second.body["declaration_no"] == first.body.declaration_no
        assert verify(app.log).ok
        _streams_are_gapless(app)
    finally:
        app.close()
