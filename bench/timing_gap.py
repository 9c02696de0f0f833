"""Issue #14 item 9: how much longer a 404 takes for another tenant's declaration or lot than
for one that does not exist (docs/security.md, "Timing").

    python -m bench.timing_gap                # 3,000 samples of each, in-process (TestClient)
    python -m bench.timing_gap --samples 500

Enterprise B asks for enterprise A's declaration (by number and by id), A's lot and A's
movement, and for ones that do not exist; each pair is timed in turn, in random order, so
that a noisy machine moves both alike. Prints each path's median and interquartile range and
the gap of the medians. In-process (no socket): the server's own work, without the network's
noise, which only hides a gap further.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from tests.samples import line
from tests.support import declaration_body, new_key, onboard, running_ledger


def _quartiles(samples: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(samples, n=4)
    return q[0], q[1], q[2]


def _prepare(ledger) -> dict[str, tuple[str, str]]:
    """(another tenant's path, a missing one's) per kind of resource, asked for by B."""
    a = onboard(ledger)
    b = onboard(ledger)
    gate = f"gate-{uuid.uuid4().hex[:6]}"
    ledger.issue(gate, "operator", zone="XCBZ")
    body = declaration_body(a.uscc, a.book_no, lines=[line(1, quantity="10")])
    d = ledger.post("/v1/declarations", a.token_name, body, key=new_key())
    assert d.status_code == 201, d.text
    moved = ledger.post(
        "/v1/movements",
        gate,
        {
            "kind": "gate_in",
            "declaration": d.json()["id"],
            "lines": [{"line_no": 1, "quantity": "10"}],
        },
        key=new_key(),
    )
    assert moved.status_code == 201, moved.text
    number = d.json()["declaration_no"]
    missing_number = number[:9] + str(int(number[9:]) + 500_000).zfill(len(number) - 9)
    paths = {
        "declaration by number": (number, missing_number),
        "declaration by id": (d.json()["id"], str(uuid.uuid4())),
    }
    result = {k: (f"/v1/declarations/{o}", f"/v1/declarations/{m}") for k, (o, m) in paths.items()}
    lot = moved.json()["lots"][0]["lot_id"]
    result["lot"] = (f"/v1/lots/{lot}", f"/v1/lots/{uuid.uuid4()}")
    movement = moved.json()["movement_id"]
    result["movement"] = (f"/v1/movements/{movement}", f"/v1/movements/{uuid.uuid4()}")
    for other, missing in result.values():
        assert ledger.get(other, a.token_name).status_code == 200, other
        assert ledger.get(other, b.token_name).status_code == 404, other
        assert ledger.get(missing, b.token_name).status_code == 404, missing
    ledger.tokens["asker"] = ledger.tokens[b.token_name]
    return result


Timings = dict[str, dict[str, list[float]]]


def _pairs(samples: int, other: Callable[[], None], missing: Callable[[], None]) -> dict:
    """Microseconds of each call, the two taken in turn in random order, after a warm-up."""
    found: dict[str, list[float]] = {"other": [], "missing": []}
    for _ in range(200):  # warm-up: caches, connections, code paths
        other()
        missing()
    for _ in range(samples):
        pair = [("other", other), ("missing", missing)]
        random.shuffle(pair)
        for which, call in pair:
            started = time.perf_counter_ns()
            call()
            found[which].append((time.perf_counter_ns() - started) / 1000)
    return found


def _over_http(ledger, path: str) -> Callable[[], None]:
    headers = ledger.headers("asker")

    def call() -> None:
        assert ledger.client.get(path, headers=headers).status_code == 404

    return call


def _in_server(ledger, path: str) -> Callable[[], None]:
    """The route's own work after authentication (what differs between the two answers)."""
    from api.routes.declarations import can_see
    from domain.errors import NotFound

    svc = ledger.services
    actor = svc.keys.authenticate(ledger.tokens["asker"]).actor
    _, kind, ref = path.rsplit("/", 2)

    def declaration() -> None:
        found = svc.declarations.get(ref)
        assert found is None or not can_see(actor, found[1])

    def read(method: Callable[[str, object], object]) -> Callable[[], None]:
        def call() -> None:
            try:
                method(ref, actor)
            except NotFound:
                return
            raise AssertionError(f"{path} was found")

        return call

    if kind == "declarations":
        return declaration
    return read(svc.ledger.lot if kind == "lots" else svc.ledger.movement)


def measure(samples: int) -> dict[str, Timings]:
    """Microseconds per request over HTTP (in-process client) and of the route's own work
    in the server: {level: {kind: {"other": [...], "missing": [...]}}}."""
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite:///{Path(directory) / 'ledger.sqlite3'}"
        with running_ledger(url) as ledger:
            paths = _prepare(ledger)
            levels: dict[str, Timings] = {"HTTP": {}, "route work": {}}
            for kind, (other, missing) in paths.items():
                levels["HTTP"][kind] = _pairs(
                    samples, _over_http(ledger, other), _over_http(ledger, missing)
                )
                levels["route work"][kind] = _pairs(
                    samples * 10, _in_server(ledger, other), _in_server(ledger, missing)
                )
            return levels


def report(levels: dict[str, Timings]) -> str:
    lines = [
        "| asked for by another tenant | measured | other's: median (IQR) µs "
        "| missing: median (IQR) µs | gap of medians µs |",
        "|---|---|---|---|---|",
    ]
    for level, timings in levels.items():
        lines += _rows(level, timings)
    return "\n".join(lines)


def _rows(level: str, timings: Timings) -> list[str]:
    lines = []
    for kind, found in timings.items():
        o1, om, o3 = _quartiles(found["other"])
        m1, mm, m3 = _quartiles(found["missing"])
        lines.append(
            f"| {kind} | {level} | {om:.0f} ({o1:.0f}-{o3:.0f}) | {mm:.0f} ({m1:.0f}-{m3:.0f}) "
            f"| {om - mm:+.0f} |"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.timing_gap", description=__doc__)
    parser.add_argument("--samples", type=int, default=3000, help="requests per path")
    args = parser.parse_args(argv)
    timings = measure(args.samples)
    print(
        f"{args.samples} HTTP samples and {args.samples * 10} of the route's work per path, "
        "pairs in random order, in-process"
    )
    print(report(timings))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
