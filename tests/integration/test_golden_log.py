"""The golden log: a fixed story told to the write side records the same events as before.

A refactor of the write side (ledger/, domain/) must change no behaviour: for the same commands
the ledger records the same events, in the same order, with the same bytes, and answers the
same. This test tells one deterministic story through the HTTP API (every command the ledger
has, a few refusals, an idempotent replay) with a fixed clock that moves one minute per command,
then compares the stored log and every answer with tests/fixtures/golden_log.jsonl.

The fixture was written ONCE with the code of commit 4735b8a (before the refactor), from a git
worktree of that commit, by this module's generator:

    git worktree add /tmp/golden-base 4735b8a
    cp tests/integration/test_golden_log.py /tmp/golden-base/tests/integration/
    cd /tmp/golden-base && PYTHONPATH=/tmp/golden-base /work/main/.venv/bin/python \\
        -m tests.integration.test_golden_log --write /work/main/tests/fixtures/golden_log.jsonl

Regenerated once since, deliberately, from commit 6dbb109 (issue #14 item 7): retail lists'
buyers are sealed in the log from then on (docs/decisions/0017), so the two submissions and
two idempotency records of the 1210 lists hold tokens where the identity numbers and the name
were, and the buyer's quota stream is named by a pseudonym; every other event and every
answer is byte for byte the one of 4735b8a (the same story, `golden_app` given a fixed master
key and a counter for the key store's random source).

Do not regenerate it from the code under refactor: if this test fails, the refactor changed
behaviour. Only a deliberate, reviewed change of behaviour may replace the fixture (and then
from the commit before that change, with the story unchanged).

Regenerated once since, deliberately, for issue #14 item 2 (API keys are events,
docs/decisions/0016): the nine keys the adapter issues before the story are now the first nine
events of the log (`ApiKeyIssued`, fixed tokens, one minute before START). That fixture was
written by `write_fixture` from the commit of that change (the commit before it writes no key
events), after checking that every other line is the 4735b8a fixture's with event indexes,
positions (the `X-Ledger-Position` header, the `position` of answers) and `events_after`
moved by nine: the story's events and answers did not change.

The two branches (keys, sealed buyers) were written apart and merged in b526f34; the fixture
was then written once more from that merge commit, and checked to be the keys fixture with
exactly the sealed-buyer fixture's eight changed lines (same bytes, indexes moved by nine).

Regenerated once more for issue #15 (reference data published as events,
docs/decisions/0022), from the commit BASE_COMMIT names: the first start publishes the
configured tables as version 1 (six `ReferencePublished` events at the start of the log, two
minutes before the story, before the keys); every assessment records `tables_used` and names
the published tariff and rates by their publication digests in `tables`; the declaration's
answers show `assessed_with`. Checked line by line against the previous fixture: every other
event and answer is the same, its indexes, positions and `events_after` moved by six; no
duty, channel or status changed.

Regenerated again for issue #16 from the commit BASE_COMMIT names, and checked against the
#15 fixture field by field: the 229 events other than unit values are the same but for the
`assessable` digest of the 15 assessments (the assessable pairs now hold 9610 with
`direct_in`), the two retail lists' `tables_used` (the positive list), and `assessed_with` /
`duties.refunded` in the recorded answers; the 18 `UnitValueObserved` (at submission) are 15
`UnitValueReleased` (at release: the withdrawn and rejected lists' prices never count, two
move to the payment that released them), so later indexes and positions move; every answer
is the same but for positions, `assessed_with` and `duties.refunded`.

Regenerated again for issue #17 (checklists and gate passes, docs/decisions/0025) from the
commit BASE_COMMIT names, and checked against the #16 fixture field by field: 22 new events,
the `DocumentNumberIssued` and `ChecklistFiled` of each of the 11 declarations that moved a
book when they were released (so those declarations' later events sit one version higher);
movement records and answers gain `checklist_no` (the declaration's checklist, or null) and
`gate_pass` (null: the story files no pass); the 10 lots admitted under a checklist name it
among their papers; declaration answers gain `checklist_no`. Nothing else changed: no duty,
status, quantity or lot; indexes, positions and `events_after` moved accordingly.

Regenerated again for issue #17's collect then declare (docs/decisions/0026) from the commit
BASE_COMMIT names, and checked against the previous fixture field by field: the 43 declaration
answers and stored idempotent responses gain `collected_checklists: []` (the story files no
consolidated declaration) and the header names the new commit; nothing else changed, not an
event, index or position.

Regenerated again for issue #18's losses with liability (a stocktake shortage is judged per
lot: 1% of the lot **and** USD 100 of duty, docs/decisions/0029) from the commit BASE_COMMIT
names, and checked against the previous fixture field by field: the story's two stocktake
shortages (steps 'adjustment shortage FIFO' and 'adjustment shortage on a lot') are no longer
flagged - their `MovementRecorded` views, `StockAdjusted` events, recorded answers and answers
say `flagged: false` (a few laptops' VAT is under USD 100) - and the header names the new
commit; nothing else changed, not an event, index or position.

Fixture lines (JSON, one per line): a `header`; one `event` per stored event in log order
(`index` from 0, `topic`, `originator_id`, `originator_version` and `state`, the stored bytes
as UTF-8 text); one `answer` per command (its request, HTTP status, `X-Ledger-Position`,
`Idempotency-Replayed`, the answer's bytes as text, and `events_after`, the log length once
it was answered). The chain links are not in it: they cover `recorded_at`, the store's wall
clock; the test checks instead that every stored link follows docs/audit.md's definition.

Everything that touches the application's internals is in `golden_app` (the adapter): if the
refactor moves the clock or the key issuing, update it there, never the story or the fixture.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
import sys
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "golden_log.jsonl"
BASE_COMMIT = "554e462"
START = datetime(2026, 11, 20, 1, 0, tzinfo=UTC)  # 09:00 in Xi'an; November has duty rates
STEP = timedelta(minutes=1)

# Fixed identifiers (valid check digits), so the story needs no helper that might change.
A = "91610131MA0007001T"  # advanced certified: two books (XCBZ, XEPZ)
B = "91610131MA0007002X"  # regular: a book in XHTZ
C = "91610131MA00070031"  # dishonest, later regular: a book in XABZ
BUYER = "61010219900101001X"  # a resident buying through retail lists
CONSIGNEE = "610102199001010028"
NOBODY = "00000000-0000-4000-8000-000000000000"  # a declaration that does not exist

KEYS: dict[str, dict[str, str]] = {
    "admin-golden": {"role": "admin"},
    "officer-golden": {"role": "officer"},
    "gate-xcbz": {"role": "operator", "zone": "XCBZ"},
    "gate-xepz": {"role": "operator", "zone": "XEPZ"},
    "gate-xabz": {"role": "operator", "zone": "XABZ"},
    "gate-xhtz": {"role": "operator", "zone": "XHTZ"},
    "ent-a": {"role": "enterprise", "enterprise": A},
    "ent-b": {"role": "enterprise", "enterprise": B},
    "ent-c": {"role": "enterprise", "enterprise": C},
}


class FixedClock:
    """The write side's clock: the driver sets it before each command, it never moves alone."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


