"""Crash soak (R2 in docs/reliability.md): SIGKILL a real server at random moments under
concurrent writes, restart it, let the clients retry, then prove that no acknowledged write was
lost or duplicated and that the read models equal a replay.

    python -m tests.soak.crash [--store sqlite|postgres] [--writes N] [--kills K]
                               [--clients C] [--seed S]

Exit 0 when every check passes; 1 naming each failure; docs/reliability.md says more.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ledger.database import parse_database_url
from tests.soak import checks
from tests.soak.client import Aborted, Ack, ClientStats, RetryingClient, Stuck
from tests.soak.server import (
    LedgerServer,
    ServerFailed,
    free_port,
    issue_key,
    scratch_database,
    server_env,
)
from tests.soak.workload import Planner, key_names, seed, tenants


@dataclass
class SoakConfig:
    store: str = "sqlite"
    writes: int = 2000
    kills: int = 5
    clients: int = 16
    seed: int = 1
    tenants: int = 8
    deadline_seconds: float = 1800
    # Given: the soak uses this database as it is (a test's fixture creates and drops it).
    database_url: str | None = None
    workdir: Path | None = None
    verbose: bool = True


@dataclass
class SoakReport:
    store: str
    writes: Counter[str] = field(default_factory=Counter)
    seeds: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    kills: int = 0
    restart_seconds: list[float] = field(default_factory=list)
    stats: ClientStats = field(default_factory=ClientStats)
    events: int = 0
    cli: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    write_seconds: float = 0.0
    failures: list[str] = field(default_factory=list)

    @property
    def acknowledged(self) -> int:
        return sum(self.writes.values())

    def summary(self) -> str:
        verdict = "FAILED" if self.failures else "passed"
        s = self.stats
        restarts = (
            f"restart to /healthz median {statistics.median(self.restart_seconds):.2f} s, "
            f"max {max(self.restart_seconds):.2f} s"
            if self.restart_seconds
            else "no restart"
        )
        transport = ", ".join(f"{k} {v}" for k, v in s.transport_errors.most_common())
        refused = ", ".join(f"{k} {v}" for k, v in self.refused.items()) or "none"
        lines = [
            f"crash soak ({self.store}): {verdict}",
            f"  writes acknowledged: {self.acknowledged} ("
            + ", ".join(f"{k} {v}" for k, v in sorted(self.writes.items()))
            + f") after {self.seeds} seed writes",
            f"  answered 4xx (final): {refused}",
            f"  kills: {self.kills} ({restarts})",
            f"  retries: {s.retries} (transport errors: {transport or 'none'}; "
            f"5xx answers: {len(s.server_errors)})",
            f"  replays seen: {s.replays_seen} (retries answered Idempotency-Replayed: true)",
            f"  events in the log: {self.events}",
            f"  verify: {self.cli.get('verify', '-')}",
            f"  replay: {self.cli.get('replay', '-')}",
            f"  seconds: {self.seconds:.1f} (writes {self.write_seconds:.1f})",
        ]
        lines += [f"  FAILURE: {f}" for f in self.failures]
        return "\n".join(lines)


class Progress:
    """Acknowledged soak writes so far, watched by the killer."""

    def __init__(self) -> None:
        self.acknowledged = 0
        self.done = False
        self.cond = threading.Condition()

    def add(self) -> None:
        with self.cond:
            self.acknowledged += 1
            self.cond.notify_all()

    def finish(self) -> None:
        with self.cond:
            self.done = True
            self.cond.notify_all()

    def wait_for(self, count: int) -> bool:
        with self.cond:
            self.cond.wait_for(lambda: self.done or self.acknowledged >= count)
            return not self.done


def kill_points(writes: int, kills: int, rng: random.Random) -> list[int]:
    """One random moment in each of `kills` equal slices of the run's middle 5%..90%."""
    start, end = 0.05 * writes, 0.90 * writes
    width = (end - start) / max(kills, 1)
    return [int(start + width * (i + rng.random())) for i in range(kills)]


