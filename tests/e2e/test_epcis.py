"""The trace as GS1 EPCIS 2.0: every exported document of the train-to-air story is valid
against GS1's own JSON Schema and says, in CBV terms, what the ledger recorded."""

from __future__ import annotations

import json
import os
import re
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from projections.epcis import BASE, EXTENSION, GS1_CONTEXT
from tests.samples import line
from tests.stories import Story, run_story
from tests.support import (
    admit,
    declaration_body,
    new_key,
    onboard,
    running_ledger,
)

EPCIS_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "epcis"
SCHEMA = EPCIS_DATA / "EPCIS-JSON-Schema.json"
EXAMPLES = ("Example_9.6.1-ObjectEvent.jsonld", "Example_9.6.4-TransformationEvent.jsonld")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# What the chain of the whole story is, in CBV business steps (log order).
STORY_STEPS = [
    "arriving",  # the train's laptops and adapters pass the XCBZ gate
    "shipping",  # 40 of each leave for XEPZ
    "receiving",
    "commissioning",  # made into kits (a TransformationEvent)
    "shipping",  # the kits leave for XABZ
    "receiving",
    "departing",  # the kits fly out (first-line exit abroad)
    "entering_exiting",  # 10 laptops released to China's market (second-line exit)
    "stock_taking",  # two laptops written off at the stocktake
]


# -- the validator -----------------------------------------------------------------------------

_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*$")
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def _is_uri(value: object) -> bool:
    """RFC 3986 absolute URI: a scheme, allowed characters only, well-formed %-escapes.
    (jsonschema checks `uri` only with the optional rfc3987 package: we check it ourselves.)"""
    if not isinstance(value, str):
        return True
    return bool(_URI.match(value)) and not re.search(r"%(?![0-9A-Fa-f]{2})", value)


def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not _RFC3339.match(value):
        return False
    datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    return True


def epcis_validator() -> Any:
    """Draft 7 over GS1's schema with `uri` and `date-time` formats checked; skips (fails in
    CI) when the schema is not beside the project."""
    import jsonschema

    if not SCHEMA.is_file():
        message = f"GS1 EPCIS schema not found at {SCHEMA}: the shared data is not beside the repo"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    checker = jsonschema.FormatChecker()
    checker.checks("uri", raises=ValueError)(_is_uri)
    checker.checks("date-time", raises=ValueError)(_is_date_time)
    schema = json.loads(SCHEMA.read_text())
    return jsonschema.Draft7Validator(schema, format_checker=checker)


def assert_valid_epcis(document: dict[str, Any]) -> None:
    errors = sorted(epcis_validator().iter_errors(document), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])


