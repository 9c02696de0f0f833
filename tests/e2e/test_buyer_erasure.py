"""A buyer's personal data is sealed per buyer in the log and erasable (issue #14 item 7).

Over HTTP and the CLI, on both stores: retail lists of a buyer read whole by an officer and
masked by a gate; neither the log, its export nor the idempotency records hold the identity
number or the name in clear; `customs-ledger privacy erase-buyer` refuses an unknown buyer
and a buyer still in the retention period (writing nothing), erases with --force (an event,
the key destroyed); afterwards every read shows `[erased]`, other buyers are untouched, the
chain verifies and a replay equals the live views.
"""

from __future__ import annotations

import io
from typing import Any

import pytest

from domain.privacy import ERASED, mask_id, mask_name
from ledger.export import export_events
from tests.e2e.test_ecommerce import BUYER, CONSIGNEE, retail_body, submit
from tests.samples import make_resident_id
from tests.support import admit, new_key, onboard, run_cli, running_ledger

OTHER = make_resident_id(41)  # another buyer, never erased
NOBODY = make_resident_id(42)  # a buyer no list names
NAME = "Li Hua"


cli = run_cli


def personal(answer: dict[str, Any]) -> tuple[str, str, str, str]:
    e = answer["ecommerce"]
    return (
        e["order"]["buyer_id"],
        e["order"]["buyer_name"],
        e["payment"]["payer_id"],
        e["waybill"]["consignee_id"],
    )


def exported(ledger: Any) -> str:
    out = io.BytesIO()
    export_events(ledger.services.app.log, out)
    return out.getvalue().decode()


def log_size(ledger: Any) -> int:
    head = ledger.services.app.log.head()
    return head.sequence if head else 0


def test_a_buyer_is_sealed_in_the_log_read_by_role_and_erased_for_good(database_url):
    with running_ledger(database_url) as ledger:
        shop = onboard(ledger)
        admit(ledger, shop, 1, "5")
        ledger.issue("gate-erasure", "operator", zone="XCBZ")
        key = new_key()
        first = ledger.post("/v1/declarations", shop.token_name, retail_body(shop), key=key)
        assert first.status_code == 201, first.text
        second = submit(ledger, shop, retail_body(shop, "1000.00"))
        other = submit(ledger, shop, retail_body(shop, "900.00", buyer=OTHER))
        assert second.status_code == other.status_code == 201
        whole = (BUYER, NAME, BUYER, CONSIGNEE)
        masked = (mask_id(BUYER), mask_name(NAME), mask_id(BUYER), mask_id(CONSIGNEE))
        ref = first.json()["id"]
        # The submitter's answer is whole; the officer reads whole, the gate masked.
        assert personal(first.json()) == whole
        assert personal(ledger.get(f"/v1/declarations/{ref}", "officer").json()) == whole
        assert personal(ledger.get(f"/v1/declarations/{ref}", "gate-erasure").json()) == masked

        # Neither the log (its export, the idempotency records in it) holds them in clear.
        dump = exported(ledger)
        for secret in (BUYER, NAME, CONSIGNEE, OTHER):
            assert secret not in dump
        assert '"buyer_id":"sealed1.' in dump.replace("\\", "")

        # Refused, writing nothing: a buyer no list names, then one still retained.
        before = log_size(ledger)
        unknown = cli(database_url, "privacy", "erase-buyer", NOBODY, "--reason", "asked")
        assert unknown.returncode == 1 and "nothing to erase" in unknown.stderr
        early = cli(database_url, "privacy", "erase-buyer", BUYER, "--reason", "asked")
        assert early.returncode == 1 and "retention period" in early.stderr, early.stderr
        assert NAME not in early.stderr and BUYER not in early.stderr
        assert log_size(ledger) == before
        assert personal(ledger.get(f"/v1/declarations/{ref}", "officer").json()) == whole

        # With a retention period of 0 years it has ended today: no --force needed.
        erased = cli(
            database_url,
            "privacy",
            "erase-buyer",
            BUYER,
            "--reason",
            "PIPL art. 47 request",
            LEDGER_BUYER_RETENTION_YEARS="0",
        )
        assert erased.returncode == 0, erased.stderr
        assert "2 sealed retail list(s) now read [erased]" in erased.stdout
        assert "forced" not in erased.stdout  # --force not given: refused above
        forced = cli(
            database_url,
            "privacy",
            "erase-buyer",
            BUYER,
            "--reason",
            "PIPL art. 47 request",
            "--force",
        )
        assert forced.returncode == 1 and "erased already" in forced.stderr
        assert log_size(ledger) == before + 1
        assert personal(ledger.get(f"/v1/declarations/{ref}", "officer").json()) == (ERASED,) * 4


@pytest.fixture
def erased_world(database_url):
    """Two lists of BUYER and one of OTHER, then BUYER erased with --force."""
    with running_ledger(database_url) as ledger:
        shop = onboard(ledger)
        admit(ledger, shop, 1, "5")
        ledger.issue("gate-erasure", "operator", zone="XCBZ")
        key = new_key()
        body = retail_body(shop)
        first = ledger.post("/v1/declarations", shop.token_name, body, key=key)
        second = submit(ledger, shop, retail_body(shop, "1000.00"))
        other = submit(ledger, shop, retail_body(shop, "900.00", buyer=OTHER))
        assert {first.status_code, second.status_code, other.status_code} == {201}
        before = log_size(ledger)
        done = cli(
            database_url,
            "privacy",
            "erase-buyer",
            BUYER,
            "--reason",
            "the buyer asked",
            "--force",
            "--actor",
            "dpo-1",
        )
        assert done.returncode == 0, done.stderr
        assert "forced" in done.stdout and "BuyerErased recorded" in done.stdout
        assert log_size(ledger) == before + 1  # the erasure is one event
        yield ledger, shop, (first, second, other), (key, body)