class Killer(threading.Thread):
    """SIGKILLs the server at each kill point, starts it again on the same port and database
    and waits for /healthz; the clients meanwhile keep retrying."""

    def __init__(
        self,
        server: LedgerServer,
        progress: Progress,
        points: list[int],
        rng: random.Random,
        report: SoakReport,
        stop: threading.Event,
        say: Any,
    ) -> None:
        super().__init__(name="soak-killer", daemon=True)
        self.server, self.progress, self.points, self.rng = server, progress, points, rng
        self.report, self.stop, self.say = report, stop, say

    def run(self) -> None:
        try:
            for point in self.points:
                if not self.progress.wait_for(point):
                    return
                time.sleep(self.rng.uniform(0, 0.05))  # not always right at an answer
                self.server.kill()
                self.report.kills += 1
                self.server.start()
                took = self.server.wait_healthy()
                self.report.restart_seconds.append(took)
                self.say(
                    f"kill {self.report.kills} after {self.progress.acknowledged} writes; "
                    f"up again in {took:.2f} s"
                )
        except Exception as e:
            self.report.failures.append(f"the killer failed: {e}")
            self.stop.set()


def run_soak(config: SoakConfig) -> SoakReport:
    """Seed, write under kills, check; the report lists every failure."""
    report = SoakReport(store=config.store)
    started = time.monotonic()

    def say(message: str) -> None:
        if config.verbose:
            print(f"[soak {config.store}] {message}", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="crash-soak-", dir=config.workdir) as tmp:
        workdir = Path(tmp)
        if config.database_url is not None:
            _soak(config, config.database_url, workdir, report, say)
        else:
            with scratch_database(config.store, workdir) as url:
                _soak(config, url, workdir, report, say)
    report.seconds = time.monotonic() - started
    return report


def _soak(config: SoakConfig, url: str, workdir: Path, report: SoakReport, say: Any) -> None:
    env = server_env(url, workdir)
    tokens = {
        name: issue_key(env, name, role, **bound) for name, role, bound in key_names(config.tenants)
    }
    server = LedgerServer(env, free_port(), workdir / "server.log")
    server.start()
    stop = threading.Event()
    clients = [RetryingClient(server.url, tokens, stop) for _ in range(config.clients)]
    try:
        server.wait_healthy()
        rng = random.Random(config.seed)
        planner = Planner(tenants(config.tenants), random.Random(rng.random()))
        acks = seed(clients[0], planner)
        report.seeds = len(acks)
        say(
            f"seeded {len(acks)} writes on {parse_database_url(url).display}; "
            f"{config.writes} writes, {config.kills} kills, {config.clients} clients"
        )
        began = time.monotonic()
        acks += _write(config, clients, planner, server, rng, report, stop, say)
        report.write_seconds = time.monotonic() - began
        _collect(clients, report)
        if not stop.is_set():  # every write was answered: check them all, refused or not
            _check(config, env, clients, acks, report, say)
    except (ServerFailed, Stuck, AssertionError, RuntimeError, OSError) as e:
        report.failures.append(f"the soak stopped: {type(e).__name__}: {e}")
    finally:
        # What the clients saw since: the checks' retries (each a replay, as they must be).
        checked = ClientStats()
        for c in clients:
            checked.merge(c.stats)
            c.close()
        report.stats.server_errors += checked.server_errors
        if not report.stats.requests:  # the soak stopped before its writes were counted
            report.stats.merge(checked)
        server.stop()
    errors = server.logged_errors()
    if report.stats.server_errors or errors:
        report.failures.append(
            f"{len(report.stats.server_errors)} answers were 5xx with the server up, "
            f"{len(errors)} unexpected errors logged: "
            f"{(report.stats.server_errors or errors)[0][:300]}"
        )
    if report.stats.fresh_replays:
        report.failures.append(
            f"a new key was answered as a replay: {report.stats.fresh_replays[0]}"
        )
    if report.failures:
        say(f"server log (last lines):\n{server.log_tail()}")


