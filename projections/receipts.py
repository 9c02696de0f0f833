"""The receipts' outbox (issue #19, docs/decisions/0030): a read model on the catch-up runner, so
each receipt is written exactly once per subscription whatever crashes, in log order.

- `view_subscriptions`: each subscription as its events left it (owner, patterns, status, the
  position it was made at, the last redelivery asked);
- `view_receipt_subjects`: what a receipt needs of its subject beyond its event - a
  declaration's number, declarant, destination enterprise and zones (from its submission), a
  book's enterprise and zone (from its opening), a write-off's and a liability's enterprise;
- `view_outbox`: one row per receipt per subscription that takes it (its patterns, its owner's
  tenancy, live when the receipt was recorded): the body to send, fixed at that position, so
  every attempt sends the same bytes;
- `view_receipt_log`: every receipt once, with the enterprises that may read it, for the live
  stream (`GET /v1/stream`): the same body a subscription would be sent.

Tenancy is the API's: an enterprise receives what it may read - its declarations (as declarant
or a transfer's destination), its books' movements, its write-offs and bills; customs'
subscriptions (officers, auditors) receive everything.
"""

from __future__ import annotations

from typing import Any

import msgspec

from domain import receipts
from domain.account_book import AccountBookOpened
from domain.checklists import ChecklistFiled
from domain.declaration import DeclarationSubmitted
from domain.events import DomainEvent
from domain.gate_passes import GatePassFiled
from domain.liabilities import LiabilityAssessed
from domain.movements import MovementRecorded
from domain.standalone_checklists import StandaloneChecklistFiled
from domain.subscriptions import (
    RedeliveryRequested,
    SubscriptionCreated,
    SubscriptionStatusChanged,
)
from domain.write_offs import WriteOffSubmitted
from projections.folding import MISSING, LogEntry, RowCache, ViewTable, Writes, create

DDL = (
    "CREATE TABLE IF NOT EXISTS view_subscriptions ("
    " id TEXT PRIMARY KEY, owner_role TEXT NOT NULL, owner_enterprise TEXT,"
    " url TEXT NOT NULL, events TEXT NOT NULL, status TEXT NOT NULL,"
    " created_position BIGINT NOT NULL, redeliver_from BIGINT NOT NULL,"
    " redeliver_position BIGINT NOT NULL, position BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS view_receipt_subjects ("
    " id TEXT PRIMARY KEY, kind TEXT NOT NULL, number TEXT NOT NULL, enterprise TEXT NOT NULL,"
    " other_enterprise TEXT, zone TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS view_outbox ("
    " subscription_id TEXT NOT NULL, position BIGINT NOT NULL, type TEXT NOT NULL,"
    " body TEXT NOT NULL, PRIMARY KEY (subscription_id, position))",
    "CREATE TABLE IF NOT EXISTS view_receipt_log ("
    " position BIGINT PRIMARY KEY, type TEXT NOT NULL, enterprise TEXT,"
    " other_enterprise TEXT, body TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS view_receipt_log_enterprise"
    " ON view_receipt_log (enterprise, position)",
    "CREATE INDEX IF NOT EXISTS view_receipt_log_other"
    " ON view_receipt_log (other_enterprise, position)",
)
TABLES: tuple[ViewTable, ...] = (
    ViewTable("view_subscriptions", ("id",)),
    ViewTable("view_receipt_subjects", ("id",)),
    ViewTable("view_outbox", ("subscription_id", "position"), ("position",)),
    ViewTable("view_receipt_log", ("position",), ("position",)),
)
_ENCODE = msgspec.json.Encoder(decimal_format="string")
_PATTERNS = msgspec.json.Decoder(list[str])


class Subject(msgspec.Struct, frozen=True):
    kind: str
    number: str
    enterprise: str
    other_enterprise: str | None
    zone: str


class Sub(msgspec.Struct):
    """A subscription while a page is folded."""

    id: str
    owner_role: str
    owner_enterprise: str | None
    events: list[str]
    status: str


class Receipt(msgspec.Struct, frozen=True, kw_only=True):
    """The body of a delivery and of a stream event."""

    type: str
    position: int
    occurred_at: str
    recorded_at: str
    subject: dict[str, Any]
    data: dict[str, Any]


