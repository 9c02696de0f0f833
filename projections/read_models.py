"""Every read model the read side keeps, and the tables each one owns.

The live runner feeds them in this order; a replay rebuilds and compares them in this order,
each over the tables its projection names (`Projection.tables`).
"""

from __future__ import annotations

from projections.declarations import DeclarationsProjection
from projections.documents import DocumentsProjection
from projections.enterprises import EnterprisesProjection
from projections.folding import Projection, ViewTable
from projections.inventory.fold import InventoryProjection
from projections.receipts import ReceiptsProjection
from projections.tax_bills import TaxBillsProjection
from projections.trace.fold import TraceProjection
from projections.write_offs import WriteOffsProjection


def read_model_projections() -> list[Projection]:
    """Every read model's projection, in the order the live runner applies them."""
    return [
        DeclarationsProjection(),
        EnterprisesProjection(),
        InventoryProjection(),
        TraceProjection(),
        DocumentsProjection(),
        TaxBillsProjection(),
        WriteOffsProjection(),
        ReceiptsProjection(),
    ]


def read_model_tables(
    projections: list[Projection] | None = None,
) -> dict[str, tuple[ViewTable, ...]]:
    """Each read model's tables, as its projection names them (of `projections`, or of every
    read model)."""
    found = projections if projections is not None else read_model_projections()
    return {p.name: p.tables for p in found}
