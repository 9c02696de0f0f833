"""Number series in blocks (domain/numbering.py): numbers are unique and each names its document.

The decisions run on the in-memory unit of work (tests/memory_uow.py); several "processes" are
unit of works over the same streams, each with its own held blocks, whose decisions may be
decided on the same state and committed one after the other (the second then loses on a
version, as on the store's key, and decides again). A small block size makes blocks fill up.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from itertools import pairwise
from unittest import mock
from uuid import UUID, uuid5

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain import numbering
from domain.declaration import DeclarationNumberIssued, NumberSeries, number_series_id
from domain.events import Actor, DomainEvent, Pending
from domain.numbering import SerialBlockReserved, block_id, next_block, place, take_serial
from domain.unit_of_work import Decision, UnitOfWork
from tests.memory_uow import MemoryUnitOfWork, StaleWrite

SERIES = number_series_id("9007", 2026, "1")
ACTOR = Actor(name="test", role="enterprise")
NOW = datetime(2026, 11, 20, 1, 0, tzinfo=UTC)
NS = UUID("0d7e9a43-3b0e-4b9c-9d8a-2c8f1f6f0b11")


def number(ids: list[UUID]) -> Callable[[UnitOfWork], Decision[list[int]]]:
    """A decision numbering each of `ids` in turn (several numbers in one write)."""

    def decide(uow: UnitOfWork) -> Decision[list[int]]:
        saves: list[Pending[NumberSeries]] = []
        serials = []
        for one in ids:
            taken = take_serial(uow, SERIES, ACTOR, NOW)
            taken.issue_on.record(
                DeclarationNumberIssued,
                actor=ACTOR,
                occurred_at=NOW,
                serial=taken.serial,
                declaration_id=one,
            )
            saves += [p for p in taken.saves if all(p is not q for q in saves)]
            serials.append(taken.serial)
        return Decision(saves, serials)

    return decide


def issued(streams: dict[UUID, list[DomainEvent]]) -> list[DeclarationNumberIssued]:
    return [e for s in streams.values() for e in s if isinstance(e, DeclarationNumberIssued)]


def run_until_committed(uow: MemoryUnitOfWork, ids: list[UUID]) -> list[int]:
    for _ in range(20):
        try:
            return uow.run(number(ids))
        except StaleWrite:
            continue
    raise AssertionError("never committed")


step = st.one_of(
    st.tuples(st.just("number"), st.integers(0, 2), st.integers(1, 4)),
    st.tuples(st.just("race"), st.integers(0, 2), st.integers(0, 2)),
    st.tuples(st.just("restart"), st.integers(0, 2), st.just(0)),
    st.tuples(st.just("refused"), st.integers(0, 2), st.just(0)),
)


@settings(max_examples=200, deadline=None)
@given(
    steps=st.lists(step, max_size=40),
    block_size=st.integers(1, 5),
    in_blocks=st.booleans(),
    direct_before=st.integers(0, 7),
)
def test_numbers_are_unique_and_each_names_its_declaration(
    steps: list[tuple[str, int, int]], block_size: int, in_blocks: bool, direct_before: int
) -> None:
    with mock.patch.object(numbering, "BLOCK_SIZE", block_size):
        # A log written before blocks: the series numbered straight, one event per serial.
        first = MemoryUnitOfWork()
        given_to: dict[int, UUID] = {}
        made = iter(range(1 << 30))

        def fresh(k: int) -> list[UUID]:
            return [uuid5(NS, str(next(made))) for _ in range(k)]

        for one in fresh(direct_before):
            (serial,) = first.run(number([one]))
            given_to[serial] = one
        assert sorted(given_to) == list(range(1, direct_before + 1))
        processes = [MemoryUnitOfWork(in_blocks, first.streams) for _ in range(3)]
        for kind, p, q in steps:
            if kind == "number":
                ids = fresh(q)
                serials = run_until_committed(processes[p], ids)
                # Numbers of one write are consecutive unless a block filled up between them.
                steps_ok = (b - a == 1 or b % block_size == 1 for a, b in pairwise(serials))
                assert all(steps_ok), serials
                for serial, one in zip(serials, ids, strict=True):
                    assert serial not in given_to
                    given_to[serial] = one
            elif kind == "race":
                # Both decide on the same state; the second to commit may lose and decide again.
                ids, q = fresh(2), q if q != p else (p + 1) % 3
                a = number(ids[:1])(processes[p])
                b = number(ids[1:])(processes[q])
                for uow, decision, one in ((processes[p], a, ids[0]), (processes[q], b, ids[1])):
                    try:
                        (serial,) = uow.commit(decision)
                    except StaleWrite:
                        (serial,) = run_until_committed(uow, [one])
                    assert serial not in given_to
                    given_to[serial] = one
            elif kind == "restart":
                processes[p] = MemoryUnitOfWork(in_blocks, first.streams)
            else:  # a decision that reserves, then is refused: nothing written
                with pytest.raises(ValueError):
                    processes[p].run(lambda uow: (number(fresh(1))(uow), _refuse())[1])
        events = issued(first.streams)
        assert len({e.serial for e in events}) == len(events) == len(given_to)
        for serial, one in given_to.items():
            no = f"900720261{serial:09d}"
            assert all(uow.declaration_id(no) == one for uow in (first, *processes))
        # A serial never given is no declaration's (a gap reads as none).
        gaps = set(range(1, max(given_to, default=0) + 2)) - set(given_to)
        assert all(first.declaration_id(f"900720261{s:09d}") is None for s in gaps)
        series = first.events_of(SERIES)
        if not in_blocks:  # one writer: gapless, straight from the series
            assert sorted(given_to) == list(range(1, len(given_to) + 1))
            assert not any(isinstance(e, SerialBlockReserved) for e in series)
        else:  # the direct serials first, then only whole aligned blocks, never twice
            blocks = [e for e in series if isinstance(e, SerialBlockReserved)]
            assert [e.block for e in blocks] == sorted({e.block for e in blocks})
            assert all(e.first == e.block * block_size + 1 for e in blocks)
            assert all(e.first > direct_before for e in blocks)
            reserved = {s for e in blocks for s in range(e.first, e.last + 1)}
            assert set(given_to) - set(range(1, direct_before + 1)) <= reserved


def _refuse() -> Decision[list[int]]:
    raise ValueError("refused after numbering")


def test_a_block_is_aligned_and_found_by_division() -> None:
    assert numbering.BLOCK_SIZE == 100  # part of the log's format: never change it
    assert place(1) == (0, 1) and place(100) == (0, 100) and place(101) == (1, 1)
    assert next_block(None) == 0
    direct = NumberSeries(id=SERIES, version=7, last_serial=7)
    assert next_block(direct) == 1  # the first block wholly above serial 7: 101..200
    reserved = NumberSeries(id=SERIES, version=8, last_serial=200, in_blocks=True)
    assert next_block(reserved) == 2
    assert block_id(SERIES, 0) != block_id(SERIES, 1)
    assert block_id(SERIES, 0) != block_id(number_series_id("9007", 2027, "1"), 0)


def test_a_process_numbers_from_its_block_and_a_new_one_reserves_another() -> None:
    one = MemoryUnitOfWork(in_blocks=True)
    assert one.run(number([uuid5(NS, "a"), uuid5(NS, "b")])) == [1, 2]
    assert one.run(number([uuid5(NS, "c")])) == [3]
    # The series holds one reservation; the numbers are on the block's stream.
    (reservation,) = one.events_of(SERIES)
    assert isinstance(reservation, SerialBlockReserved)
    assert (reservation.block, reservation.first, reservation.last) == (0, 1, 100)
    assert [e.originator_version for e in one.events_of(block_id(SERIES, 0))] == [1, 2, 3]
    other = one.process()  # another server, or this one started again
    assert other.run(number([uuid5(NS, "d")])) == [101]
    assert one.run(number([uuid5(NS, "e")])) == [4]
    assert one.declaration_id("900720261000000101") == uuid5(NS, "d")
    assert other.declaration_id("900720261000000004") == uuid5(NS, "e")
    assert one.declaration_id("900720261000000005") is None


def test_a_new_year_is_a_new_series_numbered_from_its_own_first_block() -> None:
    """The process holds a block of 2026's series; 2027's first number reserves block 0 of
    2027's series (serial 1), and 2026's numbers go on from the block it holds."""
    one = MemoryUnitOfWork(in_blocks=True)
    next_year = number_series_id("9007", 2027, "1")

    def number_in(series: UUID, name: str) -> Callable[[UnitOfWork], Decision[int]]:
        def decide(uow: UnitOfWork) -> Decision[int]:
            taken = take_serial(uow, series, ACTOR, NOW)
            taken.issue_on.record(
                DeclarationNumberIssued,
                actor=ACTOR,
                occurred_at=NOW,
                serial=taken.serial,
                declaration_id=uuid5(NS, name),
            )
            return Decision(taken.saves, taken.serial)

        return decide

    assert one.run(number_in(SERIES, "a")) == 1
    assert one.run(number_in(SERIES, "b")) == 2
    assert one.run(number_in(next_year, "c")) == 1
    assert one.run(number_in(SERIES, "d")) == 3
    assert one.run(number_in(next_year, "e")) == 2
    assert one.declaration_id("900720271000000001") == uuid5(NS, "c")
    assert one.declaration_id("900720261000000003") == uuid5(NS, "d")
    assert len(one.events_of(next_year)) == len(one.events_of(SERIES)) == 1
