"""The chain columns on both stores: `sequence` counts 1..n with no gaps, `recorded_at` never
goes back, and the links stay valid, also after rolled-back inserts and under concurrent writers.

PostgreSQL positions have gaps (a rolled-back insert consumes `notification_id` values); the
sequence is assigned under the table lock, inside the transaction, so it has none.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent

from ledger import audit
from ledger.application import LedgerApplication
from ledger.database import parse_database_url
from ledger.store import LogRecord

TOPIC = "domain.events:Tested"


def event(stream: uuid.UUID, version: int, note: str = "") -> StoredEvent:
    return StoredEvent(stream, version, TOPIC, f'{{"v":{version},"note":"{note}"}}'.encode())


def whole_log(app: LedgerApplication) -> list[LogRecord]:
    records: list[LogRecord] = []
    while page := app.log.select_log(records[-1].position if records else None, 100):
        records.extend(page)
    return records


def assert_chain_columns(app: LedgerApplication, expected_events: int) -> list[LogRecord]:
    records = whole_log(app)
    assert len(records) == expected_events == app.log.count()
    assert [r.sequence for r in records] == list(range(1, expected_events + 1))
    positions = [r.position for r in records]
    assert positions == sorted(set(positions)), "positions strictly increase"
    times = [r.recorded_at for r in records]
    assert times == sorted(times), "recorded_at went back"
    report = audit.verify(app.log)
    assert report.ok, report.failures
    assert report.events_checked == expected_events
    head = app.log.head()
    assert head is not None
    assert (report.head_sequence, report.head_position) == (head.sequence, head.position)
    assert report.head_hash == head.hash.hex() == records[-1].hash.hex()
    return records


@pytest.fixture
def app(database_url: str) -> Iterator[LedgerApplication]:
    application = LedgerApplication(parse_database_url(database_url))
    yield application
    application.close()


def test_sequence_has_no_gaps_after_rolled_back_inserts(app: LedgerApplication) -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    app.recorder.insert_events([event(a, 1), event(a, 2)])
    # A stale write: the version exists. On PostgreSQL the INSERT has already drawn positions
    # from the sequence when the primary key rejects it, and the rollback does not return them.
    with pytest.raises(IntegrityError):
        app.recorder.insert_events([event(b, 1), event(a, 2, "stale")])
    with pytest.raises(IntegrityError):
        app.recorder.insert_events([event(b, 1), event(b, 1, "twice in one batch")])
    app.recorder.insert_events([event(b, 1)])
    with pytest.raises(IntegrityError):
        app.recorder.insert_events([event(a, 1, "again")])
    app.recorder.insert_events([event(a, 3), event(b, 2), event(b, 3)])

    records = assert_chain_columns(app, 6)
    assert [(r.stream_id, r.version) for r in records] == [
        (str(a), 1), (str(a), 2), (str(b), 1), (str(a), 3), (str(b), 2), (str(b), 3)
    ]  # fmt: skip
    assert all(b"stale" not in r.state and b"again" not in r.state for r in records)
    if app.database.kind == "postgresql":
        # The point of the test: positions did get gaps, sequences did not.
        assert records[-1].position > len(records)


def test_chain_continues_across_application_restarts(database_url: str) -> None:
    for round_ in range(3):
        application = LedgerApplication(parse_database_url(database_url))
        try:
            stream = uuid.uuid4()
            application.recorder.insert_events([event(stream, 1), event(stream, 2)])
            assert_chain_columns(application, 2 * (round_ + 1))
        finally:
            application.close()


def test_concurrent_writers_keep_sequence_and_time_in_order(database_url: str) -> None:
    """Threads of two applications (two pools, like two processes) write at once, some of
    them losing optimistic-concurrency races on shared streams."""
    apps = [LedgerApplication(parse_database_url(database_url)) for _ in range(2)]
    shared = [uuid.uuid4() for _ in range(3)]
    written = [0]
    lock = threading.Lock()
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def writer(n: int) -> None:
        application = apps[n % 2]
        try:
            start.wait()
            for i in range(15):
                own = uuid.uuid4()
                batch = [event(own, v, f"w{n}i{i}") for v in range(1, 1 + (i % 3) + 1)]
                application.recorder.insert_events(batch)
                with lock:
                    written[0] += len(batch)
                # Racing on a shared stream: exactly one writer wins each version.
                stream = shared[i % len(shared)]
                head = application.recorder.select_events(stream, desc=True, limit=1)
                version = head[0].originator_version + 1 if head else 1
                try:
                    application.recorder.insert_events([event(stream, version, f"w{n}")])
                except IntegrityError:
                    continue
                with lock:
                    written[0] += 1
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not errors, errors[0]
        assert not any(t.is_alive() for t in threads)
        for application in apps:
            records = assert_chain_columns(application, written[0])
        for stream in shared:
            versions = [r.version for r in records if r.stream_id == str(stream)]
            assert versions == list(range(1, len(versions) + 1))
    finally:
        for application in apps:
            application.close()
