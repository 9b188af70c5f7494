"""Held reads: the cache hits of one turn of the event loop share one SQLite read transaction.

A cached rerun makes 40,000 lookups; each select in autocommit takes and drops WAL's read
lock, and gives up the GIL for longer. ``ResponseCache.get(held=True)`` keeps one read
transaction across a burst; these tests check that a burst is one transaction, and that
holding it hides nothing: an entry stored meanwhile is found, writes on the same thread
still work, and the transaction ends when the loop turns, or after ``_HELD_READS`` lookups.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.cache import CacheEntry, ResponseCache, canonical_request, request_key
from harness.cache import store as store_module
from harness.calls import Caller
from harness.model_io import ModelRequest, ModelResponse
from harness.providers.openai import OpenAIProvider
from harness.retry import RetryPolicy
from harness.testing import FakeLLMServer


@pytest.fixture(scope="module")
def server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as running:
        yield running


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[ResponseCache]:
    with ResponseCache(tmp_path / "cache") as opened:
        yield opened


def stored(cache: ResponseCache, text: str) -> str:
    """Store an answer ``text`` to a request asking ``text``; return its key."""
    request = ModelRequest(
        provider="openai", model="m", messages=({"role": "user", "content": text},)
    )
    entry = CacheEntry.from_response(canonical_request(request), ModelResponse(text=text))
    cache.set(entry.key, entry)
    return entry.key


def connection(cache: ResponseCache) -> sqlite3.Connection:
    """This thread's connection to the cache (the one ``get`` reads with here)."""
    con: sqlite3.Connection = cache._cache._con
    return con


def test_cached_calls_in_one_turn_of_the_loop_read_in_one_transaction(
    server: FakeLLMServer, cache: ResponseCache
) -> None:
    prov = OpenAIProvider("gpt-test", server.openai_base_url, api_key="sk-test")
    requests = [prov.request([{"role": "user", "content": f"question {i}"}], {}) for i in range(8)]
    statements: list[str] = []

    async def go(caller: Caller, traced: bool) -> tuple[list[bool], bool, bool]:
        con = connection(cache)
        if traced:
            con.set_trace_callback(statements.append)
        try:
            cached = [(await caller.call(prov, request)).cached for request in requests]
            held = con.in_transaction  # the loop has not turned since: still held
            await asyncio.sleep(0)
            return cached, held, con.in_transaction
        finally:
            con.set_trace_callback(None)
            await caller.aclose()

    retry = RetryPolicy(max_retries=2, base_delay_s=0.001)
    first = asyncio.run(go(Caller(cache=cache, retry=retry), traced=False))
    assert first[0] == [False] * 8  # sent and stored
    cached, held, after_a_turn = asyncio.run(go(Caller(cache=cache), traced=True))

    assert cached == [True] * 8
    # one transaction for the eight selects, ended when the loop turned
    assert [s for s in statements if s.startswith(("BEGIN", "COMMIT"))] == ["BEGIN", "COMMIT"]
    assert held
    assert not after_a_turn


def test_an_entry_stored_meanwhile_elsewhere_is_found_while_reads_are_held(
    tmp_path: Path, cache: ResponseCache
) -> None:
    first = stored(cache, "first")
    entry = cache.get(first, held=True)
    assert entry is not None and entry.text == "first"  # the snapshot is taken
    with ResponseCache(tmp_path / "cache") as other:  # another process's connection
        second = stored(other, "second")

    found = cache.get(second, held=True)  # a miss in the snapshot is asked again

    assert found is not None and found.text == "second"
    assert not connection(cache).in_transaction  # the miss ended the held transaction


def test_writes_on_the_reading_thread_end_its_held_reads(cache: ResponseCache) -> None:
    first = stored(cache, "first")
    assert cache.get(first, held=True) is not None
    second = stored(cache, "second")  # a write transaction on the same connection
    assert cache.get(second, held=True) is not None
    with cache.batch():
        third = stored(cache, "third")
    assert cache.get(first, held=True) is not None
    assert cache.delete(first)

    assert cache.get(first) is None
    assert cache.get(third) is not None
    assert cache.get(third, held=True) is not None
    assert cache.verify() == []  # SQLite's check, in a transaction of its own