@pytest.mark.parametrize("reader", ["declarant", "officer", "auditor", "gate-erasure", "admin"])
def test_after_erasure_every_reader_sees_erased_and_other_buyers_are_untouched(
    erased_world, reader
):
    ledger, shop, (first, second, other), _ = erased_world
    who = shop.token_name if reader == "declarant" else reader
    for listed in (first, second):
        one = ledger.get(f"/v1/declarations/{listed.json()['id']}", who).json()
        assert personal(one) == (ERASED,) * 4
        assert one["ecommerce"]["order"]["amount"] == listed.json()["ecommerce"]["order"]["amount"]
    page = ledger.get("/v1/declarations", who).json()["items"]
    mine = {d["id"]: personal(d) for d in page if d["ecommerce"] is not None}
    assert mine[first.json()["id"]] == mine[second.json()["id"]] == (ERASED,) * 4
    theirs = mine[other.json()["id"]]
    if reader in ("declarant", "officer", "auditor"):
        assert theirs == (OTHER, NAME, OTHER, CONSIGNEE)
    else:
        assert theirs == (mask_id(OTHER), mask_name(NAME), mask_id(OTHER), mask_id(CONSIGNEE))


def test_after_erasure_a_replayed_request_answers_erased_too(erased_world):
    ledger, shop, (first, _, _), (key, body) = erased_world
    again = ledger.post("/v1/declarations", shop.token_name, body, key=key)
    assert again.status_code == 201 and again.headers["idempotency-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert personal(again.json()) == (ERASED,) * 4


def test_after_erasure_the_chain_verifies_replay_equals_and_the_event_names_no_one(
    erased_world, database_url
):
    ledger, _, _, _ = erased_world
    verified = cli(database_url, "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    replayed = cli(database_url, "replay")
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    events = ledger.get("/v1/events?limit=1000", "auditor").json()["items"]
    (erasure,) = [e for e in events if e["type"] == "BuyerErased"]
    assert BUYER not in str(erasure) and NAME not in str(erasure)
    payload = erasure["payload"]
    assert payload["actor"] == {"name": "dpo-1", "role": "admin"}
    assert (payload["reason"], payload["forced"], payload["generations"]) == (
        "the buyer asked",
        True,
        [1],
    )
    assert len(payload["pseudonym"]) == 26 and payload["retention_ends"] is not None


def test_a_new_list_after_erasure_is_sealed_with_a_new_key_and_reads_whole(erased_world):
    ledger, shop, (first, _, _), _ = erased_world
    fresh = submit(ledger, shop, retail_body(shop, "500.00"))
    assert fresh.status_code == 201, fresh.text
    got = ledger.get(f"/v1/declarations/{fresh.json()['id']}", "officer").json()
    assert personal(got) == (BUYER, NAME, BUYER, CONSIGNEE)
    old = ledger.get(f"/v1/declarations/{first.json()['id']}", "officer").json()
    assert personal(old) == (ERASED,) * 4
    # The buyer's quota survives the erasure: the same pseudonym names its stream.
    assert fresh.json()["ecommerce"]["order"]["amount"] == "500.00"


def test_no_other_read_shows_the_buyer(sqlite_url):
    """Only the declaration reads carry a retail list's buyer: the trace, its EPCIS document,
    the book's entries, statement and CSV, inventory, lots and statistics never do, for any
    reader (here an officer, who would see it whole)."""
    from tests.e2e.test_ecommerce import pay

    with running_ledger(sqlite_url) as ledger:
        shop = onboard(ledger)
        admit(ledger, shop, 1, "5")
        listed = submit(ledger, shop, retail_body(shop)).json()
        paid = pay(ledger, shop, listed["id"], listed["duties"]["outstanding"])
        assert paid.json()["status"] == "released", paid.text
        number, book = listed["declaration_no"], shop.book_no
        ledger.issue("gate-trace", "operator", zone="XCBZ")
        out = {
            "kind": "gate_out",
            "declaration": number,
            "lines": [{"line_no": 1, "quantity": "1"}],
        }
        moved = ledger.post("/v1/movements", "gate-trace", out, key=new_key())
        assert moved.status_code == 201, moved.text
        reads = [
            f"/v1/trace?ref={number}",
            f"/v1/trace/epcis?ref={number}",
            f"/v1/account-books/{book}",
            f"/v1/account-books/{book}/entries",
            f"/v1/account-books/{book}/statement",
            f"/v1/account-books/{book}/statement.csv",
            "/v1/inventory",
            "/v1/stats?group_by=trade_mode",
        ]
        for path in reads:
            r = ledger.get(path, "officer")
            assert r.status_code == 200, (path, r.text)
            for secret in (BUYER, NAME, CONSIGNEE):
                assert secret not in r.text, path
        whole = ledger.get(f"/v1/declarations/{number}", "officer").text
        assert BUYER in whole  # the one read that shows it, to whom may see it
