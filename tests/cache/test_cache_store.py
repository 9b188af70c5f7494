"""ResponseCache: entries round-trip, corruption is caught, maintenance does what it says."""

from __future__ import annotations

import hashlib
import json
import pickle
import sqlite3
from pathlib import Path

import diskcache
import pytest

from harness.cache import (
    CacheEntry,
    ResponseCache,
    canonical_request,
    export_cassette,
    request_key,
)
from harness.cache.keys import canonical_json
from harness.cache.store import SafeDisk
from harness.errors import CacheBusy, CacheCorrupt, CacheError
from harness.model_io import ModelRequest, ModelResponse


def raw_store(cache: ResponseCache) -> diskcache.Cache:
    """The same directory through plain diskcache, as another program could write it."""
    return diskcache.Cache(str(cache.directory))


def test_set_then_get_returns_the_entry(cache, make_request, make_entry) -> None:
    req = make_request()
    key = request_key(req)
    entry = make_entry(req)
    cache.set(key, entry)
    got = cache.get(key)
    assert got == entry
    assert got.request == canonical_request(req)
    response = got.to_response()
    assert (response.text, response.input_tokens, response.output_tokens) == ("Paris", 21, 1)
    assert response.latency_s == 0.25
    assert response.raw == {"id": "chatcmpl-1", "choices": [{"message": {"content": "Paris"}}]}
    assert key in cache and len(cache) == 1 and cache.keys() == [key]


def test_a_missing_key_is_none(cache) -> None:
    assert cache.get("0" * 64) is None
    assert "0" * 64 not in cache


def test_entries_survive_reopening(tmp_path, make_request, store_request) -> None:
    key = store_request(make_request())
    with ResponseCache(tmp_path / "cache") as reopened:
        entry = reopened.get(key)
        assert entry is not None and entry.text == "Paris"


def test_set_refuses_an_entry_under_another_key(cache, make_request, make_entry) -> None:
    entry = make_entry(make_request())
    with pytest.raises(CacheError, match="does not belong"):
        cache.set(request_key(make_request(model="gpt-4o")), entry)


def test_from_response_stamps_utc_time_and_key(make_request) -> None:
    canonical = canonical_request(make_request())
    entry = CacheEntry.from_response(canonical, ModelResponse(text="x"))
    assert entry.key == request_key(make_request())
    assert entry.created_at.endswith("Z") and entry.created_at[:2] == "20"


def test_stored_value_is_canonical_json_text(cache, make_request, store_request) -> None:
    key = store_request(make_request())
    stored = raw_store(cache).get(key)
    assert isinstance(stored, str)
    document = json.loads(stored)
    assert canonical_json(document).decode() == stored
    body = {k: v for k, v in document.items() if k != "checksum"}
    assert document["checksum"] == hashlib.sha256(canonical_json(body)).hexdigest()
    assert set(document) == {
        "schema", "key", "request", "response", "latency_s", "created_at", "checksum"
    }  # fmt: skip


