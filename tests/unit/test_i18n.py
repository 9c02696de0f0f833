"""Languages (api/i18n.py, issue #20): which language a request gets, that every message the
code writes for a person has its zh-CN translation with the same placeholders, that a
message is translated by its template whatever its values, that the extraction reads every
message argument (none built where it cannot see it), and what `untranslated` tells apart."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from hypothesis import given
from hypothesis import strategies as st

from api import i18n
from api.i18n_extract import found, messages, unread

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
        # A quoted message (`{msg}`, `{detail}`) is translated through when the catalog knows
        # it (a drawn "Unavailable"), as api/i18n.py does; any other value stays as it is.
        quoted = {
            n: catalog.translate(v, 1) if n in ("msg", "detail") else v for n, v in values.items()
        }
        assert translated == t.translation.format(**quoted)
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


def test_untranslated_names_what_stays_english():
    assert i18n.untranslated("Field required") == []
    assert i18n.fully_translated("query.types: Field required")
    assert i18n.untranslated("query.types: no template says this zzz") == [
        "no template says this zzz"
    ]
    assert i18n.untranslated("no template says this zzz") == ["no template says this zzz"]
    assert i18n.untranslated("no template says this zzz", "en") == []
    # A value that is data (a lot, an item number) is not a message: translated around it.
    assert i18n.fully_translated("no open lot L-1 of item 3 in this book")
    # A value may be empty: an empty key named in msgspec's message.
    assert i18n.fully_translated("Object contains unknown field ``")


def test_an_answer_in_chinese_is_told_from_one_that_kept_english():
    zh = i18n.translate("query.types: Field required", "zh-CN")
    assert zh != "query.types: Field required" and i18n.untranslated_in_answer(zh) == []
    kept = i18n.translate("query.types: no template says this zzz", "zh-CN")
    assert i18n.untranslated_in_answer(kept) == ["no template says this zzz"]
    assert i18n.untranslated_in_answer("no template says this zzz") == ["no template says this zzz"]
    assert i18n.untranslated_in_answer("anything", "en") == []


INNER = ["Field required", "Invalid UUID", "Not Found"]


@given(data=st.data())
def test_any_message_of_the_catalog_is_translated_whole_and_its_answer_reads_so(data):
    """Whatever the values, a message made from a template (its quoted messages ones the
    catalog has) is fully translated, and its translation reads as one; a quoted message
    no template has is named by both."""
    catalog = i18n.catalog("zh-CN")
    t = data.draw(st.sampled_from(catalog.templates))
    quoted = {"msg", "detail"} & set(t.names)
    unknown = bool(quoted) and data.draw(st.booleans(), label="an unknown quoted message")
    values = {
        name: ("zzz no such message" if unknown else data.draw(st.sampled_from(INNER)))
        if name in quoted
        else data.draw(VALUES, label=name)
        for name in t.names
    }
    text = t.msgid.replace("{{", "\x00").replace("}}", "\x01")
    text = PLACEHOLDER.sub(lambda m: values[m.group(1)], text)
    text = text.replace("\x00", "{").replace("\x01", "}")
    answer = i18n.translate(text, "zh-CN")
    if unknown:
        assert "zzz no such message" in i18n.untranslated(text)
        assert "zzz no such message" in i18n.untranslated_in_answer(answer)
    else:
        assert i18n.untranslated(text) == []
        assert i18n.untranslated_in_answer(answer) == []


# Message arguments of the recognised calls that the extraction cannot read, each passed
# through from where it is read (or no message at all): (module, argument) -> where from.
PASSED_THROUGH = {
    ("domain/errors.py", "msg"): "ValidationFailed.at(loc, msg) to FieldError",
    ("domain/values.py", "msg"): "Problems.add(loc, msg) to FieldError",
    ("domain/movement_kinds.py", "spec.rules.refusal"): "KindRules(role, refusal), read there",
    ("domain/subscriptions.py", "url_problem"): "api/webhooks.py Target(problem), read there",
    ("ledger/application.py", "uow.seen"): "a write group's `add`: no message",
    ("ledger/export.py", "_decode(number, raw)"): "a restore's `add`: no message",
    ("api/app.py", "str(exc.detail)"): "Starlette's reason phrase (EXTERNAL_MESSAGES)",
    ("api/http.py", "DECIMAL_GRAMMAR"): "domain/values.py's constant, read there",
    ("api/observability.py", "detail"): "_unhealthy(kind, detail), read at its calls",
    ("api/observability.py", "str(e)"): "StoreUnavailable's message, read where raised",
    ("api/problems.py", "error.title"): "an error class's title, read there",
    ("api/problems.py", "error.detail"): "an error's detail, read where raised",
    ("api/problems.py", "msg"): "msgspec's message (EXTERNAL_MESSAGES)",
    ("api/routes/audit.py", "str(e)"): "DigestError, ReplayBusy, ReplayFailed, read where raised",
}
# domain/imports.py `message(name, ...)`: its `MESSAGES` table, read there.
IMPORT_MESSAGE = re.compile(r"^im\.message\(")


def test_every_message_argument_is_one_the_extraction_reads():
    """A message built by concatenation or in a variable never reaches the catalog and stays
    English in zh-CN: write it whole at the call (choosing between whole messages with `if`),
    as a module constant, or in a `..._MESSAGES` table; or say here where it comes from."""
    found: set[tuple[str, str]] = set()
    unknown = []
    for package in ("domain", "ledger", "api"):  # projections refuse nothing (`add`: rows)
        for path in sorted((ROOT / package).rglob("*.py")):
            module = str(path.relative_to(ROOT))
            for line, call, argument in unread(path.read_text(encoding="utf-8")):
                if IMPORT_MESSAGE.match(argument) and module.startswith("api/"):
                    continue
                found.add((module, argument))
                if (module, argument) not in PASSED_THROUGH:
                    unknown.append(f"{module}:{line}: {call}(... {argument} ...)")
    assert not unknown, "messages the extraction cannot read:\n" + "\n".join(unknown)
    assert set(PASSED_THROUGH) <= found, f"no longer passed through: {set(PASSED_THROUGH) - found}"


def test_no_template_glues_a_placeholder_to_a_word():
    """`{verb}ed`, `{day}{known}`: a value carrying words into a sentence, which the
    translation cannot write in Chinese. Choose between whole messages instead. (Others'
    messages are as they write them: Starlette's `{n}KB.`; the command line's lines are
    looked up by their exact text, never matched.)"""
    ours = {
        text
        for package in ("domain", "ledger", "projections", "api")
        for path in sorted((ROOT / package).rglob("*.py"))
        for _, text, context in found(path.read_text(encoding="utf-8"))
        if context is None
    } - set(i18n.EXTERNAL_MESSAGES)
    glued = [t for t in ours if re.search(r"[A-Za-z0-9_]\{|\}[A-Za-z0-9_]|\}\{", t)]
    assert not glued, glued
