"""The library's own recorder conformance suites, run against our chained recorders.

`eventsourcing.tests.persistence` ships in the wheel: its authors' tests for ordering, gaps,
atomicity, concurrent writers and non-interleaving positions are a better judge of a recorder
than tests we would write ourselves. Each suite runs on a SQLite file in a temporary directory
and on a fresh PostgreSQL schema, both built through our infrastructure factories with the
environment `ledger.database` produces, so the production wiring is what is tested.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    InfrastructureFactory,
    StoredEvent,
    TrackingRecorder,
)
from eventsourcing.postgres import (
    PostgresAggregateRecorder,
    PostgresProcessRecorder,
    PostgresTrackingRecorder,
)
from eventsourcing.sqlite import (
    SQLiteAggregateRecorder,
    SQLiteProcessRecorder,
    SQLiteTrackingRecorder,
)
from eventsourcing.tests.persistence import (
    AggregateRecorderTestCase,
    ApplicationRecorderTestCase,
    InfrastructureFactoryTestCase,
    NonInterleavingNotificationIDsBaseCase,
    TrackingRecorderTestCase,
)
from eventsourcing.utils import Environment

from ledger import audit
from ledger.database import Database, eventsourcing_env, parse_database_url
from ledger.store.postgres import ChainedPostgresRecorder, LedgerPostgresFactory
from ledger.store.sqlite import ChainedSQLiteRecorder, DurableSQLitePool, LedgerSQLiteFactory


class AsAggregateRecorder(AggregateRecorder):
    """Our application recorder seen through the aggregate-recorder contract.

    The aggregate suite asserts that `insert_events` returns None (an aggregate recorder has no
    log positions); an application recorder returns them. This adapter checks the positions
    are sane and then answers as an aggregate recorder would, so the rest of that suite
    (atomic batches, IntegrityError on conflicts, select_events filters) runs unchanged.
    """

    def __init__(self, recorder: ApplicationRecorder) -> None:
        self.recorder = recorder

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> None:
        ids = self.recorder.insert_events(stored_events, **kwargs)
        if stored_events:
            assert ids is not None
            assert len(ids) == len(stored_events)
            assert list(ids) == sorted(ids)
        return None

    def select_events(self, originator_id: UUID | str, **kwargs: Any) -> Sequence[StoredEvent]:
        return self.recorder.select_events(originator_id, **kwargs)


class Store:
    """Builds our factory on first use and closes it after the test, once its threads end.

    test_concurrent_no_conflicts starts two reader threads, tells them to stop and returns
    without joining them; closing the pool under a reader still inside sqlite3 crashes the
    interpreter (a segfault in the next test). So tearDown first joins the non-daemon threads
    the test left behind (the readers stop after at most one more query); psycopg's pool
    workers are daemon threads and end with the pool.
    """

    env: Environment
    factory_class: type[LedgerSQLiteFactory | LedgerPostgresFactory]

    def setUp(self) -> None:
        self._threads_before = set(threading.enumerate())
        self._store: InfrastructureFactory[Any] | None = None
        super().setUp()  # type: ignore[misc]

    def store(self) -> InfrastructureFactory[Any]:
        # Made on first use: the factory suite builds its own from self.env instead.
        if self._store is None:
            self._store = self.factory_class(self.env)
        return self._store

    def tearDown(self) -> None:
        super().tearDown()  # type: ignore[misc]
        for thread in set(threading.enumerate()) - self._threads_before:
            if not thread.daemon:
                thread.join(timeout=30)
        if self._store is not None:
            self._store.close()


class SQLiteStore(Store):
    """A LedgerSQLiteFactory on a fresh database file (WAL, synchronous=FULL)."""

    factory_class = LedgerSQLiteFactory

    def setUp(self) -> None:
        self._tmp = tempfile.TemporaryDirectory()
        self.env = Environment(
            env=eventsourcing_env(parse_database_url(f"sqlite:///{self._tmp.name}/ledger.sqlite3"))
        )
        super().setUp()

    def tearDown(self) -> None:
        super().tearDown()
        self._tmp.cleanup()


@pytest.mark.postgres
class PostgresStore(Store):
    """A LedgerPostgresFactory on a fresh schema (the `postgres_url` fixture drops it after).

    The fixture fails the test when CI=true and the server is unreachable, and skips it
    otherwise; an autouse fixture runs before unittest's setUp, so setUp can use it. The
    pool is closed in tearDown, before the fixture drops the schema.
    """

    factory_class = LedgerPostgresFactory
    db: Database

    @pytest.fixture(autouse=True)
    def _schema(self, postgres_url: str) -> None:
        self.db = parse_database_url(postgres_url)

    def setUp(self) -> None:
        self.env = Environment(env=eventsourcing_env(self.db))
        super().setUp()


class ApplicationSuite:
    """The application suite, and after each of its tests our own check of what it wrote:
    the library's concurrent-writer tests then also prove sequence, time and links intact."""

    store: Callable[[], InfrastructureFactory[Any]]

    def create_recorder(self) -> ApplicationRecorder:
        recorder = self.store().application_recorder()
        assert isinstance(recorder, ChainedSQLiteRecorder | ChainedPostgresRecorder)
        self._recorders = [*getattr(self, "_recorders", []), recorder]
        return recorder

    def tearDown(self) -> None:
        for recorder in getattr(self, "_recorders", []):
            report = audit.verify(recorder)
            assert report.ok, report.failures
            assert report.events_checked == recorder.count()
            assert report.head_sequence == (recorder.count() or None)
        super().tearDown()  # type: ignore[misc]


