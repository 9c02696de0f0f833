"""Several processes (servers, projection workers) starting at once on one PostgreSQL
schema all come up."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

SCRIPT = """
import sys, time
from api.services import Services
from api.settings import Settings
settings = Settings(database_url=sys.argv[1])
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))  # start together, imports done
services = Services.build(settings)  # the event store, the keys table and the views
services.close()
print("up")
"""


@pytest.mark.postgres
def test_processes_starting_together_create_the_tables_once(postgres_url):
    start_at = time.time() + 3
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", SCRIPT, postgres_url, str(start_at)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(os.environ),
        )
        for _ in range(4)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], [err[-500:] for _, err in results]
    assert all(out.strip() == "up" for out, _ in results)
