"""Inventory and account-book views: balances now and as of any past instant, entries, statements.

`tables.py` holds the tables (DDL, keys, their history as of a past position), `fold.py` the
projection that feeds them from the log, `queries.py` the reads the API answers from.
"""

from projections.inventory.fold import InventoryProjection
from projections.inventory.queries import BookEntry, InventoryQueries, InventoryRow, StatementLine
from projections.inventory.tables import ENTRIES_PER_EVENT

__all__ = [
    "ENTRIES_PER_EVENT",
    "BookEntry",
    "InventoryProjection",
    "InventoryQueries",
    "InventoryRow",
    "StatementLine",
]
