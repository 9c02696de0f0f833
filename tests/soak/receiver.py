"""The soak's webhook receiver: an HTTP server on 127.0.0.1 that verifies every delivery's
signature with the `standardwebhooks` package (not the ledger's code), records each one, and
is intermittently down while the soak writes - answering 503, or not listening at all - so
the dispatcher must retry through the receiver's outages as well as the server's kills.

The outages are paced by the deliveries, not the clock: after a random number of accepted
deliveries the receiver goes down for a moment. (On a clock most of them fell while the killed
server was starting again, when nothing was being sent.)"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook

PREFIX = "/receipts/"
# Up for 10 to 40 accepted receipts, then down for 0.2 to 1 s: long enough that retries back
# off (from LEDGER_WEBHOOK_RETRY_BASE_SECONDS), short enough that the backlog keeps moving.
ACCEPTED_BETWEEN = (10, 40)
DOWN_SECONDS = (0.2, 1.0)
# Each outage the next of these, in turn: answering 503, then not listening at all.
OUTAGES = ("503", "closed")


@dataclass(frozen=True)
class Delivery:
    """One POST as the receiver saw it, and what it answered."""

    name: str  # the soak's name of the subscription (the path it was sent to)
    webhook_id: str
    body: bytes
    answered: int
    problem: str | None  # why it is not a valid signed receipt (None: verified)
    at: float
    # The connection ended before the whole body came (a kill while the request was being
    # sent): not a delivery, and sent again after the restart.
    cut: bool = False

    @property
    def accepted(self) -> bool:
        return 200 <= self.answered < 300

    def receipt(self) -> dict[str, Any]:
        return dict(json.loads(self.body))


class Receiver:
    """Deliveries to `url(name)` are verified with `register(name, secret)`'s secret."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.lock = threading.Lock()
        self.secrets: dict[str, str] = {}
        self.got: list[Delivery] = []
        self.mode = "up"  # "up", "503" (answers 503) or "closed" (not listening)
        self.outages: Counter[str] = Counter()
        self.problems: list[str] = []
        self.flapping = threading.Event()
        self.due = threading.Event()  # set when the next outage is due
        self.until_outage = rng.randint(*ACCEPTED_BETWEEN)
        self.flapper: threading.Thread | None = None
        self.server = self._listen(0)
        self.port = int(self.server.server_address[1])

    def _listen(self, port: int) -> ThreadingHTTPServer:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                try:
                    body = self.rfile.read(length)
                except OSError:  # reset by a killed sender
                    body = b""
                code = receiver.record(self.path, dict(self.headers.items()), body, length)
                try:
                    self.send_response(code)
                    self.send_header("content-length", "0")
                    self.end_headers()
                except OSError:  # the sender was killed while waiting for the answer
                    self.close_connection = True

            def log_message(self, *args: Any) -> None:
                return None

        server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        server.daemon_threads = True
        threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return server

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}{PREFIX}{name}"

    def register(self, name: str, secret: str) -> None:
        with self.lock:
            self.secrets[name] = secret

    def record(
        self, path: str, headers: dict[str, str], body: bytes, length: int | None = None
    ) -> int:
        """Verify and record a delivery of a body announced as `length` bytes; the status code
        to answer."""
        name = path[len(PREFIX) :] if path.startswith(PREFIX) else path
        with self.lock:
            secret = self.secrets.get(name)
            mode = self.mode
        problem = None
        cut = length is not None and len(body) < length
        if cut:
            problem = f"cut short: {len(body)} of {length} bytes came"
        elif secret is None:
            problem = f"a delivery to {path}, which no subscription of the soak names"
        else:
            try:
                Webhook(secret).verify(body, headers)
            except Exception as e:  # the package's WebhookVerificationError, or a bad body
                problem = f"signature not verified ({len(body)} bytes): {type(e).__name__}: {e}"
        webhook_id = {k.lower(): v for k, v in headers.items()}.get("webhook-id", "")
        if mode == "503":
            code = 503
        elif problem is not None:
            code = 400
        else:
            code = 204
        with self.lock:  # recorded before it is answered: first arrival is log order
            now = time.monotonic()
            self.got.append(Delivery(name, webhook_id, body, code, problem, now, cut))
            if code == 204 and self.flapping.is_set():
                self.until_outage -= 1
                if self.until_outage <= 0:
                    self.until_outage = self.rng.randint(*ACCEPTED_BETWEEN)
                    self.due.set()
        return code

    def deliveries(self) -> list[Delivery]:
        with self.lock:
            return list(self.got)

    def flap(self) -> None:
        """Go down now and then (503, or not listening), until `steady`."""
        self.flapping.set()
        self.flapper = threading.Thread(target=self._flap, name="soak-receiver", daemon=True)
        self.flapper.start()

    def steady(self) -> None:
        """Stop going down; up (and listening) when this returns. Each kind of outage has
        happened at least once by then: a run whose receipts came too few or too fast for the
        count between outages is taken down the missing ways now, while its receipts are
        still being delivered (bounded: 15 s)."""
        deadline = time.monotonic() + 15
        while self.flapper is not None and time.monotonic() < deadline:
            with self.lock:
                if all(self.outages[m] for m in OUTAGES):
                    break
                before = sum(self.outages.values())
            self.due.set()
            while time.monotonic() < deadline:
                with self.lock:
                    if sum(self.outages.values()) > before:
                        break
                time.sleep(0.05)
        self.flapping.clear()
        self.due.set()
        if self.flapper is not None:
            self.flapper.join()
            self.flapper = None

    def _flap(self) -> None:
        turn = 0
        while True:
            self.due.wait()
            self.due.clear()
            if not self.flapping.is_set():
                break
            mode = OUTAGES[turn % len(OUTAGES)]
            turn += 1
            with self.lock:
                down = self.rng.uniform(*DOWN_SECONDS)
                self.outages[mode] += 1
            if mode == "503":
                with self.lock:
                    self.mode = "503"
                time.sleep(down)
                with self.lock:
                    self.mode = "up"
            else:
                self.server.shutdown()
                self.server.server_close()
                time.sleep(down)
                self._reopen()

    def _reopen(self) -> None:
        """Listen again on the same port (the subscriptions' URLs name it)."""
        error: OSError | None = None
        for _ in range(100):
            try:
                self.server = self._listen(self.port)
                return
            except OSError as e:
                error = e
                time.sleep(0.1)
        self.problems.append(f"the receiver could not listen on {self.port} again: {error}")

    def close(self) -> None:
        self.steady()
        self.server.shutdown()
        self.server.server_close()
