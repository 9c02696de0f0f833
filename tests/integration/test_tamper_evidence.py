"""Tampering directly in the database, as someone with write access to it would, is detected.

Each case writes 50 events through the ledger's recorder in small batches, alters the table
with plain SQL (sqlite3 or psycopg, not our code), and checks that `verify` fails and names
the first bad event. A cut tail and a consistent rewrite (every later hash recomputed) leave a
valid chain: only the digest published before the tampering (`against`) exposes them.
"""

from __future__ import annotations

import hashlib
import random
import shutil
import sqlite3
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from eventsourcing.persistence import StoredEvent
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import audit
from ledger.application import LedgerApplication
from ledger.chain import link_hash, link_hashes
from ledger.database import Database, parse_database_url
from tests.support import pg_conninfo

EVENTS = 50
TOPICS = ["domain.lot:LotReceived", "domain.lot:LotShipped", "domain.declaration:Filed"]


def _events(rng: random.Random) -> Iterator[list[StoredEvent]]:
    """50 events of 12 streams in batches of 1-3, the way commands save them."""
    streams = [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(12)]
    versions = dict.fromkeys(streams, 0)
    n = 0
    while n < EVENTS:
        batch = []
        for _ in range(min(rng.randint(1, 3), EVENTS - n)):
            stream = rng.choice(streams)
            versions[stream] += 1
            n += 1
            state = f'{{"actor":{{"name":"k{n}","role":"operator"}},"qty":"{rng.random():.6f}"}}'
            batch.append(StoredEvent(stream, versions[stream], rng.choice(TOPICS), state.encode()))
        yield batch


@dataclass
class Store:
    """The ledger's event table, reached with the database's own client (what a tamperer has)."""

    app: LedgerApplication
    db: Database

    @property
    def table(self) -> str:
        return self.app.recorder.events_table_name  # type: ignore[attr-defined, no-any-return]

    @property
    def pos(self) -> str:
        return "rowid" if self.db.kind == "sqlite" else "notification_id"

    def sql(self, statement: str, *params: Any) -> list[tuple[Any, ...]]:
        statement = statement.format(t=self.table, pos=self.pos)
        if self.db.kind == "sqlite":
            with sqlite3.connect(self.db.path) as conn:
                return conn.execute(statement, params).fetchall()
        path = f"-c search_path={self.db.schema}"
        with psycopg.connect(pg_conninfo(self.db), options=path) as conn:
            cursor = conn.execute(statement.replace("?", "%s"), params)  # type: ignore[arg-type]
            return cursor.fetchall() if cursor.description else []

    def row(self, sequence: int) -> dict[str, Any]:
        (r,) = self.sql(
            "SELECT {pos}, originator_id, originator_version, topic, state, recorded_at, hash "
            "FROM {t} WHERE sequence = ?",
            sequence,
        )
        keys = ("position", "stream", "version", "topic", "state", "recorded_at", "hash")
        return dict(zip(keys, r, strict=True)) | {"state": bytes(r[4]), "hash": bytes(r[6])}

    def stream_text(self, stored_id: Any) -> str:
        return str(uuid.UUID(hex=stored_id) if isinstance(stored_id, str) else stored_id)

    def digest(self) -> tuple[int, bytes]:
        d = audit.digest(self.app.log)
        assert d is not None
        return d.sequence, bytes.fromhex(d.head_hash)

    def verify(self, against: tuple[int, bytes] | None = None) -> audit.VerifyReport:
        """The report, which must not depend on where the pages happen to end."""
        report = audit.verify(self.app.log, against=against)
        for page in (1, 7, 50):
            assert audit.verify(self.app.log, against=against, page=page) == report
        return report


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    db = parse_database_url(database_url)
    app = LedgerApplication(db)
    for batch in _events(random.Random(7)):
        app.recorder.insert_events(batch)
    s = Store(app, db)
    report = s.verify()
    assert report.ok and report.events_checked == EVENTS and report.head_sequence == EVENTS
    yield s
    app.close()


def first_failure(report: audit.VerifyReport) -> audit.Failure:
    assert not report.ok
    assert report.failures
    return report.failures[0]