# -- the adapter: the only code that knows the application's insides ------------------------


# The seed the built-in rules carried until the ledger made its own (docs/decisions/0021): the
# pinned events record draws and a rules version made with it.
PILOT_SEED = "xian-pilot-2026"


def golden_rules() -> Any:
    import msgspec

    from domain.assessment import ClearanceRules
    from domain.duty_tables import DEFAULT_TABLES
    from domain.risk_rules import DEFAULT_RULES

    risk = msgspec.structs.replace(DEFAULT_RULES, seed=PILOT_SEED)
    return ClearanceRules(risk=risk, duties=DEFAULT_TABLES)


@contextmanager
def golden_app(directory: Path) -> Iterator[Driver]:
    """The API on a fresh SQLite store with the default reference data and rules, given the
    pilot's former public selection seed (PILOT_SEED: draws are reproducible, where a ledger
    makes a secret one), the fixed clock and one key per principal."""
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.services import Services
    from api.settings import Settings

    database = directory / "golden.sqlite3"
    # Buyers are sealed with keys from the key store (ledger/buyer_keys.py): a fixed master
    # key and a counter in place of the random source make the sealed bytes reproducible.
    master = directory / "privacy.key"
    master.write_text(base64.b64encode(bytes(range(32))).decode())
    settings = Settings(
        database_url=f"sqlite:///{database}", projections="off", privacy_key_file=str(master)
    )
    services = Services.build(settings, golden_rules())
    # The first start publishes the reference tables (#15, docs/reference-data.md): two
    # minutes before the story, before the keys, so that their events are the same every run.
    services.ledger.clock = lambda: START - 2 * STEP
    app = create_app(settings, services=services)
    clock = FixedClock()
    # A server error is an answer too (500), compared like the others, not an exception here.
    with TestClient(app, raise_server_exceptions=False) as http:
        services.ledger.clock = clock
        counter = iter(range(1, 1 << 30))
        services.vault.random_bytes = lambda n: hashlib.sha256(
            b"golden %d" % next(counter)
        ).digest()[:n]
        # Keys are events since #14: issued a minute before the story with fixed tokens, so
        # that their events (at the start of the log) are the same on every run.
        from ledger.keys import ApiKeys

        fixed = iter([f"clk_golden-{name}" for name in KEYS])
        keys = ApiKeys(services.app, clock=lambda: START - STEP, tokens=fixed.__next__)
        tokens = {name: keys.issue(name=name, **bound) for name, bound in KEYS.items()}
        with closing(sqlite3.connect(database)) as log:
            yield Driver(http, clock, tokens, log)


# -- driving the API --------------------------------------------------------------------------


