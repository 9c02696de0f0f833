"""How several projections store the same things, and how their queries select on them.

- a business time: as given (ISO 8601 with its offset) and as fixed-width UTC text
  (`utc_text`), so that text order is time order across offsets;
- the papers goods moved under: a JSON array of `{"kind", "id", "number"}` objects (the
  domain's `Paper`; `movement_papers`), the same text in the inventory's entries and the trace;
- a period of business time and the caller's tenancy as SQL conditions, on the columns each
  query names (`period_sql`, `tenancy_sql`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, cast

import msgspec

from domain.movements import MovementKind, MovementView, Paper
from domain.scope import Scope


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
    """The papers a movement moved goods under: its declaration, gate note, checklist, gate
    pass and container."""
    papers = []
    if view.declaration is not None:
        papers.append(Paper("declaration", str(view.declaration), view.declaration_no or ""))
    if view.gate_note:
        papers.append(Paper("gate_note", view.gate_note, view.gate_note))
    if view.checklist_no:
        papers.append(Paper("checklist", view.checklist_no, view.checklist_no))
    if view.gate_pass:
        papers.append(Paper("gate_pass", view.gate_pass, view.gate_pass))
    if view.container:
        papers.append(Paper("container", view.container, view.container))
    return papers


# A movement's whole view as `view_movements` keeps it (a movement is recorded once).
MOVEMENT_VIEW = msgspec.json.Decoder(MovementView)


def movement_view_text(view: MovementView) -> str:
    return _ENCODE.encode(view).decode()


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


def tenancy_sql(
    scope: Scope,
    params: list[Any],
    *,
    enterprise: tuple[str, ...],
    zone: tuple[str, ...],
) -> str:
    """SQL conditions (and their parameters) for what `scope` sees: for an enterprise's key,
    rows where one of the `enterprise` columns is its USCC; for an operator's, rows where one
    of the `zone` columns is its zone; for everyone else, every row. Each query names its
    own columns."""
    narrowing = scope.narrowing
    if "enterprise" in narrowing:
        columns, value = enterprise, narrowing["enterprise"]
    elif "zone" in narrowing:
        columns, value = zone, narrowing["zone"]
    else:
        return ""
    params += [value] * len(columns)
    return " AND (" + " OR ".join(f"{c} = ?" for c in columns) + ")"


def filter_sql(params: list[Any], filters: dict[str, Any], columns: dict[str, str]) -> str:
    """SQL conditions for the filters given (None: not filtered), each on the column
    `columns` names for it (a filter the query does not know: KeyError)."""
    sql = ""
    for name, value in filters.items():
        column = columns[name]
        if value is not None:
            sql += f" AND {column} = ?"
            params.append(value)
    return sql
