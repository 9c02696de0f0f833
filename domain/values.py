"""Checks of single values: decimals, identifiers, codes. Each raises ValidationFailed at a path."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any, TypeVar

import msgspec
import pycountry
from stdnum import iso6346
from stdnum.cn import ric, uscc
from stdnum.exceptions import ValidationError as StdnumError

from domain import hs_nomenclature
from domain.errors import FieldError, ValidationFailed
from domain.reference import UNITS, WHOLE_UNITS

T = TypeVar("T")

MAX_INTEGER_DIGITS = 15
# The contract's grammar of a decimal in a request (docs/api.md, "Decimals"): an optional minus,
# ASCII digits, and a point with more ASCII digits. Python's Decimal() reads far more ("+10",
# " 10", "1_000", "1e2", "NaN", Arabic-Indic digits), and msgspec decodes with it.
DECIMAL_TEXT = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
DECIMAL_GRAMMAR = 'a decimal is written -?digits(.digits)? in ASCII digits ("1000", "-2.50")'
HS_CODE = re.compile(r"^\d{10}$")
CUSTOMS_CODE = re.compile(r"^\d{4}[0-9A-Z]{6}$")
BOOK_NO = re.compile(r"^[A-Z0-9][A-Z0-9-]{0,31}$")
# Refused in every text field: C0 and C1 controls and DEL; the bidirectional controls (U+202E
# can make "exe.txt" read as "txt.exe" in a list of names); zero-width and invisible characters
# (two names that look alike but differ); line and paragraph separators (a broken log line).
CONTROL_CHARACTER = re.compile(
    "[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u2069\ufeff]"
)
BUSINESS_WINDOW_PAST = timedelta(days=90)
BUSINESS_WINDOW_FUTURE = timedelta(minutes=5)


class Problems:
    """Collects field errors so one answer names every bad field, not just the first."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def add(self, loc: str, msg: str, rule: str | None = None) -> None:
        self.errors.append(FieldError(loc, msg, rule))

    def check(self, loc: str, fn: Callable[..., T], *args: Any) -> T | None:
        """`fn(loc, *args)`, or None with its problems kept when it refuses the value."""
        try:
            return fn(loc, *args)
        except ValidationFailed as e:
            self.errors.extend(e.errors)
            return None

    def raise_if_any(self) -> None:
        if self.errors:
            raise ValidationFailed(self.errors)


def decimal_value(loc: str, value: Decimal, *, places: int, positive: bool = False) -> Decimal:
    """A finite decimal with at most 15 integer digits and `places` decimals, in plain notation.

    msgspec accepts "NaN" and "1E+999999999" as Decimals; arithmetic on those would raise
    decimal.Overflow later, so magnitude is checked from the exponent before anything else.
    """
    if not value.is_finite():
        raise ValidationFailed.at(loc, "must be a finite number")
    if value.is_zero():
        value = Decimal(0)  # also drops an absurd exponent such as 0E+999999
    elif value.adjusted() >= MAX_INTEGER_DIGITS:
        raise ValidationFailed.at(loc, f"at most {MAX_INTEGER_DIGITS} integer digits")
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -places:
        value = value.normalize()
        exponent = value.as_tuple().exponent
        if isinstance(exponent, int) and exponent < -places:
            raise ValidationFailed.at(loc, f"at most {places} decimal places")
    if positive and value <= 0:
        raise ValidationFailed.at(loc, "must be greater than zero")
    if not positive and value < 0:
        raise ValidationFailed.at(loc, "must not be negative")
    # Plain notation: 1E+3 becomes 1000, never an exponent in responses.
    return Decimal(format(value, "f"))


def decimal_text(loc: str, text: str) -> Decimal:
    """The decimal a request writes as `text`, refused unless it is in the contract's grammar."""
    if DECIMAL_TEXT.fullmatch(text) is None:
        raise ValidationFailed.at(loc, DECIMAL_GRAMMAR)
    return Decimal(text)


def decimal_texts(value: object, raw: object, loc: str = "$") -> Iterator[FieldError]:
    """The decimals of a decoded request body written outside the contract's grammar.

    `value` is what msgspec decoded (Structs, lists, dicts); `raw` the same JSON read with each
    string and number kept as its text (json.loads with parse_int=str, parse_float=str), so a
    Decimal of `value` is checked against the text it was read from, string or JSON number.
    """
    if isinstance(value, Decimal):
        if not isinstance(raw, str) or DECIMAL_TEXT.fullmatch(raw) is None:
            yield FieldError(loc, DECIMAL_GRAMMAR)
    elif isinstance(value, msgspec.Struct) and isinstance(raw, dict):
        fields = zip(value.__struct_fields__, value.__struct_encode_fields__, strict=True)
        for attr, name in fields:
            if name in raw:
                yield from decimal_texts(getattr(value, attr), raw[name], f"{loc}.{name}")
    elif isinstance(value, list | tuple) and isinstance(raw, list):
        for i, (item, raw_item) in enumerate(zip(value, raw, strict=False)):
            yield from decimal_texts(item, raw_item, f"{loc}[{i}]")
    elif isinstance(value, dict) and isinstance(raw, dict):
        for item, (key, raw_item) in zip(value.values(), raw.items(), strict=False):
            yield from decimal_texts(item, raw_item, f"{loc}.{key}")


def quantity(loc: str, value: Decimal, unit: str) -> Decimal:
    q = decimal_value(loc, value, places=5, positive=True)
    if unit in WHOLE_UNITS and q != q.to_integral_value():
        raise ValidationFailed.at(loc, f"unit {unit} counts whole pieces")
    return q


def unit_price(loc: str, value: Decimal) -> Decimal:
    return decimal_value(loc, value, places=4)


