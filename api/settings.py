"""Settings, read from the environment in this module only."""

from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_DATABASE_URL = "sqlite:///./var/ledger.sqlite3"


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    zones_file: str | None = None
    risk_rules_file: str | None = None
    duty_tables_file: str | None = None
    # "inline": the server runs the projection runner in a thread; "off": a separate
    # `customs-ledger project --follow` process does (PostgreSQL deployments).
    projections: str = "inline"
    read_wait_seconds: float = 2.0
    # The tamper watch (ledger/watch.py): the whole chain at start, the tail every so many
    # seconds (0: no watch); and a file of published digests it checks against.
    verify_seconds: float = 60.0
    digest_file: str | None = None
    # Buyers' personal data (ledger/buyer_keys.py): the master key's file (none: kept in the
    # key store), and the years a buyer's data is kept after its last retail list.
    privacy_key_file: str | None = None
    buyer_retention_years: int = 3

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            database_url=os.environ.get("LEDGER_DATABASE_URL", DEFAULT_DATABASE_URL),
            zones_file=os.environ.get("LEDGER_ZONES_FILE") or None,
            risk_rules_file=os.environ.get("LEDGER_RISK_RULES_FILE") or None,
            duty_tables_file=os.environ.get("LEDGER_DUTY_TABLES_FILE") or None,
            projections=os.environ.get("LEDGER_PROJECTIONS", "inline"),
            read_wait_seconds=float(os.environ.get("LEDGER_READ_WAIT_SECONDS", "2")),
            verify_seconds=float(os.environ.get("LEDGER_VERIFY_SECONDS", "60")),
            digest_file=os.environ.get("LEDGER_DIGEST_FILE") or None,
            privacy_key_file=os.environ.get("LEDGER_PRIVACY_KEY_FILE") or None,
            buyer_retention_years=int(os.environ.get("LEDGER_BUYER_RETENTION_YEARS", "3")),
        )
