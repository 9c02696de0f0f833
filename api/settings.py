"""Settings, read from the environment in this module only."""

from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_DATABASE_URL = "sqlite:///./var/ledger.sqlite3"
PROJECTION_MODES = ("process", "inline", "off")
# LEDGER_PROJECTIONS of `customs-ledger serve` when it is not set (docs/operations.md).
SERVE_PROJECTIONS = "process"


@dataclass(frozen=True)
class RateLimits:
    """Token buckets (api/ratelimit.py, decision 0019): a rate of 0 turns that limit off.
    The defaults are on; docs/operations.md, "Rate limits", says how to size them."""

    # Every request from one client address (public routes too).
    address_per_second: float = 100.0
    address_burst: float = 200.0
    # Every request with one key's token.
    key_per_second: float = 50.0
    # A full batch (api/batch.py MAX_ITEMS) fits a key's burst: a batch costs one per item.
    key_burst: float = 500.0
    # Failed authentications (401 to a request with a token) from one address: at its
    # limit, a token not accepted before is 429 without being looked up.
    auth_failures_per_minute: float = 10.0
    auth_failures_burst: float = 10.0
    # At most this many buckets per table (least recently used dropped first).
    buckets: int = 65536
    # Peers whose X-Forwarded-For names the client (addresses or CIDR networks); none: the
    # header is never believed.
    trusted_proxies: tuple[str, ...] = ()

    @classmethod
    def from_env(cls) -> RateLimits:
        def number(name: str, default: float) -> float:
            value = float(os.environ.get(name, default))
            if not value >= 0 or value == float("inf"):
                raise ValueError(f"{name} must be a number >= 0, not {value}")
            return value

        d = cls()
        proxies = os.environ.get("LEDGER_TRUSTED_PROXIES", "")
        return cls(
            address_per_second=number("LEDGER_RATE_ADDRESS_PER_SECOND", d.address_per_second),
            address_burst=max(1.0, number("LEDGER_RATE_ADDRESS_BURST", d.address_burst)),
            key_per_second=number("LEDGER_RATE_KEY_PER_SECOND", d.key_per_second),
            key_burst=max(1.0, number("LEDGER_RATE_KEY_BURST", d.key_burst)),
            auth_failures_per_minute=number(
                "LEDGER_AUTH_FAILURES_PER_MINUTE", d.auth_failures_per_minute
            ),
            auth_failures_burst=max(
                1.0, number("LEDGER_AUTH_FAILURES_BURST", d.auth_failures_burst)
            ),
            buckets=max(1, int(number("LEDGER_RATE_BUCKETS", d.buckets))),
            trusted_proxies=tuple(p.strip() for p in proxies.split(",") if p.strip()),
        )


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    zones_file: str | None = None
    risk_rules_file: str | None = None
    duty_tables_file: str | None = None
    # Where the read models are fed (PROJECTION_MODES): "inline", the server runs the
    # projection runner in a thread (an app built in-process: the tests); "process", `serve`
    # runs it in a child process it supervises (`serve`'s default, api/feeder.py); "off", the
    # server runs none and `customs-ledger project --follow` processes do.
    projections: str = "inline"
    # In "process" mode: the address a write wakes the child at (set by `serve`, api/feeder.py).
    projections_wake: str | None = None
    read_wait_seconds: float = 2.0
    # The tamper watch (ledger/watch.py): the whole chain at start, the tail every so many
    # seconds (0: no watch); and a file of published digests it checks against.
    verify_seconds: float = 60.0
    digest_file: str | None = None
    # Buyers' personal data (ledger/buyer_keys.py): the master key's file (none: kept in the
    # key store), and the years a buyer's data is kept after its last retail list.
    privacy_key_file: str | None = None
    buyer_retention_years: int = 3
    rate_limits: RateLimits = RateLimits()
    # Webhooks (api/dispatch.py): the hosts a subscription may name over plain http or on a
    # private address (comma-separated names or addresses), and the retry schedule.
    webhook_allowed_hosts: tuple[str, ...] = ()
    webhook_retry_base_seconds: float = 5.0
    webhook_give_up_seconds: float = 24 * 3600.0
    # The live stream (api/routes/stream.py): a heartbeat every so many idle seconds; a
    # client that takes longer than `stream_send_seconds` to take a write is cut; at most so
    # many streams per server process.
    stream_heartbeat_seconds: float = 15.0
    stream_send_seconds: float = 30.0
    stream_max_clients: int = 100

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            database_url=os.environ.get("LEDGER_DATABASE_URL", DEFAULT_DATABASE_URL),
            zones_file=os.environ.get("LEDGER_ZONES_FILE") or None,
            risk_rules_file=os.environ.get("LEDGER_RISK_RULES_FILE") or None,
            duty_tables_file=os.environ.get("LEDGER_DUTY_TABLES_FILE") or None,
            projections=os.environ.get("LEDGER_PROJECTIONS", "inline"),
            projections_wake=os.environ.get("LEDGER_PROJECTIONS_WAKE") or None,
            read_wait_seconds=float(os.environ.get("LEDGER_READ_WAIT_SECONDS", "2")),
            verify_seconds=float(os.environ.get("LEDGER_VERIFY_SECONDS", "60")),
            digest_file=os.environ.get("LEDGER_DIGEST_FILE") or None,
            privacy_key_file=os.environ.get("LEDGER_PRIVACY_KEY_FILE") or None,
            buyer_retention_years=int(os.environ.get("LEDGER_BUYER_RETENTION_YEARS", "3")),
            rate_limits=RateLimits.from_env(),
            webhook_allowed_hosts=tuple(
                h.strip().lower()
                for h in os.environ.get("LEDGER_WEBHOOK_ALLOWED_HOSTS", "").split(",")
                if h.strip()
            ),
            webhook_retry_base_seconds=float(
                os.environ.get("LEDGER_WEBHOOK_RETRY_BASE_SECONDS", "5")
            ),
            webhook_give_up_seconds=float(
                os.environ.get("LEDGER_WEBHOOK_GIVE_UP_SECONDS", str(24 * 3600))
            ),
            stream_heartbeat_seconds=float(os.environ.get("LEDGER_STREAM_HEARTBEAT_SECONDS", "15")),
            stream_send_seconds=float(os.environ.get("LEDGER_STREAM_SEND_SECONDS", "30")),
            stream_max_clients=int(os.environ.get("LEDGER_STREAM_MAX_CLIENTS", "100")),
        )
