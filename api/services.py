"""The composition root: builds the write side, the read side and the keys from settings."""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import msgspec

from api.dispatch import Dispatcher, Schedule
from api.dispatch import create_tables as create_dispatch_tables
from api.feeder import Feeder, WakeSender
from api.reference_watch import ReferenceWatch
from api.settings import Settings
from domain.assessment import ClearanceRules
from domain.duties import DutyTables
from domain.duty_tables import DEFAULT_TABLES
from domain.events import DomainEvent
from domain.hs_nomenclature import subheadings_under
from domain.positive_list import builtin_positive_list
from domain.reference import DEFAULT_ZONES, Zone
from domain.reference_rules import builtin_publications
from domain.risk import RiskRules
from domain.risk_rules import DEFAULT_RULES
from ledger.application import LedgerApplication
from ledger.buyer_keys import BuyerKeys
from ledger.commands import Ledger
from ledger.database import Database, parse_database_url, schema_creation_lock
from ledger.key_audit import KeyCheck
from ledger.keys import ApiKeys
from ledger.mapper import decode_event
from ledger.reference import BUILTIN_RULES_SINCE
from ledger.selection_seed import SelectionSeed
from ledger.watch import TamperWatch
from projections.declarations import DeclarationQueries
from projections.documents import DocumentQueries
from projections.enterprises import EnterpriseQueries
from projections.folding import LogEntry
from projections.inventory.queries import InventoryQueries
from projections.read_models import read_model_projections
from projections.runner import DEFAULT_BATCH, CatchUpRunner, LogSource
from projections.stats import StatsQueries
from projections.store import PostgresViews, SQLiteViews, ViewStore
from projections.tax_bills import TaxBillQueries
from projections.trace.queries import TraceQueries
from projections.write_offs import WriteOffQueries

log = logging.getLogger("customs_ledger")


class ReferenceFileError(ValueError):
    """A reference-data file named by a setting (LEDGER_*_FILE) cannot be used."""


class ZonesFileError(ReferenceFileError):
    """LEDGER_ZONES_FILE cannot be used."""


class RiskRulesFileError(ReferenceFileError):
    """LEDGER_RISK_RULES_FILE cannot be used."""


class DutyTablesFileError(ReferenceFileError):
    """LEDGER_DUTY_TABLES_FILE cannot be used."""


def load_zones(path: str | None) -> dict[str, Zone]:
    """The five Xi'an defaults, or the zones of a JSON file (a list of zones, dated permits)."""
    if path is None:
        return {z.code: z for z in DEFAULT_ZONES}
    try:
        zones = msgspec.json.decode(Path(path).read_bytes(), type=list[Zone])
    except (OSError, msgspec.DecodeError) as e:
        raise ZonesFileError(f"LEDGER_ZONES_FILE {path}: {e}") from e
    for z in zones:
        if not (len(z.customs_office) == 4 and z.customs_office.isdigit()):
            raise ZonesFileError(f"zone {z.code}: customs_office must be 4 digits")
    return {z.code: z for z in zones}


T = TypeVar("T")


def load_data_file(
    variable: str, path: str | None, cls: type[T], default: T, error: type[ReferenceFileError]
) -> T:
    """Reference data from a JSON file named by an environment variable, or the default;
    `error` is raised (naming the variable and the file) when the file cannot be used."""
    if path is None:
        return default
    try:
        return msgspec.json.decode(Path(path).read_bytes(), type=cls)
    except (OSError, msgspec.DecodeError) as e:
        raise error(f"{variable} {path}: {e}") from e


def load_risk_rules(path: str | None) -> RiskRules:
    """The default rules or those of LEDGER_RISK_RULES_FILE, which must carry no seed: the
    seed is the ledger's secret (ledger/selection_seed.py), never in a file someone copies."""
    rules = load_data_file(
        "LEDGER_RISK_RULES_FILE", path, RiskRules, DEFAULT_RULES, RiskRulesFileError
    )
    if rules.seed:
        raise RiskRulesFileError(
            f'LEDGER_RISK_RULES_FILE {path}: remove its "seed": the selection seed is made'
            " on first start and kept in the database (`customs-ledger risk rotate-seed`"
            " replaces it); a seed in a file would be ignored, so it is refused"
        )
    return rules


def load_clearance_rules(settings: Settings) -> ClearanceRules:
    return ClearanceRules(
        risk=load_risk_rules(settings.risk_rules_file),
        duties=load_data_file(
            "LEDGER_DUTY_TABLES_FILE",
            settings.duty_tables_file,
            DutyTables,
            DEFAULT_TABLES,
            DutyTablesFileError,
        ),
    )


