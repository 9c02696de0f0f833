"""The dispatcher's rules on their own (api/dispatch.py): the retry schedule, and a receipt it
cannot sign counted as a failed attempt with its backoff, never retried in a tight loop."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from api.delivery import endpoint
from api.dispatch import Dispatcher, Schedule, create_tables
from projections.receipts import ReceiptsProjection
from projections.store import SQLiteViews

SUB = "6b1b2a4e-0000-4000-8000-000000000001"


class _Answer:
    def __init__(self, status: int) -> None:
        self.status = status

    def read(self, n: int) -> bytes:
        return b""

    def isclosed(self) -> bool:
        return True


class FakeReceiver:
    """An opener for the dispatcher's connections that records each request (its endpoint,
    path, headers and body) and answers `answer(position)`: no traffic leaves the test."""

    def __init__(self, answer=lambda position: 204) -> None:
        self.requests: list[tuple[object, str, dict[str, str], bytes]] = []
        self.opened: list[object] = []
        self.answer = answer

    def positions(self) -> list[int]:
        return [int(h["webhook-id"].rsplit(":", 1)[1]) for _, _, h, _ in self.requests]

    def __call__(self, ep, timeout):
        receiver = self
        receiver.opened.append(ep)

        class Connection:
            status = 0

            def request(self, method, path, body, headers):
                assert method == "POST"
                receiver.requests.append((ep, path, headers, body))
                position = int(headers["webhook-id"].rsplit(":", 1)[1])
                self.status = receiver.answer(position)

            def getresponse(self):
                return _Answer(self.status)

            def close(self):
                return None

        return Connection()


def outbox(tmp_path, url: str, positions: range) -> SQLiteViews:
    """Views holding one officer's subscription to `url`, made at position 1, and its receipts
    at `positions` in the outbox, with the dispatcher's tables."""
    views = SQLiteViews(str(tmp_path / "views.sqlite3"))
    with views.transaction() as cur:
        ReceiptsProjection().create_tables(cur)
        cur.execute(
            "INSERT INTO view_subscriptions VALUES (?,?,?,?,?,?,?,?,?,?)",
            (SUB, "officer", None, url, '["*"]', "active", 1, 0, 0, 1),
        )
        for position in positions:
            cur.execute(
                "INSERT INTO view_outbox VALUES (?,?,?,?)",
                (SUB, position, "movement.gate_in", f'{{"position": {position}}}'),
            )
    create_tables(views)
    return views


@given(st.integers(1, 60), st.floats(0, 0.999))
def test_waits_double_from_the_base_to_the_cap_within_a_fifth(attempts, draw):
    schedule = Schedule(retry_base=5.0, retry_cap=3600.0)
    base = min(3600.0, 5.0 * 2 ** (attempts - 1))
    wait = schedule.delay(attempts, draw)
    assert 0.8 * base <= wait <= 1.2 * base


def test_a_receipt_that_cannot_be_signed_is_a_failed_attempt_with_backoff(tmp_path):
    views = SQLiteViews(str(tmp_path / "views.sqlite3"))
    try:
        with views.transaction() as cur:
            ReceiptsProjection().create_tables(cur)
            cur.execute(
                "INSERT INTO view_subscriptions VALUES (?,?,?,?,?,?,?,?,?,?)",
                (SUB, "officer", None, "http://127.0.0.1:9/", '["*"]', "active", 1, 0, 0, 1),
            )
            cur.execute(
                "INSERT INTO view_outbox VALUES (?,?,?,?)",
                (SUB, 2, "movement.gate_in", '{"type": "movement.gate_in"}'),
            )
        create_tables(views)

        def no_secret(_):
            raise ValueError("sealed by another master key")

        now = [1000.0]
        dispatcher = Dispatcher(
            views, no_secret, {"127.0.0.1"}, schedule=Schedule(retry_base=5.0), clock=lambda: now[0]
        )
        try:
            sub = {"id": SUB, "url": "http://127.0.0.1:9/", "created_position": 1,
                   "redeliver_from": 0, "redeliver_position": 0}  # fmt: skip
            assert dispatcher.deliver_next(sub) is False
            state = dispatcher.state(sub)
            assert (state.cursor, state.attempts) == (1, 1)
            assert 1004.0 <= state.next_at <= 1006.0  # 5 s, jittered by a fifth
            assert dispatcher.deliver_next(sub) is False  # not before its time
            assert dispatcher.state(sub).attempts == 1
            with views.read() as cur:
                cur.execute("SELECT error, ok FROM dispatch_attempts")
                (row,) = cur.fetchall()
            assert row["error"].startswith("cannot sign: ValueError") and row["ok"] == 0
        finally:
            dispatcher.stop()
    finally:
        views.close()