def test_held_reads_end_after_a_burst_and_let_a_checkpoint_through(
    tmp_path: Path, cache: ResponseCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "_HELD_READS", 3)
    keys = [stored(cache, f"text {i}") for i in range(3)]
    with ResponseCache(tmp_path / "cache") as other:
        stored(other, "written by another process")
        for key in keys[:2]:
            assert cache.get(key, held=True) is not None
        assert connection(cache).in_transaction
        assert cache.get(keys[2], held=True) is not None  # the third: the burst is over

        assert not connection(cache).in_transaction
        ((busy, _, _),) = other._cache._sql("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        assert busy == 0


def test_release_reads_ends_the_transaction_and_plain_gets_hold_nothing(
    cache: ResponseCache,
) -> None:
    key = stored(cache, "text")
    assert cache.get(key) is not None
    assert not connection(cache).in_transaction
    assert cache.get(key, held=True) is not None
    assert connection(cache).in_transaction
    cache.release_reads()
    assert not connection(cache).in_transaction
    assert (
        request_key(
            ModelRequest(
                provider="openai", model="m", messages=({"role": "user", "content": "text"},)
            )
        )
        == key
    )


def test_a_caller_shared_by_two_threads_releases_each_threads_reads(
    server: FakeLLMServer, cache: ResponseCache
) -> None:
    prov = OpenAIProvider("gpt-test", server.openai_base_url, api_key="sk-test")
    request = prov.request([{"role": "user", "content": "shared"}], {})
    filler = Caller(cache=cache, retry=RetryPolicy(max_retries=2, base_delay_s=0.001))

    async def fill() -> None:
        try:
            await filler.call(prov, request)
        finally:
            await filler.aclose()

    asyncio.run(fill())
    caller = Caller(cache=cache)
    first_hit, second_hit = threading.Event(), threading.Event()
    held_after_a_turn: dict[str, bool] = {}

    async def hit(name: str, before: threading.Event | None, after: threading.Event) -> None:
        if before is not None:
            before.wait(10)
        assert (await caller.call(prov, request)).cached
        after.set()
        if before is None:  # the first thread's loop turns only once the second has hit
            second_hit.wait(10)
        await asyncio.sleep(0)
        held_after_a_turn[name] = connection(cache).in_transaction

    threads = [
        threading.Thread(target=asyncio.run, args=(hit("first", None, first_hit),)),
        threading.Thread(target=asyncio.run, args=(hit("second", first_hit, second_hit),)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)

    assert held_after_a_turn == {"first": False, "second": False}


def test_misses_after_a_miss_are_one_select_each_and_a_hit_holds_reads_again(
    server: FakeLLMServer, cache: ResponseCache
) -> None:
    prov = OpenAIProvider("gpt-test", server.openai_base_url, api_key="sk-test")
    requests = [prov.request([{"role": "user", "content": f"cold {i}"}], {}) for i in range(4)]
    statements: list[str] = []

    async def go(caller: Caller, asked: list[ModelRequest]) -> list[bool]:
        con = connection(cache)
        con.set_trace_callback(statements.append)
        try:
            return [(await caller.call(prov, request)).cached for request in asked]
        finally:
            con.set_trace_callback(None)
            await caller.aclose()

    retry = RetryPolicy(max_retries=2, base_delay_s=0.001)
    assert asyncio.run(go(Caller(cache=cache, retry=retry), requests)) == [False] * 4
    on_loop = [s.split()[0] for s in statements]
    # the first miss: a held select, asked again once its transaction ended; the next three
    # misses: one plain select each (no transaction to take, end and ask again in)
    assert on_loop == ["BEGIN", "SELECT", "COMMIT", "SELECT"] + ["SELECT"] * 3

    statements.clear()
    # a miss, then hits: the hits share one transaction again, as in a cached run
    asked = [prov.request([{"role": "user", "content": "cold 9"}], {}), *requests]
    assert asyncio.run(go(Caller(cache=cache, retry=retry), asked)) == [False] + [True] * 4
    on_loop = [s.split()[0] for s in statements]
    # (a plain select for the first hit; the transaction ends after the trace, on aclose)
    assert on_loop == ["BEGIN", "SELECT", "COMMIT", "SELECT", "SELECT", "BEGIN"] + ["SELECT"] * 3
