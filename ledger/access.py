"""Tenancy on the write side: who may act as whom, and whose books a caller can see."""

from __future__ import annotations

from domain import account_book as books
from domain.errors import Forbidden, NotFound
from domain.events import Actor


def act_as(actor: Actor, party: str, loc: str) -> None:
    """An enterprise may act only as itself (403 when the body names another party)."""
    if actor.role == "enterprise" and actor.enterprise != party:
        raise Forbidden(f"{loc} must be your own USCC ({actor.enterprise})")


def visible_book(
    book: books.AccountBook | None, actor: Actor, *, writing: bool = False
) -> books.AccountBook:
    """Another tenant's book does not exist for the caller: 404, never 403."""
    if book is None:
        raise NotFound("no such account book")
    if actor.role == "enterprise" and book.enterprise != actor.enterprise:
        raise NotFound("no such account book")
    if actor.role == "operator" and (writing or book.zone != actor.zone):
        raise NotFound("no such account book")
    return book
