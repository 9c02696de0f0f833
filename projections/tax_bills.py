"""Tax bills (issue #18 item 4): one bill per declaration whose duties are owed, from the day
customs ask for them, and one per duty liability (a write-off's assessed differences, a flagged
stocktake shortage: domain/liabilities.py, issued when recorded, cancelled by an officer's
force-majeure waiver), with their payments, for `GET /v1/tax-bills`. The fee a settling payment
fixed in the log (`LateFeeFixed`, `LiabilityPaid.late_fee`) is the fee shown from then on.

A declaration's bill is issued the first time the declaration enters `awaiting_payment` (its
assessment on the green channel, or the end of its document review or inspection): customs fill
in the bill when nothing but payment stands between the goods and their release, so the time
customs take to decide never counts against the enterprise [verify: GACC issues the 税款缴款书
after acceptance of the declaration]. Its tax is the assessment's total; `DutiesPaid` adds
payments with their China days; a rejection, withdrawal or refusal before it is settled cancels
it. The due date, the late fee and the status are computed on read (`domain/tax_bills.py`), as
of the read's China day: payments stop the fee accruing on what they paid, so a settled bill's
fee no longer changes.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

import msgspec

from domain import tax_bills as tb
from domain.clearance import (
    DeclarationAssessed,
    DeclarationRejected,
    DutiesPaid,
    InspectionRecorded,
    LateFeeFixed,
    ReleaseGranted,
    TransferAccepted,
    TransferRefused,
)
from domain.declaration import SHANGHAI, DeclarationSubmitted, DeclarationWithdrawn
from domain.events import DomainEvent
from domain.liabilities import LiabilityAssessed, LiabilityPaid, LiabilityWaived, SubjectKind
from domain.scope import Scope
from projections.columns import tenancy_sql
from projections.folding import MISSING, LogEntry, RowCache, ViewTable, Writes, create

DDL = (
    "CREATE TABLE IF NOT EXISTS view_tax_bills ("
    " bill_id TEXT PRIMARY KEY, subject_kind TEXT NOT NULL, subject_ref TEXT NOT NULL,"
    " declaration_no TEXT, enterprise TEXT NOT NULL,"
    " zone TEXT NOT NULL, account_book TEXT, tax TEXT NOT NULL, paid TEXT NOT NULL,"
    " billed INTEGER NOT NULL, settled INTEGER NOT NULL, cancelled INTEGER NOT NULL,"
    " issued_on TEXT, due_by TEXT, fixed_fee TEXT,"
    " payments TEXT NOT NULL, first_position BIGINT NOT NULL, position BIGINT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS view_tax_bills_first ON view_tax_bills (first_position)",
)
TABLES: tuple[ViewTable, ...] = (ViewTable("view_tax_bills", ("bill_id",)),)
# Events that may put a declaration in `awaiting_payment`, and those that end it unpaid.
STATUS_EVENTS = (DeclarationAssessed, InspectionRecorded, ReleaseGranted, TransferAccepted)
CANCELLING = (DeclarationRejected, DeclarationWithdrawn, TransferRefused)


class PaymentView(msgspec.Struct, frozen=True, kw_only=True):
    on: date
    amount: Decimal


class TaxBillView(msgspec.Struct, frozen=True, kw_only=True):
    """A bill as `GET /v1/tax-bills` lists it, as of the read's China day."""

    # A declaration's bill has the declaration's id; a liability's, the liability's.
    bill_id: str
    subject_kind: Literal["declaration", SubjectKind]
    # The declaration's number, or what the liability is for (a write-off's book and
    # period, a stocktake's movement).
    subject_ref: str
    declaration_no: str | None
    enterprise: str
    zone: str
    account_book: str | None
    issued_on: date
    due_by: date
    tax: Decimal
    paid: Decimal
    unpaid: Decimal
    late_fee: Decimal
    status: tb.BillStatus
    payments: list[PaymentView]
    position: int


class _Bill:
    """A bill while a page is folded."""

    __slots__ = (
        "account_book",
        "billed",
        "cancelled",
        "changed",
        "declaration_no",
        "enterprise",
        "first",
        "fixed_fee",
        "inserted",
        "issued_on",
        "kind",
        "paid",
        "payments",
        "position",
        "ref",
        "tax",
        "zone",
    )

    def __init__(
        self,
        facts: tuple[str | None, str, str, str | None],
        tax: Decimal,
        position: int,
        *,
        inserted: bool,
        subject: tuple[str, str] | None = None,
    ) -> None:
        self.declaration_no, self.enterprise, self.zone, self.account_book = facts
        self.kind, self.ref = subject or ("declaration", facts[0] or "")
        self.fixed_fee: Decimal | None = None
        self.tax = tax
        self.billed = 0  # 1 once its assessment asks for duties
        self.paid = Decimal(0)
        self.cancelled = 0
        self.issued_on: date | None = None
        self.payments: list[PaymentView] = []
        self.first = self.position = position
        self.inserted = self.changed = inserted


