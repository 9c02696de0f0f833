"""Replays: every read model rebuilt from the log equals the live one, now and as of the past.

The train-to-air story (declarations, gate movements, a transfer, processing, exits, a
stocktake) and a few more steps run through the API; then `POST /v1/audit/replay` and
`customs-ledger replay` rebuild every read model into a scratch store and compare digests.
As of past instants the inventory rebuilt from the log equals what GET /v1/inventory answered
at those moments; a live balance changed behind the ledger's back is named row by row.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from api.replaying import replay_log, replay_runners, scratch_views
from domain.scope import Scope
from projections import replay as replay_module
from projections.inventory import InventoryQueries
from projections.replay import rebuild
from tests.samples import line
from tests.stories import run_story
from tests.support import Ledger, admit, declaration_body, new_key, onboard, run_cli, running_ledger

READ_MODELS = {
    "declarations",
    "enterprises",
    "inventory",
    "trace",
    "documents",
    "tax_bills",
    "write_offs",
    "receipts",
}
# A full replay also rebuilds the key table from the keys' events (docs/decisions/0016).
FULL_REPLAY_MODELS = READ_MODELS | {"api_keys"}


@dataclass
class Moment:
    instant: str  # RFC 3339, noted right after a step
    inventory: list[dict[str, Any]]  # GET /v1/inventory as the auditor read it then


@dataclass
class Told:
    ledger: Ledger
    url: str
    book_no: str
    moments: list[Moment]


def _note(ledger: Ledger, moments: list[Moment]) -> None:
    """The inventory as it stands now, and the instant; the next write comes strictly later."""
    r = ledger.get("/v1/inventory", "auditor", params={"limit": 1000})
    assert r.status_code == 200, r.text
    moments.append(Moment(datetime.now(UTC).isoformat(), r.json()["items"]))
    time.sleep(0.003)


def _tell(ledger: Ledger, url: str) -> Told:
    moments: list[Moment] = []
    _note(ledger, moments)  # before anything moved
    story = run_story(ledger)
    _note(ledger, moments)
    t = story.tenant
    admit(ledger, t, 2, "7.5")  # coffee, in kilograms
    _note(ledger, moments)
    # Medicaments wait in document review; the declarant withdraws them.
    body = declaration_body(t.uscc, t.book_no, lines=[line(3, quantity="5")])
    review = ledger.post("/v1/declarations", t.token_name, body, key=new_key()).json()
    r = ledger.post(
        f"/v1/declarations/{review['id']}/withdrawal", t.token_name, {"reason": "wrong lot"}
    )
    assert r.status_code == 200, r.text
    r = ledger.post(
        f"/v1/enterprises/{t.uscc}/credit-class",
        "officer",
        {"credit_class": "advanced_certified", "reason": "audit passed"},
    )
    assert r.status_code == 200, r.text
    adjustment = {
        "kind": "adjustment",
        "account_book": t.book_no,
        "item_no": 2,
        "quantity_delta": "0.5",
        "reason": "recount",
    }
    r = ledger.post("/v1/movements", t.token_name, adjustment, key=new_key())
    assert r.status_code == 201, r.text
    _note(ledger, moments)
    return Told(ledger, url, t.book_no, moments)


@pytest.fixture
def told(database_url):
    with running_ledger(database_url) as ledger:
        yield _tell(ledger, database_url)


def _replay(ledger: Ledger, body: Any = None, who: str = "auditor") -> Any:
    return ledger.client.post(
        "/v1/audit/replay",
        json=body if body is not None else {},
        headers=ledger.headers(who),
    )


def test_a_replay_of_the_whole_log_equals_every_live_read_model(told):
    head = told.ledger.services.app.log.head()
    r = _replay(told.ledger)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert set(answer["projections"]) == FULL_REPLAY_MODELS
    for name, result in answer["projections"].items():
        assert result["equal"] is True, (name, result)
        assert result["live_digest"] == result["replayed_digest"]
        assert all(t["equal"] for t in result["tables"].values()), name
    assert set(answer["projections"]["inventory"]["tables"]) >= {
        "view_book_items",
        "view_stock_history",
        "view_book_entries",
    }
    assert answer["equal"] is True and answer["differences"] == []
    # The live views were caught up first: the replay covers the whole log.
    assert answer["position"] == answer["log_position"] == head.position
    assert answer["events_replayed"] == told.ledger.services.app.log.count()
    assert answer["seconds"] >= answer["rebuild_seconds"] > 0


def test_replays_as_of_past_instants_equal_the_inventory_answered_then(told):
    services = told.ledger.services
    for moment in told.moments:
        r = _replay(told.ledger, {"as_of": moment.instant})
        assert r.status_code == 200, r.text
        answer = r.json()
        inventory = answer["projections"]["inventory"]
        assert inventory["equal"] is True, (moment.instant, inventory, answer["differences"])
        for name in READ_MODELS - {"inventory", "write_offs"}:
            result = answer["projections"][name]
            assert result["live_digest"] is None and result["equal"] is None, name
        # The write-offs keep each one's history (view_write_off_versions): compared too.
        assert answer["projections"]["write_offs"]["equal"] is True
        assert inventory["tables"]["view_reservations"]["live_digest"] is None
        # The inventory rebuilt from the log up to the instant is what the ledger said then,
        # and what it says now as of then.
        with scratch_views(services) as scratch:
            events, _, _ = rebuild(
                scratch,
                replay_runners(services.app),
                replay_log(services.app),
                until=_utc(moment.instant),
            )
            assert events == answer["events_replayed"]
            rows = InventoryQueries(scratch).inventory(
                after=0, limit=1000, filters={}, scope=Scope(role="auditor")
            )
            replayed = msgspec.to_builtins([row for _, row in rows])
        assert replayed == moment.inventory, moment.instant
        now_as_of = told.ledger.get(
            "/v1/inventory", "auditor", params={"as_of": moment.instant, "limit": 1000}
        )
        assert now_as_of.json()["items"] == moment.inventory
    assert told.moments[0].inventory != told.moments[-1].inventory


def _utc(instant: str) -> str:
    from projections.columns import utc_text

    return utc_text(datetime.fromisoformat(instant))


def _corrupt(told: Told) -> None:
    """Change a live balance behind the ledger's back (as a broken disk or a hand would)."""
    services = told.ledger.services
    head = services.app.log.head()
    assert services.runner.wait_for(head.position, 10)
    with services.views.transaction() as cur:
        cur.execute(
            "UPDATE view_book_items SET on_hand = '123456' WHERE book_no = ? AND item_no = 1",
            (told.book_no,),
        )


