"""A server SIGKILLed under concurrent writes and restarted loses and duplicates no
acknowledged write, and its read models equal a replay (R2). This is the short
version of `make soak` (tests/soak/crash.py, docs/reliability.md)."""

from __future__ import annotations

import uuid

from tests.soak.checks import check_log
from tests.soak.client import Ack
from tests.soak.crash import SoakConfig, run_soak


def test_a_sigkilled_server_loses_and_duplicates_no_acknowledged_write(database_url, tmp_path):
    store = "sqlite" if database_url.startswith("sqlite") else "postgres"
    config = SoakConfig(
        store=store,
        database_url=database_url,
        writes=300,
        kills=2,
        clients=8,
        tenants=4,
        seed=7,
        workdir=tmp_path,
        verbose=False,
    )
    report = run_soak(config)
    assert report.failures == [], report.summary()
    assert report.kills == 2 and len(report.restart_seconds) == 2
    assert report.acknowledged == 300 and not report.refused
    # The kills hit the clients: requests in flight or refused while the server was down.
    assert report.stats.retries > 0 and sum(report.stats.transport_errors.values()) > 0
    assert report.cli["verify"].startswith("ok: true")
    assert report.cli["replay"].endswith("equal")


def _adjustment(key: str, position: int) -> tuple[Ack, list[dict[str, object]]]:
    """An acknowledged adjustment and the two events that record it."""
    movement = str(uuid.uuid4())
    ack = Ack(
        kind="adjustment",
        who="soak-ent-0",
        key=key,
        path="/v1/movements",
        body={},
        status=201,
        response={"movement_id": movement, "position": position},
        position=position + 1,
        replayed=False,
        attempts=1,
    )
    events = [
        {"type": "MovementRecorded", "stream_id": movement, "position": position},
        {"type": "RequestCompleted", "stream_id": ack.request_stream, "position": position + 1},
    ]
    return ack, events


def test_the_log_check_names_lost_and_duplicated_writes():
    first, first_events = _adjustment("k1", 1)
    second, second_events = _adjustment("k2", 3)
    assert check_log([first, second], first_events + second_events) == []

    lost = check_log([first, second], first_events)
    assert any(f.startswith("lost: 1 acknowledged writes") and "k2" in f for f in lost), lost
    assert any("lost: no MovementRecorded" in f for f in lost), lost

    # The same movement recorded again under a key that no client was answered for.
    _, extra_events = _adjustment("k3", 5)
    extra_events[0]["stream_id"] = second.response["movement_id"]
    duplicated = check_log([first, second], first_events + second_events + extra_events)
    assert any(f.startswith("duplicated or unknown: 1 RequestCompleted") for f in duplicated)
    assert any(f.startswith("duplicated: MovementRecorded twice") for f in duplicated)

    moved = check_log([first, second], [*first_events, dict(second_events[0], position=4)])
    assert any("answered another position" in f for f in moved), moved
