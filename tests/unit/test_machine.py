"""Whether the machine has a CPU to spare: busy CPUs say no at once, not a minute later."""

from __future__ import annotations

import subprocess
import sys
import time

from ledger import machine


def test_busy_cpus_leave_none_to_spare_and_end_with_them():
    n = machine.cpus()
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n + 1)]
    try:
        deadline = time.monotonic() + 10
        while machine.busy_cpus() < n and time.monotonic() < deadline:
            time.sleep(0.05)  # their interpreters start first
        assert machine.busy_cpus() >= n
        assert machine.cpu_to_spare() is False
    finally:
        for p in spinners:
            p.kill()
            p.wait()


def test_without_proc_stat_the_load_average_decides(monkeypatch):
    def no_proc(*args, **kwargs):
        raise OSError("no /proc here")

    monkeypatch.setattr(machine, "open", no_proc, raising=False)
    monkeypatch.setattr(machine, "cpus", lambda: 4)
    monkeypatch.setattr(machine.os, "getloadavg", lambda: (1.0, 0.5, 0.2))
    assert machine.busy_cpus() == 1.0
    assert machine.cpu_to_spare() is True
    monkeypatch.setattr(machine.os, "getloadavg", lambda: (3.5, 3.0, 1.0))
    assert machine.cpu_to_spare() is False


def test_one_process_cannot_spare_what_it_does_not_have(monkeypatch):
    monkeypatch.setattr(machine, "cpus", lambda: 1)
    monkeypatch.setattr(machine, "busy_cpus", lambda: 0.0)
    assert machine.cpu_to_spare() is False
