"""Movements under contention: many writers hammer the same lots and declarations at once.

One book item holds 200 bonded pieces in three lots. Four outbound declarations released
beforehand reserve 152 of them (three exports, one of them with two lines of the same item, and a
transfer to another zone). Then every writer, as fast as it can and in its own shuffled order:
lets goods out under the exports (`gate_out`) and dispatches the transfer (`transfer_dispatch`),
far more in total than the declarations cover; repeats some Idempotency-Keys that the other
writers use too (same body: one movement, the rest replays; different bodies: one movement, the
rest `idempotency_key_reused`); and submits new exports that are released at once and together
ask for three times the 48 pieces still available (only those that fit may be released; each
one released is then let out by every writer that saw it, again beyond its quantity).

Afterwards the ledger must agree with a model built from the answers alone: no line moved
beyond what it declares, no lot or item below zero, every lot's balance equal to its quantity
in minus its draws, FIFO order kept, `pending_out` and `in_transit_out` what the accepted
answers leave, every accepted movement readable and its events in the log, no event from a
request that was refused (409 `concurrent_update` after the bounded retries included: it is a
refusal and the model does not count it), no refusal that the final state contradicts, no
5xx, and an intact hash chain.

Threads of one process decide one at a time (the application's command lock), so on SQLite
this tests group commit and idempotency under load; only separate processes on PostgreSQL put
the store's optimistic version check to work, which the PostgreSQL test does with three OS
processes, each a server application of its own on the same schema.

Run as `python -m tests.integration.test_movement_races JOB.json`, this module is one of those
processes (see `main`).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from itertools import zip_longest
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from tests.samples import book_body, line
from tests.support import Ledger, Tenant, declaration_body, new_key, onboard, running_ledger

REPO = Path(__file__).resolve().parents[2]
ZONE, DESTINATION_ZONE = "XCBZ", "XEPZ"
ITEM = 1
LOTS = (Decimal(60), Decimal(60), Decimal(80))
# Released before the race: name -> quantity per line (all of item 1). 40 + 50 + 32 + 30 = 152,
# leaving 48 available.
DECLARED = {"A": (40,), "B": (50,), "C": (20, 12), "T": (30,)}
# Exports each writer submits during the race (released at once, if they fit): 48 per writer,
# and one more under a key every writer shares.
RELEASES = (5, 7, 4, 9, 6, 8, 3, 6)
SHARED_RELEASE = 3
# Each writer's gate_out and dispatch sequences run this many times: about 1.5 times what each
# declaration covers per writer.
ROUNDS = 3

MOVE_REFUSALS = {"exceeds_declared_quantity", "idempotency_key_reused", "concurrent_update"}
RELEASE_REFUSALS = {"insufficient_stock", "idempotency_key_reused", "concurrent_update"}


@dataclass
class Scenario:
    """What the race runs against (JSON, handed to each worker process)."""

    owner: str  # the enterprise's key name
    uscc: str
    book_no: str
    destination_book: str
    gate: str  # an operator key of XCBZ
    lots: list[str]  # in admission (FIFO) order
    declarations: dict[str, dict[str, Any]]  # name -> {"id", "number", "lines": [quantities]}
    export_body: dict[str, Any]  # a first_line_out body; its line quantity is replaced


# -- setting up ---------------------------------------------------------------------------------


def _outbound(t: Tenant, quantities: tuple[int, ...], **overrides: Any) -> dict[str, Any]:
    lines = [
        line(ITEM, line_no=n, quantity=str(q), origin_country=None)
        for n, q in enumerate(quantities, 1)
    ]
    base = {"flow": "first_line_out", "trade_mode": "0110", "country": "KZ", "lines": lines}
    return declaration_body(t.uscc, t.book_no, **(base | overrides))


def _admit_lot(ledger: Ledger, t: Tenant, gate: str, quantity: Decimal) -> str:
    body = declaration_body(
        t.uscc, t.book_no, lines=[line(ITEM, quantity=str(quantity))], client_ref="race-in"
    )
    d = ledger.post("/v1/declarations", t.token_name, body, key=new_key())
    assert d.status_code == 201 and d.json()["status"] == "released", d.text
    moved = ledger.post(
        "/v1/movements",
        gate,
        {
            "kind": "gate_in",
            "declaration": d.json()["id"],
            "lines": [{"line_no": 1, "quantity": str(quantity)}],
        },
        key=new_key(),
    )
    assert moved.status_code == 201, moved.text
    return moved.json()["lots"][0]["lot_id"]  # type: ignore[no-any-return]


def prepare(ledger: Ledger) -> Scenario:
    t = onboard(ledger, zone=ZONE)
    destination = f"{t.book_no}-EPZ"
    r = ledger.post(
        "/v1/account-books", "admin", book_body(destination, t.uscc, zone=DESTINATION_ZONE)
    )
    assert r.status_code == 201, r.text
    gate = f"gate-race-{new_key()[:8]}"
    ledger.issue(gate, "operator", zone=ZONE)
    lots = [_admit_lot(ledger, t, gate, q) for q in LOTS]
    declarations = {}
    for name, quantities in DECLARED.items():
        if name == "T":
            body = _outbound(
                t,
                quantities,
                flow="transfer",
                trade_mode="5034",
                country="CN",
                destination_zone=DESTINATION_ZONE,
                destination_account_book=destination,
            )
        else:
            body = _outbound(t, quantities)
        d = ledger.post("/v1/declarations", t.token_name, body, key=new_key())
        assert d.status_code == 201 and d.json()["status"] == "released", d.text
        declarations[name] = {
            "id": d.json()["id"],
            "number": d.json()["declaration_no"],
            "lines": list(quantities),
        }
    item = _item(ledger, t.token_name, t.book_no)
    assert (item["on_hand"], item["pending_out"]) == (sum(LOTS), sum(map(sum, DECLARED.values())))
    return Scenario(
        owner=t.token_name,
        uscc=t.uscc,
        book_no=t.book_no,
        destination_book=destination,
        gate=gate,
        lots=lots,
        declarations=declarations,
        export_body=_outbound(t, (1,), client_ref="race-out"),
    )


def _item(ledger: Ledger, who: str, book_no: str) -> dict[str, Decimal]:
    r = ledger.get(f"/v1/account-books/{book_no}", who)
    assert r.status_code == 200, r.text
    item = next(i for i in r.json()["items"] if i["item_no"] == ITEM)
    return {k: Decimal(item[k]) for k in ("on_hand", "pending_out", "in_transit_out", "available")}


# -- what each writer does ----------------------------------------------------------------------


def plan(s: Scenario, writer: int) -> list[dict[str, Any]]:
    """One writer's requests: the shared keys first (while every declaration still covers
    them, so the first of each is accepted and the twins replay it), then the rest in an order
    of the writer's own."""
    steps: list[dict[str, Any]] = []
    decl = s.declarations

    def move(kind: str, name: str, lines: dict[int, int], key: str, by_number: bool) -> None:
        ref = decl[name]["number"] if by_number else decl[name]["id"]
        body = {
            "kind": kind,
            "declaration": ref,
            "lines": [{"line_no": n, "quantity": str(q)} for n, q in lines.items() if q],
        }
        steps.append({"path": "/v1/movements", "who": s.gate, "key": key, "body": body})

    # Keys every writer sends with the same body: one movement each, the others replay it.
    for i in range(3):
        move("gate_out", "A", {1: 1}, f"shared-A-{i}", by_number=False)
        move("transfer_dispatch", "T", {1: 1}, f"shared-T-{i}", by_number=False)
        move("gate_out", "C", {1: 1, 2: 1}, f"shared-C-{i}", by_number=False)
    # A key every writer sends with a different body: one movement, the others refused.
    move("gate_out", "B", {1: writer + 1}, "clash-B", by_number=False)
    steps.append(_export(s, SHARED_RELEASE, "shared-release"))
    shared = len(steps)
    random.Random(f"movement-races-shared-{writer}").shuffle(steps)

    w = f"w{writer}"
    for r in range(ROUNDS):
        for i, q in enumerate((3, 2, 5, 1, 4, 2, 3, 1)):
            move("gate_out", "A", {1: q}, f"{w}-A-{r}-{i}", by_number=i % 2 == 0)
        for i, q in enumerate((4, 3, 1, 6, 2, 5, 1, 3)):
            move("gate_out", "B", {1: q}, f"{w}-B-{r}-{i}", by_number=False)
        for i, (q1, q2) in enumerate(((2, 1), (3, 0), (0, 2), (4, 2), (1, 1), (2, 0))):
            move("gate_out", "C", {1: q1, 2: q2}, f"{w}-C-{r}-{i}", by_number=i % 2 == 1)
        for i, q in enumerate((2, 3, 1, 4, 2, 3)):
            move("transfer_dispatch", "T", {1: q}, f"{w}-T-{r}-{i}", by_number=False)
    # Beyond what a line declares at all: always refused.
    move("gate_out", "A", {1: DECLARED["A"][0] + 1}, f"{w}-A-over", by_number=False)
    move("transfer_dispatch", "T", {1: DECLARED["T"][0] + 1}, f"{w}-T-over", by_number=False)
    for i, q in enumerate(RELEASES):
        steps.append(_export(s, q, f"{w}-release-{i}"))
    rest = steps[shared:]
    random.Random(f"movement-races-{writer}").shuffle(rest)
    return steps[:shared] + rest


