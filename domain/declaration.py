"""Customs declarations: submission, the declaration number, withdrawal, and their views."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Annotated, Literal
from uuid import UUID

import msgspec

from domain import values
from domain.account_book import AccountBook
from domain.errors import InvalidTransition
from domain.events import Actor, AggregateState, DomainEvent, Pending, stream_id
from domain.reference import (
    IMPORT_FLOWS,
    INBOUND_FLOWS,
    OUTBOUND_FLOWS,
    RETAIL_TRADE_MODES,
    TRADE_MODES,
    Zone,
)
from domain.values import Problems

Flow = Literal["first_line_in", "first_line_out", "second_line_in", "second_line_out", "transfer"]
TransportMode = Literal["rail", "air", "road", "sea", "express", "post", "other"]
Incoterm = Literal["EXW", "FCA", "FAS", "FOB", "CFR", "CIF", "CPT", "CIP", "DAP", "DPU", "DDP"]
GoodsStatus = Literal["bonded", "domestic"]
Status = Literal[
    "submitted",
    "document_review",
    "inspection",
    "awaiting_payment",
    "released",
    "rejected",
    "withdrawn",
]
AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True)]
Str64 = Annotated[str, msgspec.Meta(max_length=64)]
Str255 = Annotated[str, msgspec.Meta(max_length=255)]
FINAL_STATUSES = ("released", "rejected", "withdrawn")
# China has kept UTC+8 all year since 1991: the year of a declaration number is the year there.
SHANGHAI = timezone(timedelta(hours=8))


class _Body(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class Transport(_Body, frozen=True, kw_only=True):
    """How the goods travel: mode, the train/flight/vehicle reference, an ISO 6346 container."""

    mode: TransportMode
    reference: Str64
    container: Str64 | None = None


class DeclarationLine(_Body, frozen=True, kw_only=True):
    """One line of goods as the declarant submits it."""

    line_no: int
    item_no: int
    hs_code: Str64
    description: Str255
    quantity: Decimal
    unit: Str64
    unit_price: Decimal
    origin_country: Str64 | None = None
    destination_item_no: int | None = None
    goods_status: GoodsStatus | None = None


class Order(_Body, frozen=True, kw_only=True):
    order_no: Str64
    buyer_id: Str64
    buyer_name: Str255
    amount: Decimal


class Payment(_Body, frozen=True, kw_only=True):
    payment_no: Str64
    payer_id: Str64
    amount: Decimal


class Waybill(_Body, frozen=True, kw_only=True):
    waybill_no: Str64
    consignee_id: Str64


class Ecommerce(_Body, frozen=True, kw_only=True):
    """The three documents of a cross-border e-commerce retail list: order, payment, waybill."""

    order: Order
    payment: Payment
    waybill: Waybill


class SubmitDeclaration(_Body, frozen=True, kw_only=True):
    """Body of POST /v1/declarations."""

    flow: Flow
    trade_mode: Str64
    declarant: Str64
    zone: Str64
    account_book: Str64
    transport: Transport
    country: Str64
    currency: Str64
    lines: list[DeclarationLine]
    destination_zone: Str64 | None = None
    destination_account_book: Str64 | None = None
    incoterm: Incoterm | None = None
    freight: Decimal | None = None
    insurance: Decimal | None = None
    ecommerce: Ecommerce | None = None
    client_ref: Str64 | None = None
    occurred_at: AwareDatetime | None = None


class WithdrawDeclaration(_Body, frozen=True, kw_only=True):
    """Body of POST /v1/declarations/{ref}/withdrawal."""

    reason: Str255


class DeclaredLine(msgspec.Struct, frozen=True, kw_only=True):
    """A line as the ledger keeps it: defaults resolved, and how much has moved under it."""

    line_no: int
    item_no: int
    hs_code: str
    description: str
    quantity: Decimal
    unit: str
    unit_price: Decimal
    origin_country: str | None
    destination_item_no: int | None
    goods_status: GoodsStatus | None
    quantity_moved: Decimal = Decimal(0)


class Duties(msgspec.Struct, frozen=True, kw_only=True):
    """Duties of a declaration in CNY (assessed by the clearance rules)."""

    tariff: Decimal
    vat: Decimal
    consumption_tax: Decimal
    total: Decimal
    paid: Decimal
    outstanding: Decimal
    currency: str = "CNY"


class DeclarationFacts(msgspec.Struct, frozen=True, kw_only=True):
    """What a declaration says, once validated: the content of its submission event."""

    declaration_no: str
    flow: Flow
    trade_mode: str
    declarant: str
    zone: str
    account_book: str
    destination_zone: str | None
    destination_account_book: str | None
    destination_enterprise: str | None
    transport: Transport
    country: str
    currency: str
    incoterm: str | None
    freight: Decimal | None
    insurance: Decimal | None
    lines: list[DeclaredLine]
    ecommerce: Ecommerce | None
    client_ref: str | None


class Declaration(AggregateState, frozen=True, kw_only=True):
    """A declaration as the write side knows it."""

    facts: DeclarationFacts
    status: Status
    submitted_at: datetime
    channel: str | None = None
    risk_reasons: list[str] = []
    duties: Duties | None = None


class DeclarationSubmitted(DomainEvent, frozen=True, kw_only=True):
    """An enterprise submitted a declaration and the ledger gave it its number."""

    facts: DeclarationFacts
    status: Status

    def apply(self, state: None) -> Declaration:
        return Declaration(
            id=self.originator_id,
            version=self.originator_version,
            facts=self.facts,
            status=self.status,
            submitted_at=self.occurred_at,
        )


class DeclarationWithdrawn(DomainEvent, frozen=True, kw_only=True):
    """The declarant withdrew the declaration before a final decision."""

    reason: str

    def apply(self, state: Declaration) -> Declaration:
        return msgspec.structs.replace(state, version=self.originator_version, status="withdrawn")


class DeclarationNumberIssued(DomainEvent, frozen=True, kw_only=True):
    """The next serial of a (customs office, year, direction) series went to a declaration.

    The series' state is its last event alone (`apply` ignores the state before it), so the
    ledger reads only the last event of the stream; serial n is version n of the stream.
    """

    serial: int
    declaration_id: UUID

    def apply(self, state: NumberSeries | None) -> NumberSeries:
        return NumberSeries(
            id=self.originator_id, version=self.originator_version, last_serial=self.serial
        )


class NumberSeries(AggregateState, frozen=True, kw_only=True):
    """The last serial issued in one declaration-number series."""

    last_serial: int


def number_series_id(office: str, year: int, direction: str) -> UUID:
    return stream_id("declaration-number", f"{office}:{year}:{direction}")


def declaration_id(principal: str, idempotency_key: str) -> UUID:
    """A retried submission (same principal and key) collides with its first run."""
    return stream_id("declaration", f"{principal}\x00{idempotency_key}")


def direction_of(flow: str) -> str:
    return "1" if flow in IMPORT_FLOWS else "0"


def series_of(zone: Zone, flow: str, now: datetime) -> tuple[str, int, str]:
    return zone.customs_office, now.astimezone(SHANGHAI).year, direction_of(flow)


def format_number(office: str, year: int, direction: str, serial: int) -> str:
    """18 digits: customs office (4), year (4), direction (1), serial (9)."""
    if serial > 999_999_999:
        msg = f"declaration number series {office}{year}{direction} is exhausted"
        raise OverflowError(msg)
    return f"{office}{year:04d}{direction}{serial:09d}"


@dataclass(frozen=True)
class SubmissionContext:
    """What a submission is checked against, loaded by the ledger before deciding."""

    zones: dict[str, Zone]
    book: AccountBook | None
    destination_book: AccountBook | None
    declarant_registered: bool
    now: datetime


def validate_submission(cmd: SubmitDeclaration, ctx: SubmissionContext) -> list[DeclaredLine]:
    """Every check that depends on the request and reference data; names each bad field."""
    p = Problems()
    p.check("$.declarant", values.uscc_code, cmd.declarant)
    if not ctx.declarant_registered:
        p.add("$.declarant", "enterprise is not registered")
    if cmd.trade_mode not in TRADE_MODES:
        p.add("$.trade_mode", f"unknown trade mode {cmd.trade_mode!r}")
    zone = ctx.zones.get(cmd.zone)
    if zone is None:
        p.add("$.zone", f"unknown zone {cmd.zone!r}")
    book = ctx.book
    if book is None or book.enterprise != cmd.declarant or book.zone != cmd.zone:
        p.add("$.account_book", "no such account book of the declarant in this zone")
        book = None
    p.check("$.transport.reference", values.text, cmd.transport.reference)
    if cmd.transport.container is not None:
        p.check("$.transport.container", values.container_no, cmd.transport.container)
    p.check("$.country", values.country, cmd.country)
    p.check("$.currency", values.currency, cmd.currency)
    for name in ("freight", "insurance"):
        value = getattr(cmd, name)
        if value is not None:
            p.check(f"$.{name}", values.amount, value)
    if cmd.client_ref is not None:
        p.check("$.client_ref", values.text, cmd.client_ref)
    p.check("$.occurred_at", values.business_time, cmd.occurred_at, ctx.now)
    destination = _check_transfer(cmd, ctx, p)
    lines = _check_lines(cmd, book, destination, p)
    _check_ecommerce(cmd, p)
    p.raise_if_any()
    return lines


def _check_transfer(
    cmd: SubmitDeclaration, ctx: SubmissionContext, p: Problems
) -> AccountBook | None:
    if cmd.flow != "transfer":
        for name in ("destination_zone", "destination_account_book"):
            if getattr(cmd, name) is not None:
                p.add(f"$.{name}", "only a transfer names a destination")
        return None
    if cmd.destination_zone is None:
        p.add("$.destination_zone", "a transfer must name its destination zone")
    elif cmd.destination_zone not in ctx.zones:
        p.add("$.destination_zone", f"unknown zone {cmd.destination_zone!r}")
    elif cmd.destination_zone == cmd.zone:
        p.add("$.destination_zone", "a transfer goes to another zone")
    if cmd.destination_account_book is None:
        p.add("$.destination_account_book", "a transfer must name the destination book")
        return None
    dest = ctx.destination_book
    if dest is None or dest.zone != cmd.destination_zone:
        p.add("$.destination_account_book", "no such account book in the destination zone")
        return None
    return dest


def _check_lines(
    cmd: SubmitDeclaration, book: AccountBook | None, dest: AccountBook | None, p: Problems
) -> list[DeclaredLine]:
    if not 1 <= len(cmd.lines) <= 999:
        p.add("$.lines", "a declaration has 1 to 999 lines")
    inbound = cmd.flow in INBOUND_FLOWS
    seen: set[int] = set()
    lines = []
    for n, line in enumerate(cmd.lines[:999]):
        at = f"$.lines[{n}]"
        if not 1 <= line.line_no <= 999:
            p.add(f"{at}.line_no", "line numbers run from 1 to 999")
        elif line.line_no in seen:
            p.add(f"{at}.line_no", f"line {line.line_no} appears twice")
        seen.add(line.line_no)
        p.check(f"{at}.hs_code", values.hs_code, line.hs_code)
        p.check(f"{at}.description", values.text, line.description)
        unit = p.check(f"{at}.unit", values.unit, line.unit)
        quantity = p.check(f"{at}.quantity", values.quantity, line.quantity, line.unit)
        price = p.check(f"{at}.unit_price", values.unit_price, line.unit_price)
        if book is not None:
            item = book.items.get(line.item_no)
            if item is None:
                p.add(f"{at}.item_no", f"item {line.item_no} is not registered in the book")
            else:
                if item.hs_code != line.hs_code:
                    p.add(f"{at}.hs_code", f"item {line.item_no} is registered as {item.hs_code}")
                if unit is not None and item.unit != line.unit:
                    p.add(f"{at}.unit", f"item {line.item_no} is kept in {item.unit}")
        if inbound:
            if line.origin_country is None:
                p.add(f"{at}.origin_country", "inbound lines need an origin country")
            else:
                p.check(f"{at}.origin_country", values.country, line.origin_country)
        elif line.origin_country is not None:
            p.check(f"{at}.origin_country", values.country, line.origin_country)
        if line.goods_status is not None and cmd.flow not in OUTBOUND_FLOWS:
            p.add(f"{at}.goods_status", "only outbound lines choose a goods status")
        destination_item = _destination_item(cmd, line, dest, at, p)
        if quantity is not None and price is not None:
            lines.append(
                DeclaredLine(
                    line_no=line.line_no,
                    item_no=line.item_no,
                    hs_code=line.hs_code,
                    description=line.description,
                    quantity=quantity,  # type: ignore[arg-type]
                    unit=line.unit,
                    unit_price=price,  # type: ignore[arg-type]
                    origin_country=line.origin_country,
                    destination_item_no=destination_item,
                    goods_status=(line.goods_status or "bonded")
                    if cmd.flow in OUTBOUND_FLOWS
                    else None,
                )
            )
    return lines


def _destination_item(
    cmd: SubmitDeclaration, line: DeclarationLine, dest: AccountBook | None, at: str, p: Problems
) -> int | None:
    if cmd.flow != "transfer":
        if line.destination_item_no is not None:
            p.add(f"{at}.destination_item_no", "only transfer lines name a destination item")
        return None
    number = line.destination_item_no if line.destination_item_no is not None else line.item_no
    if dest is not None:
        item = dest.items.get(number)
        if item is None:
            p.add(f"{at}.destination_item_no", f"item {number} is not in the destination book")
        elif item.unit != line.unit:
            p.add(f"{at}.destination_item_no", f"item {number} is kept in {item.unit}")
    return number


def _check_ecommerce(cmd: SubmitDeclaration, p: Problems) -> None:
    retail = cmd.trade_mode in RETAIL_TRADE_MODES and cmd.flow == "second_line_out"
    e = cmd.ecommerce
    if not retail:
        if e is not None:
            p.add("$.ecommerce", "only retail lists (9610/1210/1239, second_line_out) carry it")
        return
    if e is None:
        p.add("$.ecommerce", "a retail list needs its order, payment and waybill")
        return
    p.check("$.ecommerce.order.buyer_id", values.resident_id, e.order.buyer_id)
    p.check("$.ecommerce.order.buyer_name", values.text, e.order.buyer_name)
    order_amount = p.check("$.ecommerce.order.amount", values.amount, e.order.amount, True)
    payment_amount = p.check("$.ecommerce.payment.amount", values.amount, e.payment.amount, True)
    # Three-document match: the payer is the buyer and pays exactly the order amount.
    if e.payment.payer_id != e.order.buyer_id:
        p.add("$.ecommerce.payment.payer_id", "the payer must be the buyer")
    if order_amount is not None and payment_amount is not None and order_amount != payment_amount:
        p.add("$.ecommerce.payment.amount", "must equal the order amount")
    single_item = len(cmd.lines) == 1 and cmd.lines[0].quantity == 1
    if order_amount is not None and order_amount > 5000 and not single_item:  # type: ignore[operator]
        p.add("$.ecommerce.order.amount", "over CNY 5,000 per transaction")


def submit(
    declaration: Pending[Declaration],
    series: Pending[NumberSeries],
    cmd: SubmitDeclaration,
    lines: list[DeclaredLine],
    ctx: SubmissionContext,
    actor: Actor,
) -> Declaration:
    """Number the declaration from its series and record its submission, in one write."""
    zone = ctx.zones[cmd.zone]
    office, year, direction = series_of(zone, cmd.flow, ctx.now)
    serial = (series.state.last_serial if series.state else 0) + 1
    number = format_number(office, year, direction, serial)
    occurred_at = cmd.occurred_at or ctx.now
    series.record(
        DeclarationNumberIssued,
        actor=actor,
        occurred_at=occurred_at,
        serial=serial,
        declaration_id=declaration.id,
    )
    facts = DeclarationFacts(
        declaration_no=number,
        flow=cmd.flow,
        trade_mode=cmd.trade_mode,
        declarant=cmd.declarant,
        zone=cmd.zone,
        account_book=cmd.account_book,
        destination_zone=cmd.destination_zone,
        destination_account_book=cmd.destination_account_book,
        destination_enterprise=ctx.destination_book.enterprise if ctx.destination_book else None,
        transport=cmd.transport,
        country=cmd.country,
        currency=cmd.currency,
        incoterm=cmd.incoterm,
        freight=values.amount("$.freight", cmd.freight) if cmd.freight is not None else None,
        insurance=values.amount("$.insurance", cmd.insurance)
        if cmd.insurance is not None
        else None,
        lines=lines,
        ecommerce=cmd.ecommerce,
        client_ref=cmd.client_ref,
    )
    # Until the clearance rules exist the declaration waits, unassessed, in `submitted`.
    declaration.record(
        DeclarationSubmitted, actor=actor, occurred_at=occurred_at, facts=facts, status="submitted"
    )
    assert declaration.state is not None
    return declaration.state


def withdraw(
    declaration: Pending[Declaration], cmd: WithdrawDeclaration, actor: Actor, now: datetime
) -> Declaration:
    """The declarant withdraws a declaration that has no final decision yet."""
    state = declaration.state
    assert state is not None
    if state.status in FINAL_STATUSES:
        raise InvalidTransition(
            f"a {state.status} declaration cannot be withdrawn", current_status=state.status
        )
    values.text("$.reason", cmd.reason)
    declaration.record(DeclarationWithdrawn, actor=actor, occurred_at=now, reason=cmd.reason)
    return declaration.state  # type: ignore[return-value]
