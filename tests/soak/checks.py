"""After the soak: every acknowledged write is in the log once, reads answer what the writes
answered, a retry of any of them is a replay, the chain verifies and the views equal a replay;
every subscription's receiver has every receipt at least once, in log order, signed, and
nothing of another tenant."""

from __future__ import annotations

import itertools
import re
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from re import M
from typing import Any

from tests.soak.client import Ack, RetryingClient
from tests.soak.receiver import Delivery
from tests.soak.server import cli

AUDITOR = "soak-auditor"
ADMIN = "soak-admin"
MOVEMENT_KINDS = ("gate_in", "adjustment")
DECLARATION_KINDS = ("declaration", "inspection", "release")


def wait_caught_up(client: RetryingClient, timeout: float = 120) -> dict[str, Any]:
    """/healthz once the projections have applied the whole log."""
    started = time.monotonic()
    while True:
        answer = client.get(AUDITOR, "/healthz")
        health = answer.json()
        if (
            answer.status_code == 200
            and health["projection_lag_events"] == 0
            and health["projection_error"] is None
        ):
            return health
        if time.monotonic() - started > timeout:
            raise AssertionError(f"projections still behind after {timeout:.0f} s: {health}")
        time.sleep(0.2)


def read_log(client: RetryingClient) -> list[dict[str, Any]]:
    """Every event of GET /v1/events, page by page."""
    events: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 1000}
        if cursor is not None:
            params["cursor"] = cursor
        page = client.get(AUDITOR, "/v1/events", **params).json()
        events += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return events


def _first(items: list[str], more: int = 3) -> str:
    shown = ", ".join(items[:more])
    return shown + (f" (and {len(items) - more} more)" if len(items) > more else "")


def check_log(acks: list[Ack], events: list[dict[str, Any]]) -> list[str]:
    """0 lost and 0 duplicated: the events that record the acknowledged writes, exactly."""
    failures = []
    by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        by_type[e["type"]].append(e)
    done = {e["stream_id"]: e for e in by_type["RequestCompleted"]}
    if len(done) != len(by_type["RequestCompleted"]):
        failures.append("duplicated: a RequestCompleted stream holds more than one event")
    expected = {a.request_stream: a for a in acks}
    if len(expected) != len(acks):
        failures.append("the soak used an Idempotency-Key twice (a bug in the soak)")
    lost = [f"{a.kind} {a.key}" for s, a in expected.items() if s not in done]
    if lost:
        failures.append(
            f"lost: {len(lost)} acknowledged writes have no RequestCompleted event: {_first(lost)}"
        )
    unknown = [s for s in done if s not in expected]
    if unknown:
        failures.append(
            f"duplicated or unknown: {len(unknown)} RequestCompleted events match no "
            f"acknowledged write: {_first(unknown)}"
        )
    moved = [
        f"{a.kind} {a.key}: answered position {a.position}, logged {done[s]['position']}"
        for s, a in expected.items()
        if s in done and a.position is not None and done[s]["position"] != a.position
    ]
    if moved:
        failures.append(f"{len(moved)} answers name another log position: {_first(moved)}")
    failures += _one_each(
        "DeclarationSubmitted",
        by_type,
        {a.response["id"] for a in acks if a.kind == "declaration"},
    )
    failures += _one_each(
        "MovementRecorded",
        by_type,
        {a.response["movement_id"] for a in acks if a.kind in MOVEMENT_KINDS},
    )
    at = {e["stream_id"]: e["position"] for e in by_type["MovementRecorded"]}
    wrong = [
        f"{a.key}: {a.response['position']} != {at.get(a.response['movement_id'])}"
        for a in acks
        if a.kind in MOVEMENT_KINDS and at.get(a.response["movement_id"]) != a.response["position"]
    ]
    if wrong:
        failures.append(f"{len(wrong)} movements answered another position: {_first(wrong)}")
    return failures


def _one_each(
    event_type: str, by_type: dict[str, list[dict[str, Any]]], acknowledged: set[str]
) -> list[str]:
    streams = Counter(e["stream_id"] for e in by_type[event_type])
    failures = []
    if sum(streams.values()) != len(acknowledged):
        failures.append(
            f"{event_type}: {sum(streams.values())} events in the log for "
            f"{len(acknowledged)} acknowledged writes"
        )
    twice = [s for s, n in streams.items() if n > 1]
    if twice:
        failures.append(f"duplicated: {event_type} twice for {_first(twice)}")
    missing = sorted(acknowledged - set(streams))
    if missing:
        failures.append(f"lost: no {event_type} for {_first(missing)}")
    return failures


