"""`customs-ledger reference load|export`: publish reference tables from files, and export them.

A file is CSV with a header row (docs/reference-data.md gives each kind's columns; examples in
docs/examples/) or, for any kind, JSON: one body of `POST /v1/reference/{kind}` or a list of
them. The risk rules are a nested rule set, not a table: JSON only. Every publication goes
through the same checks as the API; a file whose rows span several months or effective dates
makes one publication per month or date, each reported as it is recorded. What `load` prints
for a person is in the command's language (api/i18n.py `say`); `export` writes the table as it
is, in any language.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from datetime import date
from pathlib import Path
from typing import Any

from api import i18n
from api.i18n import say
from api.settings import Settings
from domain.reference_csv import FileProblem, Lines, export_text, read_bodies
from domain.reference_data import (
    KINDS,
    PublishExchangeRates,
    PublishPositiveList,
    PublishTariff,
)

LOAD = """\
Publish reference tables from FILE (CSV with a header row, or JSON: one POST body or a list).
CSV columns by kind:
  exchange-rates  month,currency,cny_per_unit[,source]   (one publication per month)
  tariff          effective_from,hs_prefix,tariff_rate,vat_rate[,consumption_tax_rate][,source]
                  (rates as fractions: 0.13 is 13%; one publication per effective_from)
  positive-list   effective_from,hs_code[,source]
  risk-rules      JSON only: {"effective_from", "rules", "source", "reason"?}
