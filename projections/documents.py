"""The zone documents' view: checklists (核注清单) and gate passes (核放单), for their lists.

- `view_checklists`: one row per checklist with its state as GET /v1/checklists/{no} answers
  it (`ChecklistView`); a declaration's checklist gains what passed the gate under it from the
  declaration's `GoodsMoved` events, and closes when every line has passed in full;
- `view_gate_passes`: one row per gate pass (`GatePassView`), filed then passed.
Both are listed in filing order (`first_position`, the list's cursor).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, TypeVar

import msgspec

from domain import standalone_checklists as sc
from domain.checklists import ChecklistFiled, ChecklistView, listed
from domain.events import DomainEvent
from domain.gate_passes import GatePassFiled, GatePassPassed, GatePassView
from domain.movements import GoodsMoved
from domain.outbound_checklists import ChecklistLinesMoved
from domain.scope import Scope
from projections.columns import filter_sql, tenancy_sql, utc_text
from projections.folding import MISSING, LogEntry, RowCache, ViewTable, Writes, chunks, create

_CHECKLIST = msgspec.json.Decoder(ChecklistView)
_PASS = msgspec.json.Decoder(GatePassView)
_ENCODE = msgspec.json.Encoder(decimal_format="string")

DDL = (
    "CREATE TABLE IF NOT EXISTS view_checklists ("
    " checklist_no TEXT PRIMARY KEY, document_id TEXT NOT NULL, kind TEXT NOT NULL,"
    " direction TEXT NOT NULL, status TEXT NOT NULL, account_book TEXT NOT NULL,"
    " zone TEXT NOT NULL, enterprise TEXT NOT NULL, first_position BIGINT NOT NULL,"
    " position BIGINT NOT NULL, due_by_utc TEXT, declaration_no TEXT, state TEXT NOT NULL,"
    " destination_enterprise TEXT)",
    "CREATE INDEX IF NOT EXISTS view_checklists_document ON view_checklists (document_id)",
    "CREATE INDEX IF NOT EXISTS view_checklists_first ON view_checklists (first_position)",
    "CREATE TABLE IF NOT EXISTS view_gate_passes ("
    " pass_no TEXT PRIMARY KEY, pass_id TEXT NOT NULL, zone TEXT NOT NULL,"
    " direction TEXT NOT NULL, status TEXT NOT NULL, enterprise TEXT NOT NULL,"
    " first_position BIGINT NOT NULL, position BIGINT NOT NULL, state TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS view_gate_passes_id ON view_gate_passes (pass_id)",
    "CREATE INDEX IF NOT EXISTS view_gate_passes_first ON view_gate_passes (first_position)",
)
TABLES: tuple[ViewTable, ...] = (
    ViewTable("view_checklists", ("checklist_no",)),
    ViewTable("view_gate_passes", ("pass_no",)),
)
CHECKLIST_FILTERS = {
    "account_book": "account_book",
    "status": "status",
    "kind": "kind",
    "zone": "zone",
    "direction": "direction",
}
PASS_FILTERS = {"zone": "zone", "status": "status", "direction": "direction"}


STANDALONE_EVENTS = (
    sc.ChecklistApproved,
    sc.ChecklistRejected,
    sc.ChecklistWithdrawn,
    sc.ChecklistPassed,
    sc.ChecklistDeclared,
    ChecklistLinesMoved,
)


class DocumentsProjection:
    name = "documents"
    # 2: an in-zone transfer's receiving enterprise sees it (`destination_enterprise`).
    version = 2
    handles: tuple[type[DomainEvent], ...] = (
        ChecklistFiled,
        sc.StandaloneChecklistFiled,
        *STANDALONE_EVENTS,
        GoodsMoved,
        GatePassFiled,
        GatePassPassed,
    )
    tables = TABLES

    def create_tables(self, cur: Any, *, indexes: bool = True) -> None:
        create(cur, DDL, indexes=indexes)

    def begin(self, cur: Any, previous: _DocumentsFold | None) -> _DocumentsFold:
        return _DocumentsFold(cur, previous)


class _Row:
    __slots__ = ("changed", "first_position", "inserted", "position", "state")

    def __init__(self, state: Any, first_position: int, *, inserted: bool) -> None:
        self.state = state
        self.first_position = first_position
        self.position = first_position
        self.inserted = inserted
        self.changed = inserted


def _stored_row(r: Any, decoder: Any) -> _Row:
    row = _Row(decoder.decode(r["state"]), int(r["first_position"]), inserted=False)
    row.position = int(r["position"])
    return row


class _DocumentsFold:
    def __init__(self, cur: Any, previous: _DocumentsFold | None) -> None:
        self.cur = cur
        # A declaration's (or a pass's) stream id -> its row (None: it filed no checklist).
        self.checklists: RowCache[str, _Row | None] = RowCache(
            previous.checklists if previous else None
        )
        self.passes: RowCache[str, _Row] = RowCache(previous.passes if previous else None)

    def prefetch(self, page: list[tuple[LogEntry, DomainEvent]]) -> None:
        """The checklist rows (or their absence) of the page's declarations that moved goods,
        in a few queries: a replay meets a `GoodsMoved` for every gate movement."""
        wanted = {
            entry.stream_id: None
            for entry, event in page
            if isinstance(event, GoodsMoved) and entry.stream_id not in self.checklists
        }
        for part in chunks(list(wanted)):
            self.cur.execute(
                "SELECT document_id, state, first_position, position FROM view_checklists"
                f" WHERE document_id IN ({','.join('?' * len(part))})",
                part,
            )
            for r in self.cur.fetchall():
                wanted.pop(r["document_id"], None)
                self.checklists[r["document_id"]] = _stored_row(r, _CHECKLIST)
        for stream in wanted:  # filed none (yet): a ChecklistFiled later in the page sets it
            self.checklists[stream] = None

    def apply(self, entry: LogEntry, event: DomainEvent) -> None:
        stream = entry.stream_id
        if isinstance(event, ChecklistFiled):
            state = ChecklistView(
                checklist_no=event.checklist_no,
                kind=event.kind,
                direction=event.direction,
                status="approved",
                account_book=event.account_book,
                zone=event.zone,
                enterprise=event.enterprise,
                lines=listed(event.lines),
                filed_at=event.occurred_at,
                declaration=event.originator_id,
                declaration_no=event.declaration_no,
            )
            self.checklists[stream] = _Row(state, entry.position, inserted=True)
        elif isinstance(event, sc.StandaloneChecklistFiled):
            filed_alone = sc.view(event.apply(None), event.occurred_at)
            self.checklists[stream] = _Row(filed_alone, entry.position, inserted=True)
        elif isinstance(event, STANDALONE_EVENTS):
            row = self._checklist(stream)
            assert row is not None, f"checklist {stream} changed before it was filed"
            row.state = moved_on(row.state, event)
            row.position, row.changed = entry.position, True
        elif isinstance(event, GoodsMoved):
            row = self._checklist(stream)
            if row is not None:
                row.state = passed(row.state, event)
                row.position, row.changed = entry.position, True
        elif isinstance(event, GatePassFiled):
            filed = GatePassView(
                pass_no=event.pass_no,
                zone=event.zone,
                direction=event.direction,
                status="filed",
                enterprise=event.enterprise,
                vehicle=event.vehicle,
                gross_weight_kg=event.gross_weight_kg,
                tare_weight_kg=event.tare_weight_kg,
                checklists=list(event.checklists),
                filed_at=event.occurred_at,
            )
            self.passes[stream] = _Row(filed, entry.position, inserted=True)
        elif isinstance(event, GatePassPassed):
            row = self._pass(stream)
            row.state = msgspec.structs.replace(row.state, status="passed", passage=event.passage())
            row.position, row.changed = entry.position, True

    def _checklist(self, stream: str) -> _Row | None:
        """The checklist row of a stream (a declaration's, or one filed alone); None when the
        stream filed none (a declaration released before checklists, or never)."""
        found = self.checklists.get(stream)
        if found is MISSING:
            found = self.checklists[stream] = self._stored(
                "view_checklists", "document_id", stream, _CHECKLIST
            )
        return found

    def _pass(self, stream: str) -> _Row:
        found = self.passes.get(stream)
        if found is not MISSING:
            return found
        stored = self._stored("view_gate_passes", "pass_id", stream, _PASS)
        if stored is None:
            raise LookupError(f"gate pass {stream} passed but was never filed in the log")
        self.passes[stream] = stored
        return stored

    def _stored(self, table: str, column: str, stream: str, decoder: Any) -> _Row | None:
        self.cur.execute(
            f"SELECT state, first_position, position FROM {table} WHERE {column} = ?", (stream,)
        )
        r = self.cur.fetchone()
        return _stored_row(r, decoder) if r is not None else None

    def flush(self) -> Writes:
        writes = Writes()
        inserts: list[tuple[Any, ...]] = []
        updates: list[tuple[Any, ...]] = []
        for stream, row in self.checklists.now.items():
            if row is None or not row.changed:
                continue
            s: ChecklistView = row.state
            text = _ENCODE.encode(s).decode()
            due = utc_text(s.declaration_due_by) if s.declaration_due_by else None
            if row.inserted:
                head = (s.checklist_no, stream, s.kind, s.direction, s.status, s.account_book)
                tail = (s.zone, s.enterprise, row.first_position, row.position, due)
                inserts.append((*head, *tail, s.declaration_no, text, s.destination_enterprise))
            else:
                updates.append(
                    (s.status, row.position, due, s.declaration_no, text, s.checklist_no)
                )
            row.inserted = row.changed = False
        writes.add(
            "INSERT INTO view_checklists (checklist_no, document_id, kind, direction, status,"
            " account_book, zone, enterprise, first_position, position, due_by_utc,"
            " declaration_no, state, destination_enterprise)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            inserts,
        )
        writes.add(
            "UPDATE view_checklists SET status = ?, position = ?, due_by_utc = ?,"
            " declaration_no = ?, state = ? WHERE checklist_no = ?",
            updates,
        )
        passes: list[tuple[Any, ...]] = []
        changes: list[tuple[Any, ...]] = []
        for stream, prow in self.passes.now.items():
            if not prow.changed:
                continue
            p: GatePassView = prow.state
            text = _ENCODE.encode(p).decode()
            if prow.inserted:
                first = (p.pass_no, stream, p.zone, p.direction, p.status, p.enterprise)
                passes.append((*first, prow.first_position, prow.position, text))
            else:
                changes.append((p.status, prow.position, text, p.pass_no))
            prow.inserted = prow.changed = False
        writes.add(
            "INSERT INTO view_gate_passes (pass_no, pass_id, zone, direction, status,"
            " enterprise, first_position, position, state) VALUES (?,?,?,?,?,?,?,?,?)",
            passes,
        )
        writes.add(
            "UPDATE view_gate_passes SET status = ?, position = ?, state = ? WHERE pass_no = ?",
            changes,
        )
        return writes


def moved_on(view: ChecklistView, event: DomainEvent) -> ChecklistView:
    """A checklist filed on its own after one more of its events, by the domain's own `apply`
    on the state the view holds."""
    state = sc.Checklist(
        id=event.originator_id,
        version=event.originator_version - 1,
        checklist_no=view.checklist_no,
        kind=view.kind,
        direction=view.direction,
        account_book=view.account_book,
        zone=view.zone,
        enterprise=view.enterprise,
        lines=list(view.lines),
        status=view.status,
        filed_at=view.filed_at,
        declaration_due_by=view.declaration_due_by,
        declaration=view.declaration,
        declaration_no=view.declaration_no,
        reason=view.reason,
        period=view.period,
        destination_account_book=view.destination_account_book,
        destination_enterprise=view.destination_enterprise,
    )
    return sc.view(event.apply(state), view.filed_at)


def passed(state: ChecklistView, event: GoodsMoved) -> ChecklistView:
    """A declaration's checklist after goods moved under it: what passed per line, and closed
    once every line has passed in full."""
    lines = [
        msgspec.structs.replace(line, passed=line.passed + event.quantities.get(line.line_no, 0))
        for line in state.lines
    ]
    done = all(line.passed >= line.quantity for line in lines)
    return msgspec.structs.replace(state, lines=lines, status="closed" if done else state.status)


T = TypeVar("T", ChecklistView, GatePassView)


def _at(view: T, row: Any) -> T:
    """A listed document with the log position of the last event that changed it."""
    return msgspec.structs.replace(view, position=int(row["position"]))


def _late(view: ChecklistView, now: datetime) -> ChecklistView:
    """Whether it is overdue depends on the time of the read."""
    due = view.declaration_due_by
    late = due is not None and view.declaration_no is None and now >= due
    return msgspec.structs.replace(view, overdue=late) if late != view.overdue else view


class DocumentQueries:
    """Reads of the documents view, with the caller's tenancy applied in the query."""

    def __init__(self, views: Any) -> None:
        self.views = views

    def checklists(
        self,
        *,
        after: int,
        limit: int,
        filters: dict[str, str | None],
        scope: Scope,
        overdue: bool | None = None,
        now: datetime | None = None,
    ) -> list[tuple[int, ChecklistView]]:
        """`overdue`: True, only goods that entered first or left collected, undeclared past their
        deadline at `now`; False, every other checklist."""
        sql = "SELECT first_position, position, state FROM view_checklists WHERE first_position > ?"
        params: list[Any] = [after]
        sql += filter_sql(params, filters, CHECKLIST_FILTERS)
        moment = now or datetime.now(UTC)
        if overdue is not None:
            late = "(declaration_no IS NULL AND due_by_utc IS NOT NULL AND due_by_utc <= ?)"
            sql += f" AND {late}" if overdue else f" AND NOT {late}"
            params.append(utc_text(moment))
        sql += tenancy_sql(
            scope, params, enterprise=("enterprise", "destination_enterprise"), zone=("zone",)
        )
        sql += " ORDER BY first_position LIMIT ?"
        params.append(limit)
        with self.views.read() as cur:
            cur.execute(sql, params)
            rows = cur.fetchall()
        return [
            (int(r["first_position"]), _late(_at(_CHECKLIST.decode(r["state"]), r), moment))
            for r in rows
        ]

    def gate_passes(
        self, *, after: int, limit: int, filters: dict[str, str | None], scope: Scope
    ) -> list[tuple[int, GatePassView]]:
        sql = (
            "SELECT first_position, position, state FROM view_gate_passes WHERE first_position > ?"
        )
        params: list[Any] = [after]
        sql += filter_sql(params, filters, PASS_FILTERS)
        sql += tenancy_sql(scope, params, enterprise=("enterprise",), zone=("zone",))
        sql += " ORDER BY first_position LIMIT ?"
        params.append(limit)
        with self.views.read() as cur:
            cur.execute(sql, params)
            rows = cur.fetchall()
        return [(int(r["first_position"]), _at(_PASS.decode(r["state"]), r)) for r in rows]
