"""Property: whatever retail lists and erasures happen, in any order, a replay of the log
equals the live views, before and after each erasure, and every list reads `[erased]` exactly
when its buyer was erased after it was sealed (a later list of the same buyer reads whole).
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.replaying import run_replay
from domain.events import Actor
from domain.privacy import ERASED
from ledger.erasure import Erasure, plan
from tests.e2e.test_ecommerce import retail_body, submit
from tests.samples import make_resident_id
from tests.support import admit, onboard, running_ledger

BUYERS = [make_resident_id(60 + n) for n in range(3)]
ADMIN = Actor(name="dpo", role="admin")

steps = st.lists(
    st.one_of(
        st.tuples(st.just("list"), st.integers(0, 2), st.integers(1, 30).map(lambda n: n * 100)),
        st.tuples(st.just("erase"), st.integers(0, 2), st.just(0)),
    ),
    min_size=1,
    max_size=7,
)


def _replay_equal(ledger) -> None:
    report, _ = run_replay(ledger.services, parallel=False)
    assert report.equal, report.differences


def _erase(ledger, buyer: str) -> bool:
    services = ledger.services
    today = datetime.now(UTC).date()
    found = plan(services.app, services.vault, buyer, today=today, retention_years=3)
    if not found.live:
        return False
    erasure = Erasure(plan=found, reason="asked", force=True, actor=ADMIN)
    services.ledger.erase_buyer(erasure)
    return True


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=steps)
def test_replay_equals_the_live_views_before_and_after_erasures(steps):
    with (
        tempfile.TemporaryDirectory() as directory,
        running_ledger(f"sqlite:///{directory}/ledger.sqlite3") as ledger,
    ):
        shop = onboard(ledger)
        admit(ledger, shop, 1, "20")
        listed: list[tuple[str, int]] = []  # (declaration id, buyer)
        erased: set[str] = set()  # declarations whose buyer was erased after them
        for kind, who, amount in steps:
            if kind == "list":
                body = retail_body(shop, f"{amount}.00", buyer=BUYERS[who])
                r = submit(ledger, shop, body)
                if r.status_code == 201:
                    listed.append((r.json()["id"], who))
                else:  # the buyer's yearly quota is full: refused, nothing written
                    assert r.json()["rule"] == "quota_exceeded", r.text
                continue
            _replay_equal(ledger)  # before the erasure
            if _erase(ledger, BUYERS[who]):
                erased |= {d for d, b in listed if b == who}
            _replay_equal(ledger)  # after it
        _replay_equal(ledger)
        for declaration, who in listed:
            got = ledger.get(f"/v1/declarations/{declaration}", "officer").json()
            buyer_id = got["ecommerce"]["order"]["buyer_id"]
            assert buyer_id == (ERASED if declaration in erased else BUYERS[who])