def publish_builtins(ledger: Ledger, settings: Settings) -> None:
    """A fresh ledger publishes its configured tables as version 1 (actor `system`), so it can
    assess at once and an auditor sees where every figure came from; a table file that differs
    from what the log has published is named in a warning (the log decides)."""
    try:
        ledger.publish_builtins(builtin_positive_list(), subheadings_under)
    except Exception as e:  # a server still starts (an altered log: the tamper watch says)
        log.warning(
            "reference data: the configured tables were not published at this start (%s: %s);"
            " decisions use them as configured until they are",
            type(e).__name__,
            e,
        )
        return
    files = {
        "tariff": settings.duty_tables_file,
        "exchange-rates": settings.duty_tables_file,
        "risk-rules": settings.risk_rules_file,
    }
    bodies = builtin_publications(ledger.rules, BUILTIN_RULES_SINCE, subheadings_under)
    for kind, path in files.items():
        if path is not None and ledger.differs_from_published(kind, bodies[kind]):  # type: ignore[arg-type]
            log.warning(
                "reference data: %s has %s figures the log has not published; the log's"
                " publications decide (publish with `customs-ledger reference load %s`)",
                path,
                kind,
                kind,
            )


def decode_entry(entry: LogEntry) -> DomainEvent:
    return decode_event(entry.topic, entry.stream_id, entry.version, entry.state)


def read_models_runner(
    name: str,
    views: ViewStore,
    app: LedgerApplication,
    batch_size: int = DEFAULT_BATCH,
    source: LogSource | None = None,
    indexes: bool = True,
    exclude: Collection[str] = (),
    only: Collection[str] | None = None,
) -> CatchUpRunner:
    """A runner feeding every read model (but those named in `exclude`, or only those in
    `only`) from the application's log, or from `source` (a bounded or filtered view of it:
    replays). Each projection reads only its own tables, so any subset can run on its own."""
    projections = [
        p
        for p in read_model_projections()
        if p.name not in exclude and (only is None or p.name in only)
    ]
    return CatchUpRunner(
        name,
        views,
        projections,
        source=source or (lambda after, limit: app.log.select_log(after, limit)),
        decode=decode_entry,
        batch_size=batch_size,
        indexes=indexes,
    )


def open_vault(settings: Settings, app: LedgerApplication) -> BuyerKeys:
    """The buyers' key store beside the log (ledger/buyer_keys.py)."""
    datastore = app.factory.datastore  # type: ignore[attr-defined]  # both factories have one
    return BuyerKeys.beside(app.database, datastore, master_key_file=settings.privacy_key_file)


def open_admin_ledger(settings: Settings) -> Ledger:
    """The write side for an admin's command (`privacy erase-buyer`, `reference load`): the
    application, the zones and the buyers' key store; `close_admin_ledger` closes them. Raises
    KeyStoreError (the application closed) when the key store cannot be opened."""
    app = LedgerApplication(parse_database_url(settings.database_url))
    try:
        vault = open_vault(settings, app)
    except BaseException:
        app.close()
        raise
    return Ledger(app, load_zones(settings.zones_file), vault=vault)


def close_admin_ledger(ledger: Ledger) -> None:
    try:
        ledger.vault.close()
    finally:
        ledger.app.close()


def open_views(db: Database) -> ViewStore:
    if db.kind == "sqlite":
        path = db.path
        stem = path[: -len(".sqlite3")] if path.endswith(".sqlite3") else path
        return SQLiteViews(stem + ".views.sqlite3")
    from psycopg.conninfo import make_conninfo

    # Quoted by psycopg (a password with a space or a quote); an empty password is left out.
    parts = {"host": db.host, "port": db.port, "user": db.user, "dbname": db.dbname}
    parts["password"] = db.password
    conninfo = make_conninfo(**{k: v for k, v in parts.items() if v})
    return PostgresViews(conninfo, schema=db.schema, pool_size=db.views_pool_size)


