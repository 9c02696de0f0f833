"""The results as a plain-text table (stdout) and as docs/benchmarks.md with its plots.

`write` puts the page, its PNG plots (in `img/` beside it) and the run as JSON (the page's
name with `.json`) in place; `python -m bench.report docs/benchmarks.json` writes the page and
the plots again from that JSON, without running anything.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import re
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bench.common import Figure, Result, fmt

# The product's speed targets (the design card's quality bars, stated here so the page stands
# alone); `figures` names the figures that decide each one.
TARGETS: list[tuple[str, str, str, tuple[str, ...]]] = [
    (
        "P1",
        "declarations submitted over HTTP, durable, 16 connections, SQLite",
        ">= 1,500/s with p99 <= 20 ms, and >= 0.5 of the bare FastAPI + SQLite endpoint",
        ("P1b.throughput", "P1b.p99"),
    ),
    (
        "P1L",
        "P1 over HTTP with the rate limits on (every check made, rates out of the load's reach)",
        ">= 0.95 of P1 with them off, in the same run",
        ("P1L.throughput",),
    ),
    ("P2", "bulk load of events, SQLite", ">= 25,000 events/s", ("P2.import",)),
    (
        "P3",
        "full replay into every read model, SQLite",
        ">= 100,000 events/s (stretch 200,000); RSS <= 300 MB at 1M events",
        ("P3.replay", "P3.rss"),
    ),
    (
        "P4",
        "trace query, 20-hop chain, 1M events",
        "p99 <= 10 ms; p99(1M) / p99(10k) <= 1.5",
        ("P4.p99", "P4.growth"),
    ),
    (
        "P5",
        "account-book balance as of a past instant",
        "p99 <= 5 ms at 1M events",
        ("P5.p99",),
    ),
    ("P6", "`verify` over the whole log", ">= 300,000 events/s", ("P6.verify",)),
    (
        "P7",
        "the suite on PostgreSQL",
        "P1 >= 800/s; P3 >= 50,000 events/s; two servers >= 1.5x one, 0 `concurrent_update`",
        ("P7.p1", "P7.p3"),
    ),
    (
        "M1",
        "movements recorded over HTTP, 16 connections, SQLite",
        ">= 1,000/s with p99 <= 25 ms",
        ("M1.throughput", "M1.p99"),
    ),
    (
        "P8",
        "retail lists through `POST /v1/declarations/batch` (100 per batch)",
        ">= 10,000 lists/s; p99 per batch <= 100 ms",
        ("P8.throughput", "P8.p99"),
    ),
    (
        "P9",
        "receipts: commit to webhook delivery under the P1 load",
        "p99 <= 1 s; P1 with one subscription >= 0.9 of without",
        ("P9.p99", "P9.throughput"),
    ),
    (
        "I1",
        "spreadsheet imports: an XLSX of 10,000 retail lists through `POST /v1/imports`",
        "< 60 s from upload to done for the real run (issue #20)",
        ("I1.seconds",),
    ),
    (
        "P9a",
        "P9 with the views and the dispatcher in a `project --follow` process beside the server",
        "p99 <= 1 s; P1 with one subscription >= 0.9 of without (same setup)",
        ("P9.apart_p99", "P9.apart_throughput"),
    ),
    (
        "A1",
        "two pilot areas on two PostgreSQL databases served by one deployment (a drill)",
        "each area's log, chain and traces its own (checked; a leak fails the run); no speed"
        " target: both areas together against one area alone, in the same run",
        ("A1.combined",),
    ),
]


@dataclass
class Run:
    command: str
    started_at: dt.datetime
    seconds: float
    repeats: int
    quick: bool
    load_seconds: float
    warmup_seconds: float
    loadgen: str
    machine: dict[str, str]
    results: list[Result]
    # Benchmark name -> the later run (`--merge`) that measured its section, as the page says.
    merged: dict[str, str] = field(default_factory=dict)

    def figure(self, key: str) -> Figure | None:
        for r in self.results:
            for f in r.figures:
                if f.key == key:
                    return f
        return None


def status(f: Figure) -> str:
    met = f.met
    return "" if met is None else ("met" if met else "NOT MET")


def _row(f: Figure) -> list[str]:
    ratio = f.ratio
    return [
        f.key,
        f.what,
        fmt(f.value, f.unit),
        fmt(f.reference_value, f.unit) if f.reference else "",
        fmt(ratio, "x") if ratio is not None else "",
        f.target,
        status(f),
    ]


HEADER = ["figure", "what", "median", "reference", "ratio", "target", "status"]


def table(run: Run) -> str:
    rows = [HEADER]
    for r in run.results:
        if r.error:
            rows.append([r.name, f"FAILED: {r.error}", "", "", "", "", ""])
        rows += [_row(f) for f in r.figures]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    footer = f"medians of {run.repeats} repeat(s)"
    if run.loadgen:
        footer += f"; HTTP load: {run.loadgen}"
    return "\n".join([*lines, "", footer])


def _target_verdict(run: Run, figures: tuple[str, ...]) -> tuple[str, str]:
    if not figures:
        return "not measured yet (a later issue adds it)", "-"
    found = [run.figure(k) for k in figures]
    if any(f is None for f in found):
        return "not measured in this run", "-"
    present = [f for f in found if f is not None]
    parts = []
    for f in present:
        text = f"{f.what}: {fmt(f.value, f.unit)}"
        if f.ratio is not None:
            text += f" ({fmt(f.ratio, 'x')}x the reference)"
        parts.append(text)
    if all(f.check is None for f in present):
        return "; ".join(parts), "no target"
    met = all(f.met for f in present)
    return "; ".join(parts), "**met**" if met else "**not met**"


def _separate_runs(run: Run, others: Sequence[tuple[str, Run]]) -> list[str]:
    """The targets measured in a separate run and not in this one, with that run's command."""
    lines: list[str] = []
    for page, other in others:
        rows = [["#", "target", "that run", "verdict"]]
        for name, _what, target, figures in TARGETS:
            if figures and all(run.figure(k) is None for k in figures):
                got, verdict = _target_verdict(other, figures)
                if verdict != "-":
                    rows.append([name, target, got, verdict])
        if len(rows) > 1:
            when = other.started_at.strftime("%Y-%m-%d %H:%M UTC")
            lines += [
                f"Measured in a separate run ([{page}]({page})): `{other.command}`, {when}.",
                "",
                *_md_table(rows),
                "",
            ]
    return lines


