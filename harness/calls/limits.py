"""Politeness: client-side rate limits per model, and the token estimates they run on.

Rate limits come from harness.toml, per provider scheme (applied to each model of that
provider on its own, as OpenAI and Anthropic count them) and optionally per model URI::

    [providers.openai]
    requests_per_minute = 500
    tokens_per_minute = 200000

    [rate_limits."openai:/gpt-4o"]
    requests_per_minute = 100

A limiter is two token buckets (requests, tokens) that refill continuously and hold at
most one second's worth (at least one request), so calls go out evenly instead of in a
burst at the start of each minute. A call takes its estimated tokens (prompt estimate plus
``max_tokens``, as OpenAI counts them) when it is sent and is corrected by the real usage
when it returns; a bucket may go below zero, which delays the next call.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from harness.errors import ConfigError

if TYPE_CHECKING:
    from harness.model_io import Message
    from harness.providers.base import Provider

DEFAULT_OUTPUT_TOKENS = 256  # assumed per call when max_tokens is unset and nothing observed
BURST_S = 1.0
LIMIT_NAMES = ("requests_per_minute", "tokens_per_minute")


def estimate_tokens(text: str) -> int:
    """Tokens in ``text``, roughly: ~4 characters or ~0.75 words per token, the larger."""
    if not text:
        return 0
    return max(math.ceil(len(text) / 4), math.ceil(len(text.split()) * 1.3))


def estimate_input_tokens(messages: Iterable[Message]) -> int:
    """A prompt's tokens: each message's content plus a few for its role and framing."""
    total = 0
    for message in messages:
        content = message.get("content", "")
        total += 4 + estimate_tokens(content if isinstance(content, str) else str(content))
    return total


def requested_output_tokens(params: Mapping[str, Any]) -> int | None:
    """The output cap a request sets, under any of its common names."""
    for name in ("max_tokens", "max_completion_tokens", "max_output_tokens", "num_predict"):
        value = params.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
            return int(value)
    return None


class TokenBucket:
    """A bucket refilled at ``per_minute / 60`` a second, holding ``BURST_S`` worth."""

    def __init__(self, per_minute: float, now: float) -> None:
        self.rate = per_minute / 60.0
        self.capacity = max(self.rate * BURST_S, 1.0)
        self.level = self.capacity
        self.updated = now

    def refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + (now - self.updated) * self.rate)
        self.updated = now

    def wait(self, amount: float, now: float) -> float:
        """Seconds until ``amount`` (at most a full bucket) can be taken."""
        self.refill(now)
        need = min(amount, self.capacity)
        return 0.0 if self.level >= need else (need - self.level) / self.rate


class RateLimiter:
    """Requests and tokens per minute for one model; ``acquire`` waits for both, in order."""

    def __init__(
        self,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        now = clock()
        self.requests = TokenBucket(requests_per_minute, now) if requests_per_minute else None
        self.tokens = TokenBucket(tokens_per_minute, now) if tokens_per_minute else None
        self._clock, self._sleep = clock, sleep
        self._lock: asyncio.Lock | None = None

    async def acquire(self, tokens: int) -> None:
        """Wait until one request of ``tokens`` estimated tokens may be sent, then take it."""
        if self._lock is None:  # created lazily: it must belong to the running loop
            self._lock = asyncio.Lock()
        async with self._lock:  # one waiter at a time: first come, first sent
            while True:
                now = self._clock()
                wait = max(
                    self.requests.wait(1, now) if self.requests else 0.0,
                    self.tokens.wait(tokens, now) if self.tokens else 0.0,
                )
                if wait <= 0:
                    break
                await self._sleep(wait)
            if self.requests:
                self.requests.level -= 1
            if self.tokens:
                self.tokens.level -= tokens

    def settle(self, estimated: int, actual: int | None) -> None:
        """Correct the token bucket once the real usage of a call is known."""
        if self.tokens is not None and actual is not None:
            self.tokens.level = min(self.tokens.capacity, self.tokens.level - (actual - estimated))


def _limit_values(table: Any, where: str) -> dict[str, float]:
    if not isinstance(table, Mapping):
        return {}
    values: dict[str, float] = {}
    for name in LIMIT_NAMES:
        value = table.get(name)
        if value is None:
            continue
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        if not numeric or not math.isfinite(value) or value <= 0:  # nan: the run waited forever
            raise ConfigError(f"{where}: {name} must be a positive number, got {value!r}")
        values[name] = float(value)
    return values


class RateLimits:
    """The limiters of a run, one per model (provider URI and server), made on first use."""

    def __init__(self, settings: Mapping[str, Any] | None = None) -> None:
        from harness.config import settings_file

        settings = settings or {}
        file = settings_file(settings)  # named as every other harness.toml message names it
        self.by_scheme = {
            str(scheme): _limit_values(table, f"{file}: [providers.{scheme}]")
            for scheme, table in (settings.get("providers") or {}).items()
        }
        self.by_uri = {
            str(uri): _limit_values(table, f"{file}: [rate_limits.{uri!r}]")
            for uri, table in (settings.get("rate_limits") or {}).items()
        }
        self._limiters: dict[tuple[str, str | None], RateLimiter | None] = {}

    def limits_for(self, provider: Provider) -> dict[str, float]:
        """The configured limits of a provider's model (the URI's override the scheme's)."""
        return {**self.by_scheme.get(provider.scheme, {}), **self.by_uri.get(provider.uri, {})}

    def limiter(self, provider: Provider) -> RateLimiter | None:
        """The shared limiter of ``provider``'s model, or None when it has no limits."""
        key = (provider.uri, provider.base_url)
        if key not in self._limiters:
            limits = self.limits_for(provider)
            self._limiters[key] = (
                RateLimiter(limits.get("requests_per_minute"), limits.get("tokens_per_minute"))
                if limits
                else None
            )
        return self._limiters[key]