def check_reads(client: RetryingClient, acks: list[Ack], workers: int) -> list[str]:
    """GET answers what the writes answered: movements exactly; declarations as last
    answered, with the gate_in acknowledged on each line; books with the stock they add to."""
    latest: dict[str, dict[str, Any]] = {}
    moved: Counter[tuple[str, int]] = Counter()
    on_hand: Counter[tuple[str, int]] = Counter()
    items: dict[tuple[str, int], tuple[str, int]] = {}
    for a in acks:
        if a.kind in DECLARATION_KINDS:
            latest[a.response["id"]] = a.response
            for n in a.response["lines"]:
                items[(a.response["id"], n["line_no"])] = (a.response["account_book"], n["item_no"])
    for a in acks:
        if a.kind == "gate_in":
            for n in a.body["lines"]:
                moved[(a.body["declaration"], n["line_no"])] += Decimal(n["quantity"])
                on_hand[items[(a.body["declaration"], n["line_no"])]] += Decimal(n["quantity"])
        elif a.kind == "adjustment":
            on_hand[(a.body["account_book"], a.body["item_no"])] += Decimal(
                a.body["quantity_delta"]
            )

    def movement(a: Ack) -> str | None:
        got = client.get(ADMIN, f"/v1/movements/{a.response['movement_id']}")
        if got.status_code != 200 or got.json() != a.response:
            return f"movement {a.key}: GET answers {got.status_code} {got.text[:200]}"
        return None

    def declaration(ref: str) -> str | None:
        got = client.get(ADMIN, f"/v1/declarations/{ref}")
        if got.status_code != 200:
            return f"declaration {ref}: GET answers {got.status_code}"
        view = got.json()
        if _without_progress(view) != _without_progress(latest[ref]):
            return f"declaration {ref}: GET differs from its last answer"
        for n in view["lines"]:
            if Decimal(n["quantity_moved"]) != moved[(ref, n["line_no"])]:
                return (
                    f"declaration {ref} line {n['line_no']}: quantity_moved "
                    f"{n['quantity_moved']}, acknowledged gate_in {moved[(ref, n['line_no'])]}"
                )
        return None

    def book(book_no: str) -> str | None:
        got = client.get(ADMIN, f"/v1/account-books/{book_no}")
        if got.status_code != 200:
            return f"book {book_no}: GET answers {got.status_code}"
        wrong = [
            f"item {i['item_no']} on_hand {i['on_hand']} != {on_hand[(book_no, i['item_no'])]}"
            for i in got.json()["items"]
            if Decimal(i["on_hand"]) != on_hand[(book_no, i["item_no"])]
        ]
        return f"book {book_no}: {'; '.join(wrong)}" if wrong else None

    books = {a.body["book_no"] for a in acks if a.kind == "account_book"}
    with ThreadPoolExecutor(workers) as pool:
        found = list(pool.map(movement, [a for a in acks if a.kind in MOVEMENT_KINDS]))
        found += list(pool.map(declaration, sorted(latest)))
        found += list(pool.map(book, sorted(books)))
    wrong = [f for f in found if f is not None]
    return (
        [f"{len(wrong)} reads differ from the acknowledged writes: {_first(wrong)}"]
        if wrong
        else []
    )


def _without_progress(view: dict[str, Any]) -> dict[str, Any]:
    """A declaration without what later movements change (each line's quantity moved)."""
    lines = [
        {k: v for k, v in n.items() if k not in ("quantity_moved", "quantity_received")}
        for n in view["lines"]
    ]
    return {**{k: v for k, v in view.items() if k != "history"}, "lines": lines}


def check_retries(clients: list[RetryingClient], acks: list[Ack]) -> list[str]:
    """Every acknowledged write sent again with its key: the first answer, marked as a replay,
    and nothing added to the log."""
    before = wait_caught_up(clients[0])["log_position"]

    def again(job: tuple[RetryingClient, list[Ack]]) -> list[str]:
        client, mine = job
        wrong = []
        for a in mine:
            r = client.write(a.kind, a.who, a.path, a.body, a.key)
            if r.status != a.status or not r.replayed or r.response != a.response:
                wrong.append(f"{a.kind} {a.key}: {r.status} replayed={r.replayed}")
        return wrong

    jobs = [(c, acks[i :: len(clients)]) for i, c in enumerate(clients)]
    with ThreadPoolExecutor(len(clients)) as pool:
        wrong = [w for found in pool.map(again, jobs) for w in found]
    after = wait_caught_up(clients[0])["log_position"]
    failures = []
    if wrong:
        failures.append(
            f"{len(wrong)} retried keys did not replay their first answer: {_first(wrong)}"
        )
    if after != before:
        failures.append(f"retrying acknowledged keys moved the log from {before} to {after}")
    return failures


