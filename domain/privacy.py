"""A buyer's personal data: sealed per buyer in the log, shown whole only to those who need it,
erasable (issue #14 item 7; docs/decisions/0017-buyer-data-sealed-per-buyer.md).

A cross-border retail list carries the buyer's resident identity number and name (order,
payment, waybill). The list's declarant enterprise, customs officers and auditors see them
whole; everyone else (gate operators, admins, another enterprise on a transfer's far end) sees
them masked: the identity number's first four characters (the issuing region) and last four,
the name's first character (`6101**********0013`, `李*`) - enough to match a parcel at a
gate, not enough to know the buyer. Personal Information Protection Law of the PRC (2021),
art. 6 (minimum necessary) and art. 51 (access control) [verify: article numbers].

In the log these four fields (`PERSONAL_FIELDS`) are never stored in clear: the submission
replaces each by a token, `sealed1.<pseudonym>.<generation>.<ciphertext>`, sealed with the
buyer's data key (a `BuyerVault`, ledger/buyer_keys.py: AES-GCM, the key kept outside the
log). The pseudonym is a keyed hash of the identity number (the buyer's yearly quota stream
is named by it, domain/quota.py); the generation says which of the buyer's keys sealed it (a
new one after an erasure). Reads open the tokens when they answer (`shown`): a destroyed key
reads `[erased]`. The domain never sees a key: it asks the vault through these Protocols.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol
from uuid import UUID

import msgspec

from domain.declaration import Ecommerce
from domain.events import AggregateState, DomainEvent, stream_id
from domain.scope import Scope

# Who sees a buyer whole, besides the list's declarant.
SEES_BUYERS = ("officer", "auditor")
# The retail list's personal fields, as (document, field): each is sealed on its own.
PERSONAL_FIELDS = (
    ("order", "buyer_id"),
    ("order", "buyer_name"),
    ("payment", "payer_id"),
    ("waybill", "consignee_id"),
)
NAME_FIELDS = frozenset({"order.buyer_name"})
TOKEN_PREFIX = "sealed1."  # noqa: S105 - a format marker, not a secret
# What a read shows for a sealed field whose key was destroyed by an erasure, and for one that
# cannot be opened otherwise (its key missing from the key store, or the sealed value altered).
ERASED = "[erased]"
UNREADABLE = "[unreadable]"


class SealedToken(msgspec.Struct, frozen=True):
    """The parts of a sealed field: whose key (pseudonym, generation) and the sealed bytes
    (base64url text, the vault's format)."""

    pseudonym: str
    generation: int
    sealed: str


def parse_token(value: str) -> SealedToken | None:
    """The parts of a sealed field, or None when `value` is not one (a list written before
    sealing holds its fields in clear)."""
    if not value.startswith(TOKEN_PREFIX):
        return None
    parts = value[len(TOKEN_PREFIX) :].split(".")
    if len(parts) != 3 or not parts[0] or not parts[1].isdigit() or not parts[2]:
        return None
    return SealedToken(parts[0], int(parts[1]), parts[2])


class BuyerVault(Protocol):
    """Seals a buyer's personal fields with the buyer's current data key (kept outside the
    log); the ledger's implementation is ledger/buyer_keys.py."""

    def pseudonym(self, resident_id: str) -> str:
        """The buyer's keyed pseudonym (the same identity number gives the same one)."""
        ...

    def seal(self, resident_id: str, values: Mapping[str, str]) -> dict[str, str]:
        """Each `field -> value` sealed into a token with the buyer's current key."""
        ...


class BuyerOpener(Protocol):
    """Opens sealed fields for a read; what cannot be opened reads ERASED or UNREADABLE."""

    def open(self, sealed: Iterable[tuple[str, str]]) -> Mapping[tuple[str, str], str]:
        """(field, token) -> the field's value, ERASED or UNREADABLE."""
        ...


def personal_values(e: Ecommerce) -> dict[str, str]:
    """The list's personal fields by name (`order.buyer_id` ...)."""
    return {f"{doc}.{field}": getattr(getattr(e, doc), field) for doc, field in PERSONAL_FIELDS}


def with_personal(e: Ecommerce, values: Mapping[str, str]) -> Ecommerce:
    """The documents with their personal fields replaced by `values` (by name)."""
    replace = msgspec.structs.replace
    docs = {}
    for doc in ("order", "payment", "waybill"):
        changes = {
            field: values[f"{doc}.{field}"]
            for d, field in PERSONAL_FIELDS
            if d == doc and f"{doc}.{field}" in values
        }
        docs[doc] = replace(getattr(e, doc), **changes)
    return replace(e, **docs)


def sealed(e: Ecommerce, vault: BuyerVault) -> Ecommerce:
    """The documents as the log keeps them: every personal field sealed with the buyer's key
    (the consignee's identity too: it is on the buyer's list, and goes with it)."""
    return with_personal(e, vault.seal(e.order.buyer_id, personal_values(e)))


def tokens(e: Ecommerce) -> list[tuple[str, str]]:
    """The (field, token) pairs of the sealed fields of one list (none for a list in clear)."""
    return [(k, v) for k, v in personal_values(e).items() if parse_token(v) is not None]


def sees_buyer(scope: Scope, declarant: str) -> bool:
    return scope.role in SEES_BUYERS or scope.owns(declarant)


def shown(e: Ecommerce, opened: Mapping[tuple[str, str], str], *, whole: bool) -> Ecommerce:
    """The documents as a reader sees them: each sealed field opened (`opened`, from the
    vault) or ERASED/UNREADABLE, and masked unless the reader sees the buyer `whole`."""
    values = {}
    for name, value in personal_values(e).items():
        plain = opened.get((name, value), UNREADABLE) if parse_token(value) else value
        if plain in (ERASED, UNREADABLE) or whole:
            values[name] = plain
        else:
            values[name] = mask_name(plain) if name in NAME_FIELDS else mask_id(plain)
    return with_personal(e, values)


def mask_id(number: str) -> str:
    """A resident identity number with all but its first and last four characters hidden."""
    if len(number) <= 8:
        return "*" * len(number)
    return number[:4] + "*" * (len(number) - 8) + number[-4:]


def mask_name(name: str) -> str:
    """A name with all but its first character hidden."""
    return name[:1] + "*" * (len(name) - 1) if name else name


# -- erasure -----------------------------------------------------------------------------------


class BuyerErasures(AggregateState, frozen=True, kw_only=True):
    """The erasures of one buyer (by pseudonym): the key generations destroyed so far."""

    pseudonym: str
    generations: list[int]


class BuyerErased(DomainEvent, frozen=True, kw_only=True):
    """An admin erased a buyer: the data keys of `generations` are destroyed right after this
    event is written, so the lists they sealed read `[erased]` from then on. The buyer is
    named by pseudonym only; `forced` says it happened before the retention period ended
    (`retention_ends`, ISO date; None when no list of the buyer is in the log)."""

    pseudonym: str
    generations: list[int]
    reason: str
    forced: bool
    retention_ends: str | None

    def apply(self, state: BuyerErasures | None) -> BuyerErasures:
        before = state.generations if state else []
        return BuyerErasures(
            id=self.originator_id,
            version=self.originator_version,
            pseudonym=self.pseudonym,
            generations=sorted({*before, *self.generations}),
        )


def erasure_id(pseudonym: str) -> UUID:
    return stream_id("buyer-erasure", pseudonym)
