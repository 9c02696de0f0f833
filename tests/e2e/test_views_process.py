"""`customs-ledger serve` feeds the views in a child process it supervises by default
(LEDGER_PROJECTIONS=process, api/feeder.py, docs/decisions/0039-projections-process.md).

Real processes: the server is started as `make run` starts it (no LEDGER_PROJECTIONS), with the
soak's helpers (tests/soak/server.py). Checked:
- the child runs (its parent is the server) and /healthz and /metrics name it;
- a read with `X-Ledger-Min-Position` of a write sees that write in the views (fed by the child);
  while the child is down such a read waits no longer than LEDGER_READ_WAIT_SECONDS;
- SIGKILL of the child: restarted, the views catch up with writes made meanwhile, nothing lost
  (every write in the views, their position the log's head);
- SIGKILL of the server: the child stops by itself (no orphan);
- SIGTERM of the server: both stop, the child first (no restart), cleanly.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from tests.samples import enterprise_body
from tests.soak.server import LedgerServer, free_port, issue_key
from tests.support import make_uscc

T = TypeVar("T")


def _wait(what: str, found: Callable[[], T | None], timeout: float, server: LedgerServer) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = found()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within {timeout} s\n{server.log_tail()}")


def _alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[LedgerServer, str]]:
    """A server in the default mode on a new SQLite ledger, and an admin's token."""
    with serving(tmp_path) as found:
        yield found