def _md_table(rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows[1:]]
    return out


def markdown(
    run: Run,
    plots: Sequence[tuple[str, str]] = (),
    plot_note: str = "",
    others: Sequence[tuple[str, Run]] = (),
) -> str:
    """The page; `plots` are (caption, path relative to the page) of the images to show;
    `others` (page name, run) the separate runs beside it (`--only X --out
    docs/benchmarks-x.md`), whose targets the page lists with their own command and date."""
    when = run.started_at.strftime("%Y-%m-%d %H:%M UTC")
    mode = "quick (1 repeat, short phases)" if run.quick else f"{run.repeats} repeats"
    lines = [
        "# Benchmarks",
        "",
        "Generated by `bench/run.py` (`make bench`); every number below comes from the run",
        "described here. Re-run the command to refresh this file; do not edit it by hand.",
        "",
        "## The run",
        "",
        f"- Command: `{run.command}` (from the repository root)",
        f"- Date: {when}; took {run.seconds:.0f} s; {mode}, each figure the median of its repeats",
    ]
    if run.loadgen:
        lines.append(
            f"- HTTP load: {run.loadgen}; {run.warmup_seconds:g} s warm-up and "
            f"{run.load_seconds:g} s measured per phase, loopback only"
        )
    lines.append("- Store: SQLite in a new temporary directory under /tmp (WAL, synchronous=FULL)")
    if run.merged:
        lines.append(
            "- Sections measured in a later run and merged in (`--merge`; the rest of the page "
            "is the run above):"
        )
        for text in dict.fromkeys(run.merged.values()):
            names = ", ".join(n for n, t in run.merged.items() if t == text)
            lines.append(f"  - {names}: {text}")
    lines += [
        "",
        "## The machine",
        "",
        *_md_table([["", ""], *[[k, v] for k, v in run.machine.items()]]),
        "",
        "## Targets",
        "",
    ]
    rows = [["#", "what", "target", "this run", "verdict"]]
    for name, what, target, figures in TARGETS:
        got, verdict = _target_verdict(run, figures)
        elsewhere = [o for _, o in others if figures and o.figure(figures[0]) is not None]
        if verdict == "-" and figures and elsewhere:
            got = "measured in a separate run (below)"
        rows.append([name, what, target, got, verdict])
    lines += [*_md_table(rows), ""]
    lines += _separate_runs(run, others)
    if plots or plot_note:
        lines += ["## Plots", ""]
        if plot_note:
            lines += [plot_note, ""]
        for caption, path in plots:
            lines += [f"![{caption}]({path})", "", f"*{caption}*", ""]
    lines += ["## Results", ""]
    for r in run.results:
        lines += [f"### {r.name}: {r.title}", ""]
        if r.error:
            lines += [f"**Failed:** `{r.error}`", ""]
        if r.figures:
            rows = [["figure", "median", "repeats", "reference (median)", "ratio", "target"]]
            for f in r.figures:
                samples = ", ".join(fmt(s) for s in f.samples)
                ref = ""
                if f.reference:
                    each = ", ".join(fmt(s) for s in f.reference)
                    ref = f"{fmt(f.reference_value, f.unit)} ({each})"
                target = f"{f.target} - {status(f)}" if f.target and status(f) else f.target
                rows.append(
                    [
                        f.what,
                        fmt(f.value, f.unit),
                        samples,
                        ref,
                        fmt(f.ratio, "x") if f.ratio is not None else "",
                        target,
                    ]
                )
            lines += [*_md_table(rows), ""]
            refs = [f for f in r.figures if f.reference_what]
            if refs:
                lines += ["References:", ""]
                lines += [f"- {f.what}: {f.reference_what}." for f in refs]
                lines.append("")
        for note in r.notes:
            lines += [f"- {note}"]
        lines += ["", f"({r.name} took {r.seconds:.0f} s.)", ""]
    lines += [
        "## Method",
        "",
        "- The plots show the same medians as the tables: each bar a figure's median over its",
        "  repeats, whiskers from the smallest to the largest repeat, the grey bar its reference",
        "  measured in the same run, the dashed red line the target. `docs/benchmarks.json` holds",
        "  the run as data: `python -m bench.report docs/benchmarks.json` writes this page and",
        "  its plots again without running anything.",
        "- Ratios are median(figure) / median(reference); for latencies a ratio above 1 means",
        "  the ledger is slower. The references are measured in the same run, right before or",
        "  after the figure they qualify, so a slow or noisy machine moves both.",
        "- P1a calls `Ledger.submit_declaration` in-process, one thread, each call with its own",
        "  Idempotency-Key; it writes three events per declaration (the number issued, the",
        "  declaration, the idempotency record) in one transaction.",
        "- P1b starts `customs-ledger serve` (uvicorn, 127.0.0.1, a free port, projections",
        "  as `serve` runs them by default: in a child process, LEDGER_PROJECTIONS=process,",
        "  docs/decisions/0039; the environment's LEDGER_PROJECTIONS when set) on a new",
        "  database holding one enterprise, its account book and its key;",
        "  the reference is `bench/reference_server.py` under the same uvicorn. The load",
        "  generator posts the same body to both, with a unique Idempotency-Key per request.",
        "  Throughput counts 2xx responses only; any error rate above 1% invalidates P1b.",
        "  Every server here runs with the rate limits on, their rates raised out of the",
        "  load's reach (one client at full speed is what they stop: bench/common.py).",
        "- P1L runs two of P1b's ledger servers side by side, rate limits on (as in P1b) and",
        "  off (`LEDGER_RATE_*_PER_SECOND=0`, `LEDGER_AUTH_FAILURES_PER_MINUTE=0`), and loads",
        "  them in turn in 2 s slices; the ratio is what the limits cost, and the limiter's",
        "  own time per request is also measured in-process. Run alone: `python -m bench.run",
        "  --only P1L --out docs/benchmarks-limits.md`.",
        "- P4 builds its stores through the command layer as P5 does: one enterprise's goods",
        "  admitted in XCBZ go through 20 hops (transfers between its books in five zones:",
        "  declaration, dispatch, receipt; processing in XEPZ, simple processing in XXLC), each",
        "  a child lot, and leave by air; other enterprises' 20-item chains and P5's traffic",
        "  fill the log. The server's catch-up runner builds the views; `customs-ledger serve`",
        "  answers sequential `GET /v1/trace?ref=<the export's number>&direction=upstream` on",
        "  one keep-alive connection with an officer's key (the answer checked: 21 lots, 20",
        "  edges, the first admission); the reference is `GET /v1/zones` on the same",
        "  connection, and the same request to a second server on a 10k-event store with the",
        "  same chain, running at the same time, shows the growth. The three series are taken",
        "  in turn, request by request, so that a noisy machine moves them alike;",
        "  `TraceQueries.trace` is also timed in-process alone (both stores in turn).",
        "- P5 builds its stores through the command layer (`Ledger`, the calls the HTTP",
        "  routes make, each with an Idempotency-Key): 5 enterprises with a 20-item book, goods",
        "  imported and admitted, counted (stocktake adjustments), exported and let out; the",
        "  server's own catch-up runner then builds the views from empty. `customs-ledger",
        "  serve` answers sequential `GET /v1/account-books/{book}?as_of=T` (random books,",
        "  instants uniform over the traffic) on one keep-alive connection; the reference is",
        "  `GET /v1/zones` on the same connection, and the same requests on a 10k-event store",
        "  show whether the cost grows with the log.",
        "- M1 posts movements (stocktake adjustments and 20-line gate_in, in turn) to",
        "  `customs-ledger serve` with P1b's load generator settings and reference endpoint;",
        "  throughput counts 2xx responses only; any error rate above 1% invalidates M1.",
        "- M2 posts gate-pass passages (`POST /v1/gate-passes/{pass_no}/passage`, each pass",
        "  once, 20 checklist lines each) with M1's load generator settings and reference",
        "  endpoint, and counts the transactions a passage takes (in-process with the recorder",
        "  wrapped, and from the log under load). It is a benchmark of its own rather than a",
        "  third request of M1's mix because M1's figures and target are those of single",
        "  movements, which adding passages would change, while a passage is one write over a",
        "  whole pass with figures of its own.",
        "- P9 runs P1b's ledger server and load four times per repeat, each phase on a new",
        "  database: without a subscription, and with one officer's subscription to every",
        '  receipt (`["*"]`, made before the warm-up) pointing at a receiver the benchmark',
        "  runs on 127.0.0.1 (`LEDGER_WEBHOOK_ALLOWED_HOSTS=127.0.0.1` on all); then both again",
        "  with `LEDGER_PROJECTIONS=off` beside a `customs-ledger project --follow` process that",
        "  feeds the views and delivers (P9a: the second core at work). The receiver",
        "  answers 204 at once and records each delivery's arrival; a receipt's lag is its",
        "  arrival minus its `recorded_at`. After the load the benchmark waits (bounded) for",
        "  the backlog to drain (`/healthz`, `/metrics`), then checks the subscription's outbox",
        "  against what arrived and every signature (hmac, not the ledger's code). The lag",
        "  percentiles' reference is P1's request latency at the same percentile in the",
        "  phase without a subscription; the throughput's is that phase's throughput.",
        "- P6 builds the log through the chained recorder (`insert_events` in batches), so",
        "  `recorded_at` repeats within a batch, where a log written by single requests",
        "  changes it every three events; a log built one declaration per insert gave the",
        "  same `verify` rate within the noise.",
        "- A1 is the pilot-areas drill (docs/scaling.md, docs/decisions/0036): per repeat, one",
        "  area alone (a new PostgreSQL database, one `customs-ledger serve`, P1b's load) and",
        "  two areas (two new databases, one server each, Xi'an's zones and a second area's",
        "  own zone and office, the load split 8 and 8 at the same time), in alternating",
        "  order. After the load, per area: its train's trace holds its lots and nothing of",
        "  the other area, the other's train and lots are 404, and `customs-ledger verify`",
        "  checks its database alone (the whole command timed); a leak fails the run.",
        "",
    ]
    return "\n".join(lines)


