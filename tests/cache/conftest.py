"""Shared builders for the cache tests: real requests, real entries, a cache in tmp_path."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.cache import CacheEntry, ResponseCache, canonical_request, request_key
from harness.model_io import ModelRequest, ModelResponse

FIXED_TIME = "2025-01-02T03:04:05.678Z"


def build_request(**overrides: Any) -> ModelRequest:
    """A typical chat request; any field can be overridden."""
    fields: dict[str, Any] = {
        "provider": "openai",
        "model": "gpt-4o-mini",
        "base_url": "https://api.openai.com/v1",
        "messages": (
            {"role": "system", "content": "Answer in one word."},
            {"role": "user", "content": "What is the capital of France?"},
        ),
        "params": {"temperature": 0.0, "max_tokens": 16},
        "sample_index": 0,
    }
    fields.update(overrides)
    return ModelRequest(**fields)


def build_entry(req: ModelRequest, text: str = "Paris", created_at: str = FIXED_TIME) -> CacheEntry:
    response = ModelResponse(
        text=text,
        input_tokens=21,
        output_tokens=1,
        latency_s=0.25,
        raw={"id": "chatcmpl-1", "choices": [{"message": {"content": text}}]},
    )
    return CacheEntry.from_response(canonical_request(req), response, created_at=created_at)


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[ResponseCache]:
    with ResponseCache(tmp_path / "cache") as opened:
        yield opened


@pytest.fixture
def store_request(cache: ResponseCache) -> Callable[..., str]:
    """Put an answer for a request into ``cache``; return its key."""

    def store(req: ModelRequest, text: str = "Paris", created_at: str = FIXED_TIME) -> str:
        key = request_key(req)
        cache.set(key, build_entry(req, text, created_at))
        return key

    return store


@pytest.fixture
def make_request() -> Callable[..., ModelRequest]:
    return build_request


@pytest.fixture
def make_entry() -> Callable[..., CacheEntry]:
    return build_entry