@contextmanager
def serving(tmp_path: Path, **settings: str) -> Iterator[tuple[LedgerServer, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_PROJECTIONS")}
    env["LEDGER_DATABASE_URL"] = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(settings)
    admin = issue_key(env, "admin", "admin")
    server = LedgerServer(env, free_port(), tmp_path / "server.log")
    server.start()
    try:
        server.wait_healthy()
        yield server, admin
    finally:
        child = _health(server).get("projections_pid") if _up(server) else None
        server.kill()  # the whole group: the child too, if a test left it running
        if child:
            _wait("the views process gone", lambda: not _alive(child), 15, server)


def _up(server: LedgerServer) -> bool:
    return server.process is not None and server.process.poll() is None


def _health(server: LedgerServer) -> dict[str, Any]:
    try:
        r = httpx.get(f"{server.url}/healthz", timeout=5)
    except httpx.HTTPError:
        return {}
    answer: dict[str, Any] = r.json()
    return answer


def _register(server: LedgerServer, admin: str, n: int) -> int:
    """Register an enterprise; the log position of the write."""
    r = httpx.post(
        f"{server.url}/v1/enterprises",
        json=enterprise_body(make_uscc(), name=f"Views process test {n}"),
        headers={"Authorization": f"Bearer {admin}", "Idempotency-Key": f"views-process-{n}"},
        timeout=10,
    )
    assert r.status_code == 201, r.text
    return int(r.headers["X-Ledger-Position"])


def _listed(server: LedgerServer, admin: str, position: int | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {admin}"}
    if position is not None:
        headers["X-Ledger-Min-Position"] = str(position)
    r = httpx.get(f"{server.url}/v1/enterprises?limit=500", headers=headers, timeout=10)
    assert r.status_code == 200, r.text
    return r


def _names(r: httpx.Response) -> set[str]:
    return {item["name"] for item in r.json()["items"]}


def test_the_default_serve_feeds_the_views_in_a_child_and_reads_see_their_writes(served):
    server, admin = served
    health = _health(server)
    assert health["projections"] == "process", health
    child = health["projections_pid"]
    assert child and _alive(child) and _parent(child) == server.process.pid, health
    assert health["projections_restarts"] == 0
    banner = server.log_path.read_text()
    assert f"views      fed in their own process, pid {child}" in banner
    metrics = httpx.get(f"{server.url}/metrics", timeout=5).text
    assert 'ledger_projections_mode{mode="process"} 1.0' in metrics
    assert "ledger_projections_process_up 1.0" in metrics

    # Read-your-writes: each write's position asked for, its row in the answer at once.
    for n in range(8):
        position = _register(server, admin, n)
        listed = _listed(server, admin, position)
        assert int(listed.headers["X-Ledger-Position"]) >= position
        assert f"Views process test {n}" in _names(listed)
    # And without the header: a read waits for the head as it was when it arrived.
    position = _register(server, admin, 8)
    listed = _listed(server, admin)
    assert int(listed.headers["X-Ledger-Position"]) >= position
    assert "Views process test 8" in _names(listed)


def test_a_killed_views_process_is_restarted_and_the_views_catch_up(served):
    server, admin = served
    first = _health(server)["projections_pid"]
    _register(server, admin, 0)
    os.kill(first, signal.SIGKILL)
    # Writes while it is down are taken (the log is the server's) ...
    positions = [_register(server, admin, n) for n in range(1, 6)]
    second = _wait(
        "a new views process",
        lambda: (pid := _health(server).get("projections_pid")) not in (None, first) and pid,
        30,
        server,
    )
    assert _alive(second) and _parent(second) == server.process.pid
    # ... and the new one applies them: every write, the views at the log's head.
    listed = _listed(server, admin, positions[-1])
    assert {f"Views process test {n}" for n in range(6)} <= _names(listed)
    health = _wait(
        "the views at the head",
        lambda: (h := _health(server))["projection_lag_events"] == 0 and h,
        30,
        server,
    )
    assert health["projections_restarts"] == 1
    assert health["projection_position"] == health["log_position"]
    text = server.log_path.read_text()
    assert f"views process (pid {first}) exited with status -9; restarting it" in text


def test_a_read_waits_no_longer_than_the_read_wait_while_the_views_process_is_down(tmp_path):
    """The child killed, a write is taken at once; a read asking for it waits at most
    LEDGER_READ_WAIT_SECONDS (the restart takes longer: 1 s, then the child's start) and answers
    what the views hold, with their position; once the child is back, the write is there."""
    with serving(tmp_path, LEDGER_READ_WAIT_SECONDS="0.3") as (server, admin):
        _register(server, admin, 0)
        first = _health(server)["projections_pid"]
        os.kill(first, signal.SIGKILL)
        position = _register(server, admin, 1)
        started = time.monotonic()
        held = _listed(server, admin, position)
        waited = time.monotonic() - started
        assert 0.3 <= waited < 1.0, waited
        assert int(held.headers["X-Ledger-Position"]) < position
        assert "Views process test 1" not in _names(held)
        _wait(
            "a new views process",
            lambda: (pid := _health(server).get("projections_pid")) not in (None, first) and pid,
            30,
            server,
        )
        _wait(
            "the write in the views",
            lambda: "Views process test 1" in _names(_listed(server, admin, position)),
            30,
            server,
        )


def test_a_killed_server_leaves_no_views_process_behind(served):
    server, admin = served
    child = _health(server)["projections_pid"]
    _register(server, admin, 0)
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGKILL)  # the server only, not its process group
    server.process.wait(timeout=10)
    _wait("the views process stopped by itself", lambda: not _alive(child), 15, server)
    assert "has ended; stopping" in server.log_path.read_text()


def test_sigterm_stops_the_server_and_its_views_process(served):
    server, admin = served
    child = _health(server)["projections_pid"]
    _register(server, admin, 0)
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGTERM)
    # uvicorn gives SIGTERM back to the process once it has shut down (as in every mode).
    assert server.process.wait(timeout=30) in (0, -signal.SIGTERM)
    assert not _alive(child)
    text = server.log_path.read_text()
    # Stopped by the server (SIGTERM), not seen as a death (a restart) nor left to find its
    # stdin closed.
    assert "exited with status" not in text and "has ended; stopping" not in text, text
    assert "Traceback" not in text, text[-3000:]