A table for a month or date published already is a correction: --reason is required. The same
figures again are reported unchanged and written nothing. The checks are the API's."""
LOAD_EPILOG = """\
exit codes: 0 every table published or unchanged; 1 a table refused (the others are reported);
2 bad arguments, an unreadable file or an unusable database."""
EXPORT = """\
Write the table of KIND in force on --on (default today in China) as CSV with a header row (the
format `reference load` reads), or every effective date's newest version with --all. Risk rules
are written as JSON."""


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="reference_command", required=True)
    load = sub.add_parser(
        "load",
        help="publish tables from a CSV or JSON file (as an admin)",
        description=LOAD,
        epilog=LOAD_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    load.add_argument("kind", choices=KINDS)
    load.add_argument("file", type=Path)
    load.add_argument("--reason", help="why: required to correct a month or date published already")
    load.add_argument(
        "--source", help="where the figures come from (default: the file's source column)"
    )
    load.add_argument("--actor", help="who publishes (default: cli:<the system user>)")
    export = sub.add_parser(
        "export",
        help="write a published table as CSV (risk rules: JSON)",
        description=EXPORT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    export.add_argument("kind", choices=KINDS)
    export.add_argument("--on", type=date.fromisoformat, help="the day (YYYY-MM-DD)")
    export.add_argument("--all", action="store_true", help="every date's newest version")
    export.add_argument("--output", "-o", type=Path, help="a file (default: standard output)")


def _err(*parts: object) -> None:
    print(*parts, file=sys.stderr)


def cmd_reference(args: argparse.Namespace, settings: Settings) -> int:
    if args.reference_command == "load":
        return _load(args, settings)
    return _export(args, settings)


# -- load ----------------------------------------------------------------------------------


def _load(args: argparse.Namespace, settings: Settings) -> int:
    from api.services import close_admin_ledger, open_admin_ledger
    from domain import values
    from domain.errors import Conflict, LedgerError, ValidationFailed
    from domain.events import Actor
    from ledger.buyer_keys import KeyStoreError

    try:
        actor = Actor(name=args.actor or f"cli:{getpass.getuser()}", role="admin")
        values.text("--actor", actor.name, max_length=64)
        if args.reason is not None:
            values.text("--reason", args.reason, max_length=500)
        raw = args.file.read_bytes()
        json = args.file.suffix.lower() == ".json"
        bodies = read_bodies(args.kind, raw, args.source, args.reason, json=json)
    except OSError as e:
        _err(say("error: {file}: {detail}", file=args.file, detail=str(e.strerror or e)))
        return 2
    except (FileProblem, ValidationFailed) as e:
        _err(say("error: {file}: {detail}", file=args.file, detail=str(e)))
        return 2
    try:
        ledger = open_admin_ledger(settings)
    except KeyStoreError as e:
        _err(say("error: {detail}", detail=str(e)))
        return 2
    counts = {"published": 0, "unchanged": 0, "refused": 0}
    try:
        for n, (body, lines) in enumerate(bodies, 1):
            what = say(
                "[{n}/{total}] {kind} of {key}",
                n=n,
                total=len(bodies),
                kind=args.kind,
                key=_key(body),
            )
            try:
                outcome = ledger.publish_reference(args.kind, body, actor)
            except Conflict as e:
                if e.rule != "reference_unchanged":
                    raise
                counts["unchanged"] += 1
                _err(say("{what}: unchanged ({detail})", what=what, detail=str(e)))
                continue
            except ValidationFailed as e:
                counts["refused"] += 1
                _err(say("{what}: refused", what=what))
                for problem in e.errors:
                    _err(f"  {_explain(problem.loc, problem.msg, lines, args.file.name)}")
                continue
            p = outcome.body
            counts["published"] += 1
            facts = {
                "what": what,
                "version": p.version,
                "size": _size(body),
                "digest": p.digest[:12],
                "position": p.position,
            }
            if p.corrects:
                _err(
                    say(
                        "{what}: published as version {version}, correcting version {corrects}"
                        " ({size}, digest {digest}, log position {position})",
                        corrects=p.corrects,
                        **facts,
                    )
                )
            else:
                _err(
                    say(
                        "{what}: published as version {version} ({size}, digest {digest}, log"
                        " position {position})",
                        **facts,
                    )
                )
    except LedgerError as e:
        _err(say("error: {detail}", detail=str(e)))
        return 2
    finally:
        close_admin_ledger(ledger)
    print(
        say(
            "{file}: {published} published, {unchanged} unchanged, {refused} refused (by {actor})",
            file=args.file,
            actor=actor.name,
            **counts,
        )
    )
    return 1 if counts["refused"] else 0


def _explain(loc: str, msg: str, lines: Lines, name: str) -> str:
    """A problem as the file's reader says it, in the command's language: where (a row the
    body names by its place, `rows[3]`, named by its line in the file), and what (as
    domain/reference_csv.py `explain` says it in English)."""
    text = i18n.translate(msg, i18n.command_language())
    for key, line in lines.items():
        text = text.replace(key, say("line {line}", line=line))
    inner = loc.removeprefix("$.")
    for key, line in lines.items():
        if inner == key or inner.startswith(key + "."):
            rest = inner[len(key) + 1 :]
            if rest:
                return say(
                    "{file} line {line} {field}: {problem}",
                    file=name,
                    line=line,
                    field=rest,
                    problem=text,
                )
            return say("{file} line {line}: {problem}", file=name, line=line, problem=text)
    return say("{file} {loc}: {problem}", file=name, loc=loc, problem=text)


def _key(body: Any) -> str:
    return body.month if isinstance(body, PublishExchangeRates) else str(body.effective_from)


def _size(body: Any) -> str:
    if isinstance(body, PublishExchangeRates):
        return say("{n} currencies", n=len(body.rates))
    if isinstance(body, PublishTariff):
        return say("{n} rows", n=len(body.rows))
    if isinstance(body, PublishPositiveList):
        return say("{n} HS prefixes", n=len(body.hs_codes))
    return say("a rule set")


# -- export --------------------------------------------------------------------------------


def _export(args: argparse.Namespace, settings: Settings) -> int:
    from domain.declaration import SHANGHAI
    from domain.reference_data import ReferenceRegister, register_id
    from ledger.application import LedgerApplication
    from ledger.database import parse_database_url

    app = LedgerApplication(parse_database_url(settings.database_url))
    try:
        register = app.load(register_id(args.kind), ReferenceRegister)
    finally:
        app.close()
    if register is None:
        _err(f"error: no {args.kind} table has been published")
        return 1
    if args.all:
        publications = register.current()
        where = "every date's newest version"
    else:
        from datetime import UTC, datetime

        day = args.on or datetime.now(UTC).astimezone(SHANGHAI).date()
        found = register.in_force(day)
        if found is None:
            _err(f"error: no {args.kind} table in force on {day}")
            return 1
        publications = [found]
        where = (
            f"in force on {day}: version {found.version} of {found.month or found.effective_from}"
        )
    text = export_text(args.kind, publications)
    if args.output is not None:
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    _err(f"exported the {args.kind} table {where} ({text.count(chr(10)) - 1} lines)")
    return 0
