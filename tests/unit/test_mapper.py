"""The msgspec mapper round-trips every event exactly and upcasts old versions."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from uuid import uuid4

import msgspec
from hypothesis import given, settings

from domain.events import Actor, DomainEvent
from ledger.mapper import MsgspecMapper, decode_event, event_state
from tests.strategies import events

mapper = MsgspecMapper(transcoder=None)  # type: ignore[arg-type]


@settings(max_examples=300)
@given(events)
def test_any_event_round_trips_unchanged(event):
    stored = mapper.to_stored_event(event)
    restored = mapper.to_domain_event(stored)
    assert restored == event
    assert type(restored) is type(event)
    # Exact types and values, not just equality: offsets and decimal exponents survive.
    assert restored.occurred_at.utcoffset() == event.occurred_at.utcoffset()
    for a, b in zip(msgspec.structs.astuple(restored), msgspec.structs.astuple(event), strict=True):
        assert type(a) is type(b)
    assert mapper.to_stored_event(restored).state == stored.state


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
