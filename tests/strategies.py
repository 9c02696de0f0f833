"""Shared Hypothesis strategies for domain values and events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from hypothesis import strategies as st

from domain.account_book import AccountBookOpened, BookItem
from domain.declaration import (
    DeclarationFacts,
    DeclarationNumberIssued,
    DeclarationSubmitted,
    DeclaredLine,
    Transport,
)
from domain.enterprise import EnterpriseRegistered
from domain.events import Actor

offsets = st.integers(min_value=-12 * 4, max_value=14 * 4).map(
    lambda q: timezone(timedelta(minutes=15 * q))
)
aware_datetimes = st.builds(
    lambda dt, tz: dt.replace(tzinfo=UTC).astimezone(tz),
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)),
    offsets,
)
decimals = st.decimals(
    allow_nan=False,
    allow_infinity=False,
    places=5,
    min_value=Decimal("-1e14"),
    max_value=Decimal("1e14"),
)
money = st.decimals(
    allow_nan=False, allow_infinity=False, places=2, min_value=0, max_value=Decimal("1e12")
)
texts = st.text(min_size=1, max_size=30)
actors = st.builds(
    Actor,
    name=texts,
    role=st.sampled_from(["admin", "enterprise", "operator", "officer", "auditor"]),
    enterprise=st.none() | texts,
    zone=st.none() | st.sampled_from(["XCBZ", "XHTZ", "XABZ", "XXLC", "XEPZ"]),
)
book_items = st.builds(
    BookItem,
    item_no=st.integers(1, 10**6),
    hs_code=st.from_regex(r"\A\d{10}\Z"),
    name=texts,
    unit=st.sampled_from(["C62", "KGM", "LTR"]),
)
lines = st.builds(
    DeclaredLine,
    line_no=st.integers(1, 999),
    item_no=st.integers(1, 10**6),
    hs_code=st.from_regex(r"\A\d{10}\Z"),
    description=texts,
    quantity=decimals,
    unit=st.sampled_from(["C62", "KGM"]),
    unit_price=decimals,
    origin_country=st.none() | st.sampled_from(["DE", "CN", "NL"]),
    destination_item_no=st.none() | st.integers(1, 100),
    goods_status=st.none() | st.sampled_from(["bonded", "domestic"]),
    quantity_moved=decimals,
)
facts = st.builds(
    DeclarationFacts,
    declaration_no=st.from_regex(r"\A\d{18}\Z"),
    flow=st.sampled_from(
        ["first_line_in", "first_line_out", "second_line_in", "second_line_out", "transfer"]
    ),
    trade_mode=st.sampled_from(["0110", "5034", "1210"]),
    declarant=texts,
    zone=texts,
    account_book=texts,
    destination_zone=st.none() | texts,
    destination_account_book=st.none() | texts,
    destination_enterprise=st.none() | texts,
    transport=st.builds(
        Transport,
        mode=st.sampled_from(["rail", "air"]),
        reference=texts,
        container=st.none() | texts,
    ),
    country=st.sampled_from(["DE", "CN"]),
    currency=st.sampled_from(["EUR", "CNY"]),
    incoterm=st.none() | st.sampled_from(["FOB", "CIF"]),
    freight=st.none() | money,
    insurance=st.none() | money,
    lines=st.lists(lines, min_size=1, max_size=4),
    ecommerce=st.none(),
    client_ref=st.none() | texts,
)
_common = {
    "originator_id": st.uuids(),
    "originator_version": st.integers(1, 10**9),
    "actor": actors,
    "occurred_at": aware_datetimes,
}
events = st.one_of(
    st.builds(
        EnterpriseRegistered,
        uscc=texts,
        customs_code=texts,
        name=texts,
        credit_class=st.sampled_from(["regular", "dishonest"]),
        **_common,
    ),
    st.builds(
        AccountBookOpened,
        book_no=texts,
        enterprise=texts,
        zone=texts,
        items=st.lists(book_items, max_size=4),
        **_common,
    ),
    st.builds(DeclarationSubmitted, facts=facts, status=st.just("submitted"), **_common),
    st.builds(
        DeclarationNumberIssued,
        serial=st.integers(1, 999_999_999),
        declaration_id=st.uuids(),
        **_common,
    ),
)
