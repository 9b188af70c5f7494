"""The one call path against the fake server: cache, in-flight sharing, retries, limits."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from harness.cache.store import ResponseCache
from harness.calls import Caller, complete
from harness.calls.budget import Budget
from harness.errors import (
    BudgetExceeded,
    ConfigError,
    EndpointUnreachable,
    ProviderConnectionError,
    ProviderError,
    ProviderHTTPError,
    ProviderTimeout,
)
from harness.providers.openai import OpenAIProvider
from harness.providers.pricing import set_prices
from harness.retry import RetryPolicy
from harness.testing import FakeLLMConfig, FakeLLMServer

FAST = RetryPolicy(max_retries=4, base_delay_s=0.001, max_delay_s=0.01)


@pytest.fixture(scope="module")
def server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as running:
        yield running


@pytest.fixture
def fake(server: FakeLLMServer) -> FakeLLMServer:
    server.configure(**FakeLLMConfig().as_dict())
    server.reset()
    return server


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[ResponseCache]:
    with ResponseCache(tmp_path / "cache") as opened:
        yield opened


@dataclass(frozen=True)
class RecordingRetry(RetryPolicy):
    """The real policy, remembering each wait it chose."""

    waits: list[float] = field(default_factory=list)

    def delay(self, attempt: int, error: ProviderError) -> float:
        wait = super().delay(attempt, error)
        self.waits.append(wait)
        return wait


def provider(server: FakeLLMServer) -> OpenAIProvider:
    return OpenAIProvider("gpt-test", server.openai_base_url, api_key="sk-test")


def ask(caller: Caller, prov: OpenAIProvider, *texts: str, **params: Any) -> list[Any]:
    """Send one call per text at once; return results and errors, in order."""

    async def go() -> list[Any]:
        try:
            return await asyncio.gather(
                *(
                    caller.call(
                        prov, prov.request([{"role": "user", "content": t}], params), row_id=f"r{i}"
                    )
                    for i, t in enumerate(texts)
                ),
                return_exceptions=True,
            )
        finally:
            await caller.aclose()

    return asyncio.run(go())


def sent(server: FakeLLMServer) -> int:
    return int(server.stats()["requests_total"])


def test_a_miss_is_sent_and_stored_then_hit(fake: FakeLLMServer, cache: ResponseCache) -> None:
    prov = provider(fake)
    [first] = ask(Caller(cache=cache, retry=FAST), prov, "What is two plus two?")
    assert (first.cached, first.text) == (False, "Answer: What is two plus two?")
    assert (first.input_tokens, first.output_tokens) == (5, 6)  # words, as the fake counts
    caller = Caller(cache=cache, retry=FAST)
    [again] = ask(caller, prov, "What is two plus two?")
    assert again.cached and again.text == first.text and again.request_key == first.request_key
    assert sent(fake) == 1
    assert (caller.stats.model.requests, caller.stats.model.cache_hits) == (0, 1)


def test_hits_are_answered_and_counted_from_many_threads(
    fake: FakeLLMServer, cache: ResponseCache
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    prov = provider(fake)
    texts = [f"Question {i}?" for i in range(20)]
    ask(Caller(cache=cache, retry=FAST), prov, *texts)  # stored
    caller = Caller(cache=cache, mode="replay")
    requests = [prov.request([{"role": "user", "content": t}]) for t in texts] * 10

    with ThreadPoolExecutor(8) as pool:  # no event loop anywhere: ``cached`` needs none
        answers = list(pool.map(lambda r: caller.cached(prov, r), requests))
    assert [a.text for a in answers] == [f"Answer: {t}" for t in texts] * 10
    assert caller.stats.model.cache_hits == 200  # no increment lost between the threads
    missing = prov.request([{"role": "user", "content": "never asked"}])
    assert caller.cached(prov, missing) is None and caller.stats.model.cache_hits == 200
    assert Caller(cache=cache, mode="refresh").cached(prov, requests[0]) is None
    assert sent(fake) == 20


def test_identical_requests_in_flight_are_sent_once(
    fake: FakeLLMServer, cache: ResponseCache
) -> None:
    fake.configure(latency_s=0.2)
    results = ask(Caller(cache=cache, retry=FAST), provider(fake), *["same question"] * 5)
    assert {r.text for r in results} == {"Answer: same question"}
    assert sent(fake) == 1


def test_retries_429_and_500_honouring_retry_after(
    fake: FakeLLMServer, cache: ResponseCache
) -> None:
    fake.configure(fault_script=["error_429", "error_500", "ok"], retry_after_s=0.05)
    policy = RecordingRetry(max_retries=4, base_delay_s=0.001, max_delay_s=0.01)
    caller = Caller(cache=cache, retry=policy)
    [result] = ask(caller, provider(fake), "hello")
    assert result.text == "Answer: hello"
    assert sent(fake) == 3
    assert policy.waits[0] == 0.05  # the server's Retry-After, not the backoff
    assert 0 <= policy.waits[1] <= 0.002  # backoff with jitter after the 500
    assert caller.stats.model.retries == 2
    assert caller.stats.model.errors == 0


def test_a_call_that_exhausts_its_retries_fails_and_is_not_cached(
    fake: FakeLLMServer, cache: ResponseCache
) -> None:
    fake.configure(error_500_rate=1.0)
    caller = Caller(cache=cache, retry=RetryPolicy(max_retries=2, base_delay_s=0.001))
    [error] = ask(caller, provider(fake), "doomed")
    assert isinstance(error, ProviderHTTPError)
    assert str(error).endswith("(gave up after 3 attempts)")
    assert sent(fake) == 3
    assert caller.stats.model.errors == 1
    fake.configure(error_500_rate=0.0)
    [ok] = ask(Caller(cache=cache, retry=FAST), provider(fake), "doomed")
    assert not ok.cached and ok.text == "Answer: doomed"


def test_an_auth_error_is_not_retried(fake: FakeLLMServer) -> None:
    no_key = OpenAIProvider("gpt-test", fake.openai_base_url)
    [error] = ask(Caller(cache=None, mode="off", retry=FAST), no_key, "hi")
    assert isinstance(error, ProviderHTTPError) and error.status == 401
    assert "attempts" not in str(error)
    assert sent(fake) == 1


def test_requests_on_the_wire_are_bounded(fake: FakeLLMServer) -> None:
    fake.configure(latency_s=0.05)
    results = ask(
        Caller(cache=None, mode="off", concurrency=3, retry=FAST),
        provider(fake),
        *[f"question {i}" for i in range(12)],
    )
    assert all(not isinstance(r, Exception) for r in results)
    assert fake.stats()["max_in_flight"] <= 3


@pytest.mark.parametrize("transport", ["aiohttp", "httpx-shards", "httpx"])
def test_both_transports_map_faults_alike(fake: FakeLLMServer, transport: str) -> None:
    fake.configure(fault_script=["drop", "timeout", "ok"], hang_s=5)
    caller = Caller(
        cache=None, mode="off", retry=RetryPolicy(max_retries=0), timeout_s=0.3, transport=transport
    )
    prov = provider(fake)

    async def one_by_one() -> list[Any]:
        results = []
        for text in ("one", "two", "three"):
            request = prov.request([{"role": "user", "content": text}])
            try:
                results.append(await caller.call(prov, request))
            except ProviderError as e:
                results.append(e)
        await caller.aclose()
        return results

    dropped, hung, fine = asyncio.run(one_by_one())
    assert isinstance(dropped, ProviderConnectionError)
    assert isinstance(hung, ProviderTimeout)
    assert fine.text == "Answer: three"


@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
def test_a_refused_first_connection_fails_fast_naming_the_url(transport: str) -> None:
    with socket.socket() as bound:  # bound, never listening: the port refuses, and is ours
        bound.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{bound.getsockname()[1]}/v1"
        nobody = OpenAIProvider("gpt-test", url, api_key="sk-test")
        retry = RecordingRetry(max_retries=10, base_delay_s=1.0)
        caller = Caller(cache=None, mode="off", retry=retry, transport=transport)
        [error] = ask(caller, nobody, "hi")
    assert isinstance(error, EndpointUnreachable)
    assert str(error) == (
        f"openai:/gpt-test: nothing is listening at {url} (connection refused): "
        "is the server running, and is its base URL right"
    )
    assert retry.waits == [] and caller.stats.model.retries == 0  # not a minute of backoff


@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
def test_a_host_that_does_not_resolve_fails_fast_naming_the_url(transport: str) -> None:
    """A mistyped host (or a machine with no network) was retried 11 times a row, three
    minutes for 50 rows, before every row failed. A name of more than 255 characters is
    refused by the resolver itself, with no query sent: the same EAI_NONAME as a typo."""
    host = ".".join(["a" * 60] * 5)
    url = f"http://{host}/v1"
    nowhere = OpenAIProvider("gpt-test", url, api_key="sk-test")
    retry = RecordingRetry(max_retries=10, base_delay_s=1.0)
    caller = Caller(cache=None, mode="off", retry=retry, transport=transport)
    [error] = ask(caller, nowhere, "hi")
    assert isinstance(error, EndpointUnreachable)
    assert str(error) == (
        f"openai:/gpt-test: cannot find the host of {url} (Name or service not known): "
        "is this machine online, and is its base URL right"
    )
    assert retry.waits == [] and caller.stats.model.retries == 0
    assert caller.stats.model.errors == 1  # a failed call, counted


def test_a_refusal_after_the_server_has_answered_is_retried(tmp_path: Path) -> None:
    server = FakeLLMServer().start()
    prov = provider(server)
    caller = Caller(cache=None, mode="off", retry=RecordingRetry(max_retries=2, base_delay_s=0.01))

    async def twice() -> tuple[Any, Any]:
        first = await caller.call(prov, prov.request([{"role": "user", "content": "one"}]))
        server.stop()  # the server goes away mid-run (a restart): a transient fault
        try:
            await caller.call(prov, prov.request([{"role": "user", "content": "two"}]))
        except ProviderError as e:
            return first, e
        finally:
            await caller.aclose()
        return first, None

    first, error = asyncio.run(twice())
    assert first.text == "Answer: one"
    assert isinstance(error, ProviderConnectionError) and error.refused
    assert "gave up after 3 attempts" in str(error) and caller.stats.model.retries == 2


def test_budget_stops_before_a_call_that_could_overspend(fake: FakeLLMServer) -> None:
    set_prices({"openai:/gpt-test": [10_000, 10_000]})  # 1 cent per token
    try:
        budget = Budget(0.11)  # each call: ~0.07 reserved, 0.03 spent
        caller = Caller(cache=None, mode="off", retry=FAST, budget=budget)
        results = [ask(caller, provider(fake), f"q{i}", max_tokens=2)[0] for i in range(6)]
    finally:
        set_prices({})
    done = [r for r in results if not isinstance(r, Exception)]
    assert done and isinstance(results[len(done)], BudgetExceeded)
    assert all(isinstance(r, BudgetExceeded) for r in results[len(done) :])
    assert sent(fake) == len(done)  # the refused calls never left
    assert budget.spent_usd == pytest.approx(sum(r.cost_usd for r in done))
    assert len(done) == 2
    assert budget.spent_usd <= 0.11 and budget.reserved_usd == 0


def test_settings_configure_retries_timeout_transport() -> None:
    caller = Caller.from_settings(
        {
            "calls": {
                "max_retries": 9,
                "retry_base_delay_s": 0.1,
                "timeout_s": 5,
                "transport": "httpx",
            }
        },
        cache=None,
        mode="off",
    )
    assert (caller.retry.max_retries, caller.retry.base_delay_s) == (9, 0.1)
    assert (caller.timeout_s, caller.transport) == (5.0, "httpx")
    with pytest.raises(ConfigError, match="unknown setting"):
        Caller.from_settings({"calls": {"retries": 3}}, cache=None, mode="off")
    with pytest.raises(ConfigError, match="transport"):
        Caller.from_settings({"calls": {"transport": "curl"}}, cache=None, mode="off")
    with pytest.raises(ConfigError, match="max_retries"):
        Caller.from_settings({"calls": {"max_retries": -1}}, cache=None, mode="off")


def test_complete_from_python(
    fake: FakeLLMServer, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", fake.openai_base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    first = complete(
        "openai:/gpt-test", "Is water wet? Answer.", system="Be brief.", params={"temperature": 0}
    )
    again = complete(
        "openai:/gpt-test", "Is water wet? Answer.", system="Be brief.", params={"temperature": 0}
    )
    assert first.text == again.text == "Answer: Is water wet?"
    assert (first.cached, again.cached) == (False, True)
    assert (home / "cache").is_dir()
    assert sent(fake) == 1


def test_an_account_out_of_quota_fails_at_once(fake: FakeLLMServer) -> None:
    # OpenAI answers 429 insufficient_quota when the account cannot pay: unlike a rate
    # limit, no wait helps, so the call fails on its first answer and says why.
    fake.configure(fault_script=["quota", "ok"])
    caller = Caller(cache=None, mode="off", retry=FAST)
    [error] = ask(caller, provider(fake), "hi")
    assert isinstance(error, ProviderHTTPError) and error.status == 429
    assert not error.retryable
    assert sent(fake) == 1
    assert caller.stats.model.retries == 0 and caller.stats.model.errors == 1
    assert str(error).endswith(
        "You exceeded your current quota, please check your plan and billing details. For "
        "more information on this error, read the docs: "
        "https://platform.openai.com/docs/guides/error-codes/api-errors. (the account is out "
        "of quota: retrying cannot help; add credit or raise its limit)"
    )
    assert "\n" not in str(error) and "attempts" not in str(error)


def test_call_stats_total_is_the_sum_over_kinds() -> None:
    from harness.calls.stats import KINDS, CallStats

    stats = CallStats()
    for index, kind in enumerate(KINDS):
        stats.of(kind).cache_hits = 10**index
        stats.of(kind).cost_usd = (0.1, 0.2, 0.7)[index]
    assert stats.total("cache_hits") == 111
    assert stats.total("cost_usd") == sum((0.1, 0.2, 0.7))  # the same float, same order
    assert CallStats().total("saved_cost_usd") == 0
