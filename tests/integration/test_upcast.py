"""Schema evolution drill: stored v1 events decode forever, and a mixed v1/v2 log replays like v2.

`tests/fixtures/events_v1.jsonl` holds a small log written by the code before
`CreditClassChanged` became v2 (made once by tests/fixtures/make_events_v1.py, never again):
the exact stored bytes with their chain links. Decision: docs/decisions/0010.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from uuid import UUID

import msgspec
import pytest
from eventsourcing.persistence import MapperDeserialisationError

from api.services import decode_entry, load_zones, read_models_runner
from domain.enterprise import ChangeCreditClass, CreditClassChanged, Enterprise, enterprise_id
from domain.events import Actor
from domain.stocktake import Adjustment
from ledger.application import LedgerApplication
from ledger.audit import verify
from ledger.chain import GENESIS, link_hash
from ledger.commands import Idempotency, Ledger
from ledger.database import Database, parse_database_url
from ledger.mapper import EventVersionError, decode_event, event_state
from ledger.store import LogRecord
from projections.digest import views_digest
from projections.store import SQLiteViews
from tests.samples import make_uscc, rules_without_draws
from tests.support import pg_conninfo

FIXTURE = Path(__file__).parents[1] / "fixtures" / "events_v1.jsonl"
CREDIT_TOPIC = "domain.enterprise:CreditClassChanged"
# The fixture's two enterprises (make_events_v1.py) and the first one's account book.
A, B = make_uscc(9001), make_uscc(9002)
BOOK = f"B{A[-8:]}XCBZ"
OFFICER = Actor(name="officer-li", role="officer")


def fixture_records() -> list[LogRecord]:
    """The fixture's rows as log records (position = sequence), state as the stored bytes."""
    records = []
    for line in FIXTURE.read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        records.append(
            LogRecord(
                position=r["sequence"],
                sequence=r["sequence"],
                stream_id=r["stream_id"],
                version=r["version"],
                topic=r["topic"],
                state=r["state"].encode("utf-8"),
                recorded_at=r["recorded_at"],
                hash=bytes.fromhex(r["hash"]),
            )
        )
    return records


def decode(r: LogRecord):
    return decode_event(r.topic, UUID(r.stream_id), r.version, bytes(r.state))


def insert_raw(app: LedgerApplication, records: list[LogRecord], *, keep_positions: bool) -> None:
    """Put stored rows into an application's store as they are: bytes, link, time, sequence.

    The recorder would compute new links and record times; an imported log keeps its own,
    so these go in by SQL, in the columns ledger/store/sqlite.py and postgres.py create.
    """
    db, table = app.database, app.recorder.events_table_name  # type: ignore[attr-defined]
    columns = "originator_id, originator_version, topic, state, sequence, recorded_at, hash"
    if db.kind == "sqlite":
        import sqlite3

        def row(r: LogRecord) -> tuple:
            oid = UUID(r.stream_id).hex
            fields = (oid, r.version, r.topic, bytes(r.state), r.sequence, r.recorded_at, r.hash)
            return (r.position, *fields) if keep_positions else fields

        cols = f"rowid, {columns}" if keep_positions else columns
        marks = ",".join("?" * (8 if keep_positions else 7))
        conn = sqlite3.connect(db.path)
        try:
            with conn:
                conn.executemany(
                    f"INSERT INTO {table} ({cols}) VALUES ({marks})",
                    [row(r) for r in records],
                )
        finally:
            conn.close()
        return
    import psycopg

    def pg_row(r: LogRecord) -> tuple:
        fields = (
            UUID(r.stream_id),
            r.version,
            r.topic,
            bytes(r.state),
            r.sequence,
            r.recorded_at,
            bytes(r.hash),
        )
        return (r.position, *fields) if keep_positions else fields

    cols = f"notification_id, {columns}" if keep_positions else columns
    marks = ",".join(["%s"] * (8 if keep_positions else 7))
    with psycopg.connect(pg_conninfo(db)) as conn:
        conn.cursor().executemany(
            f'INSERT INTO "{db.schema}".{table} ({cols}) VALUES ({marks})',
            [pg_row(r) for r in records],
        )


