"""A helper process: a second Python process that does one job for this one, used by a
parallel `verify` (ledger/audit.py: the second half of the log) and by a replay
(api/replaying.py: some of the read models).

This module owns both sides of it. This side (`HelperProcess`) spawns `python -c CODE` with
this interpreter, sends the job, follows its progress, tells success from failure and reaps
the process. The helper's side (`read_job`, `say_position`, `say_done`) is what CODE's worker
function calls.

The protocol:
- the job is one JSON object on the helper's stdin, which is then closed. It never goes on
  the command line (it may hold a database password). A helper spawned early (`spawn`: its
  interpreter and imports take a while) whose job is then not needed is killed by `stop`;
  one whose stdin closes empty ends at once (`read_job` gives None).
- the helper writes JSON lines on stdout: any number of `{"position": P}` as it goes, and
  one `{"done": true, ...}` with its results once its work is complete (and committed, where
  it writes). A helper that ends without saying done has failed: `wait` raises HelperFailed
  with the last line it wrote on stderr, or its exit status.
- `stop` reaps it: one that said done ends by itself and is reaped in the background (letting
  go of its memory can take a moment, which the caller need not wait for); any other is killed.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import IO, Any


class HelperFailed(RuntimeError):
    """The helper process ended without saying it was done (the message says why)."""


class HelperProcess:
    """One helper process running `code` (Python source, as for `python -c`)."""

    def __init__(self, code: str, name: str = "helper") -> None:
        self.code, self.name = code, name
        self._process: subprocess.Popen[str] | None = None
        self._readers: list[threading.Thread] = []
        self._position = 0
        self._outcome: dict[str, Any] | None = None
        self._done = threading.Event()  # it said done, or its stdout ended (done, or dead)
        self._stderr: list[str] = []
        self._stopped = False

    def spawn(self) -> None:
        """Start the process now, if not yet started; it waits for its job (`send`). Raises
        OSError when no process can be started."""
        if self._process is not None:
            return
        process = subprocess.Popen(  # noqa: S603 - this Python, our own code
            [sys.executable, "-c", self.code],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._process = process
        assert process.stdout is not None and process.stderr is not None
        self._readers = [
            threading.Thread(target=self._read, args=(process.stdout,), daemon=True),
            threading.Thread(target=self._stderr.extend, args=(process.stderr,), daemon=True),
        ]
        for n, reader in enumerate(self._readers):
            reader.name = f"{self.name}-{('stdout', 'stderr')[n]}"
            reader.start()

    def send(self, job: dict[str, Any]) -> None:
        """Give the process its job (spawning it first if need be). A process that is already
        dead is not an error here: `wait` says what became of it."""
        self.spawn()
        process = self._process
        assert process is not None and process.stdin is not None
        try:
            process.stdin.write(json.dumps(job))
            process.stdin.close()
        except OSError:
            pass

    def _read(self, stdout: IO[str]) -> None:
        for line in stdout:
            with contextlib.suppress(ValueError, TypeError, AttributeError):
                message = json.loads(line)
                if "position" in message:
                    self._position = int(message["position"])
                if message.get("done") is True:
                    self._outcome = message
                    self._done.set()
        self._done.set()

    def position(self) -> int:
        """The last position the process reported (0 before any)."""
        return self._position

    @property
    def outcome(self) -> dict[str, Any] | None:
        """What the process said when it was done (None until then)."""
        return self._outcome

    def wait(self, tick: Callable[[], None] | None = None, every: float = 0.5) -> dict[str, Any]:
        """Its `done` message, once it has said it; `tick` is called every `every` seconds
        meanwhile. Raises HelperFailed when the process ended without saying it."""
        process = self._process
        if process is None:
            raise HelperFailed("it was never started")
        while not self._done.wait(None if tick is None else every):
            if tick is not None:
                tick()
        if self._outcome is None:
            process.wait()
            for reader in self._readers:
                reader.join()
            said = "".join(self._stderr).strip().splitlines()
            raise HelperFailed(said[-1] if said else f"exit status {process.returncode}")
        return self._outcome

    def stop(self) -> None:
        """Reap the process: one that is done ends by itself (reaped in the background); any
        other is killed and reaped now. Stopping it again does nothing."""
        process = self._process
        if process is None or self._stopped:
            return
        self._stopped = True
        if self._outcome is not None:
            threading.Thread(target=self._reap, name=f"{self.name}-reap", daemon=True).start()
            return
        if process.poll() is None:
            process.kill()
        self._reap()

    def _reap(self) -> None:
        process = self._process
        assert process is not None
        process.wait()
        for reader in self._readers:
            reader.join(timeout=5)
        for stream in (process.stdin, process.stdout, process.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


# -- the helper's side ------------------------------------------------------------------------


def read_job() -> dict[str, Any] | None:
    """The job sent on stdin, or None when stdin closed empty (spawned, then not needed)."""
    text = sys.stdin.read()
    if not text.strip():
        return None
    job: dict[str, Any] = json.loads(text)
    return job


def _say(message: dict[str, Any]) -> None:
    print(json.dumps(message), flush=True)


def say_position(position: int) -> None:
    """Progress: the position the helper has reached."""
    _say({"position": position})


def say_done(**outcome: Any) -> None:
    """The helper's work is complete: its results (JSON values), said once, last."""
    _say({"done": True, **outcome})


def peak_rss_kb() -> int | None:
    """This process's peak resident set (VmHWM), where /proc says it."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return None
