"""Whether this machine has a CPU to spare now: `verify` and a replay start a second process
only then (on a busy machine the two would only take turns at the same cores).

The one-minute load average answers late: right after a burst of work it still says "busy"
for a minute, and a helper that would have halved a long check is not started. The kernel
says how many threads are running right now (`procs_running` in /proc/stat, this one
included); the fewest of a few readings a few milliseconds apart (a thread that runs for a
moment is not load) against the CPUs this process may use decides. Where /proc/stat is not
there, the load average decides.
"""

from __future__ import annotations

import os
import time

READINGS = 3
GAP_SECONDS = 0.005


def cpus() -> int:
    """The CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _running() -> int | None:
    """Threads running or runnable now, machine-wide (this one included)."""
    try:
        with open("/proc/stat") as stat:
            for line in stat:
                if line.startswith("procs_running "):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def busy_cpus() -> float:
    """How many CPUs other work keeps busy now (this process not counted)."""
    readings = []
    for n in range(READINGS):
        if n:
            time.sleep(GAP_SECONDS)
        running = _running()
        if running is None:
            return os.getloadavg()[0]
        readings.append(running - 1)
    return float(max(0, min(readings)))


def cpu_to_spare() -> bool:
    """Two CPUs or more for this process, and one of them free of other work now."""
    n = cpus()
    return n >= 2 and busy_cpus() <= n - 2
