"""The one error hierarchy of the ledger; the API maps each class to an HTTP status.

LedgerError
 +-- ValidationFailed        content invalid on its own (422), errors name field paths
 +-- NotFound                unknown resource, or another tenant's (404)
 +-- Forbidden               role may not do this, or acts as another party (403)
 +-- Unavailable             cannot take the write now, retry after `retry_after` s (503)
 +-- Conflict                conflicts with the ledger's state (409), `rule` names it
      +-- InvalidTransition        status does not allow the action
      +-- AlreadyExists            a business key is taken
      +-- IdempotencyKeyReused     same key, different request
      +-- ConcurrencyConflict      lost a race more times than we retry

RefusedValue (a ValueError) is a field a struct refuses while it is decoded: msgspec makes it
a 422 at the field.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    """One invalid field: `loc` is a JSON path such as `$.lines[2].quantity`; `rule` names
    the business rule the value breaks, where one does (`order_amount_mismatch`)."""

    loc: str
    msg: str
    rule: str | None = None


class LedgerError(Exception):
    """Base of every error the ledger raises on purpose."""

    title = "Ledger error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class ValidationFailed(LedgerError):
    """The request's content is invalid on its own (422)."""

    title = "Invalid content"

    def __init__(self, errors: list[FieldError] | FieldError, detail: str | None = None) -> None:
        self.errors = [errors] if isinstance(errors, FieldError) else list(errors)
        first = self.errors[0] if self.errors else None
        super().__init__(detail or (f"{first.loc}: {first.msg}" if first else "invalid content"))

    @classmethod
    def at(cls, loc: str, msg: str, rule: str | None = None) -> ValidationFailed:
        return cls(FieldError(loc, msg, rule))

    @property
    def rule(self) -> str | None:
        """The rule of the first error that names one (the problem's top-level `rule`)."""
        return next((e.rule for e in self.errors if e.rule is not None), None)


class NotFound(LedgerError):
    """Unknown resource, or a resource of another tenant: the answer is the same (404)."""

    title = "Not found"


class Forbidden(LedgerError):
    """The caller's role may not use this, or the body names another party as itself (403)."""

    title = "Forbidden"


class Conflict(LedgerError):
    """The request conflicts with the ledger's state (409)."""

    title = "Conflict"
    rule = "conflict"

    def __init__(
        self, detail: str, *, rule: str | None = None, current_status: str | None = None
    ) -> None:
        super().__init__(detail)
        if rule is not None:
            self.rule = rule
        self.current_status = current_status


class InvalidTransition(Conflict):
    """The resource's status does not allow this action."""

    rule = "invalid_transition"


class AlreadyExists(Conflict):
    """A business key (USCC, book number, ...) is already registered."""

    rule = "already_exists"


class IdempotencyKeyReused(Conflict):
    """The same Idempotency-Key came with a different request."""

    rule = "idempotency_key_reused"


class ConcurrencyConflict(Conflict):
    """Another writer changed the same aggregates more times than a command retries."""

    rule = "concurrent_update"


class RefusedValue(ValueError):
    """A value a body's struct refuses in its `__post_init__` (a rate, a channel, an HS
    prefix of a published table): msgspec answers the message as the field's (422), so it is
    one a person reads - and the extraction of messages reads it (api/i18n_extract.py)."""


class Unavailable(LedgerError):
    """The ledger cannot take the write now (the store stayed busy past its lock timeout);
    nothing was written, and the same request may be sent again after `retry_after` seconds."""

    title = "Service unavailable"

    def __init__(self, detail: str, *, retry_after: int = 1) -> None:
        super().__init__(detail)
        self.retry_after = retry_after
