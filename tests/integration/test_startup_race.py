"""Several processes (servers, projection workers) starting at once on one PostgreSQL
schema all come up."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.together import CHILD_TIMES, assert_overlapped, run_together, times_of

SCRIPT = (
    CHILD_TIMES
    + """
from api.services import Services
from api.settings import Settings
settings = Settings(database_url=_sys.argv[1])
started = wait_for_go()  # all start together, imports done
services = Services.build(settings)  # the event store, the keys table and the views
times(started)
services.close()
print("up")
"""
)


@pytest.mark.postgres
def test_processes_starting_together_create_the_tables_once(postgres_url):
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", SCRIPT, postgres_url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(os.environ),
        )
        for _ in range(4)
    ]
    results = run_together(procs)
    assert [p.returncode for p in procs] == [0, 0, 0, 0], [err[-500:] for _, err in results]
    assert all(out.strip().splitlines()[-1] == "up" for out, _ in results)
    # They raced: each was still setting up the store when the last one began.
    assert_overlapped([times_of(out) for out, _ in results])
