"""Processes that run their critical part at the same time, and the proof that they did.

A child prints `ready` once its imports are done and waits for a line on its stdin; the test
sends `go` to all of them at once (`release_together`). Around its critical part the child
records the wall-clock time (`CHILD_TIMES`: one JSON line `{"started": ..., "finished": ...}`
on stdout), and `assert_overlapped` checks that there was an instant when every child was
inside it: a test whose processes ran one after another fails instead of passing for nothing.
"""

from __future__ import annotations

import json
import select
import subprocess
import time

# Pasted into the child's script: `wait_for_go()` before the critical part, `times(started)`
# after it (the first line it prints after `ready`, parsed by `times_of`).
CHILD_TIMES = """
import json as _json, sys as _sys, time as _time


def wait_for_go():
    print("ready", flush=True)
    _sys.stdin.readline()
    return _time.time()


def times(started):
    print(_json.dumps({"started": started, "finished": _time.time()}), flush=True)
"""


def release_together(procs: list[subprocess.Popen[str]], timeout: float = 120) -> None:
    """Wait until every child is ready, then let them all go."""
    deadline = time.monotonic() + timeout
    for n, proc in enumerate(procs):
        assert proc.stdout is not None and proc.stdin is not None
        ready, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
        line = proc.stdout.readline() if ready else ""
        if line.strip() != "ready":
            proc.kill()
            _, err = proc.communicate(timeout=30)
            raise AssertionError(f"process {n} never got ready ({line!r}): {err[-2000:]}")
    for proc in procs:
        proc.stdin.write("go\n")  # type: ignore[union-attr]
        proc.stdin.flush()  # type: ignore[union-attr]


def run_together(procs: list[subprocess.Popen[str]], timeout: float = 120) -> list[tuple[str, str]]:
    """Release every child at once and collect (stdout, stderr) of each; none outlives this."""
    try:
        release_together(procs, timeout)
        return [p.communicate(timeout=timeout) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def times_of(stdout: str) -> tuple[float, float]:
    """(started, finished) from what the child printed after `ready`."""
    record = next(json.loads(line) for line in stdout.splitlines() if line.startswith("{"))
    return float(record["started"]), float(record["finished"])


def assert_overlapped(intervals: list[tuple[float, float]]) -> None:
    """Every critical part started before any of them finished."""
    assert len(intervals) >= 2
    first = min(started for started, _ in intervals)
    shown = [
        f"{(started - first) * 1000:.0f}-{(finished - first) * 1000:.0f} ms"
        for started, finished in intervals
    ]
    last_start = max(started for started, _ in intervals)
    first_end = min(finished for _, finished in intervals)
    assert last_start < first_end, f"the processes did not overlap: {shown}"
