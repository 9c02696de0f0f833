"""What every command answers with, and how a retried request is recognised."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec

from domain.events import Actor
from domain.unit_of_work import Decision, UnitOfWork
from ledger.application import Command

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


# Body fields added after requests with that body were first recorded, so absent from their
# hashes: a request that leaves one at its default (None) hashes as it did before the field
# existed, and a retry sent across an upgrade is still recognised as the same request.
# (`return_id`: gate_in of a retail return, issue #16; `checklist`: a declaration of goods that
# entered first, and a processing movement's checklist, and `collected_checklists`: a
# consolidated declaration, issue #17.)
ADDED_FIELDS = frozenset({"return_id", "checklist", "collected_checklists"})
# Fields added to one body type only (a name other bodies had from the start stays in theirs),
# with their defaults, at the top ("") or in each element of a list field: a checklist filed on
# its own gained its receiving book and items (issue #17), a processing output its role
# (issue #18).
ADDED_BY_BODY: dict[str, dict[str, dict[str, Any]]] = {
    "FileChecklist": {
        "": {"destination_account_book": None},
        "lines": {"destination_item_no": None},
    },
    "Processing": {"outputs": {"role": "product"}},
}


def _without(fields: dict[str, Any], decoded: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in decoded.items() if k not in fields or v != fields[k]}


def request_hash(method: str, path: str, body: Any) -> str:
    """Same method, path and decoded body give the same hash, whatever the key order."""
    decoded = msgspec.to_builtins(body, order="sorted")
    if isinstance(decoded, dict):
        decoded = {k: v for k, v in decoded.items() if v is not None or k not in ADDED_FIELDS}
        for where, fields in ADDED_BY_BODY.get(type(body).__name__, {}).items():
            if not where:
                decoded = _without(fields, decoded)
            elif isinstance(decoded.get(where), list):
                decoded[where] = [
                    _without(fields, x) if isinstance(x, dict) else x for x in decoded[where]
                ]
    canonical = _CANONICAL.encode(decoded)
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + canonical).hexdigest()


# A command's decision: it reads through the unit of work, at the command's time.
Decide = Callable[[UnitOfWork, datetime], Decision[Any]]
# `Ledger._execute(status_code, idem, body, decide, actor)`: one command, idempotent with a key.
Execute = Callable[[int, Idempotency | None, Any, Decide, Actor], Outcome]


@dataclass(frozen=True)
class Prepared:
    """A command ready to run (`Ledger._prepare`, same arguments as `_execute`), alone or
    with others (`Ledger._outcomes`): the status of its first answer, and the command."""

    status_code: int
    command: Command[Any]


Prepare = Callable[[int, Idempotency | None, Any, Decide, Actor], Prepared]
# `Ledger._run(prepared)`: one prepared command run alone, its error raised.
Run = Callable[[Prepared], Outcome]
# `Ledger._batch(items, prepare, finish)`: a batch of one route's commands.
RunBatch = Callable[
    [
        Sequence[tuple[Any, Idempotency]],
        Callable[[Any, Idempotency], Prepared],
        Callable[[Outcome], Outcome] | None,
    ],
    list[Outcome | BaseException],
]
