"""Crash soak (R2 in docs/reliability.md): SIGKILL a real server at random moments under
concurrent writes, restart it, let the clients retry, then prove that no acknowledged write was
lost or duplicated and that the read models equal a replay; and that a webhook receiver that is
itself intermittently down got every receipt of those writes at least once, in log order per
subscription, signed, and nothing of another tenant (docs/receipts.md).

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
from tests.soak.receiver import Receiver
from tests.soak.server import (
    LedgerServer,
    ServerFailed,
    free_port,
    issue_key,
    scratch_database,
    server_env,
)
from tests.soak.workload import Planner, Tenant, key_names, seed, tenants


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
    receipts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    write_seconds: float = 0.0
    writes_done_at: float = 0.0  # time.monotonic() when the last write was answered
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
            self._receipts(),
            f"  verify: {self.cli.get('verify', '-')}",
            f"  replay: {self.cli.get('replay', '-')}",
            f"  seconds: {self.seconds:.1f} (writes {self.write_seconds:.1f})",
        ]
        lines += [f"  FAILURE: {f}" for f in self.failures]
        return "\n".join(lines)

    def _receipts(self) -> str:
        r = self.receipts
        if not r:
            return "  receipts: not checked"
        return (
            f"  receipts: {r.get('delivered', 0)} of {r.get('expected', 0)} expected accepted by "
            f"{r.get('subscriptions', 0)} subscriptions; duplicates {r.get('duplicates', 0)}; "
            f"sent again {r.get('sent_again', 0)} (receiver answered 503 "
            f"{r.get('answered_503', 0)} times; down {r.get('outages_503', 0)}x 503, "
            f"{r.get('outages_closed', 0)}x not listening; cut short by a kill "
            f"{r.get('cut_short', 0)}; dispatcher attempts failed "
            f"{r.get('attempts_failed', 0)}, ok {r.get('attempts_ok', 0)}; all delivered "
            f"{r.get('drain_ms', 0) / 1000:.1f} s after the last write)"
        )


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
    # Its own random draws: the writes and the kills are those of the seed without receipts.
    receiver = Receiver(random.Random(f"receiver-{config.seed}"))
    try:
        server.wait_healthy()
        rng = random.Random(config.seed)
        planner = Planner(tenants(config.tenants), random.Random(rng.random()))
        acks = seed(clients[0], planner)
        report.seeds = len(acks)
        subs, made = subscribe(clients[0], receiver, planner.tenants)
        acks += made
        say(
            f"seeded {report.seeds} writes on {parse_database_url(url).display}, "
            f"{len(subs)} subscriptions; "
            f"{config.writes} writes, {config.kills} kills, {config.clients} clients"
        )
        began = time.monotonic()
        receiver.flap()
        acks += _write(config, clients, planner, server, rng, report, stop, say)
        report.writes_done_at = time.monotonic()
        report.write_seconds = report.writes_done_at - began
        _collect(clients, report)
        if not stop.is_set():  # every write was answered: check them all, refused or not
            _check(config, env, clients, acks, subs, receiver, report, say)
    except (ServerFailed, Stuck, AssertionError, RuntimeError, OSError) as e:
        report.failures.append(f"the soak stopped: {type(e).__name__}: {e}")
    finally:
        receiver.close()
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
    dispatcher = server.dispatcher_errors()
    if dispatcher:
        report.failures.append(
            f"the webhook dispatcher logged {len(dispatcher)} errors: {dispatcher[0][:400]}"
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


def subscribe(
    client: RetryingClient, receiver: Receiver, tenants: list[Tenant]
) -> tuple[list[checks.Subscription], list[Ack]]:
    """Before the writes: each enterprise subscribes to all its receipts, customs (an officer)
    to everyone's; each to its own path on the receiver, which verifies with its secret."""
    owners = [(t.enterprise_key, t.enterprise_key) for t in tenants]
    subs, acks = [], []
    for n, (who, tenant) in enumerate([*owners, ("soak-officer", None)]):
        name = tenant or "customs"
        body = {"url": receiver.url(name), "events": ["*"], "description": f"soak {name}"}
        ack = client.write("subscription", who, "/v1/subscriptions", body, f"soak-hook-{n}")
        if ack.status != 201:
            raise RuntimeError(f"subscribing {name}: {ack.status} {ack.response}")
        secret = ack.response["secret"]
        receiver.register(name, secret)
        subs.append(checks.Subscription(name, ack.response["id"], who, tenant, secret))
        acks.append(ack)
    return subs, acks


def _check(
    config: SoakConfig,
    env: dict[str, str],
    clients: list[RetryingClient],
    acks: list[Ack],
    subs: list[checks.Subscription],
    receiver: Receiver,
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
    _check_receipts(client, acks, events, subs, receiver, report, say)


def _check_receipts(
    client: RetryingClient,
    acks: list[Ack],
    events: list[dict[str, Any]],
    subs: list[checks.Subscription],
    receiver: Receiver,
    report: SoakReport,
    say: Any,
) -> None:
    """The receiver stays up from now; wait until every subscription's backlog is delivered,
    then check what the receiver got against the log. `drain_ms`: from the last write's
    answer to the first acceptance of the last receipt accepted."""
    receiver.steady()  # down now and then until here, while the checks above ran
    expected, failures = checks.expected_receipts(subs, events, acks)
    report.failures += failures
    say(f"waiting for {sum(len(e) for e in expected.values())} receipts to be delivered")
    stalled = checks.wait_receipts_delivered(client, subs, expected)
    report.failures += stalled
    deliveries = receiver.deliveries()
    failures, figures = checks.check_receipts(subs, expected, deliveries, acks)
    report.failures += failures + receiver.problems
    attempts = checks.webhook_figures(client)["attempts"]
    firsts: dict[tuple[str, str], float] = {}
    for d in deliveries:
        if d.accepted:
            firsts.setdefault((d.name, d.webhook_id), d.at)
    last = max(firsts.values(), default=report.writes_done_at)
    figures.update(
        drain_ms=int(max(last - report.writes_done_at, 0) * 1000),
        outages_503=receiver.outages["503"],
        outages_closed=receiver.outages["closed"],
        attempts_ok=attempts.get("ok", 0),
        attempts_failed=attempts.get("failed", 0),
    )
    report.receipts = figures


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
