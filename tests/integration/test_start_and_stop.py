"""A server listens within 5 s of its start and stops within 10 s of SIGTERM, whatever the
log's size (issue #14 item 0): the probe saw a restarted server take 78-178 s to listen on a
73k-event PostgreSQL log and ignore SIGTERM.

Nothing at start may read the log in proportion to its size before the socket listens: the
read models catch up behind `/healthz`'s lag and the tamper watch verifies the chain in the
background. On SIGTERM the server gives requests in flight a grace period
(api/cli.py SHUTDOWN_GRACE_SECONDS), the runner stops after the page it is folding and the
watch after the page it is checking.

The store: about 20,000 events of real movement traffic (bench/p5.py's builder, every event
written by a command), on SQLite and copied into PostgreSQL; the server starts with empty read
models, so it is still catching up (and verifying) when it is told to stop: the test checks it
was.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.common import free_port
from bench.p3 import postgres_copy
from bench.p5 import Store, build_store

EVENTS = 20_000
LISTEN_SECONDS = 5.0
STOP_SECONDS = 10.0


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    return build_store(tmp_path_factory.mktemp("big-log"), EVENTS, "start-stop")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, store: Store, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        copy = tmp_path / "ledger.sqlite3"
        copy.write_bytes((store.directory / "ledger.sqlite3").read_bytes())
        yield f"sqlite:///{copy}"
        return
    request.getfixturevalue("postgres_available")
    with postgres_copy(str(store.directory / "ledger.sqlite3")) as copied:
        assert copied is not None, "PostgreSQL is not reachable"
        yield copied[0]


def _health(base: str) -> dict[str, Any] | None:
    try:
        r = httpx.get(f"{base}/healthz", timeout=1)
    except httpx.HTTPError:
        return None
    found: dict[str, Any] = r.json()
    return found


def test_a_server_listens_at_once_and_stops_within_seconds_on_a_large_log(url, tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "LEDGER_DATABASE_URL": url}
    started = time.monotonic()
    with (tmp_path / "server.log").open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "serve", "--port", str(port)],
            cwd=Path(__file__).resolve().parents[2],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            health = None
            while health is None and server.poll() is None:
                if time.monotonic() - started > 30:
                    break
                health = _health(base)
                if health is None:
                    time.sleep(0.02)
            listening = time.monotonic() - started
            assert health is not None, (tmp_path / "server.log").read_text()[-3000:]
            print(f"  listening after {listening:.2f} s: {health}")
            assert listening <= LISTEN_SECONDS, health
            assert health["log_position"] >= EVENTS
            # Still catching up: the stop below interrupts work in progress.
            assert health["projection_lag_events"] > 0, health

            told = time.monotonic()
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
            stopped = time.monotonic() - told
            print(f"  stopped {stopped:.2f} s after SIGTERM")
            assert stopped <= STOP_SECONDS
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
    text = (tmp_path / "server.log").read_text()
    assert "Traceback" not in text, text[-3000:]
