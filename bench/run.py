"""Run the benchmarks, print a table, write docs/benchmarks.md.

    python -m bench.run                 # every benchmark, 3 repeats (`make bench`)
    python -m bench.run --quick         # 1 repeat, shorter load phases
    python -m bench.run --only P1,P6    # P1 selects P1a and P1b
    python -m bench.run --only M1 --merge   # only M1's section of docs/benchmarks.md

Each figure is the median of its repeats; each reference is measured in the same run, on the
same machine, and the ratio is median(figure) / median(reference). Progress goes to stderr,
the results table to stdout. A benchmark is a function `Config -> Result` registered in
BENCHMARKS below; later ones (P2-P5, P7) are added there.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench import (
    areas,
    imports,
    loadgen,
    movements,
    p1,
    p1l,
    p2,
    p3,
    p4,
    p5,
    p6,
    p7,
    p8,
    p9,
    passages,
    report,
)
from bench.common import ROOT, Config, Result, machine, progress


@dataclass(frozen=True)
class Benchmark:
    name: str
    title: str
    run: Callable[[Config], Result]


BENCHMARKS: dict[str, Benchmark] = {
    b.name: b
    for b in (
        Benchmark("P1a", "declarations through the application layer", p1.app_layer),
        Benchmark("P1b", "declarations over HTTP, 16 connections", p1.http),
        Benchmark("P1L", "P1b with the rate limits on and off", p1l.http_limits),
        Benchmark("P3", "full replay into every read model", p3.replay_throughput),
        Benchmark("P4", "trace query, 20-hop chain, upstream", p4.trace_chain),
        Benchmark("P5", "account-book balances as of a past instant", p5.as_of_balance),
        # After P5: P2 restores an export of P5's store when P5 ran first (else builds one).
        Benchmark("P2", "bulk load: import-events of an export", p2.bulk_load),
        Benchmark("P6", "verify over the whole log", p6.verify_throughput),
        Benchmark("M1", "movements over HTTP, 16 connections", movements.http),
        Benchmark("M2", "gate-pass passages over HTTP, 16 connections", passages.http),
        # After P3: P7 replays P3's 100k store on PostgreSQL when P3 ran first (else builds one).
        Benchmark("P7", "the suite on PostgreSQL (P1 over HTTP, P3 replay)", p7.postgres_suite),
        Benchmark("P8", "retail lists through batches of 100 over HTTP", p8.batch_intake),
        Benchmark("P9", "receipts: commit to webhook delivery under the P1 load", p9.receipts_lag),
        Benchmark("I1", "spreadsheet imports: 10,000 retail lists from XLSX", imports.import_rows),
        Benchmark("A1", "two pilot areas on two PostgreSQL databases", areas.pilot_areas),
    )
}


def select(only: str | None) -> list[Benchmark]:
    """`P1,P6` -> P1a, P1b, P6 (a name selects itself and its lettered parts)."""
    if not only:
        return list(BENCHMARKS.values())
    chosen: list[Benchmark] = []
    for token in (t.strip() for t in only.split(",") if t.strip()):
        found = [
            b
            for name, b in BENCHMARKS.items()
            if name.lower() == token.lower()
            or (name.lower().startswith(token.lower()) and name[len(token) :].isalpha())
        ]
        if not found:
            raise SystemExit(f"--only: no benchmark {token!r} (have {', '.join(BENCHMARKS)})")
        chosen += [b for b in found if b not in chosen]
    return chosen


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="1 repeat, shorter phases")
    parser.add_argument("--only", metavar="P1,P6", help="comma-separated benchmarks to run")
    parser.add_argument("--repeats", type=int, help="repeats per figure (default 3, quick 1)")
    parser.add_argument(
        "--load-seconds",
        type=float,
        help="HTTP measured phase: P1b, P1L, M1, M2, P7, P8, P9, A1 (default 10/5)",
    )
    parser.add_argument(
        "--loadgen",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="HTTP load generator (auto: wrk when installed, else Python threads)",
    )
    parser.add_argument(
        "--out", default=str(ROOT / "docs" / "benchmarks.md"), help="the report to write"
    )
    parser.add_argument(
        "--merge",
        action="store_true",
        help="write only the chosen benchmarks' sections of the report: the others, the run "
        "header and the machine stay as its JSON (beside --out) has them",
    )
    parser.add_argument("--no-docs", action="store_true", help="do not write the report")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    return parser.parse_args(argv)


def command_line(argv: Sequence[str] | None) -> str:
    args = list(sys.argv[1:] if argv is None else argv)
    python = (
        os.path.relpath(sys.executable, ROOT)
        if sys.executable.startswith(str(ROOT))
        else (sys.executable)
    )
    text = " ".join([python, "-m", "bench.run", *args])
    return f"make bench  ({text})" if os.environ.get("MAKELEVEL") and not args else text


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    chosen = select(args.only)
    out = Path(args.out)
    if args.merge and not out.with_suffix(".json").exists():
        raise SystemExit(f"--merge: no {out.with_suffix('.json')} to merge into")
    repeats = args.repeats or (1 if args.quick else 3)
    if repeats < 1:
        raise SystemExit("--repeats must be >= 1")
    workdir = Path(tempfile.mkdtemp(prefix="customs-ledger-bench-", dir="/tmp"))
    cfg = Config(
        repeats=repeats,
        quick=args.quick,
        workdir=workdir,
        load_seconds=args.load_seconds or (5.0 if args.quick else 10.0),
        warmup_seconds=1.0 if args.quick else 2.0,
        loadgen=args.loadgen,
    )
    started_at = dt.datetime.now(dt.UTC)
    started = time.monotonic()
    load_before = os.getloadavg()[0]
    progress(f"running {', '.join(b.name for b in chosen)}, {repeats} repeat(s), in {workdir}")
    results: list[Result] = []
    try:
        for bench in chosen:
            progress(f"{bench.name}: {bench.title}")
            t0 = time.monotonic()
            try:
                result = bench.run(cfg)
            except Exception as e:  # one failing benchmark must not lose the others
                traceback.print_exc(file=sys.stderr)
                result = Result(bench.name, bench.title, error=f"{type(e).__name__}: {e}")
            result.seconds = time.monotonic() - t0
            progress(f"{bench.name} done in {result.seconds:.0f}s")
            results.append(result)
    finally:
        if args.keep:
            progress(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    run = report.Run(
        command=command_line(argv),
        started_at=started_at,
        seconds=time.monotonic() - started,
        repeats=repeats,
        quick=args.quick,
        load_seconds=cfg.load_seconds,
        warmup_seconds=cfg.warmup_seconds,
        loadgen=loadgen.describe(loadgen.choose(cfg.loadgen), cfg.connections)
        if any(b.name in ("P1b", "P1L", "M1", "M2", "P7", "P8", "P9", "A1") for b in chosen)
        else "",
        machine=machine(),
        results=results,
    )
    print(report.table(run))
    if args.merge:
        # The machine is shared: say how busy it was (the references share the noise).
        run.machine["load"] = (
            f"load average (1 min) {load_before:.1f} at the start, "
            f"{os.getloadavg()[0]:.1f} at the end, on {run.machine['nproc']} CPUs"
        )
        run = report.merge(report.from_json(json.loads(out.with_suffix(".json").read_text())), run)
    if not args.no_docs:
        written = report.write(run, out)  # the page, its plots and its JSON
        progress(f"wrote {', '.join(map(str, written))}")
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
