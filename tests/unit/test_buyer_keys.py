"""The buyers' key store (ledger/buyer_keys.py): sealing, opening, refusing, destroying.

A sealed field opens only with its buyer's key, in its own field: an altered token, a token
moved to another field or another buyer's key, and a key wrapped by another master are all
refused (never a wrong value). A destroyed key reads `[erased]`; the master key's fingerprint
keeps a server from wrapping keys with another master.
"""

from __future__ import annotations

import base64
import os
import sqlite3
import stat

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.privacy import ERASED, UNREADABLE, parse_token, personal_values, sealed, shown
from ledger.buyer_keys import BuyerKeys, KeyStoreError, SealError, open_token
from ledger.database import parse_database_url
from tests.samples import make_resident_id

BUYER = make_resident_id(11)
OTHER = make_resident_id(12)


@pytest.fixture(scope="module")
def vault():
    keys = BuyerKeys.in_memory()
    yield keys
    keys.close()


def _key(vault: BuyerKeys, buyer: str) -> bytes:
    return vault._current_key(vault.pseudonym(buyer))[1]


def test_a_sealed_value_opens_with_its_key_in_its_field_and_holds_nothing_in_clear(vault):
    tokens = vault.seal(BUYER, {"order.buyer_id": BUYER, "order.buyer_name": "李娜"})
    token = tokens["order.buyer_id"]
    assert BUYER not in token and "李娜" not in tokens["order.buyer_name"]
    parsed = parse_token(token)
    assert parsed is not None and parsed.pseudonym == vault.pseudonym(BUYER)
    assert parsed.generation == 1
    assert open_token(_key(vault, BUYER), "order.buyer_id", token) == BUYER
    assert vault.open([("order.buyer_name", tokens["order.buyer_name"])]) == {
        ("order.buyer_name", tokens["order.buyer_name"]): "李娜"
    }
    # Sealed twice, the same value gives two different tokens (a fresh nonce each time).
    assert vault.seal(BUYER, {"order.buyer_id": BUYER})["order.buyer_id"] != token


