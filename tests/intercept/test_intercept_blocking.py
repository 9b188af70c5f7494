"""A blocking miss (a sync client in the app's own thread) is sent from that thread, on the
app's transport, unless a rate limit or budget needs the event loop: both ways, the same
answers, retries, errors and counts, and an identical request in flight is paid once.

Which way a call went is observed with a spy on ``AppProvider.complete_blocking`` (the real
method runs): the thread that sent it, or none.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
import tomllib

import harness
from harness.cache import ResponseCache
from harness.calls import Caller
from harness.errors import ProviderConnectionError, ProviderTimeout
from harness.intercept.app_provider import AppProvider
from harness.providers.python import PythonProvider
from harness.testing import FakeLLMServer

# A rate limit nobody reaches: the calls go by the event loop, as before.
ON_THE_LOOP = "[providers.openai]\nrequests_per_minute = 1000000\n"
RETRY_FAST = "[calls]\nretry_base_delay_s = 0.01\nmax_retries = 2\n"


@pytest.fixture(params=["app thread", "event loop"])
def path(request: pytest.FixtureRequest, home: Path) -> str:
    settings = RETRY_FAST + (ON_THE_LOOP if request.param == "event loop" else "")
    (home / "harness.toml").write_text(settings)
    return str(request.param)


@pytest.fixture
def senders(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The threads that sent blocking misses themselves."""
    seen: list[int] = []
    real = AppProvider.complete_blocking

    def spy(self: AppProvider, *args: Any) -> Any:
        seen.append(threading.get_ident())
        return real(self, *args)

    monkeypatch.setattr(AppProvider, "complete_blocking", spy)
    yield seen


def ask(text: str, **client: Any) -> str:
    reply = openai.OpenAI(max_retries=0, **client).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": text}]
    )
    return str(reply.choices[0].message.content)


def test_a_miss_is_answered_retried_and_stored_either_way(
    llm: FakeLLMServer, tmp_path: Path, home: Path, path: str, senders: list[int]
) -> None:
    cassette = tmp_path / "c.jsonl"
    llm.configure(fault_script=["error_500", "ok"])
    with harness.replay(cassette, mode="use", home=home) as recorder:
        answer = ask("Where is the Nile?")
    assert answer.startswith("Answer:")
    assert recorder.stats["app"]["requests"] == 1 and recorder.stats["app"]["retries"] == 1
    assert recorder.written == 1
    assert senders == ([threading.get_ident()] * 2 if path == "app thread" else [])
    with harness.replay(cassette, mode="replay", home=home):
        assert ask("Where is the Nile?") == answer
    assert llm.stats()["by_status"] == {"500": 1, "200": 1}


def test_identical_requests_of_two_rows_in_flight_are_paid_once(
    llm: FakeLLMServer, tmp_path: Path, home: Path, path: str, senders: list[int]
) -> None:
    llm.configure(latency_s=0.3)
    settings = (home / "harness.toml").read_text()
    provider = PythonProvider.from_function(lambda row: ask("Same question?"))

    async def two_rows() -> list[Any]:
        caller = Caller.from_settings(
            tomllib.loads(settings), cache=ResponseCache(tmp_path / "cache"), mode="use"
        )
        try:
            return await asyncio.gather(
                *(caller.call(provider, provider.request([], row={}), row_id=r) for r in "ab")
            )
        finally:
            await caller.aclose()

    first, second = asyncio.run(two_rows())
    assert first.text == second.text and first.app_keys == second.app_keys
    assert llm.stats()["requests_total"] == 1
    assert len(senders) == (1 if path == "app thread" else 0)


def test_a_server_that_is_gone_or_slow_fails_the_call_loudly(
    llm: FakeLLMServer,
    tmp_path: Path,
    home: Path,
    path: str,
    senders: list[int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cassette = tmp_path / "c.jsonl"
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # the discard port: closed
    with (
        pytest.raises(ProviderConnectionError, match="connection to http://127.0.0.1:9/v1"),
        harness.replay(cassette, mode="use", home=home) as recorder,
        pytest.raises(openai.InternalServerError) as refused,
    ):
        ask("Anyone there?")
    assert refused.value.status_code == 502 and refused.value.code == "harness_upstream_error"
    assert "gave up after 3 attempts" in str(refused.value)
    assert recorder.stats["app"]["errors"] == 1 and recorder.stats["app"]["retries"] == 2

    monkeypatch.setenv("OPENAI_BASE_URL", llm.openai_base_url)
    llm.configure(latency_s=2.0)
    with (
        pytest.raises(ProviderTimeout, match="no answer from"),
        harness.replay(cassette, mode="use", home=home),
        pytest.raises(openai.InternalServerError) as late,
    ):
        ask("Slow?", timeout=0.3)
    assert late.value.status_code == 504 and late.value.code == "harness_upstream_timeout"
    assert len(senders) == (6 if path == "app thread" else 0)  # 3 attempts each
    assert not cassette.exists() or "Anyone" not in cassette.read_text()


def test_a_call_after_its_block_ended_is_refused_unsent(
    llm: FakeLLMServer, tmp_path: Path, home: Path, path: str
) -> None:
    with harness.replay(tmp_path / "c.jsonl", mode="use", home=home):
        context = contextvars.copy_context()  # what a thread the app started would carry
    with pytest.raises(openai.APIStatusError) as late:
        context.run(ask, "Too late?")
    assert late.value.status_code == 424 and "had ended" in str(late.value)
    assert llm.stats()["requests_total"] == 0


def test_an_answer_that_arrives_after_the_run_closed_is_still_stored(
    llm: FakeLLMServer, tmp_path: Path
) -> None:
    """A row cancelled at the end of a stop's grace leaves its thread running: the call it
    had out from there is paid for when it arrives, so it is stored though the run has
    closed. (From the event loop, the call is cancelled with its row, before any answer.)"""
    llm.configure(latency_s=0.5)
    settings: dict[str, Any] = {}
    cache = ResponseCache(tmp_path / "cache")
    provider = PythonProvider.from_function(lambda row: ask("Slow and paid for?"))

    async def cancelled_row(caller: Caller) -> None:
        row = asyncio.ensure_future(caller.call(provider, provider.request([], row={}), row_id="r"))
        await asyncio.sleep(0.2)  # the call is out
        row.cancel()
        await caller.aclose()

    caller = Caller.from_settings(settings, cache=cache, mode="use")
    asyncio.run(cancelled_row(caller))  # waits for the row's thread, as a run's end does
    asyncio.run(caller.aclose())  # the writes still queued, as the process's exit waits for
    assert llm.stats()["requests_total"] == 1
    assert len(cache) == 1  # the paid answer was kept
    keys = cache.keys()
    (entry,) = (cache.get(key) for key in keys)
    assert entry is not None and "Slow and paid for?" in json.dumps(entry.request)
