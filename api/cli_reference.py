"""`customs-ledger reference load|export`: publish reference tables from files, and export them.

A file is CSV with a header row (docs/reference-data.md gives each kind's columns; examples in
docs/examples/) or, for any kind, JSON: one body of `POST /v1/reference/{kind}` or a list of
them. The risk rules are a nested rule set, not a table: JSON only. Every publication goes
through the same checks as the API; a file whose rows span several months or effective dates
makes one publication per month or date, each reported as it is recorded.
"""

from __future__ import annotations

import argparse
import csv
import getpass
import io
import sys
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

from api.settings import Settings
from domain.reference_data import (
    BODIES,
    KINDS,
    Publication,
    PublishExchangeRates,
    PublishPositiveList,
    PublishTariff,
    TariffRow,
)

COLUMNS: dict[str, tuple[str, ...]] = {
    "exchange-rates": ("month", "currency", "cny_per_unit", "source"),
    "tariff": (
        "effective_from",
        "hs_prefix",
        "tariff_rate",
        "vat_rate",
        "consumption_tax_rate",
        "source",
    ),
    "positive-list": ("effective_from", "hs_code", "source"),
}
# Columns a file may leave out (an empty cell reads the same).
OPTIONAL = {"source", "consumption_tax_rate"}

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


class FileProblem(ValueError):
    """A line of the file cannot be read."""


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


Lines = dict[
    str, int
]  # the file line of each row, by its place in the body: "rows[3]", "rates.EUR"


def read_bodies(
    kind: str, path: Path, source: str | None, reason: str | None
) -> list[tuple[Any, Lines]]:
    """The publications a file holds, in order, each with the file line of each of its rows;
    FileProblem names the line that is wrong."""
    raw = path.read_bytes()
    if path.suffix.lower() == ".json" or kind == "risk-rules":
        return [(b, {}) for b in _json_bodies(kind, raw, reason)]
    text = raw.decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    header = tuple(csv.reader(io.StringIO(text)).__next__()) if text.strip() else ()
    wanted = COLUMNS[kind]
    missing = [c for c in wanted if c not in header and c not in OPTIONAL]
    unknown = [c for c in header if c not in wanted]
    if missing or unknown:
        raise FileProblem(
            f"line 1: the header must be {','.join(wanted)}"
            + (f" (missing: {', '.join(missing)})" if missing else "")
            + (f" (unknown: {', '.join(unknown)})" if unknown else "")
        )
    if not rows:
        raise FileProblem("the file has a header and no rows")
    return BUILDERS[kind](rows, source, reason)


def _json_bodies(kind: str, raw: bytes, reason: str | None) -> list[Any]:
    body_type = BODIES[kind]  # type: ignore[index]
    try:
        data = msgspec.json.decode(raw, type=body_type | list[body_type])  # type: ignore[valid-type]
        bodies = data if isinstance(data, list) else [data]
    except (msgspec.DecodeError, msgspec.ValidationError) as e:
        raise FileProblem(f"not a {kind} publication: {e}") from e
    if reason is not None:
        bodies = [msgspec.structs.replace(b, reason=b.reason or reason) for b in bodies]
    return bodies


def _cell(row: dict[str, Any], column: str, line: int) -> str:
    value = (row.get(column) or "").strip()
    if not value and column not in OPTIONAL:
        raise FileProblem(f"line {line}: {column} is empty")
    return value


def _decimal(row: dict[str, Any], column: str, line: int, default: str | None = None) -> Decimal:
    from domain.values import DECIMAL_TEXT

    text = _cell(row, column, line) or (default or "")
    if DECIMAL_TEXT.fullmatch(text) is None:
        raise FileProblem(f"line {line}: {column} {text!r} is not a decimal like 0.13")
    return Decimal(text)


def _day(row: dict[str, Any], line: int) -> date:
    text = _cell(row, "effective_from", line)
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise FileProblem(f"line {line}: effective_from {text!r} is not a day YYYY-MM-DD") from None


