"""The `customs-ledger` command: serve, keys, verify, project, trace.

What `trace`, `verify`, `replay`, `reference load` and `import` print for a person is in the
language of the locale (LC_ALL, LC_MESSAGES, LANG, LANGUAGE as gettext reads them) or of
`--lang`: each line is `say(template, **values)` (api/i18n.py), English in the code, Chinese
in the catalog. JSON, EPCIS and CSV output never change with the language."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
import unicodedata
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from api import (
    cli_import,
    cli_log,
    cli_privacy,
    cli_reference,
    cli_replay,
    cli_risk,
    cli_subscriptions,
    i18n,
)
from api.i18n import say
from api.settings import Settings

if TYPE_CHECKING:  # the CLI imports the ledger only when a command needs it (start-up time)
    from ledger.application import LedgerApplication


def _err(*parts: object) -> None:
    print(*parts, file=sys.stderr)


def _open_app(settings: Settings) -> LedgerApplication:
    from ledger.application import LedgerApplication
    from ledger.database import parse_database_url

    return LedgerApplication(parse_database_url(settings.database_url))


def store_problem(settings: Settings) -> str | None:
    """The one line that says why a PostgreSQL store cannot be used - the server cannot be
    reached, the database or the role does not exist, the URL's `?schema=` does not exist -
    or None (it can, the store is SQLite, or the URL itself is wrong: the command says so)."""
    from ledger.database import DatabaseUrlError, parse_database_url

    try:
        db = parse_database_url(settings.database_url)
    except DatabaseUrlError:
        return None
    if db.kind != "postgresql":
        return None
    import psycopg

    try:
        with psycopg.connect(db.conninfo, connect_timeout=10) as conn:
            row = conn.execute(
                "SELECT 1 FROM pg_namespace WHERE nspname = %s", (db.schema,)
            ).fetchone()
    except psycopg.Error as e:
        # psycopg's text is the server's own (FATAL: database "x" does not exist, Connection
        # refused ...), quoted as it is, on one line.
        reason = [line.strip() for line in str(e).strip().splitlines() if line.strip()]
        return say(
            "error: cannot use PostgreSQL database {dbname!r} on {host}:{port} as {user!r}:"
            " {reason}; check LEDGER_DATABASE_URL and that the server runs",
            dbname=db.dbname,
            host=db.host,
            port=db.port,
            user=db.user,
            reason=" ".join(reason).removeprefix("connection failed: ") or type(e).__name__,
        )
    if row is not None:
        return None
    return say(
        "error: PostgreSQL schema {schema!r} does not exist in database {dbname!r} on"
        ' {host}:{port}: create it (CREATE SCHEMA "{schema}";) or correct ?schema='
        " in LEDGER_DATABASE_URL",
        schema=db.schema,
        dbname=db.dbname,
        host=db.host,
        port=db.port,
    )


# Commands that never open the store (clients of a running server).
NO_STORE = frozenset({"import"})


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from uvicorn.config import LOG_LEVELS

    from api.logs import configure_logging
    from ledger.database import parse_database_url

    base = f"http://{args.host}:{args.port}"
    db = parse_database_url(settings.database_url)
    if args.workers > 1 and db.kind == "sqlite":
        _err(
            f"error: --workers {args.workers} needs PostgreSQL: on SQLite one server process"
            " owns the database file (a command does not check again the records it only"
            " read, which another process may have changed meanwhile); run one process, or"
            " set LEDGER_DATABASE_URL to postgresql://... (docs/operations.md)"
        )
        return 2
    settings, problem = _serve_projections(settings)
    if problem:
        _err(problem)
        return 2
    # One handler for every record of the process, ours and uvicorn's; our access lines
    # replace uvicorn's (docs/observability.md). The --workers processes and the views'
    # process log the same way (WORKER_LOG_ENV).
    log_format = args.log_format or ("text" if sys.stderr.isatty() else "json")
    os.environ[WORKER_LOG_ENV] = f"{log_format}:{LOG_LEVELS[args.log_level]}"
    configure_logging(log_format, LOG_LEVELS[args.log_level])
    feeder = None
    if settings.projections == "process":
        from api.feeder import Feeder, child_argv

        feeder = Feeder(child_argv())
        try:
            feeder.start()
        except OSError as e:
            _err(say("error: cannot start the views' process: {reason}", reason=str(e)))
            return 1
        if args.workers > 1:
            feeder.release()  # else once the server has started (api/app.py, its lifespan)
    try:
        _serve_banner(args, db.display, base, _views_line(settings, feeder))
        return _run_server(args, settings, feeder)
    finally:
        if feeder is not None:
            feeder.stop()


def _serve_projections(settings: Settings) -> tuple[Settings, str | None]:
    """`serve`'s settings with its default LEDGER_PROJECTIONS (process) when that is not set,
    and the wake address of the views' process; or the line that says the value is wrong."""
    import dataclasses

    from api.feeder import WAKE_ENV, wake_address
    from api.settings import PROJECTION_MODES, SERVE_PROJECTIONS

    mode = os.environ.get("LEDGER_PROJECTIONS", "").strip() or SERVE_PROJECTIONS
    if mode not in PROJECTION_MODES:
        return settings, say(
            "error: LEDGER_PROJECTIONS is {value!r}; it is one of {modes}",
            value=mode,
            modes=", ".join(PROJECTION_MODES),
        )
    os.environ["LEDGER_PROJECTIONS"] = mode  # the --workers processes read it
    wake = wake_address(os.getpid()) if mode == "process" else None
    if wake is not None:
        os.environ[WAKE_ENV] = wake  # the views' process and the --workers processes read it
    return dataclasses.replace(settings, projections=mode, projections_wake=wake), None


