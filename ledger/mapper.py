"""msgspec mapper: domain events <-> stored events, with upcasting and exact value types.

The library's JSON transcoder is not used: msgspec encodes the event Struct itself (Decimal as
a string, datetimes in RFC 3339 with their offset, UUIDs canonical) and decodes by converting
the stored dict into the event class, so Decimal, UUID and tz-aware datetime come back exactly.
`originator_id` and `originator_version` are columns of the stored event, not part of the state.
"""

from __future__ import annotations

from typing import Any

import msgspec
from eventsourcing.persistence import Mapper, MapperDeserialisationError, StoredEvent
from eventsourcing.utils import get_topic, resolve_topic

from domain.events import DomainEvent

_ENCODER = msgspec.json.Encoder(decimal_format="string")
_DECODER = msgspec.json.Decoder(dict[str, Any])
_ID_FIELDS = ("originator_id", "originator_version")


def event_state(event: DomainEvent) -> bytes:
    """The canonical stored bytes of an event (what the chain hashes)."""
    state = msgspec.structs.asdict(event)
    for key in _ID_FIELDS:
        state.pop(key)
    class_version = type(event).class_version
    if class_version > 1:
        state["class_version"] = class_version
    return _ENCODER.encode(state)


def decode_event(topic: str, originator_id: Any, version: int, state: bytes) -> DomainEvent:
    """Rebuild a domain event from its stored parts, running upcasters first."""
    cls: type[DomainEvent] = resolve_topic(topic)
    data = _DECODER.decode(state)
    from_version = data.pop("class_version", 1)
    while from_version < cls.class_version:
        getattr(cls, f"upcast_v{from_version}_v{from_version + 1}")(data)
        from_version += 1
    data["originator_id"] = originator_id
    data["originator_version"] = version
    return msgspec.convert(data, cls, strict=False)


class MsgspecMapper(Mapper[Any]):
    """The mapper the ledger's application uses (compression and ciphers are not used)."""

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        return StoredEvent(
            originator_id=domain_event.originator_id,
            originator_version=domain_event.originator_version,
            topic=get_topic(type(domain_event)),
            state=event_state(domain_event),
        )

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        try:
            return decode_event(
                stored_event.topic,
                stored_event.originator_id,
                stored_event.originator_version,
                stored_event.state,
            )
        except (msgspec.DecodeError, msgspec.ValidationError, AttributeError) as e:
            msg = (
                f"cannot decode stored event {stored_event.topic} "
                f"{stored_event.originator_id} v{stored_event.originator_version}: {e}"
            )
            raise MapperDeserialisationError(msg) from e