def _source(rows: list[tuple[int, dict[str, Any]]], given: str | None, what: str) -> str:
    if given:
        return given
    sources = sorted({(r.get("source") or "").strip() for _, r in rows} - {""})
    if len(sources) == 1:
        return sources[0]
    raise FileProblem(
        f"{what}: give --source (the rows name {len(sources) or 'no'} different sources)"
    )


def _grouped(
    rows: list[dict[str, Any]], key: Callable[[dict[str, Any], int], Any]
) -> dict[Any, list[tuple[int, dict[str, Any]]]]:
    groups: dict[Any, list[tuple[int, dict[str, Any]]]] = {}
    for n, row in enumerate(rows):
        line = n + 2  # the header is line 1
        groups.setdefault(key(row, line), []).append((line, row))
    return groups


def _rates(
    rows: list[dict[str, Any]], source: str | None, reason: str | None
) -> list[tuple[Any, Lines]]:
    bodies = []
    for month, group in _grouped(rows, lambda r, line: _cell(r, "month", line)).items():
        rates: dict[str, Decimal] = {}
        lines: Lines = {}
        for line, row in group:
            currency = _cell(row, "currency", line)
            if currency in rates:
                raise FileProblem(f"line {line}: {currency} of {month} is listed twice")
            rates[currency] = _decimal(row, "cny_per_unit", line)
            lines[f"rates.{currency}"] = line
        body = PublishExchangeRates(
            month=month,
            rates=rates,
            source=_source(group, source, f"the rates of {month}"),
            reason=reason,
        )
        bodies.append((body, lines))
    return bodies


def _tariff(
    rows: list[dict[str, Any]], source: str | None, reason: str | None
) -> list[tuple[Any, Lines]]:
    bodies = []
    for day, group in _grouped(rows, lambda r, line: _day(r, line)).items():
        lines = {f"rows[{n}]": line for n, (line, _) in enumerate(group)}
        bodies.append(
            (
                PublishTariff(
                    effective_from=day,
                    rows=[
                        TariffRow(
                            hs_prefix=_cell(row, "hs_prefix", line),
                            tariff_rate=_decimal(row, "tariff_rate", line),
                            vat_rate=_decimal(row, "vat_rate", line),
                            consumption_tax_rate=_decimal(row, "consumption_tax_rate", line, "0"),
                            source=_cell(row, "source", line) or None,
                        )
                        for line, row in group
                    ],
                    source=source or f"tariff of {day} loaded from a file",
                    reason=reason,
                ),
                lines,
            )
        )
    return bodies


def _positive(
    rows: list[dict[str, Any]], source: str | None, reason: str | None
) -> list[tuple[Any, Lines]]:
    return [
        (
            PublishPositiveList(
                effective_from=day,
                hs_codes=[_cell(row, "hs_code", line) for line, row in group],
                source=_source(group, source, f"the positive list of {day}"),
                reason=reason,
            ),
            {f"hs_codes[{n}]": line for n, (line, _) in enumerate(group)},
        )
        for day, group in _grouped(rows, lambda r, line: _day(r, line)).items()
    ]


BUILDERS: dict[
    str, Callable[[list[dict[str, Any]], str | None, str | None], list[tuple[Any, Lines]]]
] = {
    "exchange-rates": _rates,
    "tariff": _tariff,
    "positive-list": _positive,
}


def where(loc: str, lines: Lines, path: Path) -> str:
    """A problem's place in the file: `$.rows[12].vat_rate` is the line of that row."""
    inner = loc.removeprefix("$.")
    for key, line in lines.items():
        if inner == key or inner.startswith(key + "."):
            rest = inner[len(key) + 1 :]
            return f"{path.name} line {line}" + (f" {rest}" if rest else "")
    return f"{path.name} {loc}"


