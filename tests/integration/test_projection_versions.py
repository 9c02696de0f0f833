"""Views built by another version of a projection are rebuilt from the log when the server
starts; views of the same version, including those built before versions were stored, are
kept as they are.

Each test hand-changes one row of the trace views after a story: the row survives a restart
that must keep the views, and a rebuild gives back exactly the views the log makes."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from api.services import open_views
from ledger.database import parse_database_url
from projections.declarations import DeclarationsProjection
from projections.digest import views_digest
from projections.documents import DocumentsProjection
from projections.enterprises import EnterprisesProjection
from projections.folding import version_of
from projections.inventory import InventoryProjection
from projections.receipts import ReceiptsProjection
from projections.store import ViewStore
from projections.tax_bills import TaxBillsProjection
from projections.trace import TraceProjection
from projections.write_offs import WriteOffsProjection
from tests.stories import run_story
from tests.support import Ledger, running_ledger
from tests.together import CHILD_TIMES, assert_overlapped, run_together, times_of

PROJECTIONS = (
    DeclarationsProjection,
    EnterprisesProjection,
    InventoryProjection,
    TraceProjection,
    DocumentsProjection,
    TaxBillsProjection,
    WriteOffsProjection,
    ReceiptsProjection,
)
HAND_CHANGED = "999"
# A server of a release whose trace is at version argv[2], starting when told to
# (tests/together.py) and saying when its start began and ended.
STARTING_SERVER = (
    CHILD_TIMES
    + """
