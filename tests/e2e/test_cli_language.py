"""The commands a clerk runs speak the locale's language (issue #20, api/i18n.py): `trace`,
`verify`, `replay`, `reference load` and `import` run with LANG=zh_CN.UTF-8 print their human
lines and their refusals in Chinese, and exactly today's English with LANG=C or no locale;
JSON and EPCIS output is the same in any language."""

# ruff: noqa: RUF001

from __future__ import annotations

import json
import re
import sqlite3
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from api import i18n
from tests.conftest import PG_URL
from tests.e2e.test_cli_import import sheet
from tests.e2e.test_epcis import run_story
from tests.support import onboard, run_cli, running_ledger, serving

ZH = {"LANG": "zh_CN.UTF-8"}
CJK = re.compile(r"[\u4e00-\u9fff]")
EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
REF = "X8024-20261127"  # the train of the story


@dataclass
class Story:
    url: str
    arrival_no: str


@pytest.fixture(scope="module")
def story(tmp_path_factory):
    """The train-to-air story in a SQLite file; the server is gone when the CLI reads it."""
    url = f"sqlite:///{tmp_path_factory.mktemp('cli-language')}/ledger.sqlite3"
    with running_ledger(url) as ledger:
        told = run_story(ledger)
        assert ledger.get("/v1/trace", "officer", params={"ref": told.kit_lot}).status_code == 200
    return Story(url=url, arrival_no=told.arrival["declaration_no"])


def test_a_trace_reads_in_chinese(story):
    r = run_cli(story.url, "trace", REF, "--direction", "downstream", **ZH)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[:3] == [f"追溯 {REF}（下游）", f"匹配：运输工具 {REF}", "区域：XCBZ, XEPZ, XABZ"]
    assert re.fullmatch(r"\d+ 个批次，\d+ 个事件，5 条批次关系", lines[3]), lines[3]
    admitted = [line for line in lines if " 入区 " in line]  # as the trace viewer says it
    assert len(admitted) == 2
    for line in admitted:
        # A Chinese character takes two columns: the lots still line up.
        assert "+08:00  XCBZ  入区       批次 " in line and "+100 C62" in line, line
        assert f"报关单 {story.arrival_no}" in line and "卡口单 GN-XCBZ-1127" in line
        assert f"运输工具 {REF}" in line and "集装箱 TGHU1234567" in line
        assert line.endswith("操作人 gate-XCBZ（区域运营方）")
    assert any("XABZ  出区       批次 " in line for line in lines), lines
    (adjusted,) = [line for line in lines if " 盘点调减 " in line]
    assert "原因 damaged, stocktake 2026-11-30" in adjusted and adjusted.endswith("（企业）")
    edges = lines[lines.index("批次关系：") + 1 : -1]
    assert len(edges) == 5 and all(e.startswith("  批次 ") and " -> 批次 " in e for e in edges)
    assert sum(e.endswith("  流转 40 C62") for e in edges) == 3
    assert sum(e.endswith("  加工 40 C62") for e in edges) == 2
    assert lines[-1] == "截断：否"
    for english in (
        "trace of",
        "matched:",
        "zones:",
        " lots,",
        " lot ",
        "declaration ",
        "gate note",
        "checklist",
    ):
        assert english not in r.stdout, english
    for code in ("admitted", "exited", "adjusted", "operator", "enterprise", "transfer"):
        assert code not in r.stdout, code
    assert " by " not in r.stdout and "edges" not in r.stdout and "truncated" not in r.stdout

    cut = run_cli(story.url, "trace", REF, "--limit", "2", **ZH)
    assert cut.stdout.splitlines()[-1] == "截断：结果在 2 个批次处截止（可用 --limit 调高）"