class AggregateSuite:
    store: Callable[[], InfrastructureFactory[Any]]

    def create_recorder(self) -> AggregateRecorder:
        return AsAggregateRecorder(self.store().application_recorder())


class NonInterleavingSuite(ApplicationSuite):
    pass


class TrackingSuite:
    """The tracking recorder is the library's own; this checks our factories still wire it."""

    store: Callable[[], InfrastructureFactory[Any]]

    def create_recorder(self) -> TrackingRecorder:
        return self.store().tracking_recorder()


# ---- SQLite -------------------------------------------------------------------------------


class TestSQLiteApplicationRecorder(SQLiteStore, ApplicationSuite, ApplicationRecorderTestCase):
    def test_durable_pool(self) -> None:
        pool = self.store().datastore.pool
        assert isinstance(pool, DurableSQLitePool)
        with self.store().datastore.transaction(commit=False) as c:
            c.execute("PRAGMA synchronous")
            assert c.fetchone()[0] == 2  # FULL


class TestSQLiteAggregateRecorder(SQLiteStore, AggregateSuite, AggregateRecorderTestCase):
    pass


class TestSQLiteNonInterleaving(
    SQLiteStore, NonInterleavingSuite, NonInterleavingNotificationIDsBaseCase
):
    pass


class TestSQLiteTrackingRecorder(SQLiteStore, TrackingSuite, TrackingRecorderTestCase):
    pass


class _SQLiteTrackingSubclass(SQLiteTrackingRecorder):
    pass


class TestSQLiteFactory(SQLiteStore, InfrastructureFactoryTestCase[LedgerSQLiteFactory]):
    def expected_factory_class(self) -> type[LedgerSQLiteFactory]:
        return LedgerSQLiteFactory

    def expected_aggregate_recorder_class(self) -> type[AggregateRecorder]:
        return SQLiteAggregateRecorder

    def expected_application_recorder_class(self) -> type[ApplicationRecorder]:
        return ChainedSQLiteRecorder

    def expected_tracking_recorder_class(self) -> type[TrackingRecorder]:
        return SQLiteTrackingRecorder

    def tracking_recorder_subclass(self) -> type[TrackingRecorder]:
        return _SQLiteTrackingSubclass

    def expected_process_recorder_class(self) -> type[Any]:
        return SQLiteProcessRecorder


# ---- PostgreSQL ---------------------------------------------------------------------------


class TestPostgresApplicationRecorder(PostgresStore, ApplicationSuite, ApplicationRecorderTestCase):
    def test_insert_subscribe(self) -> None:
        # The ledger's catch-up loop uses LISTEN/NOTIFY as a wake-up: our insert must notify.
        self.optional_test_insert_subscribe()


class TestPostgresAggregateRecorder(PostgresStore, AggregateSuite, AggregateRecorderTestCase):
    pass


class TestPostgresNonInterleaving(
    PostgresStore, NonInterleavingSuite, NonInterleavingNotificationIDsBaseCase
):
    pass


class TestPostgresTrackingRecorder(PostgresStore, TrackingSuite, TrackingRecorderTestCase):
    pass


class _PostgresTrackingSubclass(PostgresTrackingRecorder):
    pass


class TestPostgresFactory(PostgresStore, InfrastructureFactoryTestCase[LedgerPostgresFactory]):
    def expected_factory_class(self) -> type[LedgerPostgresFactory]:
        return LedgerPostgresFactory

    def expected_aggregate_recorder_class(self) -> type[AggregateRecorder]:
        return PostgresAggregateRecorder

    def expected_application_recorder_class(self) -> type[ApplicationRecorder]:
        return ChainedPostgresRecorder

    def expected_tracking_recorder_class(self) -> type[TrackingRecorder]:
        return PostgresTrackingRecorder

    def tracking_recorder_subclass(self) -> type[TrackingRecorder]:
        return _PostgresTrackingSubclass

    def expected_process_recorder_class(self) -> type[Any]:
        return PostgresProcessRecorder
