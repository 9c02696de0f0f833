"""Reads that wait for the views are bounded (issue #14 item 5): a position the log never
reached is 422 at once, and a wait holds no worker thread."""

from __future__ import annotations

import dataclasses
import time

import pytest

from api.http import MIN_POSITION_HEADER
from tests.support import admit, onboard, running_ledger


@pytest.fixture(scope="module")
def ledger(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('bounded')}/ledger.sqlite3"
    with running_ledger(url) as ledger:
        admit(ledger, onboard(ledger), 1, "5")
        yield ledger


def _head(ledger) -> int:
    return ledger.services.app.log.head().position


@pytest.mark.parametrize("beyond", [1, 1000, 999_999_999_999_999_999])
def test_a_min_position_beyond_the_log_head_is_422_at_once(ledger, beyond):
    wanted = _head(ledger) + beyond if beyond < 10**17 else beyond
    started = time.monotonic()
    r = ledger.client.get(
        "/v1/declarations",
        headers={**ledger.headers("auditor"), MIN_POSITION_HEADER: str(wanted)},
    )
    assert time.monotonic() - started < 1.0  # not the read wait (2 s)
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["loc"] == f"header.{MIN_POSITION_HEADER}"


def test_a_min_position_the_log_has_is_answered_at_or_past_it(ledger):
    head = _head(ledger)
    r = ledger.client.get(
        "/v1/declarations", headers={**ledger.headers("auditor"), MIN_POSITION_HEADER: str(head)}
    )
    assert r.status_code == 200, r.text
    assert int(r.headers["X-Ledger-Position"]) >= head


class StalledViews:
    """The views' runner stuck one event behind the head (a long page, a slow disk): what a
    read that waits for it sees. `wait_for` blocks its caller for the timeout, as the real one
    does while the views do not move."""

    def __init__(self, position: int) -> None:
        self.position = position

    def wait_for(self, position: int, timeout: float) -> bool:
        time.sleep(timeout)
        return False


def test_two_hundred_reads_waiting_on_the_views_leave_the_server_free(ledger, monkeypatch):
    """The probe held every pool thread with 200 waiting reads; now a wait is a sleep on the
    event loop, so while they wait every other request of the server (a plain `def` route,
    served from the thread pool) is answered at once."""
    import asyncio

    import httpx

    head = _head(ledger)
    monkeypatch.setattr(ledger.services, "runner", StalledViews(head - 1))
    settings = dataclasses.replace(ledger.services.settings, read_wait_seconds=1.5)
    monkeypatch.setattr(ledger.services, "settings", settings)
    app = ledger.client.app
    headers = {**ledger.headers("auditor"), MIN_POSITION_HEADER: str(head)}

    async def scenario():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            waiting = [
                asyncio.create_task(client.get("/v1/declarations", headers=headers))
                for _ in range(200)
            ]
            await asyncio.sleep(0.2)
            started = time.monotonic()
            other = await client.get("/v1/zones")
            answered_in = time.monotonic() - started
            answers = await asyncio.gather(*waiting)
            return other, answered_in, answers

    other, answered_in, answers = asyncio.run(scenario())
    assert other.status_code == 200, other.text
    assert answered_in < 0.5, answered_in
    # Each waiting read is answered when its wait is over, saying the position it reflects.
    assert {r.status_code for r in answers} == {200}
    assert {r.headers["X-Ledger-Position"] for r in answers} == {str(head - 1)}
