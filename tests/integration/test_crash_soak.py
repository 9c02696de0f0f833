"""A server SIGKILLed under concurrent writes and restarted loses and duplicates no
acknowledged write, and its read models equal a replay; a receiver that is itself down now and
then has every receipt of those writes at least once, in log order per subscription, signed,
and nothing of another tenant (R2). This is the short version of `make soak`
(tests/soak/crash.py, docs/reliability.md)."""

from __future__ import annotations

import base64
import json
import random
import uuid
from datetime import UTC, datetime
from typing import Any

from standardwebhooks.webhooks import Webhook

from tests.soak.checks import Subscription, check_log, check_receipts, expected_receipts
from tests.soak.client import Ack
from tests.soak.crash import SoakConfig, run_soak
from tests.soak.receiver import PREFIX, Delivery, Receiver


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
    # Every receipt accepted, through the receiver's outages (503, and not listening).
    receipts = report.receipts
    assert receipts["subscriptions"] == 5 and receipts["expected"] > 300, report.summary()
    assert receipts["delivered"] == receipts["expected"], report.summary()
    assert receipts["outages_503"] > 0 and receipts["outages_closed"] > 0, report.summary()
    assert receipts["attempts_failed"] > 0, report.summary()  # the dispatcher retried


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


def _declaration(who: str) -> Ack:
    """An acknowledged declaration of `who`'s (its id is the subject of its receipts)."""
    return Ack(
        kind="declaration",
        who=who,
        key=f"k-{uuid.uuid4()}",
        path="/v1/declarations",
        body={},
        status=201,
        response={"id": str(uuid.uuid4()), "status": "released"},
        position=None,
        replayed=False,
        attempts=1,
    )


def test_the_receipt_check_names_lost_foreign_reordered_changed_and_unsigned_receipts():
    secret = "whsec_" + base64.b64encode(b"s" * 24).decode()
    sub = Subscription("soak-ent-0", str(uuid.uuid4()), "soak-ent-0", "soak-ent-0", secret)
    mine, theirs = _declaration("soak-ent-0"), _declaration("soak-ent-1")
    acks = [mine, theirs]

    def assessed(position: int, ack: Ack) -> dict[str, Any]:
        payload = {"status": "released"}
        return {"type": "DeclarationAssessed", "stream_id": ack.response["id"],
                "position": position, "payload": payload}  # fmt: skip

    events = [
        {"type": "SubscriptionCreated", "stream_id": sub.id, "position": 5, "payload": {}},
        assessed(3, mine),  # before the subscription: not its receipt
        assessed(10, mine),
        assessed(11, theirs),
        assessed(12, mine),
    ]
    expected, failures = expected_receipts([sub], events, acks)
    assert failures == [] and sorted(expected[sub.name]) == [10, 12]

    receiver = Receiver(random.Random(1))
    receiver.register(sub.name, secret)

    def deliver(
        position: int, ack: Ack, key: str = secret, note: str = "", cut: int = 0
    ) -> Delivery:
        subject = {"kind": "declaration", "id": ack.response["id"], "number": "1"}
        receipt = {"type": "declaration.released", "position": position, "subject": subject}
        body = json.dumps({**receipt, "data": {"note": note}}).encode()
        msg_id, now = f"{sub.id}:{position}", datetime.now(UTC)
        headers = {
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(key).sign(msg_id, now, body),
        }
        receiver.record(PREFIX + sub.name, headers, body[: len(body) - cut], len(body))
        return receiver.deliveries()[-1]

    try:
        first, second = deliver(10, mine), deliver(12, mine)
        again = deliver(12, mine)
        killed = deliver(12, mine, cut=10)  # its sender killed while sending: not a delivery
        failures, figures = check_receipts([sub], expected, [first, killed, second, again], acks)
        assert failures == [] and figures["delivered"] == 2 and figures["duplicates"] == 1
        assert figures["cut_short"] == 1 and not killed.accepted

        def found(deliveries: list[Delivery], text: str) -> None:
            failures, _ = check_receipts([sub], expected, deliveries, acks)
            assert any(text in f for f in failures), failures

        found([first], "1 of 2 receipts never accepted: DeclarationAssessed at 12")
        found([second, first], "out of log order")
        found([first, deliver(11, theirs), second], "receipts reached another tenant")
        found([first, second, deliver(12, mine, note="changed")], "came again with another body")
        other = "whsec_" + base64.b64encode(b"o" * 24).decode()
        found([first, second, deliver(12, mine, key=other)], "failed verification")
    finally:
        receiver.close()