def test_byte_flip_in_a_state(store: Store) -> None:
    state = bytearray(store.row(20)["state"])
    state[7] ^= 0x01
    store.sql("UPDATE {t} SET state = ? WHERE sequence = 20", bytes(state))
    report = store.verify()
    (failure,) = report.failures  # the next event chains from the stored hash: only this one
    row = store.row(20)
    assert (failure.sequence, failure.position, failure.reason) == (
        20,
        row["position"],
        "hash_mismatch",
    )
    assert (failure.stream_id, failure.version) == (
        store.stream_text(row["stream"]),
        row["version"],
    )
    assert report.events_checked == EVENTS


def test_changed_topic(store: Store) -> None:
    other = next(t for t in TOPICS if t != store.row(33)["topic"])
    store.sql("UPDATE {t} SET topic = ? WHERE sequence = 33", other)
    (failure,) = store.verify().failures
    assert (failure.sequence, failure.reason) == (33, "hash_mismatch")


def test_changed_recorded_at(store: Store) -> None:
    # Moved to the previous event's time: still in order, only the hash tells.
    store.sql("UPDATE {t} SET recorded_at = ? WHERE sequence = 12", store.row(11)["recorded_at"])
    if store.row(12)["recorded_at"] == store.row(11)["recorded_at"]:  # was already equal
        store.sql(
            "UPDATE {t} SET recorded_at = ? WHERE sequence = 12", "2020-01-01T00:00:00.000000Z"
        )
    assert first_failure(store.verify()).sequence == 12


def test_backdated_event(store: Store) -> None:
    store.sql("UPDATE {t} SET recorded_at = ? WHERE sequence = 30", "2001-01-01T00:00:00.000000Z")
    failure = first_failure(store.verify())
    assert (failure.sequence, failure.reason) == (30, "hash_mismatch")
    assert "recorded_at" in failure.detail  # both problems named


def test_two_events_contents_swapped(store: Store) -> None:
    a, b = store.row(25), store.row(26)
    # The primary key is (stream, version): park one row on a free version while swapping.
    update = "UPDATE {t} SET originator_id = ?, originator_version = ?, topic = ?, state = ? "
    store.sql(update + "WHERE sequence = 25", a["stream"], -1, a["topic"], a["state"])
    store.sql(update + "WHERE sequence = 26", a["stream"], a["version"], a["topic"], a["state"])
    store.sql(update + "WHERE sequence = 25", b["stream"], b["version"], b["topic"], b["state"])
    assert first_failure(store.verify()).sequence == 25


def test_two_rows_reordered(store: Store) -> None:
    """Whole rows swap places in the log (their positions exchanged), hashes and all."""
    p25, p26 = store.row(25)["position"], store.row(26)["position"]
    store.sql("UPDATE {t} SET {pos} = ? WHERE {pos} = ?", 1_000_000, p25)
    store.sql("UPDATE {t} SET {pos} = ? WHERE {pos} = ?", p25, p26)
    store.sql("UPDATE {t} SET {pos} = ? WHERE {pos} = ?", p26, 1_000_000)
    failure = first_failure(store.verify())
    # The first position now holds event 26: named by where it is and what it says.
    assert (failure.position, failure.sequence, failure.reason) == (p25, 26, "sequence_gap")
    assert [f.sequence for f in store.verify().failures][:2] == [26, 25]


def test_event_deleted_from_the_middle(store: Store) -> None:
    store.sql("DELETE FROM {t} WHERE sequence = 17")
    report = store.verify()
    (failure,) = report.failures
    assert (failure.sequence, failure.reason) == (18, "sequence_gap")
    assert "hash" in failure.detail
    assert report.events_checked == EVENTS - 1


