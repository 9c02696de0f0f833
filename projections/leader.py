"""Which process feeds the views of a PostgreSQL database: one at a time, by advisory lock."""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from typing import Any


class PostgresLeader:
    """A session-level advisory lock per schema and runner: of the processes that would feed
    the same views (two `customs-ledger project --follow`, several servers with inline
    projections), the one holding it does and the others wait; when its session ends (the
    process stopped, died, or lost its connection) another takes it over at its next poll.

    The lock only saves the others' work: the tracking row's compare-and-set is what keeps two
    runners from applying one page twice, should both ever believe they lead. The session is
    a connection of its own, named in `pg_stat_activity.application_name` with the process
    id, so that an operator can see which process leads."""

    CHECK_SECONDS = 1.0  # how often a holder makes sure its session is still alive

    def __init__(self, conninfo: str, schema: str, runner: str) -> None:
        name = f"customs-ledger:{schema}:runner:{runner}"
        key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big")
        self.key = key - (1 << 63)  # advisory lock keys are signed 64-bit integers
        self.conninfo = conninfo
        self.application_name = f"customs-ledger views leader pid {os.getpid()}"
        self._conn: Any = None
        self._held = False
        self._checked = 0.0

    def holds(self) -> bool:
        """Whether this process leads now: it keeps the lock it holds (its session checked at
        most every CHECK_SECONDS) or takes it when it is free."""
        import psycopg

        try:
            if self._conn is None or self._conn.closed:
                self._held = False
                self._conn = psycopg.connect(
                    self.conninfo,
                    autocommit=True,
                    connect_timeout=10,
                    application_name=self.application_name,
                )
            if self._held:
                if time.monotonic() - self._checked >= self.CHECK_SECONDS:
                    self._conn.execute("SELECT 1")
                    self._checked = time.monotonic()
                return True
            row = self._conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
            self._held = bool(row[0])
            self._checked = time.monotonic()
            return self._held
        except psycopg.Error:
            # The session is gone, and with it the lock: lead again only once it is taken anew.
            self.release()
            return False

    def release(self) -> None:
        """End the session: the lock goes with it, and a waiting process takes over."""
        conn, self._conn, self._held = self._conn, None, False
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()
