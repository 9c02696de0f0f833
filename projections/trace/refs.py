"""The business references of the trace: each reference -> the paper that carries it.

A declaration's id and number, its transport reference, container, e-commerce order number and
waybill find the declaration; its checklist's number (核注清单, domain/checklists.py) finds it
too, so a trace from a QD number finds what the declaration moved. A movement's gate note,
container and gate pass (核放单, domain/gate_passes.py) find the movement.
"""

from __future__ import annotations

from domain.declaration import DeclarationSubmitted
from domain.movements import MovementView


def declaration_refs(event: DeclarationSubmitted) -> list[list[str]]:
    """[kind, ref, canonical id] for every reference a declaration carries."""
    f = event.facts
    did = str(event.originator_id)
    refs = [["declaration", did, did], ["declaration", f.declaration_no, did]]
    if f.transport.reference:
        refs.append(["transport", f.transport.reference, f.transport.reference])
    if f.transport.container:
        refs.append(["container", f.transport.container, f.transport.container])
    if f.ecommerce is not None:
        order = f.ecommerce.order.order_no
        refs.append(["order", order, order])
        waybill = getattr(f.ecommerce.waybill, "waybill_no", None)
        if waybill:
            refs.append(["waybill", waybill, waybill])
    return refs


def movement_refs(view: MovementView) -> list[tuple[str, str, str]]:
    """(ref, kind, canonical) for every reference that finds a movement."""
    refs = []
    if view.gate_note:
        refs.append((view.gate_note, "gate_note", view.gate_note))
    if view.container:
        refs.append((view.container, "container", view.container))
    if view.gate_pass:
        refs.append((view.gate_pass, "gate_pass", view.gate_pass))
    if view.checklist_no and view.declaration is None:
        # Goods that entered first or left collected (domain/enter_first.py, collected.py): no
        # declaration finds them.
        refs.append((view.checklist_no, "checklist", view.checklist_no))
    return refs
