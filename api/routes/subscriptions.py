"""Webhook subscriptions (domain/subscriptions.py, api/dispatch.py, docs/receipts.md)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.auth import Reader
from api.dispatch import deliveries
from api.http import doc, json_response, list_type
from api.routes.common import Page, execute, page_body, services, views_caught_up
from api.webhooks import new_secret, url_problem
from domain import subscriptions as subs
from domain.errors import Forbidden

router = APIRouter(tags=["receipts"])
SUBSCRIBERS = subs.SUBSCRIBERS
# Who deletes and redelivers: the owner enterprise, and officers (any subscription).
MANAGERS = ("enterprise", "officer")
WRITE_ERRORS = (400, 401, 403, 404, 409, 413)


class CreatedSubscription(subs.SubscriptionView, frozen=True, kw_only=True):
    """The new subscription with its signing secret (`whsec_...`): keep it; a retry with the
    same Idempotency-Key shows it again, nothing else does."""

    secret: str


class SubscriptionState(subs.SubscriptionView, frozen=True, kw_only=True):
    """A subscription with how its deliveries stand."""

    delivery: dict[str, Any]


class Delivery(msgspec.Struct, frozen=True, kw_only=True):
    position: int
    attempt: int
    at: str
    status_code: int | None
    latency_ms: float
    error: str | None
    status: Literal["ok", "failed"]


SubscriptionList = list_type(subs.SubscriptionView, "SubscriptionList")
DeliveryList = list_type(Delivery, "DeliveryList")


@router.post(
    "/v1/subscriptions",
    **doc(
        body=subs.CreateSubscription,
        ok=(201, CreatedSubscription),
        errors=WRITE_ERRORS,
        idempotency_required=False,
    ),
)
async def create_subscription(request: Request) -> Response:
    """Subscribe a URL to receipts (an enterprise: about its own filings, books and movements;
    an officer or auditor: all). `events`: receipt types, `<subject>.*` or `*`. The URL must be
    https to a public address unless the server allowlists its host (422 at `$.url`)."""
    allowed = services(request).settings.webhook_allowed_hosts

    def action(ledger: Any, cmd: subs.CreateSubscription, idem: Any, actor: Any) -> Any:
        problem = url_problem(cmd.url, allowed)
        return ledger.create_subscription(cmd, problem, new_secret(), actor, idem)

    return await execute(request, SUBSCRIBERS, subs.CreateSubscription, action)


def _subscriber(actor: Any) -> None:
    if actor.role not in SUBSCRIBERS:
        raise Forbidden("enterprises, officers and auditors have subscriptions")


@router.get(
    "/v1/subscriptions",
    **doc(ok=(200, SubscriptionList), errors=(401, 403, 422), position=True),
)
async def list_subscriptions(
    request: Request, actor: Reader, page: Annotated[Page, Depends()]
) -> Response:
    """The caller's subscriptions (an enterprise's, or customs' of the caller's role)."""
    _subscriber(actor)
    position = await views_caught_up(request)
    svc = services(request)
    owner = subs.owner_of(actor)
    with svc.views.read() as cur:
        cur.execute(
            "SELECT id FROM view_subscriptions WHERE owner_role = ?"
            " AND COALESCE(owner_enterprise, '') = ? AND status <> 'deleted'"
            " AND created_position > ? ORDER BY created_position LIMIT ?",
            (owner.role, owner.enterprise or "", page.after, page.limit),
        )
        ids = [str(r["id"]) for r in cur.fetchall()]
    rows = []
    for sub_id in ids:
        view = await run_in_threadpool(svc.ledger.subscription, sub_id, actor)
        rows.append((_created_position(svc, sub_id), view))
    return json_response(page_body(rows, page.limit), position=position)


def _created_position(svc: Any, sub_id: str) -> int:
    with svc.views.read() as cur:
        cur.execute("SELECT created_position FROM view_subscriptions WHERE id = ?", (sub_id,))
        row = cur.fetchone()
    return int(row["created_position"]) if row is not None else 0


@router.get(
    "/v1/subscriptions/{subscription_id}",
    **doc(ok=(200, SubscriptionState), errors=(401, 403, 404)),
)
async def get_subscription(request: Request, subscription_id: str, actor: Reader) -> Response:
    """One of the caller's subscriptions, with its deliveries' state: the last position
    delivered, the attempts at the next one, when it is tried again, and `failing` once it
    has failed for the give-up time (its backlog kept until a redelivery)."""
    _subscriber(actor)
    svc = services(request)
    view = await run_in_threadpool(svc.ledger.subscription, subscription_id, actor)
    with svc.views.read() as cur:
        cur.execute(
            "SELECT cursor, attempts, next_at, failing FROM dispatch_state"
            " WHERE subscription_id = ?",
            (str(view.id),),
        )
        r = cur.fetchone()
    delivery = {
        "delivered_through": int(r["cursor"]) if r else None,
        "attempts": int(r["attempts"]) if r else 0,
        "failing": bool(r["failing"]) if r else False,
    }
    status = "failing" if delivery["failing"] and view.status == "active" else view.status
    body = {**msgspec.to_builtins(view), "status": status, "delivery": delivery}
    return json_response(body)


@router.delete(
    "/v1/subscriptions/{subscription_id}",
    **doc(ok=(200, subs.SubscriptionView), errors=WRITE_ERRORS, idempotency_required=False),
)
async def delete_subscription(request: Request, subscription_id: str) -> Response:
    """Delete a subscription (its owner enterprise, or an officer): nothing more is sent."""
    return await execute(
        request,
        MANAGERS,
        dict,
        lambda ledger, cmd, idem, actor: ledger.set_subscription_status(
            subscription_id, "deleted", actor, idem
        ),
        empty_body=b"{}",
    )


@router.get(
    "/v1/subscriptions/{subscription_id}/deliveries",
    **doc(ok=(200, DeliveryList), errors=(401, 403, 404, 422)),
)
async def list_deliveries(
    request: Request,
    subscription_id: str,
    actor: Reader,
    page: Annotated[Page, Depends()],
    status: Annotated[Literal["ok", "failed"] | None, Query()] = None,
) -> Response:
    """Every delivery attempt of the subscription, oldest first: the receipt's log position,
    the attempt's number, time, HTTP status, latency and error."""
    _subscriber(actor)
    svc = services(request)
    view = await run_in_threadpool(svc.ledger.subscription, subscription_id, actor)
    rows = await run_in_threadpool(
        lambda: deliveries(
            svc.views, str(view.id), status=status, after=page.after, limit=page.limit
        )
    )
    return json_response(page_body(rows, page.limit))


@router.post(
    "/v1/subscriptions/{subscription_id}/redeliver",
    **doc(
        body=subs.Redeliver,
        ok=(200, subs.SubscriptionView),
        errors=WRITE_ERRORS,
        idempotency_required=False,
    ),
)
async def redeliver(request: Request, subscription_id: str) -> Response:
    """Send the subscription's receipts again from `from_position` (a log position; those
    recorded since the subscription was made), with the same `webhook-id`s; a failing
    subscription starts again."""
    return await execute(
        request,
        MANAGERS,
        subs.Redeliver,
        lambda ledger, cmd, idem, actor: ledger.redeliver(subscription_id, cmd, actor, idem),
    )
