"""A1: two pilot areas on two PostgreSQL databases served by one deployment (a drill).

The deployment of docs/decisions/0036-pilot-areas.md: one configuration naming the areas and
their databases (`xian=postgresql://...,chengdu=postgresql://...`, the form of LEDGER_AREAS
there), from which one `customs-ledger serve` process per area is started, each with its own
LEDGER_DATABASE_URL (and zones file); the reverse proxy's routing by path prefix
(`/areas/{area}/...`) is stood in for by addressing each area's server directly.

Each repeat, in alternating order:
- **one area alone** (the reference): a new database, the Xi'an area's server, the whole load
  (P1b's: declarations POSTed over 16 connections);
- **two areas**: two new databases, Xi'an (the five default zones) and an illustrative second
  area (one zone, its own customs office, LEDGER_ZONES_FILE), one server each, the same
  enterprise registered in both with a key per area, goods admitted in each (a released
  import and its gate-in), then the load split evenly between the areas at the same time.
  Afterwards, per area: a trace of its own train finds its own lots and names none of the
  other's; the other area's train and lots are 404 there; and `customs-ledger verify` on each
  database checks that area's chain alone (timed).

Without a reachable PostgreSQL the benchmark fails with that reason (no figure is invented).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

from bench import loadgen, p1
from bench.common import ROOT, Config, Figure, Result, Server, free_port, median, progress
from bench.postgres import fresh_databases, unreachable

# The second area's one zone; its office code is illustrative, not a checked customs office.
OTHER_ZONE = {
    "code": "CDBZ",
    "name": "Chengdu Hi-tech Comprehensive Bonded Zone",
    "kind": "comprehensive_bonded_zone",
    "customs_office": "7901",
    "permits": [{"permit": "storage", "valid_from": "2018-01-01"}],
}


@dataclass(frozen=True)
class AreaSpec:
    name: str
    zone: str
    train: str  # the transport reference of the goods admitted, traced afterwards
    other_zones: bool  # the area has its own zones file (OTHER_ZONE)


XIAN = AreaSpec("xian", "XCBZ", "X8024-XIAN", other_zones=False)
CHENGDU = AreaSpec("chengdu", "CDBZ", "X9001-CHENGDU", other_zones=True)


def parse_areas(text: str) -> dict[str, str]:
    """`name=url,name=url` (the decision record's LEDGER_AREAS form) -> {name: url}."""
    areas: dict[str, str] = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        name, sep, url = part.partition("=")
        if not sep or not re.fullmatch(r"[a-z][a-z0-9-]{0,31}", name) or not url:
            raise ValueError(f"not name=url: {part!r}")
        if name in areas:
            raise ValueError(f"area {name!r} named twice")
        areas[name] = url
    return areas


# -- one area: its data, its server --------------------------------------------------------------


@dataclass
class Area:
    spec: AreaSpec
    url: str
    env: dict[str, str]  # the area's settings besides the database
    tokens: dict[str, str]  # role -> key
    body: bytes  # the declaration the load submits
    server: Server | None = None
    lots: tuple[str, ...] = ()
    declaration_no: str = ""


def other_zones_file(directory: Path) -> Path:
    """The second area's zones file (OTHER_ZONE alone), written in `directory`."""
    zones = directory / "chengdu-zones.json"
    zones.write_text(json.dumps([OTHER_ZONE]))
    return zones


def _files(directory: Path) -> dict[str, Path]:
    """The zones file of the second area and a risk rules file without random selection
    (every declaration of the drill is released at once, so goods can be admitted)."""
    from domain.risk_rules import DEFAULT_RULES

    zones = other_zones_file(directory)
    classes = {
        name: msgspec.structs.replace(policy, selection_rate=Decimal(0))
        for name, policy in DEFAULT_RULES.classes.items()
    }
    rules = directory / "risk-rules.json"
    rules.write_bytes(msgspec.json.encode(msgspec.structs.replace(DEFAULT_RULES, classes=classes)))
    return {"zones": zones, "rules": rules}


def prepare(spec: AreaSpec, url: str, files: dict[str, Path]) -> Area:
    """The area's enterprise (the same USCC in every area), its book in the area's zone and
    keys (enterprise, officer, the zone's gate), written through the write side."""
    from api.services import load_zones
    from domain.account_book import OpenAccountBook
    from domain.enterprise import RegisterEnterprise
    from domain.events import Actor
    from ledger.application import LedgerApplication
    from ledger.commands import Ledger
    from ledger.database import parse_database_url
    from ledger.keys import ApiKeys
    from tests.samples import declaration_body, make_uscc

    env = {"LEDGER_RISK_RULES_FILE": str(files["rules"])}
    if spec.other_zones:
        env["LEDGER_ZONES_FILE"] = str(files["zones"])
    app = LedgerApplication(parse_database_url(url))
    try:
        ledger = Ledger(app, load_zones(env.get("LEDGER_ZONES_FILE")))
        admin = Actor(name="bench-admin", role="admin")
        code = make_uscc(1)
        book_no = f"B{code[-8:]}{spec.zone}"
        ledger.register_enterprise(
            RegisterEnterprise(
                uscc=code,
                customs_code="6101340001",
                name="Silk Road Trading Co., Ltd.",
                credit_class="regular",
            ),
            admin,
        )
        ledger.open_account_book(
            msgspec.convert(
                {
                    "book_no": book_no,
                    "enterprise": code,
                    "zone": spec.zone,
                    "items": [
                        {
                            "item_no": 1,
                            "hs_code": "8471300000",
                            "name": "Laptop computers",
                            "unit": "C62",
                        }
                    ],
                },
                OpenAccountBook,
            ),
            admin,
        )
        keys = ApiKeys(app)
        tokens = {
            "enterprise": keys.issue(name=f"ent-{code}", role="enterprise", enterprise=code),
            "officer": keys.issue(name=f"officer-{spec.name}", role="officer"),
            "gate": keys.issue(name=f"gate-{spec.zone.lower()}", role="operator", zone=spec.zone),
        }
    finally:
        app.close()
    body = declaration_body(
        code,
        book_no,
        zone=spec.zone,
        transport={"mode": "rail", "reference": spec.train, "container": "TGHU1234567"},
    )
    return Area(spec, url, env, tokens, json.dumps(body, separators=(",", ":")).encode())


def start(areas: list[Area], directory: Path) -> None:
    """The deployment: one `customs-ledger serve` per area, each on its own database."""
    for area in areas:
        port = free_port()
        area.server = Server(
            f"customs-ledger serve (area {area.spec.name})",
            p1._ledger_argv(port),
            port,
            directory / f"server-{area.spec.name}.log",
            {"LEDGER_DATABASE_URL": area.url, "PYTHONUNBUFFERED": "1", **area.env},
        )
    for area in areas:
        assert area.server is not None
        area.server.wait_ready()


def stop(areas: list[Area]) -> None:
    for area in areas:
        if area.server is not None:
            area.server.stop()


def _call(area: Area, method: str, path: str, who: str, body: Any = None) -> tuple[int, Any]:
    assert area.server is not None
    headers = {"Authorization": f"Bearer {area.tokens[who]}"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
        headers["Idempotency-Key"] = str(uuid.uuid4())
    req = urllib.request.Request(area.server.base + path, data, headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def admit_goods(area: Area) -> None:
    """A released import of the area's train and its gate-in: the lots the trace will find."""
    status, d = _call(area, "POST", "/v1/declarations", "enterprise", json.loads(area.body))
    if status == 201 and d.get("status") == "document_review":  # a first value over the bound
        status, d = _call(area, "POST", f"/v1/declarations/{d['id']}/release", "officer", {})
    if status not in (200, 201) or d.get("status") != "released":
        raise RuntimeError(f"area {area.spec.name}: the import was not released: {status} {d}")
    lines = [{"line_no": x["line_no"], "quantity": x["quantity"]} for x in d["lines"]]
    movement = {"kind": "gate_in", "declaration": d["id"], "lines": lines}
    status, moved = _call(area, "POST", "/v1/movements", "gate", movement)
    if status != 201:
        raise RuntimeError(f"area {area.spec.name}: gate-in refused: {status} {moved}")
    area.lots = tuple(x["lot_id"] for x in moved["lots"])
    area.declaration_no = d["declaration_no"]


def check_isolation(areas: list[Area]) -> list[str]:
    """Per area: its train's trace finds its lots and names nothing of another area; another
    area's train and lots are unknown there. The problems found (none when isolated)."""
    problems: list[str] = []
    for area in areas:
        status, trace = _call(
            area, "GET", f"/v1/trace?ref={area.spec.train}&direction=downstream", "officer"
        )
        found = {x["lot_id"] for x in trace.get("lots", [])} if status == 200 else set()
        if found != set(area.lots):
            problems.append(f"{area.spec.name}: trace of {area.spec.train} is {status} {found}")
        text = json.dumps(trace)
        for other in (a for a in areas if a is not area):
            named = [x for x in (*other.lots, other.declaration_no) if x and x in text]
            if named:
                problems.append(f"{area.spec.name}'s trace names {other.spec.name}'s {named}")
            for ref in (other.spec.train, *other.lots):
                status, _ = _call(area, "GET", f"/v1/trace?ref={ref}", "officer")
                if status != 404:
                    problems.append(
                        f"{area.spec.name}: trace of {other.spec.name}'s {ref}: {status}"
                    )
    return problems


@dataclass(frozen=True)
class Verified:
    ok: bool
    events: int
    seconds: float
    head_hash: str


def verify(area: Area) -> Verified:
    """`customs-ledger verify` on the area's database alone (a process of its own)."""
    script = Path(sys.executable).with_name("customs-ledger")
    argv = [str(script)] if script.exists() else [sys.executable, "-m", "api.cli"]
    env = {"LEDGER_DATABASE_URL": area.url, "PYTHONPATH": str(ROOT), **area.env}
    t0 = time.monotonic()
    done = subprocess.run(
        [*argv, "verify"],
        cwd=ROOT,
        env={**_base_env(), **env},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    seconds = time.monotonic() - t0
    fields = dict(
        line.split(": ", 1) for line in done.stdout.splitlines() if ": " in line and line[0] != " "
    )
    return Verified(
        ok=done.returncode == 0 and fields.get("ok") == "true",
        events=int(fields.get("events_checked", "0")),
        seconds=seconds,
        head_hash=fields.get("head_hash", ""),
    )


def _base_env() -> dict[str, str]:
    import os

    # The command speaks English whatever the machine's locale (its output is parsed).
    return {
        k: v for k, v in os.environ.items() if k not in ("LANGUAGE", "LC_ALL", "LC_MESSAGES")
    } | {"LANG": "C.UTF-8"}


# -- the load --------------------------------------------------------------------------------------


def _load_together(
    generator: str, areas: list[Area], tag: str, seconds: float, connections: int, directory: Path
) -> list[loadgen.LoadResult]:
    """P1b's load on every area's server at once, the connections shared out evenly."""
    results: list[loadgen.LoadResult | BaseException] = [RuntimeError("no result")] * len(areas)
    share = max(1, connections // len(areas))

    def drive(i: int) -> None:
        own = directory / f"load-{areas[i].spec.name}"
        own.mkdir(exist_ok=True)
        server = areas[i].server
        assert server is not None
        try:
            results[i] = loadgen.run_load(
                generator,
                server.base + p1.PATH,
                areas[i].body,
                areas[i].tokens["enterprise"],
                f"{tag}{areas[i].spec.name}",
                seconds,
                share,
                own,
            )
        except BaseException as e:  # raised below, in the caller's thread
            results[i] = e

    threads = [threading.Thread(target=drive, args=(i,)) for i in range(len(areas))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    loads: list[loadgen.LoadResult] = []
    for x in results:
        if isinstance(x, BaseException):
            raise x
        loads.append(x)
    return loads


@dataclass
class Phase:
    loads: list[loadgen.LoadResult]
    verified: list[Verified]
    problems: list[str]


def run_phase(
    cfg: Config, generator: str, specs: list[AreaSpec], tag: str, directory: Path
) -> Phase:
    """The deployment of `specs` on new databases: prepared, started, goods admitted, warmed
    up, loaded together, checked for isolation, stopped, and each database verified."""
    directory.mkdir(parents=True)
    files = _files(directory)
    with fresh_databases([s.name for s in specs], "bench_area") as urls:
        areas = [prepare(s, urls[s.name], files) for s in specs]
        try:
            start(areas, directory)
            for area in areas:
                admit_goods(area)
            if cfg.warmup_seconds > 0:
                _load_together(
                    generator, areas, f"warm{tag}", cfg.warmup_seconds, cfg.connections, directory
                )
            loads = _load_together(
                generator, areas, f"run{tag}", cfg.load_seconds, cfg.connections, directory
            )
            problems = check_isolation(areas)
        finally:
            stop(areas)
        verified = [verify(a) for a in areas]
    heads = [v.head_hash for v in verified]
    if len(set(heads)) != len(heads):
        problems.append(f"two areas share a head hash: {heads}")
    for area, v in zip(areas, verified, strict=True):
        if not v.ok:
            problems.append(f"verify failed on {area.spec.name}'s database")
    return Phase(loads, verified, problems)


def pilot_areas(cfg: Config) -> Result:
    result = Result("A1", "two pilot areas on two PostgreSQL databases, one deployment")
    why = unreachable()
    if why is not None:
        result.error = why
        return result
    generator, description = loadgen.announce(cfg, "A1")
    alone: list[Phase] = []
    together: list[Phase] = []
    for r in range(cfg.repeats):
        order = ("alone", "together")
        for kind in order if r % 2 == 0 else order[::-1]:
            specs = [XIAN] if kind == "alone" else [XIAN, CHENGDU]
            phase = run_phase(
                cfg, generator, specs, f"{r}{kind[0]}", cfg.workdir / f"a1-{r}-{kind}"
            )
            (alone if kind == "alone" else together).append(phase)
            for spec, load, v in zip(specs, phase.loads, phase.verified, strict=True):
                loadgen.progress_load(
                    f"A1 repeat {r + 1}/{cfg.repeats} {kind}, area {spec.name}",
                    load,
                    f"; verify {v.events:,} events in {v.seconds:.1f} s, ok {v.ok}",
                )
            for problem in phase.problems:
                progress(f"A1 isolation problem: {problem}")
    reference = [p.loads[0].throughput for p in alone]
    what = "one area alone: its server on its database, the whole load (16 connections)"
    figures = [
        Figure(
            "A1.combined",
            "declarations/s, two areas together (sum of both servers, 8 connections each)",
            "/s",
            [sum(x.throughput for x in p.loads) for p in together],
            reference=reference,
            reference_what=what,
        ),
        *[
            Figure(
                f"A1.{spec.name}",
                f"declarations/s, area {spec.name} (two areas together)",
                "/s",
                [p.loads[i].throughput for p in together],
                reference=reference,
                reference_what=what,
            )
            for i, spec in enumerate((XIAN, CHENGDU))
        ],
        *[
            Figure(
                f"A1.{spec.name}.p99",
                f"p99 latency, area {spec.name} (two areas together)",
                "ms",
                [p.loads[i].p99_ms for p in together],
                reference=[p.loads[0].p99_ms for p in alone],
                reference_what="one area alone",
                higher_is_better=False,
            )
            for i, spec in enumerate((XIAN, CHENGDU))
        ],
        *[
            Figure(
                f"A1.verify.{spec.name}",
                f"`customs-ledger verify` of area {spec.name}'s database, whole command",
                "s",
                [p.verified[i].seconds for p in together],
                higher_is_better=False,
            )
            for i, spec in enumerate((XIAN, CHENGDU))
        ],
    ]
    events = [[v.events for v in p.verified] for p in together]
    problems = [x for p in (*alone, *together) for x in p.problems]
    errors = sum(x.errors for p in (*alone, *together) for x in p.loads)
    requests = sum(x.requests for p in (*alone, *together) for x in p.loads)
    result.notes += [
        f"Load generator: {description}.",
        "The deployment (docs/decisions/0036-pilot-areas.md): one `customs-ledger serve` per "
        "area, each with its own LEDGER_DATABASE_URL (a new database per area on the PostgreSQL "
        "server named by LEDGER_TEST_POSTGRES_URL, on this machine) and its own zones; the "
        "load addresses each area's server directly (a reverse proxy would route "
        "`/areas/{area}/...` to it). Each phase: the enterprise and its book written, the "
        "server started, one import released and admitted at the gate, a "
        f"{cfg.warmup_seconds:g} s warm-up, {cfg.load_seconds:g} s measured (P1b's body with "
        "the area's zone and train; two areas: the 16 connections split 8 and 8, at the same "
        "time), then the isolation checks and `verify` per database after the servers stop. "
        "The two phases alternate order from one repeat to the next. The PostgreSQL server "
        "and the load generator share the same 2 cores with the servers.",
        f"Events verified per area (xian, chengdu) in each repeat: {events}; every verify ok: "
        f"{all(v.ok for p in together for v in p.verified)}; the two areas' head hashes "
        "differ (each chain starts from its own first event).",
        "Isolation, per area after the load: the trace of its own train finds exactly its "
        "lots and names no lot or declaration of the other area; the other area's train and "
        f"lots are 404 there. Problems found: {'; '.join(problems) if problems else 'none'}.",
        f"Non-2xx or failed responses: {errors} of {requests}.",
    ]
    result.figures = figures
    if problems:
        result.error = f"the areas are not isolated: {problems[0]}"
    elif requests and errors / requests > 0.01:
        result.error = f"{errors} of {requests} requests failed: the figures are not valid"
    progress(
        f"A1: alone {median(reference):,.0f}/s; together "
        f"{median([sum(x.throughput for x in p.loads) for p in together]):,.0f}/s"
    )
    return result
