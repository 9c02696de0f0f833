"""Random declarations, releases and movements across the five Xi'an zones against a model.

Two enterprises keep one account book in each zone (XCBZ, XHTZ, XABZ, XXLC, XEPZ). Rules
admit goods (first- and second-line imports), declare and release exits and transfers (the
release reserves stock or is refused 409 `insufficient_stock`; a transfer into the other
enterprise's book waits in `awaiting_acceptance`, reserving nothing, until that enterprise
accepts it), let goods out first-in
first-out or from named lots, dispatch and receive transfers (shortfalls stay in transit until
a stocktake `explains` them), process inputs into outputs where the zone permits it (the
logistics centre XXLC only repacks: 409 `zone_not_permitted`), adjust stock after a count and
destroy goods under an officer's witness (only the free stock: 409 `insufficient_stock`).
Checklists filed on their own pre-decrease their book (refused as a release would be) and are
approved, rejected or withdrawn: collected ones leave on gate passes, in-zone transfers pass
between the two enterprises' books of XCBZ (the receiver records the receipt), processing ones
are consumed by processing that names them (beyond what they have left: 409
`exceeds_checklist_quantity`).

A small in-memory model says what every command must do: accepted (201/200, with the lots it
creates or draws, in FIFO order) or refused (409 with its `rule`, and the log unchanged). The
model keeps the invariants of DOMAIN.md: 1 no negative stock per item and lot counting
reservations, 3 nothing moves beyond its declaration line, 4 processing only where permitted,
5 never more received than dispatched, the rest in transit until explained, 6 conservation per
item and system-wide, 10 lots only in their own book's zone, parents created before children.
After every step the ledger's answers for what the step touched (GET /v1/account-books/{book}
balances, GET /v1/lots/{id}) equal the model's. At the end of every example: each touched
book's entries add up to its flows, every declaration and the inventory view of every item equal the
model (and system-wide on hand + in transit = in - out); 7 the log only grew and its chain
verifies; 8 a replay of the whole log into fresh views rebuilds every `view_*` table row for
row, and a fold of every stream's decoded events rebuilds the write side's states, whose lots,
FIFO order and declarations equal the model's.

Each example runs on a fresh store (a new SQLite file, or a new PostgreSQL schema), so the
replay covers exactly the example's log. `LEDGER_SOAK_EXAMPLES` overrides the number of
examples (`make soak`).
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from api.services import decode_entry, read_models_runner
from domain.events import project
from domain.movements import ItemStock
from domain.movements import Lot as LotState
from ledger.audit import verify
from ledger.database import parse_database_url
from projections.store import SQLiteViews
from tests.samples import book_body, enterprise_body, line
from tests.support import Ledger, declaration_body, make_uscc, new_key, pg_conninfo, running_ledger

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
SOAK = os.environ.get("LEDGER_SOAK_EXAMPLES")
# Examples and steps per example, by store (each step may chain a declaration, its release and
# a movement; the opening import counts as one). Every example starts a fresh ledger and ends
# with full replays. SQLite: 200 examples of up to 8 steps in CI (R1 asks at least 200).
# PostgreSQL, where every write waits for the server: fewer but longer examples, up to 20 steps
# (14.5 on average), so that long sequences - transfers, receipts, stocktakes on lots made many
# steps before - run there too. It ran 200 examples of up to 4 steps (2.2 on average after the
# opening) in 139 s on a busy 2-core machine; 60 examples of 20 steps take 70 s there.
EXAMPLES = {"sqlite": 200, "postgresql": 60} if IN_CI else {"sqlite": 30, "postgresql": 10}
if SOAK:
    EXAMPLES = dict.fromkeys(EXAMPLES, int(SOAK))
STEPS = {"sqlite": 8, "postgresql": 20}

D = Decimal
ZERO = Decimal(0)
ZONES = ("XCBZ", "XHTZ", "XABZ", "XXLC", "XEPZ")
# The zone where both enterprises keep a book (in-zone transfers between them).
NEIGHBOURS = "XCBZ"
# Which of the two enterprises keeps the book in each zone.
OWNER = {"XCBZ": 0, "XHTZ": 1, "XABZ": 0, "XXLC": 1, "XEPZ": 0}
# The permits of domain/reference.py that matter here: every zone may repack and sort, the
# logistics centre may not manufacture.
PERMITS = {zone: {"processing", "simple_processing"} for zone in ZONES}
PERMITS["XXLC"] = {"simple_processing"}
# book_body's items: laptops (green), coffee in kilograms (green), medicaments (yellow: document
# review), shotguns (red: inspection). Pieces move in whole numbers, kilograms in halves.
ITEMS = (1, 2, 3, 4)
UNIT = {1: "C62", 2: "KGM", 3: "C62", 4: "C62"}
QUANTUM = {1: D(1), 2: D("0.5"), 3: D(1), 4: D(1)}
STATUSES = ("bonded", "domestic")
# A processing output is the product, a by-product or scrap: a lot of its own either way.
ROLES = ("product", "by_product", "scrap")
INBOUND = ("first_line_in", "second_line_in")
GATE_EXITS = ("first_line_out", "second_line_out")
OUTBOUND = (*GATE_EXITS, "transfer")
TRADE_MODE = {"first_line_out": "0110", "second_line_out": "0110"}
COUNTRY = {"first_line_in": "DE", "second_line_in": "CN", "first_line_out": "KZ"}

# Ledger bugs this machine found, all fixed; each is kept as a regression test at the end of this
# file, and each had a switch that kept the random sequences clear of it (all off now):
# - a transfer received after its shortfall was explained as lost in transit;
# - one declaration with lines of one item in both customs statuses (one reservation took the
#   status of the last line; a receipt of one line settled the other line's lots);
# - the declarations view ignored `GoodsReceived`.
AVOID_RECEIPT_AFTER_LOSS = False
AVOID_MIXED_STATUS_PER_ITEM = False
DECLARATION_VIEW_MISSES_RECEIPTS = False


# -- the model -------------------------------------------------------------------------------


@dataclass
class Book:
    book_no: str
    zone: str
    owner: str  # the enterprise's token name
    uscc: str


@dataclass
class Lot:
    lot_id: str
    zone: str
    book: str
    item: int
    status: str
    quantity_in: Decimal
    on_hand: Decimal
    parents: list[str]
    serial: int  # creation order: parents come before their children
    children: list[str] = field(default_factory=list)


@dataclass
class Stock:
    """One book item: open lots in FIFO order, reservations, goods in transit, and the flows
    that conservation adds up."""

    lots: dict[str, Decimal] = field(default_factory=dict)
    reserved: dict[tuple[str, str], Decimal] = field(default_factory=dict)  # (decl, status)
    transit: dict[str, dict[str, Decimal]] = field(default_factory=dict)  # decl -> lot -> qty
    flows: Counter[str] = field(default_factory=Counter)


@dataclass
class Line:
    line_no: int
    item: int
    quantity: Decimal
    status: str  # of the goods it moves
    dest_item: int | None = None
    moved: Decimal = ZERO
    received: Decimal = ZERO


@dataclass
class Decl:
    id: str
    number: str
    flow: str
    book: Book
    dest: Book | None
    lines: dict[int, Line]
    status: str
    outstanding: Decimal
    lost: Counter[int] = field(default_factory=Counter)  # item -> explained as lost in transit
    # A transfer into the other enterprise's book: the status its channel gives once that
    # enterprise accepts it (None: no acceptance needed).
    accepted_status: str | None = None
    # The checklist (核注清单) it filed when released (domain/checklists.py).
    checklist: str | None = None
    # The enter_first checklist whose goods it declares (domain/enter_first.py).
    named: str | None = None
    # The collected checklists whose goods it declares (domain/collected.py).
    collected: list[str] = field(default_factory=list)


@dataclass
class EnterFirst:
    """An enter_first checklist: its book, lines (item, quantity), what passed, declared."""

    number: str
    book: Book
    lines: dict[int, tuple[int, Decimal]]
    passed: dict[int, Decimal]
    declared: bool = False


def fifo(lots: dict[str, Decimal], status_of: dict[str, Lot], status: str, quantity: Decimal):
    """Oldest first among the lots of one status; None when they do not hold enough."""
    left, taken = quantity, {}
    for lot, held in lots.items():
        if left == 0:
            break
        if status_of[lot].status != status:
            continue
        take = min(left, held)
        taken[lot] = take
        left -= take
    return taken if left == 0 else None


def take(lots: dict[str, Decimal], by_lot: dict[str, Decimal]) -> None:
    for lot, q in by_lot.items():
        lots[lot] -= q
        assert lots[lot] >= 0
        if lots[lot] == 0:
            del lots[lot]


def plain(text: str) -> Decimal:
    """A decimal as the API writes it: plain notation, never an exponent."""
    assert isinstance(text, str) and "e" not in text.lower(), text
    return Decimal(text)


# -- fresh stores ------------------------------------------------------------------------------

_examples = itertools.count(1)


@contextmanager
def fresh_store(base_url: str) -> Iterator[str]:
    """A new empty store beside the test's own: a SQLite file, or a PostgreSQL schema."""
    db = parse_database_url(base_url)
    n = next(_examples)
    if db.kind == "sqlite":
        # In memory-backed /dev/shm when there is one: the examples test the ledger's logic,
        # not the disk's fsync, which would double the time of every write.
        shm = Path("/dev/shm")
        parent = shm if shm.is_dir() and os.access(shm, os.W_OK) else Path(db.path).parent
        folder = Path(tempfile.mkdtemp(prefix=f"movements-{n}-", dir=parent))
        try:
            yield f"sqlite:///{folder}/ledger.sqlite3"
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return
    import psycopg

    conninfo = pg_conninfo(db)
    schema = f"{db.schema}_{n}"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield base_url.replace(f"schema={db.schema}", f"schema={schema}")
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


class Ledgers:
    """A fresh ledger for each example. On PostgreSQL starting one mostly waits for the server,
    so the next example's ledger starts while this one's end checks run (in one worker thread,
    which enters and closes every ledger). Nothing runs beside Hypothesis's draws: its pools
    call `random`, which Hypothesis would take for a strategy's."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.worker = ThreadPoolExecutor(1, thread_name_prefix="ledgers")
        self.following: Future[tuple[ExitStack, Ledger]] | None = None

    def _start(self) -> tuple[ExitStack, Ledger]:
        stack = ExitStack()
        try:
            url = stack.enter_context(fresh_store(self.base_url))
            ledger = stack.enter_context(running_ledger(url))
        except BaseException:
            stack.close()
            raise
        return stack, ledger

    def take(self) -> tuple[ExitStack, Ledger]:
        following, self.following = self.following, None
        return (following or self.worker.submit(self._start)).result()

    def prepare_next(self) -> None:
        if self.following is None:
            self.following = self.worker.submit(self._start)

    def release(self, resources: ExitStack) -> None:
        """Close an example's ledger and drop its store, once the next one has started."""
        self.worker.submit(resources.close).result()

    def close(self) -> None:
        """Close the ledger started for an example that never came."""
        following, self.following = self.following, None
        try:
            if following is not None and following.exception() is None:
                self.release(following.result()[0])
        finally:
            self.worker.shutdown(wait=True)


# Reads are checked concurrently: on PostgreSQL most of a read is waiting for the server.
_READERS = ThreadPoolExecutor(8, thread_name_prefix="reads")


def view_tables(views: Any) -> list[str]:
    """Every read-model table of a view store (`view_tracking` is the runner's own)."""
    with views.read() as cur:
        if views.kind == "sqlite":
            cur.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        else:
            cur.execute(
                "SELECT tablename AS name FROM pg_tables WHERE schemaname = current_schema()"
            )
        names = [row["name"] for row in cur.fetchall()]
    return sorted(n for n in names if n.startswith("view_") and n != "view_tracking")


