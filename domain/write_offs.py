"""Write-off (核销) of an account book's period (issue #18 item 1): the figures from the log, the
physical count, the officer's certification (docs/write-off.md, docs/decisions/0029).

At the end of a cycle (processing books) or a year (logistics books) the enterprise writes its
book off against customs: per item and customs status, what it held at the start of the period,
what came in, what went out, what processing consumed and produced, what was scrapped
(destroyed under customs' witness), the stocktake adjustments, and what the book says is left,
against what it counted (GACC Announcement 2018 No. 23 on processing-trade write-off [verify];
the US analogue is the zone operator's annual reconciliation, 19 CFR 146.25).

Per item and goods status, over the period's entries (business time, China days inclusive):

    opening + receipts - issues - consumed + produced - scrap + adjustments = closing_book
    difference = counted - closing_book            (negative: a shortage)

The figures are read from the inventory views at one log position and fixed in the
`WriteOffSubmitted` event with that position and the chain's head hash there, so an auditor can
replay the log to it; the decision checks that no event has touched any of the book's items
since that position (each item's stock stream is at the version the figures counted), so the
figures are those of the log the write-off was recorded on.

Periods of one book never overlap (`BookPeriods`, one stream per book, written with each
write-off: two overlapping write-offs cannot both commit). The officer certifies: `accepted`,
or `differences_assessed`, which turns each bonded shortage into a duty liability
(domain/liabilities.py); either way the book is brought to the count (shortages drawn from the
item's lots of that status as far as they still hold them, surpluses a new bonded lot), in one
`adjustment` movement of the certification.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID, uuid5

import msgspec

from domain import values
from domain.account_book import AccountBook
from domain.declaration import SHANGHAI, GoodsStatus, Str64, Str255
from domain.errors import Conflict, InvalidTransition, ValidationFailed
from domain.events import Actor, AggregateState, DomainEvent, Pending, stream_id
from domain.unit_of_work import UnitOfWork
from domain.values import Problems

ZERO = Decimal(0)
WriteOffStatus = Literal["submitted", "accepted", "differences_assessed"]
CertificationResult = Literal["accepted", "differences_assessed"]
# Book entry kinds, by the column of the write-off that counts them (each with its sign in the
# equation above). Every entry kind the inventory writes is in exactly one column.
COLUMNS: dict[str, tuple[str, ...]] = {
    "receipts": ("receipt", "transfer_in"),
    "issues": ("issue", "transfer_out"),
    "consumed": ("consumption",),
    "produced": ("production", "by_product", "scrap"),
    "scrap": ("destruction",),
    "adjustments": ("adjustment",),
}
COLUMN_OF: dict[str, str] = {kind: column for column, kinds in COLUMNS.items() for kind in kinds}
# A period is a cycle or a year; a longer one is almost certainly a typing error.
MAX_PERIOD_DAYS = 731
# The days a period may name: the ledger's calendar for times (api/routes/common.py), so no
# bound of a period overflows when it becomes an instant.
EARLIEST_DAY = date(1900, 1, 1)
LATEST_DAY = date(8999, 12, 31)


# -- bodies -----------------------------------------------------------------------------------


class WriteOffPeriod(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """China days, both included."""

    from_: date = msgspec.field(name="from")
    to: date


class WriteOffCount(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What the physical count found of an item in one customs status at the period's end."""

    item_no: int
    goods_status: GoodsStatus
    quantity: Decimal


