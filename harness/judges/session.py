"""Judge calls outside a run (pairwise comparison, calibration), on the same call path.

``judge_session`` opens the project's response cache, builds a ``Caller`` for it and runs
one coroutine, so these commands share the cache, retries and accounting of ``harness run``
and a second invocation is answered from the cache.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from harness.aio import asyncio_run
from harness.errors import ConfigError

if TYPE_CHECKING:
    from harness.calls import Caller
    from harness.config import Home
    from harness.providers.base import Provider

T = TypeVar("T")


def judge_provider(home: Home, judge_model: str | None) -> Provider:
    """The judge model: ``judge_model``, else ``judge_model`` in harness.toml."""
    from harness.providers import resolve

    uri = judge_model or home.settings.get("judge_model")
    if not uri:
        raise ConfigError(
            "a judge model is needed: pass --judge-model URI or set judge_model in harness.toml"
        )
    return resolve(uri, home.settings.get("providers", {}).get(uri.partition(":")[0], {}))


def judge_session(
    home: Home, work: Callable[[Caller], Awaitable[T]], *, cache: str = "use", concurrency: int = 16
) -> tuple[T, dict[str, Any]]:
    """Run ``work(caller)`` to completion; return its result and the call counters."""
    from harness.cache.store import ResponseCache
    from harness.calls import CACHE_MODES, Caller
    from harness.config import settings_file
    from harness.providers.pricing import set_prices

    if cache not in CACHE_MODES:
        raise ConfigError(f"unknown cache mode {cache!r}; use one of {', '.join(CACHE_MODES)}")
    if concurrency < 1:
        raise ConfigError(f"--concurrency must be at least 1, got {concurrency}")
    set_prices(home.settings.get("prices", {}), settings_file(home.settings))
    store = ResponseCache(home.cache_dir, read_only=cache == "replay") if cache != "off" else None
    # The same retries, rate limits and transport as `harness run` ([calls] in harness.toml).
    caller = Caller.from_settings(home.settings, cache=store, mode=cache, concurrency=concurrency)

    async def main() -> T:
        try:
            return await work(caller)
        finally:
            await caller.aclose()

    try:
        result = asyncio_run(main())
    finally:
        if store is not None:
            store.close()
    return result, caller.stats.as_dict()