def _subject_of(event: DomainEvent) -> tuple[str, Subject] | None:
    """The subject facts an event brings (kept for the receipts of later events)."""
    if isinstance(event, DeclarationSubmitted):
        f = event.facts
        other = f.destination_enterprise if f.destination_enterprise != f.declarant else None
        subject = Subject("declaration", f.declaration_no, f.declarant, other, f.zone)
        return str(event.originator_id), subject
    if isinstance(event, AccountBookOpened):
        return f"book:{event.book_no}", Subject(
            "book", event.book_no, event.enterprise, None, event.zone
        )
    if isinstance(event, WriteOffSubmitted):
        w = event.view
        number = f"{w.account_book} {w.period.from_}..{w.period.to}"
        return str(event.originator_id), Subject("write_off", number, w.enterprise, None, w.zone)
    if isinstance(event, LiabilityAssessed):
        b = event.view
        return str(event.originator_id), Subject(
            "tax_bill", b.subject_ref, b.enterprise, None, b.zone
        )
    if isinstance(event, StandaloneChecklistFiled):
        # (A declaration's checklist lives on the declaration's stream: its one receipt,
        # `checklist.filed`, names its enterprise itself.)
        return str(event.originator_id), Subject(
            "checklist",
            event.checklist_no,
            event.enterprise,
            event.destination_enterprise
            if event.destination_enterprise != event.enterprise
            else None,
            event.zone,
        )
    if isinstance(event, GatePassFiled):
        return str(event.originator_id), Subject(
            "gate_pass", event.pass_no, event.enterprise, None, event.zone
        )
    return None


class ReceiptsProjection:
    name = "receipts"
    # 2: checklists' and gate passes' receipts; every receipt once in `view_receipt_log`.
    version = 2
    handles: tuple[type[DomainEvent], ...] = (
        DeclarationSubmitted,
        AccountBookOpened,
        SubscriptionCreated,
        SubscriptionStatusChanged,
        RedeliveryRequested,
        *receipts.RECEIPT_EVENTS,
    )
    tables = TABLES

    def create_tables(self, cur: Any, *, indexes: bool = True) -> None:
        create(cur, DDL, indexes=indexes)

    def begin(self, cur: Any, previous: _ReceiptsFold | None) -> _ReceiptsFold:
        return _ReceiptsFold(cur, previous)