def relinked(records: list[LogRecord]) -> list[LogRecord]:
    """The same rows with their chain links computed afresh (for rows whose bytes changed)."""
    previous, out = GENESIS, []
    for r in records:
        previous = link_hash(
            previous, r.stream_id, r.version, r.topic, r.recorded_at, bytes(r.state)
        )
        out.append(r._replace(hash=previous))
    return out


def replay_digest(app: LedgerApplication, path: Path) -> dict[str, str]:
    views = SQLiteViews(str(path))
    try:
        read_models_runner(path.stem, views, app).catch_up()
        return views_digest(views)
    finally:
        views.close()


def stored_version(state: bytes) -> int:
    return int(msgspec.json.decode(state).get("class_version", 1))


# -- the fixture itself ----------------------------------------------------------------------


def test_the_fixture_is_intact_v1_data():
    records = fixture_records()
    # Its links chain from genesis: not one byte of the frozen file has changed.
    assert relinked(records) == records
    assert [r.sequence for r in records] == list(range(1, len(records) + 1))
    credit = [r for r in records if r.topic == CREDIT_TOPIC]
    assert len(credit) == 3
    # Written before the change: no version key anywhere, and no effective_from.
    assert all(b"class_version" not in r.state for r in credit)
    assert all(b"effective_from" not in r.state for r in credit)


def test_every_event_of_the_fixture_decodes_and_v1_credit_changes_become_v2():
    records = fixture_records()
    events = [decode(r) for r in records]  # every type, every v1 payload, no error
    changes = [e for e in events if isinstance(e, CreditClassChanged)]
    assert [(e.credit_class, e.previous) for e in changes] == [
        ("advanced_certified", "regular"),
        ("dishonest", "regular"),
        ("regular", "advanced_certified"),
    ]
    for change in changes:
        # The derived field: when it happened, with the same offset (business time, +08:00).
        assert change.effective_from == change.occurred_at
        assert change.effective_from.isoformat() == change.occurred_at.isoformat()
        assert change.effective_from.utcoffset() == change.occurred_at.utcoffset()
        assert str(change.effective_from.utcoffset()) == "8:00:00"
    assert changes[1].reason == "虚假申报, case XA-2026-117"
    # Written again, an upcast event is a v2 event: the key is last, after the new field.
    for record, change in zip(
        [r for r in records if r.topic == CREDIT_TOPIC], changes, strict=True
    ):
        again = event_state(change)
        v1 = msgspec.json.decode(record.state)
        # The v2 form, spelled out: v1's fields, the occurred_at text copied, the version last.
        v2 = {**v1, "effective_from": v1["occurred_at"], "class_version": 2}
        assert again == msgspec.json.encode(v2) != record.state
        assert list(msgspec.json.decode(again))[-2:] == ["effective_from", "class_version"]
        back = decode_event(CREDIT_TOPIC, change.originator_id, change.originator_version, again)
        assert back == change
    # Every other event re-encodes to exactly its stored fields: only the one type changed.
    # Fields added since the fixture was written (each with a default, domain/events.py)
    # come out at that default, after the stored ones.
    for record, event in zip(records, events, strict=True):
        if record.topic == CREDIT_TOPIC:
            continue
        again = msgspec.json.decode(event_state(event))
        stored = msgspec.json.decode(record.state)
        added = {k: v for k, v in again.items() if k not in stored}
        kept = {k: v for k, v in again.items() if k in stored}
        if record.topic == "domain.movements:MovementRecorded":
            # A movement's view gained `checklist_no` and `gate_pass` (issue #17): null here.
            gained = {k: kept["view"].pop(k) for k in set(kept["view"]) - set(stored["view"])}
            assert gained == {"checklist_no": None, "gate_pass": None}, record.topic
        assert kept == stored, record.topic
        defaults = {
            f.encode_name: msgspec.to_builtins(
                f.default_factory() if f.default is msgspec.NODEFAULT else f.default
            )
            for f in msgspec.inspect.type_info(type(event)).fields
            if f.encode_name in added
        }
        assert added == defaults and all(k in defaults for k in added), record.topic


