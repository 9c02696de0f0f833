"""Tenancy decided once: who records each movement kind (domain/movement_kinds.py), what a
`Scope` sees and may do (domain/scope.py), and which books a caller may read or write
(domain/account_book.py `visible_book`)."""

from __future__ import annotations

from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.account_book import AccountBook, visible_book
from domain.errors import Forbidden, NotFound
from domain.events import Actor
from domain.movement_kinds import KINDS, check_recorder
from domain.scope import Scope

ROLES = ("admin", "enterprise", "operator", "officer", "auditor")
ACME, OTHER = "91610131MA00000010", "91610131MA00000029"
ENTERPRISE = Scope(role="enterprise", enterprise=ACME)
OPERATOR = Scope(role="operator", zone="XCBZ")
BOOK = AccountBook(id=UUID(int=1), version=1, book_no="B1", enterprise=ACME, zone="XCBZ", items={})


def test_gate_kinds_are_recorded_by_an_operator_and_book_kinds_by_the_enterprise():
    by_role = {kind: spec.rules.recorded_by for kind, spec in KINDS.items()}
    assert by_role == {
        "gate_in": "operator",
        "gate_out": "operator",
        "transfer_dispatch": "operator",
        "transfer_receipt": "operator",
        "processing": "enterprise",
        "adjustment": "enterprise",
        # The receiving book's enterprise (domain/in_zone_transfers.py).
        "in_zone_transfer": "enterprise",
        # The officer who witnessed it (domain/destruction.py).
        "destruction": "officer",
    }


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("role", ROLES)
def test_anyone_but_the_kinds_recorder_is_forbidden(kind, role):
    spec = KINDS[kind]
    actor = Actor(name="k", role=role, enterprise=ACME, zone="XCBZ")
    if role == spec.rules.recorded_by:
        check_recorder(spec, actor)
        return
    with pytest.raises(Forbidden) as refused:
        check_recorder(spec, actor)
    assert refused.value.detail == spec.rules.refusal


@pytest.mark.parametrize(
    ("scope", "narrowing"),
    [
        (ENTERPRISE, {"enterprise": ACME}),
        (OPERATOR, {"zone": "XCBZ"}),
        (Scope(role="officer"), {}),
        (Scope(role="auditor"), {}),
        (Scope(role="admin"), {}),
        (Scope(role="enterprise"), {}),  # a key bound to nothing narrows to nothing
    ],
)
def test_a_list_is_narrowed_to_the_callers_enterprise_or_zone(scope, narrowing):
    assert scope.narrowing == narrowing


def test_a_record_is_seen_by_its_enterprises_its_zones_operators_and_the_authorities():
    record = {"enterprises": (ACME, None), "zones": ("XCBZ", "XEPZ")}
    assert ENTERPRISE.sees(**record)
    assert not Scope(role="enterprise", enterprise=OTHER).sees(**record)
    assert OPERATOR.sees(**record)
    assert Scope(role="operator", zone="XEPZ").sees(**record)  # a transfer's other end
    assert not Scope(role="operator", zone="XHTZ").sees(**record)
    assert all(Scope(role=r).sees(**record) for r in ("officer", "auditor", "admin"))
    # A record naming no enterprise (or no zone) is invisible to that kind of tenant.
    assert not ENTERPRISE.sees(zones=("XCBZ",))
    assert not OPERATOR.sees(enterprises=(ACME,))
    assert OPERATOR.sees_zone("XEPZ", "XCBZ") and not OPERATOR.sees_zone("XEPZ", None)
    assert ENTERPRISE.sees_zone("XHTZ")


def test_an_operator_reads_its_zones_books_and_writes_none():
    book = {"enterprise": ACME, "zone": "XCBZ"}
    assert ENTERPRISE.sees_book(**book) and ENTERPRISE.sees_book(**book, writing=True)
    assert not Scope(role="enterprise", enterprise=OTHER).sees_book(**book)
    assert OPERATOR.sees_book(**book) and not OPERATOR.sees_book(**book, writing=True)
    assert not Scope(role="operator", zone="XHTZ").sees_book(**book)
    assert Scope(role="admin").sees_book(**book, writing=True)


def test_an_enterprise_acts_only_as_itself():
    ENTERPRISE.act_as(ACME, "$.declarant")
    with pytest.raises(Forbidden) as refused:
        ENTERPRISE.act_as(OTHER, "$.declarant")
    assert refused.value.detail == f"$.declarant must be your own USCC ({ACME})"
    Scope(role="admin").act_as(OTHER, "$.declarant")  # not an enterprise: no such rule
    assert ENTERPRISE.owns(ACME) and not ENTERPRISE.owns(OTHER) and not ENTERPRISE.owns(None)
    assert not Scope(role="officer", enterprise=ACME).owns(ACME)


def test_a_scope_is_the_actors_role_and_binding():
    actor = Actor(name="gate", role="operator", zone="XCBZ")
    assert Scope.of(actor) == OPERATOR


@pytest.mark.parametrize(
    ("scope", "reads", "writes"),
    [
        (ENTERPRISE, True, True),
        (Scope(role="enterprise", enterprise=OTHER), False, False),
        (OPERATOR, True, False),
        (Scope(role="operator", zone="XHTZ"), False, False),
        (Scope(role="officer"), True, True),
    ],
)
def test_another_tenants_book_does_not_exist_for_the_caller(scope, reads, writes):
    for writing, allowed in ((False, reads), (True, writes)):
        if allowed:
            assert visible_book(BOOK, scope, writing=writing) is BOOK
        else:
            with pytest.raises(NotFound):
                visible_book(BOOK, scope, writing=writing)
    with pytest.raises(NotFound):
        visible_book(None, scope)


scopes = st.builds(
    Scope,
    role=st.sampled_from(ROLES),
    enterprise=st.none() | st.sampled_from([ACME, OTHER]),
    zone=st.none() | st.sampled_from(["XCBZ", "XEPZ"]),
)


@given(scopes, st.sampled_from([ACME, OTHER]), st.sampled_from(["XCBZ", "XEPZ"]))
def test_whoever_may_write_a_book_may_read_it_and_its_records(scope, enterprise, zone):
    if scope.sees_book(enterprise=enterprise, zone=zone, writing=True):
        assert scope.sees_book(enterprise=enterprise, zone=zone)
    # A narrowed list shows exactly the records the scope sees.
    narrowing = scope.narrowing
    if "enterprise" in narrowing:
        assert scope.sees(enterprises=(narrowing["enterprise"],))
    if "zone" in narrowing:
        assert scope.sees(zones=(narrowing["zone"],))
    if not narrowing and scope.role not in ("enterprise", "operator"):
        assert scope.sees() and scope.sees_book(enterprise=enterprise, zone=zone, writing=True)
    if not narrowing and scope.role in ("enterprise", "operator"):  # a key bound to nothing
        assert not scope.sees(enterprises=(ACME, OTHER), zones=("XCBZ", "XEPZ"))
