"""Every kind of movement, registered once: who records it and how the read side names it.

Adding a kind means one domain module (its body, its rules, its decision) and one entry in
`KINDS`; the write side, the account-book entries, the trace, EPCIS and the CLI read this
table (docs/movements.md, "Adding a movement kind").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args

from domain.admission import decide_gate_in
from domain.destruction import Destruction, decide_destruction
from domain.errors import Forbidden
from domain.events import Actor
from domain.exits import GateOut, decide_gate_out
from domain.in_zone_transfers import InZoneTransfer, decide_in_zone_transfer
from domain.movements import GateIn, MovementKind, MovementView
from domain.papers import MovementRequest
from domain.processing import Processing, decide_processing
from domain.readmission import decide_return_gate_in
from domain.stocktake import Adjustment, decide_adjustment
from domain.transfers import TransferDispatch, TransferReceipt, decide_dispatch, decide_receipt
from domain.unit_of_work import Decision, UnitOfWork

# The body of POST /v1/movements: one tagged Struct per kind (`kind` is the tag).
MovementBody = (
    GateIn
    | GateOut
    | TransferDispatch
    | TransferReceipt
    | Processing
    | Adjustment
    | InZoneTransfer
    | Destruction
)
# A kind's decision: reads through the unit of work, returns what to save and the answer.
Decide = Callable[[UnitOfWork, MovementRequest[Any], datetime], Decision[MovementView]]
# (EPCIS action, bizStep, disposition) of a chain event (GS1 CBV 2.0 vocabulary).
EpcisMapping = tuple[str, str, str | None]


@dataclass(frozen=True)
class KindLabels:
    """How the read side names what a movement of this kind did to a lot."""

    # The book entry of a lot it creates (receipt, transfer_in, production, adjustment).
    book_entry: str | None
    # The trace chain's event for a lot it creates, and for a lot it draws on.
    created: str | None
    drawn: str | None
    # The edge a created lot's parents make in the trace graph (None: no parents).
    edge: str | None
    # How the movement's own paper reads in the CLI's chain (None: by the paper's kind).
    paper_label: str | None
    # EPCIS for a created and a drawn lot; None where the mapping is not per kind (a gate
    # exit's depends on its declaration's flow; processing is a TransformationEvent).
    epcis_created: EpcisMapping | None
    epcis_drawn: EpcisMapping | None


@dataclass(frozen=True)
class KindRules:
    """Who records a movement of this kind: the role, and the refusal for anyone else."""

    recorded_by: Literal["operator", "enterprise", "officer"]
    refusal: str


@dataclass(frozen=True)
class KindSpec:
    kind: MovementKind
    title: str
    # The body's Struct (tagged with `kind`) and the domain decision that records it.
    command: type[Any]
    decide: Decide
    rules: KindRules
    labels: KindLabels


def decide_admission(
    uow: UnitOfWork, req: MovementRequest[GateIn], now: datetime
) -> Decision[MovementView]:
    """A gate_in admits goods under a released inbound declaration, or a retail list's
    returned goods under the return it names (domain/readmission.py)."""
    if req.cmd.return_id is not None:
        return decide_return_gate_in(uow, req, now)
    return decide_gate_in(uow, req, now)


GATE = KindRules("operator", "gate movements are recorded by an operator of the zone")
BOOK = KindRules("enterprise", "processing and adjustments are the book's enterprise's")
WITNESS = KindRules("officer", "a destruction is recorded by the officer who witnessed it")
RECEIVER = KindRules(
    "enterprise", "an in-zone transfer's receipt is recorded by the receiving book's enterprise"
)

KINDS: dict[MovementKind, KindSpec] = {
    "gate_in": KindSpec(
        "gate_in",
        "admission through the zone's gate",
        GateIn,
        decide_admission,
        GATE,
        KindLabels(
            book_entry="receipt",
            created="admitted",
            drawn=None,
            # Only a return's readmitted lots have parents: the lots that left.
            edge="return",
            paper_label=None,
            epcis_created=("ADD", "arriving", "in_progress"),
            epcis_drawn=None,
        ),
    ),
    "gate_out": KindSpec(
        "gate_out",
        "exit through the zone's gate",
        GateOut,
        decide_gate_out,
        GATE,
        KindLabels(
            book_entry=None,
            created=None,
            drawn="exited",
            edge=None,
            paper_label=None,
            epcis_created=None,
            epcis_drawn=None,
        ),
    ),
    "transfer_dispatch": KindSpec(
        "transfer_dispatch",
        "dispatch of a transfer from the source zone",
        TransferDispatch,
        decide_dispatch,
        GATE,
        KindLabels(
            book_entry=None,
            created=None,
            drawn="dispatched",
            edge=None,
            paper_label=None,
            epcis_created=None,
            epcis_drawn=("OBSERVE", "shipping", "in_transit"),
        ),
    ),
    "transfer_receipt": KindSpec(
        "transfer_receipt",
        "receipt of a transfer in the destination zone",
        TransferReceipt,
        decide_receipt,
        GATE,
        KindLabels(
            book_entry="transfer_in",
            created="received",
            drawn=None,
            edge="transfer",
            paper_label=None,
            epcis_created=("ADD", "receiving", "in_progress"),
            epcis_drawn=None,
        ),
    ),
    "processing": KindSpec(
        "processing",
        "processing of bonded goods in the book",
        Processing,
        decide_processing,
        BOOK,
        KindLabels(
            book_entry="production",
            created="produced",
            drawn="consumed",
            edge="processing",
            paper_label="operation",
            epcis_created=None,
            epcis_drawn=None,
        ),
    ),
    "adjustment": KindSpec(
        "adjustment",
        "stocktake adjustment of the book",
        Adjustment,
        decide_adjustment,
        BOOK,
        KindLabels(
            book_entry="adjustment",
            created="surplus",
            drawn="adjusted",
            edge=None,
            paper_label="reason",
            epcis_created=("ADD", "stock_taking", None),
            epcis_drawn=("OBSERVE", "stock_taking", None),
        ),
    ),
    "in_zone_transfer": KindSpec(
        "in_zone_transfer",
        "receipt of bonded goods from another book of the zone (区内流转)",
        InZoneTransfer,
        decide_in_zone_transfer,
        RECEIVER,
        KindLabels(
            book_entry="transfer_in",
            created="transferred_in",
            drawn="transferred_out",
            edge="transfer",
            paper_label=None,
            # The goods change hands inside the zone: they leave one book's custody and are
            # received into another's (GS1 CBV 2.0 bizSteps `departing` and `receiving`).
            epcis_created=("ADD", "receiving", "in_progress"),
            epcis_drawn=("OBSERVE", "departing", "in_progress"),
        ),
    ),
    "destruction": KindSpec(
        "destruction",
        "destruction of goods in the book, witnessed by customs (销毁)",
        Destruction,
        decide_destruction,
        WITNESS,
        KindLabels(
            book_entry=None,
            created=None,
            drawn="destroyed",
            edge=None,
            paper_label="reason",
            # The goods cease to exist (GS1 CBV 2.0: bizStep `destroying`, disposition
            # `destroyed`): the quantity leaves the chain for good.
            epcis_created=None,
            epcis_drawn=("DELETE", "destroying", "destroyed"),
        ),
    ),
}
assert set(KINDS) == set(get_args(MovementKind)), "every movement kind is registered"
assert {s.command for s in KINDS.values()} == set(get_args(MovementBody)), "one body per kind"
BY_COMMAND: dict[type[Any], KindSpec] = {spec.command: spec for spec in KINDS.values()}


def spec_of(cmd: object) -> KindSpec:
    """The registered kind of a movement body."""
    return BY_COMMAND[type(cmd)]


def check_recorder(spec: KindSpec, actor: Actor) -> None:
    """Gate kinds are recorded by an operator of the zone; processing, stocktake adjustments
    and in-zone receipts by an enterprise; a destruction by the officer who witnessed it (403
    for anyone else)."""
    if actor.role != spec.rules.recorded_by:
        raise Forbidden(spec.rules.refusal)


def book_entries() -> dict[str, str]:
    """Movement kind -> the book entry of a lot it creates."""
    return {k: s.labels.book_entry for k, s in KINDS.items() if s.labels.book_entry}


def created_labels() -> dict[str, str]:
    """Movement kind -> the trace event of a lot it creates."""
    return {k: s.labels.created for k, s in KINDS.items() if s.labels.created}


def drawn_labels() -> dict[str, str]:
    """Movement kind -> the trace event of a lot it draws on."""
    return {k: s.labels.drawn for k, s in KINDS.items() if s.labels.drawn}


def edge_kinds() -> dict[str, str]:
    """Movement kind -> the trace edge its created lots' parents make."""
    return {k: s.labels.edge for k, s in KINDS.items() if s.labels.edge}


def paper_labels() -> dict[str, str]:
    """Movement kind -> how the movement's own paper reads in a chain."""
    return {k: s.labels.paper_label for k, s in KINDS.items() if s.labels.paper_label}


def epcis_object_events() -> dict[str, EpcisMapping]:
    """Trace event type -> its EPCIS ObjectEvent (action, bizStep, disposition)."""
    found: dict[str, EpcisMapping] = {}
    for spec in KINDS.values():
        labels = spec.labels
        if labels.created and labels.epcis_created:
            found[labels.created] = labels.epcis_created
        if labels.drawn and labels.epcis_drawn:
            found[labels.drawn] = labels.epcis_drawn
    return found
