"""What a person reads, in their language: zh-CN or en (issue #20,
docs/decisions/0034-languages.md).

The language of a request comes from `Accept-Language` (RFC 9110 12.5.4, the highest-weighted
language the ledger has: any Chinese - `zh`, `zh-CN`, `zh-Hans` ... - is zh-CN; anything else,
or no header, is en) and holds for the request (a context variable the problem+json answers
read). Messages are written in English in the code; the zh-CN catalog
(`api/locale/zh_CN/LC_MESSAGES/messages.po`, made by `make messages` with the extraction of
api/i18n_extract.py) holds each as a template - `at most {places} decimal places` ->
`最多 {places} 位小数` - and a message is translated by matching it against the templates (a
placeholder matches any text) and writing the translation with the same values. A value
named `msg` or `detail` is itself translated (a message quoting another). A message no
template matches stays in English (tests/e2e/test_languages.py sends every error path in
zh-CN and fails on one).

`type`, `rule` and `loc` of a problem never change with the language: clients branch on them.

The command line (`customs-ledger trace`, `verify`, `replay`, `reference load`, `import`)
speaks the language of the POSIX locale, as gettext chooses it (`from_environment`), or of
`--lang`. A command's lines are `say(template, **values)`: the template is extracted into the
same catalog under the context `cli` and looked up by its exact text (never matched against
other messages, nor they against it); a value named `msg` or `detail` is a message of the
ledger's and is translated by matching, as in an HTTP answer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Literal

Language = Literal["zh-CN", "en"]
LANGUAGES: tuple[Language, ...] = ("zh-CN", "en")
DEFAULT: Language = "en"
_language: ContextVar[Language] = ContextVar("language", default=DEFAULT)
_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
# Values that are messages themselves (translated too); any other value is data.
_MESSAGE_VALUES = ("msg", "detail")
# The catalog's context of the command line's lines (api/i18n_extract.py gives it to them).
CLI_CONTEXT = "cli"
# The locale variables that name the language of messages, in gettext's order (the first one
# set and not empty counts); LANGUAGE, a list, goes before them unless the locale is C.
LOCALE_VARIABLES = ("LC_ALL", "LC_MESSAGES", "LANG")
_command: list[Language] = [DEFAULT]  # the language of this process's command (`say`)


# Messages the ledger answers with but does not write itself: msgspec's for a body that does
# not decode (api/problems.py `field_error`) and pydantic's for a query parameter or header
# FastAPI refuses, as templates (the extraction takes them from here).
EXTERNAL_MESSAGES = (
    "Expected `{expected}`, got `{got}`",
    "Object missing required field `{field}`",
    "Object contains unknown field `{field}`",
    "Expected `{expected}` of length >= {n}",
    "Expected `{expected}` of length <= {n}",
    "Expected `{expected}` >= {n}",
    "Expected `{expected}` <= {n}",
    "Expected `{expected}` > {n}",
    "Expected `{expected}` < {n}",
    "Expected `{expected}` matching regex {regex}",
    "Expected `{expected}` of at least {n} bytes",
    "Invalid enum value {value}",
    "Invalid RFC3339 encoded datetime",
    "Invalid ISO 8601 date",
    "Invalid decimal string",
    "Invalid UUID",
    "Input should be a valid integer, unable to parse string as an integer",
    "Input should be a valid integer",
    "Input should be a valid boolean, unable to interpret input",
    "Input should be a valid number, unable to parse string as a number",
    "Input should be a valid string",
    "Input should be greater than or equal to {n}",
    "Input should be less than or equal to {n}",
    "Input should be greater than {n}",
    "Input should be less than {n}",
    "Input should be {choices}",
    "String should have at most {n} characters",
    "String should have at least {n} characters",
    "String should match pattern '{pattern}'",
    "Field required",
    "Not Found",
    "Method Not Allowed",
    "{loc}: {msg}",
)


def negotiate(header: str | None) -> Language:
    """The language for an `Accept-Language` header: zh-CN when the first language with a
    positive weight that the ledger has is Chinese, else en."""
    if not header:
        return DEFAULT
    ranked: list[tuple[float, int, str]] = []
    for n, part in enumerate(header.split(",")[:32]):
        tag, _, params = part.strip().partition(";")
        weight = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if weight > 0 and tag:
            ranked.append((-weight, n, tag.strip().lower()))
    for _, _, tag in sorted(ranked):
        if tag == "zh" or tag.startswith("zh-"):
            return "zh-CN"
        if tag == "en" or tag.startswith("en-") or tag == "*":
            return "en"
    return DEFAULT


def _language_of_locale(name: str) -> Language | None:
    """zh-CN for a Chinese locale name (`zh`, `zh_CN.UTF-8`, `zh_TW.Big5`, `zh-Hans`), en for
    an English one, None for any other (a language the ledger does not have)."""
    language = re.split(r"[_.@-]", name.strip(), maxsplit=1)[0].lower()
    if language == "zh":
        return "zh-CN"
    if language == "en":
        return "en"
    return None


def from_environment(env: Mapping[str, str]) -> Language:
    """The language of a command, from the locale variables in `env` as GNU gettext reads
    them for messages: the locale is the first of LC_ALL, LC_MESSAGES and LANG that is set and
    not empty; unset, `C`, `C.<codeset>` or `POSIX`, it is en (LANGUAGE is then ignored, as
    gettext ignores it). Otherwise LANGUAGE, when set, is a colon-separated list of languages
    in order of preference: the first one the ledger has (Chinese or English) counts, and a
    list with none of them is en (gettext's messages without a catalog). Without LANGUAGE the
    locale's language counts: zh-CN for any Chinese locale (`zh_CN.UTF-8`, `zh_TW`, `zh`),
    en for anything else."""
    locale = next((env[name] for name in LOCALE_VARIABLES if env.get(name)), "")
    if locale.split(".")[0] in ("", "C", "POSIX"):  # C.UTF-8 too
        return DEFAULT
    preferences = env.get("LANGUAGE", "")
    if preferences:
        for entry in preferences.split(":"):
            found = _language_of_locale(entry)
            if found is not None:
                return found
        return DEFAULT
    return "zh-CN" if _language_of_locale(locale) == "zh-CN" else DEFAULT


def set_command_language(language: Language) -> None:
    """The language every `say` of this process writes in (the CLI sets it once, before the
    command runs; a process-wide setting, so progress reported from any thread has it too)."""
    _command[0] = language


def command_language() -> Language:
    return _command[0]


def say(template: str, /, **values: object) -> str:
    """A line (or part of one) of a command's output, in the command's language: `template`
    (a `str.format` template written as a literal, so that the extraction finds it) filled
    with `values`. In zh-CN it is the catalog's translation of that exact template (context
    `cli`), with the same values; a value named `msg` or `detail` is a message itself and is
    translated too. A template the catalog does not have is written in English."""
    language = _command[0]
    if language == "en":
        return template.format(**values)
    found = catalog(language).lines.get(template)
    if found is None:
        return template.format(**values)
    shown = {
        name: translate(value, language)
        if name in _MESSAGE_VALUES and isinstance(value, str)
        else value
        for name, value in values.items()
    }
    return found.format(**shown)


def set_language(language: Language) -> None:
    _language.set(language)


def language() -> Language:
    return _language.get()


@dataclass(frozen=True)
class _Template:
    msgid: str
    pattern: re.Pattern[str]
    names: tuple[str, ...]
    translation: str
    literal: int  # characters outside placeholders: the more, the more specific


def _compile(msgid: str, msgstr: str) -> _Template:
    names: list[str] = []
    parts: list[str] = []
    last = 0
    text = msgid.replace("{{", "\x00").replace("}}", "\x01")
    for m in _PLACEHOLDER.finditer(text):
        parts.append(re.escape(text[last : m.start()]))
        name = m.group(1)
        parts.append(f"(?P<{name}>.+?)" if name not in names else f"(?P={name})")
        names.append(name)
        last = m.end()
    parts.append(re.escape(text[last:]))
    pattern = "".join(parts).replace("\x00", r"\{").replace("\x01", r"\}")
    literal = len(_PLACEHOLDER.sub("", text))
    return _Template(
        msgid, re.compile(f"^{pattern}$", re.S), tuple(dict.fromkeys(names)), msgstr, literal
    )


@dataclass(frozen=True)
class Catalog:
    exact: dict[str, str]
    templates: tuple[_Template, ...]
    # The command line's templates (context `cli`), by their exact text: `say` looks them up.
    lines: dict[str, str]

    def translate(self, text: str, depth: int = 0) -> str:
        found = self.exact.get(text)
        if found is not None:
            return found
        for t in self.templates:
            m = t.pattern.match(text)
            if m is None:
                continue
            values = {
                name: (
                    self.translate(value, depth + 1)
                    if name in _MESSAGE_VALUES and depth < 3
                    else value
                )
                for name, value in m.groupdict().items()
            }
            return t.translation.format(**values)
        return text

    def knows(self, text: str) -> bool:
        return text in self.exact or any(t.pattern.match(text) for t in self.templates)


def _load(language: Language) -> Catalog:
    folder = language.replace("-", "_")
    from babel.messages.pofile import read_po  # here: a command in English never needs it

    source = resources.files("api") / "locale" / folder / "LC_MESSAGES" / "messages.po"
    with source.open("rb") as f:
        po = read_po(f, locale=folder)
    exact: dict[str, str] = {}
    templates: list[_Template] = []
    lines: dict[str, str] = {}
    for message in po:
        msgid, msgstr = message.id, message.string
        if not msgid or not isinstance(msgid, str) or not isinstance(msgstr, str) or not msgstr:
            continue
        if message.fuzzy:
            continue
        if message.context == CLI_CONTEXT:
            lines[msgid] = msgstr
            continue
        if _PLACEHOLDER.search(msgid.replace("{{", "").replace("}}", "")):
            templates.append(_compile(msgid, msgstr))
        else:
            exact[msgid.replace("{{", "{").replace("}}", "}")] = msgstr.replace("{{", "{").replace(
                "}}", "}"
            )
    templates.sort(key=lambda t: -t.literal)
    return Catalog(exact, tuple(templates), lines)


@cache
def catalog(language: Language) -> Catalog:
    return _load(language)


def translate(text: str, to: Language | None = None) -> str:
    """`text` in the language asked (the request's by default); itself in English."""
    target = to or language()
    if target == "en" or not text:
        return text
    return catalog(target).translate(text)
