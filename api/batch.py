"""Batch intake: many submissions in one request, each with its own Idempotency-Key and answer.

A retail platform pushes lists in bursts; one HTTP request per list spends most of its time
on the request, not on the list. A batch carries up to `MAX_ITEMS` items
`{idempotency_key, body}`, each exactly what one `POST` of the single route would carry (its
key, its body). The items are decided in order and committed in as few groups as they fit
(ledger/application.py `run_many`); the answer is 207 with one result per item, in order:
`{status, body}` where `body` is the answer the single route would give (or its problem),
and `replayed: true` where the item's key had already been used for the same body. An item
refused never stops the others, and a batch sent again answers every item it recorded as
its first answer (the keys are the single route's: an item can be retried alone too).

Each item counts as one request against the caller's key rate limit, replays and items
refused included, as each sent alone would (api/ratelimit.py `charge`, decision 0019): a
batch the key's bucket cannot pay for now is 429 whole, one larger than the bucket ever holds
is 422 at `$.items`, either before any item is decided.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Annotated, Any, TypeVar

import msgspec
from fastapi import Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api import i18n, ratelimit
from api.http import MAX_KEY_LENGTH, decode_body, json_response, valid_idempotency_key
from api.problems import (
    HttpProblem,
    Problem,
    from_http_problem,
    from_ledger_error,
    translated,
)
from api.routes.common import writing
from domain.errors import FieldError, LedgerError, ValidationFailed
from domain.events import Actor
from ledger.commands import Idempotency, Ledger, Outcome

T = TypeVar("T")

# Items per batch: 500 lists of a few lines each stay well within the 1 MiB body limit.
MAX_ITEMS = 500


class BatchItem(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One submission: the Idempotency-Key the single route would take, and its body."""

    idempotency_key: str
    body: msgspec.Raw


class Batch(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    items: Annotated[list[BatchItem], msgspec.Meta(min_length=1, max_length=MAX_ITEMS)]


class ItemResult(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One item's answer: the status and body the single route would have answered with."""

    status: int
    body: Any
    replayed: bool = False


class BatchAnswer(msgspec.Struct, frozen=True, kw_only=True):
    results: list[ItemResult]


# What a batch route runs: the ledger's many-submission command (each item a command and its
# key), as the caller.
SubmitMany = Callable[
    [Ledger, Sequence[tuple[Any, Idempotency]], Actor], list[Outcome | BaseException]
]
# How an outcome is shown to its caller (the single route's own shaping: a buyer opened, ...).
Shown = Callable[[Ledger, Actor, Outcome], Outcome]


def _key(index: int, key: str) -> str:
    """An item's Idempotency-Key, with the header's rules (422 at the item's key)."""
    if not valid_idempotency_key(key):
        raise ValidationFailed(
            FieldError(
                f"$.items[{index}].idempotency_key",
                f"an Idempotency-Key has 1 to {MAX_KEY_LENGTH} printable characters",
            )
        )
    return key


def _problem(error: BaseException) -> Problem:
    if isinstance(error, HttpProblem):
        return translated(from_http_problem(error))
    if isinstance(error, LedgerError):
        return translated(from_ledger_error(error))
    raise error  # not a refusal: a bug or the store's failure, answered as the app answers it


async def run_batch(
    request: Request,
    roles: Collection[str],
    body_type: type[T],
    path: str,
    submit_many: SubmitMany,
    shown: Shown,
) -> Response:
    """A batch route: the envelope checked as a whole (400/422 as any body), the key's rate
    limit charged one request per item (decision 0019, "Batches": 429 for the whole batch, or
    422 at `$.items` when it is more than the key's burst, before any item is decided), each
    item's key and body checked alone (its problem is its result), the valid ones submitted
    together."""
    svc, actor, raw = await writing(request, roles)
    batch = await run_in_threadpool(decode_body, raw, Batch)
    # On the event loop, where the buckets live; every item counts, a replay as much as an
    # item refused alone, as each would have sent alone.
    refused_whole = ratelimit.charge(request.scope, len(batch.items), "$.items")
    if refused_whole is not None:
        return refused_whole

    def work() -> tuple[list[ItemResult], int | None]:
        items: list[tuple[Any, Idempotency]] = []
        refused: dict[int, BaseException] = {}
        for index, item in enumerate(batch.items):
            try:
                key = _key(index, item.idempotency_key)
                cmd = decode_body(bytes(item.body), body_type)
            except (HttpProblem, LedgerError) as e:
                refused[index] = e
                continue
            items.append((cmd, Idempotency(actor.name, key, "POST", path)))
        ran = iter(submit_many(svc.ledger, items, actor))
        outcomes = [refused[i] if i in refused else next(ran) for i in range(len(batch.items))]
        results: list[ItemResult] = []
        last: int | None = None
        for outcome in outcomes:
            if isinstance(outcome, Outcome):
                outcome = shown(svc.ledger, actor, outcome)
                results.append(
                    ItemResult(
                        status=outcome.status_code, body=outcome.body, replayed=outcome.replayed
                    )
                )
                if outcome.position is not None:
                    last = max(last or 0, outcome.position)
            else:
                problem = _problem(outcome)
                results.append(ItemResult(status=problem.status, body=problem))
        return results, last

    results, position = await run_in_threadpool(work)
    svc.wrote(position)
    # Problems among the results are in the request's language, as the single route's are.
    language = {"Content-Language": i18n.language(), "Vary": "Accept-Language"}
    return json_response(BatchAnswer(results=results), 207, position=position, **language)
