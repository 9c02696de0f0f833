"""Receipts (回执, issue #19): what the ledger tells an enterprise's systems about its filings,
drawn from the log's events. Pure: which events are receipts, their types, what their data
says, and how a subscription's patterns select them. Delivery (signed webhooks, the live
stream) and tenancy (who may receive which) are the outer layers' (docs/decisions/0030).

A receipt's type is `<subject>.<what happened>`:

- `declaration.<status>`: every decision that moves a declaration (its assessment at
  submission: the channel assigned; an inspection ordered or its result; a release; a
  rejection; the duties due, `declaration.awaiting_payment`; a payment that releases it; a
  withdrawal; a transfer accepted or refused) is a receipt of the status it leaves the
  declaration in, with what the event says (channel and reasons, duties, the inspection's
  result, the rejection's reason, the amount paid);
- `movement.<kind>`: goods passed a gate or moved in a book (`movement.gate_in`,
  `movement.gate_out`, `movement.transfer_dispatch`, ..., every kind of
  domain/movement_kinds.py), with the movement as recorded (its lots);
- `write_off.<status>`: a write-off submitted or certified (domain/write_offs.py);
- `tax_bill.<what>`: a duty liability issued, paid or waived (domain/liabilities.py);
- `checklist.<what>`: a checklist (核注清单) filed (by a declaration's release, or on its own),
  approved, rejected, withdrawn, its goods passed on a gate pass (`checklist.passed`) or moved
  in the zone under it (`checklist.moved`), declared by a later declaration
  (`checklist.declared`);
- `gate_pass.<what>`: a gate pass (核放单) filed, or its vehicle passed the gate.

A subscription names the types it wants: exactly (`movement.gate_in`), by subject
(`declaration.*`), or all (`*`).
"""

from __future__ import annotations

from typing import Any, get_args
from uuid import UUID

import msgspec

from domain.checklists import ChecklistFiled
from domain.clearance import (
    DeclarationAssessed,
    DeclarationRejected,
    DutiesPaid,
    InspectionRecorded,
    ReleaseGranted,
    TransferAccepted,
    TransferRefused,
)
from domain.declaration import DeclarationWithdrawn, Status
from domain.events import DomainEvent
from domain.gate_passes import GatePassFiled, GatePassPassed
from domain.liabilities import LiabilityAssessed, LiabilityPaid, LiabilityWaived
from domain.movements import MovementKind, MovementRecorded
from domain.outbound_checklists import ChecklistLinesMoved
from domain.standalone_checklists import (
    ChecklistApproved,
    ChecklistDeclared,
    ChecklistPassed,
    ChecklistRejected,
    ChecklistWithdrawn,
    StandaloneChecklistFiled,
)
from domain.values import Problems
from domain.write_offs import WriteOffCertified, WriteOffSubmitted

SUBJECTS = ("declaration", "movement", "write_off", "tax_bill", "checklist", "gate_pass")
TAX_BILL_RECEIPTS = ("tax_bill.issued", "tax_bill.paid", "tax_bill.waived")
CHECKLIST_RECEIPTS = (
    "checklist.filed",
    "checklist.approved",
    "checklist.rejected",
    "checklist.withdrawn",
    "checklist.passed",
    "checklist.moved",
    "checklist.declared",
)
GATE_PASS_RECEIPTS = ("gate_pass.filed", "gate_pass.passed")
WRITE_OFF_RECEIPTS = (
    "write_off.submitted",
    "write_off.accepted",
    "write_off.differences_assessed",
)
# Every receipt type, in a stable order (the documentation's and the patterns' checks).
RECEIPT_TYPES: tuple[str, ...] = (
    *(f"declaration.{s}" for s in get_args(Status) if s != "submitted"),
    *(f"movement.{k}" for k in get_args(MovementKind)),
    *WRITE_OFF_RECEIPTS,
    *TAX_BILL_RECEIPTS,
    *CHECKLIST_RECEIPTS,
    *GATE_PASS_RECEIPTS,
)
MAX_PATTERNS = 64