def test_an_unknown_future_version_is_refused_not_misread(sqlite_url):
    record = next(r for r in fixture_records() if r.topic == CREDIT_TOPIC)
    state = msgspec.json.decode(record.state)
    future = msgspec.json.encode(
        {**state, "effective_from": state["occurred_at"], "surety": "x", "class_version": 3}
    )
    with pytest.raises(EventVersionError, match=r"CreditClassChanged is stored as v3.*up to v2"):
        decode_event(CREDIT_TOPIC, UUID(record.stream_id), record.version, future)
    # Through a store: the repository (write side) and the runner's decoder (read side) refuse.
    db = parse_database_url(sqlite_url)
    app = LedgerApplication(db)
    try:
        rows = [r if r != record else r._replace(state=future) for r in fixture_records()]
        insert_raw(app, relinked(rows), keep_positions=False)
        assert verify(app.log).ok  # the chain is fine: it is the version that is unknown
        with pytest.raises(MapperDeserialisationError, match="stored as v3"):
            app.load(UUID(record.stream_id))
        bad = next(r for r in app.log.select_log(None, 100) if r.topic == CREDIT_TOPIC)
        with pytest.raises(EventVersionError, match="stored as v3"):
            decode_entry(bad)
    finally:
        app.close()


# -- stores: new events are v2, a mixed log replays like an all-v2 log -----------------------


def test_new_credit_changes_are_stored_as_v2(database_url):
    db = parse_database_url(database_url)
    app = LedgerApplication(db)
    try:
        insert_raw(app, fixture_records(), keep_positions=False)
        ledger = Ledger(app, load_zones(None), rules=rules_without_draws())
        before = app.load(enterprise_id(B))
        assert isinstance(before, Enterprise) and before.credit_class == "dishonest"
        v1_change = decode(
            next(
                r
                for r in fixture_records()
                if r.stream_id == str(before.id) and r.topic == CREDIT_TOPIC
            )
        )
        assert before.credit_class_since == v1_change.occurred_at  # from the upcast v1 event

        out = ledger.change_credit_class(
            B, ChangeCreditClass(credit_class="regular", reason="appeal upheld"), OFFICER
        )
        assert out.body.credit_class == "regular"
        last = app.log.select_stream(enterprise_id(B))[-1]
        assert last.topic == CREDIT_TOPIC and last.version == before.version + 1
        stored = msgspec.json.decode(bytes(last.state))
        assert stored["class_version"] == 2 and list(stored)[-1] == "class_version"
        assert stored["effective_from"] == stored["occurred_at"]
        after = app.load(enterprise_id(B))
        assert after.credit_class == "regular"
        assert after.credit_class_since == datetime.fromisoformat(stored["effective_from"])
    finally:
        app.close()