_PAYMENTS = msgspec.json.Decoder(list[PaymentView])
_ENCODE = msgspec.json.Encoder(decimal_format="string")


def _day(moment: datetime) -> date:
    return moment.astimezone(SHANGHAI).date()


class TaxBillsProjection:
    name = "tax_bills"
    # 2: duty liabilities (write-off differences, stocktake shortages) are bills too.
    version = 2
    handles: tuple[type[DomainEvent], ...] = (
        DeclarationSubmitted,
        *STATUS_EVENTS,
        DutiesPaid,
        LateFeeFixed,
        *CANCELLING,
        LiabilityAssessed,
        LiabilityPaid,
        LiabilityWaived,
    )
    tables = TABLES

    def create_tables(self, cur: Any, *, indexes: bool = True) -> None:
        create(cur, DDL, indexes=indexes)

    def begin(self, cur: Any, previous: _TaxBillsFold | None) -> _TaxBillsFold:
        return _TaxBillsFold(cur, previous)


class _TaxBillsFold:
    def __init__(self, cur: Any, previous: _TaxBillsFold | None) -> None:
        self.cur = cur
        p = previous
        # declaration stream -> its row, made at its submission (`billed` once its assessment
        # asks for duties; None: a declaration the view never saw submitted)
        self.bills: RowCache[str, _Bill | None] = RowCache(p.bills if p else None)

    def prefetch(self, page: list[tuple[LogEntry, DomainEvent]]) -> None:
        return None

    def apply(self, entry: LogEntry, event: DomainEvent) -> None:
        stream = entry.stream_id
        if isinstance(event, DeclarationSubmitted):
            # Its assessment may come pages later (a page may end inside a write): the row is
            # made now, so the assessment finds it in the store.
            f = event.facts
            facts = (f.declaration_no, f.declarant, f.zone, f.account_book)
            self.bills[stream] = _Bill(facts, Decimal(0), entry.position, inserted=True)
            return
        if isinstance(event, LiabilityAssessed | LiabilityPaid | LiabilityWaived):
            return self._liability(entry, event)
        bill = self._bill(stream)
        if bill is None:
            raise LookupError(f"declaration {stream} decided on before it was submitted")
        if isinstance(event, DeclarationAssessed) and event.duties.total > 0:
            bill.tax, bill.billed = event.duties.total, 1
        if isinstance(event, STATUS_EVENTS) and event.status == "awaiting_payment":
            if bill.issued_on is None:
                bill.issued_on = _day(event.occurred_at)
        elif isinstance(event, DutiesPaid):
            bill.paid += event.amount
            bill.payments = [
                *bill.payments,
                PaymentView(on=_day(event.occurred_at), amount=event.amount),
            ]
        elif isinstance(event, LateFeeFixed):
            bill.fixed_fee = event.amount
        elif isinstance(event, CANCELLING) and bill.paid < bill.tax:
            bill.cancelled = 1
        bill.position, bill.changed = entry.position, True

    def _liability(
        self, entry: LogEntry, event: LiabilityAssessed | LiabilityPaid | LiabilityWaived
    ) -> None:
        """A liability is issued when it is recorded; the payment that settles it carries the
        late fee fixed then; an officer's waiver cancels it."""
        stream = entry.stream_id
        if isinstance(event, LiabilityAssessed):
            v = event.view
            facts = (None, v.enterprise, v.zone, v.account_book)
            bill = _Bill(
                facts, v.tax, entry.position, inserted=True, subject=(v.subject_kind, v.subject_ref)
            )
            bill.billed, bill.issued_on = int(v.tax > 0), v.issued_on
            self.bills[stream] = bill
            return
        found = self._bill(stream)
        if found is None:
            raise LookupError(f"liability {stream} changed before it was assessed")
        if isinstance(event, LiabilityPaid):
            found.paid += event.amount
            day = _day(event.occurred_at)
            found.payments = [*found.payments, PaymentView(on=day, amount=event.amount)]
            if event.late_fee is not None:
                found.fixed_fee = event.late_fee
        else:
            found.cancelled = 1
        found.position, found.changed = entry.position, True

    def _bill(self, stream: str) -> _Bill | None:
        found = self.bills.get(stream)
        if found is MISSING:
            self.cur.execute("SELECT * FROM view_tax_bills WHERE bill_id = ?", (stream,))
            r = self.cur.fetchone()
            found = self.bills[stream] = _stored(r) if r is not None else None
        return found

    def flush(self) -> Writes:
        writes = Writes()
        inserts: list[tuple[Any, ...]] = []
        updates: list[tuple[Any, ...]] = []
        for stream, bill in self.bills.now.items():
            if bill is None or not bill.changed:
                continue
            issued = bill.issued_on
            due = tb.due_by(issued).isoformat() if issued is not None else None
            payments = _ENCODE.encode(bill.payments).decode()
            settled = int(bill.paid >= bill.tax)
            day = issued.isoformat() if issued is not None else None
            fee = str(bill.fixed_fee) if bill.fixed_fee is not None else None
            values = (str(bill.paid), bill.billed, settled, bill.cancelled, day)
            if bill.inserted:
                head = (
                    stream,
                    bill.kind,
                    bill.ref,
                    bill.declaration_no,
                    bill.enterprise,
                    bill.zone,
                )
                facts = (bill.account_book, str(bill.tax))
                tail = (due, fee, payments, bill.first, bill.position)
                inserts.append((*head, *facts, *values, *tail))
            else:
                updates.append((str(bill.tax), *values, due, fee, payments, bill.position, stream))
            bill.inserted = bill.changed = False
        writes.add(
            "INSERT INTO view_tax_bills (bill_id, subject_kind, subject_ref, declaration_no,"
            " enterprise, zone, account_book, tax, paid, billed, settled, cancelled, issued_on,"
            " due_by, fixed_fee, payments, first_position, position)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            inserts,
        )
        writes.add(
            "UPDATE view_tax_bills SET tax = ?, paid = ?, billed = ?, settled = ?, cancelled = ?,"
            " issued_on = ?, due_by = ?, fixed_fee = ?, payments = ?, position = ?"
            " WHERE bill_id = ?",
            updates,
        )
        return writes