@dataclass
class Driver:
    http: Any
    clock: FixedClock
    tokens: dict[str, str]
    log: sqlite3.Connection
    answers: list[dict[str, Any]] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)

    def post(
        self,
        command: str,
        who: str,
        path: str,
        body: dict[str, Any],
        key: str | None = None,
        expect: int = 201,
    ) -> Any:
        """One command at START + STEP x its step number; its answer joins the transcript."""
        step = len(self.answers)
        self.clock.now = START + STEP * step
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        if key is not None:
            headers["Idempotency-Key"] = key
        r = self.http.post(path, json=body, headers=headers)
        (count,) = self.log.execute("SELECT count(*) FROM stored_events").fetchone()
        self.answers.append(
            {
                "section": "answer",
                "step": step,
                "command": command,
                "who": who,
                "method": "POST",
                "path": path,
                "key": key,
                "request": body,
                "status": r.status_code,
                "position": r.headers.get("x-ledger-position"),
                "replayed": r.headers.get("idempotency-replayed"),
                "events_after": count,
                "body": r.text,
            }
        )
        if r.status_code != expect:
            self.unexpected.append(f"step {step} {command}: {r.status_code} {r.text[:300]}")
        return r.json()


# -- the story --------------------------------------------------------------------------------

LAPTOP = {"item_no": 1, "hs_code": "8471300000", "name": "Laptop computers", "unit": "C62"}
COFFEE = {"item_no": 2, "hs_code": "0901210000", "name": "Roasted coffee", "unit": "KGM"}
MEDICAMENT = {"item_no": 3, "hs_code": "3004900000", "name": "Medicaments", "unit": "C62"}
SHOTGUN = {"item_no": 4, "hs_code": "9303200000", "name": "Sporting shotguns", "unit": "C62"}
ADAPTER = {"item_no": 5, "hs_code": "8504401400", "name": "Laptop power adapters", "unit": "C62"}
KIT = {"item_no": 6, "hs_code": "8471300000", "name": "Laptop kits", "unit": "C62"}
PRICES = {1: "420.00", 2: "8.50", 3: "12.00", 4: "900.00", 5: "9.50", 6: "430.00"}
ITEMS = {1: LAPTOP, 2: COFFEE, 3: MEDICAMENT, 4: SHOTGUN, 5: ADAPTER, 6: KIT}


def line(line_no: int, item_no: int, quantity: str, origin: str | None = "DE", **kw: Any) -> Any:
    item = ITEMS[item_no]
    return {
        "line_no": line_no,
        "item_no": item_no,
        "hs_code": item["hs_code"],
        "description": item["name"],
        "quantity": quantity,
        "unit": item["unit"],
        "unit_price": PRICES[item_no],
        "origin_country": origin,
        **kw,
    }


def declaration(declarant: str, book: str, zone: str, lines: list[Any], **kw: Any) -> Any:
    return {
        "flow": "first_line_in",
        "trade_mode": "5034",
        "declarant": declarant,
        "zone": zone,
        "account_book": book,
        "transport": {"mode": "rail", "reference": "X8024-20261120", "container": "TGHU1234567"},
        "country": "DE",
        "currency": "EUR",
        "incoterm": "FOB",
        "freight": "1200.00",
        "insurance": "80.00",
        "lines": lines,
        "client_ref": "PO-GOLDEN",
        **kw,
    }


def retail(book: str, order_no: str, amount: str) -> Any:
    """A bonded e-commerce retail list (1210) of one laptop at `amount` CNY for BUYER."""
    return declaration(
        A,
        book,
        "XCBZ",
        [line(1, 1, "1", unit_price=amount)],
        flow="second_line_out",
        trade_mode="1210",
        country="CN",
        currency="CNY",
        incoterm="DAP",
        freight=None,
        insurance=None,
        transport={"mode": "express", "reference": f"SF{order_no}"},
        client_ref=order_no,
        ecommerce={
            "order": {
                "order_no": order_no,
                "buyer_id": BUYER,
                "buyer_name": "Li Hua",
                "amount": amount,
            },
            "payment": {"payment_no": f"PAY-{order_no}", "payer_id": BUYER, "amount": amount},
            "waybill": {"waybill_no": f"WB-{order_no}", "consignee_id": CONSIGNEE},
        },
    )


def gate(kind: str, ref: str, *quantities: str, **kw: Any) -> Any:
    lines = [{"line_no": n, "quantity": q} for n, q in enumerate(quantities, 1)]
    return {"kind": kind, "declaration": ref, "lines": lines, **kw}


