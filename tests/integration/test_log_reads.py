"""What a replay reads of the log, on both stores: pages of chosen topics, and the last event
within a position and a record time.

A replay's two processes each read only the topics their projections read
(`select_log(topics=...)`), and both stop at the same event (`last_at_or_before`); either
read going wrong would make the halves disagree with the live views in ways a digest shows
only late. Checked here against the plain reading of the whole log.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.store import last_at_or_before
from projections.replay import topics_of
from projections.trace import TraceProjection
from tests.stories import run_story
from tests.support import running_ledger


def test_pages_of_chosen_topics_and_the_last_event_within_bounds(database_url):
    with running_ledger(database_url) as ledger:
        run_story(ledger)
        log = ledger.services.app.log
        every = list(log.select_log(0, 100_000))
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


def test_the_topics_of_a_projection_cover_subclasses_of_what_it_reads():
    from domain.movements import LotCreated

    class SpecialLotCreated(LotCreated, frozen=True, kw_only=True):
        pass

    topics = topics_of([TraceProjection()])
    assert f"{SpecialLotCreated.__module__}:{SpecialLotCreated.__qualname__}" in topics
    assert f"{LotCreated.__module__}:LotCreated" in topics
