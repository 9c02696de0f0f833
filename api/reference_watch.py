"""The reference data's outlook in operation (issue #15 item 2): what `/healthz` shows under
`reference`, the `ledger_reference_days_left` gauge, and the warning logged once a day.

The outlook itself is the domain's (domain/reference_outlook.py); here it is computed for
"today" in China time (customs months are China's) from the tables the ledger assesses with.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from domain.declaration import SHANGHAI
from domain.duties import DutyTables
from domain.reference_outlook import ReferenceOutlook, outlook

log = logging.getLogger("customs_ledger.reference")
NO_TABLES = DutyTables(tariffs=[], exchange_rates=[], assessable=[])


def today_in_china(now: datetime | None = None) -> date:
    return (now or datetime.now(UTC)).astimezone(SHANGHAI).date()


class ReferenceWatch:
    """The outlook of one server's tables; logs its warnings at most once a day."""

    def __init__(
        self,
        tables: Callable[[], Any],
        clock: Callable[[], datetime] | None = None,
        positive_list_rows: Callable[[date], int] | None = None,
    ):
        self.tables = tables
        self.positive_list_rows = positive_list_rows or (lambda day: 0)
        self.clock = clock or (lambda: datetime.now(UTC))
        self._logged_on: date | None = None
        self._lock = threading.Lock()

    def outlook(self) -> ReferenceOutlook:
        today = today_in_china(self.clock())
        try:
            found = outlook(self.tables(), today, self.positive_list_rows(today))
        except Exception as e:  # an altered log: /healthz and /metrics still answer
            found = outlook(NO_TABLES, today)
            found.warnings.insert(0, f"the published reference tables cannot be read: {e}")
        if found.warnings:
            with self._lock:
                first_today = self._logged_on != today
                self._logged_on = today
            if first_today:
                for warning in found.warnings:
                    log.warning("reference data: %s", warning)
        return found
