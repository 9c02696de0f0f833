"""A buyer's personal data, shown whole only to those who need it (issue #14 item 7).

A cross-border retail list carries the buyer's resident identity number and name (order,
payment, waybill). The list's declarant enterprise, customs officers and auditors see them
whole; everyone else (gate operators, admins, another enterprise on a transfer's far end) sees
them masked: the identity number's first four characters (the issuing region) and last four,
the name's first character (`6101**********0013`, `李*`) - enough to match a parcel at a
gate, not enough to know the buyer. Personal Information Protection Law of the PRC (2021),
art. 6 (minimum necessary) and art. 51 (access control) [verify: article numbers].
"""

from __future__ import annotations

import msgspec

from domain.declaration import Ecommerce
from domain.scope import Scope

# Who sees a buyer whole, besides the list's declarant.
SEES_BUYERS = ("officer", "auditor")


def sees_buyer(scope: Scope, declarant: str) -> bool:
    return scope.role in SEES_BUYERS or scope.owns(declarant)


def mask_id(number: str) -> str:
    """A resident identity number with all but its first and last four characters hidden."""
    if len(number) <= 8:
        return "*" * len(number)
    return number[:4] + "*" * (len(number) - 8) + number[-4:]


def mask_name(name: str) -> str:
    """A name with all but its first character hidden."""
    return name[:1] + "*" * (len(name) - 1) if name else name


def masked(e: Ecommerce) -> Ecommerce:
    """The retail documents with the buyer's identity number and name masked."""
    replace = msgspec.structs.replace
    return replace(
        e,
        order=replace(
            e.order, buyer_id=mask_id(e.order.buyer_id), buyer_name=mask_name(e.order.buyer_name)
        ),
        payment=replace(e.payment, payer_id=mask_id(e.payment.payer_id)),
        waybill=replace(e.waybill, consignee_id=mask_id(e.waybill.consignee_id)),
    )
