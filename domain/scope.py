"""Tenancy: what a caller may see and act on, decided in one place.

Every route, command and projection asks a `Scope` instead of reading `actor.role`:
- an enterprise sees its own papers and books (a transfer's: either end's) and acts only as
  itself;
- a gate operator sees its own zone's goods and papers (a transfer's: either end's) and
  writes no book;
- officers, auditors and admins see everything.
Another tenant's record does not exist for the caller: the answer is the unknown-record
answer (404, or 422 at the field that names it), never 403 (API.md, invariant of tenancy).
"""

from __future__ import annotations

from typing import Literal, Protocol

import msgspec

from domain.errors import Forbidden

Role = Literal["admin", "enterprise", "operator", "officer", "auditor"]
# What a list is narrowed to: the column it filters on, and the value.
Narrowing = Literal["enterprise", "zone"]


class HasRole(Protocol):
    """Anything that says who acts: an `Actor` (domain/events.py) or a key record."""

    @property
    def role(self) -> str: ...

    @property
    def enterprise(self) -> str | None: ...

    @property
    def zone(self) -> str | None: ...


class Scope(msgspec.Struct, frozen=True, kw_only=True):
    """A caller's reach: its role and the enterprise or zone its key is bound to."""

    role: str
    enterprise: str | None = None
    zone: str | None = None

    @classmethod
    def of(cls, actor: HasRole) -> Scope:
        return cls(role=actor.role, enterprise=actor.enterprise, zone=actor.zone)

    @property
    def narrowing(self) -> dict[Narrowing, str]:
        """What a list is narrowed to: `{"enterprise": uscc}`, `{"zone": code}` or `{}`."""
        if self.role == "enterprise" and self.enterprise:
            return {"enterprise": self.enterprise}
        if self.role == "operator" and self.zone:
            return {"zone": self.zone}
        return {}

    def sees(
        self,
        *,
        enterprises: tuple[str | None, ...] = (),
        zones: tuple[str | None, ...] = (),
    ) -> bool:
        """Whether a record that belongs to these enterprises and zones is visible.

        An enterprise must be one of `enterprises`, an operator's zone one of `zones`; a
        record that names none of a tenant's kind is invisible to that tenant.
        """
        if self.role == "enterprise":
            return self.enterprise is not None and self.enterprise in enterprises
        if self.role == "operator":
            return self.zone is not None and self.zone in zones
        return True

    def sees_zone(self, *zones: str | None) -> bool:
        """Whether an operator's zone is among `zones` (every other role: True)."""
        return self.role != "operator" or (self.zone is not None and self.zone in zones)

    def sees_book(self, *, enterprise: str, zone: str, writing: bool = False) -> bool:
        """A book is its enterprise's; an operator reads its zone's books and writes none."""
        if self.role == "enterprise":
            return self.enterprise == enterprise
        if self.role == "operator":
            return not writing and self.zone == zone
        return True

    def owns(self, enterprise: str | None) -> bool:
        """Whether the caller is this enterprise (an enterprise key bound to it)."""
        if self.role != "enterprise" or enterprise is None:
            return False
        return self.enterprise == enterprise

    def act_as(self, party: str, loc: str) -> None:
        """An enterprise may act only as itself: 403 when the body names another party."""
        if self.role == "enterprise" and self.enterprise != party:
            raise Forbidden(f"{loc} must be your own USCC ({self.enterprise})")