@pytest.mark.parametrize("forged_link", [True, False], ids=["recomputed-link", "made-up-link"])
def test_event_inserted_in_the_middle(store: Store, forged_link: bool) -> None:
    """A made-up event slipped in after event 20: later rows move up one position and one
    sequence number, so positions and sequences still look perfect."""
    before = store.row(20)
    shift = 1_000_000  # two steps, so the unique indexes never see a duplicate
    for column in ("{pos}", "sequence"):
        store.sql(f"UPDATE {{t}} SET {column} = {column} + ? WHERE sequence > 20", shift)
        store.sql(f"UPDATE {{t}} SET {column} = {column} - ? WHERE sequence > 20", shift - 1)
    stream = uuid.uuid4()
    state = b'{"actor":{"name":"mallory","role":"operator"},"qty":"1000000"}'
    # Who knows the published algorithm links the forgery to event 20 correctly.
    link = link_hash(before["hash"], stream, 1, TOPICS[0], before["recorded_at"], state)
    stored_id = stream.hex if store.db.kind == "sqlite" else stream
    store.sql(
        "INSERT INTO {t} ({pos}, originator_id, originator_version, topic, state, sequence, "
        "recorded_at, hash) VALUES (?, ?, 1, ?, ?, 21, ?, ?)",
        before["position"] + 1, stored_id, TOPICS[0], state, before["recorded_at"],
        link if forged_link else hashlib.sha256(state).digest(),
    )  # fmt: skip
    report = store.verify()
    failure = first_failure(report)
    # Even a correctly linked forgery breaks the link of the event that really followed.
    assert (failure.sequence, failure.reason) == ((22 if forged_link else 21), "hash_mismatch")
    assert report.events_checked == EVENTS + 1


def test_truncated_tail_needs_the_published_digest(store: Store) -> None:
    published = store.digest()
    older = (30, store.row(30)["hash"])
    store.sql("DELETE FROM {t} WHERE sequence > 40")
    assert store.verify().ok  # what is left is a valid chain
    failure = first_failure(store.verify(against=published))
    assert (failure.reason, failure.sequence) == ("digest_beyond_head", None)
    assert "50" in failure.detail and "40" in failure.detail
    assert store.verify(against=older).ok  # the log does still extend the older digest


def rewrite(store: Store, sequence: int, **changes: Any) -> None:
    """Change one event and recompute every hash from it on, with the published algorithm."""
    previous = store.row(sequence - 1)["hash"]
    for n in range(sequence, EVENTS + 1):
        r = store.row(n) | (changes if n == sequence else {})
        stream = store.stream_text(r["stream"])
        previous = link_hash(
            previous, stream, r["version"], r["topic"], r["recorded_at"], r["state"]
        )
        store.sql(
            "UPDATE {t} SET state = ?, recorded_at = ?, hash = ? WHERE sequence = ?",
            r["state"], r["recorded_at"], previous, n,
        )  # fmt: skip


def test_consistent_rewrite_needs_the_published_digest(store: Store) -> None:
    published, older = store.digest(), (19, store.row(19)["hash"])
    rewrite(store, 20, state=store.row(20)["state"].replace(b'"qty":"', b'"qty":"9'))
    assert store.verify().ok  # a valid chain: the limit of a chain on its own
    failure = first_failure(store.verify(against=published))
    assert (failure.reason, failure.sequence) == ("digest_mismatch", EVENTS)
    assert store.verify(against=older).ok  # the rewrite is after that digest: it still holds


def test_consistent_rewrite_that_backdates_fails_on_time_order(store: Store) -> None:
    """Recomputing the chain does not help an event moved back in time past its neighbours."""
    rewrite(store, 30, recorded_at="2001-01-01T00:00:00.000000Z")
    (failure,) = store.verify().failures
    assert (failure.sequence, failure.reason) == (30, "recorded_at_decreased")


def test_digest_of_the_untouched_log_holds(store: Store) -> None:
    d = audit.digest(store.app.log)
    assert d is not None and d.sequence == EVENTS
    assert d.recorded_at == store.row(EVENTS)["recorded_at"]
    assert d.head_position == store.row(EVENTS)["position"]
    against = audit.parse_digest(f"{d.sequence}:{d.head_hash}")
    report = store.verify(against=against)
    assert report.ok and report.head_hash == d.head_hash
    assert store.verify(against=(EVENTS + 1, against[1])).failures[0].reason == "digest_beyond_head"
    assert store.verify(against=(3, against[1])).failures[0].reason == "digest_mismatch"


