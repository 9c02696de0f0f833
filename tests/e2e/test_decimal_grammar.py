"""Decimals only in the contract's grammar (issue #14 item 6; docs/api.md, "Decimals").

msgspec decodes a decimal string with Python's Decimal(), which reads "+10", " 10", "1_000",
"1e2", "NaN" and Arabic-Indic digits; a JSON number's text (1e2, 1.5E3) it reads exactly, with
its exponent. The contract writes a decimal `-?digits(.digits)?` in ASCII digits, as a string or
a JSON number: anything else is 422 at the field, and nothing is logged. One check does it for
every request body (api/http.py `decode_body` with domain/values.py `decimal_texts`): the first
tests below walk every body type of the OpenAPI document and every decimal field in it.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.app import create_app
from api.http import SCHEMA_TYPES, decode_body
from api.settings import Settings
from domain.errors import ValidationFailed
from domain.risk import RiskRules
from domain.risk_rules import DEFAULT_RULES
from domain.values import DECIMAL_TEXT, decimal_text
from tests.samples import line
from tests.support import declaration_body, new_key, onboard, running_ledger

GRAMMAR = re.compile(r"-?[0-9]+(\.[0-9]+)?")  # docs/api.md, written out again on purpose

# The probe's findings and their relatives: each read as a number by Python's Decimal().
REFUSED_STRINGS = [
    "\u0661\u0660",  # Arabic-Indic 10
    "\uff11\uff10",  # full-width 10
    "+10",
    " 10",
    "10 ",
    "\u00a010",
    "1_000",
    "1e2",
    "1E+2",
    "1.5E3",
    ".5",
    "5.",
    "--5",
    "NaN",
    "-Infinity",
    "sNaN",
    "",
    "0x10",
]
# JSON numbers with an exponent: not in the grammar either.
REFUSED_NUMBERS = ["1e2", "1E2", "1.5E3", "1e-2", "10E+0"]
ACCEPTED_STRINGS = ["10", "0010", "10.50", "-0", "0.00001"]

DOCUMENT = create_app(Settings(database_url="sqlite:///:memory:")).openapi()
BY_NAME = {t.__name__: t for t in SCHEMA_TYPES if isinstance(t, type)}


def _body_types() -> list[type]:
    """Every request body type of the OpenAPI document (each member of a tagged union)."""
    names: set[str] = set()
    for operations in DOCUMENT["paths"].values():
        for operation in operations.values():
            schema = (
                operation.get("requestBody", {}).get("content", {}).get("application/json", {})
            ).get("schema", {})
            refs = [schema, *schema.get("oneOf", [])]
            names |= {r["$ref"].rpartition("/")[2] for r in refs if "$ref" in r}
    return [BY_NAME[n] for n in sorted(names)]


# Structs that check their own figures on decoding (a channel name, a rate in (0, 1]): a real
# value stands in for the generic sample, and their decimals are `CHECKED` (below).
VALID = {RiskRules: msgspec.to_builtins(msgspec.structs.replace(DEFAULT_RULES, seed=""))}
CHECKED: set[str] = set()


def _known(t: Any, value: Any, decimals: list[str], path: str) -> None:
    """The decimal paths of a real `value` of type `t`."""
    kind = type(t).__name__
    if kind == "StructType":
        for f in t.fields:
            if f.encode_name in value:
                _known(f.type, value[f.encode_name], decimals, f"{path}.{f.encode_name}")
    elif kind in ("ListType", "VarTupleType"):
        for n, item in enumerate(value):
            _known(t.item_type, item, decimals, f"{path}[{n}]")
    elif kind == "DictType":
        for key, item in value.items():
            _known(t.value_type, item, decimals, f"{path}.{key}")
    elif kind == "UnionType":
        for member in t.types:
            if type(member).__name__ != "NoneType" and value is not None:
                _known(member, value, decimals, path)
                return
    elif kind == "DecimalType":
        decimals.append(path)
        CHECKED.add(path)


def _sample(t: Any, decimals: list[str], path: str) -> Any:
    """A JSON value msgspec decodes as `t` (every optional field filled, so that every decimal
    field is present); the paths of its decimals are appended to `decimals`."""
    kind = type(t).__name__
    if kind == "StructType" and t.cls in VALID:
        _known(t, VALID[t.cls], decimals, path)
        return VALID[t.cls]
    if kind == "StructType":
        value = {t.tag_field: t.tag} if t.tag_field else {}
        for f in t.fields:
            value[f.encode_name] = _sample(f.type, decimals, f"{path}.{f.encode_name}")
        return value
    if kind in ("ListType", "TupleType", "VarTupleType", "SetType", "FrozenSetType"):
        return [_sample(t.item_type, decimals, f"{path}[0]")]
    if kind == "DictType":
        return {"1": _sample(t.value_type, decimals, f"{path}.1")}
    if kind == "UnionType":
        member = next(m for m in t.types if type(m).__name__ != "NoneType")
        return _sample(member, decimals, path)
    if kind == "Metadata":  # a type annotated for the document only (e.g. maxLength)
        return _sample(t.type, decimals, path)
    if kind == "DecimalType":
        decimals.append(path)
        return "1"
    return _SCALARS[kind](t)


_SCALARS = {
    "StrType": lambda t: "A" * max(t.min_length or 1, 1),
    "IntType": lambda t: t.ge if t.ge is not None else (t.gt + 1 if t.gt is not None else 1),
    "BoolType": lambda t: True,
    "EnumType": lambda t: next(iter(t.cls)).value,
    "LiteralType": lambda t: t.values[0],
    "DateTimeType": lambda t: "2026-11-27T09:30:00+08:00",
    "DateType": lambda t: "2026-11-27",
    "UUIDType": lambda t: "00000000-0000-4000-8000-000000000000",
    "AnyType": lambda t: "A",
    # A batch item's body (api/batch.py): raw JSON, decoded as its single route's body, whose
    # decimals that route's entry checks (and test_declaration_batch.py through a batch).
    "RawType": lambda t: {},
}


def _decimal_fields() -> list[tuple[type, dict[str, Any], str]]:
    found = []
    for cls in _body_types():
        decimals: list[str] = []
        body = _sample(msgspec.inspect.type_info(cls), decimals, "$")
        found += [(cls, body, path) for path in decimals]
    return found


DECIMAL_FIELDS = _decimal_fields()


def _put(body: Any, path: str, raw: str) -> bytes:
    """The body's JSON with the value at `path` replaced by `raw` JSON text."""
    marker = "\u0000decimal\u0000"
    target = json.loads(json.dumps(body))
    parts = re.findall(r"\.([^.\[]+)|\[(\d+)\]", path)
    node = target
    for name, index in parts[:-1]:
        node = node[int(index)] if index else node[name]
    name, index = parts[-1]
    node[int(index) if index else name] = marker
    return json.dumps(target).replace(json.dumps(marker), raw).encode()


