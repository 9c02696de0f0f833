"""A first day that works any day (issue #15, item 6): what a new user tried first."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.support import running_ledger


def test_head_answers_on_every_get_route_as_its_get_without_a_body(database_url):
    with running_ledger(database_url) as ledger:
        paths = ledger.client.get("/openapi.json").json()["paths"]
        gets = [p for p, operations in paths.items() if "get" in operations]
        assert "/v1/zones" in gets and len(gets) > 10
        headers = ledger.headers("officer")
        for template in gets:
            path = re.sub(r"\{[^}]+\}", "X1", template)
            got = ledger.client.get(path, headers=headers)
            head = ledger.client.head(path, headers=headers)
            assert head.status_code == got.status_code != 405, (path, head.status_code)
            assert head.content == b"", path
            assert head.headers.get("content-type") == got.headers.get("content-type"), path
        zones = ledger.client.get("/v1/zones")
        head = ledger.client.head("/v1/zones")
        assert head.status_code == 200
        assert int(head.headers["content-length"]) == len(zones.content) > 0
        # A HEAD on a path that answers only POST is still 405, naming what it allows.
        refused = ledger.client.head("/v1/movements", headers=headers)
        assert refused.status_code == 405 and "POST" in refused.headers["allow"]


def test_version_prints_the_installed_version():
    from importlib.metadata import version

    r = subprocess.run(
        [sys.executable, "-m", "api.cli", "--version"], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"customs-ledger {version('customs-ledger')}"
