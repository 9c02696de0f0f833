"""What a replay reads of the log, on both stores: pages of chosen topics, and the last event
within a position and a record time.

A replay's two processes each read only the topics their projections read
(`select_log(topics=...)`, `select_entries`), and both stop at the same event
(`last_at_or_before`); either read going wrong would make the halves disagree with the live
views in ways a digest shows only late. Checked here against the plain reading of the whole
log (`select_log_rows`: row by row, on PostgreSQL too, where the pages are read packed).
"""

from __future__ import annotations

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.store import LogEntry, last_at_or_before
from projections.replay import topics_of
from projections.trace import TraceProjection
from tests.stories import run_story
from tests.support import running_ledger


def test_pages_of_chosen_topics_and_the_last_event_within_bounds(database_url):
    with running_ledger(database_url) as ledger:
        run_story(ledger)
        log = ledger.services.app.log
        every = log.log_records(log.select_log_rows(0, 100_000))
        assert len(every) > 50
        topics_seen = sorted({r.topic for r in every})
        trace_topics = topics_of([TraceProjection()])
        assert trace_topics & set(topics_seen) and set(topics_seen) - trace_topics

        @settings(
            max_examples=60,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture],
        )
        @given(
            chosen=st.sets(st.sampled_from(topics_seen)) | st.just(trace_topics),
            after=st.integers(0, len(every)),
            limit=st.integers(1, 40),
        )
        def pages(chosen, after, limit):
            after_position = every[after - 1].position if after else 0
            wanted = [r for r in every if r.position > after_position and r.topic in chosen]
            got = list(log.select_log(after_position, limit, topics=chosen))
            assert got == wanted[:limit]
            entries = log.select_entries(after_position, limit, chosen)
            assert entries == [_entry(r) for r in wanted[:limit]]

        pages()

        times = sorted({r.recorded_at for r in every})

        @settings(
            max_examples=60,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture],
        )
        @given(
            position=st.none() | st.integers(0, every[-1].position + 5),
            until=st.none() | st.sampled_from(times) | st.sampled_from(["2000-01-01", "9999"]),
        )
        def last(position, until):
            within = [
                r
                for r in every
                if (position is None or r.position <= position)
                and (until is None or r.recorded_at <= until)
            ]
            found = last_at_or_before(log, position, until)
            assert found == (within[-1] if within else None)

        last()


def _entry(record) -> LogEntry:
    return LogEntry(
        record.position,
        record.stream_id,
        record.version,
        record.topic,
        record.state,
        record.recorded_at,
    )


@pytest.mark.postgres
def test_a_page_postgresql_cannot_pack_is_read_row_by_row(postgres_url):
    """An event with a NULL column (only by tampering) would vanish from a packed page; the
    count tells, and the page is read row by row: the same records as the plain reading."""
    with running_ledger(postgres_url) as ledger:
        run_story(ledger)
        services = ledger.services
        log = services.app.log
        every = log.log_records(log.select_log_rows(0, 100_000))
        victim = every[len(every) // 2]
        with psycopg.connect(services.views.conninfo, autocommit=True) as conn:
            conn.execute(
                f'UPDATE "{services.database.schema}".{log.events_table_name}'
                " SET state = NULL WHERE notification_id = %s",
                (victim.position,),
            )
        plain = log.log_records(log.select_log_rows(0, 100_000))
        assert [r.state for r in plain if r.position == victim.position] == [None]
        assert log.select_log(0, 100_000) == plain
        assert log.select_entries(0, 100_000) == [_entry(r) for r in plain]
        # Pages without it are still read packed, and agree.
        assert log.select_log(victim.position, 100_000) == plain[len(every) // 2 + 1 :]


def test_the_topics_of_a_projection_cover_subclasses_of_what_it_reads():
    from domain.movements import LotCreated

    class SpecialLotCreated(LotCreated, frozen=True, kw_only=True):
        pass

    topics = topics_of([TraceProjection()])
    assert f"{SpecialLotCreated.__module__}:{SpecialLotCreated.__qualname__}" in topics
    assert f"{LotCreated.__module__}:LotCreated" in topics