def _views_line(settings: Settings, feeder: Any) -> str:
    """The banner's line on where the read models are fed."""
    if feeder is not None:
        return say(
            "views      fed in their own process, pid {pid} (LEDGER_PROJECTIONS=process;"
            " restarted if it dies)",
            pid=feeder.pid,
        )
    if settings.projections == "off":
        return say(
            "views      fed by `customs-ledger project --follow` processes (LEDGER_PROJECTIONS=off)"
        )
    return say("views      fed in this server process (LEDGER_PROJECTIONS=inline)")


def _serve_banner(args: argparse.Namespace, display: str, base: str, views: str) -> None:
    workers = f", {args.workers} worker processes" if args.workers > 1 else ""
    _err(
        f"customs-ledger on {display}{workers}\n"
        f"  API        {base}/v1   (e.g. {base}/v1/zones)\n"
        f"  API docs   {base}/docs  (OpenAPI: {base}/openapi.json)\n"
        f"  trace UI   {base}/ui/trace?ref=<a declaration, train, container, lot ...>\n"
        f"  dashboard  {base}/ui/dashboard  (officers and auditors; an enterprise sees its own)\n"
        f"  health     {base}/healthz\n"
        f"  metrics    {base}/metrics  (Prometheus; keep it on a private interface)\n"
        f"  {views}\n"
        "  first token: .venv/bin/customs-ledger keys issue --role admin --name admin --rotate\n"
        "  (run it in another shell; it prints only the token)"
    )


def _run_server(args: argparse.Namespace, settings: Settings, feeder: Any) -> int:
    import uvicorn

    from api.app import create_app

    options: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "log_level": args.log_level,
        "log_config": None,
        "access_log": False,
        # SIGTERM: requests in flight get this long, then the server closes them and stops
        # (its background work stops at the next page): a server is gone within 10 s.
        "timeout_graceful_shutdown": SHUTDOWN_GRACE_SECONDS,
        # The client's address is the peer's; X-Forwarded-For counts only from the proxies in
        # LEDGER_TRUSTED_PROXIES (api/ratelimit.py), never by uvicorn's default (127.0.0.1).
        "proxy_headers": False,
    }
    if args.workers > 1:
        # uvicorn spawns each worker as a new interpreter that builds its own app from the
        # environment (LEDGER_*), through `worker_app`; the parent only watches them (and the
        # views' process, which it started).
        uvicorn.run("api.cli:worker_app", factory=True, workers=args.workers, **options)
        return 0
    app = create_app(settings, serving=True)
    app.state.feeder = feeder  # /healthz and /metrics name the views' process
    uvicorn.run(app, **options)
    return 0


