"""`customs-ledger privacy erase-buyer ID --reason TEXT`: erase a buyer's personal data.

The buyer's retail lists keep their identity number, name, payer and consignee sealed with the
buyer's data key (ledger/buyer_keys.py); erasing the buyer records `BuyerErased` (by
pseudonym, with the reason and who) and then destroys the key: those fields read `[erased]`
from then on, for everyone, in every process, while the log, its chain and every replay stay
as they were (docs/decisions/0017-buyer-data-sealed-per-buyer.md).
"""

from __future__ import annotations

import argparse
import getpass
import sys

from api.settings import Settings

DESCRIPTION = """\
Erase a buyer: record the erasure in the log (BuyerErased, naming the buyer by pseudonym only,
with the reason and the actor), then destroy the buyer's data keys, so that the identity
number, name, payer and consignee of every retail list they sealed read [erased] from then on.
The chain still verifies and a replay still equals the live views. Refused for a buyer no list
names, one already erased, one whose lists were all written before sealing (in clear: see
docs/security.md), and before the retention period ends (LEDGER_BUYER_RETENTION_YEARS after
the buyer's last list) unless --force, which the event records. Asks nothing."""
EPILOG = """\
exit codes: 0 erased; 1 refused (nothing written, nothing destroyed); 2 bad arguments."""


def _err(*parts: object) -> None:
    print(*parts, file=sys.stderr)


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="privacy_command", required=True)
    erase = sub.add_parser(
        "erase-buyer",
        help="destroy a buyer's data key (the erasure is an event)",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    erase.add_argument("resident_id", metavar="ID", help="the buyer's resident identity number")
    erase.add_argument("--reason", required=True, help="why (recorded in the event)")
    erase.add_argument(
        "--force",
        action="store_true",
        help="erase before the retention period ends (recorded in the event)",
    )
    erase.add_argument(
        "--actor",
        help="who erases, as the event records it (default: cli:<the system user>)",
    )


def cmd_privacy(args: argparse.Namespace, settings: Settings) -> int:
    from api.services import close_admin_ledger, open_admin_ledger
    from domain import values
    from domain.declaration import SHANGHAI
    from domain.errors import LedgerError, ValidationFailed
    from domain.events import Actor
    from domain.privacy import mask_id
    from ledger.buyer_keys import KeyStoreError
    from ledger.erasure import Erasure, plan

    try:
        number = values.resident_id("ID", args.resident_id.strip())
        actor = Actor(name=args.actor or f"cli:{getpass.getuser()}", role="admin")
        values.text("--actor", actor.name, max_length=64)
        values.text("--reason", args.reason)
    except ValidationFailed as e:
        _err(f"error: {e}")
        return 2
    try:
        ledger = open_admin_ledger(settings)
    except KeyStoreError as e:
        _err(f"error: {e}")
        return 2
    app, vault = ledger.app, ledger.vault
    shown = mask_id(number)
    try:
        today = ledger.clock().astimezone(SHANGHAI).date()
        years = settings.buyer_retention_years
        found = plan(app, vault, number, today=today, retention_years=years)
        done = ledger.erase_buyer(
            Erasure(plan=found, reason=args.reason, force=args.force, actor=actor)
        )
    except (LedgerError, KeyStoreError) as e:
        _err(f"refused: buyer {shown}: {e}")
        return 1
    finally:
        close_admin_ledger(ledger)
    keys = ", ".join(str(g) for g in found.live)
    forced = f" before its retention period ends ({found.retention_ends}, forced)"
    print(
        f"erased buyer {shown} (pseudonym {found.pseudonym}){forced if done.forced else ''}:"
        f" BuyerErased recorded at position {done.position} by {actor.name};"
        f" {done.keys_destroyed} data key(s) destroyed (generation {keys});"
        f" {found.sealed_lists} sealed retail list(s) now read [erased]"
    )
    if found.legacy_lists:
        print(
            f"note: {found.legacy_lists} retail list(s) of this buyer were written before"
            " sealing and stay in the log in clear (docs/security.md)"
        )
    return 0
