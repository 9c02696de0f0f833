"""A webhook delivery's HTTP (api/delivery.py) against real servers on loopback: one
connection kept alive per subscription; a connection the receiver closed while idle opened
again once; redirects not followed; a silent receiver timed out; over TLS, the certificate
verified against the host name while the connection goes to the checked address."""

from __future__ import annotations

import http.client
import shutil
import socket
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from api.delivery import Connections, _TLSConnection, endpoint


class Receiver:
    """Answers each POST with `status` (and `location` for a redirect); counts connections."""

    def __init__(
        self,
        status: int = 204,
        close_after: bool = False,
        delay: float = 0,
        idle_timeout: float | None = None,
    ) -> None:
        self.bodies: list[bytes] = []
        self.hosts: list[str] = []
        self.peers: set[tuple[str, int]] = set()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = idle_timeout  # closes a kept-alive connection idle that long

            def do_POST(self) -> None:
                receiver.peers.add(self.client_address)
                receiver.hosts.append(self.headers["host"])
                receiver.bodies.append(self.rfile.read(int(self.headers["content-length"])))
                time.sleep(delay)
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("location", "http://169.254.169.254/")
                self.send_header("content-length", "0")
                if close_after:
                    self.send_header("connection", "close")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook?x=1"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def test_deliveries_of_one_subscription_share_one_kept_alive_connection(receiver):
    connections = Connections(timeout=5)
    ep = endpoint(receiver.url, None)
    for n in range(5):
        assert connections.post("sub-1", ep, f"body {n}".encode(), {"webhook-id": str(n)}) == 204
    assert receiver.bodies == [f"body {n}".encode() for n in range(5)]
    assert len(receiver.peers) == 1  # one TCP connection
    assert receiver.hosts == [f"127.0.0.1:{receiver.server.server_port}"] * 5
    connections.post("sub-2", ep, b"other", {})  # another subscription: its own connection
    assert len(receiver.peers) == 2
    connections.close()


def test_a_connection_the_receiver_closed_while_idle_is_opened_again_once():
    r = Receiver(idle_timeout=0.2)
    try:
        connections = Connections(timeout=5)
        ep = endpoint(r.url, None)
        assert connections.post("sub", ep, b"first", {}) == 204
        time.sleep(0.6)  # the receiver closes the idle connection
        assert connections.post("sub", ep, b"second", {}) == 204
        assert r.bodies == [b"first", b"second"]  # each once
        assert len(r.peers) == 2
        connections.close()
    finally:
        r.close()


def test_an_answer_that_closes_its_connection_is_followed_by_a_new_one():
    r = Receiver(close_after=True)
    try:
        connections = Connections(timeout=5)
        ep = endpoint(r.url, None)
        for n in range(3):
            assert connections.post("sub", ep, b"x", {"webhook-id": str(n)}) == 204
        assert len(r.bodies) == 3 and len(r.peers) == 3  # each answer closed its connection
        connections.close()
    finally:
        r.close()


def test_a_redirect_is_an_answer_not_followed():
    r = Receiver(status=302)
    try:
        connections = Connections(timeout=5)
        assert connections.post("sub", endpoint(r.url, None), b"x", {}) == 302
        assert len(r.bodies) == 1
        connections.close()
    finally:
        r.close()


def test_a_silent_receiver_times_out_and_its_connection_is_dropped():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts the connection, never answers
    try:
        connections = Connections(timeout=0.3)
        ep = endpoint(f"http://127.0.0.1:{listener.getsockname()[1]}/", None)
        started = time.monotonic()
        with pytest.raises((OSError, http.client.HTTPException)):
            connections.post("sub", ep, b"x", {})
        assert time.monotonic() - started < 3
        assert "sub" not in connections.held
    finally:
        listener.close()


@pytest.fixture
def tls_receiver(tmp_path):
    """An HTTPS receiver on 127.0.0.1 whose certificate names hooks.test (self-signed by
    openssl), and a client context trusting it."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: the TLS receiver's certificate cannot be made")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=hooks.test", "-addext", "subjectAltName=DNS:hooks.test",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    r = Receiver()
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    r.server.socket = server_context.wrap_socket(r.server.socket, server_side=True)
    client_context = ssl.create_default_context(cafile=str(cert))
    yield r, client_context
    r.close()


def test_over_tls_the_certificate_is_verified_against_the_name_not_the_address(tls_receiver):
    r, context = tls_receiver
    port = r.server.server_port

    def opener(ep, timeout):
        return _TLSConnection(
            ep.connect_to, ep.port, server_name=ep.server_name, context=context, timeout=timeout
        )

    connections = Connections(timeout=5, opener=opener)
    # The name resolved (by the check) to 127.0.0.1: connect there, verify hooks.test.
    good = endpoint(f"https://hooks.test:{port}/hook", "127.0.0.1")
    assert connections.post("sub", good, b"signed", {}) == 204
    assert r.hosts == [f"hooks.test:{port}"] and r.bodies == [b"signed"]
    # A URL naming another host that resolved to the same address: the certificate does not
    # name it, so nothing is sent.
    other = endpoint(f"https://other.test:{port}/hook", "127.0.0.1")
    with pytest.raises(ssl.SSLCertVerificationError):
        connections.post("sub-2", other, b"x", {})
    assert r.bodies == [b"signed"]
    connections.close()
