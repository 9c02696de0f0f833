"""The messages a person reads, found in the source for the gettext catalogs (issue #20,
docs/decisions/0034-languages.md): a Babel extraction method (`babel.cfg`, `make messages`).

The ledger writes its messages in English where it refuses something: `Problems.add(loc, msg)`,
`ValidationFailed.at(loc, msg)`, `FieldError(loc, msg)`, the errors' constructors
(`Conflict(detail)`, `NotFound(detail)`, ...), `HttpProblem.invalid(loc, msg, detail)` and
`HttpProblem(status, kind, title, detail)`, and each error class's `title`. Marking each with
`_()` would change hundreds of call sites and put gettext into the pure domain; instead this
method reads those calls' message arguments, string literals and f-strings, and gives each as
a template: an f-string's `{expression}` becomes a named placeholder (`{places}`,
`{pattern}`), which the translation keeps. At run time api/i18n.py matches a message against
the templates (placeholders match any text) and writes the translation with the same values.

The command line's lines are `say(template, **values)` (api/i18n.py): the literal template
is given as it is, in the context `cli` of the catalog (a `pgettext` entry), so that a line is
looked up by its exact text and never matched against the HTTP answers' messages (nor they
against it).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from typing import IO, Any

# Calls whose arguments at these positions (or keywords) are messages a person reads.
_CALLS: dict[str, tuple[tuple[int, ...], tuple[str, ...]]] = {
    "add": ((1,), ("msg",)),  # Problems.add(loc, msg, rule)
    "at": ((1,), ("msg",)),  # ValidationFailed.at(loc, msg, rule)
    "FieldError": ((1,), ("msg",)),
    "invalid": ((1, 2), ("msg", "detail")),  # HttpProblem.invalid(loc, msg, detail)
    "HttpProblem": ((2, 3), ("title", "detail")),
    "ValidationFailed": ((1,), ("detail",)),
    "LedgerError": ((0,), ("detail",)),
    "NotFound": ((0,), ("detail",)),
    "Forbidden": ((0,), ("detail",)),
    "Conflict": ((0,), ("detail",)),
    "InvalidTransition": ((0,), ("detail",)),
    "AlreadyExists": ((0,), ("detail",)),
    "IdempotencyKeyReused": ((0,), ("detail",)),
    "ConcurrencyConflict": ((0,), ("detail",)),
    "Unavailable": ((0,), ("detail",)),
    "Problem": ((), ("title", "detail")),
    "FileProblem": ((0,), ()),  # domain/reference_csv.py: a file `reference load` cannot read
}
# A module-level tuple of templates written as such (api/i18n.py: others' messages; the CLI
# modules: others' words a command quotes), and a table of `str.format` templates by name
# (domain/imports.py).
_TEMPLATE_TUPLES = ("EXTERNAL_MESSAGES", "QUOTED_MESSAGES")
_TEMPLATE_TABLES = ("MESSAGES",)
_CONVERSION = re.compile(r"\{([a-z_][a-z0-9_]*)(?:![rsa])?(?::[^{}]*)?\}")
# Class attributes that are messages: an error class's `title`.
_ATTRIBUTES = ("title",)
_NAME = re.compile(r"[^a-z0-9_]+")
# The command line's lines: `say(template, **values)`, the template a literal.
_LINE_CALLS = ("say",)
CLI_CONTEXT = "cli"  # as api/i18n.py reads it (not imported: the extraction imports no app)


def _called(node: ast.Call) -> str | None:
    func = node.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _placeholder(expr: ast.expr) -> str:
    """A placeholder's name for an f-string expression: its last name, lower case."""
    while isinstance(expr, ast.Subscript | ast.Call | ast.Starred):
        expr = expr.value if isinstance(expr, ast.Subscript | ast.Starred) else expr.func
    if isinstance(expr, ast.Attribute):
        name = expr.attr
    elif isinstance(expr, ast.Name):
        name = expr.id
    else:
        name = "value"
    return _NAME.sub("_", name.lower()).strip("_") or "value"


