"""A lot's papers are `Paper` Structs now; the bytes stored before (dicts) stay the bytes."""

from __future__ import annotations

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from domain.movements import LotCreated, Paper

TEXT = st.text(max_size=40)


@given(kind=TEXT, id_=TEXT, number=TEXT)
def test_a_paper_encodes_to_the_bytes_of_the_dict_it_replaced(kind: str, id_: str, number: str):
    as_dict = {"kind": kind, "id": id_, "number": number}
    assert msgspec.json.encode(Paper(kind, id_, number)) == msgspec.json.encode(as_dict)


@given(papers=st.lists(st.tuples(TEXT, TEXT, TEXT), max_size=5))
def test_stored_dicts_decode_to_papers_that_encode_them_again(papers):
    stored = msgspec.json.encode([{"kind": k, "id": i, "number": n} for k, i, n in papers])
    decoded = msgspec.json.decode(stored, type=list[Paper])
    assert decoded == [Paper(k, i, n) for k, i, n in papers]
    assert msgspec.json.encode(decoded) == stored


def test_a_lot_event_of_the_frozen_log_keeps_its_bytes():
    stored = (
        b'{"zone":"XCBZ","account_book":"T9007W000001","item_no":1,"goods_status":"bonded",'
        b'"quantity":"600","parents":[],"documents":[{"kind":"declaration","id":"50f4",'
        b'"number":"900720261000000001"},{"kind":"container","id":"TGHU1234567",'
        b'"number":"TGHU1234567"}]}'
    )
    fields = msgspec.json.decode(stored)
    documents = msgspec.convert(fields["documents"], list[Paper])
    assert documents[1] == Paper("container", "TGHU1234567", "TGHU1234567")
    encoded = msgspec.json.encode({**fields, "documents": documents})
    assert encoded == stored
    assert "documents" in LotCreated.__struct_fields__
