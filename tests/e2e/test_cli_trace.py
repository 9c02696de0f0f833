"""`customs-ledger trace` as an officer at a terminal uses it, on a ledger filled by the API."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from tests import samples
from tests.e2e.test_epcis import STORY_STEPS, assert_valid_epcis, run_story
from tests.support import admit, enterprise_body, make_uscc, onboard, run_cli, running_ledger


def cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(url, "trace", *args)


@dataclass
class Filled:
    url: str
    arrival_no: str
    export_no: str
    train_lots: list[str]
    kit_lot: str


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    """The train-to-air story in a SQLite file; the server is gone when the CLI reads it."""
    url = f"sqlite:///{tmp_path_factory.mktemp('cli-trace')}/ledger.sqlite3"
    with running_ledger(url) as ledger:
        story = run_story(ledger)
        # A read waits for the views: they hold the whole story when the server stops.
        assert ledger.get("/v1/trace", "officer", params={"ref": story.kit_lot}).status_code == 200
    return Filled(
        url=url,
        arrival_no=story.arrival["declaration_no"],
        export_no=story.export["declaration_no"],
        train_lots=[lot["lot_id"] for lot in story.train["lots"]],
        kit_lot=story.kit_lot,
    )


def test_the_chain_reads_line_by_line_from_the_train_to_every_exit(filled):
    r = cli(filled.url, "X8024-20261127", "--direction", "downstream")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""  # the views are up to date: no warning
    lines = r.stdout.splitlines()
    assert lines[:3] == [
        "trace of X8024-20261127 (downstream)",
        "matched: transport X8024-20261127",
        "zones: XCBZ, XEPZ, XABZ",
    ]
    admitted = [line for line in lines if " admitted " in line]
    assert len(admitted) == 2
    for line in admitted:
        # China time as the gate sent it, the zone, the lot, the signed quantity, the papers.
        assert "+08:00  XCBZ  admitted" in line and "+100 C62" in line, line
        assert f"declaration {filled.arrival_no}" in line and "gate note GN-XCBZ-1127" in line
        assert "transport X8024-20261127" in line and "container TGHU1234567" in line
        assert line.endswith("by gate-XCBZ (operator)")
    assert f"lot {filled.train_lots[0][:8]}" in admitted[0]
    exits = [line for line in lines if " exited " in line]
    assert any(
        "XABZ  exited" in x and "-40 C62" in x and f"declaration {filled.export_no}" in x
        for x in exits
    ), exits
    assert any("XCBZ  exited" in x and "-10 C62" in x for x in exits), exits
    (adjusted,) = [line for line in lines if " adjusted " in line]
    assert "-2 C62" in adjusted and "reason damaged, stocktake 2026-11-30" in adjusted
    assert "by ent-" in adjusted and "(enterprise)" in adjusted
    edges = lines[lines.index("edges:") + 1 : lines.index("truncated: no")]
    assert len(edges) == 5
    assert any(e.startswith(f"  lot {filled.train_lots[0][:8]} -> lot ") for e in edges)
    assert sum(e.endswith("transfer 40 C62") for e in edges) == 3
    assert sum(f"-> lot {filled.kit_lot[:8]}  processing 40 C62" in e for e in edges) == 2
    assert lines[-1] == "truncated: no"


def test_a_limit_that_stops_the_walk_is_said(filled):
    r = cli(filled.url, filled.export_no, "--direction", "upstream", "--limit", "2")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == (
        "truncated: the answer stopped at 2 lots (--limit raises it)"
    )


def test_epcis_output_is_a_valid_epcis_document(filled):
    r = cli(filled.url, filled.export_no, "--direction", "upstream", "--epcis")
    assert r.returncode == 0, r.stderr
    document = json.loads(r.stdout)
    assert_valid_epcis(document)
    assert [e["bizStep"] for e in document["epcisBody"]["eventList"]] == STORY_STEPS


def test_an_unknown_reference_is_exit_1_with_a_message_on_stderr(filled):
    r = cli(filled.url, "NO-SUCH-REF")
    assert (r.returncode, r.stdout) == (1, "")
    assert "no goods found for 'NO-SUCH-REF'" in r.stderr


@pytest.mark.parametrize(
    "args", [["x", "--limit", "0"], ["x", "--limit", "5001"], ["x", "--direction", "sideways"], []]
)
def test_bad_arguments_are_exit_2(filled, args):
    r = cli(filled.url, *args)
    assert r.returncode == 2 and r.stdout == "", r.stderr


def test_help_documents_the_exit_codes():
    r = cli("sqlite:///unused.sqlite3", "--help")
    assert r.returncode == 0
    assert "exit codes: 0 the trace was printed; 1 no goods found for REF" in r.stdout


def test_views_behind_the_log_are_warned_about_and_left_as_they_are(tmp_path):
    url = f"sqlite:///{tmp_path}/ledger.sqlite3"
    ref = "X8024-20261127"  # the transport reference of the sample declarations
    with running_ledger(url) as ledger:
        admit(ledger, onboard(ledger), 1, "10")
        assert ledger.get("/v1/trace", "officer", params={"ref": ref}).status_code == 200
        head = ledger.services.app.log.head().position
    # Writes with no projection runner in this process: the log moves on, the views do not.
    app = create_app(
        Settings(database_url=url, projections="off", read_wait_seconds=0.01),
        rules=samples.rules_without_draws(),
    )
    with TestClient(app) as client:
        token = app.state.services.keys.issue(name="admin-late", role="admin")
        r = client.post(
            "/v1/enterprises",
            json=enterprise_body(make_uscc()),
            headers={"Authorization": f"Bearer {token}"},
        )
        assert r.status_code == 201, r.text
        later = app.state.services.app.log.head().position
    assert later > head
    warning = f"the views reflect the log up to position {head}, the log is at {later}"
    for _ in range(2):  # the CLI reads; it never feeds the views
        r = cli(url, ref)
        assert r.returncode == 0, r.stderr
        assert warning in r.stderr and r.stderr.startswith("warning:")
        assert r.stdout.startswith(f"trace of {ref} (both)")
