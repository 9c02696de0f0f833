"""The random-selection seed is the ledger's secret (issue #15 item 5, docs/decisions/0021).

Made on first start and kept beside the log (ledger/selection_seed.py), never in an event, an
export, an answer or a CLI output; `customs-ledger risk rotate-seed` replaces it, which changes
later draws only. Decisions record their draws, so replay needs no seed.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import msgspec
import pytest

from api.services import RiskRulesFileError, load_risk_rules
from domain.assessment import ClearanceRules
from domain.declaration import declaration_id
from domain.risk import draw_for
from domain.risk_rules import DEFAULT_RULES
from ledger.database import parse_database_url
from ledger.selection_seed import SelectionSeed
from tests.samples import declaration_body, rules_without_draws
from tests.support import Ledger, admit, new_key, onboard, run_cli, running_ledger


def secret_seed_rules() -> ClearanceRules:
    """The test rules (no random selection: each channel is known) with no seed of their own,
    so the ledger's secret seed draws (the draws are recorded whether selected or not)."""
    rules = rules_without_draws()
    return ClearanceRules(risk=msgspec.structs.replace(rules.risk, seed=""), duties=rules.duties)


cli = run_cli


def submit(ledger: Ledger, who: Any) -> tuple[str, str]:
    """A released declaration; (its id, the Idempotency-Key it was submitted with)."""
    key = new_key()
    r = ledger.post(
        "/v1/declarations", who.token_name, declaration_body(who.uscc, who.book_no), key=key
    )
    assert r.status_code == 201, r.text
    return r.json()["id"], key


def recorded_draw(ledger: Ledger, ref: str) -> str:
    """The draw as the declaration's assessment event records it in the log."""
    for entry in ledger.services.app.log.select_log(0, 100_000):
        if entry.topic.endswith(":DeclarationAssessed") and uuid.UUID(
            str(entry.stream_id)
        ) == uuid.UUID(ref):
            return str(json.loads(bytes(entry.state))["risk"]["draw"])
    raise AssertionError(f"no assessment of {ref} in the log")


def seeds_of(ledger: Ledger) -> SelectionSeed:
    return ledger.services.ledger.seeds  # type: ignore[no-any-return]


def test_the_built_in_rules_carry_no_public_seed() -> None:
    assert DEFAULT_RULES.seed == ""
    assert "xian-pilot-2026" not in msgspec.json.encode(DEFAULT_RULES).decode()