class SubmitWriteOff(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Body of POST /v1/account-books/{book}/write-offs (the book's enterprise)."""

    period: WriteOffPeriod
    counts: Annotated[list[WriteOffCount], msgspec.Meta(max_length=9999)]
    note: Str255 | None = None


class UnitValue(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The customs value of one unit of an item, for assessing its shortage when the item has
    no released price to value it by (or to value it otherwise, with the reason recorded)."""

    item_no: int
    unit_price: Decimal
    currency: Str64


class CertifyWriteOff(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Body of POST /v1/write-offs/{id}/certification (an officer)."""

    result: CertificationResult
    reason: Str255
    unit_values: Annotated[list[UnitValue], msgspec.Meta(max_length=999)] = []


# -- figures ----------------------------------------------------------------------------------


class ItemFigures(msgspec.Struct, frozen=True, kw_only=True):
    """One item in one customs status over the period, from the book's entries."""

    item_no: int
    goods_status: GoodsStatus
    opening: Decimal
    receipts: Decimal
    issues: Decimal
    consumed: Decimal
    produced: Decimal
    # Of `produced`: what processing made as by-products and as scrap (the rest is product).
    by_products: Decimal
    scrap_made: Decimal
    scrap: Decimal
    adjustments: Decimal
    closing_book: Decimal


class ConsumptionLine(msgspec.Struct, frozen=True, kw_only=True):
    """An input of a BOM over the period's processing under it: what the product made should
    have consumed (quantity x net / (1 - loss rate)) against what it did consume."""

    bom_ref: str
    output_item_no: int
    output_quantity: Decimal
    input_item_no: int
    expected: Decimal
    actual: Decimal
    # (actual - expected) / expected, 6 decimals; the BOM's tolerance it is judged against.
    deviation: Decimal
    tolerance: Decimal
    beyond_tolerance: bool


class ComputedFigures(msgspec.Struct, frozen=True, kw_only=True):
    """What the read side computed at `position` (the chain's hash there: `head_hash`), and
    the version each item's stock stream had there (what the decision checks)."""

    items: list[ItemFigures]
    consumption: list[ConsumptionLine]
    # Processing movements of the period that named no BOM (their consumption is unchecked).
    unchecked_processing: int
    position: int
    head_hash: str
    stock_versions: dict[int, int]


class WriteOffItem(ItemFigures, frozen=True, kw_only=True):
    counted: Decimal | None
    difference: Decimal | None
    consumption_check: list[ConsumptionLine]


class AssessedShortage(msgspec.Struct, frozen=True, kw_only=True):
    item_no: int
    hs_code: str
    quantity: Decimal
    unit_price: Decimal
    currency: str
    exchange_rate: Decimal
    customs_value_cny: Decimal
    tariff_rate: Decimal
    tariff: Decimal
    consumption_rate: Decimal
    consumption_tax: Decimal
    vat_rate: Decimal
    vat: Decimal
    # Where the unit price came from: `price_history` (the median of the item's released
    # prices) or `officer` (the certification's `unit_values`).
    valued_by: str


class BookAlignment(msgspec.Struct, frozen=True, kw_only=True):
    """How the certification brought the book to the count, per item and status: `wanted`
    the difference, `adjusted` what the book could still take of a shortage (goods that left
    since the period's end are no longer there to draw)."""

    item_no: int
    goods_status: GoodsStatus
    wanted: Decimal
    adjusted: Decimal


class Certification(msgspec.Struct, frozen=True, kw_only=True):
    result: CertificationResult
    reason: str
    officer: str
    certified_at: datetime
    assessed: list[AssessedShortage]
    tax: Decimal
    bill_id: UUID | None
    movement_id: UUID | None
    alignment: list[BookAlignment]


class WriteOffView(msgspec.Struct, frozen=True, kw_only=True):
    """A write-off as the API answers it."""

    write_off_id: UUID
    account_book: str
    enterprise: str
    zone: str
    period: WriteOffPeriod
    status: WriteOffStatus
    items: list[WriteOffItem]
    consumption_deviations: list[ConsumptionLine]
    unchecked_processing: int
    note: str | None
    submitted_by: str
    submitted_at: datetime
    # The log position the figures were computed at, and the chain's head hash there.
    position: int
    head_hash: str
    certification: Certification | None = None


# -- state and events -------------------------------------------------------------------------


class WriteOff(AggregateState, frozen=True, kw_only=True):
    view: WriteOffView


class WriteOffSubmitted(DomainEvent, frozen=True, kw_only=True):
    view: WriteOffView

    def apply(self, state: None) -> WriteOff:
        return WriteOff(id=self.originator_id, version=self.originator_version, view=self.view)


class WriteOffCertified(DomainEvent, frozen=True, kw_only=True):
    certification: Certification

    def apply(self, state: WriteOff) -> WriteOff:
        view = msgspec.structs.replace(
            state.view, status=self.certification.result, certification=self.certification
        )
        return WriteOff(id=state.id, version=self.originator_version, view=view)


class ClaimedPeriod(msgspec.Struct, frozen=True):
    start: date
    end: date
    write_off_id: UUID


class BookPeriods(AggregateState, frozen=True, kw_only=True):
    periods: list[ClaimedPeriod] = []


class WriteOffPeriodClaimed(DomainEvent, frozen=True, kw_only=True):
    period: ClaimedPeriod

    def apply(self, state: BookPeriods | None) -> BookPeriods:
        before = state.periods if state is not None else []
        return BookPeriods(
            id=self.originator_id, version=self.originator_version, periods=[*before, self.period]
        )


def book_periods_id(book_no: str) -> UUID:
    return stream_id("write-off-periods", book_no)


def write_off_id(book_no: str, period: WriteOffPeriod) -> UUID:
    """One write-off per book and period (periods never overlap, so this names it)."""
    return uuid5(book_periods_id(book_no), f"{period.from_.isoformat()}/{period.to.isoformat()}")


def period_bounds(period: WriteOffPeriod) -> tuple[datetime, datetime]:
    """The period as business time, half-open: [from 00:00, to + 1 day 00:00) China time."""
    start = datetime(period.from_.year, period.from_.month, period.from_.day, tzinfo=SHANGHAI)
    end = datetime(period.to.year, period.to.month, period.to.day, tzinfo=SHANGHAI)
    return start, end + timedelta(days=1)


def check_period(period: WriteOffPeriod, now: datetime) -> None:
    """Within the calendar the ledger keeps (422 at the date), from no later than to, at most
    MAX_PERIOD_DAYS, and over (422 at `$.period.to`)."""
    for loc, day in (("$.period.from", period.from_), ("$.period.to", period.to)):
        if not EARLIEST_DAY <= day <= LATEST_DAY:
            raise ValidationFailed.at(loc, f"must be a day from {EARLIEST_DAY} to {LATEST_DAY}")
    if period.to < period.from_:
        raise ValidationFailed.at("$.period.to", "must not be before from")
    if (period.to - period.from_).days + 1 > MAX_PERIOD_DAYS:
        raise ValidationFailed.at("$.period.to", f"a period is at most {MAX_PERIOD_DAYS} days")
    if period_bounds(period)[1] > now:
        raise ValidationFailed.at(
            "$.period.to",
            f"the period is not over yet: it ends at the end of {period.to} (China time)",
        )


def claim(
    periods: Pending[BookPeriods], period: WriteOffPeriod, wo: UUID, **common: object
) -> None:
    """The period, unless it overlaps one already written off (409 `period_overlaps`)."""
    for p in periods.state.periods if periods.state is not None else []:
        if p.start <= period.to and period.from_ <= p.end:
            raise Conflict(
                f"the period {period.from_}..{period.to} overlaps the write-off of"
                f" {p.start}..{p.end} ({p.write_off_id})",
                rule="period_overlaps",
            )
    periods.record(
        WriteOffPeriodClaimed, period=ClaimedPeriod(period.from_, period.to, wo), **common
    )


def counted_items(
    cmd: SubmitWriteOff, book: AccountBook, figures: list[ItemFigures]
) -> list[WriteOffItem]:
    """The figures with the count beside them: every count of a registered item, once per item
    and status; every row the book holds something of at the period's end counted."""
    p = Problems()
    counts: dict[tuple[int, GoodsStatus], Decimal] = {}
    for n, c in enumerate(cmd.counts):
        at = f"$.counts[{n}]"
        item = book.items.get(c.item_no)
        if item is None:
            p.add(f"{at}.item_no", f"item {c.item_no} is not in book {book.book_no}")
            continue
        if (c.item_no, c.goods_status) in counts:
            p.add(at, f"item {c.item_no} {c.goods_status} is counted twice")
            continue
        q = (
            Decimal("0")
            if c.quantity.is_finite() and c.quantity.is_zero()
            else p.check(f"{at}.quantity", values.quantity, c.quantity, item.unit)
        )
        if q is not None:
            counts[(c.item_no, c.goods_status)] = q
    rows: dict[tuple[int, GoodsStatus], ItemFigures] = {
        (f.item_no, f.goods_status): f for f in figures
    }
    missing = [
        f"{k[0]} {k[1]} ({f.closing_book})"
        for k, f in sorted(rows.items())
        if f.closing_book != 0 and k not in counts
    ]
    if missing:
        not_counted = ", ".join(missing)
        p.add(
            "$.counts",
            f"every item the book holds at the period's end is counted; not: {not_counted}",
        )
    p.raise_if_any()
    for key in counts:
        if key not in rows:
            rows[key] = empty_figures(*key)
    return [
        WriteOffItem(
            **msgspec.structs.asdict(f),
            counted=counts.get(k),
            difference=counts[k] - f.closing_book if k in counts else None,
            consumption_check=[],
        )
        for k, f in sorted(rows.items())
    ]


def empty_figures(item_no: int, goods_status: str) -> ItemFigures:
    status: GoodsStatus = "domestic" if goods_status == "domestic" else "bonded"
    return ItemFigures(
        item_no=item_no,
        goods_status=status,
        opening=ZERO,
        receipts=ZERO,
        issues=ZERO,
        consumed=ZERO,
        produced=ZERO,
        by_products=ZERO,
        scrap_made=ZERO,
        scrap=ZERO,
        adjustments=ZERO,
        closing_book=ZERO,
    )


def with_checks(items: list[WriteOffItem], lines: list[ConsumptionLine]) -> list[WriteOffItem]:
    """Each bonded input row carries its BOM lines (consumption is checked on bonded inputs:
    a BOM's inputs are drawn bonded unless the processing says otherwise)."""
    by_input: dict[int, list[ConsumptionLine]] = {}
    for line in lines:
        by_input.setdefault(line.input_item_no, []).append(line)
    return [
        msgspec.structs.replace(i, consumption_check=by_input.get(i.item_no, []))
        if i.goods_status == "bonded"
        else i
        for i in items
    ]


def submit(
    *,
    wo: Pending[WriteOff],
    periods: Pending[BookPeriods],
    cmd: SubmitWriteOff,
    book: AccountBook,
    figures: ComputedFigures,
    versions: dict[int, int],
    actor: Actor,
    now: datetime,
) -> WriteOffView:
    """Record the write-off: the period claimed, the figures as computed (if still current)."""
    if wo.state is not None:
        raise Conflict(
            f"the period {cmd.period.from_}..{cmd.period.to} of book {book.book_no} is written"
            f" off already ({wo.id})",
            rule="period_overlaps",
        )
    stale = [n for n, v in versions.items() if figures.stock_versions.get(n, 0) != v]
    if stale:
        raise Conflict(
            f"items {stale[:5]} moved while the write-off was computed; send it again",
            rule="concurrent_update",
        )
    common = {"actor": actor, "occurred_at": now}
    claim(periods, cmd.period, wo.id, **common)
    items = with_checks(counted_items(cmd, book, figures.items), figures.consumption)
    view = WriteOffView(
        write_off_id=wo.id,
        account_book=book.book_no,
        enterprise=book.enterprise,
        zone=book.zone,
        period=cmd.period,
        status="submitted",
        items=items,
        consumption_deviations=[c for c in figures.consumption if c.beyond_tolerance],
        unchecked_processing=figures.unchecked_processing,
        note=values.text("$.note", cmd.note) if cmd.note is not None else None,
        submitted_by=actor.name,
        submitted_at=now,
        position=figures.position,
        head_hash=figures.head_hash,
    )
    wo.record(WriteOffSubmitted, view=view, **common)
    return view


def certifiable(wo: WriteOff | None, cmd: CertifyWriteOff) -> WriteOff:
    if wo is None:
        raise LookupError("no such write-off")
    if wo.view.status != "submitted":
        raise InvalidTransition(
            f"the write-off is {wo.view.status} already", current_status=wo.view.status
        )
    values.text("$.reason", cmd.reason)
    return wo


def shortages(view: WriteOffView) -> list[WriteOffItem]:
    """The bonded rows whose count fell short of the book: what `differences_assessed`
    assesses (domestic goods bear no duty)."""
    return [
        i
        for i in view.items
        if i.goods_status == "bonded" and i.difference is not None and i.difference < 0
    ]


def last_day(view: WriteOffView) -> date:
    return view.period.to


# -- what the read side gives, turned into figures ------------------------------------------


class ProcessingRun(msgspec.Struct, kw_only=True):
    """The period's processing under one BOM: how much of each item it made and consumed."""

    made: dict[int, Decimal] = {}
    consumed: dict[int, Decimal] = {}


class BomTerms(msgspec.Struct, frozen=True, kw_only=True):
    """What the consumption check needs of a BOM (domain/bom.py)."""

    output_item_no: int
    tolerance: Decimal
    # input item -> (net consumption per unit of output, loss rate)
    inputs: dict[int, tuple[Decimal, Decimal]]


DEVIATION_PLACES = Decimal("0.000001")
QUANTITY_PLACES = Decimal("0.00001")


def trimmed(value: Decimal, places: Decimal) -> Decimal:
    """`value` rounded to `places`, without the trailing zeros (30, not 30.00000)."""
    text = f"{value.quantize(places):f}"
    # + 0: a tiny negative rounds to -0, which reads as 0.
    return Decimal(text.rstrip("0").rstrip(".") if "." in text else text) + 0


def consumption_lines(
    runs: dict[str, ProcessingRun], boms: dict[str, BomTerms]
) -> list[ConsumptionLine]:
    """Per BOM and input: expected = product made x net / (1 - loss rate), against what its
    processing consumed; beyond tolerance when |actual - expected| > tolerance x expected
    (the same rule a single processing movement is held to, domain/bom.py)."""
    lines: list[ConsumptionLine] = []
    for ref in sorted(runs):
        run, terms = runs[ref], boms.get(ref)
        if terms is None:
            continue
        made = run.made.get(terms.output_item_no, ZERO)
        for item_no, (net, loss) in sorted(terms.inputs.items()):
            expected = made * net / (1 - loss)
            actual = run.consumed.get(item_no, ZERO)
            deviation = (actual - expected) / expected if expected else ZERO
            lines.append(
                ConsumptionLine(
                    bom_ref=ref,
                    output_item_no=terms.output_item_no,
                    output_quantity=made,
                    input_item_no=item_no,
                    expected=trimmed(expected, QUANTITY_PLACES),
                    actual=actual,
                    deviation=trimmed(deviation, DEVIATION_PLACES),
                    tolerance=terms.tolerance,
                    beyond_tolerance=abs(actual - expected) > terms.tolerance * expected,
                )
            )
    return lines


class FigureSums:
    """Adds a book's entries up into the period's figures, per item and customs status."""

    def __init__(self) -> None:
        self.rows: dict[tuple[int, str], dict[str, Decimal]] = {}

    def add(
        self, item_no: int, goods_status: str, kind: str, quantity: Decimal, before: bool
    ) -> None:
        row = self.rows.get((item_no, goods_status))
        if row is None:
            row = self.rows[(item_no, goods_status)] = dict.fromkeys(
                ("opening", *COLUMNS, "by_products", "scrap_made"), ZERO
            )
        if before:
            row["opening"] += quantity
            return
        column = COLUMN_OF.get(kind, "adjustments")
        # Issues, consumption and scrap are counted as positive quantities taken off.
        row[column] += -quantity if column in ("issues", "consumed", "scrap") else quantity
        if kind == "by_product":
            row["by_products"] += quantity
        elif kind == "scrap":
            row["scrap_made"] += quantity

    def figures(self) -> list[ItemFigures]:
        out = []
        for (item_no, status), r in sorted(self.rows.items()):
            closing = (
                r["opening"]
                + r["receipts"]
                - r["issues"]
                - r["consumed"]
                + r["produced"]
                - r["scrap"]
                + r["adjustments"]
            )
            out.append(
                ItemFigures(
                    item_no=item_no,
                    goods_status="domestic" if status == "domestic" else "bonded",
                    closing_book=closing,
                    **r,
                )
            )
        return out


def refuse_written_off(uow: UnitOfWork, saves: Sequence[Pending[Any]], now: datetime) -> None:
    """A movement dated into a period already written off is refused (409
    `period_written_off`): the write-off's figures are the book's for good. Only events dated
    before today (China time) can fall in a period that is over, so only those are looked at."""
    today = now.astimezone(SHANGHAI).replace(hour=0, minute=0, second=0, microsecond=0)
    seen: dict[str, BookPeriods | None] = {}
    for pending in saves:
        state = pending.state
        book_no = getattr(state, "book_no", None)
        if not isinstance(book_no, str):
            continue
        for event in pending.events:
            if event.occurred_at >= today:
                continue
            if book_no not in seen:
                seen[book_no] = uow.load(book_periods_id(book_no), BookPeriods)
            periods = seen[book_no]
            day = event.occurred_at.astimezone(SHANGHAI).date()
            for p in periods.periods if periods is not None else []:
                if p.start <= day <= p.end:
                    raise Conflict(
                        f"{day} is in the period {p.start}..{p.end} of book {book_no}, written"
                        f" off already ({p.write_off_id}): record it on a later day",
                        rule="period_written_off",
                    )
