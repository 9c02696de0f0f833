"""Shared fixtures: every store-backed test runs on SQLite and on the real PostgreSQL server.

Random tests draw from one seed per run (tests/seed.py: new on each commit, the same for every
run of a commit, LEDGER_TEST_SEED to replay one): Hypothesis gets it as `--hypothesis-seed`,
never derandomized and with no example database, so what a run does depends on its seed and
its code only. The header of the run prints the seed and the command that replays it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from hypothesis import settings

from ledger.database import parse_database_url
from tests.seed import ENV as SEED_ENV
from tests.seed import SEED
from tests.support import pg_conninfo

PG_URL = os.environ.get(
    "LEDGER_TEST_POSTGRES_URL", "postgresql://postgres:postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# Hypothesis loads its own `ci` profile when it sees CI (derandomized: the same examples on
# every run, whatever the commit). Ours keeps the rest of that profile (no deadline, print the
# blob of a failure) but draws from the run's seed. No example database anywhere: with the
# seed forced Hypothesis would not read one, and a run must not depend on an earlier run's files.
settings.register_profile(
    "ledger-ci" if IN_CI else "ledger",
    parent=settings.get_profile("ci" if IN_CI else "default"),
    derandomize=False,
    database=None,
    print_blob=True,
)
settings.load_profile("ledger-ci" if IN_CI else "ledger")


def replay_command(command: str = "make test") -> str:
    """The command that runs again on this run's seed (with CI's example counts when this
    run is CI's)."""
    return f"{'CI=true ' if IN_CI else ''}{SEED_ENV}={SEED.value} {command}"


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """`--hypothesis-seed` from the run's seed, before Hypothesis' plugin reads the option
    (given on the command line, it wins)."""
    if getattr(config.option, "hypothesis_seed", "absent") is None:
        config.option.hypothesis_seed = str(SEED.value)


def _seed_lines(config: pytest.Config) -> list[str]:
    forced = getattr(config.option, "hypothesis_seed", None)
    lines = [
        f"test seed: {SEED.value} (from {SEED.source}; Hypothesis and schemathesis draw from it)",
        f"replay this run: {replay_command()}",
        f"  one test: {replay_command('.venv/bin/python -m pytest <test id>')}",
    ]
    if forced is not None and str(forced) != str(SEED.value):
        lines.append(f"  --hypothesis-seed={forced} given: Hypothesis draws from that instead")
    return lines


def pytest_report_header(config: pytest.Config) -> list[str]:
    return _seed_lines(config)


def pytest_sessionstart(session: pytest.Session) -> None:
    """`make test` runs `pytest -q`, which shows no header: the seed is printed anyway."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and not getattr(reporter, "showheader", True):
        for line in _seed_lines(session.config):
            reporter.write_line(line)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if exitstatus not in (0, 5):  # failures, errors, an interrupted run
        terminalreporter.write_sep("-", f"test seed {SEED.value}: replay with {replay_command()}")


def _postgres_reachable() -> str | None:
    try:
        import psycopg

        with psycopg.connect(pg_conninfo(parse_database_url(PG_URL)), connect_timeout=3):
            return None
    except Exception as e:  # the reason is shown in the skip message
        return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


@pytest.fixture(scope="session")
def postgres_available() -> None:
    reason = _postgres_reachable()
    if reason is not None:
        if IN_CI:
            pytest.fail(f"PostgreSQL is mandatory in CI and unreachable at {PG_URL}: {reason}")
        pytest.skip(f"PostgreSQL unreachable at {PG_URL} ({reason}); CI runs these")


@pytest.fixture
def postgres_url(postgres_available: None) -> Iterator[str]:
    """A fresh schema on the test server, dropped afterwards."""
    import psycopg

    db = parse_database_url(PG_URL)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_conninfo(db), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{sep}schema={schema}"
    with psycopg.connect(pg_conninfo(db), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path}/ledger.sqlite3"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request) -> str:
    """The same test, once per store."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("postgres_url")
