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

A message argument may also choose between whole messages (`"a" if x else f"b {n}"`: both are
read), name a module-level constant (`UNKNOWN_DESTINATION`) or an entry of a module-level
table of messages (`BONDED_ONLY[kind]`): the constant or every value of the table is read.
A dict named `MESSAGES` or `..._MESSAGES` holds `str.format` templates (`TABLE[key].format(
status=...)`), read as they are. `unread` lists the message arguments the extraction cannot
read (a message built by concatenation or in a variable): tests/unit/test_i18n.py fails on
one that is not a known pass-through.
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
    "KindRules": ((1,), ("refusal",)),  # who records a movement kind, and the 403 for others
    "Target": ((0,), ("problem",)),  # api/webhooks.py: why a URL is refused (422 at `$.url`)
    "RefusedValue": ((0,), ()),  # domain/errors.py: a field a decoded struct refuses
    "DigestError": ((0,), ()),  # ledger/audit.py: a digest that does not parse
    "ReplayBusy": ((0,), ()),
    "ReplayFailed": ((0,), ()),
    "StoreBusy": ((0,), ()),  # ledger/store: quoted by a 503 (`the ledger is busy ({detail})`)
    "StoreUnavailable": ((0,), ()),  # api/observability.py: /healthz's 503
    "_unhealthy": ((1,), ("detail",)),  # api/observability.py: /healthz's 503
}
# A module-level tuple of templates written as such (api/i18n.py: others' messages; the CLI
# modules: others' words a command quotes), and a table of `str.format` templates by name
# (domain/imports.py `MESSAGES`, any `..._MESSAGES`).
_TEMPLATE_TUPLES = ("EXTERNAL_MESSAGES", "QUOTED_MESSAGES")
_TEMPLATE_TABLE = "MESSAGES"
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
    """A placeholder's name for an f-string expression: its last name, lower case; the key of
    a subscript by a string (`errors[0]['loc']` is `{loc}`)."""
    if (
        isinstance(expr, ast.Subscript)
        and isinstance(expr.slice, ast.Constant)
        and isinstance(expr.slice.value, str)
    ):
        return _NAME.sub("_", expr.slice.value.lower()).strip("_") or "value"
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


def _is_table(name: str) -> bool:
    return name == _TEMPLATE_TABLE or name.endswith("_" + _TEMPLATE_TABLE)


def _constants(tree: ast.Module) -> dict[str, ast.expr]:
    """The module's top-level `NAME = value` assignments (the last one of a name)."""
    found: dict[str, ast.expr] = {}
    for statement in tree.body:
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
            target: ast.expr = statement.targets[0]
        elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
            target = statement.target
        else:
            continue
        if isinstance(target, ast.Name) and statement.value is not None:
            found[target.id] = statement.value
    return found


def _read(expr: ast.expr, constants: dict[str, ast.expr], depth: int = 0) -> list[str] | None:
    """The templates a message argument can be: a literal or an f-string; either branch of a
    conditional; a module-level constant; any value of a module-level table it indexes; none
    of its own for a `..._MESSAGES` table's `.format` (the table is read). None when the
    extraction cannot read it."""
    found = template(expr)
    if found is not None:
        return [found] if _worth(found) else []
    if isinstance(expr, ast.Constant) and expr.value is None:
        return []  # no message (`Target(None)`: nothing wrong)
    if depth > 3:
        return None
    if isinstance(expr, ast.IfExp):
        body, orelse = _read(expr.body, constants, depth + 1), _read(expr.orelse, constants, depth)
        return None if body is None or orelse is None else body + orelse
    if isinstance(expr, ast.Name) and expr.id in constants:
        return _read(constants[expr.id], constants, depth + 1)
    if isinstance(expr, ast.Subscript) and isinstance(expr.value, ast.Name):
        table = constants.get(expr.value.id)
        if isinstance(table, ast.Dict) and not _is_table(expr.value.id):
            read = [_read(v, constants, depth + 1) for v in table.values]
            return None if any(r is None for r in read) else [t for r in read for t in r or []]
    if (
        isinstance(expr, ast.Call)
        and isinstance(expr.func, ast.Attribute)
        and expr.func.attr == "format"
        and isinstance(expr.func.value, ast.Subscript)
        and isinstance(expr.func.value.value, ast.Name)
        and _is_table(expr.func.value.value.id)
    ):
        return []
    return None


def _arguments(node: ast.Call) -> list[ast.expr]:
    """A recognised call's message arguments."""
    spec = _CALLS.get(_called(node) or "")
    if spec is None:
        return []
    positions, keywords = spec
    args = [node.args[i] for i in positions if i < len(node.args)]
    return args + [k.value for k in node.keywords if k.arg in keywords]


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
    constants = _constants(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _called(node) in _LINE_CALLS:
            first = node.args[0] if node.args else None
            if isinstance(first, ast.Constant) and isinstance(first.value, str) and first.value:
                yield first.lineno, first.value, CLI_CONTEXT
        elif isinstance(node, ast.Call):
            for arg in _arguments(node):
                for text in _read(arg, constants) or []:
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
                isinstance(t, ast.Name) and _is_table(t.id)
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
                    title = template(statement.value)
                    if title is not None and _worth(title):
                        yield statement.lineno, title, None


def unread(source: str) -> Iterator[tuple[int, str, str]]:
    """(line, call, argument) of every message argument of a recognised call that `messages`
    cannot read: a message built by concatenation, in a variable, by a function - or a value
    passed through (`FieldError(loc, msg)` inside the class itself)."""
    tree = ast.parse(source)
    constants = _constants(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            for arg in _arguments(node):
                if _read(arg, constants) is None:
                    yield arg.lineno, _called(node) or "", ast.unparse(arg)


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