def _story_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('epcis')}/ledger.sqlite3"
        return
    import psycopg

    from ledger.database import parse_database_url
    from tests.conftest import PG_URL
    from tests.support import pg_conninfo

    request.getfixturevalue("postgres_available")
    db = parse_database_url(PG_URL)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_conninfo(db), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{PG_URL}{'&' if '?' in PG_URL else '?'}schema={schema}"
    finally:
        with psycopg.connect(pg_conninfo(db), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def story(request, tmp_path_factory):
    """The story once per store for the whole module (it is the heavy part)."""
    urls = _story_url(request, tmp_path_factory)
    url = next(urls)
    try:
        with running_ledger(url) as ledger:
            yield run_story(ledger)
    finally:
        urls.close()


def export(story: Story, ref: str, who: str = "officer", **params: str) -> dict[str, Any]:
    r = story.ledger.get("/v1/trace/epcis", who, params={"ref": ref, **params})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/ld+json"
    assert r.headers["x-ledger-position"].isdigit()
    return r.json()


def events_of(document: dict[str, Any]) -> list[dict[str, Any]]:
    return document["epcisBody"]["eventList"]


def quantities(entries: list[dict[str, Any]]) -> dict[str, tuple[Any, str]]:
    return {q["epcClass"].removeprefix(BASE + "lot/"): (q["quantity"], q["uom"]) for q in entries}


# -- the guard: the validator itself -----------------------------------------------------------


@pytest.mark.parametrize("name", EXAMPLES)
def test_the_official_examples_validate_with_the_same_validator(name):
    validator = epcis_validator()
    document = json.loads((EPCIS_DATA / name).read_text())
    assert not list(validator.iter_errors(document))


def test_the_validator_refuses_what_epcis_forbids():
    validator = epcis_validator()
    good = json.loads((EPCIS_DATA / EXAMPLES[0]).read_text())
    for spoil in (
        lambda e: e.pop("eventTimeZoneOffset"),
        lambda e: e.update(action="MOVE"),
        lambda e: e.update(bizStep="teleporting"),  # neither CBV nor a URI: the format check
        lambda e: e.update(eventTime="yesterday"),
        lambda e: e.update(readPoint={"id": "not a uri"}),
    ):
        bad = json.loads(json.dumps(good))
        spoil(bad["epcisBody"]["eventList"][0])
        assert list(validator.iter_errors(bad)), bad["epcisBody"]["eventList"][0]


# -- every export is valid EPCIS ---------------------------------------------------------------


def test_upstream_from_the_air_export_is_valid_epcis_reaching_the_train(story):
    document = export(story, story.export["declaration_no"], direction="upstream")
    assert_valid_epcis(document)
    assert document["@context"] == [GS1_CONTEXT, {"cl": EXTENSION}]
    assert (document["type"], document["schemaVersion"]) == ("EPCISDocument", "2.0")
    assert document["creationDate"].endswith("Z")
    assert document["cl:traceRef"] == story.export["declaration_no"]
    assert document["cl:truncated"] is False
    assert [e["bizStep"] for e in events_of(document)] == STORY_STEPS


def test_downstream_from_the_train_reference_is_valid_epcis_to_every_exit(story):
    document = export(story, "X8024-20261127", direction="downstream")
    assert_valid_epcis(document)
    assert [e["bizStep"] for e in events_of(document)] == STORY_STEPS


def test_both_ways_from_a_lot_inside_the_processing_is_valid_epcis(story):
    laptop_in_epz = next(x["lot_id"] for x in story.processing["lots"] if x["item_no"] == 1)
    document = export(story, laptop_in_epz)
    assert_valid_epcis(document)
    events = events_of(document)
    assert [e["bizStep"] for e in events] == STORY_STEPS
    # The trace follows the laptops: the adapters (a sibling input) are not in it.
    made = next(e for e in events if e["type"] == "TransformationEvent")
    assert list(quantities(made["inputQuantityList"])) == [laptop_in_epz]
    assert list(quantities(made["outputQuantityList"])) == [story.kit_lot]


def test_an_export_says_what_the_ledger_recorded_in_cbv_terms(story):
    events = events_of(export(story, "X8024-20261127", direction="downstream"))
    assert [(e["type"], e.get("action")) for e in events] == [
        ("ObjectEvent", "ADD"),  # new lot classes enter the ledger
        ("ObjectEvent", "OBSERVE"),
        ("ObjectEvent", "ADD"),  # the receipt's child lots
        ("TransformationEvent", None),
        ("ObjectEvent", "OBSERVE"),
        ("ObjectEvent", "ADD"),
        ("ObjectEvent", "OBSERVE"),
        ("ObjectEvent", "OBSERVE"),
        ("ObjectEvent", "OBSERVE"),
    ]
    assert [e.get("disposition") for e in events] == [
        "in_progress",
        "in_transit",
        "in_progress",
        "active",
        "in_transit",
        "in_progress",
        "in_transit",
        None,
        None,
    ]
    ids = [e["eventID"] for e in events]
    assert len(set(ids)) == len(ids) and all(i.startswith("urn:uuid:") for i in ids)
    again = events_of(export(story, story.export["declaration_no"], direction="upstream"))
    assert [e["eventID"] for e in again] == ids  # stable: the same movement, the same id
    assert all(q["uom"] == "C62" for e in events for q in e.get("quantityList", []))


def test_the_admission_keeps_the_offset_sent_and_carries_its_papers(story):
    arriving = events_of(export(story, story.arrival["declaration_no"]))[0]
    assert arriving["bizStep"] == "arriving"
    assert arriving["eventTime"] == story.arrived_at
    assert arriving["eventTimeZoneOffset"] == "+08:00"
    assert arriving["recordTime"].endswith("Z")
    # One gate passage of two lines is one event with both lots.
    assert quantities(arriving["quantityList"]) == {
        lot["lot_id"]: (100, "C62") for lot in story.train["lots"]
    }
    assert arriving["readPoint"] == arriving["bizLocation"] == {"id": BASE + "zone/XCBZ"}
    assert {
        "type": EXTENSION + "btt/customs_declaration",
        "bizTransaction": BASE + "declaration/" + story.arrival["declaration_no"],
    } in arriving["bizTransactionList"]
    assert {
        "type": EXTENSION + "btt/gate_release_note",
        "bizTransaction": BASE + "gate-note/GN-XCBZ-1127",
    } in arriving["bizTransactionList"]
    assert {
        "type": EXTENSION + "btt/transport_reference",
        "bizTransaction": BASE + "transport/X8024-20261127",
    } in arriving["bizTransactionList"]
    assert arriving["cl:containerList"] == [BASE + "container/TGHU1234567"]
    assert arriving["cl:movement"] == BASE + "movement/" + story.train["movement_id"]


def test_the_transformation_consumes_and_makes_what_the_processing_movement_did(story):
    events = events_of(export(story, "X8024-20261127", direction="downstream"))
    made = next(e for e in events if e["type"] == "TransformationEvent")
    lots = {x["lot_id"]: x for x in story.processing["lots"]}
    # The movement answers what it drew from each input lot (negative) and what it made.
    consumed = {i: (-int(x["quantity"]), "C62") for i, x in lots.items() if x["item_no"] != 6}
    assert quantities(made["inputQuantityList"]) == consumed
    assert quantities(made["outputQuantityList"]) == {story.kit_lot: (40, "C62")}
    assert made["transformationID"] == BASE + "movement/" + story.processing["movement_id"]
    assert made["readPoint"] == made["bizLocation"] == {"id": BASE + "zone/XEPZ"}


def test_transfers_ship_in_transit_and_are_received_between_the_zones(story):
    events = events_of(export(story, "X8024-20261127", direction="downstream"))
    shipping, receiving = events[1], events[2]
    for event in (shipping, receiving):
        assert {"type": "location", "source": BASE + "zone/XCBZ"} in event["sourceList"]
        assert {"type": "location", "destination": BASE + "zone/XEPZ"} in event["destinationList"]
        owner = {"type": "owning_party", "source": BASE + "enterprise/" + story.tenant.uscc}
        assert owner in event["sourceList"]
    # Goods on their way are at no business location; received goods are in the new zone.
    assert "bizLocation" not in shipping and shipping["readPoint"] == {"id": BASE + "zone/XCBZ"}
    assert receiving["bizLocation"] == {"id": BASE + "zone/XEPZ"}
    assert [q["quantity"] for q in shipping["quantityList"]] == [40, 40]


def test_exits_name_their_declaration_and_the_stocktake_its_count_and_reason(story):
    events = events_of(export(story, "X8024-20261127", direction="downstream"))
    departing, released, counted = events[6], events[7], events[8]
    assert {
        "type": EXTENSION + "btt/customs_declaration",
        "bizTransaction": BASE + "declaration/" + story.export["declaration_no"],
    } in departing["bizTransactionList"]
    assert departing["readPoint"] == {"id": BASE + "zone/XABZ"} and "bizLocation" not in departing
    assert BASE + "declaration/" + story.domestic["declaration_no"] in {
        b["bizTransaction"] for b in released["bizTransactionList"]
    }
    assert [q["quantity"] for q in released["quantityList"]] == [10]
    # The count found 48 in the lot (100 - 40 - 10 - 2); the books lost 2.
    assert [q["quantity"] for q in counted["quantityList"]] == [48]
    assert [q["quantity"] for q in counted["cl:quantityDeltaList"]] == [-2]
    assert counted["cl:reason"] == "damaged, stocktake 2026-11-30"


def test_tenancy_and_errors_are_those_of_the_trace(story):
    ledger = story.ledger
    other = onboard(ledger)
    r = ledger.get("/v1/trace/epcis", other.token_name, params={"ref": "X8024-20261127"})
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem")
    # The owner sees the whole chain; an operator only its zone's lots.
    mine = export(story, "X8024-20261127", who=story.tenant.token_name)
    assert [e["bizStep"] for e in events_of(mine)] == STORY_STEPS
    gate = export(story, story.export["declaration_no"], who="gate-XABZ", direction="upstream")
    assert_valid_epcis(gate)
    assert [e["bizStep"] for e in events_of(gate)] == ["receiving", "departing"]
    assert ledger.get("/v1/trace/epcis", "officer", params={"ref": "nothing"}).status_code == 404
    assert ledger.client.get("/v1/trace/epcis", params={"ref": "x"}).status_code == 401
    bad = ledger.get("/v1/trace/epcis", "officer", params={"ref": "x", "direction": "sideways"})
    assert bad.status_code == 422


def test_openapi_documents_the_export_as_json_ld(story):
    operation = story.ledger.client.get("/openapi.json").json()["paths"]["/v1/trace/epcis"]["get"]
    assert list(operation["responses"]["200"]["content"]) == ["application/ld+json"]
    assert {"401", "404", "422"} <= set(operation["responses"])


def test_each_enterprise_of_a_transfer_exports_only_its_own_lots(database_url):
    with running_ledger(database_url) as ledger:
        for zone in ("XCBZ", "XEPZ"):
            ledger.issue(f"gate-{zone}", "operator", zone=zone)
        a, b = onboard(ledger), onboard(ledger, zone="XEPZ")
        admit(ledger, a, 1, "10")
        body = declaration_body(
            a.uscc,
            a.book_no,
            flow="transfer",
            country="CN",
            destination_zone="XEPZ",
            destination_account_book=b.book_no,
            lines=[line(1, quantity="6", origin_country=None)],
        )
        t = ledger.post("/v1/declarations", a.token_name, body, key=new_key()).json()
        # Until B accepts, the goods do not move: no shipping, nothing of B's to export.
        assert t["status"] == "awaiting_acceptance"
        ref = {"ref": t["declaration_no"]}
        for who in (a, b, "officer"):
            name = who if isinstance(who, str) else who.token_name
            before = ledger.get("/v1/trace/epcis", name, params=ref)
            assert before.status_code == 404, before.text  # no goods moved under it yet
        accepted = ledger.post(f"/v1/declarations/{t['id']}/acceptance", b.token_name, {})
        assert accepted.status_code == 200 and accepted.json()["status"] == "released"
        history = ledger.get(f"/v1/declarations/{t['id']}", b.token_name).json()["history"]
        # The acceptance released it, and the release filed its checklist in the same write.
        assert [h["type"] for h in history[-2:]] == ["TransferAccepted", "ChecklistFiled"]
        accepted_at = history[-2]["recorded_at"]
        for gate, kind in (("gate-XCBZ", "transfer_dispatch"), ("gate-XEPZ", "transfer_receipt")):
            moved = {
                "kind": kind,
                "declaration": t["id"],
                "lines": [{"line_no": 1, "quantity": "6"}],
            }
            assert ledger.post("/v1/movements", gate, moved, key=new_key()).status_code == 201
        seen = {}
        for who in (a, b):
            r = ledger.get("/v1/trace/epcis", who.token_name, params={"ref": t["declaration_no"]})
            assert r.status_code == 200, r.text
            document = r.json()
            assert_valid_epcis(document)
            seen[who.uscc] = document
            for lot_id in _lots(document):
                lot = ledger.get(f"/v1/lots/{lot_id}", who.token_name).json()
                assert lot["account_book"] == who.book_no
        steps = {u: [e["bizStep"] for e in events_of(d)] for u, d in seen.items()}
        assert steps == {a.uscc: ["arriving", "shipping"], b.uscc: ["receiving"]}
        assert not set(_lots(seen[a.uscc])) & set(_lots(seen[b.uscc]))
        # Both ends are parties to the transfer declaration: each export names both owners.
        sources = events_of(seen[b.uscc])[0]["sourceList"]
        assert {"type": "owning_party", "source": BASE + "enterprise/" + a.uscc} in sources
        # The handover is recorded after the acceptance, never before it.
        handover = [*events_of(seen[a.uscc])[1:], *events_of(seen[b.uscc])]
        assert all(_instant(e["recordTime"]) >= _instant(accepted_at) for e in handover)


def _instant(text: str) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _lots(document: dict[str, Any]) -> list[str]:
    return [
        q["epcClass"].removeprefix(BASE + "lot/")
        for e in events_of(document)
        for q in e.get("quantityList", [])
    ]


def test_fractional_quantities_are_written_exactly_and_offsets_kept_or_made_utc():
    from decimal import Decimal

    from domain.events import Actor
    from projections.epcis import encode, epcis_document
    from projections.trace import Trace, TraceEvent, TraceLot

    lot_id = str(uuid.uuid4())
    sent = datetime(2026, 11, 27, 9, 30, tzinfo=timezone(timedelta(hours=-3, minutes=-30)))
    far = datetime(2026, 11, 27, 9, 30, tzinfo=timezone(timedelta(hours=15)))
    recorded = datetime(2026, 11, 27, 13, 0, tzinfo=UTC)

    def event(position: int, quantity: str, occurred_at: datetime) -> TraceEvent:
        return TraceEvent(
            position=position,
            type="admitted" if position == 1 else "exited",
            occurred_at=occurred_at,
            recorded_at=recorded,
            zone="XCBZ",
            lot_id=lot_id,
            quantity=Decimal(quantity),
            documents=[{"kind": "gate_note", "id": "GN 1/2", "number": "GN 1/2"}],
            actor=Actor(name="gate", role="operator", zone="XCBZ"),
            movement_id=str(uuid.uuid4()),
        )

    lot = TraceLot(
        lot_id=lot_id,
        zone="XCBZ",
        account_book="B1",
        item_no=2,
        hs_code="0901210000",
        name="Roasted coffee",
        unit="KGM",
        goods_status="bonded",
        quantity_in=Decimal("123456789012345.12345"),
        on_hand=Decimal("123456789012332.62345"),
        origin="gate_in",
        movement_id="m",
        occurred_at=sent,
    )
    trace = Trace(
        ref=lot_id,
        direction="both",
        matched=[],
        zones=["XCBZ"],
        lots=[lot],
        edges=[],
        events=[event(1, "123456789012345.12345", sent), event(2, "-12.50000", far)],
        truncated=False,
    )
    raw = encode(epcis_document(trace)).decode()
    # 20 significant digits survive: a binary float would have rounded them.
    assert '"quantity":123456789012345.12345' in raw and '"quantity":12.5,' in raw
    document = json.loads(raw)
    assert_valid_epcis(document)
    admitted, exited = events_of(document)
    assert (admitted["eventTime"], admitted["eventTimeZoneOffset"]) == (sent.isoformat(), "-03:30")
    # +15:00 is a valid RFC 3339 offset but not an EPCIS one: the same instant in UTC.
    assert exited["eventTimeZoneOffset"] == "+00:00"
    assert datetime.fromisoformat(exited["eventTime"]) == far
    assert admitted["bizTransactionList"] == [
        {
            "type": EXTENSION + "btt/gate_release_note",
            "bizTransaction": BASE + "gate-note/GN%201%2F2",
        }
    ]


def test_a_missing_schema_skips_with_a_clear_message(monkeypatch, tmp_path):
    import tests.e2e.test_epcis as module

    monkeypatch.setattr(module, "SCHEMA", tmp_path / "EPCIS-JSON-Schema.json")
    monkeypatch.setattr(module, "IN_CI", False)
    with pytest.raises(pytest.skip.Exception, match=r"GS1 EPCIS schema not found at .*: "):
        module.epcis_validator()