from api.services import Services
from api.settings import Settings
from projections.trace import TraceProjection
TraceProjection.version = int(_sys.argv[2])
settings = Settings(database_url=_sys.argv[1])
started = wait_for_go()  # all start together, imports done
services = Services.build(settings)
times(started)
services.close()
"""
)


def _caught_up(ledger: Ledger) -> int:
    """Wait until the views reflect the whole log; its head position."""
    head = ledger.services.app.log.head()
    assert head is not None
    assert ledger.services.runner.wait_for(head.position, 10)
    return int(head.position)


def _built_then_hand_changed(database_url: str) -> tuple[dict[str, str], str]:
    """The story's views (their digests as the log makes them) and the lot whose on-hand
    quantity was then changed by hand."""
    with running_ledger(database_url) as ledger:
        run_story(ledger)
        _caught_up(ledger)
        views = ledger.services.views
        built = views_digest(views)
        with views.transaction() as cur:
            cur.execute("SELECT lot_id FROM view_trace_lots ORDER BY lot_id LIMIT 1")
            lot = str(cur.fetchone()["lot_id"])
            cur.execute(
                "UPDATE view_trace_lots SET on_hand = ? WHERE lot_id = ?", (HAND_CHANGED, lot)
            )
        assert views_digest(views) != built
    return built, lot


def _on_hand(ledger: Ledger, lot: str) -> str:
    with ledger.services.views.read() as cur:
        cur.execute("SELECT on_hand FROM view_trace_lots WHERE lot_id = ?", (lot,))
        return str(cur.fetchone()["on_hand"])


def _stored_versions(ledger: Ledger) -> dict[str, int]:
    with ledger.services.views.read() as cur:
        cur.execute("SELECT projection, version FROM view_versions")
        return {row["projection"]: int(row["version"]) for row in cur.fetchall()}


@contextmanager
def _views(database_url: str) -> Iterator[ViewStore]:
    """The views of a stopped server, to change them by hand."""
    views = open_views(parse_database_url(database_url))
    try:
        yield views
    finally:
        views.close()


def _as_before_versions(database_url: str) -> None:
    """The views as a release that stored no versions left them."""
    with _views(database_url) as views, views.transaction() as cur:
        cur.execute("DROP TABLE view_versions")


def _has_table(ledger: Ledger, name: str) -> bool:
    views = ledger.services.views
    with views.read() as cur:
        if views.kind == "sqlite":
            cur.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
        else:
            cur.execute(
                "SELECT 1 FROM information_schema.tables"
                " WHERE table_schema = current_schema() AND table_name = ?",
                (name,),
            )
        return cur.fetchone() is not None


def _rebuilds(caplog: Any) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "customs_ledger.projections" and "rebuilt from the log" in r.getMessage()
    ]


def test_a_changed_version_rebuilds_the_views_from_the_log(database_url, monkeypatch, caplog):
    caplog.set_level(logging.WARNING, logger="customs_ledger.projections")
    built, lot = _built_then_hand_changed(database_url)
    code = {p.name: version_of(p()) for p in PROJECTIONS}

    with running_ledger(database_url) as ledger:
        _caught_up(ledger)
        assert _on_hand(ledger, lot) == HAND_CHANGED  # nothing was rebuilt
        assert _stored_versions(ledger) == code
    assert _rebuilds(caplog) == []

    newer = code["trace"] + 1
    monkeypatch.setattr(TraceProjection, "version", newer, raising=False)
    with running_ledger(database_url) as ledger:
        _caught_up(ledger)
        assert views_digest(ledger.services.views) == built
        assert _stored_versions(ledger) == {**code, "trace": newer}
    [warning] = _rebuilds(caplog)
    changed = f"trace stored {code['trace']} -> code {newer}"
    assert warning.startswith(f"read-model versions changed ({changed}):")


def test_a_retired_table_is_dropped_on_a_version_change(database_url, monkeypatch):
    _built_then_hand_changed(database_url)
    with _views(database_url) as views, views.transaction() as cur:
        cur.execute("CREATE TABLE view_old_trace (lot_id TEXT PRIMARY KEY)")
    monkeypatch.setattr(TraceProjection, "retired_tables", ("view_old_trace",), raising=False)

    with running_ledger(database_url) as ledger:  # the same version: the table stays
        assert _has_table(ledger, "view_old_trace")

    monkeypatch.setattr(TraceProjection, "version", version_of(TraceProjection()) + 1)
    with running_ledger(database_url) as ledger:
        _caught_up(ledger)
        assert not _has_table(ledger, "view_old_trace")
        assert _has_table(ledger, "view_trace_lots")


def test_views_built_before_versions_were_stored_are_version_1(database_url, monkeypatch, caplog):
    caplog.set_level(logging.WARNING, logger="customs_ledger.projections")
    for projection in PROJECTIONS:
        monkeypatch.setattr(projection, "version", 1, raising=False)
    built, lot = _built_then_hand_changed(database_url)
    _as_before_versions(database_url)

    with running_ledger(database_url) as ledger:
        _caught_up(ledger)
        assert _on_hand(ledger, lot) == HAND_CHANGED  # nothing was rebuilt
        assert _stored_versions(ledger) == {p.name: 1 for p in PROJECTIONS}
    assert _rebuilds(caplog) == []

    _as_before_versions(database_url)
    monkeypatch.setattr(TraceProjection, "version", 2)
    with running_ledger(database_url) as ledger:
        _caught_up(ledger)
        assert views_digest(ledger.services.views) == built
        assert _stored_versions(ledger) == {
            p.name: 2 if p is TraceProjection else 1 for p in PROJECTIONS
        }
    [warning] = _rebuilds(caplog)
    assert warning.startswith("read-model versions changed (trace stored 1 -> code 2):")


def test_servers_of_a_new_release_starting_together_rebuild_once(database_url, monkeypatch):
    built, _ = _built_then_hand_changed(database_url)
    newer = version_of(TraceProjection()) + 1
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", STARTING_SERVER, database_url, str(newer)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(os.environ),
        )
        for _ in range(3)
    ]
    results = run_together(procs)
    errors = [err for _, err in results]
    assert [p.returncode for p in procs] == [0, 0, 0], [err[-500:] for err in errors]
    # They started at once: each was still starting when the last one began.
    assert_overlapped([times_of(out) for out, _ in results])
    # One dropped the views; the others waited for its setup and found them current.
    assert sum(err.count("rebuilt from the log") for err in errors) == 1, errors

    monkeypatch.setattr(TraceProjection, "version", newer)
    with running_ledger(database_url) as ledger:
        _caught_up(ledger)
        assert views_digest(ledger.services.views) == built
