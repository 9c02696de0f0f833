"""The views' own process (LEDGER_PROJECTIONS=process, `serve`'s default; issue #21 item 3,
docs/decisions/0039-projections-process.md).

`customs-ledger serve` starts one child, `customs-ledger project --follow --supervised`, on the
same database: it feeds the read models and delivers the webhook receipts in an interpreter of
its own, so on a two-core machine the request threads and the runner no longer share one GIL.

This module owns both sides:

- the server's side, `Feeder`: starts the child, restarts it when it dies (1 s, doubling to
  30 s, back to 1 s once a child has lived a minute; each exit and restart logged), stops it
  with the server (SIGTERM, then SIGKILL after `grace` seconds);
- the child's side, `watch_parent` and `WakeReceiver`.

**The child never outlives the server.** It holds the read end of a pipe (its stdin) whose
only write end is the server's; when the server ends in any way, a SIGKILL included, the
kernel closes that end and the child reads EOF and stops. Chosen over the alternatives:
PR_SET_PDEATHSIG is Linux only and fires when the *thread* that spawned the child ends (the
restarts come from a thread), and polling os.getppid() answers only at the next poll. The
pipe's write end is not inheritable (PEP 446), so no other process (a uvicorn worker, a
webhook's connection) can hold it open. The child ignores SIGINT: Ctrl-C in a terminal reaches
the whole process group, and the server then stops the child itself, after its requests.

**Wake-ups.** A write in the server wakes the child at once: one datagram on a Unix socket
(Linux's abstract namespace, named after the server's pid and handed down in
`LEDGER_PROJECTIONS_WAKE`, so every `--workers` process reaches the same child). Without
it the child polls the log every half second, as `project --follow` does; a lost datagram
costs at most that. On a system without the abstract namespace there is no wake address and
the child polls every 50 ms instead.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence

log = logging.getLogger("customs_ledger.feeder")

# The wake address of the child, from the server to the child and the `--workers` processes.
WAKE_ENV = "LEDGER_PROJECTIONS_WAKE"
FIRST_BACKOFF = 1.0
MAX_BACKOFF = 30.0
# A child that lived this long was healthy: the next restart waits FIRST_BACKOFF again.
HEALTHY_SECONDS = 60.0
# SIGTERM, then SIGKILL after this long: the runner finishes its page (the server gives its
# requests 5 s, docs/operations.md).
STOP_GRACE_SECONDS = 10.0


def wake_address(server_pid: int) -> str | None:
    """The child's wake address for the server `server_pid` (None: no wake-ups, poll); `@`
    stands for the abstract namespace's leading NUL (an environment variable cannot hold one)."""
    if not sys.platform.startswith("linux"):
        return None
    return f"@customs-ledger-views-{server_pid}"


def _sockaddr(address: str) -> str:
    return "\0" + address[1:] if address.startswith("@") else address


def child_argv() -> list[str]:
    """How the server runs its child: this interpreter, this package's CLI."""
    return [sys.executable, "-m", "api.cli", "project", "--follow", "--supervised"]


