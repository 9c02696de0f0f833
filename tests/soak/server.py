"""A real `customs-ledger serve` process that the soak starts, SIGKILLs and starts again."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx

from ledger.database import parse_database_url
from tests.support import pg_conninfo

DEFAULT_POSTGRES_URL = "postgresql://postgres:postgres@127.0.0.1:5432/test"
WEBHOOK_RETRY_BASE_SECONDS = 0.2


class ServerFailed(Exception):
    """The server did not come up (or died) when the soak needed it."""


def executable() -> str:
    """The `customs-ledger` script of the interpreter running the soak (the project's venv)."""
    beside = Path(sys.executable).parent / "customs-ledger"
    if beside.exists():
        return str(beside)
    found = shutil.which("customs-ledger")
    if found is None:
        raise ServerFailed("no customs-ledger executable beside the interpreter or on PATH")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run `customs-ledger ARGS` against the soak's database, in English whatever the locale
    (the checks read its text, as a script should: `--lang en`)."""
    return subprocess.run(
        [executable(), "--lang", "en", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def issue_key(env: dict[str, str], name: str, role: str, **bound: str) -> str:
    args = ["keys", "issue", "--role", role, "--name", name]
    for option, value in bound.items():
        args += [f"--{option}", value]
    done = cli(env, *args, timeout=60)
    if done.returncode != 0:
        raise ServerFailed(f"keys issue {name}: exit {done.returncode}: {done.stderr.strip()}")
    return done.stdout.strip()


class LedgerServer:
    """One server at a time on a fixed port and database; its output goes to one log file."""

    def __init__(self, env: dict[str, str], port: int, log_path: Path) -> None:
        self.env = env
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"\n=== start {self.starts} ===\n".encode())
            log.flush()
            # Its own session, so a SIGKILL of the group reaches anything it spawned too.
            self.process = subprocess.Popen(
                [executable(), "serve", "--port", str(self.port), "--log-level", "warning"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_healthy(self, timeout: float = 60) -> float:
        """Seconds until /healthz answers 200; ServerFailed if the process exits first."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.process is None or self.process.poll() is not None:
                raise ServerFailed(f"the server exited while starting:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return time.monotonic() - started
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise ServerFailed(f"no /healthz within {timeout:.0f} s:\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, open transactions and in-flight answers are lost."""
        assert self.process is not None
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        with self.log_path.open("ab") as log:
            log.write(b"=== SIGKILL ===\n")

    def stop(self) -> None:
        """SIGTERM (a clean shutdown), SIGKILL if it does not exit within 30 s."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no server log)"
        # Without the banner each start prints (a traceback's indented lines stay).
        banner = (
            "customs-ledger on",
            "  API",
            "  trace UI",
            "  dashboard",
            "  health",
            "  metrics",
            "  views",
            "  first token",
            "  (run",
        )
        kept = [line for line in text.splitlines() if not line.startswith(banner)]
        return "\n".join(kept[-lines:])

    def logged_errors(self) -> list[str]:
        """Lines where the server logged an unexpected error (each one a 500 answer)."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return [line for line in text.splitlines() if "unexpected error" in line]

    def dispatcher_errors(self) -> list[str]:
        """Where the webhook dispatcher logged a failed round or delivery (api/dispatch.py),
        each as its message and the exception that ended its traceback."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        found = []
        for line in text.splitlines():
            if "webhook delivery for subscription" not in line and "webhook dispatcher" not in line:
                continue
            try:
                record = json.loads(line)
            except ValueError:
                found.append(line.strip())
                continue
            exc = str(record.get("exc") or "").strip().splitlines()
            raised = [x for x in exc if re.match(r"[\w.]+(Error|Exception|Violation)\b", x)]
            found.append(f"{record.get('msg')}: {(raised or exc or ['no traceback'])[-1]}")
        return found


def postgres_base_url() -> str:
    return os.environ.get("LEDGER_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


def _conninfo(url: str) -> str:
    db = parse_database_url(url)
    return pg_conninfo(db)


@contextmanager
def scratch_database(store: str, workdir: Path) -> Iterator[str]:
    """A database the soak alone uses: a SQLite file in `workdir`, or a new PostgreSQL schema
    (dropped afterwards, as tests/conftest.py's `postgres_url` does)."""
    if store == "sqlite":
        yield f"sqlite:///{workdir}/ledger.sqlite3"
        return
    import psycopg

    base = postgres_base_url()
    schema = f"soak_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_conninfo(base), autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}schema={schema}"
    finally:
        with psycopg.connect(_conninfo(base), autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def server_env(database_url: str, workdir: Path) -> dict[str, Any]:
    """The server's environment: this database, the views where `serve` feeds them by default
    (a child process; LEDGER_PROJECTIONS=inline in the soak's environment: in the server; a
    SIGKILL of the group kills both), duty tables that cover the current month (the built-in
    ones end with 2026-12), receipts to the soak's
    receiver on 127.0.0.1 retried after a fifth of a second (doubling), not 5 s."""
    import msgspec

    from tests.samples import rules_without_draws
    from tests.support import RAISED_LIMITS_ENV

    tables = workdir / "duty_tables.json"
    tables.write_bytes(msgspec.json.encode(rules_without_draws().duties))
    env = dict(os.environ)
    env.update(
        LEDGER_DATABASE_URL=database_url,
        LEDGER_DUTY_TABLES_FILE=str(tables),
        PYTHONUNBUFFERED="1",
        LEDGER_WEBHOOK_ALLOWED_HOSTS="127.0.0.1",
        LEDGER_WEBHOOK_RETRY_BASE_SECONDS=str(WEBHOOK_RETRY_BASE_SECONDS),
    )
    # 16 clients from one address with a few keys, retrying through kills: never limited.
    env.update(RAISED_LIMITS_ENV)
    return env