def test_a_mixed_v1_v2_log_verifies_and_replays_like_the_same_facts_written_as_v2(
    database_url, tmp_path
):
    frozen = fixture_records()
    # Log A: the production data (v1, original bytes and links), then today's commands (v2).
    db_a = parse_database_url(database_url)
    app_a = LedgerApplication(db_a)
    try:
        insert_raw(app_a, frozen, keep_positions=False)
        report = verify(app_a.log)
        assert report.ok and report.head_hash == frozen[-1].hash.hex()
        ledger = Ledger(app_a, load_zones(None), rules=rules_without_draws())
        owner = Actor(name=f"ent-{A}", role="enterprise", enterprise=A)
        ledger.change_credit_class(
            A, ChangeCreditClass(credit_class="advanced_certified", reason="renewed"), OFFICER
        )
        ledger.change_credit_class(
            B, ChangeCreditClass(credit_class="regular", reason="appeal upheld"), OFFICER
        )
        surplus = {
            "kind": "adjustment",
            "account_book": BOOK,
            "item_no": 1,
            "quantity_delta": "1",
            "reason": "recount",
        }
        ledger.record_movement(
            msgspec.convert(surplus, Adjustment), owner, Idempotency(owner.name, "m1", "POST", "/m")
        )
        mixed = app_a.log.select_log(None, 10_000)
        report = verify(app_a.log)
        assert report.ok and report.events_checked == len(mixed) > len(frozen)
        # The old rows are exactly the frozen ones: nothing rewrote them.
        assert [(r.sequence, bytes(r.state), bytes(r.hash)) for r in mixed[: len(frozen)]] == [
            (r.sequence, r.state, r.hash) for r in frozen
        ]
        versions = [stored_version(bytes(r.state)) for r in mixed if r.topic == CREDIT_TOPIC]
        assert versions == [1, 1, 1, 2, 2]  # a mixed log indeed

        # Log B: the same facts, every one stored by today's code (v2), positions and times kept.
        all_v2 = relinked([r._replace(state=event_state(decode(r))) for r in mixed])
        changed = [a.topic for a, b in zip(mixed, all_v2, strict=True) if a.state != b.state]
        # The three v1 credit changes, and the assessments of the fixture, which gain the
        # field added since at its default (`tables_used`: []).
        assert changed.count(CREDIT_TOPIC) == 3
        # And the movement records, whose view gained `checklist_no` and `gate_pass` (null).
        assert set(changed) == {
            CREDIT_TOPIC,
            "domain.clearance:DeclarationAssessed",
            "domain.movements:MovementRecorded",
        }
        app_b = _store_with(db_a, all_v2, tmp_path)
        try:
            assert verify(app_b.log).ok
            assert [
                stored_version(bytes(r.state))
                for r in app_b.log.select_log(None, 10_000)
                if r.topic == CREDIT_TOPIC
            ] == [2, 2, 2, 2, 2]
            # Event by event the two logs say the same thing...
            assert [decode(r) for r in mixed] == [
                decode(r) for r in app_b.log.select_log(None, 10_000)
            ]
            # ...and a replay of each builds the same read models.
            digest_a = replay_digest(app_a, tmp_path / "replay-a.sqlite3")
            digest_b = replay_digest(app_b, tmp_path / "replay-b.sqlite3")
            assert digest_a == digest_b
        finally:
            app_b.close()
        # The replay is not empty: the enterprises view shows the classes the events set.
        views = SQLiteViews(str(tmp_path / "replay-a.sqlite3"))
        try:
            with views.read() as cur:
                cur.execute("SELECT uscc, credit_class FROM view_enterprises ORDER BY uscc")
                assert [tuple(r) for r in cur.fetchall()] == [
                    (A, "advanced_certified"),
                    (B, "regular"),
                ]
                cur.execute(
                    "SELECT on_hand FROM view_book_items WHERE book_no = ? AND item_no = 1", (BOOK,)
                )
                assert cur.fetchone()["on_hand"] == "11"  # 3 x 3 admitted, +2 -1 (v1), +1 (v2)
        finally:
            views.close()
    finally:
        app_a.close()


def _store_with(like: Database, records: list[LogRecord], tmp_path: Path) -> LedgerApplication:
    """A second store of the same kind holding exactly `records`, positions included."""
    if like.kind == "sqlite":
        db = parse_database_url(f"sqlite:///{tmp_path}/all-v2.sqlite3")
    else:
        import uuid

        import psycopg

        schema = f"t_{uuid.uuid4().hex[:12]}"
        conninfo = pg_conninfo(like)
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        _created_schemas.append((conninfo, schema))
        db = parse_database_url(like.url.replace(f"schema={like.schema}", f"schema={schema}"))
    app = LedgerApplication(db)
    insert_raw(app, records, keep_positions=True)
    return app


_created_schemas: list[tuple[str, str]] = []


@pytest.fixture(autouse=True)
def _drop_extra_schemas():
    yield
    while _created_schemas:
        import psycopg

        conninfo, schema = _created_schemas.pop()
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