def test_a_delivery_connects_to_the_address_it_checked_and_never_resolves_again(tmp_path):
    """DNS rebinding: a name that answers a public address to the check and a private one
    later must not reach the private one. Each attempt resolves once; the request goes to that
    address, with the name in `Host` and as the TLS server name. (A mock transport: no traffic
    leaves the test.)"""
    url = "https://hooks.example.com:8443/customs?erp=1"
    views = SQLiteViews(str(tmp_path / "views.sqlite3"))
    try:
        with views.transaction() as cur:
            ReceiptsProjection().create_tables(cur)
            cur.execute(
                "INSERT INTO view_subscriptions VALUES (?,?,?,?,?,?,?,?,?,?)",
                (SUB, "officer", None, url, '["*"]', "active", 1, 0, 0, 1),
            )
            for position in (2, 3):
                cur.execute(
                    "INSERT INTO view_outbox VALUES (?,?,?,?)",
                    (SUB, position, "movement.gate_in", f'{{"position": {position}}}'),
                )
        create_tables(views)
        answers = [["93.184.216.34"], ["10.0.0.7"]]  # public first, then rebound to private
        asked: list[tuple[str, int]] = []

        def rebinding(host: str, port: int) -> list[str]:
            asked.append((host, port))
            return answers[min(len(asked), len(answers)) - 1]

        receiver = FakeReceiver()
        secret = "whsec_" + "A" * 32
        dispatcher = Dispatcher(views, lambda _: secret, set(), resolver=rebinding, opener=receiver)
        try:
            sub = {"id": SUB, "url": url, "created_position": 1,
                   "redeliver_from": 0, "redeliver_position": 0}  # fmt: skip
            assert dispatcher.deliver_next(sub) is True
            ((ep, path, headers, body),) = receiver.requests
            assert (ep.scheme, ep.connect_to, ep.port) == ("https", "93.184.216.34", 8443)
            assert ep.server_name == "hooks.example.com"  # the certificate is checked for it
            assert path == "/customs?erp=1" and body == b'{"position": 2}'
            assert headers["Host"] == "hooks.example.com:8443"
            assert asked == [("hooks.example.com", 8443)]  # once for the check and the connect
            # The name now answers a private address: refused before any connection.
            assert dispatcher.deliver_next(sub) is False
            assert len(receiver.requests) == 1 and len(asked) == 2
            with views.read() as cur:
                cur.execute("SELECT position, error, ok FROM dispatch_attempts ORDER BY position")
                rows = [tuple(r) for r in cur.fetchall()]
            assert rows[0] == (2, None, 1)
            assert rows[1][0] == 3 and rows[1][2] == 0 and "10.0.0.7" in rows[1][1]
        finally:
            dispatcher.stop()
    finally:
        views.close()


def test_an_endpoint_keeps_the_name_for_host_and_tls_and_brackets_ipv6():
    ep = endpoint("https://H.example/x?a=1", "2606:2800:220:1::1")
    assert (ep.connect_to, ep.port, ep.host_header, ep.server_name, ep.path) == (
        "2606:2800:220:1::1",
        443,
        "h.example",
        "h.example",
        "/x?a=1",
    )
    plain = endpoint("http://127.0.0.1:9", None)
    assert (plain.scheme, plain.connect_to, plain.port, plain.host_header, plain.path) == (
        "http",
        "127.0.0.1",
        9,
        "127.0.0.1:9",
        "/",
    )
    assert endpoint("http://[::1]:8080/r", None).host_header == "[::1]:8080"