def _collect(clients: list[RetryingClient], report: SoakReport) -> None:
    """The clients' figures of the seeding and writing, apart from the checks' requests."""
    for c in clients:
        report.stats.merge(c.stats)
        c.stats = ClientStats()


def _write(
    config: SoakConfig,
    clients: list[RetryingClient],
    planner: Planner,
    server: LedgerServer,
    rng: random.Random,
    report: SoakReport,
    stop: threading.Event,
    say: Any,
) -> list[Ack]:
    """The clients write until `config.writes` are answered; the killer kills meanwhile."""
    progress = Progress()
    killer = Killer(
        server, progress, kill_points(config.writes, config.kills, rng), rng, report, stop, say
    )
    acks: list[Ack] = []
    lock = threading.Lock()
    planned = iter(range(config.writes))
    deadline = time.monotonic() + config.deadline_seconds

    def work(client: RetryingClient) -> None:
        try:
            while not stop.is_set():
                with lock:
                    if next(planned, None) is None:
                        return
                if time.monotonic() > deadline:
                    raise Stuck(f"the soak's deadline of {config.deadline_seconds:.0f} s passed")
                write, key = planner.plan()
                ack = client.write(write.kind, write.who, write.path, write.body, key)
                with lock:  # listed before what it allows is planned (a clearance of it)
                    acks.append(ack)
                    if ack.acknowledged:
                        report.writes[ack.kind] += 1
                    else:
                        report.refused[f"{ack.status} {ack.response.get('rule', '')}"] += 1
                planner.settle(write, ack)
                progress.add()
        except Aborted:
            return
        except Exception as e:
            with lock:
                report.failures.append(f"a client failed: {type(e).__name__}: {e}")
            stop.set()

    killer.start()
    threads = [threading.Thread(target=work, args=(c,), daemon=True) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    progress.finish()
    killer.join()
    if report.kills < config.kills and not report.failures:
        report.failures.append(f"only {report.kills} of {config.kills} kills happened")
    refused = [a for a in acks if not a.acknowledged]
    if refused:
        first = refused[0]
        report.failures.append(
            f"{len(refused)} writes were refused (every planned write is valid): "
            f"{first.kind} {first.key} {first.status} {first.response}"
        )
    return [a for a in acks if a.acknowledged]


def _check(
    config: SoakConfig,
    env: dict[str, str],
    clients: list[RetryingClient],
    acks: list[Ack],
    report: SoakReport,
    say: Any,
) -> None:
    client = clients[0]
    checks.wait_caught_up(client)
    events = checks.read_log(client)
    report.events = len(events)
    say(f"checking {len(acks)} acknowledged writes against {len(events)} events")
    report.failures += checks.check_log(acks, events)
    report.failures += checks.check_reads(client, acks, config.clients)
    report.failures += checks.check_retries(clients, acks)
    failures, seen = checks.check_cli(env, len(events))
    report.failures += failures
    report.cli.update(seen)


def parse_args(argv: list[str] | None) -> SoakConfig:
    p = argparse.ArgumentParser(
        prog="python -m tests.soak.crash",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--store",
        choices=["sqlite", "postgres"],
        default="sqlite",
        help="postgres: a new schema on LEDGER_TEST_POSTGRES_URL (dropped after)",
    )
    p.add_argument(
        "--writes", type=int, default=2000, help="writes, each retried until answered (2000)"
    )
    p.add_argument("--kills", type=int, default=5, help="SIGKILLs spread over the run (5)")
    p.add_argument("--clients", type=int, default=16, help="concurrent client threads (16)")
    p.add_argument("--seed", type=int, default=1, help="random seed of the mix and the kills")
    p.add_argument("--tenants", type=int, default=8, help="enterprises with a book each (8)")
    a = p.parse_args(argv)
    return SoakConfig(
        store=a.store,
        writes=a.writes,
        kills=a.kills,
        clients=a.clients,
        seed=a.seed,
        tenants=a.tenants,
    )


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    report = run_soak(config)
    print(report.summary())
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
