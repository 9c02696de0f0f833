"""API keys: bearer tokens of which only a SHA-256 hash is stored, recorded as events.

Issuing, rotating and revoking a key are events of the key's stream (domain/api_keys.py),
with the token's hash, the role, the binding and who did it. The key table that requests
look a token up in (ledger/key_table.py) is a projection of those streams, written in the
same transaction as the events, so a key issued or revoked from the CLI takes effect at once
in every running server (there is no cache to expire). A request is admitted only when its
row is exactly what its stream says: a row substituted, un-revoked or inserted by hand is
refused like an unknown token, and reported (docs/decisions/0016).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime

from eventsourcing.persistence import IntegrityError

from domain import api_keys as keys
from domain import values
from domain.api_keys import ROLES, ApiKeyState
from domain.errors import LedgerError, ValidationFailed
from domain.events import Actor, Pending
from ledger.application import LedgerApplication
from ledger.key_table import COLUMNS, KeyRow, KeyTable, differing_columns

__all__ = ["ROLES", "ApiKey", "ApiKeys", "KeyError_", "token_hash"]

log = logging.getLogger("customs_ledger.keys")

# Who issues, rotates or revokes a key when no one is named: the ledger itself (tests, the
# benchmarks). The CLI names the operating-system user who ran it.
LEDGER = Actor(name="customs-ledger", role="cli")
ATTEMPTS = 5  # a write that lost a race on its key's stream (another CLI) decides again


class KeyError_(Exception):
    """A key cannot be issued, rotated or revoked as asked."""


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

    @classmethod
    def of(cls, key: ApiKeyState | KeyRow) -> ApiKey:
        return cls(
            name=key.name,
            role=key.role,
            enterprise=key.enterprise,
            zone=key.zone,
            created_at=key.created_at,
            revoked_at=key.revoked_at,
        )


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return "clk_" + secrets.token_urlsafe(32)


def utcnow() -> datetime:
    return datetime.now(UTC)


def check_key(
    name: str,
    role: str,
    enterprise: str | None,
    zone: str | None,
    zones: Collection[str] | None,
) -> None:
    """What `keys issue` refuses, in the CLI's words (KeyError_)."""
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


