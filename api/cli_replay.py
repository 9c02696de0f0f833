"""`customs-ledger replay [--as-of T]`: rebuild every read model from the log and compare.

The wiring (`run_replay`, shared with `POST /v1/audit/replay`) is api.replaying's.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime
from typing import TYPE_CHECKING

from api.replaying import WAIT_SECONDS, ReplayFailed, answer, run_replay
from api.settings import Settings

if TYPE_CHECKING:
    from projections.replay import ReplayReport

DESCRIPTION = """\
Rebuild every read model (declarations, enterprises, inventory, trace) from the start of the
log into a scratch store, digest each one and compare it with the live views at the same log
position. With --as-of T the read models are rebuilt as they stood at the last event recorded
at or before T; the live views can say how the inventory stood then (books, items' balances,
stock history, entries, movements), so that is compared, and the other read models are only
digested. The live views are never written; the scratch store is deleted afterwards."""
EPILOG = """exit codes: 0 every read model compared is equal; 1 one differs (the first differing
rows are printed); 2 bad arguments; 3 the replay could not be done (its second process
failed). Progress goes to stderr on a terminal; stdout carries the digests (or, with --json,
the answer POST /v1/audit/replay gives)."""


def _instant(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise argparse.ArgumentTypeError("RFC 3339 with Z or an offset, e.g. 2026-12-31T16:00:00Z")
    return moment


def configure(parser: argparse.ArgumentParser) -> None:
    """The replay subcommand's arguments (build_parser adds the subparser)."""
    parser.add_argument(
        "--as-of",
        type=_instant,
        metavar="T",
        help="rebuild as of the last event recorded at or before T (RFC 3339 with an offset)",
    )
    parser.add_argument("--json", action="store_true", help="print the answer as JSON")
    parser.add_argument(
        "--wait",
        type=float,
        default=WAIT_SECONDS,
        metavar="SECONDS",
        help="how long to wait for the live views to reach the log head (default 10)",
    )
    parser.add_argument(
        "--one-process",
        action="store_true",
        help="rebuild every read model in this process (by default, on a long log, a second "
        "process rebuilds the trace graph, declarations and enterprises when a CPU is free)",
    )


def cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    import msgspec

    from api.services import Services
    from domain.assessment import ClearanceRules
    from domain.duty_tables import DEFAULT_TABLES
    from domain.risk_rules import DEFAULT_RULES

    # A replay decides nothing: the built-in clearance rules are never used.
    services = Services.build(settings, ClearanceRules(risk=DEFAULT_RULES, duties=DEFAULT_TABLES))
    show = sys.stderr.isatty()
    first: list[tuple[float, int]] = []  # when and where the rebuild was first reported

    def progress(position: int, end: int) -> None:
        if not show:
            return
        now = time.monotonic()
        if not first:
            first.append((now, position))
        since, start = first[0]
        rate = f", {(position - start) / (now - since):,.0f}/s" if now > since else ""
        share = 100 * position / end if end else 100.0
        print(
            f"\rreplaying: position {position:,} of {end:,} ({share:.0f}%{rate})\033[K",
            end="",
            file=sys.stderr,
            flush=True,
        )

    if show:
        print("reading the live views' digests, then rebuilding ...", file=sys.stderr)

    try:
        report, log_position = run_replay(
            services,
            args.as_of,
            wait_seconds=args.wait,
            progress=progress,
            parallel=False if args.one_process else None,
        )
    except ReplayFailed as e:
        if show:
            print(file=sys.stderr)
        print(f"replay failed: {e}", file=sys.stderr)
        return 3
    finally:
        services.close()
    if show:
        print(file=sys.stderr)
    if args.json:
        print(
            msgspec.json.format(
                msgspec.json.encode(answer(report, log_position)), indent=2
            ).decode()
        )
    else:
        print("\n".join(_lines(report, log_position)))
    rate = report.events_replayed / max(report.rebuild_seconds, 1e-9)
    verdict = "equal" if report.equal else "DIFFERENT"
    print(
        f"replay: {report.events_replayed:,} events to position {report.position:,} in "
        f"{report.seconds:.1f} s (rebuild {rate:,.0f} events/s): {verdict}",
        file=sys.stderr,
    )
    return 0 if report.equal else 1


def _lines(report: ReplayReport, log_position: int) -> list[str]:
    lines = [
        f"events_replayed: {report.events_replayed}",
        f"position: {report.position}",
        f"log_position: {log_position}",
    ]
    if report.as_of is not None:
        lines.append(f"as_of: {report.as_of}")
    lines.append(f"seconds: {report.seconds:.3f}")
    for name, result in report.projections.items():
        if result.equal is None:
            state = "not compared (the live views cannot say)"
        else:
            state = "equal" if result.equal else "DIFFERENT"
        lines.append(
            f"{name}: {state}  replayed {result.replayed_digest}  live {result.live_digest or '-'}"
        )
        for table, t in result.tables.items():
            if t.equal is False:
                lines.append(f"  {table}: live {t.live_digest} replayed {t.replayed_digest}")
    for d in report.differences:
        key = ", ".join(f"{k}={v}" for k, v in d.key.items())
        lines.append(f"difference in {d.table} at {key}: live {d.live} replayed {d.replayed}")
    lines += [f"note: {note}" for note in report.notes]
    return lines
