"""A stopping server does not wait for the tamper watch's round (issue #14 item 0: SIGTERM ends
a server within 10 s at any log size). The first round verifies the whole chain, which on a
large log takes seconds; `stop()` ends it after the page being checked."""

from __future__ import annotations

import threading
import time
from typing import Any

from ledger.watch import TamperWatch
from tests.support import admit, onboard, running_ledger

PAGE_SECONDS = 0.2


class SlowLog:
    """The server's log, read two rows per page and slowly: a long log in miniature."""

    verify_source = None  # no second process

    def __init__(self, log: Any) -> None:
        self._log = log
        self.pages = 0
        self.first_page = threading.Event()

    def select_log_rows(self, after: int | None, limit: int) -> Any:
        time.sleep(PAGE_SECONDS)
        self.pages += 1
        self.first_page.set()
        return self._log.select_log_rows(after, min(limit, 2))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._log, name)


def test_stop_ends_a_whole_chain_check_after_the_page_in_hand(tmp_path):
    with running_ledger(f"sqlite:///{tmp_path}/ledger.sqlite3") as ledger:
        tenant = onboard(ledger)
        admit(ledger, tenant, 1, "10")
        log = SlowLog(ledger.services.app.log)
        pages_needed = ledger.services.app.log.count() // 2
        assert pages_needed >= 5, "the log is too short for this test"
        watch = TamperWatch(log, period=60)  # type: ignore[arg-type]
        watch.start()
        assert log.first_page.wait(5)
        asked = time.monotonic()
        watch.stop()
        took = time.monotonic() - asked
        assert watch._thread is not None and not watch._thread.is_alive()
        assert took <= 2 * PAGE_SECONDS + 0.2, took
        assert log.pages < pages_needed  # it did not finish the round
        assert watch.alarm is None and watch.checkpoint is None


def test_an_unstopped_watch_finishes_its_round(tmp_path):
    """The same log and watch, not stopped: the round ends with a checkpoint (the test above
    is not passing because the slow log never finishes)."""
    with running_ledger(f"sqlite:///{tmp_path}/ledger.sqlite3") as ledger:
        tenant = onboard(ledger)
        admit(ledger, tenant, 1, "10")
        log = SlowLog(ledger.services.app.log)
        watch = TamperWatch(log, period=60)  # type: ignore[arg-type]
        watch.start()
        head = ledger.services.app.log.head().position
        deadline = time.monotonic() + 30
        while watch.checkpoint is None and time.monotonic() < deadline:
            time.sleep(0.05)
        watch.stop()
        assert watch.checkpoint is not None and watch.checkpoint.position == head
        assert watch.alarm is None