def test_an_auditors_own_implementation_reproduces_every_hash(store: Store) -> None:
    """Written from the docstring of ledger/chain.py (docs/audit.md), with hashlib only."""

    def field(data: bytes) -> bytes:
        return len(data).to_bytes(8, "big") + data

    link = bytes(32)
    rows = store.sql(
        "SELECT originator_id, originator_version, topic, recorded_at, state, hash, sequence "
        "FROM {t} ORDER BY {pos}"
    )
    for n, (stored_id, version, topic, recorded_at, state, stored_hash, sequence) in enumerate(
        rows, start=1
    ):
        stream = str(uuid.UUID(str(stored_id)))  # canonical lower-case hyphenated text
        message = field(stream.encode()) + field(str(version).encode()) + field(topic.encode())
        message += field(recorded_at.encode()) + field(bytes(state))
        link = hashlib.sha256(link + message).digest()
        assert (sequence, link) == (n, bytes(stored_hash))
    assert len(rows) == EVENTS
    assert audit.digest(store.app.log).head_hash == link.hex()  # type: ignore[union-attr]


def test_wrong_typed_value_is_named_not_crashed(sqlite_url: str) -> None:
    """SQLite stores any type in any column: a text state must fail verify, not break it."""
    db = parse_database_url(sqlite_url)
    app = LedgerApplication(db)
    try:
        for batch in _events(random.Random(3)):
            app.recorder.insert_events(batch)
        s = Store(app, db)
        s.sql("UPDATE {t} SET state = 'not bytes' WHERE sequence = 9")
        s.sql("UPDATE {t} SET originator_id = 12345 WHERE sequence = 31")
        failures = s.verify().failures
        assert [(f.sequence, f.reason) for f in failures] == [
            (9, "malformed"),
            (31, "hash_mismatch"),
        ]
    finally:
        app.close()


def test_empty_log(sqlite_url: str) -> None:
    app = LedgerApplication(parse_database_url(sqlite_url))
    try:
        report = audit.verify(app.log)
        assert report == audit.VerifyReport(True, 0, None, None, None, [])
        assert audit.digest(app.log) is None
        assert audit.verify(app.log, against=(1, bytes(32))).failures[0].reason == (
            "digest_beyond_head"
        )
    finally:
        app.close()


