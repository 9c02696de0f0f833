"""A trace as a GS1 EPCIS 2.0 JSON-LD document: one EPCIS event per movement, lots as classes.

Pure mapping: `epcis_document(trace)` reads nothing but the `Trace` (and, for exits and
transfers, the facts of their declarations that `declaration_facts` looks up). Every choice
below is CBV 2.0 where the CBV has a term and our own URIs where it has none (customs
documents, lots, zones); docs/traceability.md has the table and the reasons.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote
from uuid import NAMESPACE_URL, uuid5

import msgspec

from domain.movement_kinds import EpcisMapping, epcis_object_events
from projections.columns import paper_of
from projections.trace.queries import Trace, TraceEvent, TraceLot

# The versioned context matches `schemaVersion: "2.0"`: the unversioned URL follows later
# EPCIS versions, so a document would change meaning when GS1 publishes one.
GS1_CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
# Our identifiers are HTTP URIs (EPCIS 2.0 accepts any URI). No GLN is assigned to the zones
# and lots are the ledger's own classes, so neither GS1 keys nor `urn:epc:` URIs would be true.
BASE = "https://customs-ledger.dev/"
EXTENSION = BASE + "epcis/"  # the `cl:` prefix: extension fields and our BTT vocabulary
MEDIA_TYPE = "application/ld+json"
_EVENT_IDS = uuid5(NAMESPACE_URL, EXTENSION + "event")
_OFFSET = re.compile(r"^[+-]((0[0-9]|1[0-3]):[0-5][0-9]|14:00)$")
_ENCODER = msgspec.json.Encoder(decimal_format="number")

# Our customs papers have no CBV business transaction type: our own URIs, except the two the
# CBV defines exactly (an e-commerce order is a buyer's order to the seller: `po`; a courier
# waybill is a carrier's receipt of goods for transport: `bol`).
BTT = {
    "declaration": EXTENSION + "btt/customs_declaration",
    "checklist": EXTENSION + "btt/customs_checklist",
    "gate_note": EXTENSION + "btt/gate_release_note",
    "gate_pass": EXTENSION + "btt/gate_pass",
    "transport": EXTENSION + "btt/transport_reference",
    "order": "po",
    "waybill": "bol",
}
PATHS = {"gate_note": "gate-note", "gate_pass": "gate-pass"}


class DeclarationFacts(msgspec.Struct, frozen=True, kw_only=True):
    """What an exit or transfer event needs of its declaration (from the declarations view)."""

    flow: str
    zone: str
    destination_zone: str | None = None
    declarant: str = ""
    destination_enterprise: str | None = None


# Our chain's event type -> (action, bizStep, disposition), from the movement-kind registry;
# exits depend on the flow.
OBJECT_EVENTS: dict[str, EpcisMapping] = epcis_object_events()
EXITS: dict[str, EpcisMapping] = {
    "first_line_out": ("OBSERVE", "departing", "in_transit"),
    "second_line_out": ("OBSERVE", "entering_exiting", None),
}
TRANSFORMATION = ("consumed", "produced")
# Goods written off as lost in transit (projections/trace/transit.py): the CBV has no "lost"
# (`destroyed` and `stolen` each claim a cause the ledger does not know, `unknown` says
# nothing), so the disposition is ours; `DELETE`: the quantity leaves the chain for good.
LOST = ("DELETE", "stock_taking", EXTENSION + "disp/lost")
# Where the goods are after the event: omitted when they left the zone (the zone is then
# only where the event was seen, `readPoint`).
LEAVING = ("exited", "dispatched")


def lot_uri(lot_id: str) -> str:
    return f"{BASE}lot/{lot_id}"


def zone_uri(code: str) -> str:
    return f"{BASE}zone/{quote(code, safe='')}"


def movement_uri(movement_id: str) -> str:
    return f"{BASE}movement/{movement_id}"


def enterprise_uri(uscc: str) -> str:
    return f"{BASE}enterprise/{quote(uscc, safe='')}"


def declaration_facts(declarations: Any, trace: Trace) -> dict[str, DeclarationFacts]:
    """The facts of every declaration an exit or a transfer of the trace moved goods under,
    read with `DeclarationQueries.get` (no tenancy: they only choose the bizStep and name the
    two ends of a transfer the caller's own lots took part in)."""
    found: dict[str, DeclarationFacts] = {}
    for event in trace.events:
        if event.type not in ("exited", "dispatched", "received"):
            continue
        for paper in map(paper_of, event.documents):
            if paper.kind != "declaration" or paper.id in found:
                continue
            hit = declarations.get(paper.id)
            if hit is not None:
                row = hit[1]
                found[paper.id] = DeclarationFacts(
                    flow=row["flow"],
                    zone=row["zone"],
                    destination_zone=row.get("destination_zone"),
                    declarant=row.get("declarant") or "",
                    destination_enterprise=row.get("destination_enterprise"),
                )
    return found


def epcis_document(
    trace: Trace,
    *,
    declarations: Mapping[str, DeclarationFacts] | None = None,
    created: datetime | None = None,
) -> dict[str, Any]:
    """The EPCISDocument of a trace, its events in the chain's (log) order."""
    facts = declarations or {}
    lots = {lot.lot_id: lot for lot in trace.lots}
    balances = _balances(trace.events)
    sources = _lost_sources(trace)
    events = [
        _transformation(group, lots)
        if group[0].type in TRANSFORMATION
        else _lost_event(group, lots, sources)
        if group[0].type == "lost"
        else _object_event(group, lots, facts, balances)
        for group in _by_movement(trace.events)
    ]
    return {
        "@context": [GS1_CONTEXT, {"cl": EXTENSION}],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": _utc(created or datetime.now(UTC)),
        "cl:traceRef": trace.ref,
        "cl:traceDirection": trace.direction,
        "cl:truncated": trace.truncated,
        "epcisBody": {"eventList": events},
    }


def encode(document: dict[str, Any]) -> bytes:
    """JSON with quantities as JSON numbers written from the Decimal's own digits (exact)."""
    return _ENCODER.encode(document)


def _by_movement(events: Iterable[TraceEvent]) -> list[list[TraceEvent]]:
    """One movement's lot events make one EPCIS event (a processing's consumed and produced
    lots one TransformationEvent), placed where its first lot event is in the chain."""
    groups: dict[tuple[str, str], list[TraceEvent]] = {}
    for event in events:
        kind = "processing" if event.type in TRANSFORMATION else event.type
        groups.setdefault((kind, event.movement_id or f"@{event.position}"), []).append(event)
    return list(groups.values())


def _balances(events: Iterable[TraceEvent]) -> dict[tuple[int, str], Decimal]:
    """Each lot's quantity after each of its events: every change of a lot is in the chain."""
    running: dict[str, Decimal] = {}
    after: dict[tuple[int, str], Decimal] = {}
    for event in events:
        running[event.lot_id] = running.get(event.lot_id, Decimal(0)) + event.quantity
        after[(event.position, event.lot_id)] = running[event.lot_id]
    return after


def _object_event(
    group: list[TraceEvent],
    lots: Mapping[str, TraceLot],
    facts: Mapping[str, DeclarationFacts],
    balances: Mapping[tuple[int, str], Decimal],
) -> dict[str, Any]:
    first = group[0]
    declaration = next(
        (
            facts[p.id]
            for p in map(paper_of, first.documents)
            if p.kind == "declaration" and p.id in facts
        ),
        None,
    )
    if first.type == "exited":
        flow = declaration.flow if declaration else "first_line_out"
        action, step, disposition = EXITS.get(flow, EXITS["first_line_out"])
    else:
        action, step, disposition = OBJECT_EVENTS.get(first.type, ("OBSERVE", "other", None))
    if first.type == "adjusted":
        # A stocktake observes what the lot holds after the count; the change is ours to say.
        counted = [(e.lot_id, balances[(e.position, e.lot_id)]) for e in group]
        quantities = _quantities(counted, lots)
    else:
        quantities = _quantities([(e.lot_id, abs(e.quantity)) for e in group], lots)
    body: dict[str, Any] = {
        "type": "ObjectEvent",
        **_when(first),
        "eventID": _event_id(first, "object"),
        "action": action,
        "bizStep": step,
        "quantityList": quantities,
    }
    if disposition:
        body["disposition"] = disposition
    body["readPoint"] = {"id": zone_uri(first.zone)}
    if first.type not in LEAVING:
        body["bizLocation"] = {"id": zone_uri(first.zone)}
    body.update(_papers(group))
    if first.type in ("dispatched", "received") and declaration is not None:
        body.update(_ends(declaration))
    if first.type in ("surplus", "adjusted"):
        deltas = [(e.lot_id, e.quantity) for e in group]
        body["cl:quantityDeltaList"] = _quantities(deltas, lots)
    if first.movement_id:
        body["cl:movement"] = movement_uri(first.movement_id)
    return body


def _lost_sources(trace: Trace) -> dict[str, list[tuple[str, Decimal]]]:
    """Each lost node's goods as the lots they were dispatched from (its `lost` edges)."""
    sources: dict[str, list[tuple[str, Decimal]]] = {}
    for edge in trace.edges:
        if edge.kind == "lost" and edge.quantity is not None:
            sources.setdefault(edge.to, []).append((edge.from_, edge.quantity))
    return sources


def _lost_event(
    group: list[TraceEvent],
    lots: Mapping[str, TraceLot],
    sources: Mapping[str, list[tuple[str, Decimal]]],
) -> dict[str, Any]:
    """Goods written off as lost in transit: the dispatched lots' classes and the quantity of
    each that never arrived (the node itself when the trace holds no edge to it); seen where
    the write-off was booked, at no location after it."""
    first = group[0]
    amounts: list[tuple[str, Decimal]] = []
    for e in group:
        amounts += sources.get(e.lot_id) or [(e.lot_id, abs(e.quantity))]
    action, step, disposition = LOST
    body: dict[str, Any] = {
        "type": "ObjectEvent",
        **_when(first),
        "eventID": _event_id(first, "object"),
        "action": action,
        "bizStep": step,
        "disposition": disposition,
        "quantityList": _quantities(amounts, lots),
        "readPoint": {"id": zone_uri(first.zone)},
    }
    body.update(_papers(group))
    if first.movement_id:
        body["cl:movement"] = movement_uri(first.movement_id)
    return body


def _transformation(group: list[TraceEvent], lots: Mapping[str, TraceLot]) -> dict[str, Any]:
    """Processing: the consumed lots in, the produced lots out; the movement is the
    transformation, and its new lot classes are first used here (CBV `commissioning`)."""
    first = group[0]
    inputs = [(e.lot_id, abs(e.quantity)) for e in group if e.type == "consumed"]
    outputs = [(e.lot_id, abs(e.quantity)) for e in group if e.type == "produced"]
    body: dict[str, Any] = {
        "type": "TransformationEvent",
        **_when(first),
        "eventID": _event_id(first, "transformation"),
        "transformationID": movement_uri(first.movement_id or str(first.position)),
    }
    # With the transformationID either side may be empty: a trace upstream of an input
    # lot sees what was consumed, not always what was made.
    if inputs:
        body["inputQuantityList"] = _quantities(inputs, lots)
    if outputs:
        body["outputQuantityList"] = _quantities(outputs, lots)
    body.update(
        {
            "bizStep": "commissioning",
            "disposition": "active",
            "readPoint": {"id": zone_uri(first.zone)},
            "bizLocation": {"id": zone_uri(first.zone)},
        }
    )
    body.update(_papers(group))
    return body


def _when(event: TraceEvent) -> dict[str, str]:
    """Business time with the offset the client sent, and the ledger's record time (UTC)."""
    occurred = event.occurred_at
    offset = _offset(occurred)
    if offset is None:
        # An offset EPCIS cannot express (beyond +/-14:00): the same instant in UTC.
        occurred, offset = occurred.astimezone(UTC), "+00:00"
    return {
        "eventTime": occurred.isoformat(),
        "eventTimeZoneOffset": offset,
        "recordTime": _utc(event.recorded_at),
    }


def _offset(moment: datetime) -> str | None:
    delta = moment.utcoffset()
    if delta is None:
        return None
    minutes, seconds = divmod(int(delta.total_seconds()), 60)
    sign = "-" if minutes < 0 else "+"
    text = f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    return text if seconds == 0 and _OFFSET.match(text) else None


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _event_id(event: TraceEvent, kind: str) -> str:
    """Stable across exports: a name-based UUID of the movement (a movement is one event).
    Not the `ni:///sha-256` event hash, whose canonicalisation we do not implement."""
    name = f"{event.movement_id or event.position}:{event.type}:{kind}"
    return f"urn:uuid:{uuid5(_EVENT_IDS, name)}"


def _quantities(
    amounts: Iterable[tuple[str, Decimal]], lots: Mapping[str, TraceLot]
) -> list[dict[str, Any]]:
    merged: dict[str, Decimal] = {}
    for lot_id, quantity in amounts:
        merged[lot_id] = merged.get(lot_id, Decimal(0)) + quantity
    entries = []
    for lot_id, quantity in merged.items():
        entry: dict[str, Any] = {"epcClass": lot_uri(lot_id), "quantity": _number(quantity)}
        unit = lots[lot_id].unit if lot_id in lots else ""
        if unit:
            entry["uom"] = unit  # UN/ECE Rec 20, what EPCIS `uom` expects
        entries.append(entry)
    return entries


def _number(quantity: Decimal) -> int | Decimal:
    """EPCIS wants a JSON number. An int when whole; otherwise the Decimal itself, encoded
    from its digits (at most 15 integer and 5 decimal places): never a binary float here."""
    if quantity == quantity.to_integral_value():
        return int(quantity)
    return quantity.normalize()


def _papers(group: list[TraceEvent]) -> dict[str, Any]:
    """bizTransactionList from the documents, and the papers that are not transactions as
    extension fields (containers, the processing operation, the stocktake's reason)."""
    transactions: dict[tuple[str, str], None] = {}
    containers: dict[str, None] = {}
    extra: dict[str, Any] = {}
    for event in group:
        for paper in map(paper_of, event.documents):
            kind, number = paper.kind, paper.number or paper.id
            if kind == "container":
                containers[f"{BASE}container/{quote(number, safe='')}"] = None
            elif kind == "processing":
                extra["cl:operation"] = number
            elif kind == "output":  # outputs that are by-products or scrap, not the product
                roles = extra.setdefault("cl:outputRoles", [])
                if number not in roles:
                    roles.append(number)
            elif kind == "adjustment":
                extra["cl:reason"] = number
            elif kind and number:
                btt = BTT.get(kind, f"{EXTENSION}btt/{quote(kind, safe='')}")
                path = PATHS.get(kind, quote(kind, safe=""))
                transactions[(btt, f"{BASE}{path}/{quote(number, safe='')}")] = None
    out: dict[str, Any] = {}
    if transactions:
        out["bizTransactionList"] = [{"type": t, "bizTransaction": b} for t, b in transactions]
    if containers:
        out["cl:containerList"] = list(containers)
    out.update(extra)
    return out


def _ends(declaration: DeclarationFacts) -> dict[str, Any]:
    """A transfer's two ends: the zones (`location`) and the enterprises (`owning_party`)."""
    sources = [{"type": "location", "source": zone_uri(declaration.zone)}]
    if declaration.declarant:
        sources.append({"type": "owning_party", "source": enterprise_uri(declaration.declarant)})
    out: dict[str, Any] = {"sourceList": sources}
    destinations = []
    if declaration.destination_zone:
        destinations.append(
            {"type": "location", "destination": zone_uri(declaration.destination_zone)}
        )
    if declaration.destination_enterprise:
        destinations.append(
            {
                "type": "owning_party",
                "destination": enterprise_uri(declaration.destination_enterprise),
            }
        )
    if destinations:
        out["destinationList"] = destinations
    return out