def test_a_rules_file_with_a_seed_is_refused_naming_the_field(tmp_path: Path) -> None:
    raw = msgspec.to_builtins(DEFAULT_RULES)
    path = tmp_path / "rules.json"
    path.write_bytes(msgspec.json.encode(raw))
    assert load_risk_rules(str(path)).seed == ""  # the same rules without a seed are taken
    raw["seed"] = "a seed someone copied"
    path.write_bytes(msgspec.json.encode(raw))
    with pytest.raises(RiskRulesFileError, match=r"LEDGER_RISK_RULES_FILE .*remove its \"seed\""):
        load_risk_rules(str(path))
    # The server refuses to start with it, saying why (in the startup error, like any
    # unusable LEDGER_*_FILE), and without repeating the seed.
    env = dict(os.environ, LEDGER_RISK_RULES_FILE=str(path))
    env["LEDGER_DATABASE_URL"] = f"sqlite:///{tmp_path}/l.sqlite3"
    done = subprocess.run(
        [sys.executable, "-m", "api.cli", "serve", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert 'remove its \\"seed\\"' in done.stderr  # inside a JSON log line
    assert "a seed someone copied" not in done.stderr


def test_the_seed_is_made_once_and_kept_across_restarts(database_url: str) -> None:
    with running_ledger(database_url, rules=secret_seed_rules()) as ledger:
        first = seeds_of(ledger).current()
        who = onboard(ledger)
        ref, key = submit(ledger, who)
    assert len(first) == 64 and int(first, 16) >= 0  # 256 bits from `secrets`, in hex
    with running_ledger(database_url, rules=secret_seed_rules()) as again:
        assert seeds_of(again).current() == first
        # The draw was made with it: SHA-256 of `<seed>:<id>`, as domain/risk.py says.
        assert recorded_draw(again, ref) == str(draw_for(first, uuid.UUID(ref)))
        assert declaration_id(who.token_name, key) == uuid.UUID(ref)
    db = parse_database_url(database_url)
    if db.kind == "sqlite":
        seed_file = Path(db.path[: -len(".sqlite3")] + ".seed.sqlite3")
        assert stat.S_IMODE(seed_file.stat().st_mode) == 0o600


def test_another_ledger_makes_another_seed(tmp_path: Path) -> None:
    made = set()
    for n in range(3):
        db = parse_database_url(f"sqlite:///{tmp_path}/l{n}.sqlite3")
        store = SelectionSeed.beside(db)
        made.add(store.current())
        store.close()
    assert len(made) == 3


@pytest.mark.postgres
def test_servers_on_one_postgresql_share_the_seed_and_see_a_rotation(postgres_url: str) -> None:
    from ledger.application import LedgerApplication

    db = parse_database_url(postgres_url)
    apps = [LedgerApplication(db) for _ in range(2)]
    try:
        a, b = (SelectionSeed.beside(db, app.factory.datastore) for app in apps)
        now = [time.monotonic() + a.refresh_seconds]  # past their reads at start
        a.clock = b.clock = lambda: now[0]
        assert a.current() == b.current()
        before = b.current()
        a.rotate()
        assert a.current() != before
        assert b.current() == before  # b read it less than refresh_seconds ago
        now[0] += b.refresh_seconds
        assert b.current() == a.current()
    finally:
        for app in apps:
            app.close()


def test_rotation_changes_later_draws_and_not_recorded_ones(database_url: str, caplog: Any) -> None:
    caplog.set_level(logging.DEBUG)
    with running_ledger(database_url, rules=secret_seed_rules()) as ledger:
        seeds = seeds_of(ledger)
        old = seeds.current()
        who = onboard(ledger)
        earlier, _ = submit(ledger, who)
        drawn = recorded_draw(ledger, earlier)
        done = cli(database_url, "risk", "rotate-seed")
        assert done.returncode == 0, done.stderr
        assert "rotated" in done.stderr and old not in done.stdout + done.stderr
        # Until this server reads the seed again (at most refresh_seconds) it draws with the
        # old one; then with the new one, without a restart.
        seeds.clock = lambda: float("inf")
        new = seeds.current()
        assert new != old and new not in done.stdout + done.stderr
        later, _ = submit(ledger, who)
        assert recorded_draw(ledger, later) == str(draw_for(new, uuid.UUID(later)))
        assert recorded_draw(ledger, later) != str(draw_for(old, uuid.UUID(later)))
        assert recorded_draw(ledger, earlier) == drawn == str(draw_for(old, uuid.UUID(earlier)))
    assert old not in caplog.text and new not in caplog.text


def _scan_routes(ledger: Ledger, values: dict[str, str], secrets: list[str]) -> int:
    """Every GET route of the OpenAPI document, as every role, with the world's values for its
    path parameters: no answer holds a secret. Answers the paths that answered 200."""
    paths = ledger.client.get("/openapi.json").json()["paths"]
    read: set[str] = set()
    for template, ops in paths.items():
        if "get" not in ops:
            continue
        path = template
        for name, value in values.items():
            path = path.replace("{" + name + "}", value)
        for who in ("admin", "officer", "auditor"):
            r = ledger.get(path, who, params={"ref": values["ref"], "limit": 1000})
            assert r.status_code < 500, (path, r.text)
            for secret in secrets:
                assert secret not in r.text, path
            if r.status_code == 200:
                read.add(template)
    return read


def test_the_seed_is_in_no_event_export_answer_or_cli_output(
    database_url: str, tmp_path: Path
) -> None:
    with running_ledger(database_url, rules=secret_seed_rules()) as ledger:
        seeds = seeds_of(ledger)
        who = onboard(ledger)
        admit(ledger, who, 1, "10")
        ref, _ = submit(ledger, who)
        movements = ledger.get("/v1/events", "auditor", params={"limit": 1000}).json()
        secrets = [seeds.current()]
        assert cli(database_url, "risk", "rotate-seed").returncode == 0
        seeds.clock = lambda: float("inf")
        secrets.append(seeds.current())
        submit(ledger, who)
        values = {"uscc": who.uscc, "book_no": who.book_no, "ref": ref, "stream_id": ref}
        values.update(movement_id=ref, lot_id=ref, bom_ref="none")
        answered = _scan_routes(ledger, values, secrets)
        assert len(answered) >= 20, answered  # most routes answered with data, not an error
        replay = ledger.post("/v1/audit/replay", "auditor", {})
        assert replay.status_code < 500 and not any(s in replay.text for s in secrets)
        assert movements and not any(s in str(movements) for s in secrets)
        entries = list(ledger.services.app.log.select_log(0, 100_000))
        assert len(entries) > 10
        for entry in entries:
            assert not any(s.encode() in bytes(entry.state) for s in secrets)
    out = tmp_path / "events.jsonl"
    outputs = [
        cli(database_url, "export-events", "--output", str(out)),
        cli(database_url, "verify"),
        cli(database_url, "keys", "list"),
        cli(database_url, "risk", "rotate-seed"),
        cli(database_url, "risk", "--help"),
    ]
    for done in outputs:
        assert done.returncode == 0, done.stderr
        assert not any(s in done.stdout + done.stderr for s in secrets)
    assert out.stat().st_size > 0 and not any(s in out.read_text() for s in secrets)


def test_replay_equals_without_the_seed(tmp_path: Path) -> None:
    """The log and the views copied without the seed's file: the replay (a new seed made on
    the copy) still equals the live views, since every decision records its draw."""
    url = f"sqlite:///{tmp_path}/ledger.sqlite3"
    with running_ledger(url, rules=secret_seed_rules()) as ledger:
        who = onboard(ledger)
        admit(ledger, who, 1, "10")
        submit(ledger, who)
        old = seeds_of(ledger).current()
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("ledger.sqlite3", "ledger.views.sqlite3"):
        shutil.copy(tmp_path / name, copy / name)
    done = cli(f"sqlite:///{copy}/ledger.sqlite3", "replay")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "declarations: equal" in done.stdout and "differ" not in done.stdout
    assert old not in done.stdout + done.stderr
    seed_of_copy = SelectionSeed.beside(parse_database_url(f"sqlite:///{copy}/ledger.sqlite3"))
    assert seed_of_copy.current() != old
    seed_of_copy.close()


@pytest.mark.postgres
def test_servers_starting_together_on_postgresql_make_one_seed(postgres_url: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from ledger.application import LedgerApplication

    db = parse_database_url(postgres_url)
    apps = [LedgerApplication(db) for _ in range(4)]
    try:
        with ThreadPoolExecutor(len(apps)) as pool:
            stores = list(
                pool.map(lambda app: SelectionSeed.beside(db, app.factory.datastore), apps)
            )
        assert len({store.current() for store in stores}) == 1
    finally:
        for app in apps:
            app.close()