def test_a_trace_is_english_without_a_chinese_locale_and_the_same_with_lang(story):
    english = run_cli(story.url, "trace", REF)
    assert english.returncode == 0 and english.stdout.startswith(f"trace of {REF} (both)\n")
    assert not CJK.search(english.stdout)
    for env in ({"LANG": "C"}, {"LANG": "C.UTF-8", "LANGUAGE": "zh_CN"}, {"LANG": "en_US.UTF-8"}):
        assert run_cli(story.url, "trace", REF, **env).stdout == english.stdout, env
    # LC_ALL comes first; --lang comes before the locale.
    assert run_cli(story.url, "trace", REF, LC_ALL="C", **ZH).stdout == english.stdout
    assert run_cli(story.url, "--lang", "en", "trace", REF, **ZH).stdout == english.stdout
    chinese = run_cli(story.url, "trace", REF, **ZH)
    assert chinese.stdout.startswith(f"追溯 {REF}（双向）\n")
    assert run_cli(story.url, "--lang", "zh-CN", "trace", REF).stdout == chinese.stdout
    assert run_cli(story.url, "trace", REF, LC_MESSAGES="zh_CN.UTF-8").stdout == chinese.stdout


def test_epcis_output_is_the_same_in_any_language(story):
    english = run_cli(story.url, "trace", REF, "--epcis")
    chinese = run_cli(story.url, "trace", REF, "--epcis", **ZH)
    assert english.returncode == chinese.returncode == 0
    documents = [json.loads(r.stdout) for r in (english, chinese)]
    for document in documents:
        document.pop("creationDate", None)  # when it was written
    assert documents[0] == documents[1]
    assert not CJK.search(chinese.stdout)


def test_an_unknown_reference_is_refused_in_chinese(story):
    r = run_cli(story.url, "trace", "NO-SUCH-REF", **ZH)
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == "未找到与 'NO-SUCH-REF' 相关的货物\n"


def test_verify_reads_in_chinese_and_names_a_bad_event_in_chinese(sqlite_url):
    with running_ledger(sqlite_url) as ledger:
        onboard(ledger)
    english = run_cli(sqlite_url, "verify")
    assert english.returncode == 0 and english.stdout.startswith("ok: true\nevents_checked: ")
    assert run_cli(sqlite_url, "verify", LANG="C").stdout == english.stdout
    good = run_cli(sqlite_url, "verify", **ZH)
    assert good.returncode == 0, good.stderr
    lines = good.stdout.splitlines()
    assert lines[0] == "校验结果：通过"
    head = english.stdout.splitlines()
    assert lines[1:] == [
        "已校验事件数：" + head[1].split(": ")[1],
        "链头序号：" + head[2].split(": ")[1],
        "链头日志位置：" + head[3].split(": ")[1],
        "链头哈希：" + head[4].split(": ")[1],
    ]

    path = sqlite_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:  # the first event's bytes changed, still bytes
        conn.execute(
            "UPDATE stored_events SET state = CAST(CAST(state AS TEXT) || ' ' AS BLOB)"
            " WHERE rowid = (SELECT min(rowid) FROM stored_events)"
        )
    bad = run_cli(sqlite_url, "verify", **ZH)
    assert bad.returncode == 1
    assert bad.stdout.startswith("校验结果：未通过\n")
    assert "校验失败：序号 1 的事件（日志位置 1，流 " in bad.stdout
    assert (
        "：hash_mismatch：存储的哈希不是该事件与前一事件的链接：其内容或顺序已被改动" in bad.stdout
    )
    for english_word in ("ok:", "FAILED", "events_checked", "head_hash", "the stored hash"):
        assert english_word not in bad.stdout, english_word
    with sqlite3.connect(path) as conn:  # every event's bytes now text: malformed
        conn.execute("UPDATE stored_events SET state = CAST(state AS TEXT)")
    malformed = run_cli(sqlite_url, "verify", **ZH)
    assert "：malformed：存储的值类型或格式有误：" in malformed.stdout


