"""What a projection is to the runner, and the tools every projection's fold uses.

A projection names its tables (`ViewTable`: the digests and a rebuild ask it for them), creates
them, and gives the runner a fold per page (`PageFold`): the fold reads stored rows at most
once (`RowCache`), changes them in memory, and hands back its rows to write (`Writes`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Generic, NamedTuple, Protocol, TypeVar

from domain.events import DomainEvent


class LogEntry(Protocol):
    """One stored event as the log source gives it (read-only, like the store's records)."""

    @property
    def position(self) -> int: ...
    @property
    def sequence(self) -> int: ...
    @property
    def stream_id(self) -> str: ...
    @property
    def version(self) -> int: ...
    @property
    def topic(self) -> str: ...
    @property
    def state(self) -> bytes: ...
    @property
    def recorded_at(self) -> str: ...


class ViewTable(NamedTuple):
    """A table a projection owns: its name, the columns that order its rows (its primary key)
    and which of those hold integers (they order as numbers; text keys byte by byte)."""

    name: str
    key: tuple[str, ...]
    integer_key: tuple[str, ...] = ()


class TableSource(NamedTuple):
    """Where a table's rows come from for a digest: the table itself, or a query giving the
    same columns (the live inventory as of a past position)."""

    table: ViewTable
    source: str = ""  # a FROM clause; the table when empty
    where: str = ""
    params: tuple[Any, ...] = ()


class Writes(list[tuple[str, list[tuple[Any, ...]]]]):
    """What a fold writes for its page: statements with their rows, for `executemany`, in
    order."""

    def add(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            self.append((sql, rows))


class PageFold(Protocol):
    """A projection's work on one page: fold each event in memory, then write the page.
    A fold may also have `prefetch(page)`, called with the page's (entry, event) pairs it
    reads before any is applied, to read the stored rows it will need in a few queries."""

    def apply(self, entry: LogEntry, event: DomainEvent) -> None: ...

    def flush(self) -> Writes:
        """The page's rows to write; the fold then holds its rows as written."""
        ...


class Projection(Protocol):
    """A read model the runner feeds: its tables, and a fold per page.

    `version` is the shape of the projection's tables and rows (1 when the class has none): a
    release that changes them raises it, and the runner rebuilds the views from the log rather
    than mix rows of two shapes. A projection may also have `retired_tables`, the tables an
    older version had and this one does not, dropped with the rest on a rebuild, and
    `tables_as_of(position)`, its live tables as they stood at a past position (from the
    history they keep), for a replay `as_of` to compare."""

    name: str
    version: int
    # The event classes the projection reads; the runner decodes and routes only those.
    handles: tuple[type[DomainEvent], ...]
    # Its tables, in the order its read model's digest covers them.
    tables: tuple[ViewTable, ...]

    def create_tables(self, cur: Any, *, indexes: bool = True) -> None:
        """Create the projection's tables (IF NOT EXISTS); with `indexes` False, only the
        tables and their keys (a scratch replay needs no secondary index)."""
        ...

    def begin(self, cur: Any, previous: Any) -> PageFold:
        """A fold for the next page. `previous` is this projection's fold of the page just
        committed, when nothing else wrote the views since: the rows it holds, as it wrote
        them, may be used instead of reading them again."""
        ...


def version_of(projection: Projection) -> int:
    """The projection's version; a class without one is at version 1."""
    version: int = getattr(projection, "version", 1)
    return version


def create(cur: Any, ddl: Sequence[str], *, indexes: bool) -> None:
    """Run a projection's DDL; with `indexes` False, leave out its secondary indexes."""
    for statement in ddl:
        if indexes or not statement.startswith("CREATE INDEX"):
            cur.execute(statement)


K = TypeVar("K")
V = TypeVar("V")
MISSING: Any = object()


class RowCache(Generic[K, V]):
    """The rows a fold has read or made in its page, and those of the page before it.

    A fold looks a row up here before reading the store. Rows of the page before move into
    this page's generation when used; the rest are dropped with that generation, so memory
    holds at most two pages' rows. After its flush a fold leaves every row it holds as it
    wrote it (what the next page would read back from the store)."""

    __slots__ = ("now", "older")

    def __init__(self, previous: RowCache[K, V] | None) -> None:
        self.now: dict[K, V] = {}
        self.older: dict[K, V] = previous.now if previous is not None else {}

    def get(self, key: K) -> V:
        """The row, or MISSING when neither generation holds it."""
        now = self.now
        if key in now:
            return now[key]
        found: V = self.older.pop(key, MISSING)
        if found is not MISSING:
            now[key] = found
        return found

    def __setitem__(self, key: K, value: V) -> None:
        self.now[key] = value

    def __contains__(self, key: object) -> bool:
        return key in self.now or key in self.older


class Texts(dict[Any, str]):
    """The text of each value (UUIDs, mostly) a fold meets, made once per page: a movement's
    or a declaration's id recurs in every event of its write."""

    def __missing__(self, key: Any) -> str:
        text = self[key] = str(key)
        return text


def chunks(items: Sequence[Any], size: int = 400) -> Iterator[Sequence[Any]]:
    """Slices of at most `size` (SQLite allows 32,766 parameters in a statement)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
