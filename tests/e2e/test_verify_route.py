"""GET /v1/audit/verify (issue #14 items 3 and 5): against a published digest, one at a time."""

from __future__ import annotations

import pytest

from api.routes import audit as audit_routes
from tests.support import admit, onboard, running_ledger


@pytest.fixture(scope="module")
def ledger(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('verify')}/ledger.sqlite3"
    with running_ledger(url) as ledger:
        admit(ledger, onboard(ledger), 1, "5")
        yield ledger


def test_verify_against_the_published_digest_holds_and_a_forged_one_fails(ledger):
    digest = ledger.get("/v1/audit/digest", "auditor").json()
    published = f"{digest['sequence']}:{digest['head_hash']}"
    r = ledger.get("/v1/audit/verify", "auditor", params={"against": published})
    assert r.status_code == 200 and r.json()["ok"] is True, r.text
    forged = f"{digest['sequence']}:{'0' * 64}"
    r = ledger.get("/v1/audit/verify", "auditor", params={"against": forged})
    assert r.status_code == 200, r.text
    assert r.json()["ok"] is False and r.json()["failures"], r.json()
    beyond = f"{digest['sequence'] + 1000}:{digest['head_hash']}"  # a tail deleted since
    r = ledger.get("/v1/audit/verify", "auditor", params={"against": beyond})
    assert r.json()["ok"] is False


@pytest.mark.parametrize("against", ["", "12", "0:" + "a" * 64, "5:xyz", "5:" + "a" * 63])
def test_a_malformed_digest_is_422_at_against(ledger, against):
    r = ledger.get("/v1/audit/verify", "auditor", params={"against": against})
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["loc"] == "query.against"


def test_a_second_verify_while_one_runs_is_409_audit_in_progress(ledger):
    assert audit_routes._VERIFYING.acquire(blocking=False)  # as a running verify holds it
    try:
        r = ledger.get("/v1/audit/verify", "auditor")
        assert r.status_code == 409, r.text
        assert r.json()["rule"] == "audit_in_progress"
    finally:
        audit_routes._VERIFYING.release()
    assert ledger.get("/v1/audit/verify", "auditor").json()["ok"] is True
