"""Bills of materials (BOM): how much of each input one unit of an output consumes.

DOMAIN.md: processing runs under a BOM with a consumption ratio, `unit consumption = net
consumption / (1 - process loss rate)`. A book's enterprise (or an admin) registers a BOM under
a reference unique in the book, `POST /v1/account-books/{book_no}/boms`; a processing movement
that names it (`bom_ref`) must produce exactly the BOM's output item, consume exactly its input
items, and consume of each input the expected quantity (output quantity x unit consumption)
within the BOM's tolerance (a fraction of the expected quantity, default 0.02, i.e. +/- 2 %).

A BOM is **immutable** once registered: it records one event, `BomRegistered`, and never
another; a new version of a recipe is a new BOM under a new reference. That is why a processing
movement that depends on a BOM records nothing on its stream (see `check_consumption`).

Numbers: `net_consumption` is a quantity of input per ONE unit of output (> 0, at most 5
decimals); `loss_rate` and `tolerance` are in [0, 1) with at most 4 decimals. The view's
`unit_consumption` is rounded half-up to 6 decimals for display; the check itself is exact
(it multiplies through by `1 - loss_rate` instead of dividing).
"""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Annotated
from uuid import UUID

import msgspec

from domain import values
from domain.account_book import AccountBook
from domain.declaration import Str64
from domain.errors import AlreadyExists, Conflict, ValidationFailed
from domain.events import Actor, AggregateState, DomainEvent, Pending, stream_id
from domain.values import Problems

DEFAULT_TOLERANCE = Decimal("0.02")
RATE_PLACES = 4
UNIT_CONSUMPTION_PLACES = Decimal("0.000001")
# Exact arithmetic: 15 integer digits and 5 decimals per factor never come near this precision.
PRECISION = 100


