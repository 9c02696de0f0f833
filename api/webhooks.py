"""Webhook deliveries' two rules of their own (issue #19, docs/decisions/0030): the Standard
Webhooks signature, and which URLs the ledger will ever call.

**Signature** (Standard Webhooks 1.0, standardwebhooks.com): a secret is `whsec_` + base64 of
24 random bytes; a delivery carries `webhook-id` (the same for every attempt of one receipt,
so a receiver drops duplicates), `webhook-timestamp` (Unix seconds of the attempt) and
`webhook-signature: v1,<base64 HMAC-SHA256 over "<id>.<timestamp>.<body>" keyed with the
secret's bytes>`; a receiver verifies with any implementation of the specification.

**URLs** (the server-side request forgery rules): `https` only, unless the host is on the
server's allowlist (`LEDGER_WEBHOOK_ALLOWED_HOSTS`: host names or addresses, which may then
also be plain `http` and private); no credentials in the URL; every address the host resolves
to must be public - loopback, private (RFC 1918, RFC 4193), link-local, carrier-grade NAT,
multicast, reserved and unspecified addresses are refused (cloud metadata services live at
link-local 169.254.169.254) - checked when the subscription is made and again before each
delivery, without connecting. Redirects are never followed (the dispatcher's client). A
delivery connects to the address it checked (`Target.address`, api/delivery.py), never
resolving the name again (DNS rebinding: a name that answers a public address to the check
and a private one to the connection), while TLS still verifies the certificate against the
host name.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets
import socket
from collections.abc import Callable, Collection
from dataclasses import dataclass
from urllib.parse import urlsplit

SECRET_PREFIX = "whsec_"  # noqa: S105 - the specification's prefix, not a secret
SECRET_BYTES = 24
MAX_URL_LENGTH = 2048

# host, port -> the addresses it resolves to (socket.getaddrinfo's, by default).
Resolver = Callable[[str, int], list[str]]


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header's value for one attempt."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret, msg_id, timestamp, body),
        "content-type": "application/json",
    }


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


@dataclass(frozen=True)
class Target:
    """Where a delivery may go: why not (`problem`), or the checked `address` to connect to
    (None: an allowlisted host, connected to by name)."""

    problem: str | None
    address: str | None = None


def url_problem(
    url: str, allowed_hosts: Collection[str], resolve: Resolver = system_resolver
) -> str | None:
    """Why the ledger will not call `url`, or None when it may. `allowed_hosts` are the
    allowlisted host names or addresses (lower case)."""
    return check_url(url, allowed_hosts, resolve).problem


def check_url(
    url: str, allowed_hosts: Collection[str], resolve: Resolver = system_resolver
) -> Target:
    """`url_problem`, with the address a delivery connects to when there is none."""
    if len(url) > MAX_URL_LENGTH:
        return Target(f"at most {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return Target("not a URL")
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("https", "http") or not host:
        return Target("an https URL with a host")
    if parts.username is not None or parts.password is not None:
        return Target("must not carry credentials")
    if parts.fragment:
        return Target("must not have a fragment")
    allowed = host in allowed_hosts
    if parts.scheme != "https" and not allowed:
        return Target("must be https (plain http only to a host on LEDGER_WEBHOOK_ALLOWED_HOSTS)")
    if allowed:
        return Target(None)
    try:
        addresses = resolve(host, port or (443 if parts.scheme == "https" else 80))
    except (OSError, UnicodeError):
        return Target(f"the host {host} does not resolve")
    if not addresses:
        return Target(f"the host {host} does not resolve")
    private = [a for a in addresses if not _public(a)]
    if private:
        return Target(
            f"the host {host} resolves to a private, loopback or link-local address"
            f" ({private[0]}); only a host on LEDGER_WEBHOOK_ALLOWED_HOSTS may"
        )
    return Target(None, addresses[0])
