"""Per-key rate limits: one token bucket per API key, held in memory.

A bucket holds up to ``burst`` tokens and gains ``rate`` per second; a request takes one. A
refused request learns how long until a token is there (for ``Retry-After``) and takes nothing,
so a client that keeps retrying too early does not push its own wait further out. The limits
are per process: N workers allow N times the rate, which is the price of needing no shared store.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

_EPSILON = 1e-9  # float refill may land a hair under a whole token that is due


class TokenBucket:
    """``burst`` tokens, refilled at ``rate`` per second. Not thread-safe on its own
    (:class:`RateLimiter` locks around it). Times are ``time.monotonic()`` seconds."""

    def __init__(self, rate: float, burst: int, now: float | None = None) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be > 0, got {rate}")
        if burst < 1:
            raise ValueError(f"burst must be >= 1, got {burst}")
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._last = time.monotonic() if now is None else now

    def take(self, now: float | None = None) -> float:
        """0.0 when a token was taken, else the seconds until one will be there (none taken)."""
        now = time.monotonic() if now is None else now
        elapsed = max(0.0, now - self._last)  # a clock that steps back refills nothing
        self._tokens = min(float(self.burst), self._tokens + elapsed * self.rate)
        self._last = max(self._last, now)
        if self._tokens >= 1.0 - _EPSILON:
            self._tokens = max(0.0, self._tokens - 1.0)
            return 0.0
        return (1.0 - self._tokens) / self.rate


class RateLimiter:
    """A :class:`TokenBucket` per key id, safe to share between threads. ``rate <= 0`` means
    no limit. At most ``max_keys`` buckets are kept: past that the least recently used one is
    dropped, and its key starts again with a full bucket (a key idle that long would have
    refilled anyway, unless more than ``max_keys`` keys are busy at once)."""

    def __init__(self, rate: float, burst: int, max_keys: int = 10000) -> None:
        if rate > 0 and burst < 1:
            raise ValueError(f"burst must be >= 1, got {burst}")
        if max_keys < 1:
            raise ValueError(f"max_keys must be >= 1, got {max_keys}")
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._lock = threading.Lock()
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    @property
    def unlimited(self) -> bool:
        return self.rate <= 0

    def check(self, key_id: str, now: float | None = None) -> float:
        """0.0 when ``key_id`` may make a request now (it is counted), else the seconds to wait."""
        if self.unlimited:
            return 0.0
        now = time.monotonic() if now is None else now
        with self._lock:
            bucket = self._buckets.get(key_id)
            if bucket is None:
                bucket = self._buckets[key_id] = TokenBucket(self.rate, self.burst, now)
                if len(self._buckets) > self.max_keys:
                    self._buckets.popitem(last=False)
            else:
                self._buckets.move_to_end(key_id)
            return bucket.take(now)

    def __len__(self) -> int:
        with self._lock:
            return len(self._buckets)
