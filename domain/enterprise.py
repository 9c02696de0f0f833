"""Enterprises: registered by an admin, identified by USCC, with a customs code and credit class."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec

from domain import values
from domain.errors import AlreadyExists, Conflict, ValidationFailed
from domain.events import Actor, AggregateState, DomainEvent, Pending, stream_id
from domain.values import Problems

# The set of credit classes changes by decree, so it is data (the risk rules' classes), not a
# type: a class the rules do not know is refused with 422 at `$.credit_class`.
CreditClass = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class RegisterEnterprise(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Body of POST /v1/enterprises."""

    uscc: str
    customs_code: str
    name: str
    credit_class: CreditClass


class ChangeCreditClass(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Body of POST /v1/enterprises/{uscc}/credit-class."""

    credit_class: CreditClass
    reason: str


class Enterprise(AggregateState, frozen=True, kw_only=True):
    """An enterprise as the write side knows it."""

    uscc: str
    customs_code: str
    name: str
    credit_class: str
    registered_at: datetime
    credit_class_since: datetime  # when the class in force took effect


class EnterpriseRegistered(DomainEvent, frozen=True, kw_only=True):
    """An admin registered an enterprise with the ledger."""

    uscc: str
    customs_code: str
    name: str
    credit_class: str

    def apply(self, state: None) -> Enterprise:
        return Enterprise(
            id=self.originator_id,
            version=self.originator_version,
            uscc=self.uscc,
            customs_code=self.customs_code,
            name=self.name,
            credit_class=self.credit_class,
            registered_at=self.occurred_at,
            credit_class_since=self.occurred_at,
        )


class CreditClassChanged(DomainEvent, frozen=True, kw_only=True):
    """Customs changed an enterprise's credit class (a dishonest class puts it on the
    negative list); decisions from `effective_from` on use the new class.

    Version 2 (docs/decisions/0010) states `effective_from`, the moment the new class is in
    force. Version 1 did not store it: the class took effect when the change was recorded, so
    `upcast_v1_v2` derives it from `occurred_at`. Stored v1 events are never rewritten; they are
    upcast each time they are read (tests/fixtures/events_v1.jsonl holds some, forever).
    """

    class_version = 2

    credit_class: str
    previous: str
    reason: str
    effective_from: datetime

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        """v1 -> v2: the change took effect when it happened (the same text, same offset)."""
        state["effective_from"] = state["occurred_at"]

    def apply(self, state: Enterprise) -> Enterprise:
        return msgspec.structs.replace(
            state,
            version=self.originator_version,
            credit_class=self.credit_class,
            credit_class_since=self.effective_from,
        )


def change_credit_class(
    pending: Pending[Enterprise],
    cmd: ChangeCreditClass,
    actor: Actor,
    now: datetime,
    classes: Collection[str],
) -> Enterprise:
    state = pending.state
    assert state is not None
    check_credit_class("$.credit_class", cmd.credit_class, classes)
    values.text("$.reason", cmd.reason, max_length=2000)
    if cmd.credit_class == state.credit_class:
        raise Conflict(
            f"{state.uscc} is already {state.credit_class}", rule="credit_class_unchanged"
        )
    pending.record(
        CreditClassChanged,
        actor=actor,
        occurred_at=now,
        credit_class=cmd.credit_class,
        previous=state.credit_class,
        reason=cmd.reason,
        effective_from=now,
    )
    return pending.current


def enterprise_id(uscc: str) -> UUID:
    return stream_id("enterprise", uscc)


def check_credit_class(loc: str, credit_class: str, known: Collection[str]) -> str:
    if credit_class not in known:
        raise ValidationFailed.at(loc, f"unknown credit class; known: {', '.join(sorted(known))}")
    return credit_class


def validate_registration(cmd: RegisterEnterprise, classes: Collection[str]) -> RegisterEnterprise:
    p = Problems()
    p.check("$.credit_class", check_credit_class, cmd.credit_class, classes)
    p.check("$.uscc", values.uscc_code, cmd.uscc)
    p.check("$.customs_code", values.customs_code, cmd.customs_code)
    p.check("$.name", values.text, cmd.name)
    p.raise_if_any()
    return cmd


def register(
    pending: Pending[Enterprise], cmd: RegisterEnterprise, actor: Actor, now: datetime
) -> Enterprise:
    """Register an enterprise once: a USCC is never registered twice."""
    if pending.state is not None:
        raise AlreadyExists(f"enterprise {cmd.uscc} is already registered")
    pending.record(
        EnterpriseRegistered,
        actor=actor,
        occurred_at=now,
        uscc=cmd.uscc,
        customs_code=cmd.customs_code,
        name=cmd.name,
        credit_class=cmd.credit_class,
    )
    assert pending.state is not None
    return pending.state
