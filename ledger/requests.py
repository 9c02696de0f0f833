"""What every command answers with, and how a retried request is recognised."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec

from domain.events import Actor
from domain.unit_of_work import Decision, UnitOfWork

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


# A command's decision: it reads through the unit of work, at the command's time.
Decide = Callable[[UnitOfWork, datetime], Decision[Any]]
# `Ledger._execute(status_code, idem, body, decide, actor)`: one command, idempotent with a key.
Execute = Callable[[int, Idempotency | None, Any, Decide, Actor], Outcome]
