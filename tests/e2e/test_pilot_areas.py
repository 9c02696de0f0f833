"""Two pilot areas on two PostgreSQL databases (docs/scaling.md, docs/decisions/0036): each area
is a ledger of its own - its own log, chain, digest, keys and views - so nothing written in one
is seen in the other, each verifies alone, and a trace in one never names the other's lots.

An enterprise acting in both areas is registered in each (the same USCC), with a key per area.
Area B (an illustrative second pilot area) has its own zones file and customs office, so the
two areas' declaration numbers never collide.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.areas import other_zones_file
from bench.postgres import fresh_databases
from tests.conftest import PG_URL
from tests.samples import book_body, declaration_body, enterprise_body, line
from tests.support import make_uscc, new_key, run_cli, running_ledger

pytestmark = pytest.mark.postgres


@pytest.fixture
def two_databases(postgres_available: None) -> Iterator[dict[str, str]]:
    """Two new databases on the test server, one per area, dropped afterwards."""
    with fresh_databases(["xian", "chengdu"], "t_area", PG_URL) as urls:
        yield urls


def _arrive(area, uscc: str, book_no: str, zone: str, train: str) -> dict:
    """A first-line import released at once, then its goods admitted at the zone's gate."""
    body = declaration_body(
        uscc,
        book_no,
        zone=zone,
        transport={"mode": "rail", "reference": train, "container": "TGHU1234567"},
        lines=[line(1, quantity="10")],
    )
    d = area.post("/v1/declarations", f"ent-{uscc}", body, key=new_key())
    assert d.status_code == 201 and d.json()["status"] == "released", d.text
    gate = f"gate-{zone.lower()}"
    area.issue(gate, "operator", zone=zone)
    moved = area.post(
        "/v1/movements",
        gate,
        {
            "kind": "gate_in",
            "declaration": d.json()["id"],
            "lines": [{"line_no": 1, "quantity": "10"}],
        },
        key=new_key(),
    )
    assert moved.status_code == 201, moved.text
    return {"declaration": d.json(), "lots": [x["lot_id"] for x in moved.json()["lots"]]}


def test_two_areas_share_nothing_and_each_verifies_alone(two_databases, tmp_path: Path):
    zones = other_zones_file(tmp_path)  # area B's, as the drill (bench/areas.py) has it
    uscc = make_uscc()  # one enterprise acting in both areas: registered in each
    with (
        running_ledger(two_databases["xian"]) as xian,
        running_ledger(two_databases["chengdu"], zones_file=str(zones)) as chengdu,
    ):
        tokens = {}
        for area, zone in ((xian, "XCBZ"), (chengdu, "CDBZ")):
            book_no = f"B{uscc[-8:]}{zone}"
            assert area.post("/v1/enterprises", "admin", enterprise_body(uscc)).status_code == 201
            r = area.post("/v1/account-books", "admin", book_body(book_no, uscc, zone))
            assert r.status_code == 201, r.text
            tokens[zone] = area.issue(f"ent-{uscc}", "enterprise", enterprise=uscc)
        a = _arrive(xian, uscc, f"B{uscc[-8:]}XCBZ", "XCBZ", "X8024-XIAN")
        b = _arrive(chengdu, uscc, f"B{uscc[-8:]}CDBZ", "CDBZ", "X9001-CHENGDU")

        # Each area numbers its declarations on its own offices' series: no collision.
        a_no, b_no = a["declaration"]["declaration_no"], b["declaration"]["declaration_no"]
        assert a_no.startswith("9007") and b_no.startswith("7901")
        # A declaration of one area is unknown in the other, to an officer as to its declarant.
        for area, other_no in ((chengdu, a_no), (xian, b_no)):
            assert area.get(f"/v1/declarations/{other_no}", "officer").status_code == 404
            assert area.get(f"/v1/declarations/{other_no}", f"ent-{uscc}").status_code == 404
        # Keys are per area: the Xi'an key of the enterprise opens nothing in Chengdu.
        assert tokens["XCBZ"] != tokens["CDBZ"]
        refused = chengdu.client.get(
            "/v1/enterprises/" + uscc, headers={"Authorization": f"Bearer {tokens['XCBZ']}"}
        )
        assert refused.status_code == 401

        # Traces per area: each finds its own goods, never the other's.
        for area, mine, theirs, train, other_train in (
            (xian, a, b, "X8024-XIAN", "X9001-CHENGDU"),
            (chengdu, b, a, "X9001-CHENGDU", "X8024-XIAN"),
        ):
            r = area.get("/v1/trace", "officer", params={"ref": train, "direction": "downstream"})
            assert r.status_code == 200, r.text
            assert {x["lot_id"] for x in r.json()["lots"]} == set(mine["lots"])
            text = r.text
            for lot in theirs["lots"]:
                assert lot not in text
                lost = area.get("/v1/trace", "officer", params={"ref": lot})
                assert lost.status_code == 404
            assert theirs["declaration"]["declaration_no"] not in text
            assert area.get("/v1/trace", "officer", params={"ref": other_train}).status_code == 404

        heads = {}
        for name, area in (("xian", xian), ("chengdu", chengdu)):
            digest = area.get("/v1/audit/digest", "auditor").json()
            heads[name] = digest["head_hash"]

    # Audits per area: `customs-ledger verify` on each database checks its chain alone.
    assert heads["xian"] != heads["chengdu"]
    for name, url in two_databases.items():
        env = {"LEDGER_ZONES_FILE": str(zones)} if name == "chengdu" else {}
        done = run_cli(url, "verify", **env)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "ok: true" in done.stdout
        assert f"head_hash: {heads[name]}" in done.stdout
