"""Whether this machine has a CPU to spare now: `verify` and a replay start a second process
only then (on a busy machine the two would only take turns at the same cores).

The one-minute load average answers late: right after a burst of work it still says "busy"
for a minute, and a helper that would have halved a long check is not started. The kernel's
CPU counters say how busy the CPUs are now: two readings of /proc/stat a moment apart give
the idle share of that moment. Where /proc/stat is not there, the load average decides.
"""

from __future__ import annotations

import os
import time

SAMPLE_SECONDS = 0.1


def cpus() -> int:
    """The CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _busy_and_total() -> tuple[int, int] | None:
    try:
        with open("/proc/stat") as stat:
            fields = stat.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    ticks = [int(v) for v in fields[1:]]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    # guest time is already counted in user and nice (fields 9 and 10): leave it out
    total = sum(ticks[:8])
    return total - idle, total


def idle_cpus(sample: float = SAMPLE_SECONDS) -> float:
    """How many of the machine's CPUs were idle over the last `sample` seconds."""
    before = _busy_and_total()
    if before is None:
        return max(0.0, (os.cpu_count() or 1) - os.getloadavg()[0])
    time.sleep(sample)
    after = _busy_and_total()
    if after is None:
        return max(0.0, (os.cpu_count() or 1) - os.getloadavg()[0])
    busy, total = after[0] - before[0], after[1] - before[1]
    if total <= 0:
        return float(os.cpu_count() or 1)
    return (os.cpu_count() or 1) * (1 - busy / total)


def cpu_to_spare() -> bool:
    """Two CPUs or more for this process, and one of the machine's idle now (this process,
    about to start the work, is counted as idle while it samples)."""
    return cpus() >= 2 and idle_cpus() >= 1.5
