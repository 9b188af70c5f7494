"""Retries with exponential backoff and full jitter, honouring Retry-After.

A dozen lines of policy do not earn a dependency (tenacity): the only decisions are
which errors to retry (``ProviderError.retryable``: 408/429/5xx, timeouts, dropped
connections) and how long to wait (the server's Retry-After when it gives one).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from harness.config import DEFAULT_MAX_RETRIES
from harness.errors import ProviderError

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = DEFAULT_MAX_RETRIES
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0
    max_retry_after_s: float = 120.0  # a server asking for longer than this gets an error

    def delay(self, attempt: int, error: ProviderError) -> float:
        if error.retry_after is not None:
            return min(max(error.retry_after, 0.0), self.max_retry_after_s)
        # Full jitter (AWS architecture blog): spreads a burst of 429s over the window.
        return random.uniform(0, min(self.max_delay_s, self.base_delay_s * 2**attempt))

    async def run(
        self,
        attempt_fn: Callable[[], Awaitable[T]],
        on_retry: Callable[[ProviderError], None] | None = None,
    ) -> T:
        attempt = 0
        while True:
            try:
                return await attempt_fn()
            except ProviderError as e:
                if not self._retries(attempt, e):
                    raise
                if on_retry is not None:
                    on_retry(e)
                await asyncio.sleep(self.delay(attempt, e))
                attempt += 1

    def run_blocking(
        self,
        attempt_fn: Callable[[], T],
        on_retry: Callable[[ProviderError], None] | None = None,
    ) -> T:
        """``run`` in a thread of its own, which sleeps between attempts."""
        attempt = 0
        while True:
            try:
                return attempt_fn()
            except ProviderError as e:
                if not self._retries(attempt, e):
                    raise
                if on_retry is not None:
                    on_retry(e)
                time.sleep(self.delay(attempt, e))
                attempt += 1

    def _retries(self, attempt: int, error: ProviderError) -> bool:
        """Whether to try again after ``attempt`` (0 for the first) failed with ``error``."""
        if not error.retryable or attempt >= self.max_retries:
            return False
        return error.retry_after is None or error.retry_after <= self.max_retry_after_s
