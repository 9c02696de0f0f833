"""msgspec mapper: domain events <-> stored events, with upcasting and exact value types.

The library's JSON transcoder is not used: msgspec encodes the event Struct itself (Decimal as
a string, datetimes in RFC 3339 with their offset, UUIDs canonical) and decodes by converting
the stored dict into the event class, so Decimal, UUID and tz-aware datetime come back exactly.
`originator_id` and `originator_version` are columns of the stored event, not part of the state.

Versions (docs/decisions/0010): an event class at version N > 1 stores `"class_version": N`
as the last key of its state; no key means 1. Every reader - the application's repository,
the projections' `decode_entry`, anything else that turns stored bytes into events - goes
through `decode_event`, which brings an old state up to the class's version with the class's
`upcast_vK_vK+1` steps before converting it, and refuses a version it does not know. The
stored bytes are never rewritten: the chain hashes them as they were stored.
The library's own upcasting (in `Mapper.to_domain_event`) never runs here, because this mapper
replaces that method; the naming convention (`class_version`, `upcast_vN_vM`) is kept.
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
VERSION_KEY = "class_version"
_VERSION_KEY = b'"class_version"'


class EventVersionError(ValueError):
    """A stored event's version cannot be brought to its class's: never guess, refuse."""


def event_state(event: DomainEvent) -> bytes:
    """The canonical stored bytes of an event (what the chain hashes)."""
    state = msgspec.structs.asdict(event)
    for key in _ID_FIELDS:
        state.pop(key)
    class_version = type(event).class_version
    if class_version > 1:
        state[VERSION_KEY] = class_version
    return _ENCODER.encode(state)


def upcast(cls: type[DomainEvent], data: dict[str, Any]) -> dict[str, Any]:
    """Bring a decoded stored state (a private dict, changed in place) to `cls`'s version.

    Runs `cls.upcast_v1_v2`, `upcast_v2_v3` ... from the stored version up. A version above
    the class's was written by newer code: converting it would silently drop what this code
    does not know (msgspec ignores unknown fields), so it is refused, as is a version that is
    not a positive integer or a missing step.
    """
    name = cls.__name__
    stored = data.pop(VERSION_KEY, 1)
    if type(stored) is not int or stored < 1:
        raise EventVersionError(f"{name}: stored {VERSION_KEY} {stored!r} is not a version")
    if stored > cls.class_version:
        raise EventVersionError(
            f"{name} is stored as v{stored}, this code knows it up to v{cls.class_version}: "
            "the log was written by a newer release; run that release to read it"
        )
    while stored < cls.class_version:
        step = getattr(cls, f"upcast_v{stored}_v{stored + 1}", None)
        if not callable(step):
            raise EventVersionError(f"{name}: no upcast_v{stored}_v{stored + 1}")
        try:
            step(data)
        except (KeyError, TypeError, ValueError) as e:
            # Upcasts are total over what their version could store: this state is not that.
            msg = f"{name}: upcast_v{stored}_v{stored + 1} cannot read the stored state: {e!r}"
            raise EventVersionError(msg) from e
        stored += 1
    return data


class _Typed:
    """How a topic's current-version states decode straight into the class (no dict between):
    the class, its typed decoder, and how such a state ends."""

    __slots__ = ("cls", "decode", "ending", "versioned")

    def __init__(self, cls: type[DomainEvent]) -> None:
        self.cls = cls
        self.decode = msgspec.json.Decoder(cls, strict=False).decode
        # A v1 state has no version key; a vN state (N > 1) ends with it (`event_state`).
        v = cls.class_version
        self.versioned = v > 1
        self.ending = b"}" if v == 1 else b'"%s":%d}' % (VERSION_KEY.encode(), v)


_TYPED: dict[str, _Typed] = {}


def decode_event(topic: str, originator_id: Any, version: int, state: bytes) -> DomainEvent:
    """Rebuild a domain event from its stored parts, running upcasters first.

    A state already at its class's version (what nearly every stored event is) is decoded by
    msgspec straight into the class, the id columns added as the last keys (so they win over
    anything the state says, as below); anything else, or anything that fast path cannot
    read, takes the general path: decode to a dict, upcast, convert (the same result, or the
    error that names what is wrong)."""
    typed = _TYPED.get(topic)
    if typed is None:
        typed = _TYPED[topic] = _Typed(resolve_topic(topic))
    if (
        type(state) is bytes
        and state.endswith(typed.ending)
        and (typed.versioned or _VERSION_KEY not in state)
    ):
        oid = originator_id if type(originator_id) is str else str(originator_id)
        # An id with a quote or a backslash (never one the ledger wrote) would be read as JSON
        # here, not as the text it is: such an id takes the general path.
        if '"' in oid or "\\" in oid:
            return _decode_general(typed.cls, originator_id, version, state)
        try:
            return typed.decode(
                b'%b,"originator_id":"%b","originator_version":%d}'
                % (state[:-1], oid.encode(), version)
            )
        except (msgspec.DecodeError, msgspec.ValidationError, TypeError):
            pass  # the general path says what is wrong, or reads what this one could not
    return _decode_general(typed.cls, originator_id, version, state)


def _decode_general(
    cls: type[DomainEvent], originator_id: Any, version: int, state: bytes
) -> DomainEvent:
    data = upcast(cls, _DECODER.decode(state))
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
        except (
            msgspec.DecodeError,
            msgspec.ValidationError,
            AttributeError,
            EventVersionError,
        ) as e:
            msg = (
                f"cannot decode stored event {stored_event.topic} "
                f"{stored_event.originator_id} v{stored_event.originator_version}: {e}"
            )
            raise MapperDeserialisationError(msg) from e