def test_progress_is_reported_per_page(store: Store) -> None:
    seen: list[int] = []
    audit.verify(store.app.log, page=20, progress=seen.append)
    assert seen == [20, 40, 50]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "SEQUENCE:HASH"),
        ("12", "SEQUENCE:HASH"),
        ("0:" + "0" * 64, "1 or more"),
        ("-3:" + "0" * 64, "SEQUENCE:HASH"),
        ("x:" + "0" * 64, "SEQUENCE:HASH"),
        ("12:abc", "64 hex digits"),
        ("12:" + "g" * 64, "64 hex digits"),
        ("12:" + "0" * 66, "64 hex digits"),
    ],
)
def test_parse_digest_rejects(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        audit.parse_digest(text)


def test_parse_digest_accepts() -> None:
    h = hashlib.sha256(b"x").digest()
    assert audit.parse_digest(f"42:{h.hex()}") == (42, h)
    assert audit.parse_digest(f" 42:{h.hex().upper()}\n") == (42, h)


# ---- properties ---------------------------------------------------------------------------

COLUMNS = [
    "state",
    "hash",
    "topic",
    "recorded_at",
    "originator_id",
    "originator_version",
    "sequence",
]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file with the 50 events, copied for each example (building one is slower)."""
    path = tmp_path_factory.mktemp("pristine") / "ledger.sqlite3"
    app = LedgerApplication(parse_database_url(f"sqlite:///{path}"))
    for batch in _events(random.Random(11)):
        app.recorder.insert_events(batch)
    app.close()
    return path


@settings(max_examples=25, deadline=None)
@given(
    sequence=st.integers(1, EVENTS),
    column=st.sampled_from(COLUMNS),
    offset=st.integers(0, 10_000),
    bit=st.integers(0, 6),
    page=st.integers(1, 60),
)
def test_any_bit_flip_is_found_at_its_row(
    pristine: Path, sequence: int, column: str, offset: int, bit: int, page: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for suffix in ("", "-wal"):
            if Path(f"{pristine}{suffix}").exists():
                shutil.copy(f"{pristine}{suffix}", f"{tmp}/ledger.sqlite3{suffix}")
        db = parse_database_url(f"sqlite:///{tmp}/ledger.sqlite3")
        with sqlite3.connect(db.path) as conn:
            (value, position) = conn.execute(
                f"SELECT {column}, rowid FROM stored_events WHERE sequence = ?", (sequence,)
            ).fetchone()
            if isinstance(value, bytes):
                flipped: Any = bytearray(value)
                flipped[offset % len(value)] ^= 1 << bit
                flipped = bytes(flipped)
            elif isinstance(value, str):  # one ASCII character changed, still valid text
                i = offset % len(value)
                flipped = value[:i] + chr(ord(value[i]) ^ (1 << bit)) + value[i + 1 :]
            else:  # bits above 7: never another row's sequence or version
                flipped = value ^ (1 << (bit + 8))
            conn.execute(
                f"UPDATE stored_events SET {column} = ? WHERE sequence = ?", (flipped, sequence)
            )
        app = LedgerApplication(db)
        try:
            report = audit.verify(app.log, page=page)
        finally:
            app.close()
    assert not report.ok
    assert report.failures[0].position == position, (column, report.failures[0])


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.binary(min_size=32, max_size=32),
            st.uuids().map(str) | st.text(max_size=40),
            st.integers(0, 2**63) | st.sampled_from([1, 2, 3]),
            st.sampled_from(TOPICS) | st.text(max_size=30),
            st.sampled_from(["2025-01-01T00:00:00.000000Z"]) | st.text(max_size=30),
            st.binary(max_size=300),
        ),
        max_size=30,
    )
)
def test_page_links_equal_single_links(events: list[tuple[Any, ...]]) -> None:
    """verify's batch form of the formula gives the recorder's bytes, caches and all."""
    columns = list(zip(*events, strict=True)) or [[]] * 6
    assert link_hashes(*columns) == [link_hash(*e) for e in events]


# ---- verify's fast pass -------------------------------------------------------------------

HEX_IDS = st.uuids().map(lambda u: u.hex)  # as SQLite stores them


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(
            HEX_IDS | st.uuids().map(str) | st.text(max_size=40),
            st.integers(1, 2**63) | st.sampled_from([1, 2, 3]),
            st.sampled_from(TOPICS) | st.text(max_size=30),
            st.binary(max_size=300),
        ),
        min_size=1,
        max_size=30,
    ),
    st.integers(0, 29),
    st.sampled_from(["hash", "sequence", "recorded_at", "version", "stream"]),
)
def test_the_fast_pass_agrees_with_the_row_by_row_pass(
    events: list[tuple[Any, ...]], victim: int, column: str
) -> None:
    """`clean_page` (verify's common case) calls a page clean exactly when every event in it
    checks out by `link_hash`, from plain rows with the stream id as SQLite stores it."""
    rows, previous = [], audit.GENESIS
    for n, (stored_id, version, topic, state) in enumerate(events, start=1):
        s = stored_id  # the recorder's canonical text: 32 hex digits get their hyphens
        text = f"{s[:8]}-{s[8:12]}-{s[12:16]}-{s[16:20]}-{s[20:]}" if len(s) == 32 else s
        recorded_at = f"2026-01-01T00:00:{n // 10:02d}.000000Z"
        previous = link_hash(previous, text, version, topic, recorded_at, state)
        rows.append((n * 2, n, stored_id, version, topic, state, recorded_at, previous))
    middles: dict[tuple[int, str], bytes] = {}
    assert audit.clean_page(rows, audit.GENESIS, 1, "", middles) == (
        previous,
        len(rows) + 1,
        rows[-1][6],
    )
    i = victim % len(rows)
    row = list(rows[i])
    if column == "hash":
        row[7] = bytes([row[7][0] ^ 1]) + row[7][1:]
    elif column == "sequence":
        row[1] += 1
    elif column == "recorded_at":
        row[6] = "2025-12-31T23:59:59.999999Z" if i else "2027-01-01T00:00:00.000000Z"
    elif column == "version":
        row[3] = float(row[3])  # another type: only the row-by-row pass may judge it
    else:
        row[2] = row[2].upper() if row[2] != row[2].upper() else row[2] + "x"
    rows[i] = tuple(row)
    assert audit.clean_page(rows, audit.GENESIS, 1, "", middles) is None


@pytest.fixture
def helper_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    """verify's second process for 50 events as for a million, whatever this machine's load."""
    monkeypatch.setattr(audit, "PARALLEL_MIN", 1)
    monkeypatch.setattr(audit.machine, "cpu_to_spare", lambda: True)


@pytest.mark.parametrize(
    "damage",
    ["none", "first-half", "second-half", "deleted", "cut-tail", "rewritten", "backdated"],
)
def test_a_second_process_gives_the_same_report(
    sqlite_url: str, helper_allowed: None, damage: str
) -> None:
    """On a long SQLite log, verify checks the second half in another process: the report,
    damaged or not, with or without a digest, is the one a single process gives."""
    db = parse_database_url(sqlite_url)
    app = LedgerApplication(db)
    try:
        for batch in _events(random.Random(5)):
            app.recorder.insert_events(batch)
        s = Store(app, db)
        published, early, late = s.digest(), (10, s.row(10)["hash"]), (40, s.row(40)["hash"])
        if damage in ("first-half", "second-half"):
            n = 12 if damage == "first-half" else 38
            state = bytearray(s.row(n)["state"])
            state[3] ^= 0x04
            s.sql("UPDATE {t} SET state = ? WHERE sequence = ?", bytes(state), n)
        elif damage == "deleted":
            s.sql("DELETE FROM {t} WHERE sequence = 33")
        elif damage == "cut-tail":
            s.sql("DELETE FROM {t} WHERE sequence > 45")
        elif damage == "rewritten":
            rewrite(s, 30, state=s.row(30)["state"].replace(b'"qty":"', b'"qty":"7'))
        elif damage == "backdated":
            rewrite(s, 44, recorded_at="2001-01-01T00:00:00.000000Z")
        for against in (None, published, early, late):
            for page in (5000, 7):
                one = audit.verify(app.log, against=against, page=page, parallel=False)
                seen: list[int] = []
                two = audit.verify(app.log, against=against, page=page, progress=seen.append)
                assert two == one, (damage, against, page)
                assert seen and seen[-1] == one.events_checked
        assert audit.verify(app.log).ok == (damage in ("none", "cut-tail", "rewritten"))
    finally:
        app.close()


def test_the_second_process_checks_its_half(
    sqlite_url: str, helper_allowed: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The helper really runs (and its half is not read again here when it is clean)."""
    app = LedgerApplication(parse_database_url(sqlite_url))
    try:
        for batch in _events(random.Random(9)):
            app.recorder.insert_events(batch)
        read: list[int | None] = []
        select = app.log.select_log_rows  # type: ignore[attr-defined]

        def counting(after: int | None, limit: int, **kw: Any) -> Any:
            read.append(after)
            return select(after, limit, **kw)

        monkeypatch.setattr(app.log, "select_log_rows", counting)
        # The helper's start-up head start off: the split falls in the middle.
        monkeypatch.setattr(audit, "HELPER_START_EVENTS", 0)
        report = audit.verify(app.log, page=5)
        assert report.ok and report.events_checked == EVENTS
        # Pages of 5 up to the middle (position 25) here, then on from the head the helper
        # reached (50), for anything appended meanwhile: positions 26-50 were not read here.
        assert read == [None, 5, 10, 15, 20, 25, 50]
        # With it, this process takes more than half of a short log (at most three quarters).
        read.clear()
        monkeypatch.setattr(audit, "HELPER_START_EVENTS", 10)
        assert audit.verify(app.log, page=5) == report
        assert read == [None, 5, 10, 15, 20, 25, 30, 50]  # 0.5 + 10 / 100 of 50: up to 30
    finally:
        app.close()
