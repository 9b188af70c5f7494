"""What ``Caller`` counts per kind of call: answers, hits, failures, retries, tokens, cost.

Apart from the call path (``harness.calls.caller``) so that every count is made in one
place and one way: calls are counted from the event loop and from an app's own threads
(``harness.calls.in_thread``), always under the one lock.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from harness.calls.result import CallResult
from harness.calls.stats import KINDS, CallKind, CallStats
from harness.providers.pricing import cost_usd

if TYPE_CHECKING:
    from harness.errors import HarnessError, ProviderError
    from harness.model_io import ModelResponse
    from harness.providers.base import Provider

__all__ = ["CallCounting"]


class CallCounting:
    """The counters of ``Caller`` (a base class of it): ``stats``, guarded by ``_counting``."""

    stats: CallStats
    _counting: threading.Lock

    def usage(self, earlier: Mapping[str, Any]) -> dict[str, Any]:
        """The counters per kind, ``earlier`` ones added (``CallStats.with_earlier``: a
        resumed run's), read whole: calls in an app's threads count under the same lock."""
        with self._counting:
            return self.stats.with_earlier(earlier)

    def counters(self) -> dict[str, dict[str, Any]]:
        """This process's counters per kind, copied whole under the lock and nothing more
        (no rounding, no sums: the lock is held a microsecond): what a run's usage file
        saves before each commit to the cache (``harness.store.usage_file``), which makes
        the totals ``usage`` would give of them when it is read."""
        with self._counting:
            return {kind: vars(self.stats.of(kind)).copy() for kind in KINDS}

    def _answered(
        self, provider: Provider, key: str, response: ModelResponse, kind: CallKind
    ) -> CallResult:
        """The result of a call the provider answered, counted (from any thread)."""
        result = CallResult(
            response.text,
            key,
            False,
            response.input_tokens,
            response.output_tokens,
            response.latency_s,
            self._cost(provider, response),
            response.raw,
            headers=response.headers,
        )
        cut_off, filtered = _stopped(provider, response.raw)
        with self._counting:
            stats = self.stats.of(kind)
            stats.requests += 1
            stats.cut_off += cut_off
            stats.filtered += filtered
            stats.input_tokens += response.input_tokens or 0
            stats.output_tokens += response.output_tokens or 0
            stats.cost_usd += result.cost_usd or 0.0
        return result

    def _count_hit(self, provider: Provider, hit: CallResult, kind: CallKind) -> None:
        cut_off, filtered = _stopped(provider, hit.raw)  # read from the stored body
        with self._counting:  # hits are counted from worker threads too (``cached``)
            stats = self.stats.of(kind)
            stats.cache_hits += 1
            stats.cut_off += cut_off
            stats.filtered += filtered
            stats.saved_input_tokens += hit.input_tokens or 0
            stats.saved_output_tokens += hit.output_tokens or 0
            stats.saved_cost_usd += hit.cost_usd or 0.0

    def _retried(self, kind: CallKind, error: ProviderError) -> None:
        with self._counting:
            self.stats.of(kind).retries += 1
            self.stats.error_kinds[f"retried: {type(error).__name__}"] += 1

    def _gave_up(self, kind: CallKind, error: ProviderError, attempts: int) -> None:
        if attempts > 1:
            error.message = f"{error.message} (gave up after {attempts} attempts)"
        self._count_error(kind, error)

    def _count_error(self, kind: CallKind, error: HarnessError) -> None:
        """A call that failed: after its retries, refused at once, or missed in replay."""
        with self._counting:
            self.stats.of(kind).errors += 1
            self.stats.error_kinds[str(error)[:200]] += 1

    def _cost(self, provider: Provider, response: ModelResponse) -> float | None:
        return cost_usd(
            provider.uri, provider.priced_input_tokens(response), response.output_tokens
        )


def _stopped(provider: Provider, raw: Mapping[str, Any] | None) -> tuple[int, int]:
    """(cut off, filtered): (1, 0) when the provider says the answer in ``raw`` was cut off
    at its token limit, (0, 1) when its content (or safety) filter stopped it."""
    reason = provider.stopped_early(raw)
    if reason is None:
        return 0, 0
    return int("token limit" in reason), int("filter" in reason)