SHUTDOWN_GRACE_SECONDS = 5

# `serve --workers N` hands each worker process its log format and level in this variable.
WORKER_LOG_ENV = "CUSTOMS_LEDGER_WORKER_LOG"


def worker_app() -> Any:
    """The app of one `serve --workers N` process: logging as the parent's, settings from
    the environment."""
    from api.app import create_app
    from api.logs import configure_logging

    log_format, _, level = os.environ.get(WORKER_LOG_ENV, "json:20").partition(":")
    configure_logging(log_format, int(level))
    return create_app(Settings.from_env(), serving=True)


def cli_actor() -> Any:
    """Who runs a `keys` command, as its events record it: the operating-system user (the
    holder of the database credentials) and the host."""
    import getpass
    import socket

    from domain.events import Actor

    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no login name, no passwd entry (a container)
        user = f"uid-{os.getuid()}"
    return Actor(name=f"{user}@{socket.gethostname()}"[:200], role="cli")


def cmd_keys(args: argparse.Namespace, settings: Settings) -> int:
    from api.services import ReferenceFileError
    from ledger.keys import ApiKeys, KeyError_

    app = _open_app(settings)
    try:
        keys = ApiKeys(app)
        actor = cli_actor()
        if keys.adopted:
            _err(f"recorded {len(keys.adopted)} keys of before #14 into the log (upgrade)")
        if args.keys_command == "issue":
            return _issue_key(keys, args, settings, actor)
        elif args.keys_command == "rotate":
            print(keys.rotate(args.name, actor=actor))
            _err(f"rotated key {args.name!r}: the new token is above, the old one is refused")
        elif args.keys_command == "revoke":
            keys.revoke(args.name, actor=actor)
            _err(f"revoked key {args.name!r}")
        elif args.keys_command == "rebuild":
            changed = keys.rebuild()
            _err(
                f"the key table is the log's again; rows changed: {', '.join(changed)}"
                if changed
                else "the key table was already exactly the log's"
            )
        else:
            for k in keys.list():
                state = f"revoked {k.revoked_at}" if k.revoked_at else "active"
                bound = k.enterprise or k.zone or ""
                print(f"{k.name}\t{k.role}\t{bound}\t{state}")
    except (KeyError_, ReferenceFileError) as e:
        _err(f"error: {e}")
        return 2
    finally:
        app.close()
    return 0


def _issue_key(keys: Any, args: argparse.Namespace, settings: Settings, actor: Any) -> int:
    """`keys issue`: a new key; a name that exists is exit 2, unless `--rotate` asks for a new
    token of that key (the same role and binding, as `keys rotate NAME`)."""
    from api.services import load_zones

    existing = next((k for k in keys.list() if k.name == args.name), None)
    if existing is not None:
        wanted = (args.role, args.enterprise, args.zone)
        if not args.rotate:
            _err(
                f"error: a key named {args.name!r} exists already ({existing.role});"
                f" `keys issue --rotate ...` or `keys rotate {args.name}` prints a new token"
                " for it, or choose another --name"
            )
            return 2
        if (existing.role, existing.enterprise, existing.zone) != wanted:
            bound = existing.enterprise or existing.zone or "no binding"
            _err(
                f"error: the key {args.name!r} has role {existing.role} ({bound}); --rotate"
                " keeps a key's role and binding: give the same ones, or another --name"
            )
            return 2
        print(keys.rotate(args.name, actor=actor))
        _err(f"rotated key {args.name!r}: the new token is above, the old one is refused")
        return 0
    token = keys.issue(
        name=args.name,
        role=args.role,
        enterprise=args.enterprise,
        zone=args.zone,
        zones=set(load_zones(settings.zones_file)),
        actor=actor,
    )
    print(token)
    _err(f"issued {args.role} key {args.name!r}; only its hash is stored")
    return 0


