"""The `customs-ledger` command: serve, keys, verify, project."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence

from api.settings import Settings


def _err(*parts: object) -> None:
    print(*parts, file=sys.stderr)


def _open_app(settings: Settings):  # type: ignore[no-untyped-def]
    from ledger.application import LedgerApplication
    from ledger.database import parse_database_url

    return LedgerApplication(parse_database_url(settings.database_url))


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from api.app import create_app
    from ledger.database import parse_database_url

    base = f"http://{args.host}:{args.port}"
    db = parse_database_url(settings.database_url)
    _err(
        f"customs-ledger on {db.display}\n"
        f"  API        {base}/v1   (e.g. {base}/v1/zones)\n"
        f"  API docs   {base}/docs  (OpenAPI: {base}/openapi.json)\n"
        f"  health     {base}/healthz\n"
        "  first token: .venv/bin/customs-ledger keys issue --role admin --name admin\n"
        "  (run it in another shell; it prints only the token)"
    )
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level=args.log_level)
    return 0


def cmd_keys(args: argparse.Namespace, settings: Settings) -> int:
    from ledger.keys import ApiKeys, KeyError_

    app = _open_app(settings)
    keys = ApiKeys(app)
    try:
        if args.keys_command == "issue":
            token = keys.issue(
                name=args.name, role=args.role, enterprise=args.enterprise, zone=args.zone
            )
            print(token)
            _err(f"issued {args.role} key {args.name!r}; only its hash is stored")
        elif args.keys_command == "revoke":
            keys.revoke(args.name)
            _err(f"revoked key {args.name!r}")
        else:
            for k in keys.list():
                state = f"revoked {k.revoked_at}" if k.revoked_at else "active"
                bound = k.enterprise or k.zone or ""
                print(f"{k.name}\t{k.role}\t{bound}\t{state}")
    except KeyError_ as e:
        _err(f"error: {e}")
        return 2
    finally:
        app.close()
    return 0


def cmd_verify(args: argparse.Namespace, settings: Settings) -> int:
    from ledger import audit

    app = _open_app(settings)
    against = None
    if args.against:
        try:
            against = audit.parse_digest(args.against)
        except ValueError as e:
            _err(f"error: {e}")
            return 2
    show = sys.stderr.isatty()
    started = time.monotonic()

    def progress(n: int) -> None:
        if show:
            rate = n / max(time.monotonic() - started, 1e-9)
            print(f"\rverified {n:,} events ({rate:,.0f}/s)", end="", file=sys.stderr, flush=True)

    try:
        report = audit.verify(app.log, against=against, progress=progress)
    finally:
        app.close()
    if show:
        print(file=sys.stderr)
    print(f"ok: {str(report.ok).lower()}")
    print(f"events_checked: {report.events_checked}")
    print(f"head_sequence: {report.head_sequence}")
    print(f"head_position: {report.head_position}")
    print(f"head_hash: {report.head_hash}")
    for f in report.failures:
        print(
            f"FAILED at sequence {f.sequence} (position {f.position}, stream {f.stream_id} "
            f"v{f.version}): {f.reason}: {f.detail}"
        )
    return 0 if report.ok else 1


def cmd_project(args: argparse.Namespace, settings: Settings) -> int:
    from api.services import Services

    services = Services.build(settings)
    runner = services.runner
    if args.batch_size:
        runner.batch_size = args.batch_size
    crash_after = os.environ.get("LEDGER_TEST_CRASH_AFTER_EVENTS")
    if crash_after:
        # Test hook: die like a SIGKILL in the middle of a batch, before its commit.
        runner.crash_after = int(crash_after)
        runner.on_crash = lambda: os._exit(137)
    try:
        if not args.follow:
            n = runner.catch_up()
            _err(f"applied {n} events; views at position {runner.position}")
            return 0
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        runner.start()
        _err(f"following the log on {services.database.display}; Ctrl-C stops")
        try:
            while not stop.wait(1.0):
                pass
        except KeyboardInterrupt:
            pass
        return 0
    finally:
        services.close()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="customs-ledger", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the HTTP API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--log-level", default="info")

    keys = sub.add_parser("keys", help="issue, revoke or list API keys")
    ksub = keys.add_subparsers(dest="keys_command", required=True)
    issue = ksub.add_parser("issue", help="print a new token on stdout")
    issue.add_argument(
        "--role", required=True, choices=["admin", "enterprise", "operator", "officer", "auditor"]
    )
    issue.add_argument("--enterprise", help="USCC, for enterprise keys")
    issue.add_argument("--zone", help="zone code, for operator keys")
    issue.add_argument("--name", required=True)
    revoke = ksub.add_parser("revoke", help="revoke a key at once")
    revoke.add_argument("name")
    ksub.add_parser("list", help="list keys (never tokens)")

    verify = sub.add_parser("verify", help="check the tamper-evidence chain")
    verify.add_argument("--against", metavar="SEQUENCE:HASH", help="a published digest")

    project = sub.add_parser("project", help="run the read-side projections")
    project.add_argument("--follow", action="store_true", help="keep following the log")
    project.add_argument("--batch-size", type=int, default=0, help="events per transaction")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = Settings.from_env()
    handlers = {"serve": cmd_serve, "keys": cmd_keys, "verify": cmd_verify, "project": cmd_project}
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    return handlers[args.command](args, settings)


if __name__ == "__main__":
    sys.exit(main())