def test_a_live_balance_changed_behind_the_ledgers_back_is_named(told):
    _corrupt(told)
    answer = _replay(told.ledger).json()
    inventory = answer["projections"]["inventory"]
    assert inventory["equal"] is False and answer["equal"] is False
    assert inventory["tables"]["view_book_items"]["equal"] is False
    assert inventory["tables"]["view_book_entries"]["equal"] is True
    for name in READ_MODELS - {"inventory"}:
        assert answer["projections"][name]["equal"] is True, name
    [difference] = answer["differences"]
    assert difference["table"] == "view_book_items"
    assert set(difference["key"]) == {"item_key"}
    assert difference["live"] == {"on_hand": "123456"}
    assert difference["replayed"] == {"on_hand": "48"}  # 100 in, 40 to XEPZ, 10 out, 2 lost


def cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(url, "replay", *args)


def test_the_cli_exits_0_when_equal_and_1_naming_the_row_when_not(told):
    head = told.ledger.services.app.log.head()
    assert told.ledger.services.runner.wait_for(head.position, 10)
    r = cli(told.url)
    assert r.returncode == 0, r.stdout + r.stderr
    for name in READ_MODELS:
        assert f"{name}: equal" in r.stdout
    assert f"events_replayed: {told.ledger.services.app.log.count()}" in r.stdout
    assert "equal" in r.stderr.splitlines()[-1]  # the summary line (stderr is not a terminal)
    as_of = cli(told.url, "--as-of", told.moments[1].instant, "--json")
    assert as_of.returncode == 0, as_of.stdout + as_of.stderr
    assert msgspec.json.decode(as_of.stdout)["projections"]["inventory"]["equal"] is True
    _corrupt(told)
    r = cli(told.url)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "inventory: DIFFERENT" in r.stdout
    assert "difference in view_book_items" in r.stdout and "123456" in r.stdout
    assert cli(told.url, "--as-of", "2026-11-30T10:00:00").returncode == 2  # no offset