class Slots:
    """A count of things held at once, never more than `limit` (thread-safe)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0
        self.lock = threading.Lock()

    def take(self) -> bool:
        with self.lock:
            if self.held >= self.limit:
                return False
            self.held += 1
            return True

    def give_back(self) -> None:
        with self.lock:
            self.held -= 1


@dataclass
class Services:
    settings: Settings
    database: Database
    app: LedgerApplication
    ledger: Ledger
    keys: ApiKeys
    views: ViewStore
    runner: CatchUpRunner
    declarations: DeclarationQueries
    enterprises: EnterpriseQueries
    stats: StatsQueries
    inventory: InventoryQueries
    trace: TraceQueries
    documents: DocumentQueries
    tax_bills: TaxBillQueries
    write_offs: WriteOffQueries
    vault: BuyerKeys
    dispatcher: Dispatcher
    watch: TamperWatch | None = None
    # The live streams this process serves now (GET /v1/stream), at most so many.
    streams: Slots = field(init=False)
    # The reference data's outlook (/healthz `reference`, the days-left gauge, a daily warning).
    reference: ReferenceWatch = field(init=False)
    # LEDGER_PROJECTIONS=process: the child that feeds the views, when this process supervises
    # it (`serve` with one process; with --workers N the parent does and this stays None).
    feeder: Feeder | None = None
    # ... and the child's wake-ups after each write (api/feeder.py).
    waker: WakeSender | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.streams = Slots(self.settings.stream_max_clients)
        if self.settings.projections == "process" and self.settings.projections_wake:
            self.waker = WakeSender(self.settings.projections_wake)
        self.reference = ReferenceWatch(
            self.ledger.published_tables, positive_list_rows=self.ledger.positive_list_rows
        )

    @classmethod
    def build(cls, settings: Settings, rules: ClearanceRules | None = None) -> Services:
        database = parse_database_url(settings.database_url)
        app = LedgerApplication(database)
        zones = load_zones(settings.zones_file)
        views = open_views(database)
        # The runner creates the view tables; on PostgreSQL one process at a time does.
        creating = (
            schema_creation_lock(database, "views")
            if database.kind == "postgresql"
            else nullcontext()
        )
        with creating:
            runner = read_models_runner("read-models", views, app)
            create_dispatch_tables(views)
        if isinstance(views, PostgresViews):
            # Several processes may run this runner (servers, `project --follow`): one feeds.
            runner.leader = views.leader(runner.name)
        keys = ApiKeys(app)
        watch = (
            TamperWatch(
                app.log,
                period=settings.verify_seconds,
                digest_file=settings.digest_file,
                keys=KeyCheck(keys.table, app.log),
            )
            if settings.verify_seconds > 0
            else None
        )
        if watch is not None:
            keys.on_tampered = watch.raise_alarm  # a request with a key row the log disowns
        vault = open_vault(settings, app)
        seeds = SelectionSeed.beside(database, app.factory.datastore)  # type: ignore[attr-defined]
        rules = rules or load_clearance_rules(settings)
        ledger = Ledger(app, zones, rules=rules, vault=vault, seeds=seeds)
        dispatcher = Dispatcher(
            views,
            ledger.subscription_secret,
            settings.webhook_allowed_hosts,
            schedule=Schedule(
                retry_base=settings.webhook_retry_base_seconds,
                give_up=settings.webhook_give_up_seconds,
            ),
            active=runner.leads,
        )
        return cls(
            settings=settings,
            database=database,
            app=app,
            ledger=ledger,
            keys=keys,
            views=views,
            runner=runner,
            declarations=DeclarationQueries(views),
            enterprises=EnterpriseQueries(views),
            stats=StatsQueries(views),
            inventory=InventoryQueries(views),
            trace=TraceQueries(views),
            documents=DocumentQueries(views),
            tax_bills=TaxBillQueries(views),
            write_offs=WriteOffQueries(views),
            vault=vault,
            dispatcher=dispatcher,
            watch=watch,
        )

    def start(self) -> None:
        publish_builtins(self.ledger, self.settings)
        # "process": the child `serve` supervises feeds the views and delivers (api/feeder.py);
        # "off": `project --follow` processes do. Reads then wait on the views' tracked
        # position in the database (CatchUpRunner.wait_for), bounded by the read wait.
        if self.settings.projections == "inline":
            self.runner.start()
            # Receipts are delivered where the views are fed: on PostgreSQL by the process that
            # leads (its runner holds the views' lock), so one dispatcher is active.
            self.dispatcher.start()
        if self.watch is not None:
            self.watch.start()

    @property
    def alarm(self) -> str | None:
        """Why this server refuses writes: the tamper watch's alarm (None: all is well)."""
        return self.watch.alarm if self.watch is not None else None

    def wrote(self, position: int | None) -> None:
        """A write happened: wake the runner so the views follow within milliseconds."""
        if position is not None:
            self.runner.wake()
            if self.waker is not None:
                self.waker.wake()

    def close(self) -> None:
        if self.watch is not None:
            self.watch.stop()
        self.dispatcher.stop()
        self.runner.stop()
        if self.waker is not None:
            self.waker.close()
        self.views.close()
        self.vault.close()
        self.ledger.seeds.close()
        self.app.close()
