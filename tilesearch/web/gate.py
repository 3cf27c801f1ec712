"""Deadlines for searches: a search waits for a slot at most `start_timeout` seconds and runs at
most `finish_timeout` seconds, else it answers 503 (Busy) and its slot is freed, so a stuck
search never blocks the server for good. Searches that ran past their deadline keep running
in their worker thread (Python cannot stop a thread); while `max_overdue` of them still run,
new searches answer 503 at once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TypeVar

from tilesearch.web.errors import Busy

T = TypeVar("T")


class SearchGate:
    """Runs searches in a small pool of worker threads, `slots` at a time, with deadlines."""

    def __init__(self, slots: int = 2, start_timeout: float = 10.0,
                 finish_timeout: float = 30.0, max_overdue: int = 2) -> None:
        self.slots = slots
        self.start_timeout = start_timeout
        self.finish_timeout = finish_timeout
        self.max_overdue = max_overdue
        self._slots = threading.BoundedSemaphore(slots)
        self._lock = threading.Lock()
        self.overdue = 0
        """Searches that ran past their deadline and still run."""
        # Persistent threads: each keeps its own store handle (StoreState.store is per thread).
        self._pool = ThreadPoolExecutor(2 * slots + max_overdue,
                                        thread_name_prefix="tilesearch-search")

    def run(self, fn: Callable[[], T]) -> T:
        """`fn()` in a worker thread, within the deadlines (Busy otherwise)."""
        if self.overdue >= self.max_overdue:
            raise Busy(f"{self.overdue} searches are still running past their "
                       f"{self.finish_timeout:g} s deadline; try again later")
        if not self._slots.acquire(timeout=self.start_timeout):
            raise Busy(f"all {self.slots} search slots stayed busy for "
                       f"{self.start_timeout:g} s; try again later")
        try:
            future = self._pool.submit(fn)
            try:
                return future.result(timeout=self.finish_timeout)
            except FutureTimeout:
                self._mark_overdue(future)
                raise Busy(f"the search did not finish within {self.finish_timeout:g} s; "
                           "try again later") from None
        finally:
            self._slots.release()

    def _mark_overdue(self, future: Future[T]) -> None:
        with self._lock:
            self.overdue += 1
        future.add_done_callback(self._overdue_done)

    def _overdue_done(self, _: object) -> None:
        with self._lock:
            self.overdue -= 1

    def close(self) -> None:
        """Stop taking searches (running ones finish in the background)."""
        self._pool.shutdown(wait=False, cancel_futures=True)