def tell(d: Driver) -> None:
    """The story. Every request is fixed; ids come from the answers (themselves derived from
    the Idempotency-Keys and business keys, so they are the same on every run)."""

    def declare(name: str, who: str, key: str, body: Any, expect: int = 201) -> Any:
        return d.post(name, who, "/v1/declarations", body, key=key, expect=expect)

    def move(name: str, who: str, key: str, body: Any, expect: int = 201) -> Any:
        return d.post(name, who, "/v1/movements", body, key=key, expect=expect)

    def decide(name: str, who: str, ref: str, action: str, body: Any, **kw: Any) -> Any:
        kw.setdefault("expect", 200)
        return d.post(name, who, f"/v1/declarations/{ref}/{action}", body, **kw)

    def lot(answer: Any, n: int = 0) -> str:
        return answer["lots"][n]["lot_id"]  # type: ignore[no-any-return]

    # Enterprises of the three credit classes, with and without Idempotency-Keys.
    for code, name, credit, key in (
        (A, "Xi'an Silk Road Trading Co., Ltd.", "advanced_certified", "g-ent-a"),
        (B, "Chang'an Freight Co.", "regular", None),
        (C, "Qinling Medical Imports Co. 秦岭", "dishonest", "g-ent-c"),
    ):
        body = {"uscc": code, "customs_code": "6101340001", "name": name, "credit_class": credit}
        d.post(f"register enterprise {credit}", "admin-golden", "/v1/enterprises", body, key=key)

    # Books in four zones, one opened by its enterprise; items and a BOM registered later.
    books = {"A-XCBZ": "BGA-XCBZ", "A-XEPZ": "BGA-XEPZ", "B-XHTZ": "BGB-XHTZ", "C-XABZ": "BGC-XABZ"}
    for name, who, owner, zone, items, key in (
        ("A-XCBZ", "admin-golden", A, "XCBZ", [LAPTOP, COFFEE, MEDICAMENT, SHOTGUN], "g-book-1"),
        ("A-XEPZ", "ent-a", A, "XEPZ", [LAPTOP, MEDICAMENT, ADAPTER, KIT], "g-book-2"),
        ("B-XHTZ", "admin-golden", B, "XHTZ", [LAPTOP, COFFEE], None),
        ("C-XABZ", "admin-golden", C, "XABZ", [LAPTOP, COFFEE, MEDICAMENT, SHOTGUN], "g-book-4"),
    ):
        body = {"book_no": books[name], "enterprise": owner, "zone": zone, "items": items}
        d.post(f"open account book {name}", who, "/v1/account-books", body, key=key)
    a, epz = books["A-XCBZ"], books["A-XEPZ"]
    d.post(
        "register items 5, 6 in A-XCBZ",
        "admin-golden",
        f"/v1/account-books/{a}/items",
        {"items": [ADAPTER, KIT]},
        key="g-items-1",
    )
    bom = {
        "bom_ref": "KIT-2026-1",
        "output_item_no": 6,
        "inputs": [
            {"item_no": 1, "net_consumption": "1", "loss_rate": "0"},
            {"item_no": 5, "net_consumption": "0.98", "loss_rate": "0.02"},
        ],
        "tolerance": "0.05",
    }
    d.post("register BOM", "ent-a", f"/v1/account-books/{epz}/boms", bom, key="g-bom-1")

    # First-line imports into XCBZ, admitted at the gate (one in two parts: two lots).
    first = declaration(
        A,
        a,
        "XCBZ",
        [line(1, 1, "100"), line(2, 5, "100", origin="CN"), line(3, 2, "50", origin="BR")],
    )
    d1 = declare("first_line_in D1 (3 lines)", "ent-a", "g-d1", first)
    declare("replay of D1 (same key, same body)", "ent-a", "g-d1", first)
    g1 = move(
        "gate_in D1",
        "gate-xcbz",
        "g-m1",
        gate(
            "gate_in",
            d1["id"],
            "100",
            "100",
            "50",
            occurred_at="2026-11-20T08:55:00+08:00",
            gate_note="GN-XCBZ-1120",
            vehicle="SHAAN-A-12345",
        ),
    )
    d2 = declare(
        "first_line_in D2 (business time given)",
        "ent-a",
        "g-d2",
        declaration(A, a, "XCBZ", [line(1, 1, "30")], occurred_at="2026-11-20T09:00:00+08:00"),
    )
    g2a = move("gate_in D2, part 1", "gate-xcbz", "g-m2", gate("gate_in", d2["id"], "20"))
    g2b = move("gate_in D2, part 2", "gate-xcbz", "g-m3", gate("gate_in", d2["id"], "10"))
    # Domestic goods into the zone.
    d3 = declare(
        "second_line_in D3",
        "ent-a",
        "g-d3",
        declaration(
            A,
            a,
            "XCBZ",
            [line(1, 2, "20", origin="CN", unit_price="60.00")],
            flow="second_line_in",
            trade_mode="0110",
            country="CN",
            currency="CNY",
            incoterm=None,
            freight=None,
            insurance=None,
            transport={"mode": "road", "reference": "SHAAN-A-67890"},
        ),
    )
    move("gate_in D3", "gate-xcbz", "g-m4", gate("gate_in", d3["id"], "20"))

    # Exports abroad: one drawn first-in first-out, one from named lots.
    export = {
        "flow": "first_line_out",
        "trade_mode": "0110",
        "country": "NL",
        "transport": {"mode": "air", "reference": "CK-XIY-AMS-1120"},
    }
    d4 = declare(
        "first_line_out D4",
        "ent-a",
        "g-d4",
        declaration(A, a, "XCBZ", [line(1, 1, "25")], **export),
    )
    move("gate_out D4 FIFO", "gate-xcbz", "g-m5", gate("gate_out", d4["id"], "25"))
    d5 = declare(
        "first_line_out D5",
        "ent-a",
        "g-d5",
        declaration(A, a, "XCBZ", [line(1, 1, "15")], **export),
    )
    named = {
        "line_no": 1,
        "quantity": "15",
        "lots": [{"lot_id": lot(g2b), "quantity": "10"}, {"lot_id": lot(g2a), "quantity": "5"}],
    }
    exit_named = {"kind": "gate_out", "declaration": d5["id"], "lines": [named]}
    move("gate_out D5 named lots", "gate-xcbz", "g-m6", exit_named)
    move("replay of gate_out D5", "gate-xcbz", "g-m6", exit_named)
    move(
        "key reused for another body",
        "gate-xcbz",
        "g-m6",
        {**exit_named, "gate_note": "changed"},
        expect=409,
    )

    # Sold into China: duties paid in two parts, then the gate.
    d6 = declare(
        "second_line_out D6 (duties)",
        "ent-a",
        "g-d6",
        declaration(
            A,
            a,
            "XCBZ",
            [line(1, 1, "10")],
            flow="second_line_out",
            trade_mode="0110",
            country="CN",
        ),
    )
    decide(
        "payment D6 part 1",
        "ent-a",
        d6["id"],
        "payments",
        {"amount": "100.00", "currency": "CNY", "reference": "BANK-G-1"},
    )
    rest = f"{d6['duties']['outstanding']}"
    paid = decide(
        "payment D6 rest (by number)",
        "ent-a",
        d6["declaration_no"],
        "payments",
        {"amount": _minus(rest, "100.00"), "currency": "CNY", "reference": "BANK-G-2"},
        key="g-pay-2",
    )
    move("gate_out D6", "gate-xcbz", "g-m7", gate("gate_out", paid["id"], "10"))

    # E-commerce retail lists for one buyer: one paid and shipped, one withdrawn (quota back).
    r1 = declare("retail list 1210 R1", "ent-a", "g-r1", retail(a, "JDG0000001", "4000.00"))
    decide(
        "payment R1",
        "ent-a",
        r1["id"],
        "payments",
        {"amount": r1["duties"]["outstanding"], "currency": "CNY", "reference": "ALIPAY-G-1"},
    )
    move("gate_out R1", "gate-xcbz", "g-m8", gate("gate_out", r1["id"], "1"))
    r2 = declare("retail list 1210 R2", "ent-a", "g-r2", retail(a, "JDG0000002", "3000.00"))
    decide(
        "withdrawal R2 (by number)",
        "ent-a",
        r2["declaration_no"],
        "withdrawal",
        {"reason": "order cancelled by the buyer"},
        key="g-wd-1",
    )

    # A transfer to the export processing zone; two laptops do not arrive and are explained.
    t1 = declare(
        "transfer D7 XCBZ -> XEPZ",
        "ent-a",
        "g-t1",
        declaration(
            A,
            a,
            "XCBZ",
            [line(1, 1, "40", origin=None), line(2, 5, "40", origin=None)],
            flow="transfer",
            country="CN",
            destination_zone="XEPZ",
            destination_account_book=epz,
        ),
    )
    move(
        "transfer_dispatch D7", "gate-xcbz", "g-m9", gate("transfer_dispatch", t1["id"], "40", "40")
    )
    move(
        "transfer_receipt D7", "gate-xepz", "g-m10", gate("transfer_receipt", t1["id"], "38", "40")
    )
    adjustment = {"kind": "adjustment", "account_book": a, "item_no": 1}
    move(
        "adjustment explains the transfer shortfall",
        "ent-a",
        "g-m11",
        {**adjustment, "quantity_delta": "-2", "reason": "lost in transit", "explains": t1["id"]},
    )

    # Processing in XEPZ, with the BOM and without one.
    processing = {"kind": "processing", "zone": "XEPZ", "account_book": epz}
    move(
        "processing with BOM",
        "ent-a",
        "g-m12",
        {
            **processing,
            "inputs": [{"item_no": 1, "quantity": "20"}, {"item_no": 5, "quantity": "20"}],
            "outputs": [{"item_no": 6, "quantity": "20"}],
            "bom_ref": "KIT-2026-1",
        },
    )
    move(
        "simple processing without BOM",
        "ent-a",
        "g-m13",
        {
            **processing,
            "operation": "simple_processing",
            "inputs": [{"item_no": 5, "quantity": "3"}],
            "outputs": [{"item_no": 3, "quantity": "3"}],
        },
    )

    # Stocktake in XCBZ: a surplus, a shortage drawn FIFO, a shortage on a named lot.
    move(
        "adjustment surplus",
        "ent-a",
        "g-m14",
        {**adjustment, "item_no": 2, "quantity_delta": "2.5", "reason": "stocktake surplus"},
    )
    move(
        "adjustment shortage FIFO",
        "ent-a",
        "g-m15",
        {**adjustment, "quantity_delta": "-1", "reason": "damaged, stocktake 2026-11-20"},
    )
    move(
        "adjustment shortage on a lot",
        "ent-a",
        "g-m16",
        {
            **adjustment,
            "item_no": 2,
            "quantity_delta": "-0.75",
            "reason": "spilt",
            "lot_id": lot(g1, 2),
        },
    )

    # The dishonest enterprise: inspections (conform, then nonconform and rejection), and a
    # release after document review. Its channels come from PILOT_SEED's draws.
    c = books["C-XABZ"]
    c1 = declare(
        "first_line_in C1 medicaments",
        "ent-c",
        "g-c1",
        declaration(
            C, c, "XABZ", [line(1, 3, "200")], transport={"mode": "air", "reference": "CK-1"}
        ),
    )
    decide(
        "inspection C1 conform (drawn for inspection)",
        "officer-golden",
        c1["id"],
        "inspection-results",
        {"result": "conform", "findings": ""},
    )
    move("gate_in C1", "gate-xabz", "g-m17", gate("gate_in", c1["id"], "200"))
    c2 = declare(
        "first_line_in C2 shotguns",
        "ent-c",
        "g-c2",
        declaration(
            C, c, "XABZ", [line(1, 4, "5")], transport={"mode": "air", "reference": "CK-2"}
        ),
    )
    decide(
        "inspection C2 nonconform",
        "officer-golden",
        c2["id"],
        "inspection-results",
        {"result": "nonconform", "findings": "serial numbers do not match the licence"},
        key="g-insp-1",
    )
    decide("rejection C2", "officer-golden", c2["id"], "rejection", {"reason": "no licence"})
    c3 = declare(
        "first_line_in C3 laptops",
        "ent-c",
        "g-c3",
        declaration(
            C, c, "XABZ", [line(1, 1, "12")], transport={"mode": "air", "reference": "CK-3"}
        ),
    )
    decide("release C3 after document review", "officer-golden", c3["id"], "release", {})
    move("gate_in C3", "gate-xabz", "g-m18", gate("gate_in", c3["id"], "12"))
    d.post(
        "credit class change C -> regular",
        "officer-golden",
        f"/v1/enterprises/{C}/credit-class",
        {"credit_class": "regular", "reason": "annual review 2026"},
        key="g-cc-1",
        expect=200,
    )
    c4 = declare(
        "first_line_in C4 coffee (now regular)",
        "ent-c",
        "g-c4",
        declaration(
            C, c, "XABZ", [line(1, 2, "30")], transport={"mode": "air", "reference": "CK-4"}
        ),
    )
    move("gate_in C4", "gate-xabz", "g-m19", gate("gate_in", c4["id"], "30"))

    # The regular enterprise in XHTZ, and a withdrawal before any decision.
    b = books["B-XHTZ"]
    b1 = declare("first_line_in B1", "ent-b", "g-b1", declaration(B, b, "XHTZ", [line(1, 1, "8")]))
    move("gate_in B1", "gate-xhtz", "g-m20", gate("gate_in", b1["id"], "8"))
    b2 = declare(
        "second_line_out B2 (duties)",
        "ent-b",
        "g-b2",
        declaration(
            B, b, "XHTZ", [line(1, 1, "3")], flow="second_line_out", trade_mode="0110", country="CN"
        ),
    )
    decide("withdrawal B2", "ent-b", b2["id"], "withdrawal", {"reason": "buyer changed mind"})

    # Refusals: each records nothing.
    declare(
        "refused: export beyond the stock",
        "ent-a",
        "g-x1",
        declaration(A, a, "XCBZ", [line(1, 1, "10000")], **export),
        expect=409,
    )
    move(
        "refused: processing beyond the stock",
        "ent-a",
        "g-x2",
        {
            **processing,
            "inputs": [{"item_no": 1, "quantity": "500"}, {"item_no": 5, "quantity": "500"}],
            "outputs": [{"item_no": 6, "quantity": "500"}],
            "bom_ref": "KIT-2026-1",
        },
        expect=409,
    )
    move(
        "refused: an operator adjusts",
        "gate-xcbz",
        "g-x3",
        {**adjustment, "quantity_delta": "-1", "reason": "not the gate's"},
        expect=403,
    )
    decide("refused: an enterprise releases", "ent-c", c1["id"], "release", {}, expect=403)
    decide("refused: unknown declaration", "officer-golden", NOBODY, "release", {}, expect=404)
    move(
        "refused: gate_in of an unknown declaration",
        "gate-xcbz",
        "g-x4",
        gate("gate_in", NOBODY, "1"),
        expect=422,
    )
    decide(
        "refused: release of a released one", "officer-golden", d1["id"], "release", {}, expect=409
    )


