"""What clients read: the response shapes of enterprises, account books and declarations."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from uuid import UUID

import msgspec

from domain.account_book import AccountBook, BookItem
from domain.declaration import Declaration, DeclaredLine, Duties, Ecommerce, Transport
from domain.enterprise import Enterprise
from domain.events import Actor
from domain.movements import Lot, Paper
from domain.reference import Zone
from domain.reference_data import TableUsed


class ZoneView(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    name: str
    kind: str
    customs_office: str
    permits: list[str]
    name_zh: str | None = None


class EnterpriseView(msgspec.Struct, frozen=True, kw_only=True):
    uscc: str
    customs_code: str
    name: str
    credit_class: str


class BookItemView(msgspec.Struct, frozen=True, kw_only=True):
    item_no: int
    hs_code: str
    name: str
    unit: str
    on_hand: Decimal
    pending_out: Decimal
    in_transit_out: Decimal
    available: Decimal


class AccountBookView(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    book_no: str
    enterprise: str
    zone: str
    items: list[BookItemView]
    # The book's flag, present only while it holds goods that entered first and are still
    # undeclared past their deadline: their enter_first checklists (domain/enter_first.py). Read
    # from the write side (GET without `as_of`, the answer of registering items); an `as_of`
    # answer never has it.
    overdue_checklists: list[str] | None = None


class HistoryEntry(msgspec.Struct, frozen=True, kw_only=True):
    type: str
    recorded_at: datetime
    occurred_at: datetime
    actor: Actor


class DeclarationView(msgspec.Struct, frozen=True, kw_only=True):
    """A declaration as POST and the action routes answer it."""

    id: UUID
    declaration_no: str
    status: str
    channel: str | None
    risk_reasons: list[str]
    duties: Duties | None
    # The published tables its assessment read: kind, effective_from, version, digest.
    assessed_with: list[TableUsed] = []
    flow: str
    trade_mode: str
    declarant: str
    zone: str
    account_book: str | None
    destination_zone: str | None
    destination_account_book: str | None
    transport: Transport
    country: str
    currency: str
    incoterm: str | None
    freight: Decimal | None
    insurance: Decimal | None
    lines: list[DeclaredLine]
    ecommerce: Ecommerce | None
    client_ref: str | None
    occurred_at: datetime
    # The checklist (核注清单) it filed when released, if it moves a book (domain/checklists.py).
    checklist_no: str | None = None
    # A consolidated declaration: the collected checklists it declares (domain/collected.py).
    collected_checklists: list[str] = []


class DeclarationDetail(DeclarationView, frozen=True, kw_only=True):
    """A declaration as GET answers it: with its history of events."""

    history: list[HistoryEntry]


def zone_view(zone: Zone, on: datetime) -> ZoneView:
    return ZoneView(
        code=zone.code,
        name=zone.name,
        kind=zone.kind,
        customs_office=zone.customs_office,
        permits=zone.permits_on(on.date()),
        name_zh=zone.name_zh,
    )


def enterprise_view(e: Enterprise) -> EnterpriseView:
    return EnterpriseView(
        uscc=e.uscc, customs_code=e.customs_code, name=e.name, credit_class=e.credit_class
    )


def account_book_view(
    book: AccountBook, stock: Mapping[int, tuple[Decimal, Decimal, Decimal]] | None = None
) -> AccountBookView:
    """A book with each item's balances from (on hand, pending out, in transit out); zero
    without figures. `available = on_hand - pending_out`."""
    figures = stock or {}
    zero = (Decimal(0), Decimal(0), Decimal(0))
    return AccountBookView(
        book_no=book.book_no,
        enterprise=book.enterprise,
        zone=book.zone,
        items=[_item_view(i, *figures.get(n, zero)) for n, i in sorted(book.items.items())],
    )


def _item_view(
    item: BookItem, on_hand: Decimal, pending_out: Decimal, in_transit_out: Decimal
) -> BookItemView:
    return BookItemView(
        item_no=item.item_no,
        hs_code=item.hs_code,
        name=item.name,
        unit=item.unit,
        on_hand=on_hand,
        pending_out=pending_out,
        in_transit_out=in_transit_out,
        available=on_hand - pending_out,
    )


def declaration_view(d: Declaration) -> DeclarationView:
    f = d.facts
    return DeclarationView(
        id=d.id,
        declaration_no=f.declaration_no,
        status=d.status,
        channel=d.channel,
        risk_reasons=list(d.risk_reasons),
        duties=d.duties,
        assessed_with=list(d.assessed_with),
        flow=f.flow,
        trade_mode=f.trade_mode,
        declarant=f.declarant,
        zone=f.zone,
        account_book=f.account_book,
        destination_zone=f.destination_zone,
        destination_account_book=f.destination_account_book,
        transport=f.transport,
        country=f.country,
        currency=f.currency,
        incoterm=f.incoterm,
        freight=f.freight,
        insurance=f.insurance,
        lines=list(f.lines),
        ecommerce=f.ecommerce,
        client_ref=f.client_ref,
        occurred_at=d.submitted_at,
        checklist_no=d.checklist_no,
        collected_checklists=list(d.collected),
    )


def declaration_detail(d: Declaration, history: list[HistoryEntry]) -> DeclarationDetail:
    view = declaration_view(d)
    return DeclarationDetail(**msgspec.structs.asdict(view), history=history)


class LotDetail(msgspec.Struct, frozen=True, kw_only=True):
    """GET /v1/lots/{lot_id}: where a lot is, what it holds, where it came from and went."""

    lot_id: UUID
    zone: str
    account_book: str
    item_no: int
    goods_status: str
    quantity_in: Decimal
    on_hand: Decimal
    parents: list[UUID]
    children: list[UUID]
    documents: list[Paper]


def lot_detail(lot: Lot) -> LotDetail:
    return LotDetail(
        lot_id=lot.id,
        zone=lot.zone,
        account_book=lot.account_book,
        item_no=lot.item_no,
        goods_status=lot.goods_status,
        quantity_in=lot.quantity_in,
        on_hand=lot.on_hand,
        parents=list(lot.parents),
        children=list(lot.children),
        documents=list(lot.documents),
    )
