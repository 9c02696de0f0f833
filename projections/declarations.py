"""Declarations view: one row per declaration with its current state, plus its history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from domain.checklists import ChecklistFiled
from domain.clearance import (
    DeclarationAssessed,
    DeclarationRejected,
    DutiesPaid,
    InspectionRecorded,
    ReleaseGranted,
    TransferAccepted,
    TransferRefused,
)
from domain.collected import CollectedChecklistsNamed
from domain.declaration import (
    SHANGHAI,
    Declaration,
    DeclarationSubmitted,
    DeclarationWithdrawn,
)
from domain.enter_first import ChecklistNamed
from domain.events import DomainEvent
from domain.movements import GoodsMoved
from domain.returns import GoodsReturned, ReturnedGoodsReadmitted
from domain.scope import Scope
from domain.transfers import GoodsReceived
from domain.views import DeclarationDetail, HistoryEntry, declaration_detail
from projections.columns import filter_sql, period_sql, tenancy_sql, utc_text
from projections.folding import MISSING, LogEntry, RowCache, ViewTable, Writes, create

_STATE = msgspec.json.Decoder(Declaration)
_HISTORY = msgspec.json.Decoder(list[HistoryEntry])
_ENCODE = msgspec.json.Encoder(decimal_format="string")

DDL = (
    "CREATE TABLE IF NOT EXISTS view_declarations ("
    " id TEXT PRIMARY KEY, declaration_no TEXT NOT NULL UNIQUE, status TEXT NOT NULL,"
    " flow TEXT NOT NULL, trade_mode TEXT NOT NULL, declarant TEXT NOT NULL,"
    " destination_enterprise TEXT, zone TEXT NOT NULL, destination_zone TEXT,"
    " account_book TEXT, occurred_at TEXT NOT NULL, recorded_at TEXT NOT NULL,"
    " occurred_at_utc TEXT NOT NULL, business_day TEXT NOT NULL,"
    " value_cny TEXT NOT NULL DEFAULT '0',"
    " position BIGINT NOT NULL, first_position BIGINT NOT NULL,"
    " state TEXT NOT NULL, history TEXT NOT NULL,"
    " channel TEXT, released_at_utc TEXT)",
    "CREATE INDEX IF NOT EXISTS view_declarations_declarant ON view_declarations (declarant)",
    "CREATE INDEX IF NOT EXISTS view_declarations_first ON view_declarations (first_position)",
    "CREATE INDEX IF NOT EXISTS view_declarations_time ON view_declarations (occurred_at_utc)",
    "CREATE INDEX IF NOT EXISTS view_declarations_released ON view_declarations (released_at_utc)",
)
TABLES: tuple[ViewTable, ...] = (ViewTable("view_declarations", ("id",)),)
# Every event of a declaration after its submission: each moves the state and adds history.
LATER_EVENTS = (
    DeclarationAssessed,
    InspectionRecorded,
    ReleaseGranted,
    DeclarationRejected,
    DutiesPaid,
    DeclarationWithdrawn,
    TransferAccepted,
    TransferRefused,
    GoodsMoved,
    GoodsReceived,
    GoodsReturned,
    ReturnedGoodsReadmitted,
    ChecklistFiled,
    ChecklistNamed,
    CollectedChecklistsNamed,
)


class DeclarationsProjection:
    """Applies declaration events; GET /v1/declarations/{ref} reads from here."""

    name = "declarations"
    # Bump when its tables or rows change: the views are rebuilt (runner.py). 2: a `direct_in`
    # (9610) parcel has no account book, so `account_book` may be NULL.
    # 3: a released declaration's checklist (`ChecklistFiled`, its `checklist_no`).
    # 4: its risk channel and when it entered `released` as columns (`channel`,
    # `released_at_utc`: GET /v1/stats/channels and /v1/stats/clearance-time select on them).
    version = 4
    handles: tuple[type[DomainEvent], ...] = (DeclarationSubmitted, *LATER_EVENTS)
    tables = TABLES

    def create_tables(self, cur: Any, *, indexes: bool = True) -> None:
        create(cur, DDL, indexes=indexes)

    def begin(self, cur: Any, previous: _DeclarationsFold | None) -> _DeclarationsFold:
        return _DeclarationsFold(cur, previous)


class _Row:
    """A declaration's row while a page is folded: its state, history and what changed."""

    __slots__ = ("changed", "history", "inserted", "position", "state", "value_cny")

    def __init__(
        self,
        state: Declaration,
        history: list[HistoryEntry],
        value_cny: str,
        inserted: tuple[Any, ...] | None,
    ) -> None:
        self.state = state
        self.history = history
        self.value_cny = value_cny
        self.position = 0
        # The columns of a row submitted in this page (None: the row is already stored).
        self.inserted = inserted
        self.changed = inserted is not None