def _minus(a: str, b: str) -> str:
    from decimal import Decimal

    return str(Decimal(a) - Decimal(b))


# -- reading the log --------------------------------------------------------------------------


@dataclass(frozen=True)
class Stored:
    originator_id: str
    originator_version: int
    topic: str
    state: bytes
    recorded_at: str
    hash: bytes

    def fixture_line(self, index: int) -> dict[str, Any]:
        return {
            "section": "event",
            "index": index,
            "topic": self.topic,
            "originator_id": self.originator_id,
            "originator_version": self.originator_version,
            "state": self.state.decode("utf-8"),
        }


def stored_events(database: Path) -> list[Stored]:
    """Every stored row in log order, read with plain SQL (not through the code under test)."""
    with closing(sqlite3.connect(database)) as db:
        rows = db.execute(
            "SELECT originator_id, originator_version, topic, state, recorded_at, hash"
            " FROM stored_events ORDER BY sequence"
        ).fetchall()
    return [Stored(str(i), int(v), t, bytes(s), str(r), bytes(h)) for i, v, t, s, r, h in rows]


def first_broken_link(events: list[Stored]) -> int | None:
    """docs/audit.md's chain: link(n) = SHA-256(link(n-1) || F(stream_id) || F(version) ||
    F(topic) || F(recorded_at) || F(state)), F(x) = 8-byte big-endian length and bytes."""
    previous = bytes(32)
    for n, e in enumerate(events):
        h = hashlib.sha256(previous)
        stream = str(uuid.UUID(e.originator_id)).encode()
        for part in (stream, str(e.originator_version).encode(), e.topic.encode()):
            h.update(len(part).to_bytes(8, "big") + part)
        for part in (e.recorded_at.encode(), e.state):
            h.update(len(part).to_bytes(8, "big") + part)
        if h.digest() != e.hash:
            return n
        previous = e.hash
    return None