class BomInput(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One input of a BOM: how much of it one unit of the output needs, net, and the process
    loss rate on top of that."""

    item_no: int
    net_consumption: Decimal
    loss_rate: Decimal


class RegisterBom(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Body of POST /v1/account-books/{book_no}/boms (the book's enterprise, or an admin)."""

    bom_ref: Str64
    output_item_no: int
    inputs: Annotated[list[BomInput], msgspec.Meta(max_length=99)]
    tolerance: Decimal = DEFAULT_TOLERANCE


class BomInputView(msgspec.Struct, frozen=True, kw_only=True):
    item_no: int
    net_consumption: Decimal
    loss_rate: Decimal
    # net_consumption / (1 - loss_rate), rounded half-up to 6 decimals (display only).
    unit_consumption: Decimal


class BomView(msgspec.Struct, frozen=True, kw_only=True):
    """What POST /v1/account-books/{book_no}/boms and GET .../boms/{bom_ref} answer."""

    bom_ref: str
    account_book: str
    output_item_no: int
    inputs: list[BomInputView]
    tolerance: Decimal


class Bom(AggregateState, frozen=True, kw_only=True):
    """A registered BOM. It never changes: no event follows `BomRegistered`."""

    book_no: str
    bom_ref: str
    output_item_no: int
    inputs: list[BomInput]
    tolerance: Decimal


class BomRegistered(DomainEvent, frozen=True, kw_only=True):
    """A bill of materials was registered in an account book (the only event of its stream)."""

    book_no: str
    bom_ref: str
    output_item_no: int
    inputs: list[BomInput]
    tolerance: Decimal

    def apply(self, state: None) -> Bom:
        return Bom(
            id=self.originator_id,
            version=self.originator_version,
            book_no=self.book_no,
            bom_ref=self.bom_ref,
            output_item_no=self.output_item_no,
            inputs=list(self.inputs),
            tolerance=self.tolerance,
        )


def bom_id(book_no: str, bom_ref: str) -> UUID:
    """A BOM's stream: its reference is unique within its book (book numbers hold no NUL)."""
    return stream_id("bom", f"{book_no}\x00{bom_ref}")


def valid_ref(loc: str, ref: str) -> str:
    """A BOM reference: 1 to 64 characters, no control characters."""
    return values.text(loc, ref, max_length=64)


def rate(loc: str, value: Decimal) -> Decimal:
    """A loss rate or tolerance: in [0, 1), at most 4 decimals."""
    r = values.decimal_value(loc, value, places=RATE_PLACES)
    if r >= 1:
        raise ValidationFailed.at(loc, "must be below 1 (a fraction, 0.02 is 2 %)")
    return r


def unit_consumption(net: Decimal, loss_rate: Decimal) -> Decimal:
    """net / (1 - loss), rounded half-up to 6 decimals: what the view shows."""
    with localcontext(prec=PRECISION):
        return (net / (1 - loss_rate)).quantize(UNIT_CONSUMPTION_PLACES, ROUND_HALF_UP)


def validate(cmd: RegisterBom, book: AccountBook) -> RegisterBom:
    """Check a registration against the book; returns it with its numbers in plain notation."""
    p = Problems()
    p.check("$.bom_ref", valid_ref, cmd.bom_ref)
    if cmd.output_item_no not in book.items:
        p.add("$.output_item_no", f"item {cmd.output_item_no} is not in book {book.book_no}")
    tolerance = p.check("$.tolerance", rate, cmd.tolerance)
    if not cmd.inputs:
        p.add("$.inputs", "a BOM consumes at least one input")
    seen: set[int] = set()
    inputs: list[BomInput] = []
    for n, entry in enumerate(cmd.inputs):
        at = f"$.inputs[{n}]"
        if entry.item_no not in book.items:
            p.add(f"{at}.item_no", f"item {entry.item_no} is not in book {book.book_no}")
        elif entry.item_no == cmd.output_item_no:
            p.add(f"{at}.item_no", "the output item cannot also be an input")
        elif entry.item_no in seen:
            p.add(f"{at}.item_no", f"item {entry.item_no} is listed twice")
        seen.add(entry.item_no)
        net = p.check(
            f"{at}.net_consumption",
            lambda loc, v: values.decimal_value(loc, v, places=5, positive=True),
            entry.net_consumption,
        )
        loss = p.check(f"{at}.loss_rate", rate, entry.loss_rate)
        if net is not None and loss is not None:
            inputs.append(BomInput(item_no=entry.item_no, net_consumption=net, loss_rate=loss))
    p.raise_if_any()
    return msgspec.structs.replace(cmd, inputs=inputs, tolerance=tolerance)


def register(
    pending: Pending[Bom], cmd: RegisterBom, book: AccountBook, actor: Actor, now: datetime
) -> Bom:
    """Register a BOM once: the same reference again in the same book is 409 `already_exists`.

    The decision also depends on the book (its items, its enterprise), which records nothing:
    items are only ever added to a book, never removed or redefined, and a book's enterprise
    never changes, so no concurrent write to the book can invalidate it.
    """
    checked = validate(cmd, book)
    if pending.state is not None:
        raise AlreadyExists(f"BOM {cmd.bom_ref} is already registered in book {book.book_no}")
    pending.record(
        BomRegistered,
        actor=actor,
        occurred_at=now,
        book_no=book.book_no,
        bom_ref=checked.bom_ref,
        output_item_no=checked.output_item_no,
        inputs=list(checked.inputs),
        tolerance=checked.tolerance,
    )
    assert pending.state is not None
    return pending.state


def bom_view(bom: Bom) -> BomView:
    return BomView(
        bom_ref=bom.bom_ref,
        account_book=bom.book_no,
        output_item_no=bom.output_item_no,
        inputs=[
            BomInputView(
                item_no=i.item_no,
                net_consumption=i.net_consumption,
                loss_rate=i.loss_rate,
                unit_consumption=unit_consumption(i.net_consumption, i.loss_rate),
            )
            for i in bom.inputs
        ],
        tolerance=bom.tolerance,
    )


def within_tolerance(
    consumed: Decimal, produced: Decimal, net: Decimal, loss_rate: Decimal, tolerance: Decimal
) -> bool:
    """|consumed - expected| <= tolerance x expected, expected = produced x net / (1 - loss).

    Exact: both sides are multiplied by (1 - loss) > 0, so nothing is divided or rounded.
    """
    with localcontext(prec=PRECISION):
        keep = 1 - loss_rate
        needed = produced * net  # = expected x (1 - loss)
        return abs(consumed * keep - needed) <= tolerance * needed


def check_consumption(
    bom: Bom, inputs_by_item: dict[int, Decimal], outputs_by_item: dict[int, Decimal]
) -> None:
    """A processing movement against its BOM (quantities summed per item).

    422 at `$.outputs` unless its one output item is the BOM's; 409 `bom_mismatch` unless it
    consumes exactly the BOM's input items; 409 `bom_ratio` when an input's consumption lies
    outside the tolerance around the expected quantity.

    The BOM's stream gets no event from the movement, yet the rule of docs/architecture.md
    ("every aggregate a decision depends on records an event in the same write") holds: the
    version check exists to catch a state that changed between read and write, and a BOM never
    changes after `BomRegistered` - what the command read is what is true at its commit.
    """
    if list(outputs_by_item) != [bom.output_item_no]:
        raise ValidationFailed.at(
            "$.outputs",
            f"BOM {bom.bom_ref} produces item {bom.output_item_no} and nothing else",
        )
    produced = outputs_by_item[bom.output_item_no]
    expected_items = {i.item_no for i in bom.inputs}
    missing = sorted(expected_items - set(inputs_by_item))
    extra = sorted(set(inputs_by_item) - expected_items)
    if missing or extra:
        unused, outside = ", ".join(map(str, missing)), ", ".join(map(str, extra))
        raise Conflict(
            f"the processing does not consume item(s) {unused} and consumes item(s) {outside}"
            f" outside it of BOM {bom.bom_ref}"
            if missing and extra
            else f"the processing does not consume item(s) {unused} of BOM {bom.bom_ref}"
            if missing
            else f"the processing consumes item(s) {outside} outside it of BOM {bom.bom_ref}",
            rule="bom_mismatch",
        )
    for entry in bom.inputs:
        consumed = inputs_by_item[entry.item_no]
        if not within_tolerance(
            consumed, produced, entry.net_consumption, entry.loss_rate, bom.tolerance
        ):
            with localcontext(prec=PRECISION):
                expected = (produced * entry.net_consumption / (1 - entry.loss_rate)).quantize(
                    UNIT_CONSUMPTION_PLACES, ROUND_HALF_UP
                )
            raise Conflict(
                f"item {entry.item_no}: consumed {consumed}, expected {expected} "
                f"(+/- {(bom.tolerance * 100).normalize():f} % under BOM {bom.bom_ref})",
                rule="bom_ratio",
            )
