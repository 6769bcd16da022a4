"""A backend wrapped so that its failures stay small: an overall deadline per attempt, retries
with exponential backoff and jitter for transient failures, and a circuit breaker.

The breaker counts the backend's failures across all requests. After ``failures`` in a row it
opens: calls fail at once (no request reaches a server that is down) until ``cooldown_s`` has
passed; then one trial call is let through (half-open) and its outcome closes or re-opens it.
A busy backend (:class:`LLMBusyError`) is not failing: it is neither retried nor counted.
A stream is retried only while it has produced nothing, so no text is ever sent twice.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

import anyio

from app.llm.base import LLM, LLMBusyError, LLMError, LLMTransientError, Passage, TextCompleter

logger = logging.getLogger(__name__)

T = TypeVar("T")
MAX_BACKOFF_S = 10.0


class CircuitOpenError(LLMError):
    """The backend's circuit is open: the call failed fast, without reaching the backend."""


@dataclass(frozen=True)
class BreakerState:
    state: str  # closed, open or half_open
    consecutive_failures: int
    opened_at: str | None  # ISO 8601 UTC, while open or half-open
    retry_in_s: float | None  # until the half-open trial, while open


class CircuitBreaker:
    """Closed → (``failures`` in a row) → open → (``cooldown_s``) → half-open: one trial
    call; its success closes the circuit, its failure opens it again. Safe to share between
    concurrent requests and threads (every transition holds the lock, none awaits under it)."""

    def __init__(self, name: str, failures: int = 5, cooldown_s: float = 30.0) -> None:
        if failures <= 0:
            raise ValueError(f"breaker failures must be > 0, got {failures}")
        if cooldown_s < 0:
            raise ValueError(f"breaker cooldown_s must be >= 0, got {cooldown_s}")
        self.name = name
        self.failures = failures
        self.cooldown_s = cooldown_s
        self._lock = threading.Lock()
        self._state = "closed"
        self._count = 0
        self._opened = 0.0  # time.monotonic() when it opened
        self._opened_at: datetime | None = None
        self._trial = False  # the half-open trial call is in flight

    def before_call(self) -> None:
        """Admit a call, or raise :class:`CircuitOpenError` saying when the next try is."""
        with self._lock:
            if self._state == "closed":
                return
            wait = self._opened + self.cooldown_s - time.monotonic()
            if self._state == "open" and wait <= 0:
                self._state, self._trial = "half_open", False
            if self._state == "half_open" and not self._trial:
                self._trial = True
                return
            raise CircuitOpenError(self._open_message(wait))

    def _open_message(self, wait: float) -> str:
        when = f"retrying in {wait:.1f} s" if wait > 0 else "a trial call is in flight"
        failed = f"{self._count} consecutive failures"
        return f"circuit of llm {self.name!r} is open after {failed}; {when}"

    def success(self) -> None:
        with self._lock:
            if self._state != "closed":
                logger.info("llm %r circuit closed", self.name)
            self._state, self._count, self._trial, self._opened_at = "closed", 0, False, None

    def failure(self) -> None:
        with self._lock:
            self._count += 1
            if self._state == "half_open" or self._count >= self.failures:
                if self._state != "open":
                    logger.warning(
                        "llm %r circuit opened after %d consecutive failures; next try in %.1f s",
                        self.name,
                        self._count,
                        self.cooldown_s,
                    )
                self._state, self._trial = "open", False
                self._opened, self._opened_at = time.monotonic(), datetime.now(UTC)

    def release(self) -> None:
        """The call ended with no verdict on the backend (busy, cancelled): free the trial."""
        with self._lock:
            self._trial = False

    def snapshot(self) -> BreakerState:
        with self._lock:
            wait = self._opened + self.cooldown_s - time.monotonic()
            state = self._state
            if state == "open" and wait <= 0:  # the next call will be the trial
                state = "half_open"
            return BreakerState(
                state=state,
                consecutive_failures=self._count,
                opened_at=self._opened_at.isoformat() if self._opened_at else None,
                retry_in_s=round(wait, 3) if state == "open" else None,
            )