@dataclass
class Run:
    events: list[Stored]
    answers: list[dict[str, Any]]
    unexpected: list[str]
    failure: BaseException | None

    def event_lines(self) -> list[dict[str, Any]]:
        return [e.fixture_line(n) for n, e in enumerate(self.events)]


def run_story(directory: Path) -> Run:
    failure = None
    with golden_app(directory) as driver:
        try:
            tell(driver)
        except Exception as e:  # shown with the first difference, which usually explains it
            failure = e
    return Run(
        stored_events(directory / "golden.sqlite3"), driver.answers, driver.unexpected, failure
    )


# -- comparing --------------------------------------------------------------------------------


def load_fixture() -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    lines = [json.loads(text) for text in FIXTURE.read_text(encoding="utf-8").splitlines()]
    header = lines[0]
    events = [x for x in lines if x["section"] == "event"]
    answers = [x for x in lines if x["section"] == "answer"]
    return header, events, answers


def json_differences(want: Any, got: Any, path: str = "$") -> list[str]:
    """Where two JSON values differ, as paths (key order counts: the bytes are compared)."""
    if type(want) is not type(got):
        return [f"{path}: fixture {want!r}, now {got!r}"]
    if isinstance(want, dict):
        out = []
        for k in want:
            if k not in got:
                out.append(f"{path}.{k}: only in the fixture ({want[k]!r})")
            else:
                out += json_differences(want[k], got[k], f"{path}.{k}")
        out += [f"{path}.{k}: new ({got[k]!r})" for k in got if k not in want]
        if not out and list(want) != list(got):
            out.append(f"{path}: the same keys in another order: {list(got)}")
        return out
    if isinstance(want, list):
        out = [f"{path}: {len(want)} entries in the fixture, {len(got)} now"]
        out = out if len(want) != len(got) else []
        for n, (w, g) in enumerate(zip(want, got, strict=False)):
            out += json_differences(w, g, f"{path}[{n}]")
        return out
    return [] if want == got else [f"{path}: fixture {want!r}, now {got!r}"]


