"""How several projections store the same things, and how their queries select on them.

- a business time: as given (ISO 8601 with its offset) and as fixed-width UTC text
  (`utc_text`), so that text order is time order across offsets;
- the papers goods moved under: a JSON array of `{"kind", "id", "number"}` objects (the
  domain's `Paper`; `movement_papers`), the same text in the inventory's entries and the trace;
- a period of business time as SQL conditions (`period_sql`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, cast

import msgspec

from domain.movements import MovementKind, MovementView, Paper


def utc_text(moment: datetime) -> str:
    """A business time as fixed-width UTC text, so text order is time order across offsets."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


PAPERS = msgspec.json.Decoder(list[Paper])
# The papers as the answers give them (`BookEntry.documents`, `TraceEvent.documents`).
PAPER_DICTS = msgspec.json.Decoder(list[dict[str, str]])
_ENCODE = msgspec.json.Encoder()


def paper_of(document: Mapping[str, str]) -> Paper:
    """A paper as an answer gives it (`TraceEvent.documents`: a dict; a missing field reads
    as empty)."""
    return Paper(document.get("kind", ""), document.get("id", ""), document.get("number", ""))


def papers_text(papers: list[Paper]) -> str:
    return _ENCODE.encode(papers).decode()


def movement_papers(view: MovementView) -> list[Paper]:
    """The papers a movement moved goods under: its declaration, gate note and container."""
    papers = []
    if view.declaration is not None:
        papers.append(Paper("declaration", str(view.declaration), view.declaration_no or ""))
    if view.gate_note:
        papers.append(Paper("gate_note", view.gate_note, view.gate_note))
    if view.container:
        papers.append(Paper("container", view.container, view.container))
    return papers


def movement_kind(kind: str) -> MovementKind:
    """A movement's kind as a view stores it (text), typed as the registry's kinds
    (domain/movement_kinds.py). Not checked: the folds name whatever kind was recorded."""
    return cast(MovementKind, kind)


def period_sql(
    params: list[Any],
    *,
    since: datetime | None,
    until: datetime | None,
    column: str = "occurred_at_utc",
) -> str:
    """SQL conditions (and their parameters) for a business-time range `[since, until)` on a
    column of `utc_text`."""
    sql = ""
    if since is not None:
        sql += f" AND {column} >= ?"
        params.append(utc_text(since))
    if until is not None:
        sql += f" AND {column} < ?"
        params.append(utc_text(until))
    return sql
