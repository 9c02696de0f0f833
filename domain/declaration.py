"""Customs declarations: submission, the declaration number, withdrawal, and their views."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Annotated, Literal
from uuid import UUID

import msgspec

from domain import values
from domain.errors import Conflict, ValidationFailed
from domain.events import AggregateState, DomainEvent, stream_id
from domain.reference import (
    IMPORT_FLOWS,
    Zone,
)
from domain.reference_data import TableUsed

Flow = Literal[
    "first_line_in", "first_line_out", "second_line_in", "second_line_out", "transfer", "direct_in"
]
TransportMode = Literal["rail", "air", "road", "sea", "express", "post", "other"]
Incoterm = Literal["EXW", "FCA", "FAS", "FOB", "CFR", "CIF", "CPT", "CIP", "DAP", "DPU", "DDP"]
GoodsStatus = Literal["bonded", "domestic"]
Status = Literal[
    "submitted",
    "awaiting_acceptance",
    "document_review",
    "inspection",
    "awaiting_payment",
    "released",
    "rejected",
    "withdrawn",
    "refused",
]
AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True)]
Str64 = Annotated[str, msgspec.Meta(max_length=64)]
Str255 = Annotated[str, msgspec.Meta(max_length=255)]
FINAL_STATUSES = ("released", "rejected", "withdrawn", "refused")
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


# A buyer's personal fields: the log keeps them sealed (domain/privacy.py), as tokens longer
# than the values, so their length is documented here and checked by the submission's rules
# (domain/submission.py), not by the decoder that also reads them back from the log.
Personal64 = Annotated[str, msgspec.Meta(extra_json_schema={"maxLength": 64})]
Personal255 = Annotated[str, msgspec.Meta(extra_json_schema={"maxLength": 255})]


class Order(_Body, frozen=True, kw_only=True):
    order_no: Str64
    buyer_id: Personal64
    buyer_name: Personal255
    amount: Decimal


class Payment(_Body, frozen=True, kw_only=True):
    payment_no: Str64
    payer_id: Personal64
    amount: Decimal


class Waybill(_Body, frozen=True, kw_only=True):
    waybill_no: Str64
    consignee_id: Personal64


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
    # Required on every flow but `direct_in` (9610 parcels never sit in a book), refused there.
    account_book: Str64 | None = None
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
    # A first_line_in declaring goods that entered first: their checklist (domain/enter_first.py).
    checklist: Str64 | None = None
    # A second_line_out declaring, at a collection period's end, the goods that left on these
    # `collected` checklists (domain/collected.py).
    collected_checklists: Annotated[list[Str64], msgspec.Meta(max_length=99)] | None = None


class WithdrawDeclaration(_Body, frozen=True, kw_only=True):
    """Body of POST /v1/declarations/{ref}/withdrawal."""

    reason: Str255


class RecordInspection(_Body, frozen=True, kw_only=True):
    """Body of POST /v1/declarations/{ref}/inspection-results."""

    result: Literal["conform", "nonconform"]
    findings: Annotated[str, msgspec.Meta(max_length=2000)]


class ReleaseDeclaration(_Body, frozen=True, kw_only=True):
    """Body of POST /v1/declarations/{ref}/release: an officer's release, nothing to add."""


class RejectDeclaration(_Body, frozen=True, kw_only=True):
    """Body of POST /v1/declarations/{ref}/rejection."""

    reason: Str255


class AcceptTransfer(_Body, frozen=True, kw_only=True):
    """Body of POST /v1/declarations/{ref}/acceptance: the destination enterprise takes the
    transfer into its book, nothing to add (an empty body is `{}`)."""


class RefuseTransfer(_Body, frozen=True, kw_only=True):
    """Body of POST /v1/declarations/{ref}/refusal: the destination enterprise refuses it."""

    reason: Str255


class PayDuties(_Body, frozen=True, kw_only=True):
    """Body of POST /v1/declarations/{ref}/payments."""

    amount: Decimal
    currency: Str64
    reference: Str64

    def amount_within(self, outstanding: Decimal, status: str) -> Decimal:
        """The payment's amount: in CNY (422 at `$.currency`), positive with at most two
        decimals, a reference given, and never more than is `outstanding` (409
        `payment_exceeds_outstanding`). The same for a declaration's duties and a liability."""
        if self.currency != "CNY":
            raise ValidationFailed.at("$.currency", "duties are paid in CNY")
        amount = values.amount("$.amount", self.amount, positive=True)
        values.text("$.reference", self.reference)
        if amount > outstanding:
            raise Conflict(
                f"the payment of {amount} CNY exceeds the {outstanding} CNY outstanding",
                rule="payment_exceeds_outstanding",
                current_status=status,
            )
        return amount


class DeclaredLine(msgspec.Struct, frozen=True, kw_only=True, gc=False):
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
    # Transfers: what the destination zone has received of what was dispatched.
    quantity_received: Decimal = Decimal(0)


