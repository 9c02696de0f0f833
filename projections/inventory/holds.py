"""What declarations hold of book items while the inventory folds a page: reserved for an exit
(`view_reservations`) and in transit to another zone (`view_transit`), per item and declaration.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from projections.folding import MISSING, RowCache, Writes, chunks

ZERO = Decimal(0)
RESERVED = "view_reservations"
IN_TRANSIT = "view_transit"
# (table, item's stock stream, declaration)
HoldKey = tuple[str, str, str]


class _Hold:
    """What one declaration holds of an item (reserved or in transit): as stored before the
    page and now (None: no row)."""

    __slots__ = ("now", "stored")

    def __init__(self, stored: str | None) -> None:
        self.stored = stored
        self.now = Decimal(stored) if stored is not None else None


class Holds:
    """The holds a page reads and changes: each read at most once, written once at the end."""

    def __init__(self, cur: Any, previous: Holds | None) -> None:
        self.cur = cur
        self.rows: RowCache[HoldKey, _Hold] = RowCache(previous.rows if previous else None)

    def prefetch(self, keys: Iterable[HoldKey]) -> None:
        """Read the stored holds of `keys` this page does not hold yet, in a few queries."""
        keys = list(keys)
        for table in (RESERVED, IN_TRANSIT):
            wanted = [k[1:] for k in keys if k[0] == table and k not in self.rows]
            stored: dict[tuple[str, str], str] = {}
            for part in chunks(wanted, 200):
                marks = ",".join(["(?,?)"] * len(part))
                self.cur.execute(
                    f"SELECT stream, declaration, quantity FROM {table}"
                    f" WHERE (stream, declaration) IN (VALUES {marks})",
                    [value for key in part for value in key],
                )
                for row in self.cur.fetchall():
                    stored[(row["stream"], row["declaration"])] = row["quantity"]
            for stream, declaration in wanted:
                self.rows[(table, stream, declaration)] = _Hold(stored.get((stream, declaration)))

    def change(self, table: str, stream: str, declaration: str, change: Decimal) -> Decimal:
        """Add `change` to what one declaration holds (reserved or in transit) of the item;
        a decrease takes at most what it holds, as the write side does. Returns the change
        actually made. A row that reaches zero goes; a missing row comes back even at zero."""
        key = (table, stream, declaration)
        hold = self.rows.get(key)
        if hold is MISSING:
            self.cur.execute(
                f"SELECT quantity FROM {table} WHERE stream = ? AND declaration = ?", key[1:]
            )
            row = self.cur.fetchone()
            hold = self.rows[key] = _Hold(row["quantity"] if row else None)
        held = hold.now if hold.now is not None else ZERO
        if change < 0:
            change = -min(held, -change)
        after = held + change
        hold.now = None if hold.now is not None and after == 0 else after
        return change

    def flush(self, writes: Writes) -> None:
        """The page's changed holds: rows gone, changed and new, per table."""
        changes: dict[str, tuple[list[Any], list[Any], list[Any]]] = {
            RESERVED: ([], [], []),
            IN_TRANSIT: ([], [], []),
        }
        for (table, stream, declaration), hold in self.rows.now.items():
            inserts, updates, deletes = changes[table]
            now = str(hold.now) if hold.now is not None else None
            if now == hold.stored:
                continue
            if now is None:
                deletes.append((stream, declaration))
            elif hold.stored is None:
                inserts.append((stream, declaration, now))
            else:
                updates.append((now, stream, declaration))
            hold.stored = now
        for table, (inserts, updates, deletes) in changes.items():
            writes.add(f"DELETE FROM {table} WHERE stream = ? AND declaration = ?", deletes)
            writes.add(
                f"UPDATE {table} SET quantity = ? WHERE stream = ? AND declaration = ?",
                updates,
            )
            writes.add(
                f"INSERT INTO {table} (stream, declaration, quantity) VALUES (?,?,?)",
                inserts,
            )
