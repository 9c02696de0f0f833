"""The trace graph: lots as nodes, transfers and processing as edges, every reference indexed.

`tables.py` holds the tables (DDL, keys), `fold.py` the projection that feeds them from the
log, `queries.py` the walk from a reference that GET /v1/trace answers with.
"""

from projections.trace.fold import TraceProjection
from projections.trace.queries import (
    Matched,
    Trace,
    TraceEdge,
    TraceEvent,
    TraceLot,
    TraceQueries,
)

__all__ = [
    "Matched",
    "Trace",
    "TraceEdge",
    "TraceEvent",
    "TraceLot",
    "TraceProjection",
    "TraceQueries",
]
