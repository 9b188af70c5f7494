"""The one call path: every model call and every judge call goes through ``Caller.call``.

For each request it computes the request key, looks it up in the response cache (by the
cache mode), calls the provider only on a miss, and records usage and cost. Identical
requests in flight at the same time are sent once. Errors are never cached.

The runner and the judges hold a ``Caller``; nothing else talks to a provider.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from harness.errors import ProviderError, ReplayMiss

if TYPE_CHECKING:
    import httpx

    from harness.cache.store import ResponseCache
    from harness.providers.base import ModelRequest, ModelResponse, Provider
    from harness.retry import RetryPolicy

CallKind = Literal["model", "judge"]
CacheMode = Literal["use", "replay", "refresh", "off"]
CACHE_MODES: tuple[str, ...] = ("use", "replay", "refresh", "off")


@dataclass
class CallResult:
    """The outcome of one call, whether it came from the provider or the cache."""

    text: str
    request_key: str | None
    cached: bool
    input_tokens: int | None = None
    output_tokens: int | None = None
    latency_s: float = 0.0  # the original call's latency, also on a cache hit
    cost_usd: float | None = None


@dataclass
class KindStats:
    """Counters for one kind of call (model or judge)."""

    requests: int = 0  # requests actually sent to a provider
    cache_hits: int = 0
    local_calls: int = 0  # python:/echo calls (never cached)
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    saved_input_tokens: int = 0  # tokens the cache hits did not pay for
    saved_output_tokens: int = 0
    saved_cost_usd: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in vars(self).items()}


@dataclass
class CallStats:
    model: KindStats = field(default_factory=KindStats)
    judge: KindStats = field(default_factory=KindStats)
    error_kinds: Counter[str] = field(default_factory=Counter)

    def of(self, kind: CallKind) -> KindStats:
        return self.model if kind == "model" else self.judge

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.model.as_dict(), "judge": self.judge.as_dict()}




class Caller:
    """The one call path. Holds the cache, the HTTP client, the retry policy and the stats.

    ``call`` is safe to use from many coroutines at once: network sends are bounded by
    ``concurrency``; cache hits and local (``python:``/``echo``) calls are not.
    """

    def __init__(
        self,
        *,
        cache: ResponseCache | None,
        mode: CacheMode = "use",
        concurrency: int = 16,
        retry: RetryPolicy | None = None,
        timeout_s: float = 60.0,
        client: httpx.AsyncClient | None = None,
        on_event: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> None:
        from harness.retry import RetryPolicy

        if mode not in CACHE_MODES:
            from harness.errors import ConfigError

            raise ConfigError(f"unknown cache mode {mode!r}; use one of {', '.join(CACHE_MODES)}")
        if mode != "off" and cache is None:
            raise ValueError("a cache is required unless mode is 'off'")
        self.cache = cache
        self.mode = mode
        self.concurrency = concurrency
        self.retry = retry or RetryPolicy()
        self.timeout_s = timeout_s
        self.stats = CallStats()
        self._client = client
        self._owns_client = client is None
        self._semaphore: asyncio.Semaphore | None = None
        self._inflight: dict[str, asyncio.Future[CallResult]] = {}
        self._on_event = on_event or (lambda kind, data: None)

    # -- the call path -------------------------------------------------------------------

    async def call(
        self, provider: Provider, request: ModelRequest, *, kind: CallKind = "model",
        row_id: str | None = None,
    ) -> CallResult:
        """Answer ``request``: from the cache when the mode allows, else from ``provider``."""
        stats = self.stats.of(kind)
        if provider.local:
            response = await self._send(provider, request, kind)
            stats.local_calls += 1
            return CallResult(response.text, None, False, response.input_tokens,
                              response.output_tokens, response.latency_s, 0.0)
        from harness.cache.keys import canonical_request, request_key

        key = request_key(request)
        if self.mode in ("use", "replay"):
            hit = self._lookup(provider, key, kind, row_id)
            if hit is not None:
                stats.cache_hits += 1
                stats.saved_input_tokens += hit.input_tokens or 0
                stats.saved_output_tokens += hit.output_tokens or 0
                stats.saved_cost_usd += hit.cost_usd or 0.0
                return hit
            if self.mode == "replay":
                self._replay_miss(canonical_request(request), kind, row_id)
        pending = self._inflight.get(key)
        if pending is not None:  # the same request is on the wire already: share its answer
            return await asyncio.shield(pending)
        future: asyncio.Future[CallResult] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            response = await self._send(provider, request, kind)
            result = CallResult(response.text, key, False, response.input_tokens,
                                response.output_tokens, response.latency_s,
                                self._cost(provider, response))
            stats.requests += 1
            stats.input_tokens += response.input_tokens or 0
            stats.output_tokens += response.output_tokens or 0
            stats.cost_usd += result.cost_usd or 0.0
            if self.mode != "off":
                self._store(key, request, response)
            future.set_result(result)
            return result
        except BaseException as e:
            future.set_exception(e)
            future.exception()  # mark retrieved: nobody else may be waiting
            raise
        finally:
            del self._inflight[key]

    def _lookup(self, provider: Provider, key: str, kind: CallKind,
                row_id: str | None) -> CallResult | None:
        from harness.errors import CacheCorrupt

        assert self.cache is not None
        try:
            entry = self.cache.get(key)
        except CacheCorrupt as e:
            if self.mode == "replay":
                raise CacheCorrupt(f"row {row_id}: {kind} call: {e}") from e
            self._on_event("cache_corrupt", {"key": key, "error": str(e)})
            return None
        if entry is None:
            return None
        response = entry.to_response()
        # The cost a hit saved is priced now, from its stored token counts.
        return CallResult(response.text, key, True, response.input_tokens,
                          response.output_tokens, response.latency_s,
                          self._cost(provider, response))

    def _replay_miss(self, canonical: dict[str, Any], kind: CallKind, row_id: str | None) -> None:
        from harness.cache.explain import explain_miss

        assert self.cache is not None
        near = self.cache.nearest(canonical, limit=3)
        raise ReplayMiss(
            f"--cache replay: the {kind} call for row {row_id} is not in the cache: "
            f"{explain_miss(canonical, near)}"
        )

    def _store(self, key: str, request: ModelRequest, response: ModelResponse) -> None:
        from harness.cache.keys import canonical_request
        from harness.cache.store import CacheEntry

        assert self.cache is not None
        self.cache.set(key, CacheEntry.from_response(canonical_request(request), response, key=key))

    def _cost(self, provider: Provider, response: ModelResponse) -> float | None:
        from harness.providers.pricing import cost_usd

        return cost_usd(provider.uri, response.input_tokens, response.output_tokens)

    async def _send(self, provider: Provider, request: ModelRequest,
                    kind: CallKind) -> ModelResponse:
        stats = self.stats.of(kind)

        async def attempt() -> ModelResponse:
            started = time.perf_counter()
            if provider.local:
                response = await provider.complete(request, None)
            else:
                async with self._limit():
                    response = await provider.complete(request, self._http())
            if not response.latency_s:
                response.latency_s = time.perf_counter() - started
            return response

        def on_retry(error: ProviderError) -> None:
            self.stats.error_kinds[f"retried: {type(error).__name__}"] += 1
            self._on_event("retry", {"kind": kind, "error": str(error)})

        try:
            return await self.retry.run(attempt, on_retry)
        except ProviderError as e:
            stats.errors += 1
            self.stats.error_kinds[str(e)[:200]] += 1
            raise

    def _limit(self) -> asyncio.Semaphore:
        if self._semaphore is None:  # created lazily: it must belong to the running loop
            self._semaphore = asyncio.Semaphore(self.concurrency)
        return self._semaphore

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            import httpx

            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(self.timeout_s, connect=min(10.0, self.timeout_s)),
                limits=httpx.Limits(max_connections=self.concurrency,
                                    max_keepalive_connections=self.concurrency),
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None and self._owns_client:
            await self._client.aclose()
            self._client = None