def test_a_tampered_token_is_refused(vault):
    token = vault.seal(BUYER, {"order.buyer_id": BUYER})["order.buyer_id"]
    head, _, body = token.rpartition(".")
    raw = bytearray(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    for at in (0, 12, len(raw) - 1):  # the nonce, the ciphertext, the tag
        changed = bytearray(raw)
        changed[at] ^= 0x01
        bad = head + "." + base64.urlsafe_b64encode(bytes(changed)).rstrip(b"=").decode()
        with pytest.raises(SealError):
            open_token(_key(vault, BUYER), "order.buyer_id", bad)
        assert vault.open([("order.buyer_id", bad)]) == {("order.buyer_id", bad): UNREADABLE}
    with pytest.raises(SealError):
        open_token(_key(vault, BUYER), "order.buyer_id", head + ".AAAA")


def test_a_token_opens_neither_in_another_field_nor_with_another_key(vault):
    token = vault.seal(BUYER, {"order.buyer_id": BUYER})["order.buyer_id"]
    with pytest.raises(SealError):
        open_token(_key(vault, BUYER), "payment.payer_id", token)
    with pytest.raises(SealError):
        open_token(_key(vault, OTHER), "order.buyer_id", token)
    # Relabelled as another buyer's (pseudonym swapped), the store opens it with that key: no.
    other = vault.pseudonym(OTHER)
    _key(vault, OTHER)
    forged = token.replace(vault.pseudonym(BUYER), other)
    assert vault.open([("order.buyer_id", forged)])[("order.buyer_id", forged)] == UNREADABLE


def test_a_key_wrapped_by_another_master_is_refused(tmp_path):
    url = parse_database_url(f"sqlite:///{tmp_path}/ledger.sqlite3")
    one, two = tmp_path / "one.key", tmp_path / "two.key"
    one.write_text(base64.b64encode(os.urandom(32)).decode())
    two.write_text(base64.b64encode(os.urandom(32)).decode())
    first = BuyerKeys.beside(url, master_key_file=str(one))
    token = first.seal(BUYER, {"order.buyer_id": BUYER})["order.buyer_id"]
    first.close()
    with pytest.raises(KeyStoreError, match="wrapped by master key"):
        BuyerKeys.beside(url, master_key_file=str(two))
    # Without the file, the store knows its keys are wrapped by a master kept elsewhere.
    with pytest.raises(KeyStoreError, match="set LEDGER_PRIVACY_KEY_FILE"):
        BuyerKeys.beside(url)
    again = BuyerKeys.beside(url, master_key_file=str(one))
    assert again.open([("order.buyer_id", token)]) == {("order.buyer_id", token): BUYER}
    again.close()
    keys_file = tmp_path / "ledger.keys.sqlite3"
    assert stat.S_IMODE(keys_file.stat().st_mode) == 0o600
    assert BUYER.encode() not in keys_file.read_bytes()


def test_a_master_key_file_must_hold_32_bytes_in_base64(tmp_path):
    url = parse_database_url(f"sqlite:///{tmp_path}/ledger.sqlite3")
    bad = tmp_path / "bad.key"
    bad.write_text("not a key")
    with pytest.raises(KeyStoreError, match="32 random bytes"):
        BuyerKeys.beside(url, master_key_file=str(bad))
    with pytest.raises(KeyStoreError, match="No such file"):
        BuyerKeys.beside(url, master_key_file=str(tmp_path / "missing.key"))


def test_a_destroyed_key_reads_erased_and_the_next_list_gets_a_new_generation(tmp_path):
    url = parse_database_url(f"sqlite:///{tmp_path}/ledger.sqlite3")
    vault = BuyerKeys.beside(url)
    p = vault.pseudonym(BUYER)
    old = vault.seal(BUYER, {"order.buyer_id": BUYER})["order.buyer_id"]
    other = vault.seal(OTHER, {"order.buyer_id": OTHER})["order.buyer_id"]
    keys_file = tmp_path / "ledger.keys.sqlite3"
    with sqlite3.connect(keys_file) as conn:
        (wrapped,) = conn.execute("SELECT wrapped FROM buyer_keys WHERE pseudonym = ?", (p,))
    assert wrapped[0] in keys_file.read_bytes()
    assert vault.destroy(p, [1]) == 1
    assert vault.destroy(p, [1]) == 0  # once
    assert vault.open([("order.buyer_id", old), ("order.buyer_id", other)]) == {
        ("order.buyer_id", old): ERASED,
        ("order.buyer_id", other): OTHER,
    }
    new = vault.seal(BUYER, {"order.buyer_id": BUYER})["order.buyer_id"]
    assert parse_token(new).generation == 2  # type: ignore[union-attr]
    assert vault.open([("order.buyer_id", new)]) == {("order.buyer_id", new): BUYER}
    assert [(k.generation, k.live) for k in vault.records(p)] == [(1, False), (2, True)]
    vault.close()
    # The destroyed key's bytes are gone from the file, not only marked erased in the table.
    assert wrapped[0] not in keys_file.read_bytes()


def test_a_key_missing_from_the_store_reads_unreadable_not_erased(vault):
    token = vault.seal(BUYER, {"order.buyer_id": BUYER})["order.buyer_id"]
    elsewhere = BuyerKeys.in_memory()  # another store: another master, no such key
    assert elsewhere.open([("order.buyer_id", token)]) == {("order.buyer_id", token): UNREADABLE}
    elsewhere.close()


def test_the_pseudonym_is_keyed_stable_and_blind_to_spelling(vault):
    other_store = BuyerKeys.in_memory()
    assert vault.pseudonym(BUYER) == vault.pseudonym(BUYER.lower())
    assert vault.pseudonym(BUYER) != vault.pseudonym(OTHER)
    assert vault.pseudonym(BUYER) != other_store.pseudonym(BUYER)  # keyed by the master
    other_store.close()


texts = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=255)


@given(name=texts, consignee=texts)
def test_sealing_and_opening_any_list_gives_it_back_and_leaks_no_length(vault, name, consignee):
    from domain.declaration import Ecommerce, Order, Payment, Waybill

    e = Ecommerce(
        order=Order(order_no="O-1", buyer_id=BUYER, buyer_name=name, amount=1),
        payment=Payment(payment_no="P-1", payer_id=BUYER, amount=1),
        waybill=Waybill(waybill_no="W-1", consignee_id=consignee),
    )
    kept = sealed(e, vault)
    values = personal_values(kept)
    assert all(parse_token(v) is not None for v in values.values())
    opened = vault.open(values.items())
    assert shown(kept, opened, whole=True) == e
    # Sealed lengths come in steps of 32 bytes: a short and a long name of one step look alike.
    short = vault.seal(BUYER, {"order.buyer_name": "李"})["order.buyer_name"]
    longer = vault.seal(BUYER, {"order.buyer_name": "李" * 9})["order.buyer_name"]
    assert len(short) == len(longer)