class ApiKeys:
    """Issue, rotate, revoke, list and authenticate API keys in the event store's database.

    Opening it creates the key table, and upgrades one of before #14 (`adopt`)."""

    def __init__(
        self,
        app: LedgerApplication,
        *,
        clock: Callable[[], datetime] = utcnow,
        tokens: Callable[[], str] = new_token,
    ) -> None:
        self.table = KeyTable(app)
        self.clock = clock
        self.tokens = tokens
        # Told why when a request's key row does not match the log (the tamper watch's alarm).
        self.on_tampered: Callable[[str], None] | None = None
        self.adopted: list[str] = []
        with self.table.creating() as cur:
            self.table.create(cur)
            unlinked = self.table.unlinked(cur)
        if unlinked:
            self.adopted = self.adopt()

    # -- writing ---------------------------------------------------------------------------

    def issue(
        self,
        *,
        name: str,
        role: str,
        enterprise: str | None = None,
        zone: str | None = None,
        zones: Collection[str] | None = None,
        actor: Actor = LEDGER,
    ) -> str:
        """Record a new key and return its token; the token itself is never stored.

        `zones`: the zones an operator key may name (the CLI passes the configured ones)."""
        check_key(name, role, enterprise, zone, zones)
        token = self.tokens()
        hashed = token_hash(token)
        self._record(
            name,
            lambda p, now: keys.issue(
                p,
                actor,
                now,
                name=name,
                role=role,
                enterprise=enterprise,
                zone=zone,
                token_hash=hashed,
            ),
        )
        return token

    def rotate(self, name: str, *, actor: Actor = LEDGER) -> str:
        """A new token for an active key (same name, role and binding); the old one stops
        working at once. Returns the new token."""
        token = self.tokens()
        hashed = token_hash(token)
        self._record(name, lambda p, now: keys.rotate(p, actor, now, name=name, token_hash=hashed))
        return token

    def revoke(self, name: str, *, actor: Actor = LEDGER) -> None:
        self._record(name, lambda p, now: keys.revoke(p, actor, now, name=name))

    def _record(
        self, name: str, decide: Callable[[Pending[ApiKeyState], datetime], ApiKeyState]
    ) -> None:
        """Decide on the key's stream as stored, and append the events and write the row in
        one transaction under the log's write lock; a lost race decides again."""
        table = self.table
        stream = keys.api_key_id(name)
        for attempt in range(ATTEMPTS):
            try:
                with table.writing() as cur:
                    pending = Pending(keys.fold(table.events_in(cur, table.stream(name))), stream)
                    state = decide(pending, self.clock())
                    events = pending.collect_events()
                    table.append(cur, events)
                    table.put(cur, state)
                self._appended(len(events))
                return
            except LedgerError as e:
                raise KeyError_(str(e)) from None
            except IntegrityError:
                if attempt == ATTEMPTS - 1:
                    raise

    def _appended(self, count: int) -> None:
        """Tell the application's observer (the events-appended metric), as its commits do."""
        observer = self.table.app.on_appended
        if count and observer is not None:
            try:
                observer(count)
            except Exception:  # an observer's failure must never fail a key's change
                log.exception("api keys: the events-appended observer failed")

    def adopt(self, *, actor: Actor = LEDGER) -> list[str]:
        """The upgrade step of #14: record each row of the key table that has no event yet
        into the log (`ApiKeyAdopted`, as the row is), all in one transaction. It runs when
        the table is opened and has rows that are not linked to a stream (every row of a
        table of before #14), and adopts only a table none of whose keys is in the log: once
        one key is an event, a row without one is a row the ledger did not write, and stays
        refused. Returns the names adopted."""
        table = self.table
        with table.writing() as cur:
            rows = table.rows(cur)
            streams = {r.name: table.stream(r.name) for r in rows}
            if any(table.events_in(cur, streams[r.name]) for r in rows):
                return []
            now = self.clock()
            for r in rows:
                pending: Pending[ApiKeyState] = Pending(None, keys.api_key_id(r.name))
                as_is = ApiKeyState(id=pending.id, version=0, **{c: getattr(r, c) for c in COLUMNS})
                keys.adopt(pending, actor, now, as_is)
                table.append(cur, pending.collect_events())
                table.put(cur, pending.current)
        names = [r.name for r in rows]
        self._appended(len(names))
        if names:
            log.warning(
                "api keys: %d keys of the key table of before #14 recorded into the log"
                " (ApiKeyAdopted): %s",
                len(names),
                ", ".join(names),
            )
        return names

    def rebuild(self) -> list[str]:
        """Make the key table exactly what the log says (after a restore, or once a
        tampered table has been looked into): the names of the rows that changed."""
        from ledger.key_audit import fold_log

        states = fold_log(self.table.app.log)
        with self.table.writing() as cur:
            rows = {r.name: r for r in self.table.rows(cur)}
            changed = {
                s.name
                for s in states.values()
                if s.name not in rows
                or differing_columns(rows[s.name], s, self.table.stream(s.name))
            }
            changed |= set(rows) - {s.name for s in states.values()}
            self.table.replace_all(cur, sorted(states.values(), key=lambda s: s.name))
        return sorted(changed)

    # -- reading ---------------------------------------------------------------------------

    def authenticate(self, token: str) -> ApiKey | None:
        """The active key for a token, or None (unknown and revoked look the same). The row
        found must be exactly what its stream in the log says, else it is refused too (and
        `on_tampered` told)."""
        hashed = token_hash(token)
        found = self.table.snapshot(token_hash=hashed)
        if found is None:
            return None
        row, events = found
        problem = self.table.problem(row, events)
        if problem is not None:
            reason = f"key_table_mismatch: key {row.name!r}: {problem}"
            log.error("api keys: a request's key was refused: %s", reason)
            if self.on_tampered is not None:
                self.on_tampered(reason)
            return None
        if row.revoked_at is not None or row.token_hash != hashed:
            return None
        return ApiKey.of(row)

    def list(self) -> list[ApiKey]:
        return [ApiKey.of(r) for r in self.table.rows()]