def test_a_key_row_changed_by_hand_is_named_in_chinese(sqlite_url):
    issued = run_cli(sqlite_url, "keys", "issue", "--role", "officer", "--name", "officer-9")
    assert issued.returncode == 0, issued.stderr
    path = sqlite_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE api_keys SET role = 'admin' WHERE name = 'officer-9'")
    english = run_cli(sqlite_url, "verify")
    assert "FAILED: key_table_mismatch: key 'officer-9' (its last event: sequence " in (
        english.stdout
    )
    bad = run_cli(sqlite_url, "verify", **ZH)
    assert bad.returncode == 1
    assert re.search(
        r"校验失败：key_table_mismatch：密钥 'officer-9'（其最后一个事件：序号 \d+）："
        r"密钥表的 role 与日志不一致",
        bad.stdout,
    ), bad.stdout


def test_a_digest_and_a_database_that_do_not_do_are_refused_in_chinese(sqlite_url):
    wrong = run_cli(sqlite_url, "verify", "--against", "nonsense", **ZH)
    assert wrong.returncode == 2
    assert wrong.stderr == (
        "错误：摘要的格式为 SEQUENCE:HASH，SEQUENCE 不小于 1，实际为 'nonsense'\n"
    )
    english = run_cli(sqlite_url, "verify", "--against", "nonsense")
    assert english.stderr.startswith("error: a digest is SEQUENCE:HASH")


@pytest.mark.postgres
def test_verify_on_a_schema_that_does_not_exist_is_refused_in_chinese(postgres_available):
    schema = f"nosuch_{uuid.uuid4().hex[:8]}"
    url = f"{PG_URL}{'&' if '?' in PG_URL else '?'}schema={schema}"
    r = run_cli(url, "verify", **ZH)
    assert (r.returncode, r.stdout) == (2, "")
    assert (
        f"中不存在 PostgreSQL 模式 '{schema}'：请先创建（CREATE SCHEMA \"{schema}\";）" in r.stderr
    )
    assert r.stderr.startswith("错误：") and "does not exist" not in r.stderr


def test_replay_reads_in_chinese_and_its_json_does_not_change(sqlite_url):
    with running_ledger(sqlite_url) as ledger:
        onboard(ledger)
    r = run_cli(sqlite_url, "replay", **ZH)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("已重放事件数：") and lines[1].startswith("重放至日志位置：")
    assert any(line.startswith("trace：一致  重放 ") and "  现有视图 " in line for line in lines)
    assert re.fullmatch(
        r"重放：[\d,]+ 个事件，至日志位置 [\d,]+，用时 [\d.]+ 秒（重建 [\d,]+ 个事件/秒）：一致\n",
        r.stderr,
    ), r.stderr
    for english in ("events_replayed", "equal", "replayed", "live", "replay:"):
        assert english not in r.stdout + r.stderr, english

    english = json.loads(run_cli(sqlite_url, "replay", "--json").stdout)
    chinese = run_cli(sqlite_url, "replay", "--json", **ZH)
    assert not CJK.search(chinese.stdout)
    answer = json.loads(chinese.stdout)
    assert answer.keys() == english.keys()
    assert answer["projections"] == english["projections"]


