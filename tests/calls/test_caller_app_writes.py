"""An intercepted call's answer reaches the app before its cache write commits, and its row
(the ``python:`` call that made it) ends only after: a row is never recorded ahead of the
entries it needs for a replay, and a write that fails fails the row.

The cache here is the real ``ResponseCache`` on disk behind a slow or failing disk: its
``set`` waits, or raises ``CacheError`` as a full disk makes it do (the real full disk is
tests/runner/test_environment_faults.py). The app is the real openai SDK against the fake
server.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.cache import ResponseCache
from harness.cache.entry import CacheEntry
from harness.calls import Caller
from harness.calls.limits import RateLimits
from harness.errors import CacheError, ProviderError
from harness.providers.python import PythonProvider
from harness.testing import FakeLLMServer

WRITE_DELAY_S = 0.4


class SlowDisk(ResponseCache):
    """Each write takes ``WRITE_DELAY_S``; or fails, as on a full disk, when ``failing``."""

    failing = False

    def set(self, key: str, entry: CacheEntry) -> None:
        time.sleep(WRITE_DELAY_S)
        if self.failing:
            raise CacheError(f"no space left on device while writing {key[:12]}")
        super().set(key, entry)


@pytest.fixture
def app_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-app-writes-0123456789")
        yield server


def answered_then_stored(cache: ResponseCache, moments: dict[str, Any]) -> Any:
    """A ``python:`` model (a callable) that notes when its SDK call returned."""

    def model(row: dict[str, Any]) -> str:
        import openai

        reply = openai.OpenAI(max_retries=0).chat.completions.create(
            model="gpt-4o-mini", temperature=0, messages=[{"role": "user", "content": row["q"]}]
        )
        moments["answered"] = time.perf_counter()
        moments["stored when answered"] = len(cache)
        moments["thread"] = threading.get_ident()
        return str(reply.choices[0].message.content)

    return model


@pytest.fixture(params=["app thread", "event loop"])
def limits(request: pytest.FixtureRequest) -> RateLimits | None:
    """How a miss is sent: from the app's thread, or, when a rate limit (one nobody
    reaches) must be kept on the event loop, from there (``Caller.sends_in_thread``)."""
    if request.param == "app thread":
        return None
    return RateLimits({"providers": {"openai": {"requests_per_minute": 1_000_000}}})


def one_row(cache: ResponseCache, model: Any, limits: RateLimits | None) -> tuple[Any, float]:
    async def go() -> tuple[Any, float]:
        caller = Caller(cache=cache, mode="use", rate_limits=limits)
        provider = PythonProvider.from_function(model)
        try:
            request = provider.request([], row={"q": "Hi?"})
            result = await caller.call(provider, request, row_id="r1")
            return result, time.perf_counter()
        finally:
            await caller.aclose()

    return asyncio.run(go())


def test_the_app_goes_on_while_the_entry_is_written_and_the_row_waits_for_it(
    app_env: FakeLLMServer, tmp_path: Path, limits: RateLimits | None
) -> None:
    cache = SlowDisk(tmp_path / "cache")
    moments: dict[str, Any] = {}
    result, ended = one_row(cache, answered_then_stored(cache, moments), limits)
    assert app_env.stats()["requests_total"] == 1
    assert moments["stored when answered"] == 0  # the app had its answer before the commit
    assert len(cache) == 1 and cache.get(result.app_keys[0]) is not None  # ...the row after it
    assert ended - moments["answered"] >= WRITE_DELAY_S * 0.9


def test_a_failed_write_fails_the_row_that_paid_for_the_call(
    app_env: FakeLLMServer, tmp_path: Path, limits: RateLimits | None
) -> None:
    cache = SlowDisk(tmp_path / "cache")
    cache.failing = True
    moments: dict[str, Any] = {}
    with pytest.raises(ProviderError, match="no space left on device"):
        one_row(cache, answered_then_stored(cache, moments), limits)
    assert "answered" in moments and len(cache) == 0
