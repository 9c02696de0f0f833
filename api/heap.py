"""The server's heap and the cyclic garbage collector: what it walks, and how long it stops us.

A full collection holds every thread of the process while it walks every object the collector
tracks. The ledger keeps many committed states (ledger/application.py); they are trees of
immutable values and are not tracked at all (domain/events.py, `gc=False`). What a server
builds at start (modules, the app, its settings and registers) lives as long as the process:
`freeze_startup_heap` collects once and moves it out of the collector's sight for good.
The pauses are measured (`ledger_gc_pause_seconds` in /metrics), so that a stall that comes
back shows where it comes from.
"""

from __future__ import annotations

import gc
import threading
import time
from typing import Any

from prometheus_client import Histogram

# Pauses from a tenth of a millisecond (a young collection) to a second.
PAUSE_BUCKETS = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)

# One series for the process, registered in the registry of each app it serves
# (api/observability.py): the collector is the process's, not an app's.
PAUSES = Histogram(
    "ledger_gc_pause_seconds",
    "Pauses of the cyclic garbage collector (every thread of the process waits), by generation",
    ("generation",),
    buckets=PAUSE_BUCKETS,
    registry=None,
)
for _generation in ("0", "1", "2"):
    PAUSES.labels(_generation)

_started = threading.local()
_installed = threading.Lock()


def _on_collection(phase: str, info: dict[str, Any]) -> None:
    # The collector runs in the thread that allocated; its start and stop come in that thread.
    if phase == "start":
        _started.at = time.perf_counter()
        return
    began = getattr(_started, "at", None)
    if began is not None:
        PAUSES.labels(str(info.get("generation", 2))).observe(time.perf_counter() - began)
        _started.at = None


def watch_pauses() -> None:
    """Time every collection of this process from now on (once per process)."""
    with _installed:
        if _on_collection not in gc.callbacks:
            gc.callbacks.append(_on_collection)


def freeze_startup_heap() -> int:
    """Collect once, then leave everything alive now to reference counting alone: a server
    calls it when it has started. Returns the number of objects frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
