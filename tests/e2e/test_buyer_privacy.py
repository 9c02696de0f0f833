"""A buyer's identity number and name are shown whole only to the list's declarant, officers
and auditors (issue #14 item 7, the reads): a gate operator or an admin sees them masked."""

from __future__ import annotations

import pytest

from domain.privacy import mask_id, mask_name
from tests.e2e.test_ecommerce import BUYER, CONSIGNEE, retail_body, submit
from tests.support import admit, onboard, running_ledger


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('privacy')}/ledger.sqlite3"
    with running_ledger(url) as ledger:
        tenant = onboard(ledger)
        admit(ledger, tenant, 1, "5")
        ledger.issue("gate-privacy", "operator", zone="XCBZ")
        r = submit(ledger, tenant, retail_body(tenant, "4000.00"))
        assert r.status_code == 201, r.text
        yield ledger, tenant, r.json()


def _documents(answer):
    e = answer["ecommerce"]
    return (
        e["order"]["buyer_id"],
        e["order"]["buyer_name"],
        e["payment"]["payer_id"],
        e["waybill"]["consignee_id"],
    )


@pytest.mark.parametrize("reader", ["declarant", "officer", "auditor"])
def test_the_declarant_officers_and_auditors_see_the_buyer_whole(world, reader):
    ledger, tenant, listed = world
    who = tenant.token_name if reader == "declarant" else reader
    one = ledger.get(f"/v1/declarations/{listed['id']}", who).json()
    assert _documents(one) == (BUYER, "Li Hua", BUYER, CONSIGNEE)
    page = ledger.get("/v1/declarations", who).json()["items"]
    (mine,) = [d for d in page if d["id"] == listed["id"]]
    assert _documents(mine) == (BUYER, "Li Hua", BUYER, CONSIGNEE)


@pytest.mark.parametrize("reader", ["gate-privacy", "admin"])
def test_a_gate_operator_and_an_admin_see_the_buyer_masked(world, reader):
    ledger, _, listed = world
    one = ledger.get(f"/v1/declarations/{listed['id']}", reader).json()
    masked = (mask_id(BUYER), mask_name("Li Hua"), mask_id(BUYER), mask_id(CONSIGNEE))
    assert _documents(one) == masked
    assert masked[0] == BUYER[:4] + "*" * 10 + BUYER[-4:] and masked[1] == "L*****"
    page = ledger.get("/v1/declarations", reader).json()["items"]
    (theirs,) = [d for d in page if d["id"] == listed["id"]]
    assert _documents(theirs) == masked
    assert BUYER not in ledger.get(f"/v1/declarations/{listed['id']}", reader).text


def test_masks_keep_the_region_and_the_end_and_hide_the_rest():
    assert mask_id("610113199001010013") == "6101**********0013"
    assert mask_name("李娜") == "李*"
    assert mask_name("") == "" and mask_id("1234") == "****"