class Feeder:
    """The server's child process that feeds the views (see the module's docstring)."""

    def __init__(
        self,
        argv: Sequence[str],
        env: dict[str, str] | None = None,
        *,
        grace: float = STOP_GRACE_SECONDS,
        first_backoff: float = FIRST_BACKOFF,
        max_backoff: float = MAX_BACKOFF,
    ) -> None:
        self.argv = list(argv)
        self.env = env
        self.grace = grace
        self.first_backoff, self.max_backoff = first_backoff, max_backoff
        self.restarts = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._released = False
        self._watcher: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        """The running child's pid (None between a death and its restart, or once stopped)."""
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    def start(self) -> int:
        """Start the child and watch it; its pid. Raises OSError when it cannot be started."""
        process = self._spawn()
        self._watcher = threading.Thread(target=self._watch, name="feeder-watch", daemon=True)
        self._watcher.start()
        return process.pid

    def _spawn(self) -> subprocess.Popen[bytes]:
        with self._lock:
            if self._stopping.is_set():
                raise OSError("the server is stopping")
            # stdin: the pipe the child reads until the server ends; stdout and stderr are
            # the server's (its log lines go where the server's go).
            process = subprocess.Popen(  # noqa: S603 - this interpreter, our own CLI
                self.argv, stdin=subprocess.PIPE, env=self.env
            )
            self._process = process
            if self._released:
                _go(process)
        return process

    def release(self) -> None:
        """Let the child start its work (and every later one at once): called once the
        server has started, so that the child's catching up never slows the server's start
        (which it does on two cores: a large log to fold, the views' locks)."""
        with self._lock:
            self._released = True
            if self._process is not None:
                _go(self._process)

    def _watch(self) -> None:
        backoff = self.first_backoff
        while True:
            process = self._process
            assert process is not None
            started = time.monotonic()
            status = process.wait()
            if self._stopping.is_set():
                return
            if time.monotonic() - started >= HEALTHY_SECONDS:
                backoff = self.first_backoff
            log.warning(
                "views process (pid %d) exited with status %d; restarting it in %.0f s"
                " (the views resume from their tracked position)",
                process.pid,
                status,
                backoff,
            )
            _close_stdin(process)
            if self._stopping.wait(backoff):
                return
            try:
                started_again = self._spawn()
            except OSError as e:
                if self._stopping.is_set():
                    return
                log.error("views process: cannot start it (%s); trying again", e)
                self._process = process  # the dead one: `wait` answers at once
            else:
                self.restarts += 1
                log.warning("views process restarted (pid %d)", started_again.pid)
            backoff = min(backoff * 2, self.max_backoff)

    def stop(self) -> None:
        """SIGTERM the child, SIGKILL after `grace` seconds; no restart after this. Stopping
        it again does nothing."""
        with self._lock:
            if self._stopping.is_set():
                return
            self._stopping.set()
            process = self._process
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=self.grace)
            except subprocess.TimeoutExpired:
                log.warning(
                    "views process (pid %d) did not stop within %.0f s; killed",
                    process.pid,
                    self.grace,
                )
                process.kill()
                process.wait()
        _close_stdin(process)
        if self._watcher is not None:
            self._watcher.join(timeout=5)
        log.info("views process (pid %d) stopped", process.pid)


def _go(process: subprocess.Popen[bytes]) -> None:
    if process.stdin is not None:
        with contextlib.suppress(OSError):  # it died meanwhile: the watch restarts it
            process.stdin.write(b"go\n")
            process.stdin.flush()


def _close_stdin(process: subprocess.Popen[bytes]) -> None:
    if process.stdin is not None:
        with contextlib.suppress(OSError):
            process.stdin.close()


# -- the child's side -------------------------------------------------------------------------


def wait_for_go() -> bool:
    """Wait until the server has started (a line on stdin: `Feeder.release`); False when
    stdin ends first (the server is gone: nothing to do). Ignores SIGINT from here on (the
    server stops this process itself)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(OSError):
        while (byte := os.read(sys.stdin.fileno(), 1)) != b"\n":
            if not byte:
                return False
        return True
    return False


def watch_parent(stop: Callable[[], None]) -> threading.Thread:
    """Call `stop` once stdin ends: the server that started this process has ended (a pipe
    only it held open)."""

    def read() -> None:
        with contextlib.suppress(OSError, ValueError):
            while os.read(sys.stdin.fileno(), 4096):
                pass
        log.warning("the server that started this views process has ended; stopping")
        stop()

    thread = threading.Thread(target=read, name="parent-watch", daemon=True)
    thread.start()
    return thread


class WakeReceiver:
    """Calls `wake` for every datagram on the wake address (the server wrote something)."""

    def __init__(self, address: str, wake: Callable[[], None]) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(_sockaddr(address))
        self.wake = wake
        self._thread = threading.Thread(target=self._run, name="feeder-wake", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with contextlib.suppress(OSError):
            while self.sock.recv(64):  # empty: the socket was shut down
                self.wake()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


class WakeSender:
    """The server's side of the wake-ups: one datagram per write, never blocking, never
    failing (a full queue means the child is awake already; no child: nobody to wake)."""

    def __init__(self, address: str) -> None:
        self.address = _sockaddr(address)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setblocking(False)

    def wake(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.sendto(b"w", self.address)

    def close(self) -> None:
        self.sock.close()