def cmd_verify(args: argparse.Namespace, settings: Settings) -> int:
    from ledger import audit

    app = _open_app(settings)
    against = None
    if args.against:
        try:
            against = audit.parse_digest(args.against)
        except ValueError as e:
            _err(say("error: {detail}", detail=str(e)))
            return 2
    show = sys.stderr.isatty()
    started = time.monotonic()

    def progress(n: int) -> None:
        if show:
            rate = n / max(time.monotonic() - started, 1e-9)
            line = say("verified {n:,} events ({rate:,.0f}/s)", n=n, rate=rate)
            print(f"\r{line}", end="", file=sys.stderr, flush=True)

    try:
        from ledger.key_audit import KeyCheck
        from ledger.keys import ApiKeys

        keys = KeyCheck(ApiKeys(app).table, app.log).failures  # the key table against the log
        report = audit.verify(app.log, against=against, progress=progress, keys=keys)
        again = _reassessed(app, settings) if args.assessments else None
    finally:
        app.close()
    if show:
        print(file=sys.stderr)
    print(say("ok: true") if report.ok else say("ok: false"))
    print(say("events_checked: {n}", n=report.events_checked))
    print(say("head_sequence: {sequence}", sequence=report.head_sequence))
    print(say("head_position: {position}", position=report.head_position))
    print(say("head_hash: {hash}", hash=report.head_hash))
    for f in report.failures:
        # The reason is a code (docs/audit.md); the detail, the ledger's words, one or more.
        problem = _verify_detail(f.detail)
        if f.sequence is None:  # about the log as a whole, or a key row the log does not have
            print(say("FAILED: {reason}: {problem}", reason=f.reason, problem=problem))
            continue
        print(
            say(
                "FAILED at sequence {sequence} (position {position}, stream {stream} "
                "v{version}): {reason}: {problem}",
                sequence=f.sequence,
                position=f.position,
                stream=f.stream_id,
                version=f.version,
                reason=f.reason,
                problem=problem,
            )
        )
    if again is not None:
        print(say("assessments: {n}", n=again.assessments))
        print(say("assessments_reproduced: {n}", n=again.reproduced))
        print(say("assessments_before_publications: {n}", n=again.without_tables))
        for difference in again.differences:
            print(say("FAILED reassessment at {difference}", difference=difference))
        if again.differences:
            return 1
    return 0 if report.ok else 1


# Others' words that the commands quote, as templates for the catalog (api/i18n_extract.py
# reads every tuple of this name), matched as an HTTP answer's messages are: the ledger's that
# `verify` prints after a failure's reason (ledger/audit.py, ledger/key_audit.py,
# ledger/key_table.py) and its refusal of a digest (tests/unit/test_cli_language.py makes each
# of these failures and checks its Chinese), and the operating system's for a file that cannot
# be read (`reference load`, `import`).
QUOTED_MESSAGES = (
    "a digest is SEQUENCE:HASH with a SEQUENCE of 1 or more, got {text}",
    "a digest's HASH is 64 hex digits (SHA-256), got {hexhash}",
    "sequence {sequence} where {expected} was due",
    "the stored hash is not this event's link to the one before: its content or order changed",
    "recorded_at {recorded_at} is before the previous {last_time}",
    "a stored value has the wrong type or form: {error}",
    "the digest names event {sequence}, the log ends at {head}: its end was cut",
    "no event has the digest's sequence {sequence}",
    "event {sequence} has hash {hash}, the published digest says {published}: the log was"
    " rewritten up to there",
    "key {name} (its last event: sequence {sequence}): {detail}",
    "key {name}: {detail}",
    "the log has it, the key table has no row for it",
    "the key table has it, the log has no such key",
    "its stream in the log has gaps",
    "its events in the log cannot be read ({error})",
    "the key table's {columns} differs from the log's",
    "the key table's {columns} differ from the log's",
    "No such file or directory",
    "Permission denied",
    "Is a directory",
)


def _verify_detail(detail: str) -> str:
    """A failure's detail in the command's language: each of its problems (`; ` between
    them when one event has several) translated as the ledger's words."""
    if i18n.command_language() == "en":
        return detail
    parts = (i18n.translate(part, i18n.command_language()) for part in detail.split("; "))
    return "\N{FULLWIDTH SEMICOLON}".join(parts)


