"""How ``Caller`` sends a miss: the ``--max-cost`` budget's reservation, the model's rate
limiter, at most ``concurrency`` requests on the wire (and, apart, as many local calls),
retries with backoff, and failing fast, by name, on an endpoint that is not there.

Apart from the call path's cache side (``harness.calls.caller``) as the counters are
(``harness.calls.counting``): a base class of ``Caller``, not an object it calls, so a
call goes through no more functions than when this was written in ``Caller`` itself.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from harness.calls.counting import CallCounting
from harness.calls.halt import CallHalted, may_send
from harness.errors import (
    EndpointUnreachable,
    ProviderConnectionError,
    ProviderError,
    ProviderHTTPError,
)
from harness.providers.pricing import cost_usd

if TYPE_CHECKING:
    import httpx

    from harness.calls.budget import Budget
    from harness.calls.limits import RateLimits
    from harness.calls.stats import CallKind
    from harness.model_io import ModelRequest, ModelResponse
    from harness.providers.base import Provider
    from harness.retry import RetryPolicy

__all__ = ["CallSending"]


class CallSending(CallCounting):
    """The sending of ``Caller`` (a base class of it); ``Caller.__init__`` sets all below."""

    concurrency: int
    retry: RetryPolicy
    timeout_s: float
    rate_limits: RateLimits | None
    budget: Budget | None
    transport: str | None
    halted: bool
    _client: httpx.AsyncClient | None
    _semaphore: asyncio.Semaphore | None
    _local_semaphore: asyncio.Semaphore | None
    _reached: set[str | None]
    _on_event: Callable[[str, dict[str, Any]], None]

    async def _send(
        self, provider: Provider, request: ModelRequest, kind: CallKind
    ) -> ModelResponse:
        may_send(self.halted, sending=False)  # before a budget or a rate limit is taken
        limiter = self.rate_limits.limiter(provider) if self.rate_limits else None
        tokens_in = tokens_out = 0
        reserved = 0.0
        if self.budget is not None or limiter is not None:
            tokens_in, tokens_out = self._estimate(provider, request)
        if self.budget is not None:

            def estimate() -> float:
                nonlocal tokens_in, tokens_out
                tokens_in, tokens_out = self._estimate(provider, request)
                return cost_usd(provider.uri, tokens_in, tokens_out) or 0.0

            reserved = await self.budget.reserve(estimate)
        attempts = 0

        async def attempt() -> ModelResponse:
            nonlocal attempts
            attempts += 1
            if limiter is not None:
                await limiter.acquire(tokens_in + tokens_out)
            try:
                response = await self._attempt(provider, request, self._http())
            except CallHalted:
                if limiter is not None:  # not sent: no tokens used
                    limiter.settle(tokens_in + tokens_out, 0)
                raise
            except ProviderError as e:
                if limiter is not None:  # a refused request used no tokens
                    limiter.settle(tokens_in + tokens_out, 0)
                self._check_reachable(provider, e, kind)
                raise
            self._reached.add(provider.base_url)
            if limiter is not None:
                used = (response.input_tokens or 0) + (response.output_tokens or 0)
                limiter.settle(tokens_in + tokens_out, used or None)
            return response

        def on_retry(error: ProviderError) -> None:
            self._retried(kind, error)
            self._on_event("retry", {"kind": kind, "error": str(error)})

        response: ModelResponse | None = None
        try:
            response = await self.retry.run(attempt, on_retry)
            return response
        except ProviderError as e:
            self._gave_up(kind, e, attempts)
            raise
        finally:
            if self.budget is not None:
                self.budget.settle(
                    reserved,
                    self._cost(provider, response) if response else 0.0,
                    uri=provider.uri,
                    estimated_input=tokens_in,
                    input_tokens=response.input_tokens if response else None,
                    output_tokens=response.output_tokens if response else None,
                )

    def _check_reachable(self, provider: Provider, error: ProviderError, kind: CallKind) -> None:
        """Retries are for transient faults: a server that has never answered and refuses
        the connection is not running (or the URL is wrong), and a host whose name does not
        resolve is mistyped (or the machine is offline), so fail fast, naming it. The call
        is a failed call like any other in the run's counts."""
        if isinstance(error, ProviderHTTPError):
            self._reached.add(provider.base_url)  # it answered: a later refusal is transient
            return
        if not isinstance(error, ProviderConnectionError) or provider.base_url in self._reached:
            return
        from harness.providers._http import redact_url

        url = redact_url(provider.base_url or "")
        if error.refused:
            why = f"nothing is listening at {url} (connection refused): is the server running"
        elif error.unresolved:
            why = f"cannot find the host of {url} ({error.unresolved}): is this machine online"
        else:
            return
        unreachable = EndpointUnreachable(
            f"{provider.uri}: {why}, and is its base URL right", url=url
        )
        self._count_error(kind, unreachable)
        raise unreachable from None

    async def _attempt(
        self, provider: Provider, request: ModelRequest, client: httpx.AsyncClient | None
    ) -> ModelResponse:
        started = time.perf_counter()
        if client is None:
            response = await provider.complete(request, None)
        else:
            async with self._limit():
                may_send(self.halted)  # after a wait for a connection: a stop may have come
                response = await provider.complete(request, client)
        if not response.latency_s:
            response.latency_s = time.perf_counter() - started
        return response

    def _estimate(self, provider: Provider, request: ModelRequest) -> tuple[int, int]:
        if self.budget is not None:
            return self.budget.estimate_tokens(provider.uri, request.messages, request.params)
        from harness.calls.limits import (
            DEFAULT_OUTPUT_TOKENS,
            estimate_input_tokens,
            requested_output_tokens,
        )

        return (
            estimate_input_tokens(request.messages),
            requested_output_tokens(request.params) or DEFAULT_OUTPUT_TOKENS,
        )

    def _limit(self) -> asyncio.Semaphore:
        if self._semaphore is None:  # created lazily: it must belong to the running loop
            self._semaphore = asyncio.Semaphore(self.concurrency)
        return self._semaphore

    def _local_limit(self) -> asyncio.Semaphore:
        if self._local_semaphore is None:  # as _limit's, for local calls
            self._local_semaphore = asyncio.Semaphore(self.concurrency)
        return self._local_semaphore

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            from harness.providers._client import make_client

            self._client = make_client(self.concurrency, self.timeout_s, self.transport)
        return self._client
