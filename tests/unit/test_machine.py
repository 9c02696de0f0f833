"""Whether the machine has a CPU to spare: busy CPUs say no at once, not a minute later."""

from __future__ import annotations

import subprocess
import sys

from ledger import machine


def test_busy_cpus_leave_none_to_spare_and_idle_ones_are_counted():
    n = machine.cpus()
    idle = machine.idle_cpus()
    assert 0.0 <= idle <= (machine.os.cpu_count() or 1) + 0.01
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n + 1)]
    try:
        # Wait until they spin (the interpreters start first), then sample.
        for _ in range(50):
            if machine.idle_cpus() < 0.5:
                break
        assert machine.idle_cpus() < 0.5
        assert machine.cpu_to_spare() is False
    finally:
        for p in spinners:
            p.kill()
            p.wait()


def test_without_proc_stat_the_load_average_decides(monkeypatch):
    def no_proc(*args, **kwargs):
        raise OSError("no /proc here")

    monkeypatch.setattr(machine, "open", no_proc, raising=False)
    monkeypatch.setattr(machine.os, "cpu_count", lambda: 4)
    monkeypatch.setattr(machine.os, "getloadavg", lambda: (1.0, 0.5, 0.2))
    assert machine.idle_cpus() == 3.0
    monkeypatch.setattr(machine.os, "getloadavg", lambda: (7.5, 3.0, 1.0))
    assert machine.idle_cpus() == 0.0
    monkeypatch.setattr(machine, "cpus", lambda: 4)
    assert machine.cpu_to_spare() is False
