"""Commands of the write side: each validates, decides events, and saves them in one write.

A command that carries an Idempotency-Key saves a `RequestCompleted` event with its answer in
the same atomic write, so a retry finds the answer (a replay) and a concurrent twin collides
on the same stream version and then finds it too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import msgspec

from domain import account_book as books
from domain import declaration as decl
from domain import enterprise as ent
from domain.errors import Forbidden, IdempotencyKeyReused, NotFound, ValidationFailed
from domain.events import Actor, Pending
from domain.idempotency import IdempotentRequest, RequestCompleted, idempotency_id
from domain.reference import Zone
from domain.views import account_book_view, declaration_view, enterprise_view
from ledger.application import LedgerApplication

_CANONICAL = msgspec.json.Encoder(decimal_format="string", order="sorted")


@dataclass(frozen=True)
class Idempotency:
    """An Idempotency-Key as sent by one principal for one request."""

    principal: str
    key: str
    method: str
    path: str


@dataclass(frozen=True)
class Outcome:
    """The answer to a command: HTTP status, body, log position, and whether it is a replay."""

    status_code: int
    body: Any
    position: int | None
    replayed: bool = False


def request_hash(method: str, path: str, body: Any) -> str:
    """Same method, path and decoded body give the same hash, whatever the key order."""
    canonical = _CANONICAL.encode(msgspec.to_builtins(body, order="sorted"))
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + canonical).hexdigest()


def utcnow() -> datetime:
    return datetime.now(UTC)


class Ledger:
    """The write side's commands and the reads that must see the latest write."""

    def __init__(
        self,
        app: LedgerApplication,
        zones: dict[str, Zone],
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.app = app
        self.zones = zones
        self.clock = clock

    # -- the command loop ------------------------------------------------------------------

    def _execute(
        self,
        status_code: int,
        idem: Idempotency | None,
        body: Any,
        decide: Callable[[datetime], tuple[list[Pending[Any]], Any]],
    ) -> Outcome:
        digest = request_hash(idem.method, idem.path, body) if idem else ""

        def command() -> tuple[list[Pending[Any]], Any]:
            record: Pending[IdempotentRequest] | None = None
            if idem is not None:
                record = self.app.pending(idempotency_id(idem.principal, idem.key))
                if record.state is not None:
                    if record.state.request_hash != digest:
                        raise IdempotencyKeyReused(
                            "this Idempotency-Key was used for a different request"
                        )
                    return [], record.state
            now = self.clock()
            pendings, result = decide(now)
            if record is not None:
                record.record(
                    RequestCompleted,
                    actor=_actor_of(pendings),
                    occurred_at=now,
                    method=idem.method,  # type: ignore[union-attr]
                    path=idem.path,  # type: ignore[union-attr]
                    request_hash=digest,
                    status_code=status_code,
                    response=msgspec.to_builtins(result),
                )
                pendings.append(record)
            return pendings, result

        result, position = self.app.run(command)
        if isinstance(result, IdempotentRequest):
            return Outcome(result.status_code, result.response, position, replayed=True)
        return Outcome(status_code, result, position)

    # -- enterprises -----------------------------------------------------------------------

    def register_enterprise(
        self, cmd: ent.RegisterEnterprise, actor: Actor, idem: Idempotency | None = None
    ) -> Outcome:
        ent.validate_registration(cmd)

        def decide(now: datetime) -> tuple[list[Pending[Any]], Any]:
            pending = self.app.pending(ent.enterprise_id(cmd.uscc))
            state = ent.register(pending, cmd, actor, now)
            return [pending], enterprise_view(state)

        return self._execute(201, idem, cmd, decide)

    def enterprise(self, uscc: str) -> ent.Enterprise | None:
        return self.app.load(ent.enterprise_id(uscc))

    # -- account books ---------------------------------------------------------------------

    def open_account_book(
        self, cmd: books.OpenAccountBook, actor: Actor, idem: Idempotency | None = None
    ) -> Outcome:
        _act_as(actor, cmd.enterprise, "$.enterprise")
        books.validate_opening(cmd, set(self.zones))
        if self.enterprise(cmd.enterprise) is None:
            raise ValidationFailed.at("$.enterprise", "enterprise is not registered")

        def decide(now: datetime) -> tuple[list[Pending[Any]], Any]:
            pending = self.app.pending(books.account_book_id(cmd.book_no))
            state = books.open_book(pending, cmd, actor, now)
            return [pending], account_book_view(state)

        return self._execute(201, idem, cmd, decide)

    def register_items(
        self,
        book_no: str,
        cmd: books.RegisterItems,
        actor: Actor,
        idem: Idempotency | None = None,
    ) -> Outcome:
        def decide(now: datetime) -> tuple[list[Pending[Any]], Any]:
            pending = self.app.pending(books.account_book_id(book_no))
            visible_book(pending.state, actor, writing=True)
            state = books.register_items(pending, cmd, actor, now)
            return [pending], account_book_view(state)

        return self._execute(201, idem, cmd, decide)

    def account_book(self, book_no: str, actor: Actor) -> books.AccountBook:
        return visible_book(self.app.load(books.account_book_id(book_no)), actor)

    # -- declarations ----------------------------------------------------------------------

    def submit_declaration(
        self, cmd: decl.SubmitDeclaration, actor: Actor, idem: Idempotency
    ) -> Outcome:
        _act_as(actor, cmd.declarant, "$.declarant")

        def decide(now: datetime) -> tuple[list[Pending[Any]], Any]:
            ctx = decl.SubmissionContext(
                zones=self.zones,
                book=self.app.load(books.account_book_id(cmd.account_book)),
                destination_book=self.app.load(books.account_book_id(cmd.destination_account_book))
                if cmd.destination_account_book
                else None,
                declarant_registered=self.enterprise(cmd.declarant) is not None,
                now=now,
            )
            lines = decl.validate_submission(cmd, ctx)
            office, year, direction = decl.series_of(self.zones[cmd.zone], cmd.flow, now)
            series = self.app.pending_latest(decl.number_series_id(office, year, direction))
            # Its id comes from the same (principal, key) as the idempotency record, written
            # in the same transaction: with no record there is no such declaration either.
            declaration: Pending[decl.Declaration] = Pending(
                None, decl.declaration_id(idem.principal, idem.key)
            )
            state = decl.submit(declaration, series, cmd, lines, ctx, actor)
            return [series, declaration], declaration_view(state)

        return self._execute(201, idem, cmd, decide)

    def withdraw_declaration(
        self,
        ref: str,
        cmd: decl.WithdrawDeclaration,
        actor: Actor,
        idem: Idempotency | None = None,
    ) -> Outcome:
        def decide(now: datetime) -> tuple[list[Pending[Any]], Any]:
            stream = self.resolve_declaration(ref)
            pending = self.app.pending(stream) if stream else None
            if pending is None or pending.state is None:
                raise NotFound(f"no declaration {ref}")
            if pending.state.facts.declarant != actor.enterprise:
                raise NotFound(f"no declaration {ref}")
            state = decl.withdraw(pending, cmd, actor, now)
            return [pending], declaration_view(state)

        return self._execute(200, idem, cmd, decide)

    def resolve_declaration(self, ref: str) -> UUID | None:
        """A declaration's id from its id or its 18-digit number (from the number series)."""
        if len(ref) == 18 and ref.isdigit():
            series = decl.number_series_id(ref[:4], int(ref[4:8]), ref[8])
            serial = int(ref[9:])
            # Version n of a series stream issued serial n.
            for event in self.app.events.get(series, gt=serial - 1, lte=serial):
                return event.declaration_id  # type: ignore[attr-defined,no-any-return]
            return None
        try:
            return UUID(ref)
        except ValueError:
            return None


def _act_as(actor: Actor, party: str, loc: str) -> None:
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


def _actor_of(pendings: list[Pending[Any]]) -> Actor:
    return pendings[0].events[-1].actor  # type: ignore[attr-defined,no-any-return]