class ResilientLLM:
    """``inner`` with a deadline of ``timeout_s`` per attempt (for a stream: for each piece),
    ``retries`` more attempts after a transient failure (backoff ``backoff_s`` · 2^i, jittered),
    all behind ``breaker``. :func:`with_resilience` keeps ``complete_text`` where it exists."""

    def __init__(
        self,
        inner: LLM,
        breaker: CircuitBreaker,
        retries: int = 2,
        backoff_s: float = 0.5,
        timeout_s: float = 60.0,
    ) -> None:
        if retries < 0:
            raise ValueError(f"retries must be >= 0, got {retries}")
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        self.inner = inner
        self.name = inner.name
        self.breaker = breaker
        self.retries = retries
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s

    async def generate(self, question: str, passages: list[Passage]) -> str:
        return await self._call(lambda: self.inner.generate(question, passages))

    async def stream(self, question: str, passages: list[Passage]) -> AsyncIterator[str]:
        for attempt in range(self.retries + 1):
            sent = False
            try:
                async with aclosing(self._attempt_stream(question, passages)) as pieces:
                    async for piece in pieces:
                        sent = True
                        yield piece
                return
            except LLMError as exc:
                if sent or not self._retry(exc, attempt):
                    raise
            await self._sleep(attempt)

    async def _attempt_stream(
        self, question: str, passages: list[Passage]
    ) -> AsyncGenerator[str, None]:
        """One attempt, each piece under the deadline; counted by the breaker."""
        self.breaker.before_call()
        pieces = self.inner.stream(question, passages)
        try:
            while True:
                try:
                    piece = await self._deadline(anext(pieces))
                except StopAsyncIteration:
                    break
                yield piece
        except BaseException as exc:
            await _close(pieces)
            self._failed(exc)
            raise
        self.breaker.success()

    async def _call(self, call: Callable[[], Awaitable[T]]) -> T:
        for attempt in range(self.retries + 1):
            try:
                return await self._attempt(call)
            except LLMError as exc:
                if not self._retry(exc, attempt):
                    raise
            await self._sleep(attempt)
        raise AssertionError("unreachable")  # the last attempt returns or raises

    async def _attempt(self, call: Callable[[], Awaitable[T]]) -> T:
        self.breaker.before_call()
        try:
            result = await self._deadline(call())
        except BaseException as exc:
            self._failed(exc)
            raise
        self.breaker.success()
        return result

    async def _deadline(self, awaitable: Awaitable[T]) -> T:
        try:
            with anyio.fail_after(self.timeout_s):
                return await awaitable
        except TimeoutError as exc:
            raise LLMTransientError(
                f"LLM backend {self.name!r} timed out: no answer within {self.timeout_s:g} s"
            ) from exc

    def _failed(self, exc: BaseException) -> None:
        """A failed attempt counts against the backend; being busy, cancelled or no longer
        read from says nothing about its health (but frees a half-open trial)."""
        if isinstance(exc, LLMError) and not isinstance(exc, LLMBusyError):
            self.breaker.failure()
        else:
            self.breaker.release()

    def _retry(self, exc: LLMError, attempt: int) -> bool:
        if not exc.retryable or attempt >= self.retries:
            return False
        logger.warning("llm %r attempt %d failed, retrying: %s", self.name, attempt + 1, exc)
        return True

    async def _sleep(self, attempt: int) -> None:
        ceiling = min(self.backoff_s * 2**attempt, MAX_BACKOFF_S)
        await asyncio.sleep(ceiling * random.uniform(0.5, 1.0))  # jitter: no retry stampede

    async def aclose(self) -> None:
        await self.inner.aclose()


class ResilientCompleter(ResilientLLM):
    """A resilient backend that can also follow a free instruction (its inner one can)."""

    async def complete_text(self, instruction: str, max_tokens: int = 64) -> str:
        inner = self.inner
        assert isinstance(inner, TextCompleter)
        return await self._call(lambda: inner.complete_text(instruction, max_tokens))


def with_resilience(
    inner: LLM, retries: int, backoff_s: float, timeout_s: float, failures: int, cooldown_s: float
) -> ResilientLLM:
    """``inner`` wrapped, with its own breaker; a :class:`TextCompleter` stays one."""
    kind = ResilientCompleter if isinstance(inner, TextCompleter) else ResilientLLM
    breaker = CircuitBreaker(inner.name, failures, cooldown_s)
    return kind(inner, breaker, retries, backoff_s, timeout_s)


async def _close(pieces: AsyncIterator[str]) -> None:
    """Stop a backend's stream that is given up on (its connection or worker is freed)."""
    aclose = getattr(pieces, "aclose", None)
    if aclose is not None:
        await aclose()
