"""The HTTP POST of one webhook delivery (api/dispatch.py), on a connection kept alive per
subscription, to the address the URL check chose (api/webhooks.py `check_url`).

The standard library's `http.client`: a delivery costs a fifth of the interpreter time httpx's
client took (measured on loopback: 0.15 ms against 0.85 ms a request), which matters because
the dispatcher shares its interpreter with the server's request threads (P9,
docs/benchmarks.md). What a webhook client needs is small and all here: one POST, the body
and headers given; the connection to the checked address with the name in `Host` and, over
TLS, as the server name the certificate is verified against (`ssl.create_default_context`);
a timeout on every socket operation; redirects never followed (http.client follows none); the
answer's body read up to MAX_ANSWER_BYTES and dropped (a longer one closes the connection).
A kept-alive connection the receiver has closed meanwhile is opened again once, before any
answer was read; a delivery that may have arrived is never sent twice by this module (the
dispatcher's retries do that, with the same `webhook-id`).
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_ANSWER_BYTES = 64 * 1024
# What a reused connection raises when the receiver closed it while it was idle.
_STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)


@dataclass(frozen=True)
class Endpoint:
    """Where a delivery goes: the scheme, the address (or allowlisted name) connected to, the
    port, the `Host` header, the TLS server name, and the path with its query."""

    scheme: str
    connect_to: str
    port: int
    host_header: str
    server_name: str
    path: str


def endpoint(url: str, address: str | None) -> Endpoint:
    """The endpoint of a checked URL; `address` the one to connect to (None: the name)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    port = parts.port or (443 if parts.scheme == "https" else 80)
    header = host if parts.port is None else f"{host}:{parts.port}"
    if ":" in host:  # an IPv6 literal in the URL
        header = f"[{host}]" if parts.port is None else f"[{host}]:{parts.port}"
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Endpoint(parts.scheme, address or host, port, header, host, path)


class _TLSConnection(http.client.HTTPConnection):
    """HTTPS to an address, verifying the certificate against the host name (SNI too)."""

    default_port = 443

    def __init__(
        self, address: str, port: int, *, server_name: str, context: ssl.SSLContext, timeout: float
    ) -> None:
        super().__init__(address, port, timeout=timeout)
        self.server_name = server_name
        self.context = context

    def connect(self) -> None:
        super().connect()
        self.sock = self.context.wrap_socket(self.sock, server_hostname=self.server_name)


Opener = Callable[[Endpoint, float], http.client.HTTPConnection]
_TLS = ssl.create_default_context()


def open_connection(ep: Endpoint, timeout: float) -> http.client.HTTPConnection:
    if ep.scheme == "https":
        return _TLSConnection(
            ep.connect_to, ep.port, server_name=ep.server_name, context=_TLS, timeout=timeout
        )
    return http.client.HTTPConnection(ep.connect_to, ep.port, timeout=timeout)


class Connections:
    """One kept-alive connection per subscription (its one worker uses it at a time)."""

    def __init__(self, timeout: float, opener: Opener = open_connection) -> None:
        self.timeout = timeout
        self.opener = opener
        self.held: dict[str, tuple[Endpoint, http.client.HTTPConnection]] = {}
        self.lock = threading.Lock()

    def post(self, owner: str, ep: Endpoint, body: bytes, headers: dict[str, str]) -> int:
        """POST the body; the answer's status. Raises OSError or http.client.HTTPException
        when there is no answer (the connection is then dropped)."""
        headers = {**headers, "Host": ep.host_header, "Content-Length": str(len(body))}
        conn, reused = self._connection(owner, ep)
        try:
            try:
                conn.request("POST", ep.path, body=body, headers=headers)
                answer = conn.getresponse()
            except _STALE:
                if not reused:
                    raise
                self.drop(owner)  # closed by the receiver while idle: once more, anew
                conn, _ = self._connection(owner, ep)
                conn.request("POST", ep.path, body=body, headers=headers)
                answer = conn.getresponse()
            answer.read(MAX_ANSWER_BYTES)
            if not answer.isclosed():  # a longer answer than we read: not reusable
                self.drop(owner)
            return int(answer.status)
        except (OSError, http.client.HTTPException):
            self.drop(owner)
            raise

    def _connection(self, owner: str, ep: Endpoint) -> tuple[http.client.HTTPConnection, bool]:
        with self.lock:
            held = self.held.get(owner)
        if held is not None and held[0] == ep:
            return held[1], True
        if held is not None:
            self.drop(owner)
        conn = self.opener(ep, self.timeout)
        with self.lock:
            self.held[owner] = (ep, conn)
        return conn, False

    def drop(self, owner: str) -> None:
        with self.lock:
            held = self.held.pop(owner, None)
        if held is not None:
            with contextlib.suppress(OSError):
                held[1].close()

    def close(self) -> None:
        with self.lock:
            owners = list(self.held)
        for owner in owners:
            self.drop(owner)


def describe(e: BaseException) -> str:
    """An attempt's error text (bounded)."""
    if isinstance(e, socket.timeout | TimeoutError):
        return "timed out"
    return f"{type(e).__name__}: {e}"[:500]