def test_the_walk_finds_the_decimal_fields_of_every_kind_of_body():
    """The list below is what the document holds today; a new decimal field shows up here."""
    names = {f"{cls.__name__} {path}" for cls, _, path in DECIMAL_FIELDS}
    assert {
        "SubmitDeclaration $.lines[0].quantity",
        "SubmitDeclaration $.lines[0].unit_price",
        "SubmitDeclaration $.freight",
        "SubmitDeclaration $.ecommerce.order.amount",
        "SubmitDeclaration $.ecommerce.payment.amount",
        "PayDuties $.amount",
        "RegisterBom $.inputs[0].net_consumption",
        "RegisterBom $.inputs[0].loss_rate",
    } <= names, sorted(names)
    assert len({cls for cls, _, _ in DECIMAL_FIELDS}) >= 5, sorted(names)


@pytest.mark.parametrize(
    ("cls", "body", "path"),
    DECIMAL_FIELDS,
    ids=[f"{cls.__name__}{path}" for cls, _, path in DECIMAL_FIELDS],
)
def test_every_decimal_field_of_every_body_takes_the_grammar_only(cls, body, path):
    for raw in [json.dumps(text) for text in ACCEPTED_STRINGS] + ["10", "-3", "10.50", "0.0"]:
        if path not in CHECKED:
            decode_body(_put(body, path, raw), cls)
            continue
        # A figure its struct checks may be out of its range, never out of the grammar.
        try:
            decode_body(_put(body, path, raw), cls)
        except ValidationFailed as e:
            assert "-?digits(.digits)?" not in str(e), (raw, e.errors)
    refused = [json.dumps(s) for s in REFUSED_STRINGS] + REFUSED_NUMBERS
    for raw in refused:
        with pytest.raises(ValidationFailed) as e:
            decode_body(_put(body, path, raw), cls)
        if path in CHECKED and "-?digits(.digits)?" not in str(e.value):
            # Read as a number by msgspec, the struct refused its range first: refused still.
            (error,) = e.value.errors
            assert path.startswith(error.loc.partition("[...]")[0]), (raw, error)
            continue
        assert [err.loc for err in e.value.errors] == [path], (raw, e.value.errors)
        assert "-?digits(.digits)?" in e.value.errors[0].msg


@pytest.mark.parametrize("text", ["1e2", "+10", "\u0661\u0660"])
def test_every_bad_decimal_of_a_body_is_named_at_once(text):
    cls, body, _ = next(f for f in DECIMAL_FIELDS if f[0].__name__ == "SubmitDeclaration")
    paths = [p for c, _, p in DECIMAL_FIELDS if c is cls]
    raw = json.loads(json.dumps(body))
    for path in paths:
        raw = json.loads(_put(raw, path, json.dumps(text)))
    with pytest.raises(ValidationFailed) as e:
        decode_body(json.dumps(raw).encode(), cls)
    assert sorted(err.loc for err in e.value.errors) == sorted(paths)


