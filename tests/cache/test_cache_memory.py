"""MemoryCache (a cassette in memory) answers as ResponseCache does; requests without messages
(embeddings) are explained and found near their input."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from harness.cache import canonical_request, explain_miss, export_cassette, import_cassette
from harness.cache.memory import MemoryCache
from harness.errors import CacheError


def embedding(make_request, text: str, **params):
    return make_request(
        provider="http",
        model="text-embedding-3-small",
        base_url="https://api.openai.com/v1/embeddings",
        messages=(),
        params={"input": text, **params},
    )


def test_round_trip_through_a_cassette(tmp_path: Path, cache, store_request, make_request):
    for i in range(5):
        store_request(make_request(messages=({"role": "user", "content": f"q{i}"},)))
    path = tmp_path / "c.jsonl"
    export_cassette(cache, path)
    memory = MemoryCache()
    report = import_cassette(memory, path)
    assert report.added == 5 and not report.invalid
    assert memory.keys() == cache.keys() and len(memory) == 5
    again = tmp_path / "again.jsonl"
    assert export_cassette(memory, again) == 5
    assert again.read_bytes() == path.read_bytes()  # same entries, same bytes
    key = cache.keys()[0]
    assert key in memory and memory.get(key) == cache.get(key)
    assert memory.delete(key) and memory.get(key) is None and not memory.delete(key)


def test_an_entry_only_under_its_own_key(make_request, make_entry) -> None:
    entry = make_entry(make_request())
    with pytest.raises(CacheError, match="does not belong under key"):
        MemoryCache().set("0" * 64, entry)


def test_nearest_within_the_family_then_elsewhere(make_request, make_entry) -> None:
    memory = MemoryCache()
    for i in range(30):
        req = make_request(messages=({"role": "user", "content": f"Question {i}: {i} + {i}?"},))
        entry = make_entry(req)
        memory.set(entry.key, entry)
    wanted = canonical_request(
        make_request(
            messages=({"role": "user", "content": "Question 7: 7 + 7?"},),
            params={"temperature": 0.5},
        )
    )
    assert memory.nearest(wanted, limit=1)[0]["messages"] == wanted["messages"]
    other = canonical_request(make_request(model="gpt-4o"))
    assert [r["model"] for r in memory.nearest(other)] == ["gpt-4o-mini"] * 2


def test_threads_share_one_memory_cache(make_request, make_entry) -> None:
    memory = MemoryCache()

    def fill(start: int) -> None:
        for i in range(start, start + 50):
            entry = make_entry(make_request(messages=({"role": "user", "content": str(i)},)))
            with memory.batch():
                memory.set(entry.key, entry)

    threads = [threading.Thread(target=fill, args=(n * 50,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(memory) == 200


def test_a_long_input_is_explained_where_it_differs(make_request) -> None:
    text = "Retrieval context. " * 10 + "The question is about cats."
    cached = canonical_request(embedding(make_request, text))
    wanted = canonical_request(embedding(make_request, text.replace("cats", "dogs")))
    at = text.index("cats")
    assert explain_miss(wanted, [cached]) == (
        f"input differs at character {at + 1}: "
        '"…e question is about dogs." (cached: "…e question is about cats.")'
    )
    short = canonical_request(embedding(make_request, "cats"))
    assert explain_miss(canonical_request(embedding(make_request, "dogs")), [short]) == (
        'input: "dogs" (cached: "cats")'
    )


def test_embeddings_are_found_near_their_input(cache, store_request, make_request) -> None:
    for i in range(40):  # more than the neighbours read on each side of the index
        store_request(embedding(make_request, f"document number {i:02d} about topic {i}"))
    wanted = canonical_request(
        embedding(make_request, "document number 17 about topic 17", dimensions=8)
    )
    nearest = cache.nearest(wanted, limit=1)
    assert nearest[0]["params"]["input"] == "document number 17 about topic 17"
    assert explain_miss(wanted, nearest) == "dimensions: 8 (cached: not set)"