def table_rows(views: Any, table: str) -> list[tuple[tuple[str, str | None], ...]]:
    """A table's rows, sorted, each as (column, value as text) pairs: the same on both stores."""
    with views.read() as cur:
        cur.execute(f"SELECT * FROM {table}")
        rows = [dict(row) for row in cur.fetchall()]
    return sorted(
        tuple(sorted((k, None if v is None else str(v)) for k, v in row.items())) for row in rows
    )


# -- the machine -------------------------------------------------------------------------------


class Movements(RuleBasedStateMachine):
    ledgers: Ledgers  # set by the test, for its store

    # -- setup and teardown ----------------------------------------------------------------

    @initialize(data=st.data())
    def world(self, data: Any) -> None:
        self.resources, self.ledger = self.ledgers.take()
        self.busy = True  # a step has called the ledger and its checks have not passed yet
        enterprises = [(code, f"ent-{code}") for code in (make_uscc(), make_uscc())]
        self.posts([("/v1/enterprises", enterprise_body(code)) for code, _ in enterprises])
        for code, name in enterprises:
            self.ledger.issue(name, "enterprise", enterprise=code)
        self.books: dict[str, Book] = {}
        for zone in ZONES:
            code, name = enterprises[OWNER[zone]]
            self.books[zone] = Book(f"B{code[-8:]}{zone}", zone=zone, owner=name, uscc=code)
            self.ledger.issue(f"gate-{zone}", "operator", zone=zone)
        # The other enterprise's book in XCBZ: in-zone transfers go between it and XCBZ's.
        code, name = enterprises[1 - OWNER[NEIGHBOURS]]
        self.neighbour = Book(f"B{code[-8:]}{NEIGHBOURS}N", NEIGHBOURS, owner=name, uscc=code)
        self.every_book = [*self.books.values(), self.neighbour]
        self.posts(
            [("/v1/account-books", book_body(b.book_no, b.uscc, b.zone)) for b in self.every_book]
        )
        self.stocks: dict[tuple[str, int], Stock] = {
            (b.book_no, item): Stock() for b in self.every_book for item in ITEMS
        }
        self.lots: dict[str, Lot] = {}
        self.decls: dict[str, Decl] = {}
        self.checklists: dict[str, str] = {}
        self.entered: dict[str, EnterFirst] = {}
        self.permitted: set[str] = set()  # books that may collect then declare
        self.dirty_books: set[str] = set()
        self.dirty_lots: set[str] = set()
        self.heads: list[tuple[int, str | None]] = []
        # An opening stock, so that the few steps of an example find goods to move.
        self.new_import(data, most_lines=3)
        if self.rarely(data, "a second opening import"):
            self.new_import(data, most_lines=3)

    def teardown(self) -> None:
        resources = getattr(self, "resources", None)
        if resources is None:
            return
        self.ledgers.prepare_next()
        try:
            # Only a run whose every step and check passed is worth the final checks: a step
            # cut short leaves the model behind the ledger (and its error is on its way out).
            if not self.busy:
                self.everything_agrees()
                self.write_off_figures_add_up()
                self.replay_rebuilds_the_read_models()
                self.write_side_agrees(self.replay_rebuilds_the_write_side())
                self.the_log_only_grew_and_verifies()
        finally:
            self.ledgers.release(resources)

    # -- helpers -----------------------------------------------------------------------------

    def stock(self, book: Book | str, item: int) -> Stock:
        return self.stocks[(book if isinstance(book, str) else book.book_no, item)]

    def on_hand_of(self, s: Stock, status: str) -> Decimal:
        return sum((q for lot, q in s.lots.items() if self.lots[lot].status == status), ZERO)

    def available_of(self, s: Stock, status: str) -> Decimal:
        held = sum((q for (_, st_), q in s.reserved.items() if st_ == status), ZERO)
        return self.on_hand_of(s, status) - held

    @staticmethod
    def rarely(data: Any, label: str) -> bool:
        """One time in four (Hypothesis draws bounds of integer ranges far more often)."""
        return bool(data.draw(st.booleans(), label=label) and data.draw(st.booleans()))

    def quantity(
        self, data: Any, item: int, most: Decimal, label: str, over: bool = False
    ) -> Decimal:
        """A positive multiple of the item's quantum up to `most` (at least one quantum); with
        `over`, one quantum more than `most`: what the ledger must refuse."""
        if over:
            return max(most, ZERO) + QUANTUM[item]
        steps = max(int(most / QUANTUM[item]), 1)
        return data.draw(st.integers(1, steps), label=label) * QUANTUM[item]

    def pick(self, data: Any, decls: list[Decl], label: str) -> Decl | None:
        """Mostly one of `decls` with something left to move; now and then any of them (to
        try moving too much); otherwise None: the caller declares a new one."""
        open_ = [d for d in decls if any(x.moved < x.quantity for x in d.lines.values())]
        if open_ and not self.rarely(data, f"{label}: not an open one"):
            return data.draw(st.sampled_from(open_), label=label)
        if decls and self.rarely(data, f"{label}: any"):
            return data.draw(st.sampled_from(decls), label=label)
        return None

    def lines_of(
        self, data: Any, d: Decl, numbers: list[int], left: Callable[[Line], Decimal]
    ) -> list[int]:
        """One or two of a declaration's lines, mostly ones with something `left` to move."""
        open_ = [n for n in numbers if left(d.lines[n]) > 0]
        if open_ and not self.rarely(data, "any line"):
            numbers = open_
        return data.draw(
            st.lists(st.sampled_from(numbers), min_size=1, max_size=2, unique=True), label="lines"
        )

    def ref(self, data: Any, d: Decl) -> str:
        """Either of a declaration's references: its id or its 18-digit number."""
        return data.draw(st.sampled_from([d.id, d.number]), label="declaration ref")

    def gets(self, paths: list[str]) -> list[Any]:
        """GET each path as an officer, concurrently; their bodies, in order."""

        def get(path: str) -> Any:
            r = self.ledger.get(path, "officer")
            assert r.status_code == 200, (path, r.text)
            return r.json()

        return list(_READERS.map(get, paths))

    def posts(self, requests: list[tuple[str, Any]]) -> None:
        """POST each body as the admin (setup)."""
        for path, body in requests:
            r = self.ledger.post(path, "admin", body)
            assert r.status_code == 201, r.text

    def call(
        self,
        who: str,
        path: str,
        body: dict[str, Any],
        *,
        refused: str | None,
        status: int = 201,
        key: bool = True,
        current_status: str | None = None,
    ) -> Any:
        """POST and check the outcome the model predicts: `status`, or 409 with the rule
        `refused` and nothing written."""
        self.busy = True
        what = body.get("kind") or body.get("flow") or path.rsplit("/", 1)[-1]
        what += " explains" if "explains" in body else ""
        event(f"{what}: {refused or 'accepted'}")
        before = self.ledger.log_state() if refused else None
        r = self.ledger.post(path, who, body, key=new_key() if key else None)
        if refused is None:
            assert r.status_code == status, (path, body, r.text)
            return r.json()
        assert r.status_code == 409, (refused, path, body, r.text)
        problem = r.json()
        assert problem["rule"] == refused, (refused, problem)
        if current_status is not None:
            assert problem.get("current_status") == current_status, problem
        assert self.ledger.log_state() == before, "a refused command wrote to the log"
        return None

    def new_lot(
        self,
        lot_id: str,
        book: Book,
        item: int,
        status: str,
        quantity: Decimal,
        parents: list[str],
    ) -> None:
        assert lot_id not in self.lots, f"lot {lot_id} created twice"
        self.lots[lot_id] = Lot(
            lot_id=lot_id,
            zone=book.zone,
            book=book.book_no,
            item=item,
            status=status,
            quantity_in=quantity,
            on_hand=quantity,
            parents=parents,
            serial=len(self.lots),
        )
        self.stock(book, item).lots[lot_id] = quantity
        self.dirty_lots.add(lot_id)
        for parent in parents:
            self.lots[parent].children.append(lot_id)
            self.dirty_lots.add(parent)

    def draw_lots(self, book: Book, item: int, by_lot: dict[str, Decimal]) -> None:
        take(self.stock(book, item).lots, by_lot)
        for lot, q in by_lot.items():
            self.lots[lot].on_hand -= q
            self.dirty_lots.add(lot)

    @staticmethod
    def answered_lots(answer: dict[str, Any]) -> list[tuple[str, int, Decimal]]:
        return [(x["lot_id"], x["item_no"], plain(x["quantity"])) for x in answer["lots"]]

    def expect_lots(
        self, answer: dict[str, Any], expected: list[tuple[str | None, int, Decimal]]
    ) -> list[str]:
        """The lots a movement answered equal the model's (None: a new lot, any new id);
        returns the new lots' ids in order."""
        got = self.answered_lots(answer)
        assert [(i, q) for _, i, q in got] == [(i, q) for _, i, q in expected], (got, expected)
        new = []
        for (lot, _, _), (want, _, _) in zip(got, expected, strict=True):
            if want is None:
                assert lot not in self.lots, f"a new lot reuses the id {lot}"
                new.append(lot)
            else:
                assert lot == want, (got, expected)
        return new

    # -- declarations ------------------------------------------------------------------------

    def covers(self, d: Decl) -> bool:
        """Whether the book's available stock covers an outbound declaration."""
        needs: Counter[tuple[int, str]] = Counter()
        for x in d.lines.values():
            needs[(x.item, x.status)] += x.quantity
        return all(
            q <= self.available_of(self.stock(d.book, item), status)
            for (item, status), q in needs.items()
        )

    def refusal(self, d: Decl) -> str | None:
        """Why the release of an outbound declaration is refused, as the ledger checks it
        (per item and status in the order of the lines): goods held for their declaration
        (entered first) would cover it - `declaration_pending`; nothing would -
        `insufficient_stock`. A consolidated declaration reserves nothing: never."""
        if d.collected:
            return None
        needs: Counter[tuple[int, str]] = Counter()
        for x in d.lines.values():
            needs[(x.item, x.status)] += x.quantity
        for (item, status), q in needs.items():
            s = self.stock(d.book, item)
            available = self.available_of(s, status)
            held = sum(
                (v for (k, st_), v in s.reserved.items() if st_ == status and k in self.entered),
                ZERO,
            )
            if available < q <= available + held:
                return "declaration_pending"
            if q > available:
                return "insufficient_stock"
        return None

    def declared_entered(self, d: Decl) -> None:
        """A released declaration naming an enter_first checklist: the holds go, its lines
        count as moved; naming collected checklists: what they still hold is given back."""
        for number in d.collected:
            for item in ITEMS:
                self.stock(d.book, item).reserved.pop((number, "bonded"), None)
            for x in d.lines.values():
                x.moved = x.quantity
            self.dirty_books.add(d.book.book_no)
        if d.named is None:
            return
        ef = self.entered[d.named]
        assert not ef.declared
        ef.declared = True
        for item, _q in ef.lines.values():
            self.stock(ef.book, item).reserved.pop((ef.number, "bonded"), None)
        for x in d.lines.values():
            x.moved = x.quantity
        self.dirty_books.add(ef.book.book_no)

    # -- rules: enter first, declare later -----------------------------------------------------

    @rule(data=st.data(), zone=st.sampled_from(ZONES))
    def enter_first(self, data: Any, zone: str) -> None:
        """Goods with their manifest enter first on an approved enter_first checklist (a pass
        before the approval is refused) and wait, held, for their declaration."""
        book = self.books[zone]
        items = data.draw(st.lists(st.sampled_from(ITEMS), min_size=1, max_size=2), label="items")
        lines = {
            n: (i, self.quantity(data, i, 8 * QUANTUM[i], "listed")) for n, i in enumerate(items, 1)
        }
        body = {
            "direction": "I",
            "account_book": book.book_no,
            "kind": "enter_first",
            "lines": [{"item_no": i, "quantity": str(q)} for i, q in lines.values()],
        }
        filed = self.call(book.owner, "/v1/checklists", body, refused=None)
        assert filed["status"] == "filed" and filed["checklist_no"][8] == "I", filed
        ef = EnterFirst(filed["checklist_no"], book, lines, dict.fromkeys(lines, ZERO))
        self.entered[ef.number] = ef
        if self.rarely(data, "pass before approval"):
            self.call(
                book.owner,
                "/v1/gate-passes",
                self.pass_body(ef, None),
                refused="checklist_not_approved",
            )
        approved = self.call(
            "officer",
            f"/v1/checklists/{ef.number}/approval",
            {},
            refused=None,
            status=200,
            key=False,
        )
        assert approved["status"] == "approved", approved
        self.pass_entered(data, ef)

    def pass_body(self, ef: EnterFirst, moves: dict[int, Decimal] | None) -> dict[str, Any]:
        entry: dict[str, Any] = {"checklist_no": ef.number}
        if moves is not None:
            entry["lines"] = [{"line_no": n, "quantity": str(q)} for n, q in moves.items()]
        return {
            "zone": ef.book.zone,
            "direction": "in",
            "vehicle": {"plate": "陕A00002"},
            "gross_weight_kg": "3000",
            "checklists": [entry],
        }

    def pass_entered(self, data: Any, ef: EnterFirst) -> None:
        """A vehicle brings all that is left, or part of one line."""
        left = {n: q - ef.passed[n] for n, (_i, q) in ef.lines.items() if q > ef.passed[n]}
        if not left:
            return
        if data.draw(st.booleans(), label="all that is left"):
            moves, named = dict(left), None
        else:
            n = data.draw(st.sampled_from(sorted(left)), label="line")
            moves = {n: self.quantity(data, ef.lines[n][0], left[n], "q")}
            named = moves
        filed = self.call(ef.book.owner, "/v1/gate-passes", self.pass_body(ef, named), refused=None)
        path = f"/v1/gate-passes/{filed['pass_no']}/passage"
        weighed = {"measured_gross_weight_kg": "3050"}
        answer = self.call(
            f"gate-{ef.book.zone}", path, weighed, refused=None, status=200, key=False
        )
        (movement,) = answer["movements"]
        assert movement["declaration"] is None and movement["checklist_no"] == ef.number
        new = self.expect_lots(movement, [(None, ef.lines[n][0], q) for n, q in moves.items()])
        for lot, (n, q) in zip(new, moves.items(), strict=True):
            item = ef.lines[n][0]
            self.new_lot(lot, ef.book, item, "bonded", q, [])
            s = self.stock(ef.book, item)
            s.flows["admitted"] += q
            key = (ef.number, "bonded")
            s.reserved[key] = s.reserved.get(key, ZERO) + q
            ef.passed[n] += q
        self.dirty_books.add(ef.book.book_no)

    @rule(data=st.data())
    def declare_entered(self, data: Any) -> None:
        """More of an enter_first checklist passes, or the first-line declaration naming it
        declares, per item, exactly what passed (released: the holds go)."""
        waiting = [ef for ef in self.entered.values() if not ef.declared]
        if not waiting:
            return
        ef = data.draw(st.sampled_from(waiting), label="entered first")
        if data.draw(st.booleans(), label="more passes"):
            self.pass_entered(data, ef)
            return
        per_item: Counter[int] = Counter()
        for n, (item, _q) in ef.lines.items():
            per_item[item] += ef.passed[n]
        lines = [(i, q, "bonded", None) for i, q in per_item.items() if q > 0]
        if not lines:
            return
        d = self.declare("first_line_in", ef.book, lines, checklist=ef.number)
        assert d is not None and d.status == "released" and ef.declared

    # -- rules: collect then declare ----------------------------------------------------------

    @rule(data=st.data())
    def collect(self, data: Any) -> None:
        """A collected checklist pre-decreases its book when filed (409 without the book's
        permission, or beyond what is available); it is rejected or withdrawn (the stock comes
        back), or approved and its goods leave on an out-pass under no declaration, and then
        the consolidated declaration of what left is released (the rest comes back)."""
        # Laptops: the consolidated declaration owes duties the built-in tariff can assess
        # (it has no rate for medicaments and shotguns; a small coffee line may be waived).
        item = 1
        stocked = [z for z in ZONES if self.available_of(self.stock(self.books[z], 1), "bonded")]
        if stocked and not self.rarely(data, "any zone"):
            zone = data.draw(st.sampled_from(stocked), label="zone")
        else:
            zone = data.draw(st.sampled_from(ZONES), label="zone")
            if not self.rarely(data, "no laptops"):
                self.admit_goods(data, zone, "first_line_in", [1])
        book = self.books[zone]
        s = self.stock(book, item)
        most = max(self.available_of(s, "bonded"), QUANTUM[item])
        q = self.quantity(data, item, most, "collected", over=self.rarely(data, "too much"))
        body = {
            "direction": "E",
            "account_book": book.book_no,
            "kind": "collected",
            "lines": [{"item_no": item, "quantity": str(q)}],
        }
        if book.book_no not in self.permitted:
            if self.rarely(data, "file without the permission"):
                self.call(book.owner, "/v1/checklists", body, refused="collection_not_permitted")
            path = f"/v1/account-books/{book.book_no}/collection-permission"
            self.call("officer", path, {"permitted": True}, refused=None, status=200, key=False)
            self.permitted.add(book.book_no)
        probe = Decl(
            "", "", "second_line_out", book, None, {1: Line(1, item, q, "bonded")}, "", ZERO
        )
        refusal = self.refusal(probe)
        filed = self.call(book.owner, "/v1/checklists", body, refused=refusal)
        if filed is None:
            return
        number = filed["checklist_no"]
        assert number[8] == "E" and filed["status"] == "filed", filed
        s.reserved[(number, "bonded")] = q
        self.dirty_books.add(book.book_no)
        ending = data.draw(st.sampled_from(["approval", "rejection", "withdrawal"]), label="then")
        if ending != "approval":
            who = "officer" if ending == "rejection" else book.owner
            self.call(
                who,
                f"/v1/checklists/{number}/{ending}",
                {"reason": "not needed"},
                refused=None,
                status=200,
                key=False,
            )
            del s.reserved[(number, "bonded")]
            return
        path = f"/v1/checklists/{number}/approval"
        self.call("officer", path, {}, refused=None, status=200, key=False)
        out = self.quantity(data, item, q, "leaves")
        taken = fifo(s.lots, self.lots, "bonded", out)
        assert taken is not None  # the checklist reserved it
        pass_body = {
            "zone": zone,
            "direction": "out",
            "vehicle": {"plate": "陕A00003"},
            "gross_weight_kg": "900",
            "checklists": [
                {"checklist_no": number, "lines": [{"line_no": 1, "quantity": str(out)}]}
            ],
        }
        filed_pass = self.call(book.owner, "/v1/gate-passes", pass_body, refused=None)
        passage = f"/v1/gate-passes/{filed_pass['pass_no']}/passage"
        weighed = {"measured_gross_weight_kg": "910"}
        answer = self.call(f"gate-{zone}", passage, weighed, refused=None, status=200, key=False)
        (movement,) = answer["movements"]
        assert movement["kind"] == "gate_out" and movement["declaration"] is None, movement
        self.expect_lots(movement, [(lot, item, t) for lot, t in taken.items()])
        self.draw_lots(book, item, taken)
        s.flows["exited"] += out
        s.reserved[(number, "bonded")] -= out
        self.dirty_books.add(book.book_no)
        d = self.declare("second_line_out", book, [(item, out, "bonded", None)], collected=[number])
        assert d is not None, "a consolidated declaration reserves nothing: never refused"
        if d.status == "released":
            assert (number, "bonded") not in s.reserved
            c = self.gets([f"/v1/checklists/{number}"])[0]
            assert c["status"] == "closed" and c["declaration_no"] == d.number, c

    def file_outbound(
        self, data: Any, book: Book, kind: str, item: int, over: bool, **extra: Any
    ) -> tuple[str, Decimal] | None:
        """File an outbound checklist of one line (it pre-decreases the book: refused as a
        release would be); then mostly approved, else rejected or withdrawn (the stock comes
        back). The approved checklist's number and quantity, or None."""
        s = self.stock(book, item)
        most = max(self.available_of(s, "bonded"), QUANTUM[item])
        q = self.quantity(data, item, most, kind, over=over)
        body = {
            "direction": "E",
            "account_book": book.book_no,
            "kind": kind,
            "lines": [{"item_no": item, "quantity": str(q)}],
            **extra,
        }
        probe = Decl(
            "", "", "first_line_out", book, None, {1: Line(1, item, q, "bonded")}, "", ZERO
        )
        filed = self.call(book.owner, "/v1/checklists", body, refused=self.refusal(probe))
        if filed is None:
            return None
        number = filed["checklist_no"]
        assert number[8] == "E" and filed["status"] == "filed", filed
        s.reserved[(number, "bonded")] = q
        self.dirty_books.add(book.book_no)
        ending = data.draw(st.sampled_from(["approval", "approval", "rejection", "withdrawal"]))
        if ending != "approval":
            who = "officer" if ending == "rejection" else book.owner
            path = f"/v1/checklists/{number}/{ending}"
            self.call(who, path, {"reason": "not needed"}, refused=None, status=200, key=False)
            del s.reserved[(number, "bonded")]
            return None
        path = f"/v1/checklists/{number}/approval"
        self.call("officer", path, {}, refused=None, status=200, key=False)
        return number, q

    def held_by(self, book: Book, item: int, number: str, used: Decimal) -> None:
        """A checklist's goods moved: what it holds shrinks by `used`."""
        s = self.stock(book, item)
        left = s.reserved[(number, "bonded")] - used
        if left:
            s.reserved[(number, "bonded")] = left
        else:
            del s.reserved[(number, "bonded")]
        self.dirty_books.add(book.book_no)

    @rule(data=st.data())
    def transfer_in_zone(self, data: Any) -> None:
        """An in-zone transfer checklist between the two books of XCBZ pre-decreases the
        sender's; the receiving enterprise records the receipt of part or all of it (more than
        is left: 409), the sender's lots drawn first-in first-out and the receiver's made as
        their children."""
        home, neighbour = self.books[NEIGHBOURS], self.neighbour
        stocked = [i for i in ITEMS if self.available_of(self.stock(neighbour, i), "bonded") > 0]
        if stocked and data.draw(st.booleans(), label="back from the neighbour"):
            src, dst = neighbour, home
            item = data.draw(st.sampled_from(stocked), label="item")
        else:
            src, dst = home, neighbour
            item = data.draw(st.sampled_from(ITEMS), label="item")
            if not self.available_of(self.stock(home, item), "bonded") and not self.rarely(
                data, "nothing to send"
            ):
                self.admit_goods(data, NEIGHBOURS, "first_line_in", [item])
        over = self.rarely(data, "too much")
        approved = self.file_outbound(
            data, src, "in_zone_transfer", item, over, destination_account_book=dst.book_no
        )
        if approved is None:
            return
        number, q = approved
        left = q
        while left > 0:
            r = self.quantity(data, item, left, "received", over=self.rarely(data, "over"))
            body = {
                "kind": "in_zone_transfer",
                "checklist": number,
                "lines": [{"line_no": 1, "quantity": str(r)}],
            }
            refusal = "exceeds_checklist_quantity" if r > left else None
            answer = self.call(dst.owner, "/v1/movements", body, refused=refusal)
            if answer is None:
                return
            assert answer["account_book"] == dst.book_no and answer["checklist_no"] == number
            s = self.stock(src, item)
            taken = fifo(s.lots, self.lots, "bonded", r)
            assert taken is not None  # the checklist held them
            drawn = [(lot, item, -t) for lot, t in taken.items()]
            (new,) = self.expect_lots(answer, [*drawn, (None, item, r)])
            self.draw_lots(src, item, taken)
            # A transfer_out of the sender's book that arrives at once: nothing in transit.
            s.flows["dispatched"] += r
            s.flows["arrived"] += r
            self.held_by(src, item, number, r)
            self.new_lot(new, dst, item, "bonded", r, list(taken))
            self.stock(dst, item).flows["received"] += r
            self.dirty_books.add(dst.book_no)
            left -= r
            if not data.draw(st.booleans(), label="receive more"):
                break
        c = self.gets([f"/v1/checklists/{number}"])[0]
        assert c["status"] == ("closed" if left == 0 else "approved"), c
        assert plain(c["lines"][0]["passed"]) == q - left, c

    @rule(data=st.data())
    def process_under_checklist(self, data: Any) -> None:
        """A processing checklist pre-decreases the bonded materials; processing under it
        consumes what it holds (beyond what it has left: 409), outputs made from them."""
        zone = self.stocked_zone(data)
        book = self.books[zone]
        held = [i for i in ITEMS if self.available_of(self.stock(book, i), "bonded") > 0]
        item = data.draw(st.sampled_from(held or list(ITEMS)), label="material")
        approved = self.file_outbound(data, book, "processing", item, self.rarely(data, "too much"))
        if approved is None:
            return
        number, q = approved
        used = self.quantity(data, item, q, "consumed", over=self.rarely(data, "over"))
        output = data.draw(st.sampled_from(ITEMS), label="output")
        made = self.quantity(data, output, 4 * QUANTUM[output], "output")
        body = {
            "kind": "processing",
            "zone": zone,
            "account_book": book.book_no,
            "inputs": [{"item_no": item, "quantity": str(used)}],
            "outputs": [{"item_no": output, "quantity": str(made)}],
            "operation": "simple_processing",  # permitted in every zone
            "checklist": number,
        }
        refusal = "exceeds_checklist_quantity" if used > q else None
        answer = self.call(book.owner, "/v1/movements", body, refused=refusal)
        if answer is None:
            return
        s = self.stock(book, item)
        taken = fifo(s.lots, self.lots, "bonded", used)
        assert taken is not None
        consumed = [(lot, item, -t) for lot, t in taken.items()]
        (new,) = self.expect_lots(answer, [*consumed, (None, output, made)])
        self.draw_lots(book, item, taken)
        s.flows["consumed"] += used
        self.held_by(book, item, number, used)
        self.new_lot(new, book, output, "bonded", made, list(taken))
        self.stock(book, output).flows["produced"] += made
        self.dirty_books.add(book.book_no)

    def reserve(self, d: Decl) -> None:
        if d.collected:
            return  # its goods left on the checklists, which held the stock
        for x in d.lines.values():
            s = self.stock(d.book, x.item)
            s.reserved[(d.id, x.status)] = s.reserved.get((d.id, x.status), ZERO) + x.quantity
        self.dirty_books.add(d.book.book_no)

    def declare(
        self,
        flow: str,
        book: Book,
        lines: list[tuple[int, Decimal, str, int | None]],
        dest: Book | None = None,
        checklist: str | None = None,
        collected: list[str] | None = None,
    ) -> Decl | None:
        """Submit a declaration and take it to `released` (officer release, inspection,
        payment); None when the model says its submission is refused."""
        body_lines = []
        for n, (item, q, status, dest_item) in enumerate(lines, 1):
            x = line(item, line_no=n, quantity=str(q), origin_country=COUNTRY.get(flow))
            if flow in OUTBOUND:
                x["origin_country"] = None
                x["goods_status"] = status
            if dest_item is not None and dest_item != item:
                x["destination_item_no"] = dest_item
            body_lines.append(x)
        body = declaration_body(
            book.uscc,
            book.book_no,
            flow=flow,
            zone=book.zone,
            trade_mode=TRADE_MODE.get(flow, "5034"),
            country=COUNTRY.get(flow, "CN"),
            lines=body_lines,
        )
        if dest is not None:
            body |= {"destination_zone": dest.zone, "destination_account_book": dest.book_no}
        if checklist is not None:
            body["checklist"] = checklist
        if collected is not None:
            body["collected_checklists"] = collected
        items = {item for item, *_ in lines}
        channel = "red" if 4 in items else "yellow" if 3 in items else "green"
        dutiable = flow == "second_line_out" and any(s == "bonded" for _, _, s, _ in lines)
        first = {
            "green": "awaiting_payment" if dutiable else "released",
            "yellow": "document_review",
            "red": "inspection",
        }[channel]
        d = Decl(
            id="",
            number="",
            flow=flow,
            book=book,
            dest=dest,
            lines={
                n: Line(n, item, q, status, dest_item)
                for n, (item, q, status, dest_item) in enumerate(lines, 1)
            },
            status=first,
            outstanding=ZERO,
        )
        if dest is not None and dest.owner != book.owner:
            # Into the other enterprise's book: it waits for that enterprise, whatever the
            # channel; the channel's status comes with the acceptance.
            d.accepted_status, d.status = first, "awaiting_acceptance"
            first = d.status
        # Released at once: the release reserves, or the submission is refused as a whole.
        d.named = checklist
        d.collected = list(collected or [])
        refusal = self.refusal(d) if first == "released" and flow in OUTBOUND else None
        answer = self.call(
            book.owner,
            "/v1/declarations",
            body,
            refused=refusal,
        )
        if answer is None:
            return None
        assert (answer["status"], answer["channel"]) == (first, channel), answer
        d.outstanding = plain(answer["duties"]["outstanding"])
        assert (d.outstanding > 0) == dutiable, answer["duties"]
        d.id, d.number = answer["id"], answer["declaration_no"]
        self.decls[d.id] = d
        self.filed(d, answer)
        if first == "released":
            if flow in OUTBOUND:
                self.reserve(d)
            self.declared_entered(d)
        else:
            self.drive(d)
        return d

    def filed(self, d: Decl, answer: dict[str, Any]) -> None:
        """A declaration files its checklist in the write that releases it, and only then:
        a `QD` number of its zone's office and direction, never one another has."""
        number = answer.get("checklist_no")
        if d.named is not None:  # it declares goods that entered first: their checklist
            assert number == d.named, answer
            return
        if d.collected:  # a consolidated declaration: its goods left on its checklists
            assert number is None and answer["collected_checklists"] == d.collected, answer
            return
        if d.status != "released":
            assert number is None, answer
            return
        assert number is not None and number.startswith("QD"), answer
        assert number[8] == ("I" if d.flow in INBOUND else "E"), (d.flow, number)
        assert number not in self.checklists, f"checklist {number} filed twice"
        self.checklists[number] = d.id
        d.checklist = number

    def drive(self, d: Decl) -> None:
        """The destination's acceptance, officer release, conforming inspection and payment
        until `released`, or until the release is refused for want of stock (the declaration
        then waits where it is)."""
        while d.status != "released":
            if d.status == "awaiting_acceptance":
                assert d.dest is not None and d.accepted_status is not None
                path, who, body = "acceptance", d.dest.owner, {}
            elif d.status == "document_review":
                path, who, body = "release", "officer", {}
            elif d.status == "inspection":
                path, who = "inspection-results", "officer"
                body = {"result": "conform", "findings": "as declared"}
            else:
                assert d.status == "awaiting_payment"
                path, who = "payments", d.book.owner
                body = {"amount": str(d.outstanding), "currency": "CNY", "reference": "BANK-1"}
            paid = path == "payments"
            after = "released" if paid or d.outstanding == 0 else "awaiting_payment"
            if path == "acceptance":
                after = str(d.accepted_status)
            refusal = self.refusal(d) if after == "released" and d.flow in OUTBOUND else None
            answer = self.call(
                who,
                f"/v1/declarations/{d.id}/{path}",
                body,
                refused=refusal,
                status=200,
                key=False,
                current_status=d.status,
            )
            if answer is None:
                return
            assert answer["status"] == after, (d.status, path, answer)
            d.status = after
            self.filed(d, answer)
            if paid:
                d.outstanding = ZERO
            if after == "released" and d.flow in OUTBOUND:
                self.reserve(d)
            if after == "released":
                self.declared_entered(d)

    def stocked_zone(self, data: Any) -> str:
        """Mostly a zone whose book holds goods (so that exits and processing can happen)."""
        stocked = [z for z in ZONES if any(self.stock(self.books[z], i).lots for i in ITEMS)]
        if stocked and not self.rarely(data, "any zone"):
            return data.draw(st.sampled_from(stocked), label="zone")
        return data.draw(st.sampled_from(ZONES), label="zone")

    def bucket(self, data: Any, book: Book) -> tuple[int, str, Decimal]:
        """An item and customs status, mostly ones with goods available, and how much of it
        is available (at least one quantum)."""
        held = [
            (item, status)
            for item in ITEMS
            for status in STATUSES
            if self.available_of(self.stock(book, item), status) > 0
        ]
        if held and not self.rarely(data, "any item"):
            item, status = data.draw(st.sampled_from(held), label="item and status")
        else:
            item = data.draw(st.sampled_from(ITEMS), label="item")
            status = data.draw(st.sampled_from(STATUSES), label="status")
        available = self.available_of(self.stock(book, item), status)
        return item, status, max(available, QUANTUM[item])

    def outbound_lines(
        self, data: Any, flow: str, book: Book
    ) -> list[tuple[int, Decimal, str, int | None]]:
        lines: list[tuple[int, Decimal, str, int | None]] = []
        status_of: dict[int, str] = {}
        # One time in four, one quantum more than is available: the release is refused.
        too_much = self.rarely(data, "too much")
        for _ in range(data.draw(st.integers(1, 2), label="lines")):
            item, status, most = self.bucket(data, book)
            if flow == "second_line_out" and item != 1:
                # Duties: laptops always owe more than the CNY 50 waiver; the tariff table has
                # no rate for medicaments and shotguns, and a small coffee line may be waived.
                status = "domestic"
            if AVOID_MIXED_STATUS_PER_ITEM:
                status = status_of.setdefault(item, status)
            q = self.quantity(data, item, most, "declared", over=too_much and not lines)
            dest_item = None
            if flow == "transfer":
                same_unit = [i for i in ITEMS if UNIT[i] == UNIT[item]]
                dest_item = data.draw(st.sampled_from(same_unit), label="destination item")
            lines.append((item, q, status, dest_item))
        return lines

    # -- rules: admission ------------------------------------------------------------------

    @rule(
        data=st.data(),
        zone=st.sampled_from(ZONES),
        flow=st.sampled_from(INBOUND),
        items=st.lists(st.sampled_from(ITEMS), min_size=1, max_size=2),
    )
    def admit(self, data: Any, zone: str, flow: str, items: list[int]) -> None:
        """A first- or second-line import is declared, released and (part of it) admitted."""
        self.admit_goods(data, zone, flow, items)

    def new_import(self, data: Any, most_lines: int = 2) -> None:
        items = st.lists(st.sampled_from(ITEMS), min_size=1, max_size=most_lines)
        self.admit_goods(
            data,
            data.draw(st.sampled_from(ZONES), label="zone"),
            data.draw(st.sampled_from(INBOUND), label="flow"),
            data.draw(items, label="items"),
        )

    def admit_goods(self, data: Any, zone: str, flow: str, items: list[int]) -> None:
        book = self.books[zone]
        status = "bonded" if flow == "first_line_in" else "domestic"
        lines = [
            (i, self.quantity(data, i, 8 * QUANTUM[i], "declared"), status, None) for i in items
        ]
        d = self.declare(flow, book, lines)
        assert d is not None and d.status == "released"
        moves = {n: self.quantity(data, x.item, x.quantity, "admitted") for n, x in d.lines.items()}
        self.gate_in(data, d, moves)

    @rule(data=st.data())
    def admit_more(self, data: Any) -> None:
        """More goods under an import already (partly) admitted; beyond its lines: refused."""
        d = self.pick(data, [d for d in self.decls.values() if d.flow in INBOUND], "import")
        if d is None:
            self.new_import(data)
            return
        chosen = self.lines_of(data, d, sorted(d.lines), lambda x: x.quantity - x.moved)
        moves: dict[int, Decimal] = {}
        too_much = self.rarely(data, "too much")  # one quantum more than the line covers
        for n in chosen:
            x = d.lines[n]
            moves[n] = self.quantity(
                data, x.item, x.quantity - x.moved, "q", over=too_much and not moves
            )
        self.gate_in(data, d, moves)

    def gate_in(self, data: Any, d: Decl, moves: dict[int, Decimal]) -> None:
        over = any(q > d.lines[n].quantity - d.lines[n].moved for n, q in moves.items())
        body = {
            "kind": "gate_in",
            "declaration": self.ref(data, d),
            "lines": [{"line_no": n, "quantity": str(q)} for n, q in moves.items()],
        }
        answer = self.call(
            f"gate-{d.book.zone}",
            "/v1/movements",
            body,
            refused="exceeds_declared_quantity" if over else None,
        )
        if answer is None:
            return
        self.admitted(d, moves, answer)

    def admitted(self, d: Decl, moves: dict[int, Decimal], answer: dict[str, Any]) -> None:
        """The model after a gate_in of `moves` answered `answer`."""
        assert answer["kind"] == "gate_in" and answer["account_book"] == d.book.book_no
        new = self.expect_lots(answer, [(None, d.lines[n].item, q) for n, q in moves.items()])
        status = "bonded" if d.flow == "first_line_in" else "domestic"
        for lot, (n, q) in zip(new, moves.items(), strict=True):
            x = d.lines[n]
            x.moved += q
            self.new_lot(lot, d.book, x.item, status, q, [])
            self.stock(d.book, x.item).flows["admitted"] += q
        self.dirty_books.add(d.book.book_no)

    # -- rules: exits ------------------------------------------------------------------------

    @rule(data=st.data(), flow=st.sampled_from(GATE_EXITS))
    def declare_exit(self, data: Any, flow: str) -> None:
        """An export abroad or a release to China's market: reserves stock when released;
        the goods may leave at once."""
        d = self.new_exit(data, flow)
        if d is not None and d.status == "released" and data.draw(st.booleans(), label="out"):
            self.leave(data, d, "gate_out")

    def new_exit(self, data: Any, flow: str) -> Decl | None:
        book = self.books[self.stocked_zone(data)]
        return self.declare(flow, book, self.outbound_lines(data, flow, book))

    @precondition(
        lambda self: any(d.flow in OUTBOUND and d.status != "released" for d in self.decls.values())
    )
    @rule(data=st.data())
    def release_waiting(self, data: Any) -> None:
        """A declaration whose release was refused for want of stock is tried again."""
        waiting = [d for d in self.decls.values() if d.flow in OUTBOUND and d.status != "released"]
        self.drive(data.draw(st.sampled_from(waiting), label="waiting"))

    @rule(data=st.data())
    def gate_out(self, data: Any) -> None:
        """Goods leave under a released exit (declared first if there is none): FIFO, or from
        named lots; never beyond a line."""
        exits = [d for d in self.decls.values() if d.flow in GATE_EXITS and d.status == "released"]
        d = self.pick(data, exits, "exit")
        if d is None:
            d = self.new_exit(data, data.draw(st.sampled_from(GATE_EXITS), label="flow"))
        if d is not None and d.status == "released":
            self.leave(data, d, "gate_out")

    def leave(self, data: Any, d: Decl, kind: str) -> bool:
        chosen = self.lines_of(data, d, sorted(d.lines), lambda x: x.quantity - x.moved)
        moves: dict[int, Decimal] = {}
        picks: dict[int, dict[str, Decimal]] = {}
        too_much = self.rarely(data, "too much")
        for n in chosen:
            x = d.lines[n]
            moves[n] = self.quantity(
                data, x.item, x.quantity - x.moved, "q", over=too_much and not moves
            )
            s = self.stock(d.book, x.item)
            candidates = [lot for lot in s.lots if self.lots[lot].status == x.status]
            if candidates and data.draw(st.booleans(), label="name lots"):
                named = data.draw(
                    st.lists(st.sampled_from(candidates), min_size=1, max_size=2, unique=True),
                    label="named lots",
                )
                # The named quantities add up to the line's: each at most what its lot holds,
                # the rest on the last one (which may then hold too little: refused).
                left, chosen_picks = moves[n], {}
                for lot in named[:-1]:
                    q = min(s.lots[lot], left - QUANTUM[x.item])
                    if q > 0:
                        chosen_picks[lot] = q
                        left -= q
                chosen_picks[named[-1]] = left
                picks[n] = chosen_picks
        refusal = None
        if any(q > d.lines[n].quantity - d.lines[n].moved for n, q in moves.items()):
            refusal = "exceeds_declared_quantity"
        # Lines naming lots draw first, then the others first-in first-out, each line on what
        # the earlier ones left.
        order = [n for n in moves if n in picks] + [n for n in moves if n not in picks]
        working = {item: dict(self.stock(d.book, item).lots) for item in ITEMS}
        drawn: dict[int, dict[str, Decimal]] = {}
        for n in order if refusal is None else ():
            x = d.lines[n]
            lots = working[x.item]
            if n in picks:
                taken: dict[str, Decimal] | None = picks[n]
                if any(q > lots.get(lot, ZERO) for lot, q in picks[n].items()):
                    taken = None
            else:
                taken = fifo(lots, self.lots, x.status, moves[n])
            if taken is None:
                refusal = "insufficient_stock"
                break
            take(lots, taken)
            drawn[n] = taken
        body_lines = []
        for n, q in moves.items():
            entry: dict[str, Any] = {"line_no": n, "quantity": str(q)}
            if n in picks:
                entry["lots"] = [{"lot_id": lot, "quantity": str(p)} for lot, p in picks[n].items()]
            body_lines.append(entry)
        body = {"kind": kind, "declaration": self.ref(data, d), "lines": body_lines}
        answer = self.call(f"gate-{d.book.zone}", "/v1/movements", body, refused=refusal)
        if answer is None:
            return False
        self.left(d, kind, moves, drawn, order, answer)
        return True

    def left(
        self,
        d: Decl,
        kind: str,
        moves: dict[int, Decimal],
        drawn: dict[int, dict[str, Decimal]],
        order: list[int],
        answer: dict[str, Any],
    ) -> None:
        """The model after goods left under `d` (gate_out or transfer_dispatch)."""
        assert answer["kind"] == kind and answer["account_book"] == d.book.book_no
        self.expect_lots(
            answer,
            [(lot, d.lines[n].item, q) for n in moves for lot, q in drawn[n].items()],
        )
        for n in order:
            x, q = d.lines[n], moves[n]
            s = self.stock(d.book, x.item)
            self.draw_lots(d.book, x.item, drawn[n])
            key = (d.id, x.status)
            s.reserved[key] -= q
            assert s.reserved[key] >= 0
            if s.reserved[key] == 0:
                del s.reserved[key]
            x.moved += q
            if kind == "gate_out":
                s.flows["exited"] += q
            else:
                s.flows["dispatched"] += q
                moving = s.transit.setdefault(d.id, {})
                for lot, taken_q in drawn[n].items():
                    moving[lot] = moving.get(lot, ZERO) + taken_q
        self.dirty_books.add(d.book.book_no)

    # -- rules: gate passes ------------------------------------------------------------------

    def new_checklist(self, data: Any, direction: str) -> Decl | None:
        """A declaration released for a pass to carry: an import nothing of which has passed,
        or an exit (None when its release is refused)."""
        if direction == "out":
            return self.new_exit(data, data.draw(st.sampled_from(GATE_EXITS), label="flow"))
        flow = data.draw(st.sampled_from(INBOUND), label="flow")
        items = data.draw(st.lists(st.sampled_from(ITEMS), min_size=1, max_size=2), label="items")
        status = "bonded" if flow == "first_line_in" else "domestic"
        lines = [
            (i, self.quantity(data, i, 8 * QUANTUM[i], "declared"), status, None) for i in items
        ]
        zone = data.draw(st.sampled_from(ZONES), label="zone")
        return self.declare(flow, self.books[zone], lines)

    @rule(data=st.data(), direction=st.sampled_from(("in", "out")))
    def gate_pass(self, data: Any, direction: str) -> None:
        """One vehicle carries all or part of one or two released checklists of one zone;
        now and then more than a checklist has left (409 at filing), a weight the gate does
        not confirm (409 `weight_mismatch`, nothing moves), a second passage (409
        `already_passed`). The passage is each checklist's movement, in the pass's order."""
        flows = INBOUND if direction == "in" else OUTBOUND
        ready = [
            d
            for d in self.decls.values()
            if d.flow in flows
            and d.status == "released"
            and d.checklist is not None
            and d.named is None
        ]
        first = self.pick(data, ready, "checklist") or self.new_checklist(data, direction)
        if first is None or first.checklist is None:
            return
        zone = first.book.zone
        others = [d for d in ready if d.book.zone == zone and d is not first]
        chosen = [first]
        if others and data.draw(st.booleans(), label="two checklists"):
            chosen.append(data.draw(st.sampled_from(others), label="second checklist"))
        too_much = self.rarely(data, "too much")
        carried: list[tuple[Decl, dict[int, Decimal]]] = []
        entries = []
        for d in chosen:
            left = {n: x.quantity - x.moved for n, x in d.lines.items()}
            if data.draw(st.booleans(), label="whole checklist"):
                moves = {n: q for n, q in left.items() if q > 0}
                entries.append({"checklist_no": d.checklist})
            else:
                moves = {}
                for n in self.lines_of(data, d, sorted(d.lines), lambda x: x.quantity - x.moved):
                    over = too_much and not carried and not moves
                    moves[n] = self.quantity(data, d.lines[n].item, left[n], "q", over=over)
                lines = [{"line_no": n, "quantity": str(q)} for n, q in moves.items()]
                entries.append({"checklist_no": d.checklist, "lines": lines})
            carried.append((d, moves))
        refusal = None
        if any(
            not moves or any(q > d.lines[n].quantity - d.lines[n].moved for n, q in moves.items())
            for d, moves in carried
        ):
            refusal = "exceeds_checklist_quantity"
        body = {
            "zone": zone,
            "direction": direction,
            "vehicle": {"plate": "陕A00001"},
            "gross_weight_kg": "10000",
            "checklists": entries,
        }
        filed = self.call(first.book.owner, "/v1/gate-passes", body, refused=refusal)
        if filed is None:
            return
        assert [c["checklist_no"] for c in filed["checklists"]] == [d.checklist for d in chosen]
        path, gate = f"/v1/gate-passes/{filed['pass_no']}/passage", f"gate-{zone}"
        if self.rarely(data, "wrong weight"):
            heavy = {"measured_gross_weight_kg": "10501"}
            self.call(gate, path, heavy, refused="weight_mismatch", status=200, key=False)
        answer = self.call(
            gate, path, {"measured_gross_weight_kg": "9500"}, refused=None, status=200, key=False
        )
        movements = answer["movements"]
        assert len(movements) == len(carried), answer
        for (d, moves), movement in zip(carried, movements, strict=True):
            assert (movement["checklist_no"], movement["gate_pass"]) == (
                d.checklist,
                filed["pass_no"],
            )
            if direction == "in":
                self.admitted(d, moves, movement)
                continue
            drawn: dict[int, dict[str, Decimal]] = {}
            lots = {item: dict(self.stock(d.book, item).lots) for item in ITEMS}
            for n, q in moves.items():
                x = d.lines[n]
                taken = fifo(lots[x.item], self.lots, x.status, q)
                assert taken is not None, "a released checklist's reservation holds its goods"
                take(lots[x.item], taken)
                drawn[n] = taken
            kind = "transfer_dispatch" if d.flow == "transfer" else "gate_out"
            self.left(d, kind, moves, drawn, list(moves), movement)
        if self.rarely(data, "second passage"):
            again = {"measured_gross_weight_kg": "10000"}
            self.call(gate, path, again, refused="already_passed", status=200, key=False)

    # -- rules: transfers --------------------------------------------------------------------

    @rule(data=st.data())
    def declare_transfer(self, data: Any) -> None:
        """A transfer from one zone's book to another zone's (either enterprise's); it may be
        dispatched, and received, at once."""
        d = self.new_transfer(data)
        if d is not None and d.status == "released" and data.draw(st.booleans(), label="go"):
            dispatched = self.leave(data, d, "transfer_dispatch")
            if dispatched and data.draw(st.booleans(), label="arrive") and self.receivable(d):
                self.receive_on(data, d)

    def new_transfer(self, data: Any) -> Decl | None:
        zone = self.stocked_zone(data)
        source = self.books[zone]
        dest = self.books[data.draw(st.sampled_from([z for z in ZONES if z != zone]), label="to")]
        return self.declare("transfer", source, self.outbound_lines(data, "transfer", source), dest)

    def dispatched_transfer(self, data: Any) -> Decl | None:
        """A transfer with goods dispatched: a released one dispatched now (declared first if
        there is none)."""
        released = [
            d for d in self.decls.values() if d.flow == "transfer" and d.status == "released"
        ]
        d = self.pick(data, released, "transfer") or self.new_transfer(data)
        if d is not None and d.status == "released" and self.leave(data, d, "transfer_dispatch"):
            return d
        return None

    @rule(data=st.data())
    def dispatch(self, data: Any) -> None:
        """The source gate dispatches a released transfer: the goods go in transit."""
        self.dispatched_transfer(data)

    def receivable(self, d: Decl) -> list[int]:
        if d.flow != "transfer":
            return []
        return [
            n
            for n, x in d.lines.items()
            if x.moved > 0 and not (AVOID_RECEIPT_AFTER_LOSS and d.lost[x.item])
        ]

    @rule(data=st.data())
    def receive(self, data: Any) -> None:
        """The destination gate receives what was dispatched (dispatched first if nothing
        is), possibly less (a shortfall)."""
        waiting = [
            d
            for d in self.decls.values()
            if any(self.receivable(d)) and any(x.received < x.moved for x in d.lines.values())
        ]
        if waiting and not self.rarely(data, "any transfer"):
            d: Decl | None = data.draw(st.sampled_from(waiting), label="transfer")
        else:
            d = self.dispatched_transfer(data)
        if d is not None and self.receivable(d):
            self.receive_on(data, d)

    def receive_on(self, data: Any, d: Decl) -> None:
        assert d.dest is not None
        chosen = self.lines_of(data, d, self.receivable(d), lambda x: x.moved - x.received)
        moves: dict[int, Decimal] = {}
        too_much = self.rarely(data, "too much")
        for n in chosen:
            x = d.lines[n]
            moves[n] = self.quantity(
                data, x.item, x.moved - x.received, "q", over=too_much and not moves
            )
        # Never more than dispatched under the line, nor more than is still in transit of the
        # line's item and status (what was explained as lost did not arrive).
        refusal = None
        working = {
            item: {k: dict(v) for k, v in self.stock(d.book, item).transit.items()}
            for item in ITEMS
        }
        settled: dict[int, dict[str, Decimal]] = {}
        for n, q in moves.items():
            x = d.lines[n]
            moving = working[x.item].get(d.id, {})
            parents = fifo(moving, self.lots, x.status, q)
            if q > x.moved - x.received or parents is None:
                refusal = "exceeds_dispatched_quantity"
                break
            take(moving, parents)
            settled[n] = parents
        body = {
            "kind": "transfer_receipt",
            "declaration": self.ref(data, d),
            "lines": [{"line_no": n, "quantity": str(q)} for n, q in moves.items()],
        }
        answer = self.call(f"gate-{d.dest.zone}", "/v1/movements", body, refused=refusal)
        if answer is None:
            return
        assert answer["kind"] == "transfer_receipt" and answer["account_book"] == d.dest.book_no
        items = [d.lines[n].dest_item or d.lines[n].item for n in moves]
        new = self.expect_lots(
            answer, [(None, item, q) for item, q in zip(items, moves.values(), strict=True)]
        )
        for lot, item, (n, q) in zip(new, items, moves.items(), strict=True):
            x = d.lines[n]
            source = self.stock(d.book, x.item)
            take(source.transit[d.id], settled[n])
            if not source.transit[d.id]:
                del source.transit[d.id]
            source.flows["arrived"] += q
            self.new_lot(lot, d.dest, item, x.status, q, list(settled[n]))
            self.stock(d.dest, item).flows["received"] += q
            x.received += q
        self.dirty_books |= {d.book.book_no, d.dest.book_no}

    @rule(data=st.data())
    def explain_shortfall(self, data: Any) -> None:
        """The source's stocktake explains goods in transit as lost (at most what is there;
        a transfer is dispatched first if none has anything in transit)."""
        # In the model's own order: declaration ids come from random Idempotency-Keys, so an
        # order by id differs between runs of one example (Hypothesis: FlakyStrategyDefinition).
        dispatched = [
            (d.id, x.item)
            for d in self.decls.values()
            if d.flow == "transfer"
            for x in d.lines.values()
            if x.moved > 0
        ]
        in_transit = [
            (d, i) for d, i in dispatched if self.stock(self.decls[d].book, i).transit.get(d)
        ]
        if in_transit and not self.rarely(data, "any dispatched"):
            dispatched = in_transit
        if not dispatched:
            t = self.dispatched_transfer(data)
            if t is None:
                return
            dispatched = [(t.id, x.item) for x in t.lines.values() if x.moved > 0]
        decl_id, item = data.draw(st.sampled_from(dispatched), label="transfer and item")
        d = self.decls[decl_id]
        s = self.stock(d.book, item)
        waiting = sum(s.transit.get(d.id, {}).values(), ZERO)
        lost = self.quantity(data, item, waiting, "lost", over=self.rarely(data, "too much"))
        body = {
            "kind": "adjustment",
            "account_book": d.book.book_no,
            "item_no": item,
            "quantity_delta": str(-lost),
            "reason": "lost in transit",
            "explains": self.ref(data, d),
        }
        refused = "exceeds_dispatched_quantity" if lost > waiting else None
        answer = self.call(d.book.owner, "/v1/movements", body, refused=refused)
        if answer is None:
            return
        assert answer["kind"] == "adjustment" and answer["lots"] == []
        # Written off in dispatch order.
        moving = s.transit[d.id]
        left = lost
        for lot in list(moving):
            q = min(left, moving[lot])
            take(moving, {lot: q})
            left -= q
            if left == 0:
                break
        if not moving:
            del s.transit[d.id]
        s.flows["lost"] += lost
        d.lost[item] += lost
        self.dirty_books.add(d.book.book_no)

    # -- rules: processing and stocktake ---------------------------------------------------

    @rule(
        data=st.data(),
        operation=st.sampled_from(["processing", "simple_processing"]),
        outputs=st.lists(st.sampled_from(ITEMS), min_size=1, max_size=2, unique=True),
    )
    def process(self, data: Any, operation: str, outputs: list[int]) -> None:
        """Inputs consumed (FIFO within a status, or a named lot), outputs made from them,
        only where the zone permits the operation."""
        zone = self.stocked_zone(data)
        book = self.books[zone]
        body_inputs: list[dict[str, Any]] = []
        plan: list[tuple[int, Decimal, str, dict[str, Decimal] | None]] = []
        too_much = self.rarely(data, "too much")
        for _ in range(data.draw(st.integers(1, 2), label="inputs")):
            item, status, most = self.bucket(data, book)
            if any(item == p[0] for p in plan):
                continue  # one input per item
            s = self.stock(book, item)
            q = self.quantity(data, item, most, "input", over=too_much and not plan)
            entry: dict[str, Any] = {"item_no": item, "quantity": str(q)}
            if s.lots and data.draw(st.booleans(), label="name a lot"):
                lot = data.draw(st.sampled_from(list(s.lots)), label="lot")
                entry["lot_id"] = lot
                status = self.lots[lot].status
                taken = {lot: q} if s.lots[lot] >= q else None
            else:
                if status == "domestic" or data.draw(st.booleans(), label="say bonded"):
                    entry["goods_status"] = status  # bonded is the default
                taken = fifo(s.lots, self.lots, status, q)
            if taken is not None and q > self.available_of(s, status):
                taken = None
            body_inputs.append(entry)
            plan.append((item, q, status, taken))
        made = [(item, self.quantity(data, item, 4 * QUANTUM[item], "output")) for item in outputs]
        roles = [data.draw(st.sampled_from(ROLES), label="output role") for _ in made]
        body = {
            "kind": "processing",
            "zone": zone,
            "account_book": book.book_no,
            "inputs": body_inputs,
            "outputs": [
                {"item_no": item, "quantity": str(q), "role": role}
                for (item, q), role in zip(made, roles, strict=True)
            ],
            "operation": operation,
        }
        if operation not in PERMITS[zone]:
            refusal: str | None = "zone_not_permitted"
        elif any(taken is None for *_, taken in plan):
            refusal = "insufficient_stock"
        else:
            refusal = None
        answer = self.call(book.owner, "/v1/movements", body, refused=refusal)
        if answer is None:
            return
        assert answer["kind"] == "processing"
        consumed = [(lot, item, -q) for item, _, _, taken in plan for lot, q in taken.items()]
        new = self.expect_lots(answer, [*consumed, *((None, item, q) for item, q in made)])
        parents = list(dict.fromkeys(lot for lot, _, _ in consumed))
        for item, q, _, taken in plan:
            self.draw_lots(book, item, taken)
            self.stock(book, item).flows["consumed"] += q
        status = "bonded" if any(p[2] == "bonded" for p in plan) else "domestic"
        for lot, (item, q) in zip(new, made, strict=True):
            self.new_lot(lot, book, item, status, q, parents)
            self.stock(book, item).flows["produced"] += q
        self.dirty_books.add(book.book_no)

    @rule(data=st.data())
    def destroy(self, data: Any) -> None:
        """An officer witnesses a destruction: first-in first-out among the free lots of one
        customs status (beyond the free stock: 409), the goods off the book without duty."""
        book = self.books[self.stocked_zone(data)]
        item, status, most = self.bucket(data, book)
        s = self.stock(book, item)
        q = self.quantity(data, item, most, "destroyed", over=self.rarely(data, "too much"))
        body = {
            "kind": "destruction",
            "account_book": book.book_no,
            "lines": [{"item_no": item, "quantity": str(q), "goods_status": status}],
            "reason": "spoiled",
        }
        taken = fifo(s.lots, self.lots, status, q)
        free = self.available_of(s, status)
        refusal = "insufficient_stock" if taken is None or q > free else None
        answer = self.call("officer", "/v1/movements", body, refused=refusal)
        if answer is None:
            return
        assert taken is not None
        self.expect_lots(answer, [(lot, item, -t) for lot, t in taken.items()])
        self.draw_lots(book, item, taken)
        s.flows["destroyed"] += q
        self.dirty_books.add(book.book_no)

    @rule(data=st.data(), increase=st.booleans(), named=st.booleans())
    def adjust(self, data: Any, increase: bool, named: bool) -> None:
        """A stocktake: more or less than booked, on a named lot or first-in first-out."""
        book = self.books[self.stocked_zone(data)]
        item, _, most = self.bucket(data, book)
        s = self.stock(book, item)
        magnitude = self.quantity(
            data, item, most, "difference", over=self.rarely(data, "too much")
        )
        delta = magnitude if increase else -magnitude
        body: dict[str, Any] = {
            "kind": "adjustment",
            "account_book": book.book_no,
            "item_no": item,
            "quantity_delta": str(delta),
            "reason": "stocktake",
        }
        lot, status, change = None, "bonded", {}
        if named and s.lots:
            lot = data.draw(st.sampled_from(list(s.lots)), label="lot")
            body["lot_id"] = lot
        refusal = None
        if lot is not None:
            status = self.lots[lot].status
            change = {lot: delta}
            if s.lots[lot] + delta < 0 or (
                not increase and self.available_of(s, status) < magnitude
            ):
                refusal = "insufficient_stock"
        elif increase:
            pass  # a new bonded lot
        elif not s.lots:
            refusal = "insufficient_stock"
        else:
            # Among the oldest lot's status only, never into what releases reserved.
            status = self.lots[next(iter(s.lots))].status
            taken = fifo(s.lots, self.lots, status, magnitude)
            if taken is None or self.available_of(s, status) < magnitude:
                refusal = "insufficient_stock"
            else:
                change = {k: -v for k, v in taken.items()}
        answer = self.call(book.owner, "/v1/movements", body, refused=refusal)
        if answer is None:
            return
        assert answer["kind"] == "adjustment"
        # Issue #18 item 3: a bonded decrease is flagged only where a lot lost at least 1% of
        # its quantity (and its duty reached the threshold: the unit tests pin that side).
        one_percent = any(-v >= self.lots[k].quantity_in / 100 for k, v in change.items())
        if increase or status != "bonded" or not one_percent:
            assert answer["flagged"] is False, (answer, change)
        if change:
            self.expect_lots(answer, [(k, item, v) for k, v in change.items()])
            for k, v in change.items():
                s.lots[k] += v
                if s.lots[k] == 0:
                    del s.lots[k]
                self.lots[k].on_hand += v
                self.dirty_lots.add(k)
        else:
            (new,) = self.expect_lots(answer, [(None, item, delta)])
            self.new_lot(new, book, item, status, delta, [])
        s.flows["adjusted"] += delta
        self.dirty_books.add(book.book_no)

    # -- checks after every step -------------------------------------------------------------

    @invariant()
    def the_ledger_agrees_with_the_model(self) -> None:
        if not hasattr(self, "heads"):
            return
        self.model_holds()
        books, lots = sorted(self.dirty_books), sorted(self.dirty_lots)
        answers = self.gets(
            [f"/v1/account-books/{b}" for b in books] + [f"/v1/lots/{lot}" for lot in lots]
        )
        for book, answer in zip(books, answers, strict=False):
            self.book_agrees(book, answer)
        for lot, answer in zip(lots, answers[len(books) :], strict=True):
            self.lot_agrees(lot, answer)
        self.dirty_books.clear()
        self.dirty_lots.clear()
        self.heads.append(self.ledger.log_state())
        self.busy = False

    def model_holds(self) -> None:
        """The model's own invariants, so that agreeing with it means something."""
        for (book_no, item), s in self.stocks.items():
            f = s.flows
            on_hand = sum(s.lots.values(), ZERO)
            # 6: conservation per item.
            assert on_hand == (
                f["admitted"]
                + f["produced"]
                + f["received"]
                - f["consumed"]
                - f["destroyed"]
                - f["exited"]
                - f["dispatched"]
                + f["adjusted"]
            ), (book_no, item, f)
            # 5: what left in transit arrives, is written off, or is still in transit.
            in_transit = sum((q for m in s.transit.values() for q in m.values()), ZERO)
            assert in_transit == f["dispatched"] - f["arrived"] - f["lost"] >= 0
            # 1: no negative stock, per lot and per status counting reservations.
            for lot, q in s.lots.items():
                assert q > 0 and self.lots[lot].on_hand == q
            for status in ("bonded", "domestic"):
                assert self.available_of(s, status) >= 0, (book_no, item, status)
        for d in self.decls.values():
            for x in d.lines.values():
                # 3 and 5: never beyond the line, never more received than dispatched.
                assert 0 <= x.received <= x.moved <= x.quantity

    def item_figures(self, book_no: str, item: int) -> tuple[Decimal, Decimal, Decimal]:
        s = self.stock(book_no, item)
        return (
            sum(s.lots.values(), ZERO),
            sum(s.reserved.values(), ZERO),
            sum((q for m in s.transit.values() for q in m.values()), ZERO),
        )

    def book_agrees(self, book_no: str, answer: Any) -> None:
        assert answer["book_no"] == book_no
        items = {x["item_no"]: x for x in answer["items"]}
        assert sorted(items) == list(ITEMS)
        for item, x in items.items():
            got = tuple(plain(x[k]) for k in ("on_hand", "pending_out", "in_transit_out"))
            assert got == self.item_figures(book_no, item), (book_no, item, x)
            assert plain(x["available"]) == got[0] - got[1] >= 0, x

    def lot_agrees(self, lot_id: str, lot: Any) -> None:
        m = self.lots[lot_id]
        assert lot["lot_id"] == lot_id
        got = (
            lot["zone"],
            lot["account_book"],
            lot["item_no"],
            lot["goods_status"],
            plain(lot["quantity_in"]),
            plain(lot["on_hand"]),
            lot["parents"],
            lot["children"],
        )
        want = (m.zone, m.book, m.item, m.status, m.quantity_in, m.on_hand, m.parents, m.children)
        assert got == want, (lot_id, got, want)
        # 10: a lot is in its book's zone, and descends from lots that existed before it.
        assert m.book in {b.book_no for b in self.every_book if b.zone == m.zone}
        assert m.on_hand >= 0
        for parent in m.parents:
            assert self.lots[parent].serial < m.serial

    def declaration_agrees(self, decl_id: str, got: Any) -> None:
        d = self.decls[decl_id]
        assert got["id"] == decl_id
        assert got["status"] == d.status, (got["status"], d.status)
        received = {x["line_no"]: plain(x["quantity_received"]) for x in got["lines"]}
        if DECLARATION_VIEW_MISSES_RECEIPTS and d.flow == "transfer":
            state = self.ledger.services.app.load(UUID(decl_id))
            received = {x.line_no: x.quantity_received for x in state.facts.lines}
        for x in got["lines"]:
            m = d.lines[x["line_no"]]
            moved = (plain(x["quantity_moved"]), received[x["line_no"]])
            assert moved == (m.moved, m.received), (decl_id, x)

    def inventory_agrees(self, answer: Any) -> None:
        """The inventory view of every book item equals the model, and system-wide what is on
        hand and in transit is what came in less what went out (6)."""
        rows = answer["items"]
        assert answer["next_cursor"] is None
        assert len(rows) == len(self.stocks)
        total = ZERO
        for x in rows:
            figures = tuple(plain(x[k]) for k in ("on_hand", "pending_out", "in_transit_out"))
            assert figures == self.item_figures(x["account_book"], x["item_no"]), x
            assert plain(x["available"]) == figures[0] - figures[1]
            total += figures[0] + figures[2]
        flows: Counter[str] = Counter()
        for s in self.stocks.values():
            flows.update(s.flows)
        came_in = flows["admitted"] + flows["produced"] + flows["adjusted"]
        went_out = flows["consumed"] + flows["exited"] + flows["lost"] + flows["destroyed"]
        assert total == came_in - went_out, (total, flows)

    # -- checks at the end of every example --------------------------------------------------

    def everything_agrees(self) -> None:
        """Every book, its entries adding up to its flows, every declaration, and the inventory
        (all lots: below, on the write side's states, where a lot the model does not know
        would show too)."""
        # Books the example never touched have no entries (the inventory shows them empty).
        books = [b for b in self.every_book if any(self.stock(b, item).flows for item in ITEMS)]
        decls = list(self.decls)
        answers = self.gets(
            ["/v1/inventory?limit=1000"]
            + [f"/v1/account-books/{b.book_no}/entries?limit=1000" for b in books]
            + [f"/v1/declarations/{d}" for d in decls]
        )
        self.inventory_agrees(answers[0])
        for book, answer in zip(books, answers[1:], strict=False):
            self.entries_agree(book, answer)
        for decl, answer in zip(decls, answers[1 + len(books) :], strict=True):
            self.declaration_agrees(decl, answer)

    def write_off_figures_add_up(self) -> None:
        """Issue #18: a write-off's figures (projections/write_offs.py) for any period of any
        touched book add up, per item and goods status, `opening + receipts - issues -
        consumed + produced - scrap + adjustments = closing_book`; a period ends where the next
        begins (closing = the next opening); and a period to the end closes on the model's
        balance of that status (the balance as of the period's end)."""
        svc = self.ledger.services
        head = svc.app.log.head()
        position = head.position if head else 0
        assert svc.runner.wait_for(position, 30), svc.runner.last_error
        far = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2999, 1, 1, tzinfo=UTC))
        for book in self.every_book:
            if not any(self.stock(book, item).flows for item in ITEMS):
                continue
            with svc.views.read() as cur:
                cur.execute(
                    "SELECT occurred_at_utc FROM view_book_entries WHERE book_no = ?"
                    " ORDER BY occurred_at_utc",
                    (book.book_no,),
                )
                times = [r["occurred_at_utc"] for r in cur.fetchall()]
            split = datetime.fromisoformat(times[len(times) // 2].replace("Z", "+00:00"))
            periods = [(far[0], split), (split, far[1]), far]
            answers = [
                svc.write_offs.figures(book.book_no, start=a, end=b, position=position)[0]
                for a, b in periods
            ]
            rows = [{(f.item_no, f.goods_status): f for f in a} for a in answers]
            for figures in answers:
                for f in figures:
                    flow = (
                        f.opening + f.receipts - f.issues - f.consumed + f.produced - f.scrap
                        + f.adjustments
                    )  # fmt: skip
                    assert flow == f.closing_book, f
                    assert f.by_products + f.scrap_made <= f.produced or f.produced < 0, f
            for key, f in rows[0].items():
                assert rows[1][key].opening == f.closing_book, (book.book_no, key)
            for item in ITEMS:
                s = self.stock(book, item)
                for status in ("bonded", "domestic"):
                    found = rows[2].get((item, status))
                    closing = found.closing_book if found is not None else ZERO
                    assert closing == self.on_hand_of(s, status), (book.book_no, item, status)

    def write_side_agrees(self, states: dict[Any, Any]) -> None:
        """Every lot, book item (its open lots in FIFO order) and declaration as the write
        side holds it equals the model."""
        lots = {str(k): v for k, v in states.items() if isinstance(v, LotState)}
        assert sorted(lots) == sorted(self.lots)
        for lot_id, m in self.lots.items():
            x = lots[lot_id]
            got = (x.zone, x.account_book, x.item_no, x.goods_status, x.quantity_in, x.on_hand)
            assert got == (m.zone, m.book, m.item, m.status, m.quantity_in, m.on_hand), lot_id
            assert [str(p) for p in x.parents] == m.parents, lot_id
            assert [str(c) for c in x.children] == m.children, lot_id
        stocks = {(v.book_no, v.item_no): v for v in states.values() if isinstance(v, ItemStock)}
        for (book_no, item), s in self.stocks.items():
            x = stocks.get((book_no, item))
            got = [(str(k), b.quantity, b.goods_status) for k, b in x.lots.items()] if x else []
            assert got == [(k, q, self.lots[k].status) for k, q in s.lots.items()], (book_no, item)
            figures = (x.on_hand, x.pending_out, x.in_transit_out) if x else (ZERO,) * 3
            assert figures == self.item_figures(book_no, item), (book_no, item)
        for decl_id, d in self.decls.items():
            x = states[UUID(decl_id)]
            assert x.status == d.status, decl_id
            got = {n.line_no: (n.quantity_moved, n.quantity_received) for n in x.facts.lines}
            assert got == {n: (m.moved, m.received) for n, m in d.lines.items()}, decl_id

    def entries_agree(self, book: Book, answer: Any) -> None:
        entries = answer["items"]
        assert answer["next_cursor"] is None  # an example makes far fewer than 1000
        kinds = {
            "receipt": "admitted",
            "production": "produced",
            "transfer_in": "received",
            "consumption": "consumed",
            "destruction": "destroyed",
            "by_product": "produced",
            "scrap": "produced",
            "issue": "exited",
            "transfer_out": "dispatched",
            "adjustment": "adjusted",
        }
        sums: dict[int, Counter[str]] = defaultdict(Counter)
        last: dict[int, Decimal] = {}
        for e in entries:
            q = plain(e["quantity"])
            flow = kinds[e["entry_kind"]]
            leaving = ("consumed", "exited", "dispatched", "destroyed")
            sums[e["item_no"]][flow] += -q if flow in leaving else q
            last[e["item_no"]] = plain(e["balance_after"])
            assert self.lots[e["lot_id"]].book == book.book_no, e
        for item in ITEMS:
            s = self.stock(book, item)
            want = {k: v for k, v in s.flows.items() if k in kinds.values() and v != 0}
            assert {k: v for k, v in sums[item].items() if v != 0} == want, (book, item)
            assert last.get(item, ZERO) == sum(s.lots.values(), ZERO)

    def replay_rebuilds_the_read_models(self) -> None:
        """8: a fresh replay of the whole log equals the live views, table by table."""
        svc = self.ledger.services
        head = svc.app.log.head()
        assert svc.runner.wait_for(head.position if head else 0, 30), svc.runner.last_error
        assert svc.runner.last_error is None
        with tempfile.TemporaryDirectory() as folder:
            fresh = SQLiteViews(f"{folder}/replay.sqlite3")
            try:
                read_models_runner("replay", fresh, svc.app).catch_up()
                tables = view_tables(svc.views)
                assert tables == view_tables(fresh)
                assert "view_book_entries" in tables
                for table in tables:
                    assert table_rows(svc.views, table) == table_rows(fresh, table), table
            finally:
                fresh.close()

    def replay_rebuilds_the_write_side(self) -> dict[Any, Any]:
        """8: folding each stream's decoded events gives the state the write side holds; and
        9: every event says who and when."""
        app = self.ledger.services.app
        streams: dict[Any, list[Any]] = defaultdict(list)
        after = 0
        while page := app.log.select_log(after, 1000):
            for entry in page:
                event = decode_entry(entry)
                assert event.actor.name and event.actor.role, event
                assert event.occurred_at.tzinfo is not None, event
                streams[event.originator_id].append(event)
            after = page[-1].position
        states = {}
        for stream, events in streams.items():
            assert [e.originator_version for e in events] == list(range(1, len(events) + 1))
            states[stream] = project(None, events)
            assert states[stream] == app.load(stream), stream
        return states

    def the_log_only_grew_and_verifies(self) -> None:
        """7: every head seen after a step is still in the log, unchanged; the chain verifies."""
        app = self.ledger.services.app
        report = verify(app.log)
        assert report.ok, report.failures
        hashes = {}
        after = 0
        while page := app.log.select_log(after, 1000):
            hashes.update({r.sequence: bytes(r.hash).hex() for r in page})
            after = page[-1].position
        for count, head in self.heads:
            assert head is None or hashes.get(count) == head, (count, head)
        assert list(hashes) == list(range(1, len(hashes) + 1))


def test_random_movements_keep_every_invariant(database_url):
    Movements.ledgers = Ledgers(database_url)
    kind = parse_database_url(database_url).kind
    Movements.TestCase.settings = settings(
        max_examples=EXAMPLES[kind],
        stateful_step_count=STEPS[kind],
        deadline=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.filter_too_much,
            HealthCheck.data_too_large,
        ],
    )
    try:
        Movements.TestCase().runTest()
    finally:
        Movements.ledgers.close()


# -- ledger bugs found by the machine, reduced to their smallest sequences (regression tests) -----


def _two_books(ledger: Ledger) -> tuple[Book, Book]:
    code = make_uscc()
    assert ledger.post("/v1/enterprises", "admin", enterprise_body(code)).status_code == 201
    name = f"ent-{code}"
    ledger.issue(name, "enterprise", enterprise=code)
    books = []
    for zone in ("XCBZ", "XEPZ"):
        book = Book(book_no=f"B{code[-8:]}{zone}", zone=zone, owner=name, uscc=code)
        r = ledger.post("/v1/account-books", "admin", book_body(book.book_no, code, zone))
        assert r.status_code == 201, r.text
        ledger.issue(f"gate-{zone}", "operator", zone=zone)
        books.append(book)
    return books[0], books[1]


def _declare(ledger: Ledger, book: Book, flow: str, lines: list[dict[str, Any]], **extra: Any):
    body = declaration_body(
        book.uscc,
        book.book_no,
        flow=flow,
        zone=book.zone,
        trade_mode=TRADE_MODE.get(flow, "5034"),
        country=COUNTRY.get(flow, "CN"),
        lines=lines,
        **extra,
    )
    return ledger.post("/v1/declarations", book.owner, body, key=new_key())


def _move(ledger: Ledger, who: str, kind: str, ref: str, *quantities: str | None):
    lines = [{"line_no": n, "quantity": q} for n, q in enumerate(quantities, 1) if q is not None]
    return ledger.post(
        "/v1/movements", who, {"kind": kind, "declaration": ref, "lines": lines}, key=new_key()
    )


def _stocked(ledger: Ledger, book: Book, bonded: str, domestic: str | None = None) -> None:
    """Laptops admitted into `book`: a bonded lot, and a domestic one."""
    for flow, quantity in (("first_line_in", bonded), ("second_line_in", domestic)):
        if quantity is None:
            continue
        x = line(1, quantity=quantity, origin_country=COUNTRY[flow])
        d = _declare(ledger, book, flow, [x]).json()
        assert _move(ledger, f"gate-{book.zone}", "gate_in", d["id"], quantity).status_code == 201


def _transfer(ledger: Ledger, source: Book, dest: Book, *lines: tuple[str, str]) -> dict[str, Any]:
    body_lines = [
        line(1, line_no=n, quantity=q, origin_country=None, goods_status=status)
        for n, (q, status) in enumerate(lines, 1)
    ]
    extra = {"destination_zone": dest.zone, "destination_account_book": dest.book_no}
    r = _declare(ledger, source, "transfer", body_lines, **extra)
    assert r.status_code == 201 and r.json()["status"] == "released", r.text
    return r.json()


def _explain(ledger: Ledger, book: Book, transfer: str, quantity: str):
    body = {
        "kind": "adjustment",
        "account_book": book.book_no,
        "item_no": 1,
        "quantity_delta": f"-{quantity}",
        "reason": "lost in transit",
        "explains": transfer,
    }
    return ledger.post("/v1/movements", book.owner, body, key=new_key())


def _laptops(ledger: Ledger, book: Book) -> tuple[str, str, str]:
    items = ledger.get(f"/v1/account-books/{book.book_no}", "officer").json()["items"]
    x = next(i for i in items if i["item_no"] == 1)
    return x["on_hand"], x["pending_out"], x["in_transit_out"]


def test_goods_written_off_in_transit_cannot_be_received_again(sqlite_url):
    """8 dispatched, 5 received, 2 explained as lost: 1 is still in transit, yet a receipt
    of 3 is accepted, and the 10 laptops admitted become 2 + 8 on hand plus 2 lost."""
    with running_ledger(sqlite_url) as ledger:
        source, dest = _two_books(ledger)
        _stocked(ledger, source, "10")
        d = _transfer(ledger, source, dest, ("8", "bonded"))
        assert _move(ledger, "gate-XCBZ", "transfer_dispatch", d["id"], "8").status_code == 201
        assert _move(ledger, "gate-XEPZ", "transfer_receipt", d["id"], "5").status_code == 201
        assert _explain(ledger, source, d["id"], "2").status_code == 201
        assert _laptops(ledger, source) == ("2", "0", "1")
        before = ledger.log_state()
        r = _move(ledger, "gate-XEPZ", "transfer_receipt", d["id"], "3")
        assert r.status_code == 409 and r.json()["rule"] == "exceeds_dispatched_quantity"
        assert ledger.log_state() == before


def test_a_receipt_after_the_whole_transit_was_written_off_is_a_conflict(sqlite_url):
    with running_ledger(sqlite_url) as ledger:
        source, dest = _two_books(ledger)
        _stocked(ledger, source, "3")
        d = _transfer(ledger, source, dest, ("3", "bonded"))
        assert _move(ledger, "gate-XCBZ", "transfer_dispatch", d["id"], "3").status_code == 201
        assert _explain(ledger, source, d["id"], "3").status_code == 201
        r = _move(ledger, "gate-XEPZ", "transfer_receipt", d["id"], "1")
        assert r.status_code == 409 and r.json()["rule"] == "exceeds_dispatched_quantity"


def test_a_reservation_holds_each_status_of_an_item_separately(sqlite_url):
    """2 bonded and 3 domestic laptops, an export of both lots released: nothing of either
    status is left, yet a second export of 1 bonded laptop is released too."""
    with running_ledger(sqlite_url) as ledger:
        book, _ = _two_books(ledger)
        _stocked(ledger, book, "2", "3")
        both = [
            line(1, line_no=1, quantity="2", origin_country=None, goods_status="bonded"),
            line(1, line_no=2, quantity="3", origin_country=None, goods_status="domestic"),
        ]
        r = _declare(ledger, book, "first_line_out", both)
        assert r.status_code == 201 and r.json()["status"] == "released", r.text
        before = ledger.log_state()
        one = [line(1, quantity="1", origin_country=None)]
        r = _declare(ledger, book, "first_line_out", one)
        assert r.status_code == 409 and r.json()["rule"] == "insufficient_stock", r.text
        assert ledger.log_state() == before


def test_a_received_lot_descends_only_from_lots_of_its_own_status(sqlite_url):
    """A transfer of 2 bonded and 3 domestic laptops (two lines) is dispatched; the receipt of
    the domestic line makes a domestic lot whose parents include the bonded lot."""
    with running_ledger(sqlite_url) as ledger:
        source, dest = _two_books(ledger)
        _stocked(ledger, source, "2", "3")
        d = _transfer(ledger, source, dest, ("2", "bonded"), ("3", "domestic"))
        out = _move(ledger, "gate-XCBZ", "transfer_dispatch", d["id"], "2", "3")
        assert out.status_code == 201, out.text
        got = _move(ledger, "gate-XEPZ", "transfer_receipt", d["id"], None, "3")
        assert got.status_code == 201, got.text
        lot = ledger.get(f"/v1/lots/{got.json()['lots'][0]['lot_id']}", "officer").json()
        assert lot["goods_status"] == "domestic"
        statuses = {
            ledger.get(f"/v1/lots/{p}", "officer").json()["goods_status"] for p in lot["parents"]
        }
        assert statuses == {"domestic"}, lot["parents"]


def test_a_transfer_declaration_shows_what_was_received(sqlite_url):
    with running_ledger(sqlite_url) as ledger:
        source, dest = _two_books(ledger)
        _stocked(ledger, source, "4")
        d = _transfer(ledger, source, dest, ("4", "bonded"))
        assert _move(ledger, "gate-XCBZ", "transfer_dispatch", d["id"], "4").status_code == 201
        assert _move(ledger, "gate-XEPZ", "transfer_receipt", d["id"], "3").status_code == 201
        got = ledger.get(f"/v1/declarations/{d['id']}", "officer").json()["lines"][0]
        assert (got["quantity_moved"], got["quantity_received"]) == ("4", "3")
