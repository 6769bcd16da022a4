"""Merge concurrent callers' work into shared forward passes (micro-batching, no extra thread).

    batcher = Batcher(run_many, max_items=64, max_wait_s=0.0)
    result = batcher.submit(items)           # from any number of request threads
    value = batcher.alone(lambda: work())     # work that must not be merged, in the same queue

Each caller queues its job and waits. Whoever finds the model idle becomes the leader: it takes
the oldest queued jobs (up to ``max_items`` items in all, first come first served), runs them in
ONE call of ``run`` and hands every job its own results. While the leader computes, new jobs pile
up, so the next leader takes them together: under load the batches grow by themselves and at
concurrency 1 nothing waits. ``max_wait_s`` lets a leader whose job is alone in the queue wait a
few milliseconds for company (off by default: it only adds latency on an idle service).

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
V = TypeVar("V")


@dataclass
class _Job:
    items: Sequence[Any]
    alone: Callable[[], Any] | None = None  # run by itself instead of being merged
    results: list[Any] | None = None
    error: BaseException | None = None
    done: bool = False


@dataclass
class BatchStats:
    calls: int = 0  # merged calls of run
    jobs: int = 0  # jobs served by them
    items: int = 0  # items run
    largest: int = 0  # most jobs merged into one call


class Batcher(Generic[T, R]):
    """``submit(items)`` → ``run(items)``'s results for those items, merged with other callers'."""

    def __init__(
        self,
        run: Callable[[Sequence[T]], list[R]],
        max_items: int = 64,
        max_wait_s: float = 0.0,
    ) -> None:
        if max_items <= 0:
            raise ValueError(f"max_items must be > 0, got {max_items}")
        if max_wait_s < 0:
            raise ValueError(f"max_wait_s must be >= 0, got {max_wait_s}")
        self._run = run
        self.max_items = max_items
        self.max_wait_s = max_wait_s
        self._queue: deque[_Job] = deque()
        self._cond = threading.Condition()
        self._busy = False
        self.stats = BatchStats()

    def submit(self, items: Sequence[T]) -> list[R]:
        """Results for ``items`` in order; raises what ``run`` raised on them alone."""
        if not items:
            return []
        return self._wait(_Job(items))

    def alone(self, work: Callable[[], V]) -> V:
        """``work()`` run with the model to itself, in its turn among the queued jobs."""
        result: V = self._wait(_Job([None], alone=work))[0]
        return result

    # ---- internals --------------------------------------------------------------------------
    def _wait(self, job: _Job) -> list[Any]:
        with self._cond:
            self._queue.append(job)
            self._cond.notify_all()  # a leader gathering company counts it
        first = True
        try:
            while True:
                with self._cond:
                    while not job.done and self._busy:
                        self._cond.wait()
                    if job.done:
                        return self._outcome(job)
                    self._busy = True
                try:  # lead: serve the oldest jobs, then again until this one is served
                    if first and self.max_wait_s and job.alone is None:
                        self._gather(job)
                    first = False
                    with self._cond:
                        batch = self._take()
                    self._serve(batch)
                finally:
                    with self._cond:
                        self._busy = False
                        self._cond.notify_all()
        except BaseException:
            with self._cond:  # interrupted while queued: nobody is left to want the result
                if job in self._queue:
                    self._queue.remove(job)
            raise

    def _gather(self, job: _Job) -> None:
        """Wait up to max_wait_s for company when this job is the only one queued."""
        deadline = time.monotonic() + self.max_wait_s
        with self._cond:
            if list(self._queue) != [job]:
                return
            while sum(len(j.items) for j in self._queue if j.alone is None) < self.max_items:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)

    def _take(self) -> list[_Job]:
        """The oldest jobs up to max_items items (call under the lock); an ``alone`` job, or an
        oversized one, is taken by itself."""
        if not self._queue:
            return []
        batch = [self._queue.popleft()]
        if batch[0].alone is not None:
            return batch
        size = len(batch[0].items)
        while (
            self._queue
            and self._queue[0].alone is None
            and size + len(self._queue[0].items) <= self.max_items
        ):
            size += len(self._queue[0].items)
            batch.append(self._queue.popleft())
        return batch

    def _serve(self, batch: list[_Job]) -> None:
        if not batch:
            return
        try:
            if batch[0].alone is not None:
                try:
                    value = batch[0].alone()
                except Exception as exc:
                    self._fail(batch[0], exc)
                    return
                self._finish(batch, [value], merged=False)
                return
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
        except BaseException as exc:  # e.g. KeyboardInterrupt: no job of the batch is left hanging
            for job in batch:
                if not job.done:
                    self._fail(job, exc)
            raise

    def _call(self, items: Sequence[T]) -> list[R]:
        results = self._run(items)
        if len(results) != len(items):
            raise RuntimeError(f"run gave {len(results)} results for {len(items)} items")
        return results

    def _finish(self, batch: list[_Job], results: list[Any], merged: bool = True) -> None:
        start = 0
        with self._cond:
            for job in batch:
                job.results = results[start : start + len(job.items)]
                job.done = True
                start += len(job.items)
            if merged:
                self.stats.calls += 1
                self.stats.jobs += len(batch)
                self.stats.items += len(results)
                self.stats.largest = max(self.stats.largest, len(batch))
            self._cond.notify_all()

    def _fail(self, job: _Job, exc: BaseException) -> None:
        with self._cond:
            job.error = exc
            job.done = True
            self._cond.notify_all()

    @staticmethod
    def _outcome(job: _Job) -> list[Any]:
        if job.error is not None:
            raise job.error
        assert job.results is not None
        return job.results
