"""Buyers' data keys, kept outside the log: seal and open a retail list's personal fields.

Crypto-shredding (docs/decisions/0017-buyer-data-sealed-per-buyer.md): each buyer has a data
key (256-bit, AES-GCM) in the key store; a retail list's personal fields are written to the
log sealed with it (domain/privacy.py's tokens), so neither the log, its exports nor a dump of
the database holds them in clear. Erasing a buyer destroys the key: what it sealed can never
be read again, while the log's bytes - and so its chain - stay as they were.

- The key store is a table, `buyer_keys` (pseudonym, generation, the wrapped key, created,
  erased), never chained, never in `export-events`: on SQLite a file of its own beside the
  log (`<db>.keys.sqlite3`, 0600, `secure_delete` on, so a destroyed key's bytes are zeroed in
  the file), on PostgreSQL a table in the log's schema (compacted after an erasure).
- Every data key is stored wrapped (AES-GCM) by a master key: from the file named by
  LEDGER_PRIVACY_KEY_FILE (32 random bytes, base64), kept apart from the database and its
  backups; without one, a master key is made and kept in the key store itself (a warning at
  start: a dump of that database then opens everything). `buyer_key_master` holds the
  master's fingerprint, so a server given another master key refuses to start rather than
  wrap new keys with it.
- The buyer's pseudonym is HMAC-SHA256 of the identity number under a key derived from the
  master key (HKDF): the same buyer always gets the same one, and without the master key an
  identity number cannot be tried against it.
- Nothing is cached: every seal reads the buyer's current key and every read the keys of
  what it opens, so an erasure by any process (the CLI) takes effect at once everywhere.
  The one exception: in a server, a key made for a new buyer is kept until the group commit
  that records the buyer's first list writes it, just before the list (`defer_new_keys`);
  an erasure meanwhile does not reach that list, which is recorded after it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from eventsourcing.persistence import IntegrityError
from stdnum.cn import ric

from domain.privacy import ERASED, TOKEN_PREFIX, UNREADABLE, parse_token
from ledger.buyer_key_tables import DDL, PostgresTables, SQLiteTables
from ledger.database import Database, schema_creation_lock

log = logging.getLogger("customs_ledger.privacy")

KEY_BYTES = 32
NONCE_BYTES = 12
# Sealed values are padded to a multiple of this many bytes: a token does not tell a name's
# exact length.
PAD_TO = 32


class KeyStoreError(Exception):
    """The key store cannot be used as configured (a wrong or unreadable master key)."""


class SealError(ValueError):
    """A sealed value cannot be opened: altered, or not sealed by this key."""


@dataclass(frozen=True)
class KeyRecord:
    """One of a buyer's data keys as the store lists it (never the key itself)."""

    pseudonym: str
    generation: int
    created_at: str
    erased_at: str | None

    @property
    def live(self) -> bool:
        return self.erased_at is None


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as e:
        raise SealError(f"not base64url: {e}") from None


def _derive(master: bytes, purpose: str) -> bytes:
    info = f"customs-ledger buyer keys: {purpose}".encode()
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=info).derive(master)


def _pad(value: str) -> bytes:
    data = value.encode() + b"\x80"
    return data + b"\x00" * (-len(data) % PAD_TO)


def _unpad(data: bytes) -> str:
    stripped = data.rstrip(b"\x00")
    if not stripped.endswith(b"\x80"):
        raise SealError("the sealed value is not padded as sealed")
    return stripped[:-1].decode()


def read_master_key(path: str) -> bytes:
    """The master key of LEDGER_PRIVACY_KEY_FILE: 32 bytes, base64 (`openssl rand -base64 32`)."""
    try:
        text = Path(path).read_text().strip()
    except OSError as e:
        raise KeyStoreError(f"LEDGER_PRIVACY_KEY_FILE {path}: {e}") from None
    try:
        key = base64.b64decode(text, validate=True)
    except ValueError:
        key = b""
    if len(key) != KEY_BYTES:
        why = f"must hold {KEY_BYTES} random bytes in base64 (openssl rand -base64 32)"
        raise KeyStoreError(f"LEDGER_PRIVACY_KEY_FILE {path}: {why}")
    return key


# -- the store ------------------------------------------------------------------------------


