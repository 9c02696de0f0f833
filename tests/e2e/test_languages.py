"""Errors in the reader's language (issue #20, api/i18n.py): the same refusal asked in zh-CN
and in en answers the same `type`, `status`, `rule` and `loc`, with `title`, `detail` and
every `errors[].msg` in Chinese for zh-CN (and `Content-Language` saying so), in English
otherwise; a refusal in either language changes nothing in the log."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.samples import declaration_body, line
from tests.support import Ledger, new_key, onboard, running_ledger

CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture
def ledger(database_url):
    with running_ledger(database_url) as ledger:
        yield ledger


def _ask(ledger: Ledger, language: str | None, call: dict[str, Any]) -> Any:
    headers = {} if call.get("who") is None else ledger.headers(call["who"], call.get("key"))
    if language is not None:
        headers["Accept-Language"] = language
    headers.update(call.get("headers", {}))
    return ledger.client.request(
        call["method"], call["path"], json=call.get("json"), params=call.get("params"),
        headers=headers,
    )  # fmt: skip


def _calls(ledger: Ledger) -> list[tuple[str, dict[str, Any]]]:
    t = onboard(ledger)
    body = declaration_body(t.uscc, t.book_no, lines=[line(1, quantity="1.123456789")])
    return [
        ("a body that does not decode", {
            "method": "POST", "path": "/v1/declarations", "who": t.token_name, "key": new_key(),
            "json": {"flow": 7},
        }),
        ("a field the domain refuses", {
            "method": "POST", "path": "/v1/declarations", "who": t.token_name, "key": new_key(),
            "json": body,
        }),
        ("a query parameter out of range", {
            "method": "GET", "path": "/v1/declarations", "who": "officer",
            "params": {"limit": "0"},
        }),
        ("an unknown resource", {
            "method": "GET", "path": "/v1/declarations/900720269999999999", "who": "officer",
        }),
        ("a role that may not", {"method": "GET", "path": "/v1/stream", "who": "admin"}),
        ("no token", {"method": "GET", "path": "/v1/declarations", "who": None}),
        ("a conflict with the ledger's state", {
            "method": "POST", "path": "/v1/enterprises", "who": "admin",
            "json": {"uscc": t.uscc, "customs_code": "6101340001", "name": "again",
                     "credit_class": "regular"},
        }),
    ]  # fmt: skip


def test_the_same_refusal_in_chinese_and_in_english(ledger):
    for what, call in _calls(ledger):
        before = ledger.log_state()
        zh = _ask(ledger, "zh-CN,zh;q=0.9,en;q=0.8", call)
        en = _ask(ledger, "en-US", call)
        default = _ask(ledger, None, call)
        assert ledger.log_state() == before, what
        assert zh.status_code == en.status_code >= 400, (what, zh.text)
        assert zh.headers["content-language"] == "zh-CN", what
        assert en.headers["content-language"] == default.headers["content-language"] == "en"
        assert "Accept-Language" in zh.headers["vary"]
        a, b = zh.json(), en.json()
        assert {k: a.get(k) for k in ("type", "status", "rule")} == {
            k: b.get(k) for k in ("type", "status", "rule")
        }, what
        assert [e["loc"] for e in a.get("errors", [])] == [e["loc"] for e in b.get("errors", [])]
        assert b == default.json(), what
        shown = [a["title"], a["detail"], *(e["msg"] for e in a.get("errors", []))]
        english = [s for s in shown if not CJK.search(s)]
        assert not english, f"{what}: not in Chinese: {english} ({zh.text})"
        assert not any(CJK.search(s) for s in [b["title"], b["detail"]]), (what, en.text)