def text_differences(name: str, want: str, got: str) -> list[str]:
    """A JSON text field: the differing paths, or where the bytes part if the JSON is equal."""
    try:
        paths = json_differences(json.loads(want), json.loads(got), f"{name}$")
    except ValueError:
        paths = []
    if paths:
        return paths[:20] + ([f"... and {len(paths) - 20} more"] if len(paths) > 20 else [])
    at = next((n for n, (w, g) in enumerate(zip(want, got, strict=False)) if w != g), None)
    at = min(len(want), len(got)) if at is None else at
    return [
        f"{name}: the same JSON, other bytes from offset {at}:",
        f"    fixture ...{want[max(0, at - 40) : at + 80]!r}",
        f"    now     ...{got[max(0, at - 40) : at + 80]!r}",
    ]


def describe(want: dict[str, Any], got: dict[str, Any]) -> list[str]:
    out = []
    for k in list(want) + [k for k in got if k not in want]:
        w, g = want.get(k), got.get(k)
        if w == g:
            continue
        if k in ("state", "body") and isinstance(w, str) and isinstance(g, str):
            out += text_differences(k, w, g)
        else:
            out.append(f"{k}: fixture {w!r}, now {g!r}")
    return out


def first_difference(
    kind: str, want: list[dict[str, Any]], got: list[dict[str, Any]], context: Any
) -> str | None:
    for n, (w, g) in enumerate(zip(want, got, strict=False)):
        if w != g:
            return "\n".join(
                [f"{kind} {n} differs ({context(n)}):", *("  " + x for x in describe(w, g))]
            )
    if len(want) != len(got):
        n = min(len(want), len(got))
        extra = (got if len(got) > n else want)[n]
        where = "now, not in the fixture" if len(got) > n else "in the fixture, missing now"
        return (
            f"{len(want)} {kind}s in the fixture, {len(got)} now; {kind} {n} ({context(n)}) "
            f"is {where}:\n  {json.dumps(extra, ensure_ascii=False)[:1500]}"
        )
    return None