def check_cli(env: dict[str, str], head_sequence: int) -> tuple[list[str], dict[str, str]]:
    """`customs-ledger verify` and `customs-ledger replay`, both exit 0."""
    failures, seen = [], {}
    verify = cli(env, "verify")
    seen["verify"] = verify.stdout.strip().replace("\n", "; ")
    if verify.returncode != 0:
        failures.append(f"verify exited {verify.returncode}: {verify.stdout[-800:]}")
    elif f"events_checked: {head_sequence}" not in verify.stdout:
        failures.append(f"verify checked another number of events than {head_sequence}")
    replay = cli(env, "replay")
    seen["replay"] = replay.stderr.strip().splitlines()[-1] if replay.stderr.strip() else ""
    if replay.returncode != 0:
        failures.append(f"replay exited {replay.returncode}: {replay.stdout[-1500:]}")
    return failures, seen


# What each kind of receipt event is about (docs/receipts.md's table), written out here rather
# than asked of the ledger: the soak checks what the outbox computed (projections/receipts.py),
# so it takes from the ledger only which event types are receipts (domain/receipts.py, pure)
# and derives the rest - which subscription gets which, in which order - on its own.
RECEIPT_SUBJECTS = {
    "DeclarationAssessed": "declaration",
    "InspectionRecorded": "declaration",
    "ReleaseGranted": "declaration",
    "DeclarationRejected": "declaration",
    "DutiesPaid": "declaration",
    "DeclarationWithdrawn": "declaration",
    "TransferAccepted": "declaration",
    "TransferRefused": "declaration",
    "MovementRecorded": "movement",
    "WriteOffSubmitted": "write_off",
    "WriteOffCertified": "write_off",
    "LiabilityAssessed": "tax_bill",
    "LiabilityPaid": "tax_bill",
    "LiabilityWaived": "tax_bill",
    "ChecklistFiled": "checklist",
    "StandaloneChecklistFiled": "checklist",
    "ChecklistApproved": "checklist",
    "ChecklistRejected": "checklist",
    "ChecklistWithdrawn": "checklist",
    "ChecklistPassed": "checklist",
    "ChecklistLinesMoved": "checklist",
    "ChecklistDeclared": "checklist",
    "GatePassFiled": "gate_pass",
    "GatePassPassed": "gate_pass",
}
# Declaration events without a `status` of their own: the status they leave.
_LEAVES = {
    "DeclarationRejected": "rejected",
    "DeclarationWithdrawn": "withdrawn",
    "TransferRefused": "refused",
}
# Without progress of any subscription's deliveries for this long, the wait gives up.
STALLED_SECONDS = 30.0


@dataclass(frozen=True)
class Subscription:
    """A subscription the soak made before its writes, and the receiver's path for it."""

    name: str
    id: str
    who: str  # the key that made it
    tenant: str | None  # the enterprise key whose receipts it takes; None: customs' (all)
    secret: str


def receipt_event_types() -> tuple[set[str], list[str]]:
    """The log's event types that are receipts (domain/receipts.py's classification), and a
    failure for each whose subject the soak does not know (RECEIPT_SUBJECTS is out of date)."""
    from domain.receipts import RECEIPT_EVENTS

    types = {cls.__name__ for cls in RECEIPT_EVENTS}
    unknown = sorted(types - set(RECEIPT_SUBJECTS))
    if unknown:
        return types, [f"tests/soak/checks.py RECEIPT_SUBJECTS lacks receipt events {unknown}"]
    return types, []


def owners(acks: list[Ack]) -> dict[str, str]:
    """Whose each subject is, from what each tenant itself submitted: a declaration is its
    declarant's (the key that submitted it), an adjustment the enterprise's that recorded it,
    a gate_in the declaration's it admits goods of. Subject id -> enterprise key name."""
    owner = {a.response["id"]: a.who for a in acks if a.kind == "declaration"}
    for a in acks:
        if a.kind == "adjustment":
            owner[a.response["movement_id"]] = a.who
    for a in acks:
        if a.kind == "gate_in":
            owner[a.response["movement_id"]] = owner[a.body["declaration"]]
    return owner


