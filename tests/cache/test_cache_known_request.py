"""A cache hit does not parse the stored request again when the caller has it already.

``decode_entry(key, text, (canonical, encoded))`` reads the entry's stored request as the
dict given when the entry stores exactly ``encoded``; anything else is parsed as before.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.cache import CacheEntry, ResponseCache, canonical_request
from harness.cache.entry import decode_entry
from harness.cache.keys import canonical_json, canonical_key, canonical_key_json
from harness.calls import Caller
from harness.errors import CacheCorrupt
from harness.model_io import ModelRequest, ModelResponse
from harness.providers.openai import OpenAIProvider
from harness.retry import RetryPolicy
from harness.testing import FakeLLMServer


def entry_for(content: str, **params: object) -> CacheEntry:
    request = ModelRequest(
        provider="openai",
        model="m",
        messages=({"role": "system", "content": "Judge."}, {"role": "user", "content": content}),
        params=params,
        base_url="http://127.0.0.1:1/v1",
    )
    raw = {"id": "x", "usage": {"prompt_tokens": 12345678901234567890}, "note": ',"request":'}
    response = ModelResponse(text="4", input_tokens=3, output_tokens=1, raw=raw)
    return CacheEntry.from_response(canonical_request(request), response, created_at="2025-01-02")


def test_canonical_key_json_is_the_key_and_the_bytes_it_hashes() -> None:
    canonical = entry_for("q").request
    key, encoded = canonical_key_json(canonical)
    assert key == canonical_key(canonical)
    assert encoded == canonical_json(canonical)


@pytest.mark.parametrize(
    "content, params",
    [
        ("plain", {"temperature": 0.0}),
        ('quotes " and ,"request": inside', {"response_format": {"type": "json_object"}}),
        ("ünïcödé ✓ \u2028", {"seed": 2**70, "stop": ["x"]}),
    ],
)
def test_a_known_request_reads_the_entry_as_a_full_parse_does(
    content: str, params: dict[str, object]
) -> None:
    entry = entry_for(content, **params)
    text = entry.to_text()
    canonical = json.loads(json.dumps(entry.request))  # the caller's own dict, equal
    known = (canonical, canonical_json(canonical))

    fast = decode_entry(entry.key, text, known)

    assert fast.request is canonical  # not parsed again
    assert fast == decode_entry(entry.key, text)
    assert fast.raw == entry.raw  # the long int stays an int


def test_a_stored_request_other_than_the_known_one_is_parsed() -> None:
    entry = entry_for("stored")
    other = entry_for("asked").request
    found = decode_entry(entry.key, entry.to_text(), (other, canonical_json(other)))
    assert found.request == entry.request
    assert found.request is not other


def test_a_damaged_entry_is_refused_with_a_known_request() -> None:
    entry = entry_for("q")
    text = entry.to_text().replace('"text":"4"', '"text":"5"')
    known = (entry.request, canonical_json(entry.request))
    with pytest.raises(CacheCorrupt, match="failed its checksum"):
        decode_entry(entry.key, text, known)


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[ResponseCache]:
    with ResponseCache(tmp_path / "cache") as opened:
        yield opened


def test_a_cached_call_answers_with_the_stored_response(cache: ResponseCache) -> None:
    with FakeLLMServer() as server:
        prov = OpenAIProvider("gpt-test", server.openai_base_url, api_key="sk-test")
        request = prov.request([{"role": "user", "content": "what?"}], {"temperature": 0.0})

        async def twice() -> list[object]:
            answers = []
            for caller in (
                Caller(cache=cache, retry=RetryPolicy(max_retries=1)),
                Caller(cache=cache),
            ):
                try:
                    answers.append(await caller.call(prov, request))
                finally:
                    await caller.aclose()
            return answers

        sent, hit = asyncio.run(twice())
    assert not sent.cached and hit.cached
    assert (hit.text, hit.raw, hit.request_key) == (sent.text, sent.raw, sent.request_key)