def _reassessed(app: Any, settings: Settings) -> Any:
    """Every assessment computed again from the log's own publications (ledger/reassess.py)."""
    from api.services import load_clearance_rules
    from ledger.reassess import reassess

    return reassess(app.log, load_clearance_rules(settings).duties)


def cmd_project(args: argparse.Namespace, settings: Settings) -> int:
    if args.supervised:
        from api.feeder import wait_for_go

        if not wait_for_go():  # nothing read yet: the server ended before it started
            return 0
    from api.logs import configure_logging
    from api.services import Services

    if args.supervised:
        # `serve`'s views process (api/feeder.py): it logs as the server does.
        log_format, _, level = os.environ.get(WORKER_LOG_ENV, "json:20").partition(":")
        configure_logging(log_format, int(level))
    elif args.follow:
        # A long-running worker: its runner's messages (e.g. "this process feeds the views
        # now") go to stderr like the server's, JSON unless stderr is a terminal.
        configure_logging("text" if sys.stderr.isatty() else "json", logging.INFO)
    services = Services.build(settings)
    runner = services.runner
    if args.batch_size:
        runner.batch_size = args.batch_size
    crash_after = os.environ.get("LEDGER_TEST_CRASH_AFTER_EVENTS")
    if crash_after:
        # Test hook: die like a SIGKILL in the middle of a batch, before its commit.
        left = [int(crash_after)]

        def countdown() -> None:
            left[0] -= 1
            if left[0] <= 0:
                os._exit(137)

        runner.after_event = countdown
    try:
        if not args.follow:
            n = runner.catch_up()
            _err(f"applied {n} events; views at position {runner.position}")
            return 0
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        wakes = _supervised(settings, runner, stop) if args.supervised else None
        runner.start()
        # Receipts are delivered where the views are fed (docs/receipts.md): here, when the
        # servers leave the views to this process (LEDGER_PROJECTIONS=off or process).
        services.dispatcher.start()
        if not args.supervised:
            _err(f"following the log on {services.database.display}; Ctrl-C stops")
        try:
            while not stop.wait(1.0):
                pass
        except KeyboardInterrupt:
            pass
        if wakes is not None:
            wakes.close()
        return 0
    finally:
        services.close()


def _supervised(settings: Settings, runner: Any, stop: threading.Event) -> Any:
    """`project --follow --supervised`, the views process of `serve` (api/feeder.py): stop
    when the server ends (stdin closes), wake at each of its writes; the wake-ups' receiver
    (None: none, the runner polls every 50 ms instead)."""
    from api.feeder import WakeReceiver, watch_parent

    watch_parent(stop.set)
    if settings.projections_wake is None:
        runner.poll_interval = 0.05
        return None
    try:
        return WakeReceiver(settings.projections_wake, runner.wake)
    except OSError as e:
        logging.getLogger("customs_ledger.feeder").warning(
            "views process: no wake-ups (%s); polling the log every 50 ms", e
        )
        runner.poll_interval = 0.05
        return None


TRACE_DESCRIPTION = """\
The lots a reference touched (a declaration id or number, a transport reference, a container,
a gate note, a lot id, an e-commerce order number), the lots upstream and/or downstream of them
and the chain of what happened to each, as GET /v1/trace answers it, but for every tenant (the
command runs with the database's credentials). --epcis prints it as GS1 EPCIS 2.0 JSON-LD."""
TRACE_EPILOG = """exit codes: 0 the trace was printed; 1 no goods found for REF; 2 bad arguments.
It reads the read models (views) of LEDGER_DATABASE_URL as they are and never feeds them: when
they are behind the log, a warning on stderr says both positions."""
# How each paper of an event reads in the chain: a gate note as such, a movement's own paper
# as its kind names it (domain/movement_kinds.py, read when a chain is printed).
PAPER_LABELS = {"gate_note": "gate note", "gate_pass": "gate pass"}