class Duties(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Duties of a declaration in CNY (assessed by the clearance rules)."""

    tariff: Decimal
    vat: Decimal
    consumption_tax: Decimal
    total: Decimal
    paid: Decimal
    outstanding: Decimal
    currency: str = "CNY"
    # What returns of a retail list refunded of its taxes (domain/returns.py).
    refunded: Decimal = Decimal("0.00")


class LineTaxes(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A retail line's share of its list's VAT and consumption tax: what its returns refund
    from (domain/duties.py apportions the list's taxes to lines)."""

    vat: Decimal
    consumption_tax: Decimal


class DeclarationFacts(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """What a declaration says, once validated: the content of its submission event."""

    declaration_no: str
    flow: Flow
    trade_mode: str
    declarant: str
    zone: str
    # None on a `direct_in` (9610) parcel: it is cleared against its transport, in no book.
    account_book: str | None
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

    @property
    def book(self) -> str:
        """The book a movement under this declaration changes. Movements check the flow first
        (409 `wrong_flow`), so a bookless `direct_in` parcel never gets here; if it did, it is
        refused the same way."""
        if self.account_book is None:
            raise Conflict(f"a {self.flow} declaration moves no account book", rule="wrong_flow")
        return self.account_book


def needs_acceptance(facts: DeclarationFacts) -> bool:
    """A transfer into another enterprise's book waits for that enterprise's acceptance; one
    between two books of the same enterprise does not."""
    return (
        facts.flow == "transfer"
        and facts.destination_enterprise is not None
        and facts.destination_enterprise != facts.declarant
    )


class Declaration(AggregateState, frozen=True, kw_only=True):
    """A declaration as the write side knows it.

    Its sequences are tuples: a server keeps many declarations, and a tuple of immutable
    values, unlike a list, is nothing the cyclic garbage collector walks (domain/events.py).
    """

    facts: DeclarationFacts
    status: Status
    submitted_at: datetime
    channel: str | None = None
    risk_reasons: tuple[str, ...] = ()
    duties: Duties | None = None
    # The calendar year whose buyer quota a retail list counts against (None otherwise).
    quota_year: int | None = None
    # The published reference tables its assessment read (domain/reference_data.py).
    assessed_with: tuple[TableUsed, ...] = ()
    # Lines whose figures the assessment found absurd: never in the unit-value history.
    outlier_lines: tuple[int, ...] = ()
    # When it entered `released` (a retail list's return window runs from there).
    released_at: datetime | None = None
    # Retail lists: each line's share of the taxes, and what buyers returned per line; the
    # returned goods readmitted into the zone per line (domain/returns.py).
    line_taxes: dict[int, LineTaxes] = {}
    returned: dict[int, Decimal] = {}
    readmitted: dict[int, Decimal] = {}
    # The movements of its goods through the gate, in order (the lots a return came from).
    movement_ids: tuple[UUID, ...] = ()
    # The checklist it filed when it entered `released` (domain/checklists.py).
    checklist_no: str | None = None
    # Its tax bill (domain/tax_bills.py): the day it was issued, the payments by day, and the
    # late fee fixed by the payment that settled it (None: none was owed).
    billed_on: date | None = None
    paid_on: tuple[PaidOn, ...] = ()
    late_fee: Decimal | None = None
    # The collected checklists whose goods it declares (domain/collected.py).
    collected: tuple[str, ...] = ()


class PaidOn(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A payment of duties: the China day it was made and how much it paid."""

    on: date
    amount: Decimal


def billed_on(state: Declaration, status: str, at: datetime) -> date | None:
    """The China day the declaration's tax bill was issued: the first time it entered
    `awaiting_payment` (domain/tax_bills.py; projections/tax_bills.py keeps the same day)."""
    if state.billed_on is not None or status != "awaiting_payment":
        return state.billed_on
    return at.astimezone(SHANGHAI).date()


def released_at(state: Declaration, status: str, at: datetime) -> datetime | None:
    """When a declaration entered `released`: kept from the first time, else `at` if the
    event releases it (events set it in `apply`, so a replay finds the same instant)."""
    if state.released_at is not None or status != "released":
        return state.released_at
    return at


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

    Recorded on the series stream (numbered straight from the series: serial n is version n)
    or on the stream of one of its blocks (domain/numbering.py: serial b * BLOCK_SIZE + v is
    version v of block b). Either stream's state is its last event alone (`apply` ignores the
    state before it), so the ledger reads only the last event of the stream.
    """

    serial: int
    declaration_id: UUID

    def apply(self, state: NumberSeries | None) -> NumberSeries:
        return NumberSeries(
            id=self.originator_id, version=self.originator_version, last_serial=self.serial
        )


class NumberSeries(AggregateState, frozen=True, kw_only=True):
    """The last serial issued (or, once the series is numbered in blocks, reserved) in one
    number series or block of one (domain/numbering.py)."""

    last_serial: int
    # Whether the series has reserved a block: from then on it is numbered in blocks only.
    in_blocks: bool = False


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