class Draft(msgspec.Struct, frozen=True, kw_only=True):
    """A receipt as the event alone says it: its type, the kind and id of what it is about,
    and its data. The outer layers add the subject's number and who may receive it."""

    type: str
    subject_kind: str
    subject_id: UUID
    data: dict[str, Any]


# Declaration events: what each adds to the receipt besides the status it leaves.
_DECLARATION_EVENTS = (
    DeclarationAssessed,
    InspectionRecorded,
    ReleaseGranted,
    DeclarationRejected,
    DutiesPaid,
    DeclarationWithdrawn,
    TransferAccepted,
    TransferRefused,
)


# Every event type that may be a receipt (what a read model of receipts decodes).
RECEIPT_EVENTS: tuple[type[DomainEvent], ...] = (
    *_DECLARATION_EVENTS,
    MovementRecorded,
    WriteOffSubmitted,
    WriteOffCertified,
    LiabilityAssessed,
    LiabilityPaid,
    LiabilityWaived,
    ChecklistFiled,
    StandaloneChecklistFiled,
    ChecklistApproved,
    ChecklistRejected,
    ChecklistWithdrawn,
    ChecklistPassed,
    ChecklistLinesMoved,
    ChecklistDeclared,
    GatePassFiled,
    GatePassPassed,
)


def _declaration_data(event: DomainEvent) -> tuple[str, dict[str, Any]]:
    if isinstance(event, DeclarationAssessed):
        duties = event.duties
        return event.status, {
            "channel": event.risk.channel,
            "risk_reasons": list(event.risk.reasons),
            "duties": {
                "tariff": duties.tariff,
                "consumption_tax": duties.consumption_tax,
                "vat": duties.vat,
                "total": duties.total,
                "currency": "CNY",
            },
        }
    if isinstance(event, InspectionRecorded):
        return event.status, {"inspection": {"result": event.result, "findings": event.findings}}
    if isinstance(event, DeclarationRejected):
        return "rejected", {"reason": event.reason}
    if isinstance(event, DeclarationWithdrawn):
        return "withdrawn", {"reason": event.reason}
    if isinstance(event, DutiesPaid):
        return event.status, {"paid": {"amount": event.amount, "currency": event.currency}}
    if isinstance(event, TransferRefused):
        return "refused", {}
    assert isinstance(event, ReleaseGranted | TransferAccepted)
    return event.status, {}


def draft(event: DomainEvent) -> Draft | None:
    """The receipt an event is, or None: most events (stock, lots, number series, keys,
    reference data) are facts of the ledger's own, not receipts."""
    if isinstance(event, _DECLARATION_EVENTS):
        status, data = _declaration_data(event)
        return Draft(
            type=f"declaration.{status}",
            subject_kind="declaration",
            subject_id=event.originator_id,
            data={"status": status, **data},
        )
    if isinstance(event, MovementRecorded):
        return Draft(
            type=f"movement.{event.view.kind}",
            subject_kind="movement",
            subject_id=event.originator_id,
            data={"movement": msgspec.to_builtins(event.view)},
        )
    if isinstance(event, WriteOffSubmitted | WriteOffCertified):
        status = "submitted" if isinstance(event, WriteOffSubmitted) else event.certification.result
        return Draft(
            type=f"write_off.{status}",
            subject_kind="write_off",
            subject_id=event.originator_id,
            data={"status": status},
        )
    return _tax_bill(event) or _checklist(event) or _gate_pass(event)


def _tax_bill(event: DomainEvent) -> Draft | None:
    if isinstance(event, LiabilityAssessed):
        what, data = "issued", {"tax": event.view.tax, "due_by": event.view.due_by}
    elif isinstance(event, LiabilityPaid):
        what, data = "paid", {"amount": event.amount, "late_fee": event.late_fee}
    elif isinstance(event, LiabilityWaived):
        what, data = "waived", {"reason": event.reason}
    else:
        return None
    return Draft(
        type=f"tax_bill.{what}",
        subject_kind="tax_bill",
        subject_id=event.originator_id,
        data=data,
    )