def test_a_replay_is_for_auditors_with_an_aware_instant_and_one_at_a_time(database_url):
    with running_ledger(database_url) as ledger:
        t = onboard(ledger)
        ledger.issue("gate", "operator", zone="XCBZ")
        assert ledger.client.post("/v1/audit/replay", json={}).status_code == 401
        bad = {"Authorization": "Bearer nope"}
        assert ledger.client.post("/v1/audit/replay", json={}, headers=bad).status_code == 401
        for who in ("admin", "officer", "gate", t.token_name):
            r = _replay(ledger, who=who)
            assert r.status_code == 403, (who, r.text)
        for body, loc in (
            ({"as_of": "2026-11-30T10:00:00"}, "$.as_of"),  # naive
            ({"as_of": "yesterday"}, "$.as_of"),
            ({"as_of": "2026-11-30T10:00:00Z", "to": "now"}, "$.to"),
        ):
            r = _replay(ledger, body)
            assert r.status_code == 422, (body, r.text)
            assert r.json()["errors"][0]["loc"] == loc
        assert _replay(ledger, [1]).status_code == 400
        # An empty body is a full replay.
        r = ledger.client.post("/v1/audit/replay", headers=ledger.headers("auditor"))
        assert r.status_code == 200 and r.json()["equal"] is True, r.text
        # Another replay running in this process: 409, and nothing else happens.
        assert replay_module._RUNNING.acquire(blocking=False)
        try:
            r = _replay(ledger)
            assert r.status_code == 409 and r.json()["rule"] == "replay_in_progress", r.text
        finally:
            replay_module._RUNNING.release()
        assert _replay(ledger).status_code == 200


# -- the trace graph rebuilt by a second process ------------------------------------------------


@pytest.fixture
def helped(monkeypatch):
    """Every replay of this test hands the trace graph to a helper process, however short the
    log (the default waits for HELPER_MIN_EVENTS and a free CPU)."""
    from api import replaying

    monkeypatch.setattr(replay_module, "HELPER_MIN_EVENTS", 0)
    monkeypatch.setattr(
        replaying,
        "helper_for",
        lambda services, parallel: (
            replaying.ReplayHelper(services.database.url) if parallel is not False else None
        ),
    )
    finished = []
    finish = replaying.ReplayHelper.finish

    def counted(self, scratch, tick=None):
        finish(self, scratch, tick)
        finished.append(self.position())

    monkeypatch.setattr(replaying.ReplayHelper, "finish", counted)
    monkeypatch.setattr(replaying, "finished", finished, raising=False)
    return replaying


def _digests(answer: dict[str, Any]) -> dict[str, str]:
    return {
        f"{name}.{table}": t["replayed_digest"]
        for name, result in answer["projections"].items()
        for table, t in result["tables"].items()
    }


def test_a_replay_split_across_two_processes_equals_one_in_one_process(told, helped):
    services = told.ledger.services
    alone, _ = helped.run_replay(services, parallel=False)
    assert helped.finished == []
    split = _replay(told.ledger).json()
    assert split["equal"] is True, split
    assert helped.finished == [split["position"]]  # the helper rebuilt the trace graph
    assert split["events_replayed"] == alone.events_replayed == services.app.log.count()
    assert _digests(split) == _digests(helped.answer(alone, 0))
    for moment in told.moments:
        r = _replay(told.ledger, {"as_of": moment.instant})
        assert r.status_code == 200, r.text
        one, _ = helped.run_replay(services, datetime.fromisoformat(moment.instant), parallel=False)
        assert _digests(r.json()) == _digests(helped.answer(one, 0)), moment.instant
        assert r.json()["events_replayed"] == one.events_replayed
    # Nothing of the scratch stores is left behind.
    views = services.views
    if hasattr(views, "path"):
        assert not [p for p in os.listdir(os.path.dirname(views.path)) if ".replay-" in p]


def test_a_helper_process_that_fails_is_a_503_and_the_next_replay_works(told, helped, monkeypatch):
    with monkeypatch.context() as m:
        m.setattr(helped, "_WORKER", "import sys; sys.exit('the disk is on fire')")
        r = _replay(told.ledger)
    assert r.status_code == 503, r.text
    problem = r.json()
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "replay's second process (declarations, enterprises, trace) failed" in problem["detail"]
    assert "the disk is on fire" in problem["detail"]
    r = _replay(told.ledger)
    assert r.status_code == 200 and r.json()["equal"] is True, r.text


def test_the_cli_says_when_its_second_process_fails_and_exits_3(told):
    head = told.ledger.services.app.log.head()
    assert told.ledger.services.runner.wait_for(head.position, 10)
    env = dict(os.environ, LEDGER_DATABASE_URL=told.url)
    # The helper is used whatever the log's size, and its process fails at once.
    code = (
        "import sys; from projections import replay; from api import replaying, cli;"
        "replay.HELPER_MIN_EVENTS = 0;"
        "replaying._WORKER = \"import sys; sys.exit('no room on the disk')\";"
        "replaying.helper_for = lambda s, p: replaying.ReplayHelper(s.database.url);"
        "sys.exit(cli.main(['replay']))"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 3, r.stdout + r.stderr
    assert "replay failed: the replay's second process" in r.stderr
    assert "failed: no room on the disk" in r.stderr
    assert "Traceback" not in r.stderr
