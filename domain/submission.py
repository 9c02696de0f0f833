"""Submitting a declaration: every check of its content, then its number and its facts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any
from uuid import UUID

import msgspec

from domain import collected, privacy, retail, values
from domain.account_book import AccountBook, account_book_id
from domain.assessment import (
    AssessmentInputs,
    ClearanceRules,
    assess_submission,
    check_zone_permits,
    is_retail,
)
from domain.checklists import file_on_release
from domain.declaration import (
    SHANGHAI,
    Declaration,
    DeclarationFacts,
    DeclarationLine,
    DeclarationNumberIssued,
    DeclarationSubmitted,
    DeclaredLine,
    SubmitDeclaration,
    format_number,
    number_series_id,
    series_of,
)
from domain.enter_first import ChecklistNamed, check_naming, declare_on_release
from domain.enterprise import Enterprise, enterprise_id
from domain.events import Actor, Pending
from domain.exits import reserve_on_release
from domain.numbering import take_serial
from domain.quota import TRANSACTION_LIMIT_CNY
from domain.reference import (
    BOOKLESS_FLOWS,
    INBOUND_FLOWS,
    OUTBOUND_FLOWS,
    TRADE_MODES,
    Zone,
    mode_allowed,
)
from domain.reference_rules import ASSESSMENT_KINDS, read_registers, rules_in_force
from domain.unit_of_work import Decision, UnitOfWork
from domain.unit_values import observe_on_release
from domain.values import Problems
from domain.views import DeclarationView, declaration_view


@dataclass(frozen=True)
class Submission:
    """A declaration as submitted, with what it is decided against: the stream its id comes
    from (the same (principal, key) as the request's idempotency record, written in the same
    transaction: with no record there is no such declaration either), the zones and rules,
    and the vault that seals a retail list's buyer (domain/privacy.py)."""

    cmd: SubmitDeclaration
    declaration_id: UUID
    zones: dict[str, Zone]
    rules: ClearanceRules
    actor: Actor
    vault: privacy.BuyerVault


def decide_submission(uow: UnitOfWork, sub: Submission, now: datetime) -> Decision[DeclarationView]:
    """Check, number, assess and (green and nothing to pay) release a declaration, reserving
    an outbound one's stock, in one write: the number series, the declaration, the buyer's
    quota, the unit-value histories (released only) and the book items' stock."""
    cmd = sub.cmd
    enterprise = uow.load(enterprise_id(cmd.declarant), Enterprise)
    destination = cmd.destination_account_book
    ctx = SubmissionContext(
        zones=sub.zones,
        book=uow.load(account_book_id(cmd.account_book), AccountBook) if cmd.account_book else None,
        destination_book=uow.load(account_book_id(destination), AccountBook)
        if destination
        else None,
        declarant_registered=enterprise is not None,
        now=now,
    )
    lines = validate_submission(cmd, ctx)
    assert enterprise is not None  # validation refused an unregistered declarant
    day = now.astimezone(SHANGHAI).date()
    listed = is_retail(cmd.flow, cmd.trade_mode)
    registers = read_registers(
        uow, (*ASSESSMENT_KINDS, "positive-list") if listed else ASSESSMENT_KINDS
    )
    if listed:
        retail.check_positive_list(registers.get("positive-list"), day, lines)
    zone = sub.zones[cmd.zone]
    check_zone_permits(cmd, zone, day)
    office, year, direction = series_of(zone, cmd.flow, now)
    series = number_series_id(office, year, direction)
    declaration = uow.new(sub.declaration_id, Declaration)
    if cmd.checklist is not None:
        check_naming(
            uow,
            cmd.checklist,
            flow=cmd.flow,
            declarant=cmd.declarant,
            book=cmd.account_book,
            lines=cmd.lines,
        )
    rules = rules_in_force(registers, sub.rules, day)
    on = None
    if cmd.collected_checklists is not None:
        found = collected.named(
            uow,
            cmd.collected_checklists,
            flow=cmd.flow,
            declarant=cmd.declarant,
            book=cmd.account_book,
            lines=cmd.lines,
        )
        on = collected.assessment_day(found, rules.duties)
    state, numbered = submit(
        uow, declaration, series, _sealed(cmd, sub.vault), lines, ctx, sub.actor
    )
    if cmd.checklist is not None:
        declaration.record(
            ChecklistNamed,
            checklist_no=cmd.checklist,
            actor=sub.actor,
            occurred_at=state.submitted_at,
        )
    if cmd.collected_checklists is not None:
        declaration.record(
            collected.CollectedChecklistsNamed,
            checklists=list(cmd.collected_checklists),
            actor=sub.actor,
            occurred_at=state.submitted_at,
        )
    inputs = AssessmentInputs(cmd, lines, enterprise, rules, sub.actor, now, registers, on)
    assessed = assess_submission(uow, declaration, inputs)
    observed = observe_on_release(uow, None, declaration, sub.actor, state.submitted_at)
    stocks = reserve_on_release(uow, None, declaration, sub.actor, state.submitted_at)
    # A declaration naming a checklist whose goods entered first declares it before any other
    # would be filed (it files none); for every other one declare_on_release reads nothing.
    checklist = declare_on_release(uow, None, declaration, sub.actor, state.submitted_at)
    checklist += file_on_release(uow, None, declaration, sub.actor, state.submitted_at)
    checklist += collected.declare_on_release(uow, None, declaration, sub.actor, state.submitted_at)
    assert declaration.state is not None
    saves: list[Pending[Any]] = [*numbered, declaration, *assessed, *observed, *stocks, *checklist]
    return Decision(saves, declaration_view(declaration.state))


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
    elif not mode_allowed(cmd.flow, cmd.trade_mode):
        p.add("$.trade_mode", _MODE_FOR_FLOW, rule="mode_not_allowed_for_flow")
    zone = ctx.zones.get(cmd.zone)
    if zone is None:
        p.add("$.zone", f"unknown zone {cmd.zone!r}")
    book = _check_book(cmd, ctx, p)
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
    if is_retail(cmd.flow, cmd.trade_mode) and cmd.ecommerce is not None:
        retail.check_order(cmd, lines, p)
    p.raise_if_any()
    return lines


