"""Erasing a buyer: a `BuyerErased` event, then the buyer's data keys destroyed.

`customs-ledger privacy erase-buyer ID --reason TEXT` (api/cli_privacy.py) runs `plan` and
then `erase`. The plan reads what the ledger holds of the buyer, without the identity number
ever leaving this process: the buyer's keys (by pseudonym, ledger/buyer_keys.py), the yearly
quota streams its lists counted on (sealed ones by pseudonym; lists written before sealing,
by the number in clear) and from them its last list and so the end of the retention period.
The event is written first, then the keys are destroyed: a crash between the two leaves a
recorded erasure whose keys still live, and running the command again finishes it (with a
second event); the other order could destroy data with no record of why.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from domain import privacy, quota, values
from domain.declaration import SHANGHAI
from domain.errors import LedgerError
from domain.events import Actor, DomainEvent
from domain.unit_of_work import Decision, UnitOfWork
from ledger.buyer_keys import BuyerKeys, KeyRecord
from ledger.requests import Execute

# How far back the plan looks for a buyer's lists written before sealing (their quota streams
# are per calendar year and named by the identity number).
LEGACY_YEARS = 30


class ErasureRefused(LedgerError):
    """The buyer cannot be erased as asked (unknown, already erased, still retained)."""


@dataclass
class ErasurePlan:
    """What the ledger holds of one buyer, and whether it may be erased now."""

    pseudonym: str
    keys: list[KeyRecord]
    sealed_lists: int = 0
    legacy_lists: int = 0
    last_list: datetime | None = None
    retention_ends: date | None = None
    live: list[int] = field(default_factory=list)

    @property
    def known(self) -> bool:
        return bool(self.keys) or self.legacy_lists > 0


def add_years(day: date, years: int) -> date:
    """The same day `years` later (29 February: 28 February in a common year)."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def plan(
    app: Any, keys: BuyerKeys, resident_id: str, *, today: date, retention_years: int
) -> ErasurePlan:
    """What the ledger holds of the buyer `resident_id` (an identity number, checked)."""
    pseudonym = keys.pseudonym(resident_id)
    found = ErasurePlan(pseudonym=pseudonym, keys=keys.records(pseudonym))
    found.live = [k.generation for k in found.keys if k.live]
    first = min((int(k.created_at[:4]) for k in found.keys), default=today.year)
    for year in range(today.year - LEGACY_YEARS, today.year + 1):
        streams = [(False, quota.quota_id(resident_id, year))]
        if year >= first:
            streams.append((True, quota.pseudonymous_quota_id(pseudonym, year)))
        for is_sealed, stream in streams:
            events = _events(app, stream)
            used = sum(isinstance(e, quota.QuotaUsed) for e in events)
            if is_sealed:
                found.sealed_lists += used
            else:
                found.legacy_lists += used
            for e in events:
                if found.last_list is None or e.occurred_at > found.last_list:
                    found.last_list = e.occurred_at
    if found.last_list is not None:
        last_day = found.last_list.astimezone(SHANGHAI).date()
        found.retention_ends = add_years(last_day, retention_years)
    return found


def _events(app: Any, stream: Any) -> list[DomainEvent]:
    return list(app.events.get(stream))


@dataclass(frozen=True)
class Erasure:
    """An erasure as asked: the buyer's plan, why, by whom, forced before retention ends."""

    plan: ErasurePlan
    reason: str
    force: bool
    actor: Actor


def decide_erasure(uow: UnitOfWork, e: Erasure, forced: bool, now: datetime) -> Decision[Any]:
    """Record the buyer's erasure (the keys are destroyed once it is written); `forced`: before
    the retention period ends."""
    p = e.plan
    pending = uow.pending(privacy.erasure_id(p.pseudonym), privacy.BuyerErasures)
    pending.record(
        privacy.BuyerErased,
        actor=e.actor,
        occurred_at=now,
        pseudonym=p.pseudonym,
        generations=p.live,
        reason=e.reason,
        forced=forced,
        retention_ends=p.retention_ends.isoformat() if p.retention_ends else None,
    )
    return Decision([pending], None)


class PrivacyCommands:
    """Mixed into `Ledger`, which provides `_execute` and the key store (`vault`)."""

    _execute: Execute
    vault: BuyerKeys
    clock: Callable[[], datetime]

    def erase_buyer(self, erasure: Erasure) -> Erased:
        """Refuse, or record the erasure and destroy the buyer's live keys."""
        p = erasure.plan
        values.text("--reason", erasure.reason)
        today = self.clock().astimezone(SHANGHAI).date()
        refusal = why_not(p, erasure.force, today)
        if refusal:
            raise ErasureRefused(refusal)
        forced = p.retention_ends is not None and today < p.retention_ends

        def decide(uow: UnitOfWork, now: datetime) -> Decision[Any]:
            return decide_erasure(uow, erasure, forced, now)

        outcome = self._execute(200, None, None, decide, erasure.actor)
        destroyed = self.vault.destroy(p.pseudonym, p.live)
        return Erased(position=outcome.position, forced=forced, keys_destroyed=destroyed)


@dataclass(frozen=True)
class Erased:
    """What an erasure did: the event's log position, whether it came before the retention
    period's end, how many keys it destroyed."""

    position: int | None
    forced: bool
    keys_destroyed: int


def why_not(p: ErasurePlan, force: bool, today: date) -> str | None:
    """Why this buyer cannot be erased now (None: it can)."""
    if not p.known:
        return "no retail list in the ledger names this buyer: nothing to erase"
    if not p.live:
        if p.keys:
            done = max(k.erased_at or "" for k in p.keys)[:10]
            return f"this buyer was erased already ({done}): no key of it is left"
        return (
            f"this buyer's {p.legacy_lists} retail list(s) were written before sealing: the log"
            " holds them in clear and erasure cannot reach them (docs/security.md)"
        )
    if p.retention_ends is not None and today < p.retention_ends and not force:
        return (
            f"the buyer's last retail list is of {p.last_list:%Y-%m-%d}: its retention period"
            f" ends {p.retention_ends}; erase before then only with --force (recorded)"
        )
    return None
