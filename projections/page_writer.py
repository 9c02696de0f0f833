"""The writer thread of a replay: it commits a page while the runner folds the next one."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from projections.store import ViewStore

# (cursor, a page's writes, tracked position before it, after it): writes the page and moves
# the tracking row, in the cursor's transaction (`CatchUpRunner._write`).
PageWrite = Callable[[Any, list[Any], int, int], None]


class PageWriter:
    """A thread that commits pages one at a time; `submit` waits until the page before
    has committed (and raises its error, if it failed)."""

    def __init__(self, views: ViewStore, write: PageWrite) -> None:
        self.views, self.write = views, write
        self.error: BaseException | None = None
        self._idle = threading.Event()
        self._idle.set()
        self._ready = threading.Event()
        self._page: tuple[list[Any], int, int] | None = None
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="replay-writer", daemon=True)
        self._thread.start()

    def submit(self, writes: list[Any], start: int, end: int) -> None:
        self.finish()
        self._idle.clear()
        self._page = (writes, start, end)
        self._ready.set()

    def finish(self) -> None:
        """Wait for the page in hand to commit."""
        self._idle.wait()
        if self.error is not None:
            raise self.error

    def stop(self) -> None:
        self._idle.wait()
        self._stopped = True
        self._ready.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            self._ready.wait()
            self._ready.clear()
            if self._stopped:
                return
            assert self._page is not None
            writes, start, end = self._page
            self._page = None
            try:
                with self.views.transaction() as cur:
                    self.write(cur, writes, start, end)
            except BaseException as e:  # handed to the thread that submitted the page
                self.error = e
            finally:
                self._idle.set()
