"""`customs-ledger risk rotate-seed`: replace the secret random-selection seed.

The seed (ledger/selection_seed.py) is made on first start and kept beside the log, outside
the events and their exports; this command, run by whoever administers the database, replaces
it. It never prints a seed. Draws already recorded keep their values (each decision records
its draw); declarations submitted afterwards draw with the new seed on every server within
ledger/selection_seed.py REFRESH_SECONDS.
"""

from __future__ import annotations

import argparse
import sys

from api.settings import Settings

DESCRIPTION = """\
Replace the random-selection seed with a new secret one (256 bits from the secrets module).
The seed is never shown. Recorded draws keep their values; later declarations draw with the
new seed on every server within 10 seconds, without a restart."""
EPILOG = """exit codes: 0 rotated; 2 bad arguments or an unusable database."""


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="risk_command", required=True)
    sub.add_parser(
        "rotate-seed",
        help="replace the secret random-selection seed (never printed)",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def cmd_risk(args: argparse.Namespace, settings: Settings) -> int:
    from ledger.application import LedgerApplication
    from ledger.database import parse_database_url
    from ledger.selection_seed import REFRESH_SECONDS, SelectionSeed

    database = parse_database_url(settings.database_url)
    app = LedgerApplication(database)
    try:
        seeds = SelectionSeed.beside(database, app.factory.datastore)  # type: ignore[attr-defined]
        try:
            at = seeds.rotate()
        finally:
            seeds.close()
    finally:
        app.close()
    print(
        f"selection seed rotated at {at} ({database.display}); recorded draws keep their values;"
        f" servers draw with the new seed within {REFRESH_SECONDS:g} s",
        file=sys.stderr,
    )
    return 0