def _export(s: Scenario, quantity: int, key: str) -> dict[str, Any]:
    body = json.loads(json.dumps(s.export_body))
    body["lines"][0]["quantity"] = str(quantity)
    return {"path": "/v1/declarations", "who": s.owner, "key": key, "body": body, "follow": True}


def _exits_of_release(
    step: dict[str, Any], answer: dict[str, Any], gate: str, tag: str
) -> list[dict[str, Any]]:
    """A writer that saw an export released lets it out at once: in two parts, then once more
    (refused: nothing left). Every writer that saw it does, so they race on it too."""
    q = int(step["body"]["lines"][0]["quantity"])
    parts = [(q + 1) // 2, q - (q + 1) // 2, 1]
    return [
        {
            "path": "/v1/movements",
            "who": gate,
            "key": f"{step['key']}-{tag}-out{n}",
            "body": {
                "kind": "gate_out",
                "declaration": answer["id"] if n % 2 == 0 else answer["declaration_no"],
                "lines": [{"line_no": 1, "quantity": str(part)}],
            },
        }
        for n, part in enumerate(parts)
        if part
    ]


def run_steps(
    client: Any,
    tokens: dict[str, str],
    gate: str,
    steps: list[dict[str, Any]],
    label: str,
    threads: int,
    start: Callable[[], None],
) -> list[dict[str, Any]]:
    """Send `steps` over `threads` threads (each waits on `start` first); every answer kept."""
    records: list[dict[str, Any]] = []
    lock = threading.Lock()

    def send(step: dict[str, Any], tag: str) -> dict[str, Any]:
        headers = {
            "Authorization": f"Bearer {tokens[step['who']]}",
            "Idempotency-Key": step["key"],
        }
        t0 = time.time()
        try:
            r = client.post(step["path"], json=step["body"], headers=headers)
        except Exception as e:  # a TestClient that re-raises the server's error: still a 500
            status, answer, replayed = 500, {"raised": repr(e)}, False
        else:
            try:
                answer = r.json()
            except ValueError:
                answer = {"text": r.text}
            status, replayed = r.status_code, r.headers.get("idempotency-replayed") == "true"
        return {
            **step,
            "by": tag,
            "status": status,
            "json": answer,
            "replayed": replayed,
            "t0": t0,
            "t1": time.time(),
        }

    errors: list[BaseException] = []

    def work(n: int) -> None:
        tag = f"{label}t{n}"
        queue = list(steps[n::threads])
        try:
            start()
            while queue:
                step = queue.pop(0)
                record = send(step, tag)
                with lock:
                    records.append(record)
                if step.get("follow") and record["status"] == 201:
                    queue[0:0] = _exits_of_release(step, record["json"], gate, tag)
        except BaseException as e:  # a thread must not end quietly with answers unrecorded
            with lock:
                errors.append(e)

    pool = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    if errors:
        raise errors[0]
    return records


# -- the model, from the answers alone, against the ledger --------------------------------------


def check(ledger: Ledger, s: Scenario, records: list[dict[str, Any]]) -> dict[str, Any]:
    """Every assertion of the module docstring; returns counts for the report."""
    app = ledger.services.app
    # Anything but 201 and 409 fails the test, but only after the model is checked: that tells
    # whether such a request left anything behind (it must not).
    odd = [r for r in records if r["status"] not in (201, 409)]
    moves = [r for r in records if r["path"] == "/v1/movements"]
    submits = [r for r in records if r["path"] == "/v1/declarations"]
    for group, allowed in ((moves, MOVE_REFUSALS), (submits, RELEASE_REFUSALS)):
        rules = {r["json"].get("rule") for r in group if r["status"] == 409}
        assert rules <= allowed, [r for r in group if r["json"].get("rule") not in allowed][:3]

    accepted = _originals(moves, "movement_id")
    releases = _originals(submits, "id")
    assert all(r["json"]["status"] == "released" for r in releases.values())

    # What each released declaration declares, by id; references by number resolve to ids.
    declared: dict[str, list[Decimal]] = {
        d["id"]: [Decimal(q) for q in d["lines"]] for d in s.declarations.values()
    }
    ids = {d["number"]: d["id"] for d in s.declarations.values()}
    for r in releases.values():
        declared[r["json"]["id"]] = [Decimal(x["quantity"]) for x in r["json"]["lines"]]
        ids[r["json"]["declaration_no"]] = r["json"]["id"]
    ids |= {i: i for i in declared}
    transfer = s.declarations["T"]["id"]

    moved: dict[tuple[str, int], Decimal] = defaultdict(Decimal)
    drawn: dict[str, dict[str, Decimal]] = defaultdict(dict)  # lot -> movement -> quantity
    exits = dispatched = Decimal(0)
    for mid, r in accepted.items():
        body, answer = r["body"], r["json"]
        did = ids[body["declaration"]]
        assert answer["declaration"] == did and answer["kind"] == body["kind"]
        assert (body["kind"] == "transfer_dispatch") == (did == transfer)
        total = Decimal(0)
        for x in body["lines"]:
            moved[(did, x["line_no"])] += Decimal(x["quantity"])
            total += Decimal(x["quantity"])
        assert sum(Decimal(x["quantity"]) for x in answer["lots"]) == total, r
        for x in answer["lots"]:
            drawn[x["lot_id"]][mid] = drawn[x["lot_id"]].get(mid, Decimal(0)) + Decimal(
                x["quantity"]
            )
        if body["kind"] == "gate_out":
            exits += total
        else:
            dispatched += total

    # No over-exit, no lost update: each line's moved quantity is the accepted answers' sum.
    remaining: dict[tuple[str, int], Decimal] = {}
    for did, lines in declared.items():
        state = app.load(UUID(did))
        for n, quantity in enumerate(lines, 1):
            assert moved[(did, n)] <= quantity, (did, n, moved[(did, n)], quantity)
            assert state.facts.lines[n - 1].quantity_moved == moved[(did, n)], (did, n)
            remaining[(did, n)] = quantity - moved[(did, n)]
    # A refusal the final state contradicts would be a lost acceptance: what a line still
    # covers only shrinks, so a line refused as exceeded must still be short of it.
    for r in moves:
        if r["status"] == 409 and r["json"]["rule"] == "exceeds_declared_quantity":
            did = ids[r["body"]["declaration"]]
            lines = r["body"]["lines"]
            assert any(Decimal(x["quantity"]) > remaining[(did, x["line_no"])] for x in lines), r

    # The item: conservation, reservations and transit as the model says.
    admitted = sum(LOTS)
    item = _item(ledger, s.owner, s.book_no)
    assert item["on_hand"] == admitted - exits - dispatched, (item, exits, dispatched)
    assert item["in_transit_out"] == dispatched
    assert item["pending_out"] == sum(remaining.values())
    assert item["available"] == item["on_hand"] - item["pending_out"] >= 0
    # Available only shrinks (releases reserve; exits and dispatches take what was reserved):
    # a release refused for stock must still not fit.
    for r in submits:
        if r["status"] == 409 and r["json"]["rule"] == "insufficient_stock":
            assert Decimal(r["body"]["lines"][0]["quantity"]) > item["available"], r
    assert _item(ledger, s.owner, s.destination_book)["on_hand"] == 0  # nothing received

    # The write side's stream, event by event: nothing from a refused request, nothing lost.
    from domain.movements import item_stock_id

    stock_stream = item_stock_id(s.book_no, ITEM)
    stock = app.load(stock_stream)
    events = list(app.events.get(stock_stream))
    left_by = {
        str(e.movement_id)
        for e in events
        if type(e).__name__ in ("GoodsExited", "TransferDispatched")
    }
    assert left_by == set(accepted)
    reserved_for = {str(e.declaration_id) for e in events if type(e).__name__ == "StockReserved"}
    assert reserved_for == set(declared)
    assert {str(k): v.quantity for k, v in stock.reserved.items()} == {
        did: sum(remaining[(did, n)] for n in range(1, len(lines) + 1))
        for did, lines in declared.items()
        if any(remaining[(did, n)] for n in range(1, len(lines) + 1))
    }
    assert stock.on_hand == item["on_hand"]
    assert sum(sum(x.values()) for x in stock.in_transit.values()) == dispatched

    # Lots: never below zero, quantity in minus draws, drained first-in first-out.
    assert set(drawn) <= set(s.lots)
    balances = []
    for lot_id, quantity_in in zip(s.lots, LOTS, strict=True):
        lot = ledger.get(f"/v1/lots/{lot_id}", s.gate).json()
        taken = sum(drawn[lot_id].values(), Decimal(0))
        assert Decimal(lot["quantity_in"]) == quantity_in
        assert Decimal(lot["on_hand"]) == quantity_in - taken >= 0, (lot, taken)
        draws = [e for e in app.events.get(UUID(lot_id)) if type(e).__name__ == "LotDrawn"]
        by_movement: dict[str, Decimal] = defaultdict(Decimal)
        for e in draws:  # a movement drawing one lot for two lines draws it twice
            by_movement[str(e.movement_id)] += e.quantity
        assert by_movement == drawn[lot_id]
        open_ = stock.lots.get(UUID(lot_id))
        assert (open_.quantity if open_ else Decimal(0)) == Decimal(lot["on_hand"])
        balances.append((Decimal(lot["on_hand"]), quantity_in))
    first_open = next((n for n, (left, _) in enumerate(balances) if left), len(balances))
    assert all(left == full for left, full in balances[first_open + 1 :]), balances

    # Every accepted movement is readable, and its events are in the log.
    for mid, r in accepted.items():
        got = ledger.get(f"/v1/movements/{mid}", s.gate)
        assert got.status_code == 200 and got.json() == r["json"], got.text
        logged = ledger.get(f"/v1/streams/{mid}/events", "auditor").json()["items"]
        assert [e["type"] for e in logged] == ["MovementRecorded"], logged
        history = [e for e in app.events.get(UUID(r["json"]["declaration"]))]
        assert any(getattr(e, "movement_id", None) == UUID(mid) for e in history)
    for did in declared:
        assert ledger.get(f"/v1/streams/{did}/events", "auditor").status_code == 200

    report = ledger.get("/v1/audit/verify", "auditor").json()
    assert report["ok"] is True, report["failures"]
    versions: dict[Any, list[int]] = defaultdict(list)
    for rec in app.log.select_log(0, 1_000_000):
        versions[rec.stream_id].append(rec.version)
    assert all(v == list(range(1, len(v) + 1)) for v in versions.values())

    assert not odd, [(r["status"], r["by"], r["key"], r["body"], r["json"]) for r in odd[:5]]
    refused = Counter(r["json"]["rule"] for r in records if r["status"] == 409)
    return {
        "requests": len(records),
        "accepted_movements": len(accepted),
        "accepted_releases": len(releases),
        "replayed": sum(r["replayed"] for r in records),
        "refused": dict(refused),
        "exits": str(exits),
        "dispatched": str(dispatched),
        "events_checked": report["events_checked"],
    }


def _originals(records: list[dict[str, Any]], id_field: str) -> dict[str, dict[str, Any]]:
    """Accepted answers by the id they created: one original each, every replay the same."""
    by_id: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        if r["status"] == 201:
            by_id[r["json"][id_field]].append(r)
    originals = {}
    for created, answers in by_id.items():
        first = [r for r in answers if not r["replayed"]]
        assert len(first) == 1, answers
        assert all(r["json"] == first[0]["json"] for r in answers), answers
        assert len({(r["who"], r["key"]) for r in answers}) == 1, answers
        originals[created] = first[0]
    return originals


# -- SQLite: threads on one application ----------------------------------------------------------


def test_threads_on_sqlite_keep_stock_lots_and_declarations_consistent(sqlite_url):
    with running_ledger(sqlite_url) as ledger:
        s = prepare(ledger)
        # Four writers' plans, one step of each in turn: the shared keys come first for all.
        plans = [plan(s, writer) for writer in range(4)]
        steps = [step for turn in zip_longest(*plans) for step in turn if step is not None]
        barrier = threading.Barrier(8)
        started = time.monotonic()
        records = run_steps(ledger.client, ledger.tokens, s.gate, steps, "sqlite", 8, barrier.wait)
        took = time.monotonic() - started
        counts = check(ledger, s, records)
    print(f"\nsqlite threads: {took:.1f}s {counts}")
    assert counts["refused"].get("concurrent_update", 0) == 0  # one process: no lost race
    assert counts["replayed"] > 0


# -- PostgreSQL: separate processes on one schema -----------------------------------------------

WRITERS, THREADS_PER_WRITER = 3, 3


@pytest.mark.postgres
def test_processes_on_postgresql_keep_stock_lots_and_declarations_consistent(
    postgres_url, tmp_path
):
    with running_ledger(postgres_url) as ledger:
        s = prepare(ledger)
        tokens = {who: ledger.tokens[who] for who in (s.owner, s.gate)}
    go = tmp_path / "go"
    # The repository first; a caller's own PYTHONPATH (if any) kept after it.
    paths = [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    procs: list[subprocess.Popen[str]] = []
    outputs, logs = [], []
    try:
        for n in range(WRITERS):
            job = tmp_path / f"job{n}.json"
            ready, out = tmp_path / f"ready{n}", tmp_path / f"out{n}.json"
            job.write_text(
                json.dumps(
                    {
                        "url": postgres_url,
                        "label": f"p{n}",
                        "tokens": tokens,
                        "gate": s.gate,
                        "steps": plan(s, n),
                        "threads": THREADS_PER_WRITER,
                        "ready": str(ready),
                        "go": str(go),
                        "out": str(out),
                    }
                )
            )
            proc = subprocess.Popen(
                [sys.executable, "-m", "tests.integration.test_movement_races", str(job)],
                cwd=REPO,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            procs.append(proc)
            outputs.append(out)
            # One at a time up to the start line, as in the e-commerce race: this is about the
            # movements, not about applications creating the store's tables together.
            deadline = time.monotonic() + 60
            while not ready.exists():
                if proc.poll() is not None:
                    pytest.fail(f"writer {n} exited early: {proc.communicate()[1]}")
                assert time.monotonic() < deadline, f"writer {n} never got ready"
                time.sleep(0.01)
        started = time.monotonic()
        go.touch()  # all of them at once
        for proc in procs:
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
            logs.append(err)
        took = time.monotonic() - started
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    results = [json.loads(out.read_text()) for out in outputs]
    records = [r for result in results for r in result["records"]]
    failed_writes = sum((Counter(result["failed_writes"]) for result in results), Counter())

    # They really ran at the same time: every writer started before any of them finished.
    spans = [
        (min(r["t0"] for r in x["records"]), max(r["t1"] for r in x["records"])) for x in results
    ]
    assert max(a for a, _ in spans) < min(b for _, b in spans), spans

    with running_ledger(postgres_url) as ledger:
        ledger.tokens.update(tokens)
        try:
            counts = check(ledger, s, records)
        except AssertionError:
            for n, err in enumerate(logs):  # a 500's traceback is in its writer's log
                print(f"--- writer {n} stderr ---\n{err[-8000:]}")
            raise
    print(f"\npostgres processes: {took:.1f}s {counts} failed group writes: {dict(failed_writes)}")
    assert counts["replayed"] > 0


# -- the reduction of what the race found ------------------------------------------------------
# A movement reads the declaration, then the item's stock; when another process moved goods
# under the same declaration in between, the stale declaration still covered the request but
# the stock no longer held its reservation (or transit): the decision failed with a KeyError (a
# 500). LedgerApplication.run now sees that a stream it read has moved on and decides again.


@pytest.mark.postgres
@pytest.mark.parametrize("kind", ["gate_out", "transfer_dispatch", "transfer_receipt"])
def test_a_movement_read_across_another_processs_movement_is_decided_again(kind, postgres_url):
    """Two applications (two server processes) on one schema; the second one's movement lands
    between the first one's read of the declaration and its read of the item's stock."""
    import msgspec

    from api.services import load_zones
    from domain.errors import Conflict
    from domain.events import Actor
    from domain.exits import GateOut
    from domain.transfers import TransferDispatch, TransferReceipt
    from ledger.application import LedgerApplication
    from ledger.commands import Idempotency
    from ledger.commands import Ledger as Commands
    from ledger.database import parse_database_url
    from tests.samples import rules_without_draws

    with running_ledger(postgres_url) as ledger:
        t = onboard(ledger, zone=ZONE)
        gate = f"gate-{new_key()[:8]}"
        ledger.issue(gate, "operator", zone=ZONE)
        _admit_lot(ledger, t, gate, Decimal(5))
        if kind == "gate_out":
            body, zone = _outbound(t, (2,)), ZONE
        else:
            destination = f"{t.book_no}-EPZ"
            book = book_body(destination, t.uscc, zone=DESTINATION_ZONE)
            assert ledger.post("/v1/account-books", "admin", book).status_code == 201
            body, zone = (
                _outbound(
                    t,
                    (2,),
                    flow="transfer",
                    trade_mode="5034",
                    country="CN",
                    destination_zone=DESTINATION_ZONE,
                    destination_account_book=destination,
                ),
                DESTINATION_ZONE if kind == "transfer_receipt" else ZONE,
            )
        d = ledger.post("/v1/declarations", t.token_name, body, key=new_key()).json()
        assert d["status"] == "released", d
        if kind == "transfer_receipt":
            sent = {"kind": "transfer_dispatch", "declaration": d["id"]}
            sent["lines"] = [{"line_no": 1, "quantity": "2"}]  # type: ignore[assignment]
            assert ledger.post("/v1/movements", gate, sent, key=new_key()).status_code == 201
    apps = [LedgerApplication(parse_database_url(postgres_url)) for _ in range(2)]
    try:
        mine, other = (Commands(a, load_zones(None), rules=rules_without_draws()) for a in apps)
        actor = Actor(name="gate", role="operator", zone=zone)
        body_type = {
            "gate_out": GateOut,
            "transfer_dispatch": TransferDispatch,
            "transfer_receipt": TransferReceipt,
        }[kind]

        def move(commands: Commands, quantity: str) -> Any:
            lines = [{"line_no": 1, "quantity": quantity}]
            cmd = msgspec.convert({"kind": kind, "declaration": d["id"], "lines": lines}, body_type)
            idem = Idempotency("gate", new_key(), "POST", "/v1/movements")
            return commands.record_movement(cmd, actor, idem)

        read = apps[0].stored  # what a command's unit of work reads the store with
        interleaved: list[int] = []

        def stored(stream: UUID) -> Any:
            state = read(stream)
            if str(stream) == d["id"] and not interleaved:
                # Between this read and the read of the item's stock: the other process
                # moves all that the declaration covers.
                interleaved.append(move(other, "2").status_code)
            return state

        apps[0].stored = stored  # type: ignore[method-assign]
        with pytest.raises(Conflict) as refused:
            move(mine, "1")
        assert interleaved == [201]
        expected = (
            "exceeds_dispatched_quantity"
            if kind == "transfer_receipt"
            else "exceeds_declared_quantity"
        )
        assert refused.value.rule == expected
    finally:
        for app in apps:
            app.close()


def main(job_path: str) -> None:
    """One writer process: its own application on the shared store, its steps at `go`."""
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.settings import Settings
    from tests.samples import rules_without_draws
    from tests.support import RAISED_LIMITS

    job = json.loads(Path(job_path).read_text())
    settings = Settings(database_url=job["url"], projections="off", rate_limits=RAISED_LIMITS)
    app = create_app(settings, rules=rules_without_draws())
    with TestClient(app, raise_server_exceptions=False) as client:
        store = app.state.services.app
        failed: Counter[str] = Counter()
        put = store.events.put

        def counted_put(events: Any, **kw: Any) -> Any:
            # Observation only: how often a group lost the version check to another process.
            try:
                return put(events, **kw)
            except Exception as e:
                failed[type(e).__name__] += 1
                raise

        store.events.put = counted_put
        Path(job["ready"]).touch()
        go = Path(job["go"])

        def start() -> None:
            while not go.exists():
                time.sleep(0.001)

        records = run_steps(
            client, job["tokens"], job["gate"], job["steps"], job["label"], job["threads"], start
        )
    Path(job["out"]).write_text(json.dumps({"records": records, "failed_writes": failed}))


if __name__ == "__main__":
    main(sys.argv[1])
