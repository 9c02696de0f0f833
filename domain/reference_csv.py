"""Reference tables as files: the CSV (or JSON) that `customs-ledger reference load` reads and
`reference export` writes, and the built-in tariff is shipped in (domain/data/tariff_2026.csv).

A CSV file has a header row (columns in any order; an optional column may be left out or
empty); one file may hold several months or effective dates, each read as one publication
body, with the file line of each of its rows so that a problem the checks find
(domain/reference_data.py) is named by line. Reading a file checks only its form (a header, a
decimal in the contract's grammar, a day); the figures are checked when they are published.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

import msgspec

from domain.reference_data import (
    BODIES,
    Publication,
    PublishExchangeRates,
    PublishPositiveList,
    PublishTariff,
    TariffRow,
)
from domain.values import DECIMAL_TEXT

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


class FileProblem(ValueError):
    """A line of the file cannot be read."""


# The file line of each row, by its place in the body: "rows[3]", "rates.EUR".
Lines = dict[str, int]


def read_bodies(
    kind: str, raw: bytes, source: str | None, reason: str | None, *, json: bool = False
) -> list[tuple[Any, Lines]]:
    """The publications a file holds, in order, each with the file line of each of its rows;
    FileProblem names the line that is wrong. Risk rules, and `json` files, are JSON."""
    if json or kind == "risk-rules":
        return [(b, {}) for b in _json_bodies(kind, raw, reason)]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FileProblem("the file is not UTF-8 text") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = tuple(reader.fieldnames or ())
    wanted = COLUMNS[kind]
    missing = [c for c in wanted if c not in header and c not in OPTIONAL]
    unknown = [c for c in header if c not in wanted]
    if missing or unknown:  # each case a whole message (its translation: api/i18n.py)
        columns, lacking, extra = ",".join(wanted), ", ".join(missing), ", ".join(unknown)
        raise FileProblem(
            f"line 1: the header must be {columns} (missing: {lacking}) (unknown: {extra})"
            if missing and unknown
            else f"line 1: the header must be {columns} (missing: {lacking})"
            if missing
            else f"line 1: the header must be {columns} (unknown: {extra})"
        )
    rows = []
    for row in reader:
        if None in row or None in row.values():
            raise FileProblem(
                f"line {reader.line_num}: a row has exactly the {len(header)} cells of the header"
            )
        rows.append((reader.line_num, row))
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


Row = tuple[int, dict[str, Any]]  # a row and its line in the file (the header is line 1)


def _grouped(rows: list[Row], key: Callable[[dict[str, Any], int], Any]) -> dict[Any, list[Row]]:
    groups: dict[Any, list[Row]] = {}
    for line, row in rows:
        groups.setdefault(key(row, line), []).append((line, row))
    return groups


def _rates(rows: list[Row], source: str | None, reason: str | None) -> list[tuple[Any, Lines]]:
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


def _tariff(rows: list[Row], source: str | None, reason: str | None) -> list[tuple[Any, Lines]]:
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


def _positive(rows: list[Row], source: str | None, reason: str | None) -> list[tuple[Any, Lines]]:
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


BUILDERS: dict[str, Callable[[list[Row], str | None, str | None], list[tuple[Any, Lines]]]] = {
    "exchange-rates": _rates,
    "tariff": _tariff,
    "positive-list": _positive,
}


def explain(loc: str, msg: str, lines: Lines, name: str) -> str:
    """A problem as the file's reader says it: where, and what (a row it names by its place
    in the body, `rows[3]`, named by its line)."""
    for key, line in lines.items():
        msg = msg.replace(key, f"line {line}")
    return f"{where(loc, lines, name)}: {msg}"


def where(loc: str, lines: Lines, name: str) -> str:
    """A problem's place in the file: `$.rows[12].vat_rate` is the line of that row."""
    inner = loc.removeprefix("$.")
    for key, line in lines.items():
        if inner == key or inner.startswith(key + "."):
            rest = inner[len(key) + 1 :]
            return f"{name} line {line}" + (f" {rest}" if rest else "")
    return f"{name} {loc}"


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
