"""Hostile and malformed requests: a clear 4xx naming the field, never a 5xx, nothing logged."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.samples import make_resident_id
from tests.support import declaration_body, new_key, onboard, running_ledger


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('hostile')}/ledger.sqlite3"
    with running_ledger(url) as ledger:
        yield ledger, onboard(ledger)


def _line(**overrides):
    line = declaration_body("x", "y")["lines"][0]
    line.update(overrides)
    return line


def _retail(amount="100.00", buyer=None, payer=None):
    buyer = buyer or make_resident_id(1)
    return {
        "flow": "second_line_out",
        "trade_mode": "1210",
        "currency": "CNY",
        "ecommerce": {
            "order": {
                "order_no": "O-1",
                "buyer_id": buyer,
                "buyer_name": "Li Na",
                "amount": amount,
            },
            "payment": {"payment_no": "P-1", "payer_id": payer or buyer, "amount": amount},
            "waybill": {"waybill_no": "W-1", "consignee_id": buyer},
        },
    }


def _cases(uscc: str, book: str):
    """(description, raw body or dict, expected status, expected loc or None)."""
    base = declaration_body(uscc, book)

    def with_(**kw):
        return {**declaration_body(uscc, book), **kw}

    def line(**kw):
        return with_(lines=[_line(**kw)])

    return [
        ("not json", b"{not json", 400, None),
        ("truncated", b'{"flow": "first_line_in"', 400, None),
        ("array body", b"[1, 2, 3]", 400, None),
        ("string body", b'"hello"', 400, None),
        ("empty body", b"", 400, None),
        ("deep nesting", b"[" * 100_000 + b"]" * 100_000, 400, None),
        ("deep object nesting", b'{"a":' * 50_000 + b"1" + b"}" * 50_000, 422, "$.a"),
        ("invalid utf-8", b'{"flow": "\xff\xfe"}', 400, None),
        ("NaN quantity", line(quantity="NaN"), 422, "$.lines[0].quantity"),
        ("Infinity price", line(unit_price="Infinity"), 422, "$.lines[0].unit_price"),
        ("huge exponent", line(quantity="1E+999999999"), 422, "$.lines[0].quantity"),
        (
            "huge exponent number",
            json.dumps(line(quantity=0))
            .replace('"quantity": 0', '"quantity": 1e999999999')
            .encode(),
            422,
            "$.lines[0].quantity",
        ),
        ("tiny exponent", line(quantity="1E-999999999"), 422, "$.lines[0].quantity"),
        ("zero with exponent", line(quantity="0E+999999999"), 422, "$.lines[0].quantity"),
        ("negative quantity", line(quantity="-5"), 422, "$.lines[0].quantity"),
        ("fractional pieces", line(quantity="1.5"), 422, "$.lines[0].quantity"),
        ("too many decimals", line(unit_price="1.00001"), 422, "$.lines[0].unit_price"),
        ("16 integer digits", line(unit_price="1234567890123456"), 422, "$.lines[0].unit_price"),
        ("float-ish string", line(quantity="1,000"), 422, "$.lines[0].quantity"),
        ("boolean quantity", line(quantity=True), 422, "$.lines[0].quantity"),
        ("wrong type line_no", line(line_no="one"), 422, "$.lines[0].line_no"),
        ("huge integer", line(item_no=10**40), 422, "$.lines[0].item_no"),
        ("unknown field", with_(surprise=1), 422, "$.surprise"),
        (
            "unknown nested field",
            with_(transport={"mode": "rail", "reference": "X", "speed": 3}),
            422,
            "$.transport.speed",
        ),
        ("missing field", {k: v for k, v in base.items() if k != "flow"}, 422, "$.flow"),
        ("null required", with_(currency=None), 422, "$.currency"),
        ("bad flow", with_(flow="sideways"), 422, "$.flow"),
        (
            "bad transport mode",
            with_(transport={"mode": "teleport", "reference": "X"}),
            422,
            "$.transport.mode",
        ),
        (
            "bad container check digit",
            with_(transport={"mode": "rail", "reference": "X", "container": "TGHU1234568"}),
            422,
            "$.transport.container",
        ),
        ("bad country", with_(country="ZZ"), 422, "$.country"),
        ("bad currency", with_(currency="EUX"), 422, "$.currency"),
        ("bad origin", line(origin_country="XX"), 422, "$.lines[0].origin_country"),
        ("missing origin inbound", line(origin_country=None), 422, "$.lines[0].origin_country"),
        ("bad HS code", line(hs_code="84713000"), 422, "$.lines[0].hs_code"),
        ("HS chapter 77", line(hs_code="7701000000"), 422, "$.lines[0].hs_code"),
        ("HS chapter 00", line(hs_code="0001000000"), 422, "$.lines[0].hs_code"),
        ("HS not the item's", line(hs_code="8471410000"), 422, "$.lines[0].hs_code"),
        ("bad unit", line(unit="XYZ"), 422, "$.lines[0].unit"),
        ("unknown item", line(item_no=99), 422, "$.lines[0].item_no"),
        ("no lines", with_(lines=[]), 422, "$.lines"),
        ("duplicate line_no", with_(lines=[_line(), _line()]), 422, "$.lines[1].line_no"),
        ("bad trade mode", with_(trade_mode="9999"), 422, "$.trade_mode"),
        ("unknown zone", with_(zone="XXXX"), 422, "$.zone"),
        ("unknown book", with_(account_book="NOPE"), 422, "$.account_book"),
        ("naive time", with_(occurred_at="2026-11-27T09:30:00"), 422, "$.occurred_at"),
        ("ancient time", with_(occurred_at="2001-01-01T00:00:00Z"), 422, "$.occurred_at"),
        ("future time", with_(occurred_at="2099-01-01T00:00:00+08:00"), 422, "$.occurred_at"),
        ("destination on import", with_(destination_zone="XHTZ"), 422, "$.destination_zone"),
        ("transfer without destination", with_(flow="transfer"), 422, "$.destination_zone"),
        (
            "ecommerce outside retail",
            with_(
                ecommerce={
                    "order": {"order_no": "1", "buyer_id": "1", "buyer_name": "a", "amount": "1"},
                    "payment": {"payment_no": "1", "payer_id": "1", "amount": "1"},
                    "waybill": {"waybill_no": "1", "consignee_id": "1"},
                }
            ),
            422,
            "$.ecommerce",
        ),
        (
            "retail list without documents",
            with_(flow="second_line_out", trade_mode="1210"),
            422,
            "$.ecommerce",
        ),
        ("bad freight", with_(freight="12.345"), 422, "$.freight"),
        (
            "retail list with a NaN order",
            with_(**_retail(amount="NaN")),
            422,
            "$.ecommerce.order.amount",
        ),
        (
            "retail list with a bad buyer id",
            with_(**_retail(buyer="610102199001010011")),
            422,
            "$.ecommerce.order.buyer_id",
        ),
        (
            "retail list paid by another",
            with_(**_retail(payer=make_resident_id(7))),
            422,
            "$.ecommerce.payment.payer_id",
        ),
        ("control characters", line(description="laptop\u0000"), 422, "$.lines[0].description"),
        ("long string", line(description="x" * 10_000), 422, "$.lines[0].description"),
        (
            "bad declarant check digit",
            with_(declarant=uscc[:-1] + ("0" if uscc[-1] != "0" else "1")),
            403,
            None,
        ),
    ]


def test_every_hostile_body_is_a_clean_4xx_and_changes_nothing(world):
    ledger, tenant = world
    for name, body, status, loc in _cases(tenant.uscc, tenant.book_no):
        before = ledger.log_state()
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        r = ledger.client.post(
            "/v1/declarations",
            content=raw,
            headers=ledger.headers(tenant.token_name, new_key())
            | {"Content-Type": "application/json"},
        )
        assert r.status_code == status, (name, r.status_code, r.text[:300])
        assert r.headers["content-type"] == "application/problem+json", name
        problem = r.json()
        assert problem["status"] == status and problem["detail"], name
        if loc is not None:
            assert loc in [e["loc"] for e in problem["errors"]], (name, problem)
        assert ledger.log_state() == before, name


def test_bodies_over_one_mebibyte_are_413(world):
    ledger, tenant = world
    before = ledger.log_state()
    big = b'{"flow": "' + b"x" * (1024 * 1024) + b'"}'
    r = ledger.client.post(
        "/v1/declarations", content=big, headers=ledger.headers(tenant.token_name, new_key())
    )
    assert r.status_code == 413
    assert ledger.log_state() == before


def test_requests_without_a_valid_token_are_401(world):
    ledger, tenant = world
    body = declaration_body(tenant.uscc, tenant.book_no)
    assert ledger.client.post("/v1/declarations", json=body).status_code == 401
    r = ledger.client.post("/v1/declarations", json=body, headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"


def test_wrong_roles_are_403(world):
    ledger, tenant = world
    body = declaration_body(tenant.uscc, tenant.book_no)
    for who in ("admin", "officer", "auditor"):
        assert ledger.post("/v1/declarations", who, body, key=new_key()).status_code == 403
    assert ledger.post("/v1/enterprises", tenant.token_name, {}).status_code == 403


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    field=st.sampled_from(
        [
            "flow",
            "trade_mode",
            "declarant",
            "zone",
            "account_book",
            "transport",
            "country",
            "currency",
            "lines",
            "incoterm",
            "freight",
            "insurance",
            "ecommerce",
            "client_ref",
            "occurred_at",
            "destination_zone",
        ]
    ),
    value=json_values,
)
def test_any_value_in_any_field_never_causes_a_5xx(world, field, value):
    ledger, tenant = world
    before = ledger.log_state()
    body = declaration_body(tenant.uscc, tenant.book_no)
    body[field] = value
    r = ledger.post("/v1/declarations", tenant.token_name, body, key=new_key())
    assert r.status_code < 500, r.text
    if r.status_code != 201:
        assert r.headers["content-type"] == "application/problem+json"
        assert ledger.log_state() == before


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        # A path with a GET answers HEAD too (api/app.py HeadAsGet), so Allow names it.
        ("DELETE", "/v1/enterprises", "GET, HEAD, POST"),
        ("PUT", "/v1/zones", "GET, HEAD"),
        ("DELETE", "/v1/movements", "GET, HEAD, POST"),
        ("PUT", "/v1/account-books", "POST"),
        # A literal path beside a template (`/v1/declarations/{ref}`): its own methods, as the
        # OpenAPI document lists them for it.
        ("OPTIONS", "/v1/declarations/batch", "POST"),
        ("PUT", "/v1/movements/batch", "POST"),
        ("DELETE", "/v1/declarations/9007", "GET, HEAD"),
    ],
)
def test_a_wrong_method_is_405_naming_every_method_of_the_path(world, method, path, allowed):
    ledger, _ = world
    before = ledger.log_state()
    r = ledger.client.request(method, path, headers=ledger.headers("admin"))
    assert r.status_code == 405, r.text
    assert r.headers["allow"] == allowed
    assert r.headers["content-type"] == "application/problem+json"
    assert ledger.log_state() == before
