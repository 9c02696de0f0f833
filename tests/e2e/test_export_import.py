"""Backup and restore: `customs-ledger export-events` and `import-events`, as an operator runs
them, and an auditor's own script recomputing every hash of an export from docs/audit.md.

A restore gives the same log (every event byte for byte, the same positions, the same digest),
`verify` passes on it, and the read models rebuilt from it equal the original's. A file that
was altered, cut or shortened is refused at the line where it goes wrong, and the store stays
empty. A log cut short or rewritten consistently (every later hash recomputed) imports and
verifies - only `verify --against` a digest published earlier exposes it.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api.services import Services
from api.settings import Settings
from ledger.application import LedgerApplication
from ledger.database import parse_database_url
from projections.digest import views_digest
from tests.conftest import PG_URL
from tests.samples import rules_without_draws
from tests.stories import run_story
from tests.support import pg_conninfo, run_cli, running_ledger

ROOT = Path(__file__).resolve().parents[2]
ZEROS = "0" * 64


cli = run_cli


def _new_schema_url() -> Iterator[str]:
    import psycopg

    db = parse_database_url(PG_URL)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_conninfo(db), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{sep}schema={schema}"
    with psycopg.connect(pg_conninfo(db), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def empty_url(database_url: str, tmp_path: Path) -> Iterator[str]:
    """A second, empty store of the same kind: where a restore goes."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path}/restored/ledger.sqlite3"
    else:
        yield from _new_schema_url()


@pytest.fixture
def original(database_url: str) -> dict[str, Any]:
    """The train-to-air story (imports, transfers, processing, exits) told through the API."""
    with running_ledger(database_url) as ledger:
        run_story(ledger)
        digest = ledger.get("/v1/audit/digest", "auditor").json()
    return {"url": database_url, "digest": digest, "auditor": ledger.tokens["auditor"]}


def log_rows(url: str) -> list[tuple[Any, ...]]:
    """Every stored event: position, sequence, stream, version, topic, state, time, hash."""
    app = LedgerApplication(parse_database_url(url))
    try:
        return [
            (*r[:2], str(r.stream_id), *r[3:5], bytes(r.state), r.recorded_at, bytes(r.hash))
            for r in app.log.select_log(None, 1_000_000)
        ]
    finally:
        app.close()


def read_models(url: str) -> dict[str, str]:
    """The views as the server's own catch-up runner builds them from the log."""
    services = Services.build(Settings(database_url=url), rules=rules_without_draws())
    try:
        services.runner.catch_up()
        return views_digest(services.views)
    finally:
        services.close()


def http_digest(url: str, auditor: str) -> dict[str, Any]:
    """The head digest from a server on `url`, asked with a key of the original store: keys
    are events (docs/decisions/0016), so issuing one would move the head, and a restored
    store has the original's keys."""
    from fastapi.testclient import TestClient

    from api.app import create_app

    app = create_app(Settings(database_url=url), rules=rules_without_draws())
    with TestClient(app) as client:
        r = client.get("/v1/audit/digest", headers={"Authorization": f"Bearer {auditor}"})
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]


def export(url: str, path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = cli(url, "export-events", "--output", str(path), *args)
    assert done.returncode == 0, done.stderr
    return done


def lines_of(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_bytes().splitlines()]


def exported_lines(url: str, path: Path, *args: str) -> list[dict[str, Any]]:
    export(url, path, *args)
    return lines_of(path)


def write_lines(path: Path, events: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in events))
    return path


def field(data: bytes) -> bytes:
    return len(data).to_bytes(8, "big") + data


def rechain(events: list[dict[str, Any]], start: int) -> None:
    """Recompute every hash from line `start` (1-based) on, with the published algorithm."""
    link = bytes.fromhex(events[start - 1]["previous_hash"])
    for e in events[start - 1 :]:
        e["previous_hash"] = link.hex()
        message = b"".join(
            field(text.encode())
            for text in (e["stream_id"], str(e["version"]), e["topic"], e["recorded_at"])
        )
        link = hashlib.sha256(link + message + field(e["payload"].encode())).digest()
        e["hash"] = link.hex()


