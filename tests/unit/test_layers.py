"""domain/ may use eventsourcing's domain module only: no persistence, no application."""

from __future__ import annotations

import ast
from pathlib import Path

DOMAIN = Path(__file__).resolve().parents[2] / "domain"
ALLOWED_THIRD_PARTY = {"msgspec", "pycountry", "stdnum", "eventsourcing.domain"}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_domain_imports_only_the_standard_library_and_its_allowed_packages():
    import sys

    stdlib = sys.stdlib_module_names
    offenders = {}
    for path in DOMAIN.glob("*.py"):
        bad = {
            name
            for name in _imports(path)
            if name.split(".")[0] not in stdlib
            and name.split(".")[0] != "domain"
            and not any(name == a or name.startswith(a + ".") for a in ALLOWED_THIRD_PARTY)
            and name != "__future__"
        }
        bad |= {n for n in _imports(path) if n.split(".")[0] in {"sqlite3", "os", "socket"}}
        if bad:
            offenders[path.name] = sorted(bad)
    assert offenders == {}