class _DeclarationsFold:
    """One page: each declaration's state is decoded at most once, moved by every event of
    the page, and written once (an INSERT for new ones, an UPDATE for stored ones)."""

    def __init__(self, cur: Any, previous: _DeclarationsFold | None) -> None:
        self.cur = cur
        self.rows: RowCache[str, _Row] = RowCache(previous.rows if previous else None)

    def apply(self, entry: LogEntry, event: DomainEvent) -> None:
        did = entry.stream_id
        if isinstance(event, DeclarationSubmitted):
            state = event.apply(None)
            row = _Row(state, [_entry(entry, event)], "0", _insert_columns(entry, state))
            row.position = entry.position
            self.rows[did] = row
            return
        row = self.rows.get(did)
        if row is MISSING:
            row = self._load(did)
        row.state = event.apply(row.state)
        row.history.append(_entry(entry, event))
        row.position = entry.position
        row.changed = True
        value = getattr(event, "value_cny", None)
        if value is not None:
            row.value_cny = str(value)

    def _load(self, did: str) -> _Row:
        self.cur.execute(
            "SELECT state, history, value_cny, position FROM view_declarations WHERE id = ?",
            (did,),
        )
        found = self.cur.fetchone()
        if found is None:
            raise LookupError(f"declaration {did} has events but no submission in the log")
        row = _Row(
            _STATE.decode(found["state"]),
            _HISTORY.decode(found["history"]),
            found["value_cny"],
            None,
        )
        row.position = int(found["position"])
        self.rows[did] = row
        return row

    def flush(self) -> Writes:
        writes = Writes()
        inserts, updates = [], []
        for did, row in self.rows.now.items():
            if not row.changed:
                continue
            state = _ENCODE.encode(row.state).decode()
            history = _ENCODE.encode(row.history).decode()
            channel, released = row.state.channel, _released_text(row.state)
            if row.inserted is not None:
                inserts.append(
                    (
                        *row.inserted,
                        row.state.status,
                        row.value_cny,
                        row.position,
                        state,
                        history,
                        channel,
                        released,
                    )
                )
            else:
                updates.append(
                    (
                        row.state.status,
                        row.position,
                        state,
                        history,
                        row.value_cny,
                        channel,
                        released,
                        did,
                    )
                )
            row.inserted, row.changed = None, False
        writes.add(INSERT, inserts)
        writes.add(
            "UPDATE view_declarations SET status = ?, position = ?, state = ?, history = ?,"
            " value_cny = ?, channel = ?, released_at_utc = ? WHERE id = ?",
            updates,
        )
        return writes


INSERT = (
    "INSERT INTO view_declarations (id, declaration_no, flow, trade_mode, declarant,"
    " destination_enterprise, zone, destination_zone, account_book, occurred_at, recorded_at,"
    " occurred_at_utc, business_day, first_position, status, value_cny, position, state,"
    " history, channel, released_at_utc) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)


def _released_text(state: Declaration) -> str | None:
    """When the declaration entered `released` (the business time of the event that released
    it, domain/declaration.py `released_at`), as `utc_text`; None while it never was."""
    return None if state.released_at is None else utc_text(state.released_at)


def _insert_columns(entry: LogEntry, state: Declaration) -> tuple[Any, ...]:
    """The columns a declaration's row keeps from its submission (INSERT order, up to
    `first_position`)."""
    f = state.facts
    return (
        str(state.id),
        f.declaration_no,
        f.flow,
        f.trade_mode,
        f.declarant,
        f.destination_enterprise,
        f.zone,
        f.destination_zone,
        f.account_book,
        state.submitted_at.isoformat(),
        entry.recorded_at,
        utc_text(state.submitted_at),
        state.submitted_at.astimezone(SHANGHAI).date().isoformat(),
        entry.position,
    )


def declarations_sql(
    params: list[Any], *, since: datetime | None, until: datetime | None, scope: Scope
) -> str:
    """SQL conditions on `view_declarations` (and their parameters) for a business-time range
    `[since, until)` and the caller's tenancy: an enterprise sees its own and its incoming
    transfers, an operator its zone's and the transfers into it."""
    sql = period_sql(params, since=since, until=until)
    return sql + tenancy_sql(
        scope,
        params,
        enterprise=("declarant", "destination_enterprise"),
        zone=("zone", "destination_zone"),
    )


# The filters of a page of declarations, and their columns.
FILTERS = {"status": "status", "flow": "flow", "zone": "zone", "declarant": "declarant"}


def _entry(entry: LogEntry, event: DomainEvent) -> HistoryEntry:
    return HistoryEntry(
        type=type(event).__name__,
        recorded_at=datetime.fromisoformat(entry.recorded_at.replace("Z", "+00:00")),
        occurred_at=event.occurred_at,
        actor=event.actor,
    )


def row_to_detail(row: Any) -> DeclarationDetail:
    return declaration_detail(_STATE.decode(row["state"]), _HISTORY.decode(row["history"]))


class DeclarationQueries:
    """Reads of the declarations view, with the caller's tenancy applied in the query."""

    def __init__(self, views: Any) -> None:
        self.views = views

    def get(self, ref: str) -> tuple[DeclarationDetail, dict[str, Any]] | None:
        column = "declaration_no" if len(ref) == 18 and ref.isdigit() else "id"
        with self.views.read() as cur:
            cur.execute(f"SELECT * FROM view_declarations WHERE {column} = ?", (ref,))
            row = cur.fetchone()
        if row is None:
            return None
        return row_to_detail(row), dict(row)

    def page(
        self,
        *,
        after: int,
        limit: int,
        filters: dict[str, str | None],
        scope: Scope,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[tuple[int, DeclarationDetail]]:
        """(cursor, declaration) by submission position, those `scope` sees; `filters` by
        FILTERS' names."""
        sql = "SELECT * FROM view_declarations WHERE first_position > ?"
        params: list[Any] = [after]
        sql += filter_sql(params, filters, FILTERS)
        sql += declarations_sql(params, since=since, until=until, scope=scope)
        sql += " ORDER BY first_position LIMIT ?"
        params.append(limit)
        with self.views.read() as cur:
            cur.execute(sql, params)
            return [(int(r["first_position"]), row_to_detail(r)) for r in cur.fetchall()]