class _ReceiptsFold:
    def __init__(self, cur: Any, previous: _ReceiptsFold | None) -> None:
        self.cur = cur
        # What the page before made is not in the store yet while a replay's writer commits
        # it: the subjects and subscriptions come from that page's fold when there is one.
        self.subjects: RowCache[str, Subject | None] = RowCache(
            previous.subjects if previous is not None else None
        )
        # Read on first need, then kept (and handed to the next page).
        self.subs: dict[str, Sub] | None = previous.subs if previous is not None else None
        self.new_subjects: list[tuple[Any, ...]] = []
        self.new_subs: list[tuple[Any, ...]] = []
        self.sub_updates: list[tuple[Any, ...]] = []
        self.redeliveries: list[tuple[Any, ...]] = []
        self.outbox: list[tuple[Any, ...]] = []
        self.log: list[tuple[Any, ...]] = []

    def prefetch(self, page: list[tuple[LogEntry, DomainEvent]]) -> None:
        return None

    def apply(self, entry: LogEntry, event: DomainEvent) -> None:
        found = _subject_of(event)
        if found is not None:
            key, subject = found
            self.subjects[key] = subject
            row = (key, subject.kind, subject.number, subject.enterprise)
            self.new_subjects.append((*row, subject.other_enterprise, subject.zone))
        if isinstance(event, SubscriptionCreated | SubscriptionStatusChanged | RedeliveryRequested):
            return self._subscription(entry, event)
        draft = receipts.draft(event)
        if draft is not None:
            self._receipt(entry, event, draft)

    def _subscription(self, entry: LogEntry, event: DomainEvent) -> None:
        subs = self._subs()
        stream = entry.stream_id
        if isinstance(event, SubscriptionCreated):
            v = event.view
            owner = v.owner
            subs[stream] = Sub(stream, owner.role, owner.enterprise, list(v.events), v.status)
            events = _ENCODE.encode(v.events).decode()
            row = (stream, owner.role, owner.enterprise, v.url, events, v.status)
            self.new_subs.append((*row, entry.position, 0, 0, entry.position))
        elif isinstance(event, SubscriptionStatusChanged):
            if stream in subs:
                subs[stream].status = event.status
            self.sub_updates.append((event.status, entry.position, stream))
        elif isinstance(event, RedeliveryRequested):
            self.redeliveries.append((event.from_position, entry.position, entry.position, stream))

    def _subs(self) -> dict[str, Sub]:
        if self.subs is None:
            self.cur.execute(
                "SELECT id, owner_role, owner_enterprise, events, status FROM view_subscriptions"
                " WHERE status <> 'deleted'"
            )
            self.subs = {
                r["id"]: Sub(
                    r["id"],
                    r["owner_role"],
                    r["owner_enterprise"],
                    _PATTERNS.decode(r["events"]),
                    r["status"],
                )
                for r in self.cur.fetchall()
            }
        return self.subs

    def _subject(self, key: str) -> Subject | None:
        found = self.subjects.get(key)
        if found is MISSING:
            self.cur.execute(
                "SELECT kind, number, enterprise, other_enterprise, zone"
                " FROM view_receipt_subjects WHERE id = ?",
                (key,),
            )
            r = self.cur.fetchone()
            found = self.subjects[key] = (
                Subject(r["kind"], r["number"], r["enterprise"], r["other_enterprise"], r["zone"])
                if r is not None
                else None
            )
        return found

    def _receipt(self, entry: LogEntry, event: DomainEvent, draft: receipts.Draft) -> None:
        number, parties = self._parties(draft, event)
        body = Receipt(
            type=draft.type,
            position=entry.position,
            occurred_at=event.occurred_at.isoformat(),
            recorded_at=entry.recorded_at,
            subject={"kind": draft.subject_kind, "id": str(draft.subject_id), "number": number},
            data=draft.data,
        )
        text = _ENCODE.encode(body).decode()
        readers = sorted(parties or ())
        first, other = [*readers, None, None][:2]
        self.log.append((entry.position, draft.type, first, other, text))
        for sub in self._subs().values():
            if sub.status == "deleted" or not receipts.matches(sub.events, draft.type):
                continue
            if sub.owner_role == "enterprise" and sub.owner_enterprise not in (parties or ()):
                continue
            self.outbox.append((sub.id, entry.position, draft.type, text))

    def _parties(self, draft: receipts.Draft, event: DomainEvent) -> tuple[str, set[str] | None]:
        """The subject's number and the enterprises that may receive the receipt (None: a
        subject the receipts never saw made, which no enterprise's subscription takes)."""
        if isinstance(event, MovementRecorded):
            view = event.view
            book = self._subject(f"book:{view.account_book}")
            number = view.declaration_no or str(view.movement_id)
            return number, {book.enterprise} if book is not None else None
        if isinstance(event, ChecklistFiled):  # on its declaration's stream, says it all
            return event.checklist_no, {event.enterprise}
        subject = self._subject(str(draft.subject_id))
        if subject is None:
            return str(draft.subject_id), None
        parties = {subject.enterprise}
        if subject.other_enterprise:
            parties.add(subject.other_enterprise)
        return subject.number, parties

    def flush(self) -> Writes:
        writes = Writes()
        writes.add(
            "INSERT INTO view_receipt_subjects (id, kind, number, enterprise, other_enterprise,"
            " zone) VALUES (?,?,?,?,?,?)",
            self.new_subjects,
        )
        writes.add(
            "INSERT INTO view_subscriptions (id, owner_role, owner_enterprise, url, events,"
            " status, created_position, redeliver_from, redeliver_position, position)"
            " VALUES (?,?,?,?,?,?,?,?,?,?)",
            self.new_subs,
        )
        writes.add(
            "UPDATE view_subscriptions SET status = ?, position = ? WHERE id = ?",
            self.sub_updates,
        )
        writes.add(
            "UPDATE view_subscriptions SET redeliver_from = ?, redeliver_position = ?,"
            " position = ? WHERE id = ?",
            self.redeliveries,
        )
        writes.add(
            "INSERT INTO view_outbox (subscription_id, position, type, body) VALUES (?,?,?,?)",
            self.outbox,
        )
        writes.add(
            "INSERT INTO view_receipt_log (position, type, enterprise, other_enterprise, body)"
            " VALUES (?,?,?,?,?)",
            self.log,
        )
        self.new_subjects, self.new_subs, self.sub_updates = [], [], []
        self.redeliveries, self.outbox, self.log = [], [], []
        return writes
