"""A request's hash (ledger/requests.py) survives fields added to its body later: a retry of a
request recorded before the field existed is still the same request."""

from __future__ import annotations

from uuid import uuid4

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from domain.movements import GateIn
from ledger.requests import ADDED_FIELDS, request_hash

gate_ins = st.fixed_dictionaries(
    {
        "kind": st.just("gate_in"),
        "declaration": st.text("0123456789ABCDEF-", min_size=1, max_size=20),
        "lines": st.lists(
            st.fixed_dictionaries(
                {
                    "line_no": st.integers(1, 99),
                    "quantity": st.decimals("0.001", "1000", places=3).map(str),
                }
            ),
            min_size=1,
            max_size=3,
        ),
    },
    optional={"gate_note": st.text("abc-123", min_size=1, max_size=10)},
)


@given(gate_ins)
def test_a_gate_in_without_the_later_fields_hashes_as_before_they_existed(raw):
    body = msgspec.convert(raw, GateIn, strict=False)
    # The same body as recorded before `return_id` existed: every field but the added ones.
    before = {k: v for k, v in msgspec.to_builtins(body).items() if k not in ADDED_FIELDS}
    assert "return_id" in msgspec.to_builtins(body)
    assert request_hash("POST", "/v1/movements", body) == request_hash(
        "POST", "/v1/movements", before
    )


def test_a_later_field_that_is_set_is_part_of_the_hash():
    a, b = ({"kind": "gate_in", "return_id": str(uuid4()), "lines": []} for _ in range(2))
    first, second = (msgspec.convert(x, GateIn) for x in (a, b))
    assert request_hash("POST", "/m", first) != request_hash("POST", "/m", second)


def test_fields_added_to_one_body_type_leave_its_older_requests_hashes_alone():
    """A processing output's `role` (issue #18) and a standalone checklist's receiving book and
    items (issue #17), at their defaults, hash as the bodies did before they existed; set, they
    count."""
    from domain.processing import Processing
    from domain.standalone_checklists import FileChecklist

    output = {"item_no": 3, "quantity": "2"}
    old = {
        "kind": "processing",
        "zone": "XEPZ",
        "account_book": "B1",
        "inputs": [{"item_no": 1, "quantity": "4"}],
        "outputs": [output],
    }
    body = msgspec.convert(old, Processing, strict=False)
    before = msgspec.to_builtins(body)
    before["outputs"] = [{k: v for k, v in o.items() if k != "role"} for o in before["outputs"]]
    before = {k: v for k, v in before.items() if k not in ADDED_FIELDS}
    assert request_hash("POST", "/v1/movements", body) == request_hash(
        "POST", "/v1/movements", before
    )
    scrap = msgspec.convert({**old, "outputs": [{**output, "role": "scrap"}]}, Processing)
    assert request_hash("POST", "/v1/movements", scrap) != request_hash(
        "POST", "/v1/movements", body
    )

    filed = {
        "direction": "E",
        "account_book": "B1",
        "kind": "collected",
        "lines": [{"item_no": 1, "quantity": "4"}],
    }
    checklist = msgspec.convert(filed, FileChecklist, strict=False)
    then = msgspec.to_builtins(checklist)
    then.pop("destination_account_book")
    then["lines"] = [
        {k: v for k, v in x.items() if k != "destination_item_no"} for x in then["lines"]
    ]
    assert request_hash("POST", "/v1/checklists", checklist) == request_hash(
        "POST", "/v1/checklists", then
    )
    # A declaration's own `destination_account_book` (transfers, from the start) still counts.
    assert request_hash("POST", "/x", {"destination_account_book": None}) != request_hash(
        "POST", "/x", {}
    )
