"""Languages (api/i18n.py, issue #20): which language a request gets, that every message the
code writes for a person has its zh-CN translation with the same placeholders, and that a
message is translated by its template whatever its values."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from hypothesis import given
from hypothesis import strategies as st

from api import i18n
from api.i18n_extract import messages

ROOT = Path(__file__).resolve().parents[2]
CATALOG = ROOT / "api" / "locale" / "zh_CN" / "LC_MESSAGES" / "messages.po"
PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
CJK = re.compile(r"[\u4e00-\u9fff]")


def _source_messages() -> dict[str, str]:
    found: dict[str, str] = {}
    for package in ("domain", "ledger", "projections", "api"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for line, text in messages(path.read_text(encoding="utf-8")):
                found.setdefault(text, f"{path.relative_to(ROOT)}:{line}")
    return found


def _catalog() -> dict[str, str]:
    with CATALOG.open("rb") as f:
        return {m.id: m.string for m in read_po(f) if m.id and isinstance(m.id, str)}


@pytest.mark.parametrize(
    ("header", "language"),
    [
        (None, "en"),
        ("", "en"),
        ("zh-CN", "zh-CN"),
        ("zh", "zh-CN"),
        ("zh-Hans-CN,zh;q=0.9,en;q=0.8", "zh-CN"),
        ("zh-TW", "zh-CN"),
        ("en-US,en;q=0.9,zh-CN;q=0.8", "en"),
        ("en;q=0.5, zh-CN;q=0.9", "zh-CN"),
        ("fr-FR, zh;q=0.3", "zh-CN"),  # French is not offered: the first one that is
        ("zh-CN;q=0", "en"),  # refused outright
        ("de", "en"),
        ("*", "en"),
        ("zh-CN;q=abc, en", "en"),  # a malformed weight counts as 0
    ],
)
def test_the_language_of_a_request(header, language):
    assert i18n.negotiate(header) == language


@given(st.text(max_size=300))
def test_any_header_gives_one_of_the_languages(header):
    assert i18n.negotiate(header) in i18n.LANGUAGES


@pytest.mark.parametrize(
    ("env", "language"),
    [
        ({}, "en"),
        ({"LANG": "zh_CN.UTF-8"}, "zh-CN"),
        ({"LANG": "zh_TW.Big5"}, "zh-CN"),
        ({"LANG": "zh"}, "zh-CN"),
        ({"LANG": "zh_CN.GB18030"}, "zh-CN"),
        ({"LANG": "en_US.UTF-8"}, "en"),
        ({"LANG": "C"}, "en"),
        ({"LANG": "C.UTF-8"}, "en"),
        ({"LANG": "POSIX"}, "en"),
        ({"LANG": "fr_FR.UTF-8"}, "en"),
        ({"LANG": "zha_CN"}, "en"),  # Zhuang is not Chinese
        ({"LC_ALL": "C", "LANG": "zh_CN.UTF-8"}, "en"),  # LC_ALL overrides everything
        ({"LC_ALL": "zh_CN.UTF-8", "LANG": "C"}, "zh-CN"),
        ({"LC_MESSAGES": "zh_CN.UTF-8", "LANG": "en_US.UTF-8"}, "zh-CN"),
        ({"LC_ALL": "", "LC_MESSAGES": "", "LANG": "zh_CN.UTF-8"}, "zh-CN"),  # empty: unset
        ({"LC_CTYPE": "zh_CN.UTF-8"}, "en"),  # not a variable of messages
        ({"LANG": "en_US.UTF-8", "LANGUAGE": "zh_CN:en"}, "zh-CN"),
        ({"LANG": "zh_CN.UTF-8", "LANGUAGE": "en_GB:zh_CN"}, "en"),
        ({"LANG": "de_DE.UTF-8", "LANGUAGE": "fr:zh_CN:en"}, "zh-CN"),  # the first we have
        ({"LANG": "zh_CN.UTF-8", "LANGUAGE": "fr:de"}, "en"),  # gettext: no catalog, English
        ({"LANG": "C", "LANGUAGE": "zh_CN"}, "en"),  # gettext ignores LANGUAGE in C
        ({"LANGUAGE": "zh_CN"}, "en"),  # no locale is C
        ({"LANG": "en_US.UTF-8", "LANGUAGE": ""}, "en"),
    ],
)
def test_the_language_of_a_command(env, language):
    assert i18n.from_environment(env) == language


LOCALES = st.sampled_from(
    ["", "C", "C.UTF-8", "POSIX", "zh_CN.UTF-8", "zh_TW", "zh", "en_US.UTF-8", "en", "fr_FR"]
) | st.text(max_size=12)


def _expected(env: dict[str, str]) -> str:
    """GNU gettext's choice for messages, written out again for the test."""
    locale = env.get("LC_ALL") or env.get("LC_MESSAGES") or env.get("LANG") or ""
    if locale.split(".")[0] in ("", "C", "POSIX"):
        return "en"
    if env.get("LANGUAGE"):
        for entry in env["LANGUAGE"].split(":"):
            code = entry.strip().lower()[:3]
            if code[:2] in ("zh", "en") and (len(code) == 2 or code[2] in "_.@-"):
                return "zh-CN" if code.startswith("zh") else "en"
        return "en"
    code = locale.strip().lower()[:3]
    return "zh-CN" if code[:2] == "zh" and (len(code) == 2 or code[2] in "_.@-") else "en"


