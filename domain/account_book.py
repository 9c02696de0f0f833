"""Account books (electronic account books): an enterprise's registered items in one zone."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec

from domain import values
from domain.errors import AlreadyExists, NotFound
from domain.events import Actor, AggregateState, DomainEvent, Pending, stream_id
from domain.scope import Scope
from domain.values import Problems


class BookItem(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An item registered in a book: number, HS code, name and legal unit."""

    item_no: int
    hs_code: str
    name: str
    unit: str


class OpenAccountBook(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Body of POST /v1/account-books."""

    book_no: str
    enterprise: str
    zone: str
    items: list[BookItem] = []


class RegisterItems(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Body of POST /v1/account-books/{book_no}/items."""

    items: list[BookItem]


class AccountBook(AggregateState, frozen=True, kw_only=True):
    """An account book as the write side knows it."""

    book_no: str
    enterprise: str
    zone: str
    items: dict[int, BookItem]
    # Collect then declare (分送集报): an officer permits it per book (domain/collected.py).
    collection_permitted: bool = False


class AccountBookOpened(DomainEvent, frozen=True, kw_only=True):
    """An account book was opened for an enterprise in a zone."""

    book_no: str
    enterprise: str
    zone: str
    items: list[BookItem]

    def apply(self, state: None) -> AccountBook:
        return AccountBook(
            id=self.originator_id,
            version=self.originator_version,
            book_no=self.book_no,
            enterprise=self.enterprise,
            zone=self.zone,
            items={i.item_no: i for i in self.items},
        )


class AccountBookItemsRegistered(DomainEvent, frozen=True, kw_only=True):
    """More items were registered in an account book."""

    items: list[BookItem]

    def apply(self, state: AccountBook) -> AccountBook:
        items = dict(state.items)
        items.update({i.item_no: i for i in self.items})
        return msgspec.structs.replace(state, version=self.originator_version, items=items)


def account_book_id(book_no: str) -> UUID:
    return stream_id("account-book", book_no)


def validate_items(items: list[BookItem], loc: str, p: Problems, *, at_least_one: bool) -> None:
    if at_least_one and not items:
        p.add(loc, "must list at least one item")
    if len(items) > 9999:
        p.add(loc, "at most 9999 items in one request")
    seen: set[int] = set()
    for n, item in enumerate(items):
        at = f"{loc}[{n}]"
        if not 1 <= item.item_no <= 999_999_999:
            p.add(f"{at}.item_no", "must be a positive integer below 10^9")
        elif item.item_no in seen:
            p.add(f"{at}.item_no", f"item {item.item_no} is listed twice")
        seen.add(item.item_no)
        p.check(f"{at}.hs_code", values.hs_code, item.hs_code)
        p.check(f"{at}.name", values.text, item.name)
        p.check(f"{at}.unit", values.unit, item.unit)


def validate_opening(cmd: OpenAccountBook, zone_codes: set[str]) -> None:
    p = Problems()
    p.check("$.book_no", values.book_no, cmd.book_no)
    p.check("$.enterprise", values.uscc_code, cmd.enterprise)
    if cmd.zone not in zone_codes:
        p.add("$.zone", f"unknown zone {cmd.zone!r}")
    validate_items(cmd.items, "$.items", p, at_least_one=False)
    p.raise_if_any()


def open_book(
    pending: Pending[AccountBook], cmd: OpenAccountBook, actor: Actor, now: datetime
) -> AccountBook:
    """Open a book once: book numbers are unique across the ledger."""
    if pending.state is not None:
        raise AlreadyExists(f"account book {cmd.book_no} already exists")
    pending.record(
        AccountBookOpened,
        actor=actor,
        occurred_at=now,
        book_no=cmd.book_no,
        enterprise=cmd.enterprise,
        zone=cmd.zone,
        items=list(cmd.items),
    )
    assert pending.state is not None
    return pending.state


def register_items(
    pending: Pending[AccountBook], cmd: RegisterItems, actor: Actor, now: datetime
) -> AccountBook:
    """Register new items; an item number already in the book is refused, never redefined."""
    p = Problems()
    validate_items(cmd.items, "$.items", p, at_least_one=True)
    p.raise_if_any()
    book = pending.state
    assert book is not None
    taken = sorted(i.item_no for i in cmd.items if i.item_no in book.items)
    if taken:
        raise AlreadyExists(
            f"items {', '.join(map(str, taken))} are already registered in book {book.book_no}",
            rule="item_already_registered",
        )
    pending.record(AccountBookItemsRegistered, actor=actor, occurred_at=now, items=list(cmd.items))
    return pending.current


def visible_book(book: AccountBook | None, scope: Scope, *, writing: bool = False) -> AccountBook:
    """A book the caller may read (or, `writing`, register items and BOMs in): another
    tenant's book does not exist for the caller (404, never 403)."""
    if book is None or not scope.sees_book(
        enterprise=book.enterprise, zone=book.zone, writing=writing
    ):
        raise NotFound("no such account book")
    return book
