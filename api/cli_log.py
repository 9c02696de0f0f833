"""`customs-ledger export-events` and `import-events`: backup and restore of the log.

export-events writes the log (or a window of it) as JSON Lines, one event per line with what
its hash covers (docs/audit.md, "Export and restore"); import-events loads such a file into an
empty store, recomputing every hash as it reads, in one transaction. Both show progress on
stderr when it is a terminal and end with a summary line there; stdout carries only events.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from api.settings import Settings

EXPORT_DESCRIPTION = """\
Write the log as JSON Lines (one event per line, in log order) to stdout or --output: position,
sequence, stream_id, version, type, topic, recorded_at, occurred_at, actor, previous_hash, hash
and payload (the stored event as a JSON string). docs/audit.md shows how to recompute every
hash from such a file; `customs-ledger import-events FILE` restores it into an empty store."""
EXPORT_EPILOG = """\
exit codes: 0 written; 1 an event could not be written (a damaged store: run `customs-ledger
verify`); 2 bad arguments. A summary goes to stderr: events, head sequence and head hash
(compare it with a published digest)."""
IMPORT_DESCRIPTION = """\
Load an export-events file into an empty store (restore). Every line's hash is recomputed from
the line before it, and sequences, positions and each stream's versions must run on without
gaps; the file must start at sequence 1 (a full export). The first line that does not check
out is named and nothing is written: the file loads in one transaction or not at all. The read
models are built from the restored log when the server (or `customs-ledger project`) starts."""
IMPORT_EPILOG = """\
exit codes: 0 loaded; 1 refused (the store is not empty, the read models belong to another
log, or a line does not check out: nothing was written); 2 bad arguments."""


def _err(*parts: object) -> None:
    print(*parts, file=sys.stderr)


def _position(text: str) -> int:
    if not text.isdigit() or len(text) > 18:
        raise argparse.ArgumentTypeError("a log position: a whole number, 0 or more")
    return int(text)


def _instant(text: str) -> str:
    """RFC 3339 with Z or an offset -> the stored UTC form recorded_at is compared with."""
    from ledger.chain import format_recorded_at

    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise argparse.ArgumentTypeError("RFC 3339 with Z or an offset, e.g. 2026-12-31T16:00:00Z")
    return format_recorded_at(moment)


def add_parsers(sub: Any) -> None:
    """The export-events and import-events subcommands, on build_parser's subparsers."""
    export = sub.add_parser(
        "export-events",
        help="write the log as JSON Lines (backup, audit)",
        description=EXPORT_DESCRIPTION,
        epilog=EXPORT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    export.add_argument(
        "--after", type=_position, metavar="N", help="only events after log position N"
    )
    export.add_argument(
        "--until",
        type=_instant,
        metavar="T",
        help="only up to the last event recorded at or before T (RFC 3339 with an offset)",
    )
    export.add_argument("--output", "-o", metavar="FILE", help="write to FILE, not stdout")
    restore = sub.add_parser(
        "import-events",
        help="restore an export-events file into an empty store",
        description=IMPORT_DESCRIPTION,
        epilog=IMPORT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    restore.add_argument("file", metavar="FILE", help="an export-events file (- for stdin)")


def _progress(verb: str) -> tuple[Callable[[int], None], Callable[[], None]]:
    """A progress line on stderr when it is a terminal, and what ends it."""
    show = sys.stderr.isatty()
    started = time.monotonic()

    def update(n: int) -> None:
        if show:
            rate = n / max(time.monotonic() - started, 1e-9)
            print(f"\r{verb} {n:,} events ({rate:,.0f}/s)", end="", file=sys.stderr, flush=True)

    def done() -> None:
        if show:
            print(file=sys.stderr)

    return update, done


def _open_app(settings: Settings) -> Any:
    from ledger.application import LedgerApplication
    from ledger.database import parse_database_url

    return LedgerApplication(parse_database_url(settings.database_url))


@contextlib.contextmanager
def _output(path: str | None) -> Iterator[IO[bytes]]:
    """stdout, or FILE written beside it and renamed into place once complete."""
    if path is None:
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    partial = Path(f"{path}.partial")
    try:
        with partial.open("wb") as out:
            yield out
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def cmd_export_events(args: argparse.Namespace, settings: Settings) -> int:
    from ledger.export import ExportError, export_events

    app = _open_app(settings)
    update, done = _progress("exported")
    started = time.monotonic()
    try:
        with _output(args.output) as out:
            summary = export_events(
                app.log, out, after=args.after, until=args.until, progress=update
            )
    except ExportError as e:
        done()
        _err(f"error: {e}")
        return 1
    except BrokenPipeError:
        done()
        sys.stderr.write("error: the reader of stdout went away; the export is incomplete\n")
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    finally:
        app.close()
    done()
    seconds = time.monotonic() - started
    if summary.events:
        span = f"sequences {summary.first_sequence}..{summary.head_sequence}"
        _err(
            f"exported {summary.events:,} events ({span}) in {seconds:.1f}s; head sequence "
            f"{summary.head_sequence}, head position {summary.head_position}, "
            f"head hash {summary.head_hash}"
        )
    else:
        _err("exported 0 events; head sequence none, head hash none")
    return 0


def _views_position(database: Any) -> int:
    """How far read models already in this database have got (0 when there are none)."""
    from api.services import open_views

    if database.kind == "sqlite":
        stem = database.path.removesuffix(".sqlite3")
        if not Path(f"{stem}.views.sqlite3").exists():
            return 0
        exists = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'view_tracking'"
    else:
        exists = "SELECT 1 FROM pg_tables WHERE schemaname = current_schema() AND tablename = ?"
    views = open_views(database)
    try:
        with views.read() as cur:
            cur.execute(exists, () if database.kind == "sqlite" else ("view_tracking",))
            if cur.fetchone() is None:
                return 0
            cur.execute("SELECT max(position) AS position FROM view_tracking")
            row = cur.fetchone()
            return int(row["position"] or 0) if row is not None else 0
    finally:
        views.close()


def cmd_import_events(args: argparse.Namespace, settings: Settings) -> int:
    from ledger.export import ImportRefused, StoreNotEmpty, import_events

    with contextlib.ExitStack() as stack:
        try:
            source = (
                sys.stdin.buffer if args.file == "-" else stack.enter_context(open(args.file, "rb"))
            )
        except OSError as e:
            _err(f"error: cannot read {args.file}: {e.strerror or e}")
            return 2
        app = _open_app(settings)
        stack.callback(app.close)
        update, done = _progress("imported")
        started = time.monotonic()
        ahead = _views_position(app.database)
        if ahead and app.log.count() == 0:
            _err(
                f"refused: the read models of {app.database.display} are at log position "
                f"{ahead} of another log; remove them (the views file or view_ tables) so "
                "that they are rebuilt from the restored log. Nothing was written."
            )
            return 1
        try:
            summary = import_events(app.recorder, source, progress=update)
        except StoreNotEmpty:
            done()
            _err(
                f"refused: the event store of {app.database.display} is not empty "
                f"({app.log.count():,} events); import-events restores into an empty store "
                "only. Nothing was written."
            )
            return 1
        except ImportRefused as e:
            done()
            _err(f"refused: {args.file}: {e}. Nothing was written; the store is still empty.")
            return 1
        from ledger.keys import ApiKeys

        # The keys are events of the log: their table is rebuilt from what was restored.
        keys = ApiKeys(app).rebuild()
    done()
    seconds = time.monotonic() - started
    rate = summary.events / max(seconds, 1e-9)
    _err(
        f"imported {summary.events:,} events in {seconds:.1f}s ({rate:,.0f}/s), every hash "
        f"checked; head sequence {summary.head_sequence}, head position "
        f"{summary.head_position}, head hash {summary.head_hash}; key table rebuilt from the "
        f"log ({len(keys)} keys)"
    )
    return 0