def assert_empty(url: str) -> None:
    app = LedgerApplication(parse_database_url(url))
    try:
        assert app.log.count() == 0 and app.log.head() is None
    finally:
        app.close()


# ---- restore ------------------------------------------------------------------------------


def test_a_restore_is_the_same_log_and_gives_the_same_read_models(original, empty_url, tmp_path):
    url, digest = original["url"], original["digest"]
    path = tmp_path / "events.jsonl"
    exported = export(url, path)
    events = lines_of(path)
    assert len(events) == digest["sequence"]
    summary = exported.stderr.strip().splitlines()[-1]
    assert f"head sequence {digest['sequence']}" in summary and digest["head_hash"] in summary
    assert list(events[0]) == [
        "position", "sequence", "stream_id", "version", "type", "topic", "recorded_at",
        "occurred_at", "actor", "previous_hash", "hash", "payload",
    ]  # fmt: skip
    assert events[0]["previous_hash"] == ZEROS
    first = json.loads(events[0]["payload"])
    assert (events[0]["occurred_at"], events[0]["actor"]) == (first["occurred_at"], first["actor"])
    assert events[0]["type"] == events[0]["topic"].rpartition(":")[2]

    restored = cli(empty_url, "import-events", str(path))
    assert restored.returncode == 0, restored.stderr
    assert f"imported {len(events)} events" in restored.stderr
    assert digest["head_hash"] in restored.stderr

    checked = cli(empty_url, "verify", "--against", f"{digest['sequence']}:{digest['head_hash']}")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "ok: true" in checked.stdout
    assert log_rows(empty_url) == log_rows(url)  # byte for byte, positions included
    auditor = original["auditor"]  # the original's key works on the restore
    assert http_digest(empty_url, auditor) == http_digest(url, auditor) == digest
    assert read_models(empty_url) == read_models(url)
    # Exported again, the restored store gives the same file.
    again = tmp_path / "again.jsonl"
    export(empty_url, again)
    assert again.read_bytes() == path.read_bytes()


@pytest.mark.postgres
def test_a_sqlite_export_restores_into_postgresql(sqlite_url, postgres_url, tmp_path):
    with running_ledger(sqlite_url) as ledger:
        run_story(ledger)
        digest = ledger.get("/v1/audit/digest", "auditor").json()
        auditor = ledger.tokens["auditor"]
    path = tmp_path / "events.jsonl"
    export(sqlite_url, path)
    restored = cli(postgres_url, "import-events", str(path))
    assert restored.returncode == 0, restored.stderr
    assert cli(postgres_url, "verify").returncode == 0
    assert log_rows(postgres_url) == log_rows(sqlite_url)
    assert http_digest(postgres_url, auditor) == digest
    # The position sequence moved past the restored positions: new events follow them.
    with running_ledger(postgres_url) as ledger:
        r = ledger.post("/v1/enterprises", "admin", _enterprise())
        assert r.status_code == 201, r.text
    rows = log_rows(postgres_url)
    restored_head, *written = rows[digest["sequence"] - 1 :]  # the new keys, the enterprise
    assert restored_head[0] == digest["head_position"] and len(written) == 4
    assert all(later[0] > restored_head[0] for later in written)
    assert cli(postgres_url, "verify").returncode == 0


def _enterprise() -> dict[str, Any]:
    from tests.samples import enterprise_body
    from tests.support import make_uscc

    return enterprise_body(make_uscc())


# ---- windows ------------------------------------------------------------------------------


