"""`customs-ledger replay [--as-of T]`: rebuild every read model from the log and compare.

`run_replay` is shared with `POST /v1/audit/replay`: it wires the ledger's log, the live views
and a scratch store (a temporary file next to the views, or a temporary PostgreSQL schema) to
projections.replay, which never writes the live views.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from api.settings import Settings

if TYPE_CHECKING:
    from api.services import Services
    from projections.replay import ReplayReport
    from projections.runner import CatchUpRunner, LogSource
    from projections.store import ViewStore

DESCRIPTION = """\
Rebuild every read model (declarations, enterprises, inventory, trace) from the start of the
log into a scratch store, digest each one and compare it with the live views at the same log
position. With --as-of T the read models are rebuilt as they stood at the last event recorded
at or before T; the live views can say how the inventory stood then (books, items' balances,
stock history, entries, movements), so that is compared, and the other read models are only
digested. The live views are never written; the scratch store is deleted afterwards."""
EPILOG = """exit codes: 0 every read model compared is equal; 1 one differs (the first differing
rows are printed); 2 bad arguments. Progress goes to stderr on a terminal; stdout carries the
digests (or, with --json, the answer POST /v1/audit/replay gives)."""
WAIT_SECONDS = 10.0  # how long a full replay waits for the live views to reach the log head


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


@contextlib.contextmanager
def scratch_views(services: Services) -> Iterator[ViewStore]:
    """A scratch store beside the live views: never the live views themselves."""
    from projections.replay import scratch_postgres, scratch_sqlite
    from projections.store import PostgresViews, SQLiteViews

    views = services.views
    if isinstance(views, SQLiteViews):
        with scratch_sqlite(views.path) as scratch:
            yield scratch
    else:
        assert isinstance(views, PostgresViews)
        with scratch_postgres(views.conninfo) as scratch:
            yield scratch


def replay_runners(app: Any) -> Callable[[ViewStore, LogSource], CatchUpRunner]:
    """How a replay builds its runner: every read model, fed from `page`, with no secondary
    index (the scratch store is digested and dropped, never queried by the API)."""
    from api.services import read_models_runner

    return lambda views, page: read_models_runner("replay", views, app, source=page, indexes=False)


def log_pages(app: Any) -> Callable[[int, int, str | None], Any]:
    """The log a page at a time, up to the last event recorded at or before `until`."""
    return lambda after, limit, until: app.log.select_log(after, limit, until=until)


def run_replay(
    services: Services,
    as_of: datetime | None = None,
    *,
    wait_seconds: float = WAIT_SECONDS,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[ReplayReport, int]:
    """Replay into a scratch store and compare: (the report, the log head's position).

    A full replay compares at the live views' position; it first gives them `wait_seconds`
    to reach the log head (the server's runner, or a `project --follow` process, feeds them)."""
    from projections.replay import replay

    app = services.app
    head = app.log.head()
    log_position = head.position if head else 0
    if as_of is None:
        services.runner.wait_for(log_position, wait_seconds)
    with scratch_views(services) as scratch:
        report = replay(
            services.views,
            scratch,
            replay_runners(app),
            log_pages(app),
            as_of=as_of,
            wait_for_live=lambda position: services.runner.wait_for(position, wait_seconds),
            progress=progress,
            live_name=services.runner.name,
        )
    if as_of is None and report.position < log_position:
        report.notes.append(
            f"the live views reflect the log up to position {report.position}, the log is at "
            f"{log_position}: both were compared at {report.position} (the server or "
            "`customs-ledger project` brings the views up to date)"
        )
    return report, log_position


def answer(report: ReplayReport, log_position: int) -> dict[str, Any]:
    """The report as POST /v1/audit/replay answers it."""
    import dataclasses

    body = dataclasses.asdict(report)
    body["seconds"] = round(report.seconds, 3)
    body["rebuild_seconds"] = round(report.rebuild_seconds, 3)
    body["equal"] = report.equal
    body["log_position"] = log_position
    return body


def cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    import msgspec

    from api.services import Services
    from domain.duty_tables import DEFAULT_TABLES
    from domain.risk_rules import DEFAULT_RULES
    from ledger.declarations import ClearanceRules

    # A replay decides nothing: the built-in clearance rules are never used.
    services = Services.build(settings, ClearanceRules(risk=DEFAULT_RULES, duties=DEFAULT_TABLES))
    show = sys.stderr.isatty()
    started = time.monotonic()

    def progress(events: int, position: int) -> None:
        if show:
            rate = events / max(time.monotonic() - started, 1e-9)
            print(
                f"\rreplayed {events:,} events, position {position:,} ({rate:,.0f}/s)",
                end="",
                file=sys.stderr,
                flush=True,
            )

    try:
        report, log_position = run_replay(
            services, args.as_of, wait_seconds=args.wait, progress=progress
        )
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
