"""`customs-ledger replay [--as-of T]`: rebuild every read model from the log and compare.

The wiring (`run_replay`, shared with `POST /v1/audit/replay`) is api.replaying's. What it
prints for a person is in the command's language (api/i18n.py `say`); `--json` never is.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime
from typing import TYPE_CHECKING

from api.i18n import say
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

# The words of others a replay quotes in its notes and its failure (api/replaying.py,
# projections/replay.py, ledger/helper_process.py), as templates for the catalog
# (api/i18n_extract.py reads this tuple).
QUOTED_MESSAGES = (
    "the live views reflect the log up to position {position}, the log is at {log_position}:"
    " both were compared at {position} (the server or `customs-ledger project` brings the"
    " views up to date)",
    "the live views are at position {live_position}, before the cut ({position}): the {name}"
    " was not compared",
    "the replay's second process ({names}) failed: {detail}",
    "exit status {status}",
    "it was never started",
)


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
        share = 100 * position / end if end else 100.0
        if now > since:
            line = say(
                "replaying: position {position:,} of {end:,} ({share:.0f}%, {rate:,.0f}/s)",
                position=position,
                end=end,
                share=share,
                rate=(position - start) / (now - since),
            )
        else:
            line = say(
                "replaying: position {position:,} of {end:,} ({share:.0f}%)",
                position=position,
                end=end,
                share=share,
            )
        print(f"\r{line}\033[K", end="", file=sys.stderr, flush=True)

    if show:
        print(say("reading the live views' digests, then rebuilding ..."), file=sys.stderr)

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
        print(say("replay failed: {detail}", detail=str(e)), file=sys.stderr)
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
    values = {
        "events": report.events_replayed,
        "position": report.position,
        "seconds": report.seconds,
        "rate": report.events_replayed / max(report.rebuild_seconds, 1e-9),
    }
    if report.equal:
        print(
            say(
                "replay: {events:,} events to position {position:,} in {seconds:.1f} s (rebuild"
                " {rate:,.0f} events/s): equal",
                **values,
            ),
            file=sys.stderr,
        )
    else:
        print(
            say(
                "replay: {events:,} events to position {position:,} in {seconds:.1f} s (rebuild"
                " {rate:,.0f} events/s): DIFFERENT",
                **values,
            ),
            file=sys.stderr,
        )
    return 0 if report.equal else 1


def _lines(report: ReplayReport, log_position: int) -> list[str]:
    """The report as a person reads it (read model names, tables, keys and digests as they
    are in any language)."""
    lines = [
        say("events_replayed: {n}", n=report.events_replayed),
        say("position: {position}", position=report.position),
        say("log_position: {position}", position=log_position),
    ]
    if report.as_of is not None:
        lines.append(say("as_of: {as_of}", as_of=report.as_of))
    lines.append(say("seconds: {seconds:.3f}", seconds=report.seconds))
    for name, result in report.projections.items():
        if result.equal is None:
            state = say("not compared (the live views cannot say)")
        else:
            state = say("equal") if result.equal else say("DIFFERENT")
        lines.append(
            say(
                "{name}: {state}  replayed {replayed}  live {live}",
                name=name,
                state=state,
                replayed=result.replayed_digest,
                live=result.live_digest or "-",
            )
        )
        for table, t in result.tables.items():
            if t.equal is False:
                lines.append(
                    say(
                        "  {table}: live {live} replayed {replayed}",
                        table=table,
                        live=t.live_digest,
                        replayed=t.replayed_digest,
                    )
                )
    for d in report.differences:
        key = ", ".join(f"{k}={v}" for k, v in d.key.items())
        lines.append(
            say(
                "difference in {table} at {key}: live {live} replayed {replayed}",
                table=d.table,
                key=key,
                live=d.live,
                replayed=d.replayed,
            )
        )
    lines += [say("note: {detail}", detail=note) for note in report.notes]
    return lines