def test_after_and_until_export_windows_of_the_log(original, tmp_path):
    url = original["url"]
    whole = exported_lines(url, tmp_path / "all.jsonl")
    middle = whole[len(whole) // 2]
    after = exported_lines(url, tmp_path / "after.jsonl", "--after", str(middle["position"]))
    assert after == [e for e in whole if e["position"] > middle["position"]]
    assert after[0]["previous_hash"] == middle["hash"]  # chained to what came before

    # --until: up to the last event recorded at or before T, T in any offset.
    cut = whole[len(whole) // 3]["recorded_at"]
    until = cut.replace("Z", "+00:00")
    shown = exported_lines(url, tmp_path / "until.jsonl", "--until", until)
    assert shown == [e for e in whole if e["recorded_at"] <= cut]
    assert shown[-1]["recorded_at"] == cut
    both = cli(url, "export-events", "--after", str(middle["position"]), "--until", until)
    assert both.returncode == 0 and both.stdout == ""  # nothing after the middle by then
    assert "exported 0 events" in both.stderr
    window = cli(url, "export-events", "--after", str(whole[2]["position"]), "--until", until)
    assert [json.loads(x) for x in window.stdout.splitlines()] == whole[3 : len(shown)]

    # stdout carries only the events; the summary and errors go to stderr.
    plain = cli(url, "export-events")
    assert [json.loads(x) for x in plain.stdout.splitlines()] == whole
    assert "head sequence" in plain.stderr
    for bad in (["--until", "2026-12-01T00:00:00"], ["--until", "soon"], ["--after", "-1"]):
        r = cli(url, "export-events", *bad)
        assert r.returncode == 2 and r.stdout == "", bad


# ---- refusals -----------------------------------------------------------------------------


@pytest.fixture
def exported(original, tmp_path) -> list[dict[str, Any]]:
    return exported_lines(original["url"], tmp_path / "all.jsonl")


def _changed_payload(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    payload = events[4]["payload"]
    events[4]["payload"] = payload.replace('"occurred_at":"2', '"occurred_at":"1', 1)
    assert events[4]["payload"] != payload
    return events


def _cut_version(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Event 9 claims the next version of its stream but one, every hash recomputed."""
    events[8]["version"] += 1
    rechain(events, 9)
    return events


def _without_hash(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    del events[2]["hash"]
    return events


def _wrong_previous(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    events[3]["previous_hash"] = ZEROS
    return events


# case: (what is done to the file, the line named, the reason given)
REFUSALS = {
    "changed-payload-byte": (_changed_payload, 5, "hash_mismatch"),
    "removed-line": (lambda e: e[:6] + e[7:], 7, "sequence_gap"),
    "missing-field": (_without_hash, 3, "missing_field"),
    "version-gap": (_cut_version, 9, "version_gap"),
    "partial-export": (lambda e: e[10:], 1, "not_from_start"),
    "wrong-previous-hash": (_wrong_previous, 4, "previous_hash_mismatch"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_a_damaged_file_is_refused_at_its_line_and_nothing_is_written(
    case, exported, empty_url, tmp_path
):
    change, line, reason = REFUSALS[case]
    path = write_lines(tmp_path / "damaged.jsonl", change(exported))
    r = cli(empty_url, "import-events", str(path))
    assert r.returncode == 1, r.stderr
    assert f"line {line}: {reason}" in r.stderr
    assert "Nothing was written" in r.stderr
    assert_empty(empty_url)


def test_a_truncated_last_line_is_bad_json_at_that_line(exported, empty_url, tmp_path):
    path = write_lines(tmp_path / "cut.jsonl", exported)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 40])  # the copy stopped mid-line
    r = cli(empty_url, "import-events", str(path))
    assert r.returncode == 1 and f"line {len(exported)}: bad_json" in r.stderr, r.stderr
    assert_empty(empty_url)


def test_a_store_with_events_is_refused_and_left_as_it_was(original, exported, tmp_path):
    url, digest = original["url"], original["digest"]
    path = write_lines(tmp_path / "all.jsonl", exported)
    before = log_rows(url)
    r = cli(url, "import-events", str(path))
    assert r.returncode == 1 and "not empty" in r.stderr, r.stderr
    assert log_rows(url) == before and http_digest(url, original["auditor"]) == digest


def test_read_models_of_another_log_are_refused(original, exported, tmp_path):
    """An event table emptied by hand beside views that still hold its old log: restoring
    into it would leave views the runner never rebuilds."""
    url = original["url"]
    read_models(url)  # the views are at the head
    app = LedgerApplication(parse_database_url(url))
    try:
        table = app.recorder.events_table_name  # type: ignore[attr-defined]
        if app.database.kind == "postgresql":
            table = f'"{app.database.schema}"."{table}"'
        with app.recorder.datastore.transaction(commit=True) as cur:  # type: ignore[attr-defined]
            cur.execute(f"DELETE FROM {table}")
    finally:
        app.close()
    path = write_lines(tmp_path / "all.jsonl", exported)
    r = cli(url, "import-events", str(path))
    assert r.returncode == 1 and "read models" in r.stderr, r.stderr
    assert_empty(url)


def test_a_missing_file_is_exit_2(empty_url, tmp_path):
    r = cli(empty_url, "import-events", str(tmp_path / "nothing.jsonl"))
    assert r.returncode == 2 and "cannot read" in r.stderr


# ---- the published digest -----------------------------------------------------------------


def test_a_cut_tail_imports_and_verifies_but_not_against_the_published_digest(
    original, exported, empty_url, tmp_path
):
    digest = original["digest"]
    published = f"{digest['sequence']}:{digest['head_hash']}"
    path = write_lines(tmp_path / "cut.jsonl", exported[:-5])  # whole lines gone from the end
    assert cli(empty_url, "import-events", str(path)).returncode == 0
    assert cli(empty_url, "verify").returncode == 0  # a valid chain: the limit of a chain
    caught = cli(empty_url, "verify", "--against", published)
    assert caught.returncode == 1
    assert "digest_beyond_head" in caught.stdout
    older = exported[-6]
    held = cli(empty_url, "verify", "--against", f"{older['sequence']}:{older['hash']}")
    assert held.returncode == 0, held.stdout


def test_a_consistent_rewrite_imports_and_verifies_but_not_against_the_published_digest(
    original, exported, empty_url, tmp_path
):
    digest = original["digest"]
    kept = exported[9]  # a digest written down before the rewritten event
    exported[11]["payload"] = exported[11]["payload"].replace('"name":"', '"name":"X', 1)
    rechain(exported, 12)  # every later hash recomputed with the published algorithm
    path = write_lines(tmp_path / "rewritten.jsonl", exported)
    assert cli(empty_url, "import-events", str(path)).returncode == 0
    assert cli(empty_url, "verify").returncode == 0
    caught = cli(empty_url, "verify", "--against", f"{digest['sequence']}:{digest['head_hash']}")
    assert caught.returncode == 1 and "digest_mismatch" in caught.stdout
    assert f"FAILED at sequence {digest['sequence']} " in caught.stdout
    held = cli(empty_url, "verify", "--against", f"{kept['sequence']}:{kept['hash']}")
    assert held.returncode == 0, held.stdout


# ---- the auditor's own script -------------------------------------------------------------


def auditor_script() -> str:
    """The listing under "Export and restore" in docs/audit.md, exactly as published."""
    text = (ROOT / "docs" / "audit.md").read_text()
    section = text[text.index("## Export and restore") :]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, "docs/audit.md: no python listing under 'Export and restore'"
    return match.group(1)


def run_auditor_script(path: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "recompute.py"
    script.write_text(auditor_script())
    # A bare interpreter: the standard library only, none of the project on the path.
    return subprocess.run(
        [sys.executable, "-I", str(script), str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )


def test_the_published_script_recomputes_every_hash_of_an_export(original, tmp_path):
    source = auditor_script()
    imports = set(re.findall(r"^import (\w+)|^from (\w+)", source, re.MULTILINE))
    assert {name for pair in imports for name in pair if name} <= {"hashlib", "json", "sys"}
    assert len(source.splitlines()) <= 40  # short enough to read and retype
    digest = original["digest"]
    path = tmp_path / "events.jsonl"
    export(original["url"], path)
    r = run_auditor_script(path, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"head sequence {digest['sequence']}, head hash {digest['head_hash']}" in r.stdout
    # A window from --after checks too, chained to the hash before it.
    events = lines_of(path)
    window = write_lines(tmp_path / "window.jsonl", events[7:])
    r = run_auditor_script(window, tmp_path)
    assert r.returncode == 0 and f"previous hash {events[6]['hash']}" in r.stdout, r.stdout
    # One changed character of one payload: the script names its line.
    damaged = write_lines(tmp_path / "damaged.jsonl", _changed_payload(events))
    r = run_auditor_script(damaged, tmp_path)
    assert r.returncode != 0 and "line 5" in r.stderr, r.stdout + r.stderr