# 9610 is direct mail (GACC Announcement 2014 No. 12 [verify]): parcels from abroad, never in
# a book; 1210/1239 sell a zone's bonded stock (a second-line exit).
_MODE_FOR_FLOW = "9610 is declared only with flow direct_in, and direct_in only with 9610"


def _check_book(cmd: SubmitDeclaration, ctx: SubmissionContext, p: Problems) -> AccountBook | None:
    """The declarant's book in `zone`; none on a `direct_in` parcel, which moves no book."""
    if cmd.flow in BOOKLESS_FLOWS:
        if cmd.account_book is not None:
            p.add("$.account_book", f"a {cmd.flow} parcel moves no account book: leave it out")
        return None
    book = ctx.book
    if cmd.account_book is None:
        p.add("$.account_book", f"a {cmd.flow} declaration names its account book")
    elif book is None or book.enterprise != cmd.declarant or book.zone != cmd.zone:
        p.add("$.account_book", "no such account book of the declarant in this zone")
    else:
        return book
    return None


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
    if dest is None or dest.zone != cmd.destination_zone or _foreign_misfit(cmd, dest):
        # Another enterprise's book that does not fit is answered as an unknown one, word
        # for word: nothing about its zone, items or units (docs/security.md).
        p.add("$.destination_account_book", UNKNOWN_DESTINATION)
        return None
    return dest


UNKNOWN_DESTINATION = "no such account book in the destination zone"


def _foreign_misfit(cmd: SubmitDeclaration, dest: AccountBook) -> bool:
    """Whether a book of another enterprise than the declarant fails any line's destination
    item (not in the book, kept in another unit). The declarant's own book is checked line
    by line instead, each problem at its line."""
    if dest.enterprise == cmd.declarant:
        return False
    probe = Problems()
    for n, line in enumerate(cmd.lines[:999]):
        _destination_item(cmd, line, dest, f"$.lines[{n}]", probe)
    return bool(probe.errors)


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
                    quantity=quantity,
                    unit=line.unit,
                    unit_price=price,
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


def _sealed(cmd: SubmitDeclaration, vault: privacy.BuyerVault) -> SubmitDeclaration:
    """The submission as the log keeps it: a retail list's buyer sealed with the buyer's key
    (checked before, in clear; the assessment reads the quota's identity from the seal)."""
    if cmd.ecommerce is None:
        return cmd
    return msgspec.structs.replace(cmd, ecommerce=privacy.sealed(cmd.ecommerce, vault))


def _check_ecommerce(cmd: SubmitDeclaration, p: Problems) -> None:
    e = cmd.ecommerce
    if not is_retail(cmd.flow, cmd.trade_mode):
        if e is not None:
            p.add(
                "$.ecommerce",
                "only retail lists (9610 direct_in, 1210/1239 second_line_out) carry it",
            )
        return
    if e is None:
        p.add("$.ecommerce", "a retail list needs its order, payment and waybill")
        return
    p.check("$.ecommerce.order.buyer_id", values.resident_id, e.order.buyer_id)
    p.check("$.ecommerce.order.buyer_name", values.text, e.order.buyer_name)
    consignee = partial(values.text, max_length=64)
    p.check("$.ecommerce.waybill.consignee_id", consignee, e.waybill.consignee_id)
    order_amount = p.check("$.ecommerce.order.amount", values.positive_amount, e.order.amount)
    payment_amount = p.check("$.ecommerce.payment.amount", values.positive_amount, e.payment.amount)
    # Three-document match: the payer is the buyer and pays exactly the order amount.
    if e.payment.payer_id != e.order.buyer_id:
        p.add("$.ecommerce.payment.payer_id", "the payer must be the buyer")
    if order_amount is not None and payment_amount is not None and order_amount != payment_amount:
        p.add("$.ecommerce.payment.amount", "must equal the order amount")
    single_item = len(cmd.lines) == 1 and cmd.lines[0].quantity == 1
    over = order_amount is not None and order_amount > TRANSACTION_LIMIT_CNY
    if over and not single_item:
        p.add(
            "$.ecommerce.order.amount",
            f"over CNY {TRANSACTION_LIMIT_CNY:,} per transaction",
            rule="over_transaction_limit",
        )


def submit(
    uow: UnitOfWork,
    declaration: Pending[Declaration],
    series: UUID,
    cmd: SubmitDeclaration,
    lines: list[DeclaredLine],
    ctx: SubmissionContext,
    actor: Actor,
) -> tuple[Declaration, Sequence[Pending[Any]]]:
    """Number the declaration from its series (or this process's block of it,
    domain/numbering.py) and record its submission, in one write: its state, and the number's
    streams to save before it."""
    zone = ctx.zones[cmd.zone]
    office, year, direction = series_of(zone, cmd.flow, ctx.now)
    occurred_at = cmd.occurred_at or ctx.now
    taken = take_serial(uow, series, actor, occurred_at)
    number = format_number(office, year, direction, taken.serial)
    taken.issue_on.record(
        DeclarationNumberIssued,
        actor=actor,
        occurred_at=occurred_at,
        serial=taken.serial,
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
    return declaration.state, taken.saves