def receipt_type(event: dict[str, Any]) -> str:
    """The receipt type a log event is (only its subject and a dot for kinds the soak does not
    write: write-offs and tax bills)."""
    subject = RECEIPT_SUBJECTS.get(event["type"], "?")
    payload = event["payload"]
    if event["type"] == "MovementRecorded":
        return f"movement.{payload['view']['kind']}"
    if subject == "declaration":
        return f"declaration.{_LEAVES.get(event['type']) or payload['status']}"
    return f"{subject}."


def expected_receipts(
    subs: list[Subscription], events: list[dict[str, Any]], acks: list[Ack]
) -> tuple[dict[str, dict[int, dict[str, Any]]], list[str]]:
    """Per subscription (by name) the receipts it must receive: each receipt event of the log
    after the subscription's SubscriptionCreated, an enterprise's only about its own subjects."""
    types, failures = receipt_event_types()
    created = {e["stream_id"]: e["position"] for e in events if e["type"] == "SubscriptionCreated"}
    owner = owners(acks)
    receipts = [e for e in events if e["type"] in types]
    orphans = [f"{e['type']} at {e['position']}" for e in receipts if e["stream_id"] not in owner]
    if orphans:
        failures.append(
            f"{len(orphans)} receipt events are about a subject no acknowledged write made: "
            f"{_first(orphans)}"
        )
    expected: dict[str, dict[int, dict[str, Any]]] = {}
    for s in subs:
        if s.id not in created:
            failures.append(f"subscription {s.name} ({s.id}): no SubscriptionCreated in the log")
            continue
        expected[s.name] = {
            e["position"]: e
            for e in receipts
            if e["position"] > created[s.id]
            and (s.tenant is None or owner.get(e["stream_id"]) == s.tenant)
        }
    return expected, failures


def webhook_figures(client: RetryingClient) -> dict[str, Any]:
    """What /metrics says of the deliveries: backlog per subscription, attempts by result."""
    text = client.get(AUDITOR, "/metrics").text
    backlog = {
        m[1]: float(m[2])
        for m in re.finditer(r'^ledger_webhook_backlog\{subscription="([^"]+)"\} (\S+)$', text, M)
    }
    attempts = {
        m[1]: int(float(m[2]))
        for m in re.finditer(r'^ledger_webhook_attempts_total\{result="(\w+)"\} (\S+)$', text, M)
    }
    return {"backlog": backlog, "attempts": attempts}


def wait_receipts_delivered(
    client: RetryingClient,
    subs: list[Subscription],
    expected: dict[str, dict[int, dict[str, Any]]],
    timeout: float = 600,
) -> list[str]:
    """Until every subscription's dispatcher cursor has passed its last expected receipt and
    its outbox has nothing left (GET /v1/subscriptions/{id}, /metrics); a failure naming each
    subscription behind when deliveries make no progress for STALLED_SECONDS."""
    started = last_progress = time.monotonic()
    seen: dict[str, int] = {}
    while True:
        backlog = webhook_figures(client)["backlog"]
        behind = []
        for s in subs:
            state = client.get(AUDITOR, f"/v1/subscriptions/{s.id}").json()
            delivery = state.get("delivery") or {}
            through = delivery.get("delivered_through") or 0
            last = max(expected.get(s.name, {}) or [0])
            if through != seen.get(s.name):
                seen[s.name], last_progress = through, time.monotonic()
            if through < last or backlog.get(s.id, 0) > 0 or state.get("status") != "active":
                behind.append(
                    f"{s.name} ({s.id}): status {state.get('status')}, delivered through "
                    f"{through} of {last}, attempts at the next {delivery.get('attempts')}, "
                    f"failing {delivery.get('failing')}, backlog {backlog.get(s.id)}"
                )
        if not behind:
            return []
        now = time.monotonic()
        if now - last_progress > STALLED_SECONDS or now - started > timeout:
            return [
                f"receipts not delivered: no progress for {now - last_progress:.0f} s "
                f"({now - started:.0f} s waited): {'; '.join(behind)}"
            ]
        time.sleep(0.25)