# Any text: arbitrary Unicode, grammar-shaped text, and grammar-shaped text with one hostile
# character put in (a sign, a blank, an underscore, an exponent, a non-ASCII digit).
GRAMMATICAL = st.from_regex(GRAMMAR, fullmatch=True).filter(lambda s: s.isascii())
HOSTILE = st.sampled_from(list("+ _eE.,-\u00a0\u0660\u0665\u06f5\u0966\uff15\u2212\u202e\n"))
NEAR_MISS = st.builds(
    lambda s, c, i: s[: i % (len(s) + 1)] + c + s[i % (len(s) + 1) :],
    GRAMMATICAL,
    HOSTILE,
    st.integers(0, 40),
)
ANY_TEXT = st.one_of(
    st.text(max_size=12),
    GRAMMATICAL,
    NEAR_MISS,
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
)


def _fits_unit_price(text: str) -> bool:
    """docs/api.md: unit prices >= 0 with at most 4 decimals and at most 15 integer digits."""
    whole, _, fraction = text.lstrip("-").partition(".")
    value = Decimal(text)
    return (
        (value >= 0 or value.is_zero())
        and len(fraction.rstrip("0")) <= 4
        and len(whole.lstrip("0")) <= 15
    )


@settings(max_examples=1000, deadline=None)
@given(text=ANY_TEXT)
def test_a_string_is_a_decimal_exactly_when_it_is_in_the_grammar(text):
    """The one check (domain/values.py) against the grammar written out here."""
    if GRAMMAR.fullmatch(text):
        assert decimal_text("$.x", text) == Decimal(text)
        assert str(decimal_text("$.x", text)) == str(Decimal(text))
    else:
        with pytest.raises(ValidationFailed):
            decimal_text("$.x", text)
    assert bool(DECIMAL_TEXT.fullmatch(text)) == bool(GRAMMAR.fullmatch(text))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('decimals')}/ledger.sqlite3"
    with running_ledger(url) as ledger:
        yield ledger, onboard(ledger)


def _declare(ledger, tenant, raw: bytes):
    headers = ledger.headers(tenant.token_name, new_key()) | {"Content-Type": "application/json"}
    return ledger.client.post("/v1/declarations", content=raw, headers=headers)


def _with_line_value(tenant, field: str, raw: str) -> bytes:
    body = declaration_body(tenant.uscc, tenant.book_no, lines=[line(1, quantity="2")])
    return _put(body, f"$.lines[0].{field}", raw)


@pytest.mark.parametrize(
    "raw", [json.dumps(s) for s in REFUSED_STRINGS] + REFUSED_NUMBERS, ids=repr
)
def test_the_probes_decimals_are_422_at_the_quantity_and_log_nothing(world, raw):
    ledger, t = world
    before = ledger.log_state()
    r = _declare(ledger, t, _with_line_value(t, "quantity", raw))
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert [e["loc"] for e in r.json()["errors"]] == ["$.lines[0].quantity"], r.json()
    assert ledger.log_state() == before


@pytest.mark.parametrize(
    ("raw", "expected"),
    [('"12"', "12"), ("12", "12"), ('"0012"', "12"), ("12.0", "12.0"), ('"12.000"', "12.000")],
)
def test_quantities_in_the_grammar_are_taken_as_strings_or_json_numbers(world, raw, expected):
    ledger, t = world
    r = _declare(ledger, t, _with_line_value(t, "quantity", raw))
    assert r.status_code == 201, r.text
    assert r.json()["lines"][0]["quantity"] == expected


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=ANY_TEXT, as_number=st.booleans())
def test_a_unit_price_is_taken_exactly_when_in_the_grammar_and_its_range(world, text, as_number):
    """Through the route: accepted (201, the price equal to Decimal(text)) exactly when the text
    is in the grammar and within the unit price's own rules; otherwise 422 at the field and an
    unchanged log. As a JSON number only the texts that are JSON numbers are sent."""
    ledger, t = world
    if as_number:
        try:
            json.loads(text, parse_constant=lambda c: 1 / 0)
        except (ValueError, ZeroDivisionError):
            as_number = False
        else:
            as_number = bool(re.fullmatch(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?", text))
    raw = text if as_number else json.dumps(text)
    before = ledger.log_state()
    r = _declare(ledger, t, _with_line_value(t, "unit_price", raw))
    if GRAMMAR.fullmatch(text) and _fits_unit_price(text):
        assert r.status_code == 201, (raw, r.text)
        assert Decimal(r.json()["lines"][0]["unit_price"]) == Decimal(text)
    else:
        assert r.status_code == 422, (raw, r.text)
        assert [e["loc"] for e in r.json()["errors"]] == ["$.lines[0].unit_price"], r.json()
        assert ledger.log_state() == before
