"""ollama:/MODEL against the fake server: host forms, options mapping, usage."""

from __future__ import annotations

from typing import Any

import pytest

from harness.providers import resolve
from harness.providers.ollama import OllamaProvider, normalize_host
from harness.testing import FakeLLMServer


@pytest.mark.parametrize(
    ("given", "url"),
    [
        ("localhost", "http://localhost:11434"),
        ("0.0.0.0:11434", "http://127.0.0.1:11434"),
        ("http://gpu-box:8080/", "http://gpu-box:8080"),
        ("https://ollama.example.com", "https://ollama.example.com"),
    ],
)
def test_host_forms(given: str, url: str) -> None:
    assert normalize_host(given) == url


def test_host_from_the_environment_and_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve("ollama:/llama3.2").base_url == "http://localhost:11434"
    monkeypatch.setenv("OLLAMA_HOST", "127.0.0.1:9")
    provider = resolve("ollama:/llama3.2")
    assert provider.base_url == "http://127.0.0.1:9"
    provider.check_credentials()  # type: ignore[attr-defined]


def test_wire_body_and_usage(fake: FakeLLMServer, send: Any, last_request: Any) -> None:
    provider = OllamaProvider("llama-test", fake.url)
    request = provider.request(
        [{"role": "user", "content": "Is the sky blue? Reply in JSON."}],
        {
            "temperature": 0.2,
            "max_tokens": 40,
            "seed": 1,
            "stop": "END",
            "num_ctx": 4096,
            "response_format": {"type": "json_object"},
            "keep_alive": "5m",
        },
    )
    response = send(provider, request)
    assert response.text == '{"answer": "Is the sky blue?"}'
    assert response.input_tokens == 7
    assert response.output_tokens == 5
    seen = last_request(fake)
    assert seen["path"] == "/api/chat"
    assert seen["body"] == {
        "model": "llama-test",
        "messages": [{"role": "user", "content": "Is the sky blue? Reply in JSON."}],
        "stream": False,
        "format": "json",
        "keep_alive": "5m",
        "options": {
            "temperature": 0.2,
            "num_predict": 40,
            "seed": 1,
            "stop": ["END"],
            "num_ctx": 4096,
        },
    }
