"""A tariff CSV as duty tables: the built-in table's file, read exactly as a published one.

The file is in the format `customs-ledger reference load tariff` reads
(domain/reference_csv.py: `effective_from,hs_prefix,tariff_rate,vat_rate,
consumption_tax_rate,source`), and its rows pass the checks of a publication
(domain/reference_data.py: prefixes of 6 to 10 digits within HS 2022 subheadings, each once,
rates in range), so the built-in table is one an officer could publish as it is. Every problem
names the file and its line (the header is line 1).
"""

from __future__ import annotations

from decimal import Decimal

from domain.duties import TariffTable
from domain.errors import ValidationFailed
from domain.reference_csv import FileProblem, explain, read_bodies
from domain.reference_data import PublishTariff, checked_content
from domain.reference_rules import tariff_rate


def read_tariff(text: str, name: str, *, default_vat_rate: Decimal) -> list[TariffTable]:
    """The tables of a tariff CSV, one per `effective_from`, earliest first; ValueError
    naming the file's line of the first problems."""
    try:
        bodies = read_bodies("tariff", text.encode(), source=name, reason=None)
    except FileProblem as e:
        raise ValueError(f"{name} {e}") from None
    tables = []
    for body, lines in bodies:
        assert isinstance(body, PublishTariff)
        try:
            rows = checked_content(body).rows or []
        except ValidationFailed as e:
            problems = "; ".join(explain(p.loc, p.msg, lines, name) for p in e.errors[:5])
            raise ValueError(problems) from None
        rates = [tariff_rate(r, name) for r in rows]
        tables.append(
            TariffTable(
                valid_from=body.effective_from, rates=rates, default_vat_rate=default_vat_rate
            )
        )
    return sorted(tables, key=lambda t: t.valid_from)