def _stored(r: Any) -> _Bill:
    facts = (r["declaration_no"], r["enterprise"], r["zone"], r["account_book"])
    subject = (r["subject_kind"], r["subject_ref"])
    bill = _Bill(
        facts, Decimal(r["tax"]), int(r["first_position"]), inserted=False, subject=subject
    )
    bill.fixed_fee = Decimal(r["fixed_fee"]) if r["fixed_fee"] is not None else None
    bill.paid = Decimal(r["paid"])
    bill.billed = int(r["billed"])
    bill.cancelled = int(r["cancelled"])
    bill.issued_on = date.fromisoformat(r["issued_on"]) if r["issued_on"] else None
    bill.payments = _PAYMENTS.decode(r["payments"])
    bill.position = int(r["position"])
    return bill


STATUS_SQL = {
    "paid": " AND settled = 1",
    "overdue": " AND settled = 0 AND due_by < ?",
    "unpaid": " AND settled = 0 AND due_by >= ?",
}


class TaxBillQueries:
    """Reads of the bills, with the caller's tenancy applied in the query."""

    def __init__(self, views: Any) -> None:
        self.views = views

    def bills(
        self, *, after: int, limit: int, scope: Scope, status: str | None, today: date
    ) -> list[tuple[int, TaxBillView]]:
        """Issued bills not cancelled, in the order they were assessed; `status` as of `today`
        (a China day): `unpaid` (not yet due), `overdue`, `paid`."""
        sql = (
            "SELECT * FROM view_tax_bills WHERE first_position > ? AND billed = 1"
            " AND issued_on IS NOT NULL AND cancelled = 0"
        )
        params: list[Any] = [after]
        if status is not None:
            sql += STATUS_SQL[status]
            if status != "paid":
                params.append(today.isoformat())
        sql += tenancy_sql(scope, params, enterprise=("enterprise",), zone=("zone",))
        sql += " ORDER BY first_position LIMIT ?"
        params.append(limit)
        with self.views.read() as cur:
            cur.execute(sql, params)
            rows = cur.fetchall()
        return [(int(r["first_position"]), bill_view(r, today)) for r in rows]


def bill_view(r: Any, today: date) -> TaxBillView:
    tax, paid = Decimal(r["tax"]), Decimal(r["paid"])
    issued = date.fromisoformat(r["issued_on"])
    due = date.fromisoformat(r["due_by"])
    payments = _PAYMENTS.decode(r["payments"])
    paid_days = [tb.Payment(p.on, p.amount) for p in payments]
    fixed = r["fixed_fee"]
    return TaxBillView(
        bill_id=r["bill_id"],
        subject_kind=r["subject_kind"],
        subject_ref=r["subject_ref"],
        declaration_no=r["declaration_no"],
        enterprise=r["enterprise"],
        zone=r["zone"],
        account_book=r["account_book"],
        issued_on=issued,
        due_by=due,
        tax=tax,
        paid=paid,
        unpaid=max(tax - paid, Decimal("0.00")),
        # Fixed by the payment that settled it, where that payment recorded one.
        late_fee=Decimal(fixed) if fixed is not None else tb.late_fee(tax, due, paid_days, today),
        status=tb.status(tax, due, paid_days, today),
        payments=payments,
        position=int(r["position"]),
    )