def recorded_by(answers: list[dict[str, Any]]) -> Any:
    """Which command of the fixture recorded event n."""

    def context(n: int) -> str:
        for a in answers:
            if a["events_after"] > n:
                return f"recorded by step {a['step']} {a['command']!r}"
        return "after the story's last command"

    return context


def test_the_write_side_records_the_golden_log(tmp_path: Path) -> None:
    header, want_events, want_answers = load_fixture()
    assert header["events"] == len(want_events) and header["answers"] == len(want_answers)
    got = run_story(tmp_path)

    problems = []
    answers = first_difference(
        "answer", want_answers, got.answers, lambda n: f"step {n}: {_command(want_answers, n)}"
    )
    if answers:
        problems.append(answers)
    events = first_difference("event", want_events, got.event_lines(), recorded_by(want_answers))
    if events:
        problems.append(events)
    if got.failure is not None:
        problems.append(
            f"the story stopped after {len(got.answers)} commands: {got.failure!r}"
            " (probably an answer it needed differs, see above)"
        )
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)
    broken = first_broken_link(got.events)
    assert broken is None, f"the stored chain link of event {broken} is not docs/audit.md's"


def _command(answers: list[dict[str, Any]], n: int) -> str:
    return repr(answers[n]["command"]) if n < len(answers) else "not in the fixture"


# -- writing the fixture (once, from the base commit) -----------------------------------------


def story_problems(run: Run) -> list[str]:
    """What must hold of the story itself before its log may become the fixture."""
    out = list(run.unexpected)
    if run.failure is not None:
        out.append(f"the story failed: {run.failure!r}")
    before = 0
    for a in run.answers:
        recorded = a["events_after"] - before
        if (a["status"] >= 400 or a["replayed"]) and recorded:
            out.append(f"step {a['step']} {a['command']!r} recorded {recorded} events")
        if a["status"] < 400 and not a["replayed"] and not recorded:
            out.append(f"step {a['step']} {a['command']!r} recorded nothing")
        before = a["events_after"]
    if first_broken_link(run.events) is not None:
        out.append("the chain does not verify")
    return out


def write_fixture(target: Path) -> None:
    import subprocess
    import tempfile

    if target.exists():
        sys.exit(f"{target} exists: the fixture is written once, never regenerated")
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    if not commit.startswith(BASE_COMMIT):
        sys.exit(f"the fixture comes from {BASE_COMMIT}, this checkout is {commit}")
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "api", "domain", "ledger", "projections"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if dirty:
        sys.exit(f"the checkout has local changes:\n{dirty}")
    import ledger

    print(f"ledger imported from {ledger.__file__}")
    runs = []
    for _ in range(2):  # twice, to show the story is deterministic
        with tempfile.TemporaryDirectory() as directory:
            runs.append(run_story(Path(directory)))
    problems = story_problems(runs[0])
    if problems:
        sys.exit("\n".join(problems))
    if runs[0].event_lines() != runs[1].event_lines() or runs[0].answers != runs[1].answers:
        sys.exit("two runs of the story differ: it is not deterministic")
    run = runs[0]
    header = {
        "section": "header",
        "format": 1,
        "generated_from": commit,
        "start": START.isoformat(),
        "step_seconds": int(STEP.total_seconds()),
        "events": len(run.events),
        "answers": len(run.answers),
    }
    lines = [header, *run.event_lines(), *run.answers]
    target.write_text(
        "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines), encoding="utf-8"
    )
    topics: dict[str, int] = {}
    for e in run.events:
        topics[e.topic] = topics.get(e.topic, 0) + 1
    print(f"{len(run.events)} events, {len(run.answers)} answers -> {target}")
    for topic, count in sorted(topics.items()):
        print(f"  {count:4d} {topic}")


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "--write":
        sys.exit("usage: python -m tests.integration.test_golden_log --write PATH")
    write_fixture(Path(sys.argv[2]))
