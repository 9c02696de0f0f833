"""The wheel installs exactly the four packages and the console script."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_wheel_holds_exactly_domain_ledger_projections_and_api(tmp_path):
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--quiet",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    (wheel,) = tmp_path.glob("customs_ledger-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.startswith("customs_ledger-")}
    assert top == {"domain", "ledger", "projections", "api"}
    assert "ledger/store/sqlite.py" in names
    # Every module of the four packages, subpackages included (api/routes, projections/trace).
    sources = {
        path.relative_to(ROOT).as_posix()
        for package in ("domain", "ledger", "projections", "api")
        for path in (ROOT / package).rglob("*.py")
        if "__pycache__" not in path.parts
    }
    assert sources - set(names) == set()
    # The trace viewer's page, scripts and style sheet ship with `api` (package data).
    # The pages, their scripts and the vendored ECharts (with its licence); the zh-CN catalog.
    static = {
        p.relative_to(ROOT).as_posix() for p in (ROOT / "api" / "static").rglob("*") if p.is_file()
    }
    assert {"api/static/trace.html", "api/static/vendor/echarts/LICENSE"} <= static
    assert static <= set(names), static - set(names)
    assert "api/locale/zh_CN/LC_MESSAGES/messages.po" in names
    # The HS 2022 subheadings and the built-in tariff ship with `domain` (package data).
    assert {"domain/data/hs2022_subheadings.csv", "domain/data/tariff_2026.csv"} <= set(names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "customs-ledger = api.cli:main" in text