def test_a_batch_stops_at_the_first_failure_and_records_what_went_before_it(tmp_path):
    """Receipts 2..6 read in one batch; the receiver refuses 4: 2 and 3 are delivered (the
    cursor at 3), 4 is a failed first attempt with its backoff, 5 and 6 wait behind it; the
    next batch starts again at 4 (its second attempt) once its time comes."""
    views = outbox(tmp_path, "http://127.0.0.1:9/", range(2, 7))
    try:
        refuse = {4}
        receiver = FakeReceiver(lambda position: 503 if position in refuse else 204)

        now = [1000.0]
        dispatcher = Dispatcher(
            views, lambda _: "whsec_" + "A" * 32, {"127.0.0.1"}, clock=lambda: now[0],
            schedule=Schedule(retry_base=5.0), opener=receiver,
        )  # fmt: skip
        try:
            sub = {"id": SUB, "url": "http://127.0.0.1:9/", "created_position": 1,
                   "redeliver_from": 0, "redeliver_position": 0}  # fmt: skip
            assert dispatcher.deliver(sub) is False
            assert receiver.positions() == [2, 3, 4]
            state = dispatcher.state(sub)
            assert (state.cursor, state.attempts, state.first_failure_at) == (3, 1, 1000.0)

            def attempts() -> list[tuple[int, int, int]]:
                with views.read() as cur:
                    cur.execute(
                        "SELECT position, attempt, ok FROM dispatch_attempts"
                        " ORDER BY position, attempt"
                    )
                    return [tuple(r) for r in cur.fetchall()]

            assert attempts() == [(2, 1, 1), (3, 1, 1), (4, 1, 0)]
            refuse.clear()
            now[0] = state.next_at + 0.01
            assert dispatcher.deliver(sub, limit=2) is True  # a full batch: more may wait
            assert dispatcher.deliver(sub) is False  # the last one: nothing more
            assert receiver.positions() == [2, 3, 4, 4, 5, 6]
            assert len(receiver.opened) == 1  # one connection, kept alive throughout
            assert attempts()[3:] == [(4, 2, 1), (5, 1, 1), (6, 1, 1)]
            assert dispatcher.state(sub).cursor == 6
        finally:
            dispatcher.stop()
    finally:
        views.close()


def test_a_redelivery_sends_again_with_the_next_attempt_numbers_and_moves_on(tmp_path):
    """Receipts 2..4 delivered; a redelivery from 3 sends 3 and 4 again (attempts 2), records
    them, and the cursor reaches 4 again - it never loops on the attempts already recorded."""
    views = outbox(tmp_path, "http://127.0.0.1:9/", range(2, 5))
    try:
        receiver = FakeReceiver()

        dispatcher = Dispatcher(
            views, lambda _: "whsec_" + "A" * 32, {"127.0.0.1"},
            opener=receiver,
        )  # fmt: skip
        try:
            sub = {"id": SUB, "url": "http://127.0.0.1:9/", "created_position": 1,
                   "redeliver_from": 0, "redeliver_position": 0}  # fmt: skip
            assert dispatcher.deliver(sub) is False and receiver.positions() == [2, 3, 4]
            again = {**sub, "redeliver_from": 3, "redeliver_position": 9}  # asked at position 9
            assert dispatcher.deliver(again) is False
            assert dispatcher.deliver(again) is False  # nothing more: not sent a third time
            assert receiver.positions() == [2, 3, 4, 3, 4]
            with views.read() as cur:
                cur.execute(
                    "SELECT position, attempt, ok FROM dispatch_attempts ORDER BY position, attempt"
                )
                rows = [tuple(r) for r in cur.fetchall()]
            assert rows == [(2, 1, 1), (3, 1, 1), (3, 2, 1), (4, 1, 1), (4, 2, 1)]
            assert dispatcher.state(again).cursor == 4
        finally:
            dispatcher.stop()
    finally:
        views.close()
