"""The submission seals a retail list's buyer, and the quota follows the buyer's pseudonym.

Decided through the in-memory unit of work (tests/unit/domain_world.py) with a real key store
in memory: the recorded facts hold tokens where the identity numbers and the name were, the
quota stream is named by the pseudonym (no stream named by the identity number is written),
a list written before sealing still counts toward the same year, and a withdrawn sealed list
gives its amount back to the pseudonym's stream.
"""

from __future__ import annotations

import uuid
from decimal import Decimal as D

import msgspec
import pytest

from domain import quota
from domain.declaration import Declaration, Ecommerce
from domain.errors import Conflict
from domain.events import Actor
from domain.privacy import mask_id, mask_name, parse_token, personal_values, shown
from domain.quota import BuyerQuota
from domain.unit_of_work import Decision
from tests.unit.domain_world import (
    BUYER,
    NOW,
    VAULT,
    World,
    buyer_quota_id,
    company,
    retail_body,
)


def _world() -> tuple[World, str]:
    w = World()
    uscc = w.enterprise(1)
    w.book("B1", uscc)
    return w, uscc


def test_the_recorded_list_holds_tokens_and_no_identity_in_clear():
    w, uscc = _world()
    view = w.submit_body(retail_body(uscc, "B1", "1000.00"))
    state = w.uow.load(view.id, Declaration)
    assert state is not None and state.facts.ecommerce is not None
    recorded = msgspec.json.encode(state).decode()
    assert BUYER not in recorded and "Li Lei" not in recorded
    values = personal_values(state.facts.ecommerce)
    tokens = {name: parse_token(v) for name, v in values.items()}
    assert all(t is not None and t.pseudonym == VAULT.pseudonym(BUYER) for t in tokens.values())
    # The answer a decision returns is sealed too; the API opens it for its reader.
    assert view.ecommerce is not None and view.ecommerce.order.buyer_id.startswith("sealed1.")
    opened = VAULT.open(values.items())
    whole = shown(state.facts.ecommerce, opened, whole=True)
    assert (whole.order.buyer_id, whole.order.buyer_name) == (BUYER, "Li Lei")
    part = shown(state.facts.ecommerce, opened, whole=False)
    assert (part.order.buyer_id, part.order.buyer_name) == (mask_id(BUYER), mask_name("Li Lei"))


def test_the_quota_stream_is_named_by_the_pseudonym_never_by_the_identity_number():
    w, uscc = _world()
    w.submit_body(retail_body(uscc, "B1", "1000.00"))
    assert w.uow.load(buyer_quota_id(BUYER, 2026), BuyerQuota) is not None
    assert w.uow.load(quota.quota_id(BUYER, 2026), BuyerQuota) is None


def _legacy_use(w: World, amount: str) -> uuid.UUID:
    """A list written before sealing: its amount on the stream named by the number in clear."""
    legacy = w.uow.pending(quota.quota_id(BUYER, 2026), BuyerQuota)
    listed = uuid.uuid4()
    old = Actor(name="old", role="enterprise")
    quota.use(legacy, listed, D(amount), actor=old, occurred_at=NOW)
    w.uow.commit(Decision([legacy], None))
    return listed


def test_lists_written_before_sealing_count_toward_the_same_year():
    w, uscc = _world()
    _legacy_use(w, "25000.00")
    with pytest.raises(Conflict) as refused:
        w.submit_body(retail_body(uscc, "B1", "1000.01"))
    assert refused.value.rule == "quota_exceeded" and "25000.00" in str(refused.value)
    assert w.submit_body(retail_body(uscc, "B1", "1000.00")).status == "awaiting_payment"
    state = w.uow.load(buyer_quota_id(BUYER, 2026), BuyerQuota)
    assert state is not None and state.used == D("1000.00")


def test_a_withdrawn_sealed_list_gives_back_to_the_pseudonyms_stream():
    w, uscc = _world()
    view = w.submit_body(retail_body(uscc, "B1", "3000.00"))
    w.decide("withdrawal", view.id, _withdraw(), company(uscc))
    state = w.uow.load(buyer_quota_id(BUYER, 2026), BuyerQuota)
    assert state is not None and (state.used, state.by_declaration) == (D(0), {})


def _withdraw() -> object:
    from domain.declaration import WithdrawDeclaration

    return WithdrawDeclaration(reason="the buyer cancelled")


def test_a_list_in_clear_is_shown_as_it_is_masked_by_role():
    e = msgspec.convert(retail_body("x", "B1", "1.00")["ecommerce"], Ecommerce)
    assert shown(e, {}, whole=True) == e
    part = shown(e, {}, whole=False)
    assert part.order.buyer_id == mask_id(BUYER) and part.payment.payer_id == mask_id(BUYER)
