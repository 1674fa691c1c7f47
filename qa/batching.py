"""Micro-batching: questions that arrive while one batch is encoding go in the next.

No timer and no background thread. The first caller encodes whatever is waiting,
its own question included. Callers arriving meanwhile wait, and when that batch
is done the first of them encodes everything that queued up behind it. A lone
question is encoded at once; under load, one model call serves many requests.
"""

from __future__ import annotations

import threading
from typing import Callable, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class _Waiting(Generic[T, R]):
    def __init__(self, item: T) -> None:
        self.item = item
        self.result: R | None = None
        self.error: BaseException | None = None
        self.lead = False
        self.ready = threading.Event()


class MicroBatcher(Generic[T, R]):
    """Calls ``run`` on batches of at most ``max_batch`` items gathered from concurrent callers."""

    def __init__(self, run: Callable[[list[T]], list[R]], max_batch: int = 32) -> None:
        self._run = run
        self._max_batch = max_batch
        self._queue: list[_Waiting[T, R]] = []
        self._lock = threading.Lock()
        self._busy = False
        self.batches = 0

    def __call__(self, item: T) -> R:
        waiting = _Waiting(item)
        with self._lock:
            self._queue.append(waiting)
            waiting.lead = not self._busy
            self._busy = True
        if not waiting.lead:
            waiting.ready.wait()
        if waiting.lead:
            self._run_next_batch()
        if waiting.error is not None:
            raise waiting.error
        return waiting.result

    def _run_next_batch(self) -> None:
        """Encode the queue's head (this caller's item is in it), then hand over the lead."""
        with self._lock:
            batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch :]
            self.batches += 1
        try:
            results = self._run([w.item for w in batch])
            for waiting, result in zip(batch, results):
                waiting.result = result
        except BaseException as error:  # every caller in the batch learns of it
            for waiting in batch:
                waiting.error = error
        for waiting in batch:
            waiting.lead = False
            waiting.ready.set()
        with self._lock:
            if self._queue:
                self._queue[0].lead = True
                self._queue[0].ready.set()
            else:
                self._busy = False
