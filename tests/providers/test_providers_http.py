"""Where HTTP failures enter harness: each becomes the right ProviderError, with no secret."""

from __future__ import annotations

import email.utils
import socket
import time
from typing import Any

import httpx
import pytest

from harness.errors import (
    ProviderConnectionError,
    ProviderError,
    ProviderHTTPError,
    ProviderResponseError,
    ProviderTimeout,
)
from harness.providers._http import parse_retry_after, redact_url
from harness.providers.openai import OpenAIProvider
from harness.testing import FakeLLMServer

KEY = "sk-http-test-secret"


def provider_for(server: FakeLLMServer) -> OpenAIProvider:
    return OpenAIProvider("gpt-test", server.openai_base_url, api_key=KEY)


def ask(provider: OpenAIProvider, send: Any, **kwargs: Any) -> Any:
    return send(provider, provider.request([{"role": "user", "content": "hello there"}]), **kwargs)


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after": "3"}, 3.0),
        ({"retry-after": "0.25"}, 0.25),
        ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),  # the precise one wins
        ({"retry-after": "-4"}, 0.0),
        ({"retry-after": "soon"}, None),
        ({}, None),
    ],
)
def test_parse_retry_after(headers: dict[str, str], seconds: float | None) -> None:
    assert parse_retry_after(httpx.Headers(headers)) == seconds


def test_parse_retry_after_as_an_http_date() -> None:
    later = email.utils.formatdate(time.time() + 120, usegmt=True)
    waited = parse_retry_after(httpx.Headers({"retry-after": later}))
    assert waited is not None and 100 < waited <= 121


def test_redact_url_drops_credentials_and_query() -> None:
    assert redact_url("https://user:pw@Host.example:8443/v1/x?api-key=abc") == (
        "https://host.example:8443/v1/x"
    )


def test_500_is_retryable_and_400_is_not(fake: FakeLLMServer, send: Any) -> None:
    fake.configure(fault_script=["error_500"])
    with pytest.raises(ProviderHTTPError) as caught:
        ask(provider_for(fake), send)
    assert (caught.value.status, caught.value.retryable) == (500, True)
    assert "The server had an error" in str(caught.value)
    transport = httpx.MockTransport(
        lambda r: httpx.Response(400, json={"error": {"message": "'temperature' must be <= 2"}})
    )
    with pytest.raises(ProviderHTTPError) as refused:
        ask(provider_for(fake), send, transport=transport)
    assert (refused.value.status, refused.value.retryable) == (400, False)
    assert str(refused.value).endswith(": 'temperature' must be <= 2")


def test_a_hung_request_is_a_timeout(fake: FakeLLMServer, send: Any) -> None:
    fake.configure(fault_script=["timeout"], hang_s=5)
    with pytest.raises(ProviderTimeout) as caught:
        ask(provider_for(fake), send, timeout=0.3)
    assert caught.value.retryable
    assert "no answer from http://127.0.0.1" in str(caught.value)


def test_a_dropped_connection_is_a_connection_error(fake: FakeLLMServer, send: Any) -> None:
    fake.configure(fault_script=["drop"])
    with pytest.raises(ProviderConnectionError) as caught:
        ask(provider_for(fake), send)
    assert caught.value.retryable


def test_connection_refused(send: Any) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    provider = OpenAIProvider("m", f"http://127.0.0.1:{port}/v1", api_key=KEY)
    with pytest.raises(ProviderConnectionError, match=f"connection to http://127.0.0.1:{port}"):
        ask(provider, send)


def test_malformed_bodies_are_retryable_response_errors(fake: FakeLLMServer, send: Any) -> None:
    fake.configure(fault_script=["malformed", "malformed"])
    for _ in range(2):  # a cut-off body, then an HTML page
        with pytest.raises(ProviderResponseError, match="not JSON") as caught:
            ask(provider_for(fake), send)
        assert caught.value.retryable


def test_json_of_the_wrong_shape_is_final(send: Any) -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(200, json={"choices": []}))
    with pytest.raises(ProviderResponseError, match="unexpected answer shape") as caught:
        ask(OpenAIProvider("m", "http://127.0.0.1:9/v1", api_key=KEY), send, transport=transport)
    assert not caught.value.retryable


def test_an_error_object_in_a_2xx_answer_is_shown(send: Any) -> None:
    # OpenRouter and some proxies answer 200 with {"error": {...}} instead of choices.
    error = {"error": {"message": f"Provider returned error (key {KEY})", "code": 502}}
    transport = httpx.MockTransport(lambda r: httpx.Response(200, json=error))
    with pytest.raises(ProviderResponseError) as caught:
        ask(OpenAIProvider("m", "http://127.0.0.1:9/v1", api_key=KEY), send, transport=transport)
    assert str(caught.value) == (
        "openai:/m: HTTP 200 from http://127.0.0.1:9/v1/chat/completions with an error "
        "instead of an answer: Provider returned error (key ***)"
    )


def test_404_suggests_the_model_name(send: Any) -> None:
    transport = httpx.MockTransport(
        lambda r: httpx.Response(
            404, json={"error": {"message": "The model `gtp-4o` does not exist"}}
        )
    )
    with pytest.raises(ProviderHTTPError, match="is 'm' the right model name"):
        ask(OpenAIProvider("m", "http://127.0.0.1:9/v1", api_key=KEY), send, transport=transport)


def test_no_message_holds_the_key_even_when_the_server_echoes_it(
    fake: FakeLLMServer, send: Any
) -> None:
    expected: dict[str, type[ProviderError]] = {
        "error_500": ProviderHTTPError,
        "error_429": ProviderHTTPError,
        "drop": ProviderConnectionError,
        "malformed": ProviderResponseError,
    }
    messages = {}
    for fault, kind in expected.items():
        # The server puts the key it was sent in its 500 and 429 messages, as a careless
        # proxy does; harness keeps the server's message, with the key replaced.
        fake.configure(fault_script=[fault], retry_after_s=0, echo_key_in_errors=True)
        with pytest.raises(kind) as caught:
            ask(provider_for(fake), send)
        messages[fault] = str(caught.value)
    echoed = [r["status"] for r in fake.stats()["requests"] if r["status"] in (500, 429)]
    assert echoed == [500, 429]
    assert messages["error_500"].endswith("processing your request. (sent with key ***)")
    assert messages["error_429"].endswith("try again later. (sent with key ***)")
    assert all(KEY not in m and "Bearer" not in m for m in messages.values())
