"""The benchmarks page writer (bench/report.py): its plots, its JSON, and the page again."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from bench import report
from bench.common import Figure, Result

PNG = b"\x89PNG\r\n\x1a\n"


def _run() -> report.Run:
    p1b = Result(
        "P1b",
        "declarations over HTTP, 16 connections, SQLite",
        [
            Figure(
                "P1b.throughput",
                "declarations/s (2xx responses)",
                "/s",
                [690.0, 700.0, 650.0],
                reference=[2300.0, 2400.0, 2350.0],
                target=">= 1,500/s and >= 0.85 of the reference",
                check=lambda v, ratio: v >= 1500 and ratio is not None and ratio >= 0.85,
            ),
            Figure(
                "P1b.p99",
                "p99 latency",
                "ms",
                [79.0, 60.0, 90.0],
                [14.0, 13.0, 15.0],
                target="<= 20 ms",
                check=lambda v, _r: v <= 20,
                higher_is_better=False,
            ),
            Figure(
                "P1b.p50",
                "p50 latency",
                "ms",
                [21.0, 22.0, 21.5],
                [6.5, 6.7, 6.6],
                higher_is_better=False,
            ),
            Figure(
                "P1b.p90",
                "p90 latency",
                "ms",
                [40.0, 41.0, 39.0],
                [9.0, 9.5, 9.2],
                higher_is_better=False,
            ),
        ],
    )
    p6 = Result(
        "P6",
        "verify over the whole log",
        [
            Figure(
                "P6.verify",
                "verify throughput",
                "events/s",
                [480_000.0],
                [650_000.0],
                target=">= 300,000 events/s",
                check=lambda v, _r: v >= 300_000,
            ),
            Figure("P6.hash", "verify vs rows + link_hash", "events/s", [480_000.0], [90_000.0]),
        ],
    )
    return report.Run(
        command="python -m bench.run",
        started_at=dt.datetime(2026, 11, 28, 0, 49, tzinfo=dt.UTC),
        seconds=977.0,
        repeats=3,
        quick=False,
        load_seconds=10.0,
        warmup_seconds=2.0,
        loadgen="wrk",
        machine={"CPU": "AMD EPYC", "nproc": "2", "memory": "23.5 GiB", "Python": "3.11.7"},
        results=[p1b, p6],
    )


def test_targets_are_read_from_their_text():
    assert report.bound(">= 1,500/s and >= 0.85 of the reference") == 1500
    assert report.bound("<= 20 ms") == 20
    assert report.bound(">= 100,000 events/s (stretch 200,000) at 1M events") == 100_000
    assert report.bound("<= 1.5 ms") == 1.5
    assert report.bound("ratio <= 1.5") is None
    assert report.bound("") is None


def test_the_plots_pick_throughputs_and_percentiles():
    run = _run()
    assert [f.key for f in report.throughput_figures(run)] == ["P1b.throughput", "P6.verify"]
    groups = report.latency_groups(run)
    assert list(groups) == ["P1b"] and sorted(groups["P1b"]) == ["50", "90", "99"]


def test_write_puts_the_page_its_plots_and_its_json_beside_each_other(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "docs" / "benchmarks.md"
    written = report.write(_run(), out)
    images = [out.parent / "img" / "bench-throughput.png", out.parent / "img" / "bench-latency.png"]
    assert written == [out, out.with_suffix(".json"), *images]
    for image in images:
        assert image.read_bytes().startswith(PNG) and image.stat().st_size > 10_000
    page = out.read_text()
    assert (
        "![Throughput: each figure's median beside its reference's](img/bench-throughput.png)"
        in page
    )
    assert "](img/bench-latency.png)" in page
    assert "| P1b.p90 |" not in page and "| p90 latency | 40.00 ms |" in page

    # The page again from the JSON alone: the same text, verdicts included.
    again = tmp_path / "again" / "benchmarks.md"
    (again.parent).mkdir()
    again.with_suffix(".json").write_text(out.with_suffix(".json").read_text())
    assert report.main([str(again.with_suffix(".json"))]) == 0
    assert again.read_text() == page
    data = json.loads(out.with_suffix(".json").read_text())
    verdicts = {f["key"]: f["met"] for r in data["results"] for f in r["figures"]}
    assert verdicts["P1b.throughput"] is False and verdicts["P6.verify"] is True
    assert verdicts["P1b.p50"] is None


def test_a_separate_run_has_its_own_plots_and_the_main_page_lists_its_targets(tmp_path):
    """`bench.run --only P1L --out docs/benchmarks-limits.md`: its plots do not replace the
    main page's, and the main page shows the targets it measured, with its command."""
    pytest.importorskip("matplotlib")
    main = _run()
    limits = report.Run(
        **{**main.__dict__, "command": "python -m bench.run --only P1L", "results": []}
    )
    limits.results = [
        Result(
            "P1L",
            "P1b with the rate limits on and off",
            [
                Figure(
                    "P1L.throughput",
                    "declarations/s, rate limits on",
                    "/s",
                    [290.0, 300.0],
                    reference=[300.0, 305.0],
                    target=">= 0.95 of the limits off",
                    check=lambda _v, ratio: ratio is not None and ratio >= 0.95,
                )
            ],
        )
    ]
    docs = tmp_path / "docs"
    separate = report.write(limits, docs / "benchmarks-limits.md")
    assert docs / "img" / "benchmarks-limits-bench-throughput.png" in separate
    written = report.write(main, docs / "benchmarks.md")
    assert docs / "img" / "bench-throughput.png" in written
    page = (docs / "benchmarks.md").read_text()
    assert "[benchmarks-limits.md](benchmarks-limits.md)" in page
    assert "`python -m bench.run --only P1L`" in page
    assert "| P1L | >= 0.95 of P1 with them off, in the same run |" in page
    assert "(0.98x the reference) | **met** |" in page
    assert "| measured in a separate run (below) | - |" in page
