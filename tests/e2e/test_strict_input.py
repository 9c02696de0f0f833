"""Strict input from an adversarial probe (issue #14 items 6 and 9): invisible and
direction-changing characters are refused in every text field, API keys are issued only for
real zones, valid USCCs and printable names, and the store's files are the owner's alone."""

from __future__ import annotations

import json
import stat

import pytest

from ledger.keys import ApiKeys, KeyError_
from tests.samples import enterprise_body, line
from tests.support import admit, declaration_body, make_uscc, new_key, onboard, running_ledger

# Each refused, with what it does to a person reading the text.
HOSTILE = {
    "right-to-left override": "invoice\u202egpj.exe",
    "zero-width space": "Xi'an\u200bTrading",
    "zero-width joiner": "Lap\u200dtops",
    "byte order mark": "\ufeffLaptops",
    "line separator": "Laptops\u2028forged: released",
    "paragraph separator": "Laptops\u2029",
    "delete": "Laptops\x7f",
    "C1 control (CSI)": "Laptops\x9b31m",
    "word joiner": "Lap\u2060tops",
    "first strong isolate": "\u2068Laptops",
}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('strict')}/ledger.sqlite3"
    with running_ledger(url) as ledger:
        t = onboard(ledger)
        admit(ledger, t, 1, "10")
        ledger.issue("gate-strict", "operator", zone="XCBZ")
        yield ledger, t


@pytest.mark.parametrize("what", sorted(HOSTILE))
def test_a_hostile_character_is_422_at_its_field_in_every_kind_of_text(world, what):
    ledger, t = world
    text = HOSTILE[what]
    before = ledger.log_state()
    firm = enterprise_body(make_uscc()) | {"name": text}
    answers = {
        "$.name": ledger.post("/v1/enterprises", "admin", firm),
        "$.lines[0].description": ledger.post(
            "/v1/declarations",
            t.token_name,
            declaration_body(t.uscc, t.book_no, lines=[line(1, description=text)]),
            key=new_key(),
        ),
        "$.reason": ledger.post(
            "/v1/movements",
            t.token_name,
            {
                "kind": "adjustment",
                "account_book": t.book_no,
                "item_no": 1,
                "quantity_delta": "-1",
                "reason": text,
            },
            key=new_key(),
        ),
        "$.items[0].name": ledger.post(
            f"/v1/account-books/{t.book_no}/items",
            "admin",
            {"items": [{"item_no": 77, "hs_code": "8471300000", "name": text, "unit": "C62"}]},
        ),
    }
    for loc, r in answers.items():
        assert r.status_code == 422, (loc, r.status_code, r.text)
        assert loc in [e["loc"] for e in r.json()["errors"]], (loc, r.json())
    assert ledger.log_state() == before


def test_chinese_and_ordinary_punctuation_stay_welcome(world):
    ledger, _ = world
    name = "西安丝路贸易有限公司 (Xi'an) \u2013 № 1, «综保区»"  # an en dash, CJK, guillemets
    firm = enterprise_body(make_uscc()) | {"name": name}
    r = ledger.post("/v1/enterprises", "admin", firm)
    assert r.status_code == 201, r.text


def test_a_key_is_issued_only_for_a_real_zone_a_valid_uscc_and_a_printable_name(world):
    ledger, _ = world
    keys: ApiKeys = ledger.services.keys
    zones = {"XCBZ", "XABZ"}
    refused = [
        dict(name="gate-9", role="operator", zone="XXXX", zones=zones),
        dict(name="firm-9", role="enterprise", enterprise="91610131MA6TXW8L84"),  # check digit
        dict(name="admin\x1b[31mroot", role="admin"),  # an ANSI escape `keys list` would print
        dict(name="admin\nroot", role="admin"),
        dict(name="admin\u202etoor", role="admin"),
    ]
    for fields in refused:
        with pytest.raises(KeyError_):
            keys.issue(**fields)  # type: ignore[arg-type]
    assert keys.issue(name=f"gate-{new_key()[:6]}", role="operator", zone="XABZ", zones=zones)
    names = {k.name for k in keys.list()}
    assert not any("\x1b" in n or "\n" in n for n in names)


def test_the_store_and_its_views_are_readable_by_their_owner_only(tmp_path):
    directory = tmp_path / "new" / "var"
    with running_ledger(f"sqlite:///{directory}/ledger.sqlite3") as ledger:
        onboard(ledger)
        # While it runs: the stores, their write-ahead logs and shared-memory files.
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in directory.iterdir()}
    assert {"ledger.sqlite3", "ledger.sqlite3-wal", "ledger.views.sqlite3"} <= set(modes)
    assert modes == dict.fromkeys(modes, 0o600)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700


@pytest.mark.parametrize(
    "raw",
    [
        b'{"declarant": "A", "declarant": "B"}',
        b'{"flow": "first_line_in", "lines": [{"line_no": 1, "line_no": 2}]}',
        b'{"transport": {"mode": "rail", "mode": "air"}}',
    ],
)
def test_a_key_named_twice_in_one_object_is_400_naming_it(world, raw):
    ledger, t = world
    before = ledger.log_state()
    headers = ledger.headers(t.token_name, new_key()) | {"Content-Type": "application/json"}
    r = ledger.client.post("/v1/declarations", content=raw, headers=headers)
    assert r.status_code == 400, r.text
    assert r.json()["type"].endswith("/duplicate-key") and "appears twice" in r.json()["detail"]
    assert ledger.log_state() == before


def test_the_declarant_cannot_be_smuggled_past_tenancy_by_naming_it_twice(world):
    """The probe's case: `"declarant": B, "declarant": A` read as A passed the tenancy check
    while another parser would have read B."""
    ledger, t = world
    body = declaration_body(t.uscc, t.book_no)
    other = make_uscc()
    raw = json.dumps(body).replace(
        f'"declarant": "{t.uscc}"', f'"declarant": "{other}", "declarant": "{t.uscc}"'
    )
    assert raw.count('"declarant"') == 2
    headers = ledger.headers(t.token_name, new_key()) | {"Content-Type": "application/json"}
    r = ledger.client.post("/v1/declarations", content=raw.encode(), headers=headers)
    assert r.status_code == 400, r.text
