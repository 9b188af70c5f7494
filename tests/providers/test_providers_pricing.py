"""Prices: built in, snapshots priced as their base model, overrides from harness.toml."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness.errors import ConfigError
from harness.providers.pricing import cost_usd, price_of, set_prices


@pytest.fixture(autouse=True)
def no_overrides() -> Iterator[None]:
    set_prices({})
    yield
    set_prices({})


def test_built_in_and_snapshot_names() -> None:
    assert price_of("openai:/gpt-4o-mini") == (0.15, 0.60)
    assert price_of("openai:/gpt-4o-mini-2024-07-18") == (0.15, 0.60)
    assert price_of("openai:/gpt-4o-2024-08-06") == (2.50, 10.00)
    assert price_of("anthropic:/claude-3-5-haiku-20241022") == (0.80, 4.00)
    assert price_of("anthropic:/claude-3-5-haiku-latest") == (0.80, 4.00)
    assert price_of("anthropic:/claude-sonnet-4-20250514") == (3.00, 15.00)


def test_unknown_is_none_and_local_is_free() -> None:
    assert price_of("openai:/my-finetune") is None
    assert cost_usd("databricks:/endpoint", 1000, 1000) is None
    assert cost_usd("ollama:/llama3", 10**6, 10**6) == 0.0
    assert cost_usd("echo", 5, 5) == 0.0


def test_cost_is_per_million_tokens() -> None:
    assert cost_usd("openai:/gpt-4o-mini", 1_000_000, 0) == pytest.approx(0.15)
    assert cost_usd("openai:/gpt-4o-mini", 2000, 1000) == pytest.approx(0.0009)
    assert cost_usd("openai:/gpt-4o-mini", None, None) == 0.0


def test_overrides_from_settings() -> None:
    set_prices(
        {
            "openai:/gpt-4o-mini": [1, 2],
            "openai:/local": {"input": 0, "output": 0},
            "ollama:/paid": [3, 4],
        }
    )
    assert price_of("openai:/gpt-4o-mini") == (1.0, 2.0)
    assert price_of("openai:/gpt-4o-mini-2024-07-18") == (1.0, 2.0)
    assert price_of("openai:/local") == (0.0, 0.0)
    assert price_of("ollama:/paid") == (3.0, 4.0)
    set_prices({})
    assert price_of("openai:/gpt-4o-mini") == (0.15, 0.60)


@pytest.mark.parametrize("bad", [[1], "cheap", {"input": 1}, [-1, 2], [1, "x"]])
def test_bad_overrides_are_config_errors(bad: object) -> None:
    with pytest.raises(ConfigError, match=r"\[prices\] 'openai:/m'"):
        set_prices({"openai:/m": bad})


def test_anthropic_prompt_cache_tokens_are_priced_as_billed() -> None:
    # input_tokens excludes the cache: 1,000,000 written (5 min) cost 1.25x, 1,000,000
    # written (1 h) 2x, 1,000,000 read 0.1x; 1,000,000 plain input 1x; claude-sonnet-4 is $3/M.
    import asyncio

    import httpx

    from harness.calls import Caller
    from harness.providers.anthropic import AnthropicProvider

    usage = {
        "input_tokens": 1_000_000,
        "output_tokens": 0,
        "cache_creation_input_tokens": 2_000_000,
        "cache_read_input_tokens": 1_000_000,
        "cache_creation": {
            "ephemeral_5m_input_tokens": 1_000_000,
            "ephemeral_1h_input_tokens": 1_000_000,
        },
    }
    body = {"content": [{"type": "text", "text": "ok"}], "stop_reason": "end_turn", "usage": usage}
    provider = AnthropicProvider("claude-sonnet-4", "http://127.0.0.1:9", api_key="k")

    async def go() -> float | None:
        transport = httpx.MockTransport(lambda r: httpx.Response(200, json=body))
        async with httpx.AsyncClient(transport=transport) as client:
            caller = Caller(cache=None, mode="off", client=client)
            request = provider.request([{"role": "user", "content": "hi"}])
            return (await caller.call(provider, request)).cost_usd

    assert asyncio.run(go()) == pytest.approx(3.0 * (1 + 1.25 + 2.0 + 0.1))