def test_reference_load_reads_in_chinese(sqlite_url, tmp_path):
    with running_ledger(sqlite_url):
        pass  # a ledger that has started once
    rates = EXAMPLES / "exchange-rates-2027-01.csv"
    done = run_cli(sqlite_url, "reference", "load", "exchange-rates", str(rates), **ZH)
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(
        r"\[1/1\] 2027-01 的 exchange-rates：已发布为第 1 版（\d+ 种币制，摘要 [0-9a-f]{12}，"
        r"日志位置 \d+）\n",
        done.stderr,
    ), done.stderr
    assert re.search(r"已发布 1 份，未变化 0 份，被拒绝 0 份（发布人 cli:.+）\n$", done.stdout)
    again = run_cli(sqlite_url, "reference", "load", "exchange-rates", str(rates), **ZH)
    assert again.returncode == 0 and "：未变化（" in again.stderr, again.stderr
    assert "未变化 1 份" in again.stdout and "unchanged" not in again.stdout + again.stderr

    bad = tmp_path / "tariff.csv"
    bad.write_text(
        "effective_from,hs_prefix,tariff_rate,vat_rate\n"
        "2027-03-01,847130,0,0.13\n"
        "2027-03-01,851712,0,0.13\n"
        "2027-03-01,950300,0,1.3\n"
    )
    refused = run_cli(sqlite_url, "reference", "load", "tariff", str(bad), **ZH)
    assert refused.returncode == 1
    assert "[1/1] 2027-03-01 的 tariff：被拒绝\n" in refused.stderr
    problems = [line for line in refused.stderr.splitlines() if line.startswith("  ")]
    assert any(p.startswith("  tariff.csv 第 3 行 hs_prefix：") for p in problems), problems
    assert any(p.startswith("  tariff.csv 第 4 行 vat_rate：") for p in problems), problems
    assert all(CJK.search(p.partition("：")[2]) for p in problems), problems
    assert " line " not in refused.stderr and "refused" not in refused.stderr

    missing = run_cli(sqlite_url, "reference", "load", "tariff", str(tmp_path / "none.csv"), **ZH)
    assert missing.returncode == 2
    assert missing.stderr == f"错误：{tmp_path / 'none.csv'}：文件或目录不存在\n"
    empty = tmp_path / "empty.csv"
    empty.write_text("month,currency,cny_per_unit\n")
    form = run_cli(sqlite_url, "reference", "load", "exchange-rates", str(empty), **ZH)
    assert form.returncode == 2 and form.stderr == f"错误：{empty}：文件只有表头，没有数据行\n"


def test_import_reads_in_chinese_and_asks_the_server_for_chinese(sqlite_url, tmp_path):
    with serving(sqlite_url) as (base, ledger):
        tenant = onboard(ledger)
        token = ledger.tokens[tenant.token_name]
        path = tmp_path / "declarations.xlsx"
        path.write_bytes(sheet(tenant, ["10", "1.5", "3"]))  # C62 counts whole pieces

        def run(*args: str, **env: str):
            command = ["import", str(path), "--kind", "declarations", "--url", base, *args]
            return run_cli(sqlite_url, *command, **{"LEDGER_TOKEN": token, **ZH, **env})

        dry = run("--dry-run")
        assert dry.returncode == 1, dry.stderr
        assert "3/3 份单证" in dry.stderr and "documents" not in dry.stderr
        assert re.search(
            r"^declarations\.xlsx：3 行，3 份单证：可接受 2 份，已重放 0 份（本文件此前已导入），"
            r"已在账 0 份（由此前的文件导入），将被拒绝 1 份（用时 [\d.]+ 秒；导入任务 \S+）$",
            dry.stdout,
            re.M,
        ), dry.stdout
        (row,) = [line for line in dry.stdout.splitlines() if line.startswith("第 3 行\t")]
        # The message is the server's, in the language the command asked for.
        assert row.split("\t")[1:] == [
            "申报数量 quantity",
            i18n.translate("unit C62 counts whole pieces", "zh-CN"),
        ]
        assert CJK.search(row.split("\t")[2]), row
        assert "would be accepted" not in dry.stdout and "row 3" not in dry.stdout

        path.write_bytes(b"not a sheet\x00")
        bad = run()
        assert bad.returncode == 2
        assert bad.stderr.startswith("导入：被拒绝（422）：") and "$.file" in bad.stderr
        assert all(CJK.search(line) for line in bad.stderr.splitlines()), bad.stderr
        english = run(LANG="C")
        assert english.stderr.startswith("import: refused (422): ")
        assert not CJK.search(english.stderr)

        no_token = run_cli(sqlite_url, "import", str(path), "--kind", "declarations", **ZH)
        assert no_token.returncode == 2
        assert no_token.stderr == "导入：请提供令牌：LEDGER_TOKEN=... 或 --token\n"
