"""Token buckets and the per-key limiter, with injected time (no sleeping)."""

from __future__ import annotations

import threading

import pytest

from app.auth import RateLimiter, TokenBucket


def test_burst_then_refusal_with_retry_after() -> None:
    bucket = TokenBucket(rate=2.0, burst=3, now=100.0)
    assert [bucket.take(100.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(100.0) == pytest.approx(0.5)
    assert bucket.take(100.25) == pytest.approx(0.25)  # a refusal takes nothing
    assert bucket.take(100.5) == 0.0
    assert bucket.take(100.5) == pytest.approx(0.5)


def test_refill_is_capped_at_burst() -> None:
    bucket = TokenBucket(rate=1.0, burst=2, now=0.0)
    assert bucket.take(0.0) == bucket.take(0.0) == 0.0
    assert bucket.take(1000.0) == bucket.take(1000.0) == 0.0  # only `burst` saved up
    assert bucket.take(1000.0) == pytest.approx(1.0)
    assert bucket.take(999.0) == pytest.approx(1.0)  # a clock stepping back refills nothing


def test_fractional_refill_reaches_a_whole_token() -> None:
    bucket = TokenBucket(rate=10.0, burst=1, now=0.0)
    assert bucket.take(0.0) == 0.0
    assert bucket.take(0.1) == 0.0  # 0.1 * 10 is a hair under 1.0 in floating point


@pytest.mark.parametrize(("rate", "burst"), [(0.0, 1), (-1.0, 1), (1.0, 0)])
def test_bucket_validates(rate: float, burst: int) -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate, burst)


def test_limiter_keeps_a_bucket_per_key() -> None:
    limiter = RateLimiter(rate=1.0, burst=2)
    assert limiter.check("a", 0.0) == limiter.check("a", 0.0) == 0.0
    assert limiter.check("a", 0.0) == pytest.approx(1.0)
    assert limiter.check("b", 0.0) == 0.0
    assert limiter.check("a", 0.5) == pytest.approx(0.5)
    assert limiter.check("a", 1.0) == 0.0


@pytest.mark.parametrize("rate", [0.0, -1.0])
def test_rate_zero_is_unlimited(rate: float) -> None:
    limiter = RateLimiter(rate=rate, burst=0)
    assert all(limiter.check("a", 0.0) == 0.0 for _ in range(10_000))
    assert len(limiter) == 0


def test_least_recently_used_buckets_are_dropped() -> None:
    limiter = RateLimiter(rate=1.0, burst=1, max_keys=2)
    assert limiter.check("a", 0.0) == 0.0
    assert limiter.check("b", 0.0) == 0.0
    assert limiter.check("a", 0.0) > 0  # a is now the most recently used
    assert limiter.check("c", 0.0) == 0.0  # drops b
    assert len(limiter) == 2
    assert limiter.check("a", 0.0) > 0  # a kept its empty bucket
    assert limiter.check("b", 0.0) == 0.0  # b starts again full (drops c)
    assert limiter.check("c", 0.0) == 0.0


@pytest.mark.parametrize("max_keys", [0, -1])
def test_limiter_validates(max_keys: int) -> None:
    with pytest.raises(ValueError):
        RateLimiter(1.0, 1, max_keys=max_keys)
    with pytest.raises(ValueError):
        RateLimiter(1.0, 0)


def test_threads_share_one_bucket_exactly() -> None:
    limiter = RateLimiter(rate=1e-6, burst=1000)  # no refill during the test
    allowed: list[int] = []
    start = threading.Barrier(8)

    def hammer() -> None:
        start.wait()
        ok = sum(limiter.check("shared") == 0.0 for _ in range(500))
        for i in range(200):
            limiter.check(f"own-{threading.get_ident()}-{i}")
        allowed.append(ok)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(allowed) == 1000  # 8 × 500 tries, exactly `burst` let through
    assert len(limiter) == 1 + 8 * 200