def amount(loc: str, value: Decimal, *, positive: bool = False) -> Decimal:
    return decimal_value(loc, value, places=2, positive=positive)


def positive_amount(loc: str, value: Decimal) -> Decimal:
    return amount(loc, value, positive=True)


def hs_code(loc: str, code: str) -> str:
    """10 digits (8 tariff + 2 supervision); chapters 01-97, and chapter 77 is reserved; the
    first 6 digits an HS 2022 subheading, so goods are never registered or declared under a
    code no tariff can list (issue #15 item 3)."""
    if not HS_CODE.fullmatch(code):  # `$` would also match before a final newline
        raise ValidationFailed.at(loc, "HS code must be 10 digits")
    chapter = int(code[:2])
    if not 1 <= chapter <= 97 or chapter == 77:
        raise ValidationFailed.at(loc, f"HS chapter {code[:2]} does not exist")
    if not hs_nomenclature.subheading_exists(code):
        subheading = hs_nomenclature.dotted(code)
        raise ValidationFailed.at(
            loc, f"HS {code}: subheading {subheading} is not in the HS 2022 nomenclature"
        )
    return code


def country(loc: str, code: str) -> str:
    if len(code) != 2 or pycountry.countries.get(alpha_2=code) is None:
        raise ValidationFailed.at(loc, f"{code!r} is not an ISO 3166 alpha-2 country code")
    return code


def currency(loc: str, code: str) -> str:
    if len(code) != 3 or pycountry.currencies.get(alpha_3=code) is None:
        raise ValidationFailed.at(loc, f"{code!r} is not an ISO 4217 currency code")
    return code


def unit(loc: str, code: str) -> str:
    if code not in UNITS:
        raise ValidationFailed.at(loc, f"{code!r} is not a UN/ECE Rec 20 unit this ledger knows")
    return code


def uscc_code(loc: str, code: str) -> str:
    """Unified Social Credit Code: 18 characters with a mod-31 check (python-stdnum)."""
    return _stdnum(loc, code, uscc.validate, "USCC")


def _checked(validate: Callable[[str], object], code: str) -> tuple[str, str | None]:
    """A stdnum validator's answer for one code: (canonical form, None) or ("", its error).

    Pure, and the same codes (a declarant's USCC, a container) come back request after
    request, so the answers for codes up to 64 characters are kept in a bounded cache.
    """
    if len(code) <= 64:
        return _cached_check(validate, code)
    return _check(validate, code)


@lru_cache(maxsize=4096)
def _cached_check(validate: Callable[[str], object], code: str) -> tuple[str, str | None]:
    return _check(validate, code)


def _check(validate: Callable[[str], object], code: str) -> tuple[str, str | None]:
    try:
        return str(validate(code)), None
    except StdnumError as e:
        return "", str(e)


def _stdnum(loc: str, code: str, validate: Callable[[str], object], what: str) -> str:
    canonical, msg = _checked(validate, code)  # `msg`: python-stdnum's, translated too
    if msg is not None:
        raise ValidationFailed.at(loc, f"not a valid {what}: {msg}")
    if canonical != code:
        raise ValidationFailed.at(loc, f"write the {what} as {canonical}, without separators")
    return code


def customs_code(loc: str, code: str) -> str:
    """10-character customs registration code: 4 region digits, zone type, ownership, serial."""
    if not CUSTOMS_CODE.fullmatch(code):
        raise ValidationFailed.at(loc, "customs code is 4 digits and 6 digits or capitals")
    return code


def container_no(loc: str, code: str) -> str:
    """ISO 6346 container number with its check digit (python-stdnum), which reads past
    blanks - a line separator too - so control and invisible characters are refused first."""
    if CONTROL_CHARACTER.search(code):
        raise ValidationFailed.at(
            loc, "must not contain control, bidirectional or invisible characters"
        )
    canonical, msg = _checked(iso6346.validate, code)
    if msg is not None:
        raise ValidationFailed.at(loc, f"not a valid ISO 6346 container number: {msg}")
    return canonical


def resident_id(loc: str, code: str) -> str:
    """PRC resident identity number, 18 characters with its check digit (python-stdnum)."""
    try:
        return str(ric.validate(code))
    except StdnumError as e:
        msg = str(e)
        raise ValidationFailed.at(loc, f"not a valid resident identity number: {msg}") from None


def book_no(loc: str, code: str) -> str:
    if not BOOK_NO.fullmatch(code):
        raise ValidationFailed.at(loc, "book number is 1-32 capitals, digits or '-'")
    return code


def text(loc: str, value: str, *, max_length: int = 255) -> str:
    stripped = value.strip()
    if not stripped:
        raise ValidationFailed.at(loc, "must not be empty")
    if len(value) > max_length:
        raise ValidationFailed.at(loc, f"at most {max_length} characters")
    if CONTROL_CHARACTER.search(value):
        raise ValidationFailed.at(
            loc, "must not contain control, bidirectional or invisible characters"
        )
    return value


def business_time(loc: str, occurred_at: datetime | None, now: datetime) -> datetime:
    """Business time keeps the client's offset and lies in [now - 90 days, now + 5 minutes]."""
    if occurred_at is None:
        return now
    if occurred_at.tzinfo is None or occurred_at.utcoffset() is None:
        raise ValidationFailed.at(loc, "needs a time zone offset or Z")
    if occurred_at < now - BUSINESS_WINDOW_PAST or occurred_at > now + BUSINESS_WINDOW_FUTURE:
        raise ValidationFailed.at(
            loc, "must lie within the last 90 days and at most 5 minutes ahead"
        )
    return occurred_at