def _checklist_filed(event: ChecklistFiled | StandaloneChecklistFiled) -> dict[str, Any]:
    alone = isinstance(event, StandaloneChecklistFiled)
    return {
        # A declaration's checklist is approved with its release; one filed alone waits.
        "status": "filed" if alone else "approved",
        "checklist": {
            "checklist_no": event.checklist_no,
            "kind": event.kind,
            "direction": event.direction,
            "account_book": event.account_book,
            "zone": event.zone,
            "enterprise": event.enterprise,
            "declaration_no": getattr(event, "declaration_no", None),
            "lines": msgspec.to_builtins(event.lines),
        },
    }


def _checklist(event: DomainEvent) -> Draft | None:
    data: dict[str, Any]
    if isinstance(event, ChecklistFiled | StandaloneChecklistFiled):
        what, data = "filed", _checklist_filed(event)
    elif isinstance(event, ChecklistApproved):
        what, data = "approved", {"status": "approved"}
    elif isinstance(event, ChecklistRejected | ChecklistWithdrawn):
        what = "rejected" if isinstance(event, ChecklistRejected) else "withdrawn"
        data = {"status": what, "reason": event.reason}
    elif isinstance(event, ChecklistPassed | ChecklistLinesMoved):
        what = "passed" if isinstance(event, ChecklistPassed) else "moved"
        data = {
            "movement_id": str(event.movement_id),
            "quantities": {str(line): str(q) for line, q in sorted(event.quantities.items())},
        }
        if isinstance(event, ChecklistPassed):
            data["pass_no"] = event.pass_no
    elif isinstance(event, ChecklistDeclared):
        what, data = "declared", {"declaration_no": event.declaration_no}
    else:
        return None
    return Draft(
        type=f"checklist.{what}",
        subject_kind="checklist",
        subject_id=event.originator_id,
        data=data,
    )


def _gate_pass(event: DomainEvent) -> Draft | None:
    data: dict[str, Any]
    if isinstance(event, GatePassFiled):
        what = "filed"
        data = {
            "status": "filed",
            "gate_pass": {
                "pass_no": event.pass_no,
                "zone": event.zone,
                "direction": event.direction,
                "enterprise": event.enterprise,
                "vehicle": msgspec.to_builtins(event.vehicle),
                "gross_weight_kg": str(event.gross_weight_kg),
                "checklists": [c.checklist_no for c in event.checklists],
            },
        }
    elif isinstance(event, GatePassPassed):
        what = "passed"
        data = {
            "status": "passed",
            "measured_gross_weight_kg": str(event.measured_gross_weight_kg),
            "movements": [str(m) for m in event.movements],
        }
    else:
        return None
    return Draft(
        type=f"gate_pass.{what}",
        subject_kind="gate_pass",
        subject_id=event.originator_id,
        data=data,
    )


def matches(patterns: list[str], receipt_type: str) -> bool:
    """Whether a receipt of `receipt_type` is one the patterns ask for."""
    subject = receipt_type.split(".", 1)[0]
    return any(p in ("*", receipt_type, f"{subject}.*") for p in patterns)


def checked_patterns(loc: str, patterns: list[str]) -> list[str]:
    """A subscription's patterns: at least one, at most MAX_PATTERNS, each `*`, a subject's
    `<subject>.*` or a receipt type (422 at the pattern otherwise, naming what is allowed)."""
    p = Problems()
    if not patterns:
        p.add(loc, "name at least one receipt type, `<subject>.*` or `*`")
    if len(patterns) > MAX_PATTERNS:
        p.add(loc, f"at most {MAX_PATTERNS} patterns")
    known = {"*", *RECEIPT_TYPES, *(f"{s}.*" for s in SUBJECTS)}
    for n, pattern in enumerate(patterns):
        if pattern not in known:
            p.add(
                f"{loc}[{n}]",
                f"unknown receipt type {pattern[:64]!r}: one of {', '.join(RECEIPT_TYPES)},"
                " a subject's `<subject>.*` or `*`",
            )
    p.raise_if_any()
    return list(dict.fromkeys(patterns))
