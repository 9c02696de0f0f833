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
# How deep a message quoting a message quoting ... is translated.
_DEPTH = 3
# The catalog's context of the command line's lines (api/i18n_extract.py gives it to them).
CLI_CONTEXT = "cli"
# The locale variables that name the language of messages, in gettext's order (the first one
# set and not empty counts); LANGUAGE, a list, goes before them unless the locale is C.
LOCALE_VARIABLES = ("LC_ALL", "LC_MESSAGES", "LANG")
_command: list[Language] = [DEFAULT]  # the language of this process's command (`say`)


# Messages the ledger answers with but does not write itself: msgspec's for a body that does
# not decode (api/problems.py `field_error`), pydantic's for a query parameter or header
# FastAPI refuses, Starlette's for a path or method it has no route for, python-stdnum's for
# a code whose check digit fails, as templates (the extraction takes them from here).
EXTERNAL_MESSAGES = (
    "Expected `{expected}`, got `{got}`",
    "Expected `{expected}`",
    "Expected `{expected}` with a timezone component",
    "Expected `{expected}` with no timezone component",
    "Expected `{expected}` that's a multiple of {n}",
    "Expected `{expected}` of length {n}",
    "Expected `{expected}` of length {n}, got {got}",
    "Expected `{expected}` of length {n} to {m}",
    "Expected `{expected}` of length {n} to {m}, got {got}",
    "Expected `{expected}` of at least length {n}, got {got}",
    "Expected `{expected}` of at most length {n}",
    "Expected `{expected}` of at most length {n}, got {got}",
    "Expected a hashable value, got `{got}`",
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
    "Invalid value {value}",
    "Invalid RFC3339 encoded datetime",
    "Invalid RFC3339 encoded date",
    "Invalid RFC3339 encoded time",
    "Invalid ISO8601 duration",
    "Invalid base64 encoded string",
    "Invalid epoch timestamp",
    "Invalid UUID bytes",
    "Integer value out of range",
    "Number out of range",
    "Timestamp is out of range",
    "Duration is out of range",
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
    "String should have at most {n} character",
    "String should have at least {n} character",
    "String should match pattern '{pattern}'",
    "String should contain only ASCII characters",
    "Input should be a valid integer, got a number with a fractional part",
    "Unable to parse input string as an integer, exceeded maximum size",
    "Input should be a valid string, unable to parse raw data as a unicode string",
    "Input should be a valid list",
    "Input should be a multiple of {n}",
    "Input should be a finite number",
    "Value error, {msg}",
    "Field required",
    "Not Found",
    "Method Not Allowed",
    # Starlette's, for a multipart form it does not read (POST /v1/imports: 400)
    "Too many fields. Maximum number of fields is {n}.",
    "Too many files. Maximum number of files is {n}.",
    "Field exceeded maximum size of {n}KB.",
    "Part exceeded maximum size of {n}KB.",
    'The Content-Disposition header field "name" must be provided.',
    "Missing boundary in multipart.",
    "Invalid multipart data.",
    "{loc}: {msg}",
    # python-stdnum's, quoted by domain/values.py (`not a valid USCC: {msg}`)
    "The number has an invalid format.",
    "The number's checksum or check digit is invalid.",
    "The number has an invalid length.",
    "One of the parts of the number are invalid or unknown.",
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
        # Any text, none too: a value may be empty (an empty key, an empty field echoed).
        parts.append(f"(?P<{name}>.*?)" if name not in names else f"(?P={name})")
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
    # The translations as patterns (placeholders match any text): what an answer in this
    # language may read, for `untranslated_in_answer`.
    written: tuple[_Template, ...] = ()
    written_exact: frozenset[str] = frozenset()

    def _match(self, text: str) -> tuple[_Template, re.Match[str]] | None:
        """The template that claims `text`: the most literal one that matches."""
        for t in self.templates:
            m = t.pattern.match(text)
            if m is not None:
                return t, m
        return None

    def translate(self, text: str, depth: int = 0) -> str:
        found = self.exact.get(text)
        if found is not None:
            return found
        claimed = self._match(text)
        if claimed is None:
            return text
        t, m = claimed
        values = {
            name: (
                self.translate(value, depth + 1)
                if name in _MESSAGE_VALUES and depth < _DEPTH
                else value
            )
            for name, value in m.groupdict().items()
        }
        return t.translation.format(**values)

    def knows(self, text: str) -> bool:
        return text in self.exact or self._match(text) is not None

    def untranslated(self, text: str, depth: int = 0) -> list[str]:
        """What of the English message `text` `translate` leaves in English: [] when an entry
        or a template matches it and so does every message quoted in it (`{msg}`,
        `{detail}`), recursively; else the messages (the whole or a quoted one) no template
        matches. The other values of a template are data (codes, numbers, names) and count as
        translated."""
        if not text or text in self.exact:
            return []
        claimed = self._match(text)
        if claimed is None:
            return [text]
        _, m = claimed
        left: list[str] = []
        for name, value in m.groupdict().items():
            if name in _MESSAGE_VALUES:
                left += self.untranslated(value, depth + 1) if depth < _DEPTH else [value]
        return left

    def untranslated_in_answer(self, answer: str, depth: int = 0) -> list[str]:
        """What of `answer`, a message as the ledger wrote it in this language, no
        translation wrote: [] when it is an entry's translation or reads as a template's (the
        same placeholders, any values) whose quoted messages are translations too; else the
        parts that are not (the English a message kept). For an answer whose English is not
        at hand (the fuzz runs)."""
        if not answer or answer in self.written_exact:
            return []
        first: list[str] | None = None
        for t in self.written:
            m = t.pattern.match(answer)
            if m is None:
                continue
            left: list[str] = []
            for name, value in m.groupdict().items():
                if name in _MESSAGE_VALUES:
                    left += (
                        self.untranslated_in_answer(value, depth + 1) if depth < _DEPTH else [value]
                    )
            if not left:
                return []
            first = left if first is None else first
        return first if first is not None else [answer]


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
    written = sorted(
        (_compile(t.translation, t.msgid) for t in templates), key=lambda t: -t.literal
    )
    return Catalog(exact, tuple(templates), lines, tuple(written), frozenset(exact.values()))


@cache
def catalog(language: Language) -> Catalog:
    return _load(language)


def translate(text: str, to: Language | None = None) -> str:
    """`text` in the language asked (the request's by default); itself in English."""
    target = to or language()
    if target == "en" or not text:
        return text
    return catalog(target).translate(text)


def untranslated(text: str, to: Language = "zh-CN") -> list[str]:
    """What of the English message `text` stays English in `to` (`Catalog.untranslated`):
    [] when it is translated whole."""
    if to == "en":
        return []
    return catalog(to).untranslated(text)


def fully_translated(text: str, to: Language = "zh-CN") -> bool:
    """Whether `translate(text, to)` leaves no English but the message's values."""
    return not untranslated(text, to)


def untranslated_in_answer(answer: str, language: Language = "zh-CN") -> list[str]:
    """What of a message answered in `language` no translation wrote
    (`Catalog.untranslated_in_answer`): [] when all of it did."""
    if language == "en":
        return []
    return catalog(language).untranslated_in_answer(answer)