def check_receipts(
    subs: list[Subscription],
    expected: dict[str, dict[int, dict[str, Any]]],
    deliveries: list[Delivery],
    acks: list[Ack],
) -> tuple[list[str], dict[str, int]]:
    """What the receiver got: every delivery signed (verified by the `standardwebhooks`
    package as it arrived), its webhook-id `<subscription>:<position>`, the same body on every
    delivery of one webhook-id; per subscription every expected receipt accepted at least once,
    nothing else, the receipts in log order by first arrival, each the type and subject of its
    log event; an enterprise's subscription nothing about another tenant's subjects."""
    failures: list[str] = []
    by_name = {s.name: s for s in subs}
    owner = owners(acks)
    unsigned = [
        f"{d.name} {d.webhook_id}: {d.problem}" for d in deliveries if d.problem and not d.cut
    ]
    if unsigned:
        failures.append(f"{len(unsigned)} deliveries failed verification: {_first(unsigned)}")
    bodies: dict[tuple[str, str], bytes] = {}
    changed, misnamed, foreign = [], [], []
    for d in deliveries:
        s = by_name.get(d.name)
        if s is None or d.problem:
            continue
        if bodies.setdefault((d.name, d.webhook_id), d.body) != d.body:
            changed.append(f"{d.name} {d.webhook_id}")
        receipt = d.receipt()
        if d.webhook_id != f"{s.id}:{receipt['position']}":
            misnamed.append(f"{d.name}: webhook-id {d.webhook_id}, position {receipt['position']}")
        subject = receipt["subject"]["id"]
        if s.tenant is not None and owner.get(subject) != s.tenant:
            foreign.append(
                f"{d.name} got {receipt['type']} at {receipt['position']} about {subject}, "
                f"which is {owner.get(subject, 'no tenant')}'s"
            )
    if changed:
        failures.append(
            f"{len(changed)} webhook-ids came again with another body: {_first(changed)}"
        )
    if misnamed:
        failures.append(
            f"{len(misnamed)} webhook-ids do not name their receipt: {_first(misnamed)}"
        )
    if foreign:
        failures.append(f"{len(foreign)} receipts reached another tenant: {_first(foreign)}")
    figures: Counter[str] = Counter()
    for s in subs:
        failures += _one_subscription(s, expected.get(s.name, {}), deliveries, figures)
    figures["subscriptions"] = len(subs)
    figures["expected"] = sum(len(e) for e in expected.values())
    figures["deliveries"] = sum(1 for d in deliveries if d.name in by_name)
    figures["answered_503"] = sum(1 for d in deliveries if d.answered == 503)
    figures["cut_short"] = sum(1 for d in deliveries if d.cut)
    return failures, dict(figures)


def _one_subscription(
    s: Subscription,
    expected: dict[int, dict[str, Any]],
    deliveries: list[Delivery],
    figures: Counter[str],
) -> list[str]:
    failures = []
    mine = [d for d in deliveries if d.name == s.name and not d.problem]
    first: dict[str, dict[str, Any]] = {}  # webhook-id -> receipt, in first-arrival order
    seen: set[str] = set()
    for d in mine:
        if d.webhook_id in seen:
            figures["sent_again"] += 1  # after a failed answer, or a kill before its cursor
        seen.add(d.webhook_id)
        if not d.accepted:
            continue
        if d.webhook_id in first:
            figures["duplicates"] += 1  # accepted before: at least once, not exactly once
        else:
            first[d.webhook_id] = d.receipt()
    positions = [r["position"] for r in first.values()]
    figures["delivered"] += len(positions)
    backwards = [f"{a} then {b}" for a, b in itertools.pairwise(positions) if b <= a]
    if backwards:
        failures.append(
            f"{s.name}: receipts out of log order ({len(backwards)} times): {_first(backwards)}"
        )
    missing = sorted(set(expected) - set(positions))
    if missing:
        lost = [f"{expected[p]['type']} at {p}" for p in missing]
        failures.append(
            f"{s.name}: {len(missing)} of {len(expected)} receipts never accepted: {_first(lost)}"
        )
    extra = sorted(set(positions) - set(expected))
    if extra:
        failures.append(
            f"{s.name}: {len(extra)} receipts it should not have: {_first([str(p) for p in extra])}"
        )
    wrong = []
    for r in first.values():
        e = expected.get(r["position"])
        if e is None:
            continue
        kind = receipt_type(e)
        if not (r["type"].startswith(kind) if kind.endswith(".") else r["type"] == kind):
            wrong.append(f"{r['type']} at {r['position']}: the log's {e['type']} is {kind}")
        elif (r["subject"]["kind"], r["subject"]["id"]) != (
            RECEIPT_SUBJECTS.get(e["type"]),
            e["stream_id"],
        ):
            wrong.append(f"{r['type']} at {r['position']}: subject {r['subject']}")
    if wrong:
        failures.append(f"{s.name}: {len(wrong)} receipts differ from their event: {_first(wrong)}")
    return failures
