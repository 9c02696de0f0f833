"""The role x route table of docs/api.md, read as data: the authorization matrix
(test_authorization_matrix.py) checks every cell of it, and the fuzz test
(test_fuzz_openapi.py) takes from it the roles that may call each route."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

API_MD = Path(__file__).resolve().parents[2] / "docs" / "api.md"
HEADER = "| route | admin | enterprise | operator | officer | auditor | no token |"
COLUMNS = ("admin", "enterprise", "operator", "officer", "auditor", "no token")
ROLE_COLUMNS = COLUMNS[:-1]


@dataclass(frozen=True)
class Entry:
    """One matrix entry: a route, or one body kind or query of it, and its cells."""

    label: str  # "GET /v1/lots/{lot_id}", "GET /v1/enterprises?credit_class=", "POST ... kind=x"
    method: str
    path: str
    cells: dict[str, str]  # column -> cell ("own (403 for another `enterprise`)")

    def cell(self, column: str) -> tuple[str, str | None]:
        """The cell's verdict and the body field it names as "403 for another `field`"."""
        text = self.cells[column]
        verdict, _, note = text.partition(" (")
        party = re.fullmatch(r"403 for another `(\w+)`\)", note) if note else None
        assert not note or party, f"{self.label}, {column}: cannot read the cell {text!r}"
        return verdict, party.group(1) if party else None

    @property
    def public(self) -> bool:
        return self.cell("no token")[0] == "yes"


def read_table(text: str) -> list[Entry]:
    """The entries of the role x route table in docs/api.md."""
    lines = text.splitlines()
    assert HEADER in lines, f"docs/api.md has no table headed {HEADER!r}"
    start = lines.index(HEADER) + 2
    rows: list[tuple[str, str, str, dict[str, str]]] = []
    for row in table_rows(lines[start:]):
        route, *cells = [c.strip() for c in row.strip().strip("|").split("|")]
        assert len(cells) == len(COLUMNS), f"{route}: {len(cells)} cells"
        m = re.fullmatch(r"(GET|POST|PUT|PATCH|DELETE) (\S[^(]*?)(?: \((.*)\))?", route)
        assert m, f"cannot read the route {route!r}"
        method, paths, note = m.group(1), m.group(2), m.group(3) or ""
        for path in paths.split(", "):
            rows.append((method, path, note, dict(zip(COLUMNS, cells, strict=True))))
    routes = Counter((method, path) for method, path, _, _ in rows)
    entries = []
    for method, path, note, cells in rows:
        if routes[(method, path)] == 1:
            entries.append(Entry(f"{method} {path}", method, path.partition("?")[0], cells))
            continue
        # A route on several rows is split by the body kinds each row names.
        kinds = re.findall(r"`(\w+)`", note)
        assert kinds, f"{method} {path} is on several rows; each must name its body kinds"
        for kind in kinds:
            entries.append(Entry(f"{method} {path} kind={kind}", method, path, cells))
    labels = [e.label for e in entries]
    assert len(labels) == len(set(labels)), (
        f"rows repeated: {Counter(labels) - Counter(set(labels))}"
    )
    return entries


def table_rows(lines: list[str]) -> Iterator[str]:
    """The lines of a markdown table's body: up to the first line that is not a row."""
    for line in lines:
        if not line.startswith("|"):
            return
        yield line


def allowed_roles(entry: Entry) -> tuple[str, ...]:
    """The roles that may call the entry's route at all (on their own resources); () for a
    public route."""
    if entry.public:
        return ()
    return tuple(c for c in ROLE_COLUMNS if entry.cell(c)[0] not in ("401", "403"))


def entries() -> list[Entry]:
    return read_table(API_MD.read_text(encoding="utf-8"))