class BuyerKeys:
    """The buyers' key store: `domain.privacy.BuyerVault` (seal) and `BuyerOpener` (open)."""

    def __init__(
        self,
        tables: SQLiteTables | PostgresTables,
        master_key: bytes | None = None,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self.tables = tables
        # Data keys and nonces come from here (a test may make them reproducible).
        self.random_bytes = random_bytes
        # True when the master key is kept in the store: the first seal says so in the log.
        self.master_in_store = False
        self._warned = False
        # Keys made for new buyers and not written yet (`defer_new_keys`): pseudonym ->
        # (generation, key, wrapped key). Made by the ledger's decider, written by its
        # committer: the lock keeps the two apart.
        self._deferred = False
        self._made: dict[str, tuple[int, bytes, bytes]] = {}
        self._made_lock = threading.Lock()
        for statement in DDL:
            with tables.transaction(write=True) as cur:
                cur.execute(tables.sql(statement))
        master = self._master(master_key)
        self._wrap = AESGCM(_derive(master, "wrap"))
        self._pseudonym_key = _derive(master, "pseudonym")
        self._secrets = AESGCM(_derive(master, "webhook secrets"))

    @classmethod
    def beside(
        cls, database: Database, datastore: Any = None, *, master_key_file: str | None = None
    ) -> BuyerKeys:
        """The key store of a database: a file beside a SQLite log, tables beside a PostgreSQL
        one (`datastore`: the application's, for its pool)."""
        master = read_master_key(master_key_file) if master_key_file else None
        if database.kind == "sqlite":
            path = database.path
            if not (path.startswith(":memory:") or "mode=memory" in path):
                stem = path[: -len(".sqlite3")] if path.endswith(".sqlite3") else path
                path = stem + ".keys.sqlite3"
            return cls(SQLiteTables(path), master)
        with schema_creation_lock(database, "buyer keys"):
            return cls(PostgresTables(datastore, database.schema), master)

    @classmethod
    def in_memory(cls, random_bytes: Callable[[int], bytes] = os.urandom) -> BuyerKeys:
        """A key store of this process only (tests, and tools that seal nothing to keep)."""
        return cls(SQLiteTables(":memory:"), random_bytes=random_bytes)

    def _master(self, given: bytes | None) -> bytes:
        """The master key, checked against (or recorded as) the store's fingerprint."""
        t = self.tables
        with t.transaction(write=True) as cur:
            cur.execute(t.sql("SELECT master, fingerprint FROM {master} WHERE id = 1"))
            row = cur.fetchone()
            if given is not None:
                found = _fingerprint(given)
                if row is None:
                    cur.execute(
                        t.sql("INSERT INTO {master} VALUES (1, NULL, ?, ?)"), (found, _now())
                    )
                elif row["fingerprint"] != found:
                    msg = (
                        f"LEDGER_PRIVACY_KEY_FILE holds master key {found}, but this key store's"
                        f" keys are wrapped by master key {row['fingerprint']}"
                    )
                    raise KeyStoreError(msg)
                return given
            if row is None:
                made = self.random_bytes(KEY_BYTES)
                cur.execute(
                    t.sql("INSERT INTO {master} VALUES (1, ?, ?, ?)"),
                    (made, _fingerprint(made), _now()),
                )
                row = {"master": made}
            if row["master"] is None:
                raise KeyStoreError(
                    f"this key store's keys are wrapped by master key {row['fingerprint']},"
                    " kept in a file: set LEDGER_PRIVACY_KEY_FILE"
                )
        self.master_in_store = True
        return bytes(row["master"])

    # -- other secrets under the same master key --------------------------------------------

    def seal_secret(self, owner: str, secret: str) -> str:
        """A webhook subscription's signing secret, sealed (AES-GCM, bound to `owner`: the
        subscription's id) so that the log, its exports and a dump of its database never
        hold it in clear (docs/decisions/0030)."""
        nonce = self.random_bytes(NONCE_BYTES)
        return _b64(nonce + self._secrets.encrypt(nonce, secret.encode(), owner.encode()))

    def open_secret(self, owner: str, sealed: str) -> str:
        data = _unb64(sealed)
        try:
            plain = self._secrets.decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], owner.encode())
        except InvalidTag:
            raise SealError("the secret was not sealed for this owner by this master key") from None
        return plain.decode()

    # -- BuyerVault ------------------------------------------------------------------------

    def pseudonym(self, resident_id: str) -> str:
        """HMAC-SHA256 of the identity number (compact, upper case), 128 bits in base32."""
        number = ric.compact(resident_id)
        digest = hmac.new(self._pseudonym_key, b"resident-id:" + number.encode(), hashlib.sha256)
        return base64.b32encode(digest.digest()[:16]).decode().rstrip("=").lower()

    def seal(self, resident_id: str, values: Mapping[str, str]) -> dict[str, str]:
        if self.master_in_store and not self._warned:
            self._warned = True  # once per process, when it first keeps a buyer's data
            log.warning(
                "buyer keys: the master key is kept in the key store itself, so a copy of the"
                " database opens every buyer's data; set LEDGER_PRIVACY_KEY_FILE"
                " (docs/operations.md)"
            )
        pseudonym = self.pseudonym(resident_id)
        generation, key = self._current_key(pseudonym)
        aead = AESGCM(key)
        sealed = {}
        for field, value in values.items():
            head = f"{TOKEN_PREFIX}{pseudonym}.{generation}."
            nonce = self.random_bytes(NONCE_BYTES)
            data = aead.encrypt(nonce, _pad(value), (head + field).encode())
            sealed[field] = head + _b64(nonce + data)
        return sealed

    # -- keys written with the ledger's group commit -----------------------------------------

    def defer_new_keys(self) -> None:
        """From now on a new buyer's key is kept in memory until the ledger's committer
        writes it (`take_new_keys`, `write_new_keys`): all the keys a group of commands made
        in one transaction, before the group's events. Writing each at once cost a commit
        (an fsync) per new buyer: most of a retail list's time (docs/benchmarks.md, P8)."""
        self._deferred = True

    def take_new_keys(self) -> list[tuple[str, int, bytes]]:
        """The keys made and not written yet: (pseudonym, generation, wrapped key). They stay
        in use (and listed) until `settle_new_keys`."""
        with self._made_lock:
            return [(p, g, wrapped) for p, (g, _key, wrapped) in self._made.items()]

    def write_new_keys(self, keys: list[tuple[str, int, bytes]]) -> None:
        """Write keys taken by `take_new_keys`, in one transaction, before the events that
        use them. If another process made one of these generations first (with its own
        key), nothing is written and `IntegrityError` says so: the commands are decided
        again, on the key that stands."""
        if not keys:
            return
        t = self.tables
        insert = t.sql(
            "INSERT INTO {keys} (pseudonym, generation, wrapped, created_at)"
            " VALUES (?,?,?,?) ON CONFLICT DO NOTHING"
        )
        standing = t.sql("SELECT wrapped FROM {keys} WHERE pseudonym = ? AND generation = ?")
        now = _now()
        with t.transaction(write=True) as cur:
            for pseudonym, generation, wrapped in keys:
                cur.execute(insert, (pseudonym, generation, wrapped, now))
            for pseudonym, generation, wrapped in keys:
                cur.execute(standing, (pseudonym, generation))
                row = cur.fetchone()
                if row is None or row["wrapped"] is None or bytes(row["wrapped"]) != wrapped:
                    raise IntegrityError(
                        f"buyer {pseudonym}: key {generation} was made by another writer"
                    )

    def settle_new_keys(self, keys: list[tuple[str, int, bytes]]) -> None:
        """Keys written (or whose group failed: the commands that used them are decided
        again) are no longer kept here."""
        with self._made_lock:
            for pseudonym, generation, _wrapped in keys:
                made = self._made.get(pseudonym)
                if made is not None and made[0] == generation:
                    del self._made[pseudonym]

    def _current_key(self, pseudonym: str) -> tuple[int, bytes]:
        """The buyer's live key, made (the next generation) when it has none."""
        with self._made_lock:
            made = self._made.get(pseudonym)
        if made is not None:
            return made[0], made[1]
        t = self.tables
        latest = t.sql(
            "SELECT generation, wrapped FROM {keys} WHERE pseudonym = ?"
            " ORDER BY generation DESC LIMIT 1"
        )
        with t.transaction(write=False) as cur:
            cur.execute(latest, (pseudonym,))
            row = cur.fetchone()
        if row is not None and row["wrapped"] is not None:
            return row["generation"], self._unwrap(pseudonym, row["generation"], row["wrapped"])
        generation = row["generation"] + 1 if row is not None else 1
        key = self.random_bytes(KEY_BYTES)
        nonce = self.random_bytes(NONCE_BYTES)
        wrapped = nonce + self._wrap.encrypt(nonce, key, f"{pseudonym}.{generation}".encode())
        if self._deferred:
            with self._made_lock:
                self._made[pseudonym] = (generation, key, wrapped)
            return generation, key
        with t.transaction(write=True) as cur:
            # Another process may make the same generation at once: the first one stands.
            cur.execute(
                t.sql(
                    "INSERT INTO {keys} (pseudonym, generation, wrapped, created_at)"
                    " VALUES (?,?,?,?) ON CONFLICT DO NOTHING"
                ),
                (pseudonym, generation, wrapped, _now()),
            )
            cur.execute(latest, (pseudonym,))
            row = cur.fetchone()
        if row["wrapped"] is None:
            raise KeyStoreError(f"buyer {pseudonym}: the key made a moment ago was destroyed")
        return row["generation"], self._unwrap(pseudonym, row["generation"], row["wrapped"])

    def _unwrap(self, pseudonym: str, generation: int, wrapped: bytes) -> bytes:
        data = bytes(wrapped)
        try:
            return self._wrap.decrypt(
                data[:NONCE_BYTES], data[NONCE_BYTES:], f"{pseudonym}.{generation}".encode()
            )
        except InvalidTag:
            msg = f"buyer {pseudonym} key {generation}: not wrapped by this master key"
            raise SealError(msg) from None

    # -- BuyerOpener -----------------------------------------------------------------------

    def open(self, sealed: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """(field, token) -> its value, ERASED (its key destroyed) or UNREADABLE (its key
        missing, or the token altered: logged)."""
        pairs = list(dict.fromkeys(sealed))
        keys = self._keys({t[:2] for _, v in pairs if (t := _key_of(v)) is not None})
        opened = {}
        for field, token in pairs:
            ref = _key_of(token)
            key = keys.get(ref[:2]) if ref is not None else None
            if key is None or key == ERASED:
                opened[field, token] = key or UNREADABLE
                continue
            try:
                opened[field, token] = open_token(key, field, token)
            except SealError as e:
                log.error("a sealed %s cannot be opened: %s", field, e)
                opened[field, token] = UNREADABLE
        return opened

    def _keys(self, refs: set[tuple[str, int]]) -> dict[tuple[str, int], Any]:
        """Each (pseudonym, generation)'s data key, ERASED, or nothing when it is missing."""
        found: dict[tuple[str, int], Any] = {}
        if not refs:
            return found
        t = self.tables
        sql = t.sql("SELECT wrapped, erased_at FROM {keys} WHERE pseudonym = ? AND generation = ?")
        with t.transaction(write=False) as cur:
            for pseudonym, generation in refs:
                cur.execute(sql, (pseudonym, generation))
                row = cur.fetchone()
                if row is None:
                    continue
                if row["wrapped"] is None:
                    found[pseudonym, generation] = ERASED
                    continue
                try:
                    found[pseudonym, generation] = self._unwrap(
                        pseudonym, generation, row["wrapped"]
                    )
                except SealError as e:
                    log.error("%s", e)
        return found

    # -- erasure ---------------------------------------------------------------------------

    def records(self, pseudonym: str) -> list[KeyRecord]:
        """The buyer's keys, oldest first (live and destroyed; never the key bytes)."""
        t = self.tables
        with t.transaction(write=False) as cur:
            cur.execute(
                t.sql(
                    "SELECT pseudonym, generation, created_at, erased_at FROM {keys}"
                    " WHERE pseudonym = ? ORDER BY generation"
                ),
                (pseudonym,),
            )
            return [KeyRecord(**{k: r[k] for k in KeyRecord.__dataclass_fields__}) for r in cur]

    def destroy(self, pseudonym: str, generations: Iterable[int]) -> int:
        """Destroy these keys of the buyer (the row stays, without the key, as a tombstone);
        how many were destroyed."""
        t = self.tables
        done = 0
        with t.transaction(write=True) as cur:
            for generation in generations:
                cur.execute(
                    t.sql(
                        "UPDATE {keys} SET wrapped = NULL, erased_at = ?"
                        " WHERE pseudonym = ? AND generation = ? AND wrapped IS NOT NULL"
                    ),
                    (_now(), pseudonym, generation),
                )
                done += cur.rowcount
        t.compact()
        return done

    def close(self) -> None:
        self.tables.close()


def _key_of(token: str) -> tuple[str, int, str] | None:
    parsed = parse_token(token)
    return (parsed.pseudonym, parsed.generation, parsed.sealed) if parsed else None


def _fingerprint(master: bytes) -> str:
    return hmac.new(_derive(master, "fingerprint"), b"", hashlib.sha256).hexdigest()[:16]


def open_token(key: bytes, field: str, token: str) -> str:
    """The value a token sealed for `field` with `key`; SealError when the token was altered,
    moved to another field, or sealed with another key."""
    parsed = parse_token(token)
    if parsed is None:
        raise SealError("not a sealed value")
    data = _unb64(parsed.sealed)
    head = f"{TOKEN_PREFIX}{parsed.pseudonym}.{parsed.generation}."
    if len(data) < NONCE_BYTES + 16:
        raise SealError("too short to be sealed")
    try:
        plain = AESGCM(key).decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], (head + field).encode())
    except InvalidTag:
        raise SealError("refused by its key: altered, or sealed with another key") from None
    return _unpad(plain)
