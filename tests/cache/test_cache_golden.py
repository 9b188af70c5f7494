"""Golden files lock the on-disk entry format and the cassette format.

If a change here is intended, bump ``ENTRY_SCHEMA_VERSION``/``CASSETTE_VERSION`` (or
``KEY_SCHEMA_VERSION`` if keys change), then regenerate with
``HARNESS_UPDATE_GOLDEN=1 python -m pytest tests/cache/test_cache_golden.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

import diskcache
import pytest

from harness.cache import CacheEntry, canonical_request, export_cassette, request_key
from harness.model_io import ModelRequest, ModelResponse

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("HARNESS_UPDATE_GOLDEN") == "1"


def golden_requests() -> list[tuple[ModelRequest, ModelResponse]]:
    first = ModelRequest(
        provider="openai",
        model="gpt-4o-mini",
        base_url="https://api.openai.com/v1/",
        messages=(
            {"role": "system", "content": "Answer in one word."},
            {"role": "user", "content": "Capital of France? Réponds en français."},
        ),
        params={"temperature": 0, "max_tokens": 8, "stop": "\n", "api_key": "never stored"},
    )
    second = ModelRequest(
        provider="anthropic",
        model="claude-3-5-haiku-latest",
        messages=({"role": "user", "content": "Is 7 prime? Answer yes or no."},),
        params={"temperature": 0.5, "seed": 1},
        sample_index=2,
    )
    return [
        (
            first,
            ModelResponse(
                text="Paris",
                input_tokens=24,
                output_tokens=1,
                latency_s=0.412,
                raw={"id": "chatcmpl-golden", "choices": [{"message": {"content": "Paris"}}]},
            ),
        ),
        (second, ModelResponse(text="yes", input_tokens=15, output_tokens=2, latency_s=1.5)),
    ]


def check(name: str, actual: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.write_text(actual, encoding="utf-8")
    assert path.exists(), f"missing golden file {path}; run with HARNESS_UPDATE_GOLDEN=1"
    assert actual == path.read_text(encoding="utf-8")


@pytest.fixture
def golden_cache(cache) -> list[str]:
    keys = []
    for req, response in golden_requests():
        key = request_key(req)
        entry = CacheEntry.from_response(
            canonical_request(req), response, created_at="2025-01-02T03:04:05.678Z"
        )
        cache.set(key, entry)
        keys.append(key)
    return keys


def test_stored_entry_matches_golden(cache, golden_cache) -> None:
    stored = diskcache.Cache(str(cache.directory)).get(golden_cache[0])
    check("entry.json", stored + "\n")


def test_key_matches_golden(golden_cache) -> None:
    check("keys.txt", "\n".join(golden_cache) + "\n")


def test_cassette_matches_golden(cache, golden_cache, tmp_path) -> None:
    path = tmp_path / "golden.jsonl"
    assert export_cassette(cache, path) == 2
    check("cassette.jsonl", path.read_text(encoding="utf-8"))