def cmd_trace(args: argparse.Namespace, settings: Settings) -> int:
    import msgspec

    from api.services import Services
    from domain.assessment import ClearanceRules
    from domain.duty_tables import DEFAULT_TABLES
    from domain.risk_rules import DEFAULT_RULES
    from domain.scope import Scope
    from projections.epcis import declaration_facts, encode, epcis_document

    everyone = Scope(role="auditor")  # the command reads for every tenant

    # A read-only command decides nothing: the built-in clearance rules are never used.
    services = Services.build(settings, ClearanceRules(risk=DEFAULT_RULES, duties=DEFAULT_TABLES))
    try:
        head = services.app.log.head()
        log_position = head.position if head else 0
        views_position = services.runner.tracked_position()
        if views_position < log_position:
            _err(
                say(
                    "warning: the views reflect the log up to position {views}, the log"
                    " is at {log}: later events are missing from this trace (the server"
                    " or `customs-ledger project` brings the views up to date)",
                    views=views_position,
                    log=log_position,
                )
            )
        trace = services.trace.trace(
            args.ref, scope=everyone, direction=args.direction, limit=args.limit
        )
        if trace is None:
            _err(say("no goods found for {ref!r}", ref=args.ref))
            return 1
        if args.epcis:
            document = epcis_document(
                trace, declarations=declaration_facts(services.declarations, trace)
            )
            print(msgspec.json.format(encode(document), indent=2).decode())
        else:
            print("\n".join(_trace_lines(trace, args.limit)))
        return 0
    finally:
        services.close()


def _trace_lines(trace: Any, limit: int) -> list[str]:
    """The chain as a person reads it: what matched, the zones, one line per event, the edges.
    In Chinese the event types, edge kinds and roles read as the trace viewer writes them;
    zones, units, statuses and numbers stay as they are."""
    from domain.movement_kinds import paper_labels

    labels = {**PAPER_LABELS, **paper_labels()}
    words = _paper_words()
    codes = _trace_codes()
    numbers = {d["id"]: d["number"] for e in trace.events for d in e.documents if d.get("number")}
    numbers |= {p.declaration_id: p.declaration_no for p in trace.parcels}
    units = {lot.lot_id: lot.unit for lot in trace.lots}
    matched = ", ".join(
        f"{words.get(m.kind, m.kind)} {numbers.get(m.id, m.id)}" for m in trace.matched
    )
    lines = [
        _trace_heading(trace.ref, trace.direction),
        say("matched: {matched}", matched=matched),
        say("zones: {zones}", zones=", ".join(trace.zones)),
        say(
            "{lots} lots, {events} events, {edges} edges",
            lots=len(trace.lots),
            events=len(trace.events),
            edges=len(trace.edges),
        ),
        "",
    ]
    # Event types line up (`transferred_out` is wider than the usual ten; a Chinese character
    # takes two columns of a terminal).
    width = max([10, *(_columns(codes.get(e.type, e.type)) for e in trace.events)])
    for e in trace.events:
        papers = "; ".join(
            f"{words.get(label, label)} {d.get('number') or d['id']}"
            for d in e.documents
            for label in [labels.get(d["kind"], d["kind"])]
        )
        when = e.occurred_at.isoformat(sep=" ", timespec="seconds")
        parts = [
            f"{when}  {e.zone:<5} {_padded(codes.get(e.type, e.type), width)} "
            + say("lot {lot}", lot=e.lot_id[:8]),
            f"{e.quantity:+f} {units.get(e.lot_id, '')}".rstrip(),
            papers,
            say(
                "by {name} ({role})", name=e.actor.name, role=codes.get(e.actor.role, e.actor.role)
            ),
        ]
        lines.append("  ".join(p for p in parts if p))
    lines += ["", say("edges:") if trace.edges else say("edges: none")]
    for edge in trace.edges:
        quantity = (
            "" if edge.quantity is None else f" {edge.quantity:f} {units.get(edge.from_, '')}"
        )
        lines.append(
            say(
                "  lot {parent} -> lot {child}  {kind}{quantity}",
                parent=edge.from_[:8],
                child=edge.to[:8],
                kind=codes.get(edge.kind, edge.kind),
                quantity=quantity,
            )
        )
    lines += _parcel_lines(trace.parcels)
    if trace.truncated:
        lines.append(
            say("truncated: the answer stopped at {limit} lots (--limit raises it)", limit=limit)
        )
    else:
        lines.append(say("truncated: no"))
    return lines


