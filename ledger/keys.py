"""API keys: bearer tokens of which only a SHA-256 hash is stored, looked up on every request.

Keys live in a small table beside the event store (not in the log), so issuing or revoking
one from the CLI takes effect at once in every running server: there is no cache to expire.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Collection
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from domain import values
from domain.errors import ValidationFailed
from domain.events import Actor
from ledger.application import LedgerApplication
from ledger.database import schema_creation_lock

ROLES = ("admin", "enterprise", "operator", "officer", "auditor")

DDL = (
    "CREATE TABLE IF NOT EXISTS {table} ("
    " name TEXT PRIMARY KEY, token_hash TEXT NOT NULL UNIQUE, role TEXT NOT NULL,"
    " enterprise TEXT, zone TEXT, created_at TEXT NOT NULL, revoked_at TEXT)"
)


class KeyError_(Exception):
    """A key cannot be issued or revoked as asked."""


@dataclass(frozen=True)
class ApiKey:
    name: str
    role: str
    enterprise: str | None
    zone: str | None
    created_at: str
    revoked_at: str | None

    @property
    def actor(self) -> Actor:
        return Actor(name=self.name, role=self.role, enterprise=self.enterprise, zone=self.zone)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ApiKeys:
    """Issue, revoke, list and authenticate API keys in the event store's database."""

    def __init__(self, app: LedgerApplication) -> None:
        # Both of our factories (SQLite, PostgreSQL) have a datastore; the library types the
        # factory as its base, which has none.
        self.datastore: Any = app.factory.datastore  # type: ignore[attr-defined]
        self.postgres = app.database.kind == "postgresql"
        # On PostgreSQL the table lives in the event store's schema, like stored_events.
        self.table = f'"{app.database.schema}".api_keys' if self.postgres else "api_keys"
        lock = schema_creation_lock(app.database, "keys") if self.postgres else nullcontext()
        with lock, self._transaction(commit=True) as cur:
            cur.execute(DDL.format(table=self.table))

    def _transaction(self, *, commit: bool) -> Any:
        return self.datastore.transaction(commit=commit)

    def _sql(self, sql: str) -> str:
        sql = sql.replace("api_keys", self.table)
        return sql.replace("?", "%s") if self.postgres else sql

    def issue(
        self,
        *,
        name: str,
        role: str,
        enterprise: str | None = None,
        zone: str | None = None,
        zones: Collection[str] | None = None,
    ) -> str:
        """Create a key and return its token; the token itself is never stored.

        `zones`: the zones an operator key may name (the CLI passes the configured ones)."""
        if role not in ROLES:
            raise KeyError_(f"role must be one of {', '.join(ROLES)}")
        if role == "enterprise" and not enterprise:
            raise KeyError_("an enterprise key needs --enterprise USCC")
        if role == "operator" and not zone:
            raise KeyError_("an operator key needs --zone CODE")
        if role != "enterprise" and enterprise:
            raise KeyError_("only enterprise keys take --enterprise")
        if role != "operator" and zone:
            raise KeyError_("only operator keys take --zone")
        if not name or len(name) > 64:
            raise KeyError_("a key needs a name of 1 to 64 characters")
        try:  # printed by `keys list` and in logs: no control or invisible characters
            values.text("name", name, max_length=64)
            if enterprise:
                values.uscc_code("--enterprise", enterprise)
        except ValidationFailed as e:
            raise KeyError_(str(e)) from None
        if zone and zones is not None and zone not in zones:
            raise KeyError_(f"no zone {zone!r} (zones: {', '.join(sorted(zones))})")
        token = "clk_" + secrets.token_urlsafe(32)
        now = datetime.now(UTC).isoformat()
        with self._transaction(commit=True) as cur:
            cur.execute(self._sql("SELECT 1 FROM api_keys WHERE name = ?"), (name,))
            if cur.fetchone() is not None:
                raise KeyError_(f"a key named {name!r} exists already")
            cur.execute(
                self._sql(
                    "INSERT INTO api_keys (name, token_hash, role, enterprise, zone, created_at)"
                    " VALUES (?,?,?,?,?,?)"
                ),
                (name, token_hash(token), role, enterprise, zone, now),
            )
        return token

    def revoke(self, name: str) -> None:
        now = datetime.now(UTC).isoformat()
        with self._transaction(commit=True) as cur:
            cur.execute(
                self._sql("SELECT 1 FROM api_keys WHERE name = ? AND revoked_at IS NULL"), (name,)
            )
            if cur.fetchone() is None:
                raise KeyError_(f"no active key named {name!r}")
            cur.execute(self._sql("UPDATE api_keys SET revoked_at = ? WHERE name = ?"), (now, name))

    def authenticate(self, token: str) -> ApiKey | None:
        """The active key for a token, or None (unknown and revoked look the same)."""
        sql = self._sql(
            "SELECT name, role, enterprise, zone, created_at, revoked_at FROM api_keys"
            " WHERE token_hash = ?"
        )
        if self.postgres:
            # One autocommit SELECT (the pool's connections are), not BEGIN/SELECT/ROLLBACK:
            # a third of the round trips of every request.
            with self.datastore.get_connection() as connection:
                row = connection.execute(sql, (token_hash(token),)).fetchone()
        else:
            # Every request does this: one autocommit SELECT, no BEGIN/ROLLBACK around it.
            with self.datastore.get_connection(commit=False) as connection:
                row = connection._sqlite_conn.execute(sql, (token_hash(token),)).fetchone()
        if row is None or row["revoked_at"] is not None:
            return None
        return ApiKey(**{k: row[k] for k in ApiKey.__dataclass_fields__})

    def list(self) -> list[ApiKey]:
        with self._transaction(commit=False) as cur:
            cur.execute(
                self._sql(
                    "SELECT name, role, enterprise, zone, created_at, revoked_at FROM api_keys"
                    " ORDER BY name"
                )
            )
            return [
                ApiKey(**{k: r[k] for k in ApiKey.__dataclass_fields__}) for r in cur.fetchall()
            ]
