"""Micro-batching: questions that arrive while the model is busy go in one batch.

No timer and no background thread. A caller who finds fewer than ``workers``
batches running encodes whatever is waiting, its own question included. Callers
arriving meanwhile wait; when a batch is done, the first of them encodes everything
that queued up behind it. A lone question is encoded at once; under load, each
model call serves many requests, and ``workers`` calls run side by side.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar, cast

T = TypeVar("T")
R = TypeVar("R")


class _Waiting(Generic[T, R]):
    """One caller's item; its flags change only under the batcher's lock."""

    def __init__(self, item: T) -> None:
        self.item = item
        self.result: R | None = None
        self.error: BaseException | None = None
        self.done = False
        self.promoted = False
        self.wake = threading.Event()


class MicroBatcher(Generic[T, R]):
    """Calls ``run`` on batches of at most ``max_batch`` items gathered from concurrent
    callers, with at most ``workers`` batches running at once."""

    def __init__(self, run: Callable[[list[T]], list[R]], max_batch: int = 32, workers: int = 1) -> None:
        self._run = run
        self._max_batch = max_batch
        self._workers = workers
        self._queue: list[_Waiting[T, R]] = []
        self._lock = threading.Lock()
        self._running = 0

    def __call__(self, item: T) -> R:
        waiting: _Waiting[T, R] = _Waiting(item)
        with self._lock:
            self._queue.append(waiting)
            lead = self._running < self._workers
            self._running += lead
        while True:
            if lead:
                self._run_next_batch()
            with self._lock:
                lead, waiting.promoted = waiting.promoted, False  # a slot handed over is used first
                if not lead and waiting.done:
                    break
                waiting.wake.clear()
            if not lead:
                waiting.wake.wait()
        if waiting.error is not None:
            raise waiting.error
        return cast(R, waiting.result)  # done without an error: the batch's result

    @property
    def running(self) -> int:
        """How many batches are running now."""
        return self._running

    def _run_next_batch(self) -> None:
        """Run the queue's head, then hand this worker slot to the next caller waiting."""
        with self._lock:
            batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch :]
            if not batch:  # another worker took everything, this caller's item included
                self._running -= 1
                return
        results: list[R | None] = [None] * len(batch)
        errors: list[BaseException | None] = [None] * len(batch)
        try:
            results = list(self._run([w.item for w in batch]))
        except BaseException as failure:  # every caller in the batch learns of it
            errors = [failure] * len(batch)
        with self._lock:
            for waiting, result, error in zip(batch, results, errors):
                waiting.result, waiting.error, waiting.done = result, error, True
                waiting.wake.set()
            successor = next((w for w in self._queue if not w.promoted), None)
            if successor is None:
                self._running -= 1
            else:
                successor.promoted = True
                successor.wake.set()