@given(
    st.dictionaries(
        st.sampled_from(["LC_ALL", "LC_MESSAGES", "LANG", "LANGUAGE", "LC_CTYPE", "HOME"]),
        LOCALES | st.lists(LOCALES, max_size=3).map(":".join),
    )
)
def test_any_environment_gives_gettexts_language(env):
    assert i18n.from_environment(env) == _expected(env)


def test_every_message_the_code_writes_has_its_chinese_with_the_same_placeholders():
    """Fails on a message added without its translation: `make messages`, then translate."""
    catalog = _catalog()
    missing = {t: where for t, where in _source_messages().items() if not catalog.get(t)}
    assert not missing, "untranslated (run `make messages` and fill the catalog):\n" + "\n".join(
        f"  {where}: {text}" for text, where in sorted(missing.items(), key=lambda x: x[1])
    )
    wrong = [
        msgid
        for msgid, msgstr in catalog.items()
        if msgstr and set(PLACEHOLDER.findall(msgid)) != set(PLACEHOLDER.findall(msgstr))
    ]
    assert not wrong, f"placeholders differ between English and Chinese: {wrong}"
    unchinese = [m for m, s in catalog.items() if s and not CJK.search(s)]
    assert not unchinese, f"translations without a Chinese character: {unchinese}"


VALUES = st.text(alphabet=string.ascii_letters + string.digits + "$._[]-", min_size=1, max_size=12)


@given(data=st.data())
def test_a_message_is_translated_by_its_template_whatever_its_values(data):
    catalog = i18n.catalog("zh-CN")
    if not catalog.templates:
        pytest.skip("no template translated yet")
    t = data.draw(st.sampled_from(catalog.templates))
    values = {name: data.draw(VALUES, label=name) for name in t.names}
    text = t.msgid.replace("{{", "\x00").replace("}}", "\x01")
    text = PLACEHOLDER.sub(lambda m: values[m.group(1)], text)
    text = text.replace("\x00", "{").replace("\x01", "}")
    translated = catalog.translate(text)
    claimed = next(x for x in catalog.templates if x.pattern.match(text))
    if text in catalog.exact:
        assert translated == catalog.exact[text]
    elif claimed is t:
        assert translated == t.translation.format(**values)
    else:  # a more specific template claims these values: its translation, not English
        assert translated != text


def test_english_is_the_message_itself_and_an_unknown_message_stays_english():
    assert i18n.translate("at most 2 decimal places", "en") == "at most 2 decimal places"
    assert i18n.translate("no template says this zzz", "zh-CN") == "no template says this zzz"


def test_a_message_quoting_another_is_translated_through():
    catalog = i18n.catalog("zh-CN")
    inner = "Field required"
    if inner not in catalog.exact:
        pytest.skip("the catalog has no translation of pydantic's 'Field required' yet")
    quoted = i18n.translate(f"query.types: {inner}", "zh-CN")
    assert quoted.startswith("query.types") and catalog.exact[inner] in quoted
