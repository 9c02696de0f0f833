"""The msgspec mapper round-trips every event exactly and upcasts old versions."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from uuid import uuid4

import msgspec
import pytest
from eventsourcing.persistence import MapperDeserialisationError, StoredEvent
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.events import Actor, DomainEvent
from ledger.mapper import EventVersionError, MsgspecMapper, decode_event, event_state
from tests.strategies import (
    EVENT_STRATEGIES,
    MISSING,
    actors,
    aware_datetimes,
    domain_event_classes,
    events,
    facts,
    texts,
)

mapper = MsgspecMapper(transcoder=None)  # type: ignore[arg-type]


def _assert_round_trips(event: DomainEvent) -> None:
    stored = mapper.to_stored_event(event)
    restored = mapper.to_domain_event(stored)
    assert restored == event
    assert type(restored) is type(event)
    # Exact types and values, not just equality: offsets and decimal exponents survive.
    assert restored.occurred_at.utcoffset() == event.occurred_at.utcoffset()
    for a, b in zip(msgspec.structs.astuple(restored), msgspec.structs.astuple(event), strict=True):
        assert type(a) is type(b)
    assert mapper.to_stored_event(restored).state == stored.state


@settings(max_examples=300)
@given(events)
def test_any_event_round_trips_unchanged(event):
    _assert_round_trips(event)


def test_every_domain_event_class_has_a_strategy():
    """A new event class gets its strategy from its fields' types (tests/strategies.py); one
    whose fields the builder cannot make fails here, by name."""
    classes = domain_event_classes()
    assert len(classes) > 30
    assert not MISSING, MISSING
    assert set(EVENT_STRATEGIES) == set(classes)


@pytest.mark.parametrize("cls", domain_event_classes(), ids=lambda cls: cls.__name__)
@settings(max_examples=30)
@given(data=st.data())
def test_every_event_class_round_trips_unchanged(cls, data):
    """Each class on its own, so none is left to the luck of `events`' draws."""
    if cls not in EVENT_STRATEGIES:
        pytest.fail(f"{cls.__name__} has no strategy: {MISSING.get(cls)}")
    event = data.draw(EVENT_STRATEGIES[cls])
    assert type(event) is cls
    _assert_round_trips(event)


def test_declarations_are_drawn_with_and_without_ecommerce():
    seen = set()

    @settings(max_examples=60)
    @given(facts)
    def draw(f):
        seen.add(f.ecommerce is None)

    draw()
    assert seen == {True, False}


@pytest.mark.xfail(
    strict=True,
    reason='ledger/mapper.py decodes with strict=False, and msgspec then reads the text "-0" as'
    " the integer 0: Decimal('-0') comes back as Decimal('0'), re-encoded as different bytes",
)
def test_a_negative_zero_decimal_reads_back_as_zero():
    """Found by the strategies of every event class. tests/strategies.py leaves Decimal("-0")
    out of `exact_decimals` while this fails; when it passes, put it back."""
    from domain.exits import LotDrawn
    from tests.strategies import NEGATIVE_ZERO

    event = LotDrawn(
        originator_id=uuid4(),
        originator_version=1,
        actor=Actor(name="a", role="operator"),
        occurred_at=datetime(2026, 11, 27, 1, 30, tzinfo=UTC),
        movement_id=uuid4(),
        quantity=NEGATIVE_ZERO,
    )
    _assert_round_trips(event)
    assert str(mapper.to_domain_event(mapper.to_stored_event(event)).quantity) == "-0"


def test_decimal_keeps_its_exponent_and_datetime_its_offset():
    from domain.declaration import DeclarationNumberIssued

    event = DeclarationNumberIssued(
        originator_id=uuid4(),
        originator_version=1,
        actor=Actor(name="a", role="enterprise"),
        occurred_at=datetime.fromisoformat("2026-11-27T09:30:00+08:00"),
        serial=1,
        declaration_id=uuid4(),
    )
    back = mapper.to_domain_event(mapper.to_stored_event(event))
    assert back.occurred_at.isoformat() == "2026-11-27T09:30:00+08:00"


class ParcelWeighed(DomainEvent, frozen=True, kw_only=True):
    """v2 of a test event: v1 stored grams as an int, v2 keeps kilograms as a Decimal."""

    class_version = 2
    weight_kg: Decimal
    scale: str

    @staticmethod
    def upcast_v1_v2(state: dict) -> None:
        state["weight_kg"] = str(Decimal(state.pop("grams")) / 1000)
        state.setdefault("scale", "unknown")

    def apply(self, state):
        return state


def test_a_v1_stored_event_is_read_as_v2():
    topic = f"{ParcelWeighed.__module__}:ParcelWeighed"
    v1_state = msgspec.json.encode(
        {
            "actor": {"name": "gate-1", "role": "operator", "zone": "XCBZ"},
            "occurred_at": "2026-11-27T09:30:00+08:00",
            "grams": 1250,
        }
    )
    oid = uuid4()
    event = decode_event(topic, oid, 3, v1_state)
    assert isinstance(event, ParcelWeighed)
    assert event.weight_kg == Decimal("1.25") and event.scale == "unknown"
    assert event.originator_id == oid and event.originator_version == 3
    # Written again, it is stored as v2.
    assert msgspec.json.decode(event_state(event))["class_version"] == 2


