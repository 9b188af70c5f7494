"""A fake LLM server shared by the provider tests, and a way to send one request to it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from harness.model_io import ModelRequest, ModelResponse
from harness.providers.base import Provider
from harness.testing import FakeLLMConfig, FakeLLMServer

SECRET = "sk-test-0123456789abcdef"
Send = Callable[..., ModelResponse]


@pytest.fixture(scope="session")
def fake_server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        yield server


@pytest.fixture
def fake(fake_server: FakeLLMServer) -> FakeLLMServer:
    """The shared server, back to default settings and zero counters."""
    fake_server.configure(**FakeLLMConfig().as_dict())
    fake_server.reset()
    return fake_server


@pytest.fixture
def secret() -> str:
    """A fake API key that must never show up in a message."""
    return SECRET


@pytest.fixture
def send() -> Send:
    """``send(provider, request)``: ``provider.complete`` with a fresh httpx client."""
    return _send


@pytest.fixture
def last_request() -> Callable[[FakeLLMServer], dict[str, Any]]:
    """``last_request(server)``: the last request it saw (path, headers, JSON body)."""
    return _last_request


def _send(
    provider: Provider,
    request: ModelRequest,
    *,
    timeout: float = 10.0,
    transport: httpx.AsyncBaseTransport | None = None,
) -> ModelResponse:
    """``provider.complete`` with a fresh client (a MockTransport when given)."""

    async def go() -> ModelResponse:
        async with httpx.AsyncClient(
            timeout=timeout, transport=transport, trust_env=False
        ) as client:
            return await provider.complete(request, client)

    return asyncio.run(go())


def _last_request(server: FakeLLMServer) -> dict[str, Any]:
    """The last request the server saw: path, headers (lower-case names) and JSON body."""
    entry = server.stats()["requests"][-1]
    return {
        "path": entry["path"],
        "headers": {k.lower(): v for k, v in entry["headers"].items()},
        "body": json.loads(entry["body"]),
    }
