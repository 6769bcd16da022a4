"""Batcher: concurrent jobs merged into shared calls, served in arrival order, failures isolated."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest

from pruner.batching import Batcher


class Slow:
    """run(): doubles each item after a pause, recording each call's items."""

    def __init__(self, pause: float = 0.05) -> None:
        self.pause = pause
        self.calls: list[list[int]] = []

    def __call__(self, items: Sequence[int]) -> list[int]:
        self.calls.append(list(items))
        time.sleep(self.pause)
        if any(i < 0 for i in items):
            raise ValueError(f"negative item in {list(items)}")
        return [2 * i for i in items]


def test_one_caller_runs_alone_and_empty_input_runs_nothing() -> None:
    run = Slow(0)
    b = Batcher(run)
    assert b.submit([1, 2]) == [2, 4]
    assert b.submit([]) == [] and run.calls == [[1, 2]]


def test_jobs_queued_behind_a_call_are_merged_into_the_next_one() -> None:
    run = Slow(0.1)
    b = Batcher(run)
    with ThreadPoolExecutor(6) as pool:
        first = pool.submit(b.submit, [0])
        time.sleep(0.03)  # the first call is running; the next five queue behind it
        rest = [pool.submit(b.submit, [n, n]) for n in range(1, 6)]
        assert first.result() == [0]
        assert [f.result() for f in rest] == [[2 * n, 2 * n] for n in range(1, 6)]
    assert len(run.calls) == 2 and sorted(run.calls[1]) == sorted(
        n for n in range(1, 6) for _ in "ab"
    )
    assert b.stats.largest == 5 and b.stats.jobs == 6


def test_a_failing_job_fails_only_its_caller() -> None:
    run = Slow(0.05)
    b = Batcher(run)
    with ThreadPoolExecutor(4) as pool:
        blocker = pool.submit(b.submit, [9])
        time.sleep(0.02)
        good = [pool.submit(b.submit, [n]) for n in (1, 2)]
        bad = pool.submit(b.submit, [-1])
        blocker.result()
        assert [g.result() for g in good] == [[2], [4]]
        with pytest.raises(ValueError, match="negative"):
            bad.result()


def test_batches_are_bounded_and_served_oldest_first() -> None:
    run = Slow(0.05)
    b = Batcher(run, max_items=4)
    order: list[int] = []
    lock = threading.Lock()

    def ask(n: int) -> None:
        b.submit([n, n])
        with lock:
            order.append(n)

    with ThreadPoolExecutor(8) as pool:
        futures = []
        for n in range(8):
            futures.append(pool.submit(ask, n))
            time.sleep(0.005)  # arrive one after another
        for f in futures:
            f.result()
    assert all(len(c) <= 4 for c in run.calls)
    served = [c[0] for c in run.calls for _ in range(len(c) // 2)]
    assert served == sorted(served)  # first come, first served across calls


def test_max_wait_gathers_company_and_exclusive_holds_the_model() -> None:
    run = Slow(0)
    b = Batcher(run, max_wait_s=0.1)
    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(b.submit, [n]) for n in range(3)]
        assert [f.result() for f in futures] == [[0], [2], [4]]
    assert len(run.calls) == 1
    with b.exclusive():
        waiting = threading.Thread(target=b.submit, args=([7],))
        waiting.start()
        time.sleep(0.05)
        assert waiting.is_alive()  # the model is held
    waiting.join(2)
    assert not waiting.is_alive()
    with pytest.raises(ValueError, match="max_items"):
        Batcher(run, max_items=0)
