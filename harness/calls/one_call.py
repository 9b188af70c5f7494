"""One call from Python, through the project's cache: ``complete`` and ``acomplete``."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from harness.calls.caller import CacheMode, Caller, CallResult

if TYPE_CHECKING:
    from harness.cache.store import EntryStore
    from harness.model_io import Message
    from harness.providers.base import Provider

__all__ = ["acomplete", "complete"]


async def acomplete(
    model: str | Provider,
    prompt: str | list[Message],
    *,
    system: str | None = None,
    params: Mapping[str, Any] | None = None,
    cache: CacheMode = "use",
    home: Any = None,
) -> CallResult:
    """One call from Python, through the project's cache: ``await acomplete(uri, "Hi")``.

    ``prompt`` is the user message, or a whole message list. Settings (provider options,
    prices, retries, rate limits) come from the project home's harness.toml. Inside
    ``harness.replay`` (or a marked test) the call uses its cassette and mode instead.
    """
    from harness.config import resolve_home, settings_file
    from harness.intercept.scope import current
    from harness.providers import resolve
    from harness.providers._http import HTTPProvider
    from harness.providers.pricing import set_prices

    project = resolve_home(home)
    settings = project.settings
    outer = current()
    cassette = outer.cassette if outer is not None else None
    mode: str = cassette.mode if cassette is not None else cache
    if isinstance(model, str):
        options = (settings.get("providers") or {}).get(model.partition(":")[0], {})
        provider = resolve(model, options)
    else:
        provider = model
    if isinstance(provider, HTTPProvider) and mode != "replay":
        provider.check_credentials()
    set_prices(settings.get("prices") or {}, settings_file(settings))
    messages: list[Message] = [{"role": "system", "content": system}] if system else []
    messages += [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
    store: EntryStore | None = None
    if cassette is not None:
        store = cassette.cache
    elif mode != "off":
        from harness.cache.store import ResponseCache

        store = ResponseCache(project.cache_dir, read_only=mode == "replay")
    caller = Caller.from_settings(settings, cache=store, mode=mode, concurrency=1)
    try:
        return await caller.call(provider, provider.request(messages, params))
    finally:
        await caller.aclose()
        if store is not None:
            store.close()


def complete(model: str | Provider, prompt: str | list[Message], **kwargs: Any) -> CallResult:
    """``acomplete`` for code that is not async (raises inside a running event loop)."""
    return asyncio.run(acomplete(model, prompt, **kwargs))
