"""After the soak: every acknowledged write is in the log once, reads answer what the writes
answered, a retry of any of them is a replay, the chain verifies and the views equal a replay."""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

from tests.soak.client import Ack, RetryingClient
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
