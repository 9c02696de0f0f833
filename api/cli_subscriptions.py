"""`customs-ledger subscriptions list|pause|resume|redeliver`: the webhook subscriptions as the
ledger's operator sees them (docs/receipts.md), on the database of LEDGER_DATABASE_URL."""

from __future__ import annotations

import argparse
import getpass
import sys
import time
from typing import Any

from api.settings import Settings

EPILOG = (
    "exit codes: 0 done; 1 refused (unknown subscription, or not in a state for it);"
    " 2 bad arguments"
)


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="subscriptions_command", required=True)
    sub.add_parser("list", help="every subscription with its deliveries' state", epilog=EPILOG)
    for name, text in (("pause", "stop sending (the backlog is kept)"), ("resume", "send again")):
        p = sub.add_parser(name, help=text, epilog=EPILOG)
        p.add_argument("subscription", help="the subscription's id")
        p.add_argument("--actor", help="who does it, for the log (default cli:<user>)")
    redeliver = sub.add_parser(
        "redeliver", help="send its receipts again from a log position", epilog=EPILOG
    )
    redeliver.add_argument("subscription", help="the subscription's id")
    redeliver.add_argument(
        "--from", dest="from_position", type=int, required=True, metavar="POSITION"
    )
    redeliver.add_argument("--actor", help="who does it, for the log (default cli:<user>)")


def cmd_subscriptions(args: argparse.Namespace, settings: Settings) -> int:
    from api.dispatch import delivery_figures
    from api.services import Services
    from domain.errors import LedgerError
    from domain.events import Actor
    from domain.subscriptions import Redeliver, SubscriptionStatus

    svc = Services.build(settings)
    try:
        command = args.subscriptions_command
        if command == "list":  # the views as the server keeps them (it feeds them)
            return _list(svc, delivery_figures(svc.views, time.time()))
        actor = Actor(name=args.actor or f"cli:{getpass.getuser()}", role="admin")
        try:
            if command == "redeliver":
                cmd = Redeliver(from_position=args.from_position)
                outcome = svc.ledger.redeliver(args.subscription, cmd, actor, None)
            else:
                status: SubscriptionStatus = "paused" if command == "pause" else "active"
                outcome = svc.ledger.set_subscription_status(args.subscription, status, actor, None)
        except LedgerError as e:
            print(f"refused: {e}", file=sys.stderr)
            return 1
        view: Any = outcome.body
        print(f"subscription {view.id}: {view.status} (log position {outcome.position})")
        return 0
    finally:
        svc.close()


def _list(svc: Any, figures: dict[str, Any]) -> int:
    with svc.views.read() as cur:
        cur.execute(
            "SELECT s.id, s.owner_role, s.owner_enterprise, s.url, s.events, s.status,"
            " d.cursor, d.failing FROM view_subscriptions s"
            " LEFT JOIN dispatch_state d ON d.subscription_id = s.id ORDER BY s.created_position"
        )
        rows = cur.fetchall()
    if not rows:
        print("no subscriptions")
    for r in rows:
        owner = r["owner_enterprise"] or r["owner_role"]
        status = "failing" if r["failing"] else r["status"]
        waiting, lag = figures["backlog"].get(str(r["id"]), (0, 0.0))
        delivered = r["cursor"] if r["cursor"] is not None else "-"
        print(
            f"{r['id']}  {status:8}  {owner:18}  delivered through {delivered}, {waiting} waiting"
            f" ({lag:.0f} s)  {r['url']}  {r['events']}"
        )
    return 0