def _trace_heading(ref: str, direction: str) -> str:
    if direction == "upstream":
        return say("trace of {ref} (upstream)", ref=ref)
    if direction == "downstream":
        return say("trace of {ref} (downstream)", ref=ref)
    return say("trace of {ref} (both)", ref=ref)


def _columns(text: str) -> int:
    """How many columns of a terminal `text` takes (a wide character, as CJK, takes two)."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _padded(text: str, width: int) -> str:
    return text + " " * (width - _columns(text))


def _trace_codes() -> dict[str, str]:
    """How an event type, an edge kind or a role reads in the command's language (English:
    the code itself; Chinese: as the trace viewer, api/static/trace-labels.js, writes it);
    another code stays as it is."""
    return {
        "admitted": say("admitted"),
        "exited": say("exited"),
        "dispatched": say("dispatched"),
        "received": say("received"),
        "produced": say("produced"),
        "consumed": say("consumed"),
        "surplus": say("surplus"),
        "adjusted": say("adjusted"),
        "transferred_in": say("transferred_in"),
        "transferred_out": say("transferred_out"),
        "destroyed": say("destroyed"),
        "lost": say("lost"),
        "transfer": say("transfer"),
        "processing": say("processing"),
        "split": say("split"),
        "return": say("return"),
        "admin": say("admin"),
        "enterprise": say("enterprise"),
        "operator": say("operator"),
        "officer": say("officer"),
        "auditor": say("auditor"),
    }


def _paper_words() -> dict[str, str]:
    """How a paper or a match reads in the command's language, by the word English prints
    (the kind in `matched:`, the label in an event's papers); another word stays as it is."""
    return {
        "declaration": say("declaration"),
        "transport": say("transport"),
        "container": say("container"),
        "order": say("order"),
        "waybill": say("waybill"),
        "checklist": say("checklist"),
        "gate_note": say("gate_note"),
        "gate note": say("gate note"),
        "gate_pass": say("gate_pass"),
        "gate pass": say("gate pass"),
        "lot": say("lot"),
        "operation": say("operation"),
        "reason": say("reason"),
    }


def _parcel_lines(parcels: list[Any]) -> list[str]:
    """The 9610 parcels of a trace, one line each (none: no lines at all)."""
    if not parcels:
        return []
    lines = [say("parcels (declared and cleared one by one, in no book):")]
    for p in parcels:
        when = p.occurred_at.isoformat(sep=" ", timespec="seconds")
        lines.append(
            say(
                "  {when}  {zone:<5} {trade_mode} declaration {declaration_no} {status}"
                "  transport {mode} {reference}  order {order_no}  waybill {waybill_no}",
                when=when,
                zone=p.zone,
                trade_mode=p.trade_mode,
                declaration_no=p.declaration_no,
                status=p.status,
                mode=p.transport.mode,
                reference=p.transport.reference,
                order_no=p.order_no,
                waybill_no=p.waybill_no,
            )
        )
    return lines


def _worker_count(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 64:
        raise argparse.ArgumentTypeError("a whole number from 1 to 64")
    return int(text)


def _lot_limit(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 5000:
        raise argparse.ArgumentTypeError("a whole number from 1 to 5000")
    return int(text)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("customs-ledger")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="customs-ledger", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument(
        "--lang",
        choices=i18n.LANGUAGES,
        help="the language of what trace, verify, replay, reference load and import print for"
        " a person (default: the locale's, LC_ALL, LC_MESSAGES, LANG, LANGUAGE; else en);"
        " --help and usage errors are in English",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the HTTP API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )
    serve.add_argument(
        "--workers",
        type=_worker_count,
        default=1,
        help="server processes sharing the port (PostgreSQL only when more than 1)",
    )
    serve.add_argument(
        "--log-format",
        choices=["json", "text"],
        help="json: one JSON object per line; text: for a person (default: text on a"
        " terminal, json otherwise)",
    )

    keys = sub.add_parser("keys", help="issue, rotate, revoke or list API keys")
    ksub = keys.add_subparsers(dest="keys_command", required=True)
    issue = ksub.add_parser("issue", help="print a new token on stdout")
    issue.add_argument(
        "--role", required=True, choices=["admin", "enterprise", "operator", "officer", "auditor"]
    )
    issue.add_argument("--enterprise", help="USCC, for enterprise keys")
    issue.add_argument("--zone", help="zone code, for operator keys")
    issue.add_argument("--name", required=True)
    issue.add_argument(
        "--rotate",
        action="store_true",
        help="when the key NAME exists (same role and binding): print a new token for it",
    )
    rotate = ksub.add_parser(
        "rotate", help="print a new token for a key on stdout; its old token stops working"
    )
    rotate.add_argument("name")
    revoke = ksub.add_parser("revoke", help="revoke a key at once")
    revoke.add_argument("name")
    ksub.add_parser("list", help="list keys (never tokens)")
    ksub.add_parser(
        "rebuild", help="rewrite the key table from the log (after a restore or tampering)"
    )

    verify = sub.add_parser("verify", help="check the tamper-evidence chain")
    verify.add_argument("--against", metavar="SEQUENCE:HASH", help="a published digest")
    verify.add_argument(
        "--assessments",
        action="store_true",
        help="also compute every assessment again from the tables it records, and compare",
    )

    project = sub.add_parser("project", help="run the read-side projections")
    project.add_argument("--follow", action="store_true", help="keep following the log")
    project.add_argument("--batch-size", type=int, default=0, help="events per transaction")
    project.add_argument(
        "--supervised",
        action="store_true",
        help="run as the views process `serve` starts (LEDGER_PROJECTIONS=process): stop when"
        " stdin closes, ignore SIGINT",
    )

    trace = sub.add_parser(
        "trace",
        help="where goods came from and went, from any reference",
        description=TRACE_DESCRIPTION,
        epilog=TRACE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    trace.add_argument("ref", help="the reference to start from")
    trace.add_argument(
        "--direction",
        choices=["both", "upstream", "downstream"],
        default="both",
        help="which way to walk from the matched lots (default: both)",
    )
    trace.add_argument("--epcis", action="store_true", help="print a GS1 EPCIS 2.0 document")
    trace.add_argument(
        "--limit", type=_lot_limit, default=500, help="most lots in the answer (1-5000)"
    )
    cli_log.add_parsers(sub)  # export-events, import-events
    cli_import.configure(sub)  # import FILE --kind K: a spreadsheet through POST /v1/imports
    cli_privacy.configure(
        sub.add_parser("privacy", help="buyers' personal data: erase-buyer ID --reason TEXT")
    )
    cli_risk.configure(sub.add_parser("risk", help="the risk engine: rotate-seed"))
    cli_subscriptions.configure(
        sub.add_parser(
            "subscriptions", help="webhook subscriptions: list, pause, resume, redeliver"
        )
    )
    cli_reference.configure(
        sub.add_parser("reference", help="publish reference tables from files, export them")
    )
    cli_replay.configure(
        sub.add_parser(
            "replay",
            help="rebuild every read model from the log and compare with the live views",
            description=cli_replay.DESCRIPTION,
            epilog=cli_replay.EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    i18n.set_command_language(args.lang or i18n.from_environment(os.environ))
    settings = Settings.from_env()
    handlers = {
        "serve": cmd_serve,
        "keys": cmd_keys,
        "verify": cmd_verify,
        "project": cmd_project,
        "trace": cmd_trace,
        "export-events": cli_log.cmd_export_events,
        "import-events": cli_log.cmd_import_events,
        "replay": cli_replay.cmd_replay,
        "privacy": cli_privacy.cmd_privacy,
        "risk": cli_risk.cmd_risk,
        "subscriptions": cli_subscriptions.cmd_subscriptions,
        "reference": cli_reference.cmd_reference,
        "import": cli_import.cmd_import,
    }
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    problem = None if args.command in NO_STORE else store_problem(settings)
    if problem:
        _err(problem)
        return 2
    return handlers[args.command](args, settings)


if __name__ == "__main__":
    sys.exit(main())
