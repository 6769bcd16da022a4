"""Merge concurrent callers' work into shared forward passes (micro-batching, no extra thread).

    batcher = Batcher(run_many, max_items=256, max_wait_s=0.0)
    result = batcher.submit(items)           # from any number of request threads

Each caller queues its job and waits. Whoever finds the model idle becomes the leader: it takes
the oldest queued jobs (up to ``max_items`` items in all, first come first served), runs them in
ONE call of ``run`` and hands every job its own results. While the leader computes, new jobs pile
up, so the next leader takes them together: under load the batches grow by themselves and at
concurrency 1 nothing waits. ``max_wait_s`` lets a leader wait a few milliseconds for company
when the queue is otherwise empty (off by default: it only adds latency on an idle service).

If a merged call raises, each of its jobs is run alone, so one bad job fails only its caller.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class _Job(Generic[T, R]):
    items: Sequence[T]
    results: list[R] | None = None
    error: BaseException | None = None
    done: bool = False


@dataclass
class BatchStats:
    calls: int = 0  # merged calls of run
    jobs: int = 0  # jobs served
    items: int = 0  # items run
    largest: int = 0  # most jobs merged into one call


class Batcher(Generic[T, R]):
    """``submit(items)`` → ``run(items)``'s results for those items, merged with other callers'."""

    def __init__(
        self,
        run: Callable[[Sequence[T]], list[R]],
        max_items: int = 256,
        max_wait_s: float = 0.0,
    ) -> None:
        if max_items <= 0:
            raise ValueError(f"max_items must be > 0, got {max_items}")
        if max_wait_s < 0:
            raise ValueError(f"max_wait_s must be >= 0, got {max_wait_s}")
        self._run = run
        self.max_items = max_items
        self.max_wait_s = max_wait_s
        self._queue: deque[_Job[T, R]] = deque()
        self._cond = threading.Condition()
        self._busy = False
        self.stats = BatchStats()

    def submit(self, items: Sequence[T]) -> list[R]:
        """Results for ``items`` in order; raises what ``run`` raised on them alone."""
        if not items:
            return []
        job: _Job[T, R] = _Job(items)
        with self._cond:
            self._queue.append(job)
            self._cond.notify_all()  # a leader gathering company (max_wait_s) counts it
        while True:
            with self._cond:
                while not job.done and self._busy:
                    self._cond.wait()
                if job.done:
                    return self._outcome(job)
                self._busy = True
            try:  # lead: serve the oldest jobs, then again until this one is served
                if self.max_wait_s:
                    self._gather()
                with self._cond:
                    batch = self._take()
                self._serve(batch)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def exclusive(self) -> _Exclusive:
        """Hold the model between batches (for work that is not merged, e.g. rank-only calls)."""
        return _Exclusive(self)

    # ---- internals --------------------------------------------------------------------------
    def _gather(self) -> None:
        deadline = time.monotonic() + self.max_wait_s
        with self._cond:
            while sum(len(j.items) for j in self._queue) < self.max_items:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)

    def _take(self) -> list[_Job[T, R]]:
        """The oldest jobs, at least one, up to max_items items in all (call under the lock)."""
        batch = [self._queue.popleft()]
        size = len(batch[0].items)
        while self._queue and size + len(self._queue[0].items) <= self.max_items:
            size += len(self._queue[0].items)
            batch.append(self._queue.popleft())
        return batch

    def _serve(self, batch: list[_Job[T, R]]) -> None:
        try:
            self._finish(batch, self._call([i for job in batch for i in job.items]))
        except Exception as exc:
            if len(batch) == 1:
                self._fail(batch[0], exc)
                return
            for job in batch:  # find the job that fails: only its caller gets the error
                try:
                    self._finish([job], self._call(job.items))
                except Exception as one:
                    self._fail(job, one)

    def _call(self, items: Sequence[T]) -> list[R]:
        results = self._run(items)
        if len(results) != len(items):
            raise RuntimeError(f"run gave {len(results)} results for {len(items)} items")
        return results

    def _finish(self, batch: list[_Job[T, R]], results: list[R]) -> None:
        start = 0
        with self._cond:
            for job in batch:
                job.results = results[start : start + len(job.items)]
                job.done = True
                start += len(job.items)
            self.stats.calls += 1
            self.stats.jobs += len(batch)
            self.stats.items += len(results)
            self.stats.largest = max(self.stats.largest, len(batch))
            self._cond.notify_all()

    def _fail(self, job: _Job[T, R], exc: BaseException) -> None:
        with self._cond:
            job.error = exc
            job.done = True
            self._cond.notify_all()

    @staticmethod
    def _outcome(job: _Job[T, R]) -> list[R]:
        if job.error is not None:
            raise job.error
        assert job.results is not None
        return job.results


class _Exclusive:
    def __init__(self, batcher: Batcher[Any, Any]) -> None:
        self._b = batcher

    def __enter__(self) -> None:
        with self._b._cond:
            while self._b._busy:
                self._b._cond.wait()
            self._b._busy = True

    def __exit__(self, *exc: object) -> None:
        with self._b._cond:
            self._b._busy = False
            self._b._cond.notify_all()
