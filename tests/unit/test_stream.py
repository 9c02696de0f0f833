"""The live stream's parts (api/routes/stream.py): which receipts a reader's page holds (its
tenancy and its type patterns, in SQL) against a plain Python filter, and the back-pressure of
the answer itself at the ASGI boundary (a client that stops reading is cut, not buffered for)."""

from __future__ import annotations

import asyncio
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.routes.stream import EventStream, page
from domain import receipts
from projections.receipts import ReceiptsProjection
from projections.store import SQLiteViews

ENTERPRISES = ("E1", "E2", "E3")
PATTERNS = st.lists(
    st.sampled_from(["*", "declaration.*", "checklist.*", *receipts.RECEIPT_TYPES[:12]]),
    min_size=1,
    max_size=4,
)
ROWS = st.lists(
    st.tuples(
        st.sampled_from(receipts.RECEIPT_TYPES),
        st.sampled_from((None, *ENTERPRISES)),
        st.sampled_from((None, *ENTERPRISES)),
    ),
    max_size=40,
)


@pytest.fixture(scope="module")
def views(tmp_path_factory):
    store = SQLiteViews(str(tmp_path_factory.mktemp("stream") / "views.sqlite3"))
    with store.transaction() as cur:
        ReceiptsProjection().create_tables(cur)
    yield store
    store.close()


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=ROWS,
    reader=st.sampled_from((None, *ENTERPRISES)),
    patterns=PATTERNS,
    after=st.integers(0, 45),
    limit=st.integers(1, 50),
)
def test_a_page_holds_exactly_what_the_reader_may_see_in_log_order(
    views, rows, reader, patterns, after, limit
):
    stored = [
        (n + 1, kind, first, other if other != first else None)
        for n, (kind, first, other) in enumerate(rows)
    ]
    with views.transaction() as cur:
        cur.execute("DELETE FROM view_receipt_log")
        for position, kind, first, other in stored:
            cur.execute(
                "INSERT INTO view_receipt_log (position, type, enterprise, other_enterprise,"
                " body) VALUES (?,?,?,?,?)",
                (position, kind, first, other, f"body {position}"),
            )
    expected = [
        (position, kind, f"body {position}")
        for position, kind, first, other in stored
        if position > after
        and receipts.matches(patterns, kind)
        and (reader is None or reader in (first, other))
    ][:limit]
    assert page(views, reader, patterns, after, limit) == expected


async def _endless(pulled: list[int]):
    n = 0
    while True:
        n += 1
        pulled.append(n)
        yield b"data: x\n\n"


def test_a_client_that_stops_reading_is_cut_and_nothing_is_queued_for_it():
    pulled: list[int] = []
    closed: list[bool] = []
    sent: list[dict] = []

    async def send(message):
        sent.append(message)
        if len(sent) >= 3:  # the client's window is full: the write never completes
            await asyncio.Event().wait()

    async def receive():
        await asyncio.Event().wait()
        return {"type": "http.disconnect"}

    answer = EventStream(_endless(pulled), send_seconds=0.2, on_close=lambda: closed.append(True))
    started = time.monotonic()
    asyncio.run(answer({"type": "http", "method": "GET"}, receive, send))
    assert time.monotonic() - started < 2  # cut after its write timed out
    assert closed == [True]
    # The start, one chunk out, the second stuck: no chunk was pulled beyond the stuck one.
    assert [m["type"] for m in sent] == ["http.response.start", *["http.response.body"] * 2]
    assert pulled == [1, 2]
    assert all(m.get("more_body") for m in sent[1:])  # never told the client it was complete
    assert (b"content-length", b"0") not in sent[0]["headers"]


def test_a_client_that_leaves_ends_its_stream():
    pulled: list[int] = []
    closed: list[bool] = []
    left = asyncio.Event()

    async def send(message):
        if len(pulled) >= 5:
            left.set()
        await asyncio.sleep(0)

    async def receive():
        await left.wait()
        return {"type": "http.disconnect"}

    answer = EventStream(_endless(pulled), send_seconds=5, on_close=lambda: closed.append(True))
    asyncio.run(asyncio.wait_for(answer({"type": "http", "method": "GET"}, receive, send), 5))
    assert closed == [True] and 5 <= len(pulled) <= 7