def template(node: ast.expr) -> str | None:
    """The message of a literal or an f-string as a template; None for anything else."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value.replace("{", "{{").replace("}", "}}")
    if not isinstance(node, ast.JoinedStr):
        return None
    parts: list[str] = []
    seen: dict[str, int] = {}
    for piece in node.values:
        if isinstance(piece, ast.Constant) and isinstance(piece.value, str):
            parts.append(piece.value.replace("{", "{{").replace("}", "}}"))
        elif isinstance(piece, ast.FormattedValue):
            name = _placeholder(piece.value)
            seen[name] = seen.get(name, 0) + 1
            parts.append("{" + (name if seen[name] == 1 else f"{name}{seen[name]}") + "}")
    return "".join(parts)


def _worth(text: str) -> bool:
    """A message, not a code or a bare placeholder: some letters outside placeholders."""
    return bool(re.search(r"[A-Za-z]{2}", re.sub(r"\{[^{}]*\}", "", text)))


def messages(source: str) -> Iterator[tuple[int, str]]:
    """(line, template) of every message in a module's source, the command line's included."""
    for line, text, _ in found(source):
        yield line, text


def lines(source: str) -> Iterator[tuple[int, str]]:
    """(line, template) of the command line's lines only (`say` calls; context `cli`)."""
    for line, text, context in found(source):
        if context == CLI_CONTEXT:
            yield line, text


def not_literal(source: str) -> Iterator[int]:
    """The lines of `say` calls whose template is not a literal (the extraction cannot read
    them: a test fails on any)."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and _called(node) in _LINE_CALLS:
            first = node.args[0] if node.args else None
            if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
                yield node.lineno


def found(source: str) -> Iterator[tuple[int, str, str | None]]:
    """(line, template, context) of every message in a module's source: context `cli` for
    the command line's lines, None for the others."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _called(node) in _LINE_CALLS:
            first = node.args[0] if node.args else None
            if isinstance(first, ast.Constant) and isinstance(first.value, str) and first.value:
                yield first.lineno, first.value, CLI_CONTEXT
        elif isinstance(node, ast.Call):
            spec = _CALLS.get(_called(node) or "")
            if spec is None:
                continue
            positions, keywords = spec
            args = [node.args[i] for i in positions if i < len(node.args)]
            args += [k.value for k in node.keywords if k.arg in keywords]
            for arg in args:
                text = template(arg)
                if text is not None and _worth(text):
                    yield arg.lineno, text, None
        elif (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id in _TEMPLATE_TUPLES
            and isinstance(node.value, ast.Tuple)
        ):
            for element in node.value.elts:
                if isinstance(element, ast.Constant) and isinstance(element.value, str):
                    yield element.lineno, element.value, None
        elif (
            isinstance(node, ast.Assign | ast.AnnAssign)
            and isinstance(node.value, ast.Dict)
            and any(
                isinstance(t, ast.Name) and t.id in _TEMPLATE_TABLES
                for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
            )
        ):
            for value in node.value.values:
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    # `{kind!r}` renders as the value's repr: the template names it `{kind}`.
                    yield value.lineno, _CONVERSION.sub(r"{\1}", value.value), None
        elif isinstance(node, ast.ClassDef):
            for statement in node.body:
                if (
                    isinstance(statement, ast.Assign)
                    and len(statement.targets) == 1
                    and isinstance(statement.targets[0], ast.Name)
                    and statement.targets[0].id in _ATTRIBUTES
                ):
                    text = template(statement.value)
                    if text is not None and _worth(text):
                        yield statement.lineno, text, None


def extract_messages(
    fileobj: IO[bytes], keywords: Any, comment_tags: Any, options: dict[str, Any]
) -> Iterator[tuple[int, str | None, str | list[str], list[str]]]:
    """Babel's extraction method interface: a line of the command line as Babel's own
    `pgettext(context, message)` keyword gives it (its context `cli`)."""
    source = fileobj.read().decode(options.get("encoding", "utf-8"))
    for line, text, context in found(source):
        if context is None:
            yield line, None, text, []
        else:
            yield line, "pgettext", [context, text], []
