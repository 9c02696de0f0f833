"""Which shard of the unit-value histories this process writes (docs/decisions/0040).

Every green release of the same goods appends to the item's history; two server processes on
one PostgreSQL store appending to one stream collide on its version, and the loser's whole
group is decided again. So each process appends to its own shard (domain/unit_values.py):
it claims the first free one of `SHARDS` with a session-level PostgreSQL advisory lock, held on
a connection of its own for the life of the process (the lock goes with the session, so a
process that dies frees its shard). SQLite has one writer process per file: shard 0.

The claim only spreads the writes; correctness never rests on it. Processes beyond `SHARDS`
share a shard picked at random, and a shard whose claiming session dropped may be claimed by
another process while this one still writes it: their appends then race on the shard's
version, which the store's (stream, version) key decides, as for any stream.
"""

from __future__ import annotations

import random
import threading
from typing import Any

from domain.unit_values import SHARDS
from ledger.database import Database


class ShardClaim:
    """The shard of one application (one per process; tests run two in one process)."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._shard: int | None = None
        self._session: Any = None  # the psycopg connection holding the claim
        self._lock = threading.Lock()

    @property
    def shard(self) -> int:
        """The shard this process writes, claimed the first time it is asked for."""
        if self._shard is None:
            with self._lock:
                if self._shard is None:
                    self._shard = self._claim()
        return self._shard

    @property
    def claimed(self) -> int | None:
        """The shard, if it was asked for already (None: this process has not claimed one
        yet); never claims one."""
        if self._shard is None and self._database.kind != "postgresql":
            return 0
        return self._shard

    def _claim(self) -> int:
        db = self._database
        if db.kind != "postgresql":
            return 0
        import psycopg

        session = psycopg.connect(db.conninfo, autocommit=True, connect_timeout=10)
        claimed = False
        try:
            for shard in range(SHARDS):
                row = session.execute(
                    "SELECT pg_try_advisory_lock(%s)", (db.advisory_key(f"history shard {shard}"),)
                ).fetchone()
                if row is not None and row[0]:
                    self._session, claimed = session, True
                    return shard
        finally:
            if not claimed:
                session.close()
        return random.randrange(SHARDS)  # every shard is claimed: share one

    def release(self) -> None:
        """Close the claiming session (its lock goes with it)."""
        with self._lock:
            session, self._session = self._session, None
        if session is not None:
            session.close()