def _load(args: argparse.Namespace, settings: Settings) -> int:
    from api.services import load_zones, open_vault
    from domain import values
    from domain.errors import Conflict, LedgerError, ValidationFailed
    from domain.events import Actor
    from ledger.application import LedgerApplication
    from ledger.buyer_keys import KeyStoreError
    from ledger.commands import Ledger
    from ledger.database import parse_database_url

    try:
        actor = Actor(name=args.actor or f"cli:{getpass.getuser()}", role="admin")
        values.text("--actor", actor.name, max_length=64)
        if args.reason is not None:
            values.text("--reason", args.reason, max_length=500)
        bodies = read_bodies(args.kind, args.file, args.source, args.reason)
    except OSError as e:
        _err(f"error: {args.file}: {e.strerror or e}")
        return 2
    except (FileProblem, ValidationFailed) as e:
        _err(f"error: {args.file}: {e}")
        return 2
    app = LedgerApplication(parse_database_url(settings.database_url))
    try:
        vault = open_vault(settings, app)
    except KeyStoreError as e:
        app.close()
        _err(f"error: {e}")
        return 2
    counts = {"published": 0, "unchanged": 0, "refused": 0}
    try:
        ledger = Ledger(app, load_zones(settings.zones_file), vault=vault)
        for n, (body, lines) in enumerate(bodies, 1):
            what = f"[{n}/{len(bodies)}] {args.kind} of {_key(body)}"
            try:
                outcome = ledger.publish_reference(args.kind, body, actor)
            except Conflict as e:
                if e.rule != "reference_unchanged":
                    raise
                counts["unchanged"] += 1
                _err(f"{what}: unchanged ({e})")
                continue
            except ValidationFailed as e:
                counts["refused"] += 1
                _err(f"{what}: refused")
                for problem in e.errors:
                    _err(f"  {where(problem.loc, lines, args.file)}: {problem.msg}")
                continue
            p = outcome.body
            counts["published"] += 1
            corrects = f", correcting version {p.corrects}" if p.corrects else ""
            _err(
                f"{what}: published as version {p.version}{corrects} ({_size(body)}, digest"
                f" {p.digest[:12]}, log position {p.position})"
            )
    except LedgerError as e:
        _err(f"error: {e}")
        return 2
    finally:
        vault.close()
        app.close()
    print(
        f"{args.file}: {counts['published']} published, {counts['unchanged']} unchanged,"
        f" {counts['refused']} refused (by {actor.name})"
    )
    return 1 if counts["refused"] else 0


def _key(body: Any) -> str:
    return body.month if isinstance(body, PublishExchangeRates) else str(body.effective_from)


def _size(body: Any) -> str:
    if isinstance(body, PublishExchangeRates):
        return f"{len(body.rates)} currencies"
    if isinstance(body, PublishTariff):
        return f"{len(body.rows)} rows"
    if isinstance(body, PublishPositiveList):
        return f"{len(body.hs_codes)} HS prefixes"
    return "a rule set"


# -- export --------------------------------------------------------------------------------


def export_text(kind: str, publications: list[Publication]) -> str:
    """The publications as the file `reference load` reads: CSV, or JSON for risk rules."""
    if kind == "risk-rules":
        bodies = [
            {
                "effective_from": p.effective_from,
                "rules": p.content.rules,
                "source": p.source,
            }
            for p in publications
        ]
        return msgspec.json.format(msgspec.json.encode(bodies)).decode()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS[kind])
    for p in publications:
        c = p.content
        if kind == "exchange-rates":
            for currency, rate in (c.rates or {}).items():
                writer.writerow([p.month, currency, rate, p.source])
        elif kind == "tariff":
            for r in c.rows or []:
                writer.writerow(
                    [
                        p.effective_from,
                        r.hs_prefix,
                        r.tariff_rate,
                        r.vat_rate,
                        r.consumption_tax_rate,
                        r.source or "",
                    ]
                )
        else:
            for code in c.hs_codes or []:
                writer.writerow([p.effective_from, code, p.source])
    return out.getvalue()


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