@pytest.mark.parametrize(
    "damage",
    [
        lambda text: "garbage",
        lambda text: text[: len(text) // 2],  # truncated
        lambda text: text.replace('"Paris"', '"Lyon"'),  # valid JSON, wrong checksum
        lambda text: text.encode("utf-8"),  # bytes are read, and still checked
        lambda text: b"\xff\xfe not utf-8",
        lambda text: "[1, 2, 3]",
        lambda text: 42,
    ],
    ids=["garbage", "truncated", "edited", "bytes-edited", "not-utf8", "not-object", "number"],
)
def test_a_damaged_entry_raises_cache_corrupt(cache, make_request, store_request, damage) -> None:
    key = store_request(make_request())
    raw = raw_store(cache)
    value = damage(raw.get(key))
    if isinstance(value, bytes) and value.startswith(b"{"):
        value = value.replace(b'"Paris"', b'"Lyon!"')
    raw.set(key, value)
    with pytest.raises(CacheCorrupt, match=key):
        cache.get(key)
    assert [k for k, _ in cache.verify()] == [key]


def test_a_checksum_over_text_that_is_not_json_is_corrupt(cache, make_request) -> None:
    # Only the checksummed bytes are parsed once they match: they must still be JSON.
    key = request_key(make_request())
    body = '{"key":"' + key + '", not json'
    checksum = hashlib.sha256(body.encode()).hexdigest()
    raw_store(cache).set(key, '{"checksum":"' + checksum + '",' + body[1:])
    with pytest.raises(CacheCorrupt, match=f"{key} is not valid JSON"):
        cache.get(key)


def test_numbers_read_back_exactly(cache, make_request) -> None:
    # Hits are parsed by orjson, which reads an int beyond 64 bits as a float.
    req = make_request()
    raw = {"seed": 123456789012345678901234567890, "latency": 0.00011234567890123457}
    entry = CacheEntry.from_response(
        canonical_request(req), ModelResponse(text="x", input_tokens=2**63, raw=raw)
    )
    cache.set(entry.key, entry)
    got = cache.get(entry.key)
    assert got == entry
    assert type(got.raw["seed"]) is int and got.raw["seed"] == raw["seed"]


def test_a_value_too_big_for_a_row_lives_in_a_file_and_reads_back(cache, make_request) -> None:
    req = make_request()
    text = "long answer " * 10_000  # past diskcache's 32 KiB: the value goes to a file
    entry = CacheEntry.from_response(canonical_request(req), ModelResponse(text=text))
    cache.set(entry.key, entry)
    files = [p for p in cache.directory.rglob("*.val")]
    assert len(files) == 1
    assert cache.get(entry.key) == entry


def test_an_entry_whose_value_file_is_gone_is_damaged_and_pruned(
    cache, make_request, tmp_path
) -> None:
    req = make_request()
    entry = CacheEntry.from_response(canonical_request(req), ModelResponse(text="x" * 100_000))
    cache.set(entry.key, entry)
    [value_file] = cache.directory.rglob("*.val")
    value_file.unlink()  # gone behind the cache's back (a partial copy, a hand clean-up)
    with pytest.raises(CacheCorrupt, match=r"its value file .*\.val is missing"):
        cache.get(entry.key)
    assert (entry.key, f"its value file {value_file.relative_to(cache.directory)} is missing") in (
        cache.verify()
    )
    with pytest.raises(CacheCorrupt, match="cannot export"):  # not a cassette with a hole
        export_cassette(cache, tmp_path / "all.jsonl")
    assert not (tmp_path / "all.jsonl").exists()
    assert cache.prune() == 1  # what verify lists, prune removes
    assert cache.verify() == [] and cache.keys() == []
    cache.set(entry.key, entry)  # and the call stores again
    assert cache.get(entry.key) == entry


def test_keys_are_text(cache) -> None:
    with pytest.raises(CacheError, match="cache keys are str, not bytes"):
        cache.get(b"0" * 64)  # type: ignore[arg-type]


def test_a_pickled_value_is_never_unpickled(cache, tmp_path, make_request) -> None:
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (Path.touch, (marker,))

    key = request_key(make_request())
    raw_store(cache).set(key, pickle.loads(pickle.dumps({"x": 1})) | {"e": Exploit()})
    with pytest.raises(CacheCorrupt, match=f"{key}: .*pickle"):
        cache.get(key)
    assert cache.verify()[0][0] == key
    raw_store(cache).set(("pickled", "key"), "v")
    assert ("(store)", "1 rows have keys harness never writes (pickled?)") in cache.verify()
    assert not marker.exists()


def test_the_store_refuses_to_write_anything_but_text(cache) -> None:
    with pytest.raises(CacheError):
        cache._cache.set("k", {"not": "text"})
    with pytest.raises(CacheError):
        cache._cache.set(("tuple", "key"), "v")


def test_safe_disk_stays_inside_its_directory(tmp_path) -> None:
    root = tmp_path / "cache"
    root.mkdir()
    outside = tmp_path / "precious.txt"
    outside.write_text("keep me")
    disk = SafeDisk(str(root))
    disk.remove("../precious.txt")
    disk.remove(str(outside))
    assert outside.read_text() == "keep me"
    with pytest.raises(CacheCorrupt, match="outside"):
        disk.fetch(diskcache.core.MODE_TEXT, "../precious.txt", None, False)


def test_a_valid_but_non_canonical_entry_is_accepted(cache, make_request, make_entry) -> None:
    req = make_request()
    key = request_key(req)
    document = make_entry(req).to_document()
    raw_store(cache).set(key, json.dumps(document, indent=2))
    assert cache.get(key).text == "Paris"


@pytest.mark.parametrize(
    ("field", "value"),
    [("text", 5), ("input_tokens", "21"), ("raw", [1]), ("latency_s", "fast"), ("request", None)],
)
def test_a_checksummed_entry_with_a_wrong_field_is_corrupt(
    cache, make_request, make_entry, field, value
) -> None:
    req = make_request()
    key = request_key(req)
    document = make_entry(req).to_document()
    del document["checksum"]
    target = document if field in ("latency_s", "request") else document["response"]
    target[field] = value
    document["checksum"] = hashlib.sha256(canonical_json(document)).hexdigest()
    raw_store(cache).set(key, canonical_json(document).decode())
    with pytest.raises(CacheCorrupt, match="wrong type"):
        cache.get(key)


def test_an_entry_moved_under_another_key_is_corrupt(cache, make_request, store_request) -> None:
    key = store_request(make_request())
    other = request_key(make_request(model="gpt-4o"))
    raw_store(cache).set(other, raw_store(cache).get(key))
    with pytest.raises(CacheCorrupt, match="another key"):
        cache.get(other)


def test_verify_finds_an_entry_whose_request_is_not_its_key(
    cache, make_request, make_entry
) -> None:
    req = make_request()
    key = request_key(req)
    # A well-formed entry with a valid checksum, but for another request.
    forged = CacheEntry.from_response(
        canonical_request(make_request(model="gpt-4o")), ModelResponse(text="Lyon"), key=key
    )
    raw_store(cache).set(key, forged.to_text())
    assert cache.get(key).text == "Lyon"  # the hot path does not rehash the request
    assert cache.verify() == [(key, "stored under a key that is not its request's key")]


def test_verify_is_empty_for_a_healthy_cache(cache, make_request, store_request) -> None:
    store_request(make_request())
    store_request(make_request(sample_index=1))
    assert cache.verify() == []


def test_stats(cache, make_request, store_request) -> None:
    assert cache.stats()["entries"] == 0
    store_request(make_request(), created_at="2025-01-01T00:00:00.000Z")
    store_request(make_request(sample_index=1), created_at="2025-03-01T00:00:00.000Z")
    store_request(make_request(model="gpt-4o"), created_at="2025-02-01T00:00:00.000Z")
    store_request(make_request(provider="anthropic", model="claude", base_url=None))
    stats = cache.stats()
    assert stats["entries"] == 4
    assert stats["size_bytes"] > 0
    assert stats["oldest"] == "2025-01-01T00:00:00.000Z"
    assert stats["newest"] == "2025-03-01T00:00:00.000Z"
    assert stats["by_provider"] == {"anthropic": 1, "openai": 3}
    assert stats["by_model"] == [
        {"provider": "anthropic", "base_url": None, "model": "claude", "entries": 1},
        {
            "provider": "openai",
            "base_url": "https://api.openai.com/v1",
            "model": "gpt-4o",
            "entries": 1,
        },
        {
            "provider": "openai",
            "base_url": "https://api.openai.com/v1",
            "model": "gpt-4o-mini",
            "entries": 2,
        },
    ]


def test_prune_by_age_and_damage(cache, make_request, store_request) -> None:
    old = store_request(make_request(), created_at="2000-01-01T00:00:00.000Z")
    new = store_request(make_request(sample_index=1), created_at="2999-01-01T00:00:00.000Z")
    broken = store_request(make_request(sample_index=2), created_at="2999-01-01T00:00:00.000Z")
    raw_store(cache).set(broken, "garbage")
    assert cache.prune() == 1  # only the damaged one
    assert cache.keys() == sorted([old, new])
    assert cache.prune(older_than_days=30) == 1
    assert cache.keys() == [new]
    assert cache.prune(older_than_days=30) == 0


def test_clear_removes_everything(cache, make_request, store_request) -> None:
    store_request(make_request())
    store_request(make_request(sample_index=1))
    assert cache.clear() == 2
    assert len(cache) == 0 and cache.keys() == []


def test_big_values_go_to_files_and_still_verify(cache, make_request, make_entry) -> None:
    req = make_request()
    key = request_key(req)
    cache.set(key, make_entry(req, text="x" * 100_000))
    assert any(cache.directory.rglob("*.val"))
    assert cache.get(key).text == "x" * 100_000
    assert cache.verify() == []


def test_nearest_finds_the_same_prompt_with_other_params(
    cache, make_request, store_request
) -> None:
    for i in range(40):  # other rows of the same family
        content = f"Question {i}: what is {i} + {i}?"
        store_request(make_request(messages=({"role": "user", "content": content},)))
    store_request(
        make_request(messages=({"role": "user", "content": "Question 7: what is 7 + 7?"},)),
    )
    wanted = canonical_request(
        make_request(
            messages=({"role": "user", "content": "Question 7: what is 7 + 7?"},),
            params={"temperature": 0.7, "max_tokens": 16},
        )
    )
    nearest = cache.nearest(wanted, limit=2)
    assert nearest[0]["messages"] == wanted["messages"]
    assert nearest[0]["params"]["temperature"] == 0.0
    assert len(nearest) == 2


def test_nearest_looks_in_other_families_only_when_its_own_is_empty(
    cache, make_request, store_request
) -> None:
    store_request(make_request(model="gpt-4o"))
    nearest = cache.nearest(canonical_request(make_request()))
    assert [c["model"] for c in nearest] == ["gpt-4o"]
    store_request(make_request(messages=({"role": "user", "content": "other"},)))
    nearest = cache.nearest(canonical_request(make_request()), limit=1)
    assert [c["model"] for c in nearest] == ["gpt-4o-mini"]


def test_nearest_of_an_empty_cache_is_empty(cache, make_request) -> None:
    assert cache.nearest(canonical_request(make_request())) == []


def test_a_cache_another_process_holds_is_busy_exit_74(tmp_path, make_request, make_entry):
    cache = ResponseCache(tmp_path / "cache", timeout=0.2)
    stored = make_request(sample_index=1)
    cache.set(request_key(stored), make_entry(stored))  # for prune to remove
    holder = sqlite3.connect(tmp_path / "cache" / "cache.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # as a long write in another process
    req = make_request()
    busy = r"the cache at .* is held by another process \(waited 0\.2 s\); try again when"
    try:
        with cache:
            with pytest.raises(CacheBusy, match=busy) as raised:
                cache.set(request_key(req), make_entry(req))
            assert raised.value.exit_code == 74
            with pytest.raises(CacheBusy, match=busy):
                cache.prune(older_than_days=0)
            with pytest.raises(CacheBusy, match=busy):
                cache.clear()
    finally:
        holder.rollback()
        holder.close()
    with ResponseCache(tmp_path / "cache") as cache:
        assert cache.keys() == [request_key(stored)]  # nothing half-done


def test_an_unusable_directory_is_a_cache_error(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(CacheError, match="cannot open the cache"):
        ResponseCache(blocker)


def test_nearest_names_an_edited_rows_own_prompt_first(cache, make_request, store_request) -> None:
    def asking(text: str) -> ModelRequest:
        system = {"role": "system", "content": "Answer briefly."}
        return make_request(messages=(system, {"role": "user", "content": text}))

    for country in ("Peru", "Chile", "Kenya"):
        store_request(asking(f"What is the capital of {country}?"))
    for country in ("Peru", "Chile", "Kenya"):
        wanted = canonical_request(asking(f"What is the capitol of {country}?"))
        nearest = cache.nearest(wanted, limit=1)
        assert nearest[0]["messages"][1]["content"] == f"What is the capital of {country}?"


def test_nearest_names_an_edited_rows_own_prompt_among_many_rows(
    cache, make_request, store_request
) -> None:
    """With more rows than the prompt-sorted index's window (8 each side), a typo in the
    text every row shares put the missed row's place among other rows' prompts: 17 of 25
    misses named another country's. The prompts' ends find the row's own."""
    countries = [
        "Argentina",
        "Bolivia",
        "Brazil",
        "Canada",
        "Chile",
        "Colombia",
        "Cuba",
        "Ecuador",
        "France",
        "Germany",
        "Ghana",
        "Haiti",
        "India",
        "Italy",
        "Japan",
        "Kenya",
        "Mexico",
        "Nepal",
        "Norway",
        "Peru",
        "Spain",
        "Togo",
        "Uganda",
        "Wales",
        "Yemen",
    ]

    def asking(text: str) -> ModelRequest:
        system = {"role": "system", "content": "Answer briefly."}
        return make_request(messages=(system, {"role": "user", "content": text}))

    for country in countries:
        store_request(asking(f"What is the capital of {country}?"))
    named = {
        country: cache.nearest(canonical_request(asking(f"What is the capitol of {country}?")), 1)
        for country in countries
    }
    assert {c: found[0]["messages"][1]["content"] for c, found in named.items()} == {
        c: f"What is the capital of {c}?" for c in countries
    }
