"""Shared pieces of the benchmarks: results, statistics, progress, machine facts, processes."""

from __future__ import annotations

import os
import platform
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
_STARTED = time.monotonic()


def progress(message: str) -> None:
    """A progress line on stderr (stdout carries only the results table)."""
    print(f"[bench {time.monotonic() - _STARTED:6.1f}s] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Config:
    repeats: int
    quick: bool
    workdir: Path
    load_seconds: float
    warmup_seconds: float
    loadgen: str  # "auto", "wrk" or "python"
    connections: int = 16


@dataclass
class Figure:
    """One reported number: its median over the repeats, its reference and the target."""

    key: str  # e.g. "P1b.throughput"
    what: str
    unit: str
    samples: list[float]
    reference: list[float] | None = None
    reference_what: str = ""
    target: str = ""
    # Decides met / not met from (median, ratio); None when the figure has no target.
    check: Callable[[float, float | None], bool] | None = None
    higher_is_better: bool = True

    @property
    def value(self) -> float:
        return median(self.samples)

    @property
    def reference_value(self) -> float | None:
        return median(self.reference) if self.reference else None

    @property
    def ratio(self) -> float | None:
        ref = self.reference_value
        if ref is None or ref == 0:
            return None
        return self.value / ref

    @property
    def met(self) -> bool | None:
        if self.check is None or not self.samples:
            return None
        return self.check(self.value, self.ratio)


@dataclass
class Result:
    """What one benchmark (P1a, P1b, P6, ...) reports."""

    name: str
    title: str
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0


def latency_figures(prefix: str, ledger: Sequence[Any], reference: Sequence[Any]) -> list[Figure]:
    """The p50 and p90 figures of an HTTP load (runs with `p50_ms`/`p90_ms`), ledger against
    the reference endpoint of the same run."""
    return [
        Figure(
            f"{prefix}.{q}",
            f"{q} latency",
            "ms",
            [getattr(x, f"{q}_ms") for x in ledger],
            reference=[getattr(x, f"{q}_ms") for x in reference],
            reference_what="the same reference endpoint",
            higher_is_better=False,
        )
        for q in ("p50", "p90")
    ]


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted sequence (q in 0..100)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), int(-(-q * len(sorted_values) // 100))))
    return float(sorted_values[rank - 1])


def fmt(value: float | None, unit: str = "") -> str:
    """A number for the tables: thousands separators, two decimals for ms and ratios."""
    if value is None or value != value:  # None or NaN
        return "-"
    if unit == "x":
        return f"{value:.2f}"
    if unit == "ms":
        text = f"{value:,.2f}"
    elif abs(value) >= 100:
        text = f"{value:,.0f}"
    else:
        text = f"{value:,.1f}"
    return f"{text} {unit}" if unit else text


# -- the machine -----------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                kib = int(line.split()[1])
                return f"{kib / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError):
        pass
    return "unknown"


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=True
    ).stdout.strip()


def _git_revision() -> str:
    try:
        head = _git("rev-parse", "--short", "HEAD")
        dirty = _git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + (" (with uncommitted changes)" if dirty else "")


def machine() -> dict[str, str]:
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "CPU": _cpu_model(),
        "nproc": str(affinity or os.cpu_count()),
        "memory": _memory(),
        "kernel": platform.release(),
        "Python": platform.python_version(),
        "SQLite": sqlite3.sqlite_version,
        "packages": ", ".join(
            f"{d} {_version(d)}"
            for d in ("eventsourcing", "msgspec", "fastapi", "starlette", "uvicorn")
        ),
        "git": _git_revision(),
    }


# -- server processes ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# A benchmark's load is one client (one address, one key) at full speed: exactly what the
# rate limits exist to stop. Every server here runs them on (their checks cost what they cost
# in production) with rates out of the load's reach, unless a phase says otherwise (P1L runs
# them off too, to measure what they cost; docs/operations.md, "Rate limits").
LIMITS_RAISED = {
    "LEDGER_RATE_ADDRESS_PER_SECOND": "1e9",
    "LEDGER_RATE_ADDRESS_BURST": "1e9",
    "LEDGER_RATE_KEY_PER_SECOND": "1e9",
    "LEDGER_RATE_KEY_BURST": "1e9",
}
LIMITS_OFF = {
    "LEDGER_RATE_ADDRESS_PER_SECOND": "0",
    "LEDGER_RATE_KEY_PER_SECOND": "0",
    "LEDGER_AUTH_FAILURES_PER_MINUTE": "0",
}


class Server:
    """A server process on 127.0.0.1; `stop` always ends it (use it in a finally block).
    Its rate limits are raised out of the load's reach unless `env` sets them."""

    def __init__(
        self, name: str, argv: list[str], port: int, log_path: Path, env: dict[str, str]
    ) -> None:
        self.name = name
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self._log = log_path.open("wb")
        # The checkout the benchmark runs from is the one served: the venv's console script
        # (`customs-ledger`) would otherwise import the package where it was installed
        # (editable), which is another checkout when this one is a git worktree.
        path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
        self.process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": path, **LIMITS_RAISED, **env},
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, path: str = "/healthz", timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode}: {self.tail()}"
                )
            try:
                with urllib.request.urlopen(self.base + path, timeout=2) as r:
                    if r.status == 200:
                        return
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready after {timeout:.0f}s: {self.tail()}")

    def get_json(self, path: str, headers: dict[str, str] | None = None) -> Any:
        import json

        req = urllib.request.Request(self.base + path, headers=headers or {})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """SIGINT (uvicorn's graceful stop), then SIGKILL of its process group if it hangs."""
        try:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGINT)
                try:
                    self.process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(self.process.pid, signal.SIGKILL)
                    self.process.wait(timeout=5)
        finally:
            self._log.close()
