"""The command line in the locale's language (api/i18n.py `say`, issue #20): every line a
command writes with `say` has its Chinese with the same fields, a line is looked up by its
exact template, and the ledger's own words that `verify` quotes are in the catalog too."""

# ruff: noqa: RUF001

from __future__ import annotations

import re
import string
from collections.abc import Iterator
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from api import i18n
from api.i18n import say
from api.i18n_extract import lines, not_literal
from ledger import audit
from ledger.chain import GENESIS
from ledger.store import LogRecord

ROOT = Path(__file__).resolve().parents[2]
CATALOG = ROOT / "api" / "locale" / "zh_CN" / "LC_MESSAGES" / "messages.po"
CJK = re.compile(r"[\u4e00-\u9fff]")
COMMANDS = ("api/cli.py", "api/cli_replay.py", "api/cli_reference.py", "api/cli_import.py")


@pytest.fixture
def chinese() -> Iterator[None]:
    i18n.set_command_language("zh-CN")
    try:
        yield
    finally:
        i18n.set_command_language("en")


def _sources() -> Iterator[Path]:
    for package in ("domain", "ledger", "projections", "api"):
        yield from sorted((ROOT / package).rglob("*.py"))


def _fields(template: str) -> set[tuple[str, str | None, str | None]]:
    """A `str.format` template's fields: name, conversion, format spec."""
    return {
        (name, conversion, spec)
        for _, name, spec, conversion in string.Formatter().parse(template)
        if name is not None
    }


def test_every_line_a_command_says_is_a_literal_the_extraction_reads():
    calls = {str(p.relative_to(ROOT)): list(not_literal(p.read_text("utf-8"))) for p in _sources()}
    assert not {path: found for path, found in calls.items() if found}


def test_every_line_has_its_chinese_with_the_same_fields():
    with CATALOG.open("rb") as f:
        entries = {m.id: m.string for m in read_po(f) if m.context == i18n.CLI_CONTEXT}
    said = {t: f"{p.relative_to(ROOT)}:{n}" for p in _sources() for n, t in lines(p.read_text())}
    # trace and verify, replay, reference load, import
    assert {where.partition(":")[0] for where in said.values()} >= set(COMMANDS)
    missing = sorted(where + ": " + t for t, where in said.items() if not entries.get(t))
    assert not missing, "untranslated (run `make messages` and fill the catalog):\n" + "\n".join(
        missing
    )
    for template, chinese in entries.items():
        if not chinese:
            continue
        assert _fields(template) == _fields(chinese), template
        assert CJK.search(chinese), template
        # Only the placeholders differ between two renderings: no stray brace or field.
        values = {name: "X" for name, _, _ in _fields(template)}
        numbers = {name: 1234.5 for name, _, spec in _fields(template) if spec and spec[-1] in "f,"}
        chinese.format(**{**values, **numbers})


def test_a_line_is_english_as_written_and_chinese_from_the_catalog(chinese):
    i18n.set_command_language("en")
    assert say("no goods found for {ref!r}", ref="X-1") == "no goods found for 'X-1'"
    assert say("verified {n:,} events ({rate:,.0f}/s)", n=12345, rate=999.6) == (
        "verified 12,345 events (1,000/s)"
    )
    i18n.set_command_language("zh-CN")
    assert say("no goods found for {ref!r}", ref="X-1") == "未找到与 'X-1' 相关的货物"
    assert say("verified {n:,} events ({rate:,.0f}/s)", n=12345, rate=999.6) == (
        "已校验 12,345 个事件（1,000 个/秒）"
    )
    # A template the catalog does not have is written in English, never refused.
    assert say("no such line {x}", x=1) == "no such line 1"


def test_a_message_of_the_ledger_inside_a_line_is_translated_and_data_is_not(chinese):
    detail = "the file is not UTF-8 text"
    assert say("error: {detail}", detail=detail) == "错误：文件不是 UTF-8 文本"
    # Another name is data: quoted as it is (as the server's text `import` quotes, already in
    # the language it asked for).
    assert say("no goods found for {ref!r}", ref=detail) == f"未找到与 {detail!r} 相关的货物"


def _record(sequence: int, recorded_at: str, hash_: bytes = b"\x01" * 32) -> LogRecord:
    return LogRecord(sequence, sequence, "0" * 8 + "-0000-0000-0000-" + "0" * 12, 1, "T", b"{}",
                     recorded_at, hash_)  # fmt: skip


def _failures() -> list[audit.Failure]:
    """One of each failure `verify` can report about the chain and a digest."""
    walk = audit.ChainWalk(None)
    walk.last_time = "2026-12-01T00:00:00+00:00"
    walk.check_row(_record(3, "2026-11-30T00:00:00+00:00"))  # gap, altered, earlier
    walk.check_row(LogRecord(4, 4, "x", 1, "T", b"{}", None, b""))  # type: ignore[arg-type]
    beyond = audit.ChainWalk((9, GENESIS))
    beyond.check_anchor_reached(5)
    missing = audit.ChainWalk((2, GENESIS))
    missing.check_anchor_reached(5)
    rewritten = audit.ChainWalk((1, GENESIS))
    rewritten.check_row(_record(1, "2026-12-01T00:00:00+00:00"))
    return walk.failures + beyond.failures + missing.failures + rewritten.failures


def test_the_ledgers_words_that_verify_prints_are_in_chinese(chinese):
    failures = _failures()
    reasons = [f.reason for f in failures]
    assert set(reasons) >= {
        "sequence_gap",
        "malformed",
        "digest_beyond_head",
        "digest_missing",
        "digest_mismatch",
    }, reasons
    from api.cli import _verify_detail

    for failure in failures:
        for part in _verify_detail(failure.detail).split("；"):
            assert CJK.search(part), (failure.reason, part)
    # One event with three problems: each is translated.
    first = _verify_detail(failures[0].detail)
    assert first.startswith("序号为 3，应为 1；存储的哈希不是该事件与前一事件的链接")
    assert "recorded_at 2026-11-30T00:00:00+00:00 早于前一事件的" in first
    for text in ("x", "1:abc", "0:" + "a" * 64):
        with pytest.raises(ValueError) as raised:
            audit.parse_digest(text)
        assert CJK.search(say("error: {detail}", detail=str(raised.value))), text
