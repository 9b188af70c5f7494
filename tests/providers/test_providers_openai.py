"""openai:/MODEL against the fake server: configuration, the wire body, auth and errors."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from harness.errors import ConfigError, ProviderHTTPError
from harness.providers import resolve
from harness.providers.openai import DEFAULT_BASE_URL, OpenAIProvider
from harness.testing import FakeLLMServer

SECRET = "sk-test-0123456789abcdef"


def user(text: str, system: str | None = None) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": system}] if system else []
    return [*messages, {"role": "user", "content": text}]


def test_defaults_to_openai_and_requires_its_key(monkeypatch: pytest.MonkeyPatch) -> None:
    provider = resolve("openai:/gpt-4o-mini")
    assert provider.base_url == DEFAULT_BASE_URL
    assert provider.uri == "openai:/gpt-4o-mini"
    with pytest.raises(ConfigError, match="set OPENAI_API_KEY"):
        provider.check_credentials()  # type: ignore[attr-defined]
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    resolve("openai:/gpt-4o-mini").check_credentials()  # type: ignore[attr-defined]


def test_a_local_compatible_server_needs_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://localhost:8000/v1/")
    provider = resolve("openai:/meta-llama/Llama-3.1-8B-Instruct")
    assert provider.base_url == "http://localhost:8000/v1"
    assert provider.model == "meta-llama/Llama-3.1-8B-Instruct"
    provider.check_credentials()  # type: ignore[attr-defined]
    assert "Authorization" not in provider.headers()  # type: ignore[attr-defined]


def test_azure_needs_a_key_and_gets_it_in_api_key_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "https://res.openai.azure.com/openai/v1")
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        resolve("openai:/gpt-4o").check_credentials()  # type: ignore[attr-defined]
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    headers = resolve("openai:/gpt-4o").headers()  # type: ignore[attr-defined]
    assert headers["api-key"] == SECRET
    assert headers["Authorization"] == f"Bearer {SECRET}"


def test_settings_name_the_key_variable_and_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VLLM_KEY", SECRET)
    provider = resolve(
        "openai:/m", {"base_url": "http://127.0.0.1:9/v1", "api_key_env": "VLLM_KEY"}
    )
    assert provider.base_url == "http://127.0.0.1:9/v1"
    assert provider.headers()["Authorization"] == f"Bearer {SECRET}"  # type: ignore[attr-defined]
    assert SECRET not in repr(provider)
    with pytest.raises(ConfigError, match="api_key_env"):
        resolve("openai:/m", {"api_key": SECRET})


def test_wire_body_headers_and_usage(fake: FakeLLMServer, send: Any, last_request: Any) -> None:
    provider = OpenAIProvider("gpt-test", fake.openai_base_url, api_key=SECRET)
    request = provider.request(
        user("What is the capital of France? Be brief.", system="You are terse."),
        {
            "temperature": 0,
            "max_tokens": 50,
            "seed": 7,
            "stop": ["\n\n"],
            "top_k": 5,
            "timeout": 3,
            "api_key": "never-sent",
        },
    )
    response = send(provider, request)
    assert response.text == "Answer: What is the capital of France?"
    assert response.input_tokens == 11  # "You are terse." + the question, in words
    assert response.output_tokens == len(response.text.split())
    assert response.raw is not None and response.raw["object"] == "chat.completion"
    seen = last_request(fake)
    assert seen["path"] == "/v1/chat/completions"
    assert seen["headers"]["authorization"] == f"Bearer {SECRET}"
    assert seen["body"] == {
        "model": "gpt-test",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "What is the capital of France? Be brief."},
        ],
        "temperature": 0,
        "max_tokens": 50,
        "seed": 7,
        "stop": ["\n\n"],
        "top_k": 5,
        "stream": False,
    }


def test_a_401_names_the_variable_never_the_key(fake: FakeLLMServer, send: Any) -> None:
    provider = OpenAIProvider("gpt-test", fake.openai_base_url)  # no key: no header sent
    with pytest.raises(ProviderHTTPError) as caught:
        send(provider, provider.request(user("hi")))
    assert caught.value.status == 401
    assert not caught.value.retryable
    assert "check OPENAI_API_KEY" in str(caught.value)
    assert "Missing or empty bearer token" in str(caught.value)


def test_a_server_echoing_the_key_is_scrubbed(send: Any) -> None:
    def echo_key(request: httpx.Request) -> httpx.Response:
        key = request.headers["authorization"].removeprefix("Bearer ")
        return httpx.Response(401, json={"error": {"message": f"Incorrect API key: {key}"}})

    provider = OpenAIProvider("m", "https://api.openai.com/v1", api_key=SECRET)
    with pytest.raises(ProviderHTTPError) as caught:
        send(provider, provider.request(user("hi")), transport=httpx.MockTransport(echo_key))
    assert SECRET not in str(caught.value)
    assert "Incorrect API key: ***" in str(caught.value)


@pytest.mark.parametrize(
    ("message", "text"),
    [
        ({"role": "assistant", "content": None, "refusal": "I can't help."}, "I can't help."),
        (
            {
                "role": "assistant",
                "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
            },
            "ab",
        ),
        (
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "1", "function": {"name": "f", "arguments": "{}"}}],
            },
            json.dumps([{"id": "1", "function": {"name": "f", "arguments": "{}"}}]),
        ),
        (  # vLLM and some gateways send "" rather than null beside tool calls
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [{"id": "1", "function": {"name": "f", "arguments": "{}"}}],
            },
            json.dumps([{"id": "1", "function": {"name": "f", "arguments": "{}"}}]),
        ),
        ({"role": "assistant", "content": "", "refusal": "I can't help."}, "I can't help."),
    ],
)
def test_answers_without_plain_content(message: dict[str, object], text: str, send: Any) -> None:
    transport = httpx.MockTransport(
        lambda request: httpx.Response(200, json={"choices": [{"message": message}]})
    )
    provider = OpenAIProvider("m", "http://127.0.0.1:9/v1")
    response = send(provider, provider.request(user("hi")), transport=transport)
    assert response.text == text
    assert response.input_tokens is None  # no usage in the body: unknown, not zero