def test_record_time_is_not_part_of_the_event():
    from domain.declaration import DeclarationNumberIssued

    event = DeclarationNumberIssued(
        originator_id=uuid4(),
        originator_version=1,
        actor=Actor(name="a", role="admin"),
        occurred_at=datetime.now(UTC),
        serial=7,
        declaration_id=uuid4(),
    )
    state = msgspec.json.decode(event_state(event))
    assert set(state) == {"actor", "occurred_at", "serial", "declaration_id"}


# -- versions and upcasts (docs/decisions/0010) ------------------------------------------------

CREDIT_TOPIC = "domain.enterprise:CreditClassChanged"


def _credit_change_v1(actor: Actor, occurred_at: datetime) -> bytes:
    """A CreditClassChanged as the v1 code stored it (no version key, no effective_from)."""
    return msgspec.json.encode(
        {
            "actor": actor,
            "occurred_at": occurred_at,
            "credit_class": "dishonest",
            "previous": "regular",
            "reason": "false declarations",
        }
    )


@settings(max_examples=200)
@given(actors, aware_datetimes)
def test_a_stored_v1_credit_change_reads_as_v2_with_effective_from_its_occurred_at(
    actor, occurred_at
):
    from domain.enterprise import CreditClassChanged

    stored = _credit_change_v1(actor, occurred_at)
    oid = uuid4()
    event = decode_event(CREDIT_TOPIC, oid, 2, stored)
    assert type(event) is CreditClassChanged and event.actor == actor
    assert event.effective_from == event.occurred_at == occurred_at
    assert event.effective_from.utcoffset() == occurred_at.utcoffset()
    # Pure: the same bytes give the same event every time, and the bytes are left alone.
    assert decode_event(CREDIT_TOPIC, oid, 2, stored) == event
    assert stored == _credit_change_v1(actor, occurred_at)


@settings(max_examples=200)
@given(actors, aware_datetimes, aware_datetimes, texts)
def test_a_v2_credit_change_round_trips_and_is_stored_as_v2(actor, occurred, effective, reason):
    from domain.enterprise import CreditClassChanged

    event = CreditClassChanged(
        originator_id=uuid4(),
        originator_version=4,
        actor=actor,
        occurred_at=occurred,
        credit_class="regular",
        previous="dishonest",
        reason=reason,
        effective_from=effective,
    )
    stored = mapper.to_stored_event(event)
    state = msgspec.json.decode(stored.state)
    assert list(state)[-1] == "class_version" and state["class_version"] == 2
    back = mapper.to_domain_event(stored)
    assert back == event and back.effective_from.utcoffset() == effective.utcoffset()
    assert mapper.to_stored_event(back).state == stored.state


def test_a_v1_event_is_stored_without_a_version_key():
    from domain.declaration import DeclarationNumberIssued

    assert DeclarationNumberIssued.class_version == 1
    event = DeclarationNumberIssued(
        originator_id=uuid4(),
        originator_version=1,
        actor=Actor(name="a", role="admin"),
        occurred_at=datetime.now(UTC),
        serial=1,
        declaration_id=uuid4(),
    )
    assert b"class_version" not in event_state(event)
    # "class_version": 1 spelled out is the same version.
    state = {**msgspec.json.decode(event_state(event)), "class_version": 1}
    topic = "domain.declaration:DeclarationNumberIssued"
    assert decode_event(topic, event.originator_id, 1, msgspec.json.encode(state)) == event


def _stored(state: dict, topic: str = CREDIT_TOPIC) -> StoredEvent:
    return StoredEvent(
        originator_id=uuid4(), originator_version=2, topic=topic, state=msgspec.json.encode(state)
    )


def _v2_state() -> dict:
    v1 = msgspec.json.decode(_credit_change_v1(Actor(name="o", role="officer"), datetime.now(UTC)))
    return {**v1, "effective_from": v1["occurred_at"]}


def test_a_version_newer_than_the_code_is_refused_not_misread():
    # v3 may have changed what a field means; converting it to v2 would drop what v2 lacks.
    with pytest.raises(
        MapperDeserialisationError, match=r"stored as v3, this code knows it up to v2"
    ):
        mapper.to_domain_event(_stored({**_v2_state(), "surety": "x", "class_version": 3}))
    # The same for a type still at v1 that a newer release wrote as v2.
    from domain.declaration import DeclarationNumberIssued

    state = {
        "actor": {"name": "a", "role": "admin"},
        "occurred_at": "2026-11-27T09:30:00+08:00",
        "serial": 1,
        "declaration_id": str(uuid4()),
        "class_version": 2,
    }
    topic = f"{DeclarationNumberIssued.__module__}:DeclarationNumberIssued"
    with pytest.raises(EventVersionError, match="DeclarationNumberIssued is stored as v2"):
        decode_event(topic, uuid4(), 1, msgspec.json.encode(state))


