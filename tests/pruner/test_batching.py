"""Batcher: concurrent jobs merged into shared calls, served in arrival order, failures isolated.

Every test holds the first call open on an Event and waits until the queue holds what it wants
before letting go: no test depends on how fast threads start."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest

from pruner.batching import Batcher


class Gated:
    """run(): doubles each item, records each call; the first call waits for ``release``."""

    def __init__(self) -> None:
        self.calls: list[list[int]] = []
        self.started = threading.Event()
        self.release = threading.Event()

    def __call__(self, items: Sequence[int]) -> list[int]:
        self.calls.append(list(items))
        if len(self.calls) == 1:
            self.started.set()
            assert self.release.wait(10)
        if any(i < 0 for i in items):
            raise ValueError(f"negative item in {list(items)}")
        return [2 * i for i in items]


def until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def queue_behind_a_running_call(
    b: Batcher[int, int], run: Gated, pool: ThreadPoolExecutor, jobs: list[Any]
) -> tuple[Future[list[int]], list[Future[Any]]]:
    """Start a first call and hold it; queue ``jobs`` (item lists, or callables for alone())
    one after another, in that order; then let the first call finish."""
    first = pool.submit(b.submit, [100])
    assert run.started.wait(10)
    futures: list[Future[Any]] = []
    for n, job in enumerate(jobs, start=1):
        if callable(job):
            futures.append(pool.submit(b.alone, job))
        else:
            futures.append(pool.submit(b.submit, job))
        until(lambda n=n: len(b._queue) == n)  # type: ignore[misc]
    run.release.set()
    return first, futures


def test_one_caller_runs_alone_and_empty_input_runs_nothing() -> None:
    run = Gated()
    run.release.set()
    b = Batcher(run)
    assert b.submit([1, 2]) == [2, 4]
    assert b.submit([]) == [] and run.calls == [[1, 2]]


def test_jobs_queued_behind_a_call_are_merged_into_the_next_one() -> None:
    run, pool = Gated(), ThreadPoolExecutor(8)
    b = Batcher(run)
    first, rest = queue_behind_a_running_call(b, run, pool, [[n, n] for n in range(1, 6)])
    assert first.result(10) == [200]
    assert [f.result(10) for f in rest] == [[2 * n, 2 * n] for n in range(1, 6)]
    assert run.calls == [[100], [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]]
    assert (b.stats.calls, b.stats.jobs, b.stats.largest) == (2, 6, 5)
    pool.shutdown()


def test_a_failing_job_fails_only_its_caller() -> None:
    run, pool = Gated(), ThreadPoolExecutor(4)
    b = Batcher(run)
    _, (good, bad, other) = queue_behind_a_running_call(b, run, pool, [[1], [-1], [2]])
    assert good.result(10) == [2] and other.result(10) == [4]
    with pytest.raises(ValueError, match="negative"):
        bad.result(10)
    pool.shutdown()


def test_batches_are_bounded_and_served_oldest_first() -> None:
    run, pool = Gated(), ThreadPoolExecutor(8)
    b = Batcher(run, max_items=4)
    _, futures = queue_behind_a_running_call(b, run, pool, [[n, n] for n in range(1, 6)])
    for f in futures:
        f.result(10)
    assert run.calls == [[100], [1, 1, 2, 2], [3, 3, 4, 4], [5, 5]]
    pool.shutdown()


def test_alone_work_keeps_its_place_in_the_queue() -> None:
    run, pool = Gated(), ThreadPoolExecutor(4)
    b = Batcher(run)
    order: list[str] = []
    _, (before, alone, after) = queue_behind_a_running_call(
        b, run, pool, [[1], lambda: order.append("alone") or len(run.calls), [2]]
    )
    assert before.result(10) == [2] and after.result(10) == [4]
    assert alone.result(10) == 2  # ran after [1]'s call, before [2]'s: never merged
    assert run.calls == [[100], [1], [2]] and order == ["alone"]
    assert b.alone(lambda: 1) == 1
    with pytest.raises(ZeroDivisionError):
        b.alone(lambda: 1 / 0)
    pool.shutdown()


def test_max_wait_gathers_company_for_a_lone_job() -> None:
    run = Gated()
    run.release.set()
    b = Batcher(run, max_items=3, max_wait_s=10)  # ends as soon as 3 items are queued
    with ThreadPoolExecutor(3) as pool:
        lone = pool.submit(b.submit, [0])
        until(lambda: b._busy)  # its caller leads, and waits for company
        company = [pool.submit(b.submit, [n]) for n in (1, 2)]
        assert lone.result(10) == [0] and [f.result(10) for f in company] == [[2], [4]]
    assert len(run.calls) == 1 and sorted(run.calls[0]) == [0, 1, 2]
    with pytest.raises(ValueError, match="max_items"):
        Batcher(run, max_items=0)
    with pytest.raises(ValueError, match="max_wait_s"):
        Batcher(run, max_wait_s=-1)


def test_an_interrupted_leader_leaves_no_job_hanging() -> None:
    def run(items: Sequence[int]) -> list[int]:
        raise KeyboardInterrupt

    b: Batcher[int, int] = Batcher(run)
    with pytest.raises(KeyboardInterrupt):
        b.submit([1])
    assert not b._queue and not b._busy
