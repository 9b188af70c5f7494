"""anthropic:/MODEL against the fake server: system prompt, max_tokens, parameters, errors."""

from __future__ import annotations

from typing import Any

import pytest

from harness.cache.keys import request_key
from harness.errors import ConfigError, ProviderHTTPError
from harness.providers import resolve
from harness.providers.anthropic import API_VERSION, DEFAULT_MAX_TOKENS, AnthropicProvider
from harness.testing import FakeLLMServer

SECRET = "sk-ant-test-0123456789"


def test_needs_its_key(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="set ANTHROPIC_API_KEY"):
        resolve("anthropic:/claude-3-5-haiku-latest").check_credentials()  # type: ignore[attr-defined]
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:9")
    provider = resolve("anthropic:/claude-3-5-haiku-latest")
    provider.check_credentials()  # type: ignore[attr-defined]
    assert provider.base_url == "http://127.0.0.1:9"
    assert SECRET not in repr(provider)


def test_max_tokens_is_filled_in_and_part_of_the_key() -> None:
    provider = AnthropicProvider("claude", "http://127.0.0.1:9", api_key=SECRET)
    implicit = provider.request([{"role": "user", "content": "hi"}])
    explicit = provider.request(
        [{"role": "user", "content": "hi"}], {"max_tokens": DEFAULT_MAX_TOKENS}
    )
    assert implicit.params["max_tokens"] == DEFAULT_MAX_TOKENS
    assert request_key(implicit) == request_key(explicit)
    shorter = provider.request([{"role": "user", "content": "hi"}], {"max_tokens": 10})
    assert request_key(shorter) != request_key(implicit)


def test_wire_body_headers_and_usage(fake: FakeLLMServer, send: Any, last_request: Any) -> None:
    provider = AnthropicProvider("claude-test", fake.anthropic_base_url, api_key=SECRET)
    request = provider.request(
        [
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": "Name the largest planet. Then explain."},
        ],
        {
            "temperature": 0.5,
            "stop": "\n",
            "seed": 3,
            "response_format": {"type": "json_object"},
            "top_k": 4,
        },
    )
    response = send(provider, request)
    assert response.text == "Answer: Name the largest planet."
    assert response.input_tokens == 8
    assert response.output_tokens == 5
    seen = last_request(fake)
    assert seen["path"] == "/v1/messages"
    assert seen["headers"]["x-api-key"] == SECRET
    assert seen["headers"]["anthropic-version"] == API_VERSION
    assert "authorization" not in seen["headers"]
    assert seen["body"] == {
        "model": "claude-test",
        "system": "Be terse.",
        "messages": [{"role": "user", "content": "Name the largest planet. Then explain."}],
        "max_tokens": DEFAULT_MAX_TOKENS,
        "temperature": 0.5,
        "stop_sequences": ["\n"],
        "top_k": 4,
        "stream": False,
    }


def test_rate_limit_error_carries_type_and_retry_after(fake: FakeLLMServer, send: Any) -> None:
    fake.configure(fault_script=["error_429"], retry_after_s=0.25)
    provider = AnthropicProvider("claude-test", fake.anthropic_base_url, api_key=SECRET)
    with pytest.raises(ProviderHTTPError) as caught:
        send(provider, provider.request([{"role": "user", "content": "hi"}]))
    assert caught.value.status == 429
    assert caught.value.retryable
    assert caught.value.retry_after == 0.25
    assert "rate_limit_error: Rate limit reached" in str(caught.value)


def test_a_bad_key_says_which_variable(fake: FakeLLMServer, send: Any) -> None:
    provider = AnthropicProvider("claude-test", fake.anthropic_base_url, api_key=None)
    with pytest.raises(ProviderHTTPError) as caught:
        send(provider, provider.request([{"role": "user", "content": "hi"}]))
    assert caught.value.status == 401
    assert "authentication_error" in str(caught.value)
    assert "(check ANTHROPIC_API_KEY)" in str(caught.value)