@pytest.mark.parametrize("version", ["2", True, 0, -1, 2.0, None, [2]])
def test_a_version_that_is_not_a_positive_integer_is_refused(version):
    with pytest.raises(MapperDeserialisationError, match="is not a version"):
        mapper.to_domain_event(_stored({**_v2_state(), "class_version": version}))


class ParcelScanned(DomainEvent, frozen=True, kw_only=True):
    """A test event at v3 whose v2 -> v3 step was forgotten."""

    class_version = 3
    barcode: str

    @staticmethod
    def upcast_v1_v2(state: dict) -> None:
        state["barcode"] = state.pop("code")

    def apply(self, state):
        return state


def test_a_missing_upcast_step_is_refused():
    topic = f"{ParcelScanned.__module__}:ParcelScanned"
    v1 = {"actor": {"name": "a", "role": "operator"}, "occurred_at": "2026-11-27T09:30:00Z"}
    with pytest.raises(EventVersionError, match="ParcelScanned: no upcast_v2_v3"):
        decode_event(topic, uuid4(), 1, msgspec.json.encode({**v1, "code": "X1"}))
    # From v2 on, the same missing step.
    with pytest.raises(EventVersionError, match="no upcast_v2_v3"):
        decode_event(
            topic, uuid4(), 1, msgspec.json.encode({**v1, "barcode": "X1", "class_version": 2})
        )


def test_an_upcast_that_cannot_read_the_state_says_so():
    # A v1 state without occurred_at was never written; the step names itself, not a KeyError.
    state = {"actor": {"name": "o", "role": "officer"}, "credit_class": "regular"}
    with pytest.raises(MapperDeserialisationError, match="upcast_v1_v2 cannot read"):
        mapper.to_domain_event(_stored(state))


def test_every_domain_event_has_every_upcast_step_of_its_version():
    classes = domain_event_classes()
    assert len(classes) > 30
    versioned = {}
    for cls in classes:
        assert type(cls.class_version) is int and cls.class_version >= 1, cls
        for n in range(1, cls.class_version):
            step = cls.__dict__.get(f"upcast_v{n}_v{n + 1}")
            assert isinstance(step, staticmethod), f"{cls.__name__} lacks upcast_v{n}_v{n + 1}"
        if cls.class_version > 1:
            versioned[cls.__name__] = cls.class_version
    # Adding a version? Add its v1 data to tests/fixtures and a test like test_upcast.py.
    assert versioned == {"CreditClassChanged": 2}


# -- the typed fast path and the general path read every state alike ---------------------------


@settings(max_examples=300)
@given(events)
def test_the_typed_path_reads_what_the_general_path_reads(event):
    from ledger.mapper import _decode_general

    stored = mapper.to_stored_event(event)
    topic, oid, version = stored.topic, stored.originator_id, stored.originator_version
    fast = decode_event(topic, oid, version, stored.state)
    general = _decode_general(type(event), oid, version, stored.state)
    assert fast == general == event
    # The id as text (how projections pass a stream id) decodes to the same UUID.
    assert decode_event(topic, str(oid), version, stored.state) == event


def _number_issued(version: int) -> DomainEvent:
    from domain.declaration import DeclarationNumberIssued

    return DeclarationNumberIssued(
        originator_id=uuid4(),
        originator_version=version,
        actor=Actor(name="a", role="enterprise"),
        occurred_at=datetime(2026, 11, 1, tzinfo=UTC),
        serial=version,
        declaration_id=uuid4(),
    )


def test_the_id_columns_win_over_ids_a_state_should_not_carry():
    event = _number_issued(3)
    state = event_state(event)
    tampered = b'{"originator_id":"%s","originator_version":99,' % str(uuid4()).encode() + state[1:]
    stored = mapper.to_stored_event(event)
    assert decode_event(stored.topic, event.originator_id, 3, tampered) == event


@pytest.mark.parametrize("state", [b"{}", b"", b"[]", b'{"actor":1}', b'{"x":1} '])
def test_a_state_the_typed_path_cannot_read_gets_the_general_error(state):
    from domain.declaration import DeclarationNumberIssued

    topic = f"{DeclarationNumberIssued.__module__}:DeclarationNumberIssued"
    stored = StoredEvent(originator_id=uuid4(), originator_version=1, topic=topic, state=state)
    with pytest.raises(MapperDeserialisationError, match="cannot decode stored event"):
        mapper.to_domain_event(stored)


# The last: JSON would read it as 12345678-1234-1234-1234-123456789abc, a valid UUID.
@pytest.mark.parametrize(
    "oid", ['abc"def', "abc\\u0030", "\\u0031" + "2345678-1234-1234-1234-123456789abc"]
)
def test_an_id_that_json_would_read_differently_is_refused_as_the_general_path_refuses(oid):
    event = _number_issued(1)
    topic = mapper.to_stored_event(event).topic
    with pytest.raises(msgspec.ValidationError):
        decode_event(topic, oid, 1, event_state(event))
