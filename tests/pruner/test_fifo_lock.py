"""The pruner's forward-pass lock is granted in arrival order."""

from __future__ import annotations

import threading
import time

from pruner.inference import FifoLock


def test_waiters_get_the_lock_in_arrival_order() -> None:
    lock, order = FifoLock(), []
    lock.__enter__()  # held: everyone below queues
    threads = []
    for n in range(8):
        t = threading.Thread(
            target=lambda n=n: (lock.__enter__(), order.append(n), lock.__exit__())
        )
        t.start()
        threads.append(t)
        time.sleep(0.02)  # arrive one after another
    lock.__exit__()
    for t in threads:
        t.join(5)
    assert order == list(range(8))
