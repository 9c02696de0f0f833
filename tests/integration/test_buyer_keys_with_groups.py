"""A new buyer's key is written by the group commit of the buyer's first list, before the list
(ledger/buyer_keys.py `defer_new_keys`): never an event without its key, nor a list sealed with
a key that lost to another writer's."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.buyer_keys import BuyerKeys
from ledger.database import parse_database_url
from tests.e2e.test_ecommerce import retail_body
from tests.samples import make_resident_id
from tests.support import admit, new_key, onboard, running_ledger


def _buyer_of(ledger, ref):
    answer = ledger.get(f"/v1/declarations/{ref}", "officer")
    assert answer.status_code == 200, answer.text
    return answer.json()["ecommerce"]["order"]["buyer_id"]


def test_the_key_is_in_the_store_when_the_list_is_answered(database_url):
    with running_ledger(database_url) as ledger:
        t = onboard(ledger)
        admit(ledger, t, 1, "50")
        buyers = [make_resident_id(9000 + n) for n in range(6)]
        items = [{"idempotency_key": new_key(), "body": retail_body(t, buyer=b)} for b in buyers]
        items.append({"idempotency_key": new_key(), "body": retail_body(t, buyer=buyers[0])})
        r = ledger.post("/v1/declarations/batch", t.token_name, {"items": items})
        assert [x["status"] for x in r.json()["results"]] == [201] * 7
        vault: BuyerKeys = ledger.services.vault
        assert vault.take_new_keys() == []  # nothing left unwritten
        # Another process on the store (a fresh key store object) finds every buyer's key:
        # each list opens to its buyer; the buyer of two lists has one key.
        other = BuyerKeys.beside(
            parse_database_url(database_url), ledger.services.app.factory.datastore
        )
        for buyer in buyers:
            records = [k for k in other.records(other.pseudonym(buyer)) if k.live]
            assert len(records) == 1
        for x, buyer in zip(r.json()["results"], [*buyers, buyers[0]], strict=True):
            assert _buyer_of(ledger, x["body"]["id"]) == buyer


def test_a_key_another_writer_made_first_is_the_one_used(database_url, monkeypatch):
    with running_ledger(database_url) as ledger:
        t = onboard(ledger)
        admit(ledger, t, 1, "5")
        vault: BuyerKeys = ledger.services.vault
        buyer = make_resident_id(9100)
        real = vault.write_new_keys
        raced = []

        def another_writer_first(keys):
            if not raced:
                raced.append(keys)
                pseudonym, generation, _ = keys[0]
                nonce = os.urandom(12)
                wrapped = nonce + vault._wrap.encrypt(
                    nonce, os.urandom(32), f"{pseudonym}.{generation}".encode()
                )
                real([(pseudonym, generation, wrapped)])
            real(keys)

        monkeypatch.setattr(vault, "write_new_keys", another_writer_first)
        d = ledger.post(
            "/v1/declarations", t.token_name, retail_body(t, buyer=buyer), key=new_key()
        )
        assert d.status_code == 201, d.text
        assert raced  # the group failed once on the key, and its list was decided again
        assert _buyer_of(ledger, d.json()["id"]) == buyer


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(picks=st.lists(st.integers(0, 4), min_size=1, max_size=10))
def test_every_answered_list_opens_to_its_buyer(database_url, picks):
    """Property: whatever mix of new and repeated buyers a batch holds, every accepted list
    opens to its own buyer, and each buyer has exactly one live key."""
    with running_ledger(database_url) as ledger:
        t = onboard(ledger)
        admit(ledger, t, 1, "100")
        buyers = [make_resident_id(9200 + p) for p in picks]
        # 50 CNY each: far within a buyer's yearly quota, however often a buyer comes back.
        items = [
            {"idempotency_key": new_key(), "body": retail_body(t, "50.00", buyer=b)} for b in buyers
        ]
        results = ledger.post("/v1/declarations/batch", t.token_name, {"items": items}).json()
        vault: BuyerKeys = ledger.services.vault
        for x, buyer in zip(results["results"], buyers, strict=True):
            assert x["status"] == 201, x
            assert _buyer_of(ledger, x["body"]["id"]) == buyer
        for buyer in set(buyers):
            assert len([k for k in vault.records(vault.pseudonym(buyer)) if k.live]) == 1