# -- plots ------------------------------------------------------------------------------------

# The throughput figures each shown as a bar beside its reference, with its target.
THROUGHPUT = re.compile(
    r"P1a\.declarations|P1b\.throughput|P1L\.throughput|M1\.throughput|M2\.throughput|P2\.import|P3\.replay|P6\.verify"
    r"|P7\.p1(x\d+)?|P7\.p3|P9\.throughput|P9\.apart_throughput|A1\.combined"
)
# Latency percentiles: `<benchmark>.p50`, `.p90`, `.p99` (P1b, P4, P5, M1, P7.p1, ...).
PERCENTILE = re.compile(r"(.+)\.p(50|90|99)")
PERCENTILES = ("50", "90", "99")
LEDGER_COLOUR, REFERENCE_COLOUR, TARGET_COLOUR = "#1f77b4", "#bbbbbb", "#d62728"
LABEL_BOX = {"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1}


def bound(target: str) -> float | None:
    """The number a target's text starts with (`>= 1,500/s ...` -> 1500, `<= 20 ms` -> 20),
    None when it starts otherwise (`ratio <= 1.5`, no target)."""
    found = re.match(r"\s*(?:>=|<=)\s*(\d[\d,]*(?:\.\d+)?)", target)
    return float(found.group(1).replace(",", "")) if found else None


def throughput_figures(run: Run) -> list[Figure]:
    return [f for r in run.results for f in r.figures if THROUGHPUT.fullmatch(f.key)]


def _panel_title(run: Run, name: str, figure: Figure) -> str:
    """`P5: <the benchmark's title>` and what the percentile figure measures beyond
    `p99 latency`, wrapped to the panel."""
    title = next((r.title for r in run.results if any(f is figure for f in r.figures)), "")
    detail = re.sub(r"^p\d+ latency( of)?,?\s*", "", figure.what)
    text = f"{name}: {title}" + (f"; {detail}" if detail else "")
    return "\n".join(textwrap.wrap(text, 52)[:3])


def latency_groups(run: Run) -> dict[str, dict[str, Figure]]:
    """Each benchmark's percentile figures by percentile, in the run's order."""
    groups: dict[str, dict[str, Figure]] = {}
    for r in run.results:
        for f in r.figures:
            found = PERCENTILE.fullmatch(f.key)
            if found and f.samples and not all(math.isnan(x) for x in f.samples):
                groups.setdefault(found.group(1), {})[found.group(2)] = f
    return groups


def _spread(samples: Sequence[float], middle: float) -> list[list[float]]:
    """An error bar from the smallest to the largest repeat around the median."""
    finite = [x for x in samples if not math.isnan(x)]
    if len(finite) < 2:
        return [[0.0], [0.0]]
    return [[middle - min(finite)], [max(finite) - middle]]


def _machine_line(run: Run) -> str:
    m = run.machine
    return (
        f"{m.get('CPU', '?')}, {m.get('nproc', '?')} CPUs, {m.get('memory', '?')}; "
        f"Python {m.get('Python', '?')}; {run.started_at:%Y-%m-%d}; "
        f"medians of {run.repeats} repeat(s){' (quick run)' if run.quick else ''}"
    )


def _grid(plt: Any, count: int, height: float) -> tuple[Any, list[Any]]:
    cols = min(3, count)
    rows = -(-count // cols)
    # At least two panels wide: the title names the machine.
    fig, axes = plt.subplots(
        rows, cols, figsize=(4.4 * max(cols, 2), height * rows + 0.8), dpi=110, squeeze=False
    )
    flat = list(axes.flat)
    for ax in flat[count:]:
        ax.set_visible(False)
    for ax in flat[:count]:
        ax.yaxis.set_major_formatter(
            lambda value, _pos: f"{value:,.0f}" if value >= 10 else f"{value:g}"
        )
    return fig, flat[:count]


def plot_throughput(run: Run, path: Path) -> bool:
    """One panel per throughput figure: the ledger's median and its reference's (bars, the
    repeats' range as whiskers) and the target (dashed line). False when there is none."""
    figures = throughput_figures(run)
    if not figures:
        return False
    from matplotlib import pyplot as plt

    fig, axes = _grid(plt, len(figures), 3.4)
    for ax, f in zip(axes, figures, strict=True):
        names, values, spreads, colours = ["ledger"], [f.value], [f.samples], [LEDGER_COLOUR]
        if f.reference:
            names.append("reference")
            values.append(f.reference_value or 0.0)
            spreads.append(f.reference)
            colours.append(REFERENCE_COLOUR)
        for n, (value, samples, colour) in enumerate(zip(values, spreads, colours, strict=True)):
            ax.bar(n, value, color=colour, width=0.6, yerr=_spread(samples, value), capsize=4)
            ax.annotate(
                fmt(value),
                (n, value),
                ha="center",
                va="bottom",
                fontsize=8,
                xytext=(0, 2),
                textcoords="offset points",
            )
        target = bound(f.target)
        if target is not None:
            ax.axhline(target, color=TARGET_COLOUR, linestyle="--", linewidth=1.2)
            ax.annotate(
                f"target {fmt(target)}",
                (len(names) - 0.5, target),
                ha="right",
                va="bottom",
                fontsize=8,
                color=TARGET_COLOUR,
                bbox=LABEL_BOX,
            )
        ax.set_xticks(range(len(names)), names)
        ax.set_xlim(-0.6, len(names) - 0.4)
        ax.set_ylabel(f.unit)
        ax.set_ylim(0, max([*values, target or 0.0]) * 1.18 or 1.0)
        ax.set_title("\n".join([f.key, *textwrap.wrap(f.what, 52)[:2]]), fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(f"Throughput (higher is better)\n{_machine_line(run)}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def plot_latency(run: Run, path: Path) -> bool:
    """One panel per benchmark with latency percentiles: p50, p90 and p99 of the ledger and of
    its reference where it has one (bars, the repeats' range as whiskers), and the target
    (dashed line, on the percentile it bounds). False when there is none."""
    groups = latency_groups(run)
    if not groups:
        return False
    from matplotlib import pyplot as plt

    fig, axes = _grid(plt, len(groups), 3.6)
    width = 0.38
    for ax, (name, by_percentile) in zip(axes, groups.items(), strict=True):
        shown = [q for q in PERCENTILES if q in by_percentile]
        tallest = 0.0
        for n, q in enumerate(shown):
            f = by_percentile[q]
            bars = [(f.value, f.samples, LEDGER_COLOUR, -width / 2 if f.reference else 0.0)]
            if f.reference and f.reference_value is not None:
                bars.append((f.reference_value, f.reference, REFERENCE_COLOUR, width / 2))
            for value, samples, colour, shift in bars:
                ax.bar(
                    n + shift,
                    value,
                    width=width,
                    color=colour,
                    yerr=_spread(samples, value),
                    capsize=3,
                )
                tallest = max(tallest, value, max(samples, default=0.0))
            target = bound(f.target)
            if target is not None:
                ax.hlines(target, n - 0.45, n + 0.45, colors=TARGET_COLOUR, linestyles="--")
                ax.annotate(
                    f"target {fmt(target, 'ms')}",
                    (n, target),
                    ha="center",
                    va="bottom",
                    fontsize=8,
                    color=TARGET_COLOUR,
                    bbox=LABEL_BOX,
                )
                tallest = max(tallest, target)
        ax.set_xticks(range(len(shown)), [f"p{q}" for q in shown])
        ax.set_ylabel("ms")
        ax.set_ylim(0, tallest * 1.18 or 1.0)
        ax.set_title(_panel_title(run, name, by_percentile[shown[-1]]), fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    from matplotlib.patches import Patch

    fig.legend(
        handles=[
            Patch(color=LEDGER_COLOUR, label="ledger"),
            Patch(color=REFERENCE_COLOUR, label="reference (same run)"),
        ],
        loc="lower center",
        ncol=2,
        fontsize=8,
    )
    fig.suptitle(f"Latency percentiles (lower is better)\n{_machine_line(run)}", fontsize=10)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.savefig(path)
    plt.close(fig)
    return True


PLOTS = (
    (
        "bench-throughput.png",
        "Throughput: each figure's median beside its reference's",
        plot_throughput,
    ),
    (
        "bench-latency.png",
        "Latency percentiles: medians of p50, p90, p99 and their references'",
        plot_latency,
    ),
)


def write_plots(run: Run, directory: Path, prefix: str = "") -> tuple[list[tuple[str, Path]], str]:
    """The PNGs of this run in `directory`: (caption, path) of each written, and a note when
    none could be (matplotlib missing)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
    except ImportError:
        return [], "No plots: matplotlib is not installed (pip install matplotlib, re-run)."
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, caption, plot in PLOTS:
        path = directory / f"{prefix}{name}"
        if plot(run, path):
            written.append((caption, path))
    return written, ""


def write(run: Run, out: Path) -> list[Path]:
    """The page at `out`, its plots in `img/` beside it and the run as JSON beside it (the
    page's name with `.json`); returns the files written."""
    out.parent.mkdir(parents=True, exist_ok=True)
    # A separate run's page (docs/benchmarks-limits.md) keeps its plots apart from the main's.
    prefix = "" if out.stem == "benchmarks" else f"{out.stem}-"
    plots, note = write_plots(run, out.parent / "img", prefix)
    captions = [(caption, os.path.relpath(path, out.parent)) for caption, path in plots]
    others = [
        (page.with_suffix(".md").name, from_json(json.loads(page.read_text())))
        for page in sorted(out.parent.glob(f"{out.stem}-*.json"))
    ]
    out.write_text(markdown(run, captions, note, others))
    data = out.with_suffix(".json")
    data.write_text(json.dumps(to_json(run), indent=1) + "\n")
    return [out, data, *(path for _, path in plots)]


def merge(base: Run, new: Run) -> Run:
    """`base` (the page's run, read from its JSON) with `new`'s results in place of its own of
    the same names, a new one placed after the one before it in `new` (else at the end). The
    page's header stays `base`'s and names the later run for each section it measured."""
    when = new.started_at.strftime("%Y-%m-%d %H:%M UTC")
    text = (
        f"`{new.command}`, {when}, took {new.seconds:.0f} s, "
        f"{'quick' if new.quick else f'{new.repeats} repeats'}, git {new.machine.get('git', '?')}"
        + (f"; HTTP load: {new.loadgen}" if new.loadgen else "")
        + (f"; {new.machine['load']}" if "load" in new.machine else "")
    )
    results = list(base.results)
    merged = dict(base.merged)
    at = len(results)
    for r in new.results:
        r.notes.append(f"Measured in a later run than the page's and merged in: {text}.")
        found = next((i for i, old in enumerate(results) if old.name == r.name), None)
        if found is None:
            results.insert(at, r)
            at += 1
        else:
            results[found] = r
            at = found + 1
        merged[r.name] = text
    return replace(base, results=results, merged=merged)


# -- the run as data ----------------------------------------------------------------------------


def to_json(run: Run) -> dict[str, Any]:
    """Everything the page shows, the figures' verdicts included (their checks are code)."""
    return {
        "command": run.command,
        "started_at": run.started_at.isoformat(),
        "seconds": run.seconds,
        "repeats": run.repeats,
        "quick": run.quick,
        "load_seconds": run.load_seconds,
        "warmup_seconds": run.warmup_seconds,
        "loadgen": run.loadgen,
        "machine": run.machine,
        "merged": run.merged,
        "results": [
            {
                "name": r.name,
                "title": r.title,
                "error": r.error,
                "seconds": r.seconds,
                "notes": r.notes,
                "figures": [
                    {
                        "key": f.key,
                        "what": f.what,
                        "unit": f.unit,
                        "samples": f.samples,
                        "reference": f.reference,
                        "reference_what": f.reference_what,
                        "target": f.target,
                        "higher_is_better": f.higher_is_better,
                        "met": f.met,
                    }
                    for f in r.figures
                ],
            }
            for r in run.results
        ],
    }


def from_json(data: dict[str, Any]) -> Run:
    results = []
    for r in data["results"]:
        figures = []
        for f in r["figures"]:
            met = f.pop("met")
            check = None if met is None else (lambda _v, _ratio, met=met: bool(met))
            figures.append(Figure(**f, check=check))
        results.append(Result(r["name"], r["title"], figures, r["notes"], r["error"], r["seconds"]))
    return Run(
        command=data["command"],
        started_at=dt.datetime.fromisoformat(data["started_at"]),
        seconds=data["seconds"],
        repeats=data["repeats"],
        quick=data["quick"],
        load_seconds=data["load_seconds"],
        warmup_seconds=data["warmup_seconds"],
        loadgen=data["loadgen"],
        machine=data["machine"],
        results=results,
        merged=data.get("merged", {}),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.report",
        description="Write the benchmarks page and its plots again from a run's JSON.",
    )
    parser.add_argument("json", help="the run, as `write` saved it (docs/benchmarks.json)")
    parser.add_argument("--out", help="the page to write (default: the JSON's name with .md)")
    args = parser.parse_args(argv)
    source = Path(args.json)
    run = from_json(json.loads(source.read_text()))
    out = Path(args.out) if args.out else source.with_suffix(".md")
    for path in write(run, out):
        print(path, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
