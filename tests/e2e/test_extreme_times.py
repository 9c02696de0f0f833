"""Times at the calendar's edges (issue #14 item 4): every time parameter of every route is
range-checked and answers 422 at the parameter, never a 5xx; the OpenAPI document types them
as `date-time`, so clients and the fuzzer know them; nothing is written by a refusal."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import onboard, running_ledger

# The edges the adversarial probe found (OverflowError in the UTC conversion), the range's own
# edges, and times a careless client sends.
EXTREMES = [
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "1899-12-31T23:59:59Z",
    "9000-01-01T00:00:00Z",
    "1900-01-01T07:59:59+08:00",
]
IN_RANGE = ["1900-01-01T00:00:00Z", "8999-12-31T23:59:59Z", "2026-11-27T12:00:00+08:00"]


BOOK = "/v1/account-books/{book_no}"
NO_WRITE_OFF = "00000000-0000-4000-8000-000000000000"
# Every time query parameter of the API (the document must type exactly these, see below).
TIME_PARAMETERS = [
    (BOOK, "as_of"),
    (f"{BOOK}/entries", "from"),
    (f"{BOOK}/entries", "to"),
    (f"{BOOK}/statement", "from"),
    (f"{BOOK}/statement", "to"),
    (f"{BOOK}/statement", "as_of"),
    (f"{BOOK}/statement.csv", "from"),
    (f"{BOOK}/statement.csv", "to"),
    (f"{BOOK}/statement.csv", "as_of"),
    ("/v1/declarations", "from"),
    ("/v1/declarations", "to"),
    ("/v1/stats", "from"),
    ("/v1/stats", "to"),
    ("/v1/stats/channels", "from"),
    ("/v1/stats/channels", "to"),
    ("/v1/stats/clearance-time", "from"),
    ("/v1/stats/clearance-time", "to"),
    ("/v1/inventory", "as_of"),
    ("/v1/movements", "from"),
    ("/v1/movements", "to"),
    # A write-off as of a moment (an unknown one: 404 whatever the moment; the time is still
    # checked first).
    ("/v1/write-offs/{write_off_id}", "as_of"),
    *[(f"/v1/reference/{kind}", "as_of") for kind in ("exchange-rates", "tariff")],
    *[(f"/v1/reference/{kind}", "as_of") for kind in ("positive-list", "risk-rules")],
]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('extreme-times')}/ledger.sqlite3"
    with running_ledger(url) as ledger:
        tenant = onboard(ledger)
        yield ledger, tenant


def _time_parameters(ledger) -> list[tuple[str, str]]:
    """(path, parameter) of every GET route whose query parameter is typed date-time."""
    document = ledger.client.get("/openapi.json").json()
    found = []
    for path, operations in document["paths"].items():
        for parameter in operations.get("get", {}).get("parameters", []):
            schema = parameter.get("schema", {})
            options = [schema, *schema.get("anyOf", [])]
            if parameter["in"] == "query" and any(o.get("format") == "date-time" for o in options):
                found.append((path, parameter["name"]))
    return found


def _url(path: str, tenant, name: str, value: str) -> str:
    path = path.replace("{book_no}", tenant.book_no).replace("{write_off_id}", str(NO_WRITE_OFF))
    return f"{path}?{name}={quote(value, safe='')}"


def test_every_time_parameter_is_typed_date_time_in_the_document(world):
    ledger, _ = world
    assert set(_time_parameters(ledger)) == set(TIME_PARAMETERS)


@pytest.mark.parametrize("value", EXTREMES)
def test_a_time_outside_the_calendar_range_is_422_at_the_parameter(world, value):
    ledger, tenant = world
    before = ledger.log_state()
    for path, name in TIME_PARAMETERS:
        r = ledger.get(_url(path, tenant, name, value), "auditor")
        assert r.status_code == 422, (path, name, value, r.status_code, r.text[:300])
        problem = r.json()
        assert problem["errors"][0]["loc"] == f"query.{name}", (path, problem)
    assert ledger.log_state() == before


@pytest.mark.parametrize("value", IN_RANGE)
def test_a_time_inside_the_range_is_answered(world, value):
    ledger, tenant = world
    for path, name in TIME_PARAMETERS:
        r = ledger.get(_url(path, tenant, name, value), "auditor")
        # A book as of a moment before it was opened is 404, and so is a reference table as
        # known before anything was published; every other answer is 200.
        assert r.status_code in (200, 404), (path, name, value, r.status_code, r.text[:300])
        assert (
            r.status_code == 200
            or (path, name) == (BOOK, "as_of")
            or "reference" in path
            or ("write-offs" in path)
        )


OFFSETS = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda m: f"{'-' if m < 0 else '+'}{abs(m) // 60:02d}:{abs(m) % 60:02d}"
)
MOMENTS = st.builds(
    lambda y, mo, d, h, mi, s, off: f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}{off}",
    st.integers(1, 9999),
    st.integers(1, 12),
    st.integers(1, 28),
    st.integers(0, 23),
    st.integers(0, 59),
    st.integers(0, 59),
    OFFSETS,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=MOMENTS)
def test_any_moment_with_any_offset_is_answered_or_refused_never_a_5xx(world, value):
    ledger, tenant = world
    before = ledger.log_state()
    for path, name in TIME_PARAMETERS:
        r = ledger.get(_url(path, tenant, name, value), "auditor")
        assert r.status_code < 500, (path, name, value, r.text[:300])
    assert ledger.log_state() == before


@pytest.mark.parametrize("value", EXTREMES[:2])
def test_a_replay_as_of_outside_the_range_is_422_at_as_of(world, value):
    ledger, _ = world
    before = ledger.log_state()
    r = ledger.post("/v1/audit/replay", "auditor", {"as_of": value})
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["loc"] == "$.as_of"
    assert ledger.log_state() == before
