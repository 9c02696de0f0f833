"""The batched apply path equals applying one event per page, whatever the page boundaries.

Each projection folds a page in memory (the rows it reads and changes cached, appended rows
collected) and writes it with `executemany`; a runner that committed the page before starts
the next one from the rows it still holds, any other start reads them back from the store.
On a log with every kind of event (the train-to-air story and more), random page sizes and
random hand-overs between two runners on the same views (which must drop what they hold) give
exactly the tables of a replay that applies one event per page; so does a replay's pipeline
(a writer thread commits each page while the next one is folded).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from api.replaying import replay_runners, scratch_views
from api.services import read_models_runner
from projections.digest import views_digest
from projections.runner import CatchUpRunner
from tests.samples import line
from tests.stories import run_story
from tests.support import Ledger, admit, declaration_body, new_key, running_ledger

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# A page of 1 to 12 events (the log has about 125), fed by runner 0, runner 1, or a new runner
# (nothing carried over).
PLANS = st.lists(
    st.tuples(st.integers(1, 12), st.sampled_from(["0", "1", "new"])), min_size=1, max_size=25
)


def _more(ledger: Ledger, story: Any) -> None:
    """Beyond the story: receipts' subscriptions (an enterprise's and customs'), more goods
    in, a withdrawal, a credit class, stocktakes both ways."""
    t = story.tenant
    for who in (t.token_name, "officer"):  # port 9 (discard): nothing listens, retries later
        body = {"url": "http://127.0.0.1:9/receipts", "events": ["*"]}
        r = ledger.post("/v1/subscriptions", who, body, key=new_key())
        assert r.status_code == 201, r.text
    admit(ledger, t, 2, "7.5")
    body = declaration_body(t.uscc, t.book_no, lines=[line(3, quantity="5")])
    review = ledger.post("/v1/declarations", t.token_name, body, key=new_key()).json()
    ledger.post(f"/v1/declarations/{review['id']}/withdrawal", t.token_name, {"reason": "x"})
    ledger.post(
        f"/v1/enterprises/{t.uscc}/credit-class",
        "officer",
        {"credit_class": "regular", "reason": "review"},
    )
    for delta in ("0.5", "-1"):
        change = {
            "kind": "adjustment",
            "account_book": t.book_no,
            "item_no": 2,
            "quantity_delta": delta,
            "reason": "recount",
        }
        r = ledger.post("/v1/movements", t.token_name, change, key=new_key())
        assert r.status_code == 201, r.text


def _feed(runners: Sequence[CatchUpRunner], plan: list[tuple[int, str]], make: Any) -> None:
    """Apply pages as the plan says, cycling through it until the log is read."""
    pool = list(runners)
    step = 0
    while True:
        size, who = plan[step % len(plan)]
        step += 1
        if who == "new":
            pool[0] = make()
            who = "0"
        runner = pool[int(who)]
        runner.batch_size = size
        if runner.run_once() == 0:
            return


def test_any_paging_of_the_log_gives_the_tables_of_one_event_per_page(database_url):
    with running_ledger(database_url, webhook_allowed_hosts=("127.0.0.1",)) as ledger:
        _more(ledger, run_story(ledger))
        services = ledger.services
        app = services.app
        count = app.log.count()

        def replayed(plan: list[tuple[int, str]] | None) -> dict[str, str]:
            with scratch_views(services) as scratch:

                def make() -> CatchUpRunner:
                    return read_models_runner("replay", scratch, app)

                if plan is None:  # the reference: one event per page, one runner
                    runner = make()
                    runner.batch_size = 1
                    assert runner.catch_up() == count
                else:
                    _feed([make(), make()], plan, make)
                return views_digest(scratch)

        one_by_one = replayed(None)
        # The default: the whole log in one page.
        assert replayed([(10_000, "0")]) == one_by_one
        # A replay's pipeline: each page folded while the writer thread commits the one before.
        for size in (1, 2, 3, 7, 50):
            with scratch_views(services) as scratch:
                runner = replay_runners(app)(
                    scratch, lambda after, n: app.log.select_log(after, n), ()
                )
                runner.batch_size = size
                assert runner.replay() == count
                assert views_digest(scratch) == one_by_one, size

        @settings(
            max_examples=25 if IN_CI else 8,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        )
        @given(plan=PLANS)
        @example(plan=[(5, "0"), (5, "1")])  # two runners taking turns: neither may trust
        @example(plan=[(3, "0"), (7, "1"), (2, "0")])  # what it held from its last page
        def pages_of_any_size(plan: list[tuple[int, str]]) -> None:
            assert replayed(plan) == one_by_one

        pages_of_any_size()
        # And the live views, fed page by page as the story was told, say the same.
        assert services.runner.wait_for(app.log.head().position, 10)
        assert views_digest(services.views) == one_by_one


@pytest.mark.postgres
def test_a_postgresql_scratch_store_creates_its_tables_unlogged(postgres_url):
    """A replay's scratch schema is dropped afterwards: its tables skip the write-ahead log
    from their creation, and hold what the logged live views hold."""
    with running_ledger(postgres_url) as ledger:
        run_story(ledger)
        services = ledger.services
        app = services.app
        with scratch_views(services) as scratch:
            runner = replay_runners(app)(scratch, lambda after, n: app.log.select_log(after, n), ())
            assert runner.replay() == app.log.count()
            with psycopg.connect(scratch.conninfo, autocommit=True) as conn:
                tables = conn.execute(
                    "SELECT c.relname, c.relpersistence FROM pg_class c JOIN pg_namespace n"
                    " ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind = 'r'",
                    (scratch.schema,),
                ).fetchall()
            assert len(tables) > 10
            assert {name: kind for name, kind in tables} == {name: "u" for name, _ in tables}
            assert services.runner.wait_for(app.log.head().position, 10)
            assert views_digest(scratch) == views_digest(services.views)
