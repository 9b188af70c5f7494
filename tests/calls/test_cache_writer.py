"""The cache writer settles a batch of an event loop's writes in one wake-up of that loop.

A cold run stores each answer through ``CacheWriter.write``; a wake-up per entry (what
``asyncio.wrap_future`` does: one ``call_soon_threadsafe`` each) was a write to the loop's
self-pipe and a turn of the loop for every call. The cache is the real one on disk; the
loop is asyncio's own, counting what other threads hand it.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.cache import ResponseCache, canonical_request, request_key
from harness.calls.cache_writer import CacheWriter
from harness.errors import CacheError
from harness.model_io import ModelRequest, ModelResponse


class CountingLoop(asyncio.SelectorEventLoop):
    """asyncio's loop, counting the callbacks other threads schedule on it."""

    handed: int = 0

    def call_soon_threadsafe(self, callback: Any, *args: Any, context: Any = None) -> Any:
        self.handed += 1
        return super().call_soon_threadsafe(callback, *args, context=context)


def answer(i: int) -> tuple[str, dict[str, Any], ModelResponse]:
    request = ModelRequest(
        provider="openai", model="m", messages=({"role": "user", "content": f"q{i}"},)
    )
    return request_key(request), canonical_request(request), ModelResponse(text=f"a{i}")


def test_a_batch_of_writes_wakes_their_loop_once_and_each_is_stored(tmp_path: Path) -> None:
    first_commit, go_on = threading.Event(), threading.Event()

    def before_commit() -> None:  # the first batch waits, so the other 40 queue behind it
        first_commit.set()
        go_on.wait(10)

    with ResponseCache(tmp_path / "cache") as cache:
        writer = CacheWriter(cache, before_commit)
        answers = [answer(i) for i in range(41)]

        async def go() -> None:
            first = asyncio.ensure_future(writer.write(*answers[0]))
            await asyncio.get_running_loop().run_in_executor(None, first_commit.wait, 10)
            rest = [asyncio.ensure_future(writer.write(*a)) for a in answers[1:]]
            await asyncio.sleep(0)  # the 40 are queued
            go_on.set()
            await asyncio.gather(first, *rest)

        loop = CountingLoop()
        try:
            loop.run_until_complete(go())
        finally:
            loop.close()
            writer.close()
        # the first batch, the executor's wait, the batch of 40: not 41 wake-ups
        assert loop.handed <= 4
        assert all(cache.get(key) is not None for key, _, _ in answers)


def test_a_write_that_fails_raises_in_its_caller(tmp_path: Path) -> None:
    with ResponseCache(tmp_path / "cache") as cache:
        writer = CacheWriter(cache)
        key, canonical, response = answer(1)

        async def go() -> str:
            try:
                await writer.write("0" * 64, canonical, response)  # not the request's key
            except CacheError as e:
                return str(e)
            return "stored"

        try:
            outcome = asyncio.run(go())
        finally:
            writer.close()
        assert outcome != "stored"
        assert cache.get(key) is None


@contextlib.contextmanager
def collections_seen() -> Iterator[list[int]]:
    """The generations of the cycle collections run inside, with the collector off (so
    none runs but those asked for: ``gc.collect``)."""
    collections: list[int] = []

    def note(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collections.append(info["generation"])

    gc.disable()
    gc.callbacks.append(note)
    try:
        yield collections
    finally:
        gc.callbacks.remove(note)
        gc.enable()


def merged(folder: Path) -> bool:
    """Whether the cache's write-ahead log is merged into cache.db (the last connection
    closed does it)."""
    wal = folder / "cache.db-wal"
    return not wal.exists() or wal.stat().st_size == 0


def test_the_writer_closes_its_threads_connection_so_the_cache_closes_without_a_collection(
    tmp_path: Path,
) -> None:
    # A connection left to its thread's end is freed only by a cycle collection (a
    # sqlite3.Connection and its statement cache refer to each other), which the cache's
    # close then ran: 0.03-0.05 s at the end of a cold 1,000-row run.
    with collections_seen() as collections:
        cache = ResponseCache(tmp_path / "cache")
        writer = CacheWriter(cache)
        for i in range(3):
            writer.submit(*answer(i)).result(10)
        writer.close()
        collections.clear()
        cache.close()
        assert collections == []
        assert merged(tmp_path / "cache")
    with ResponseCache(tmp_path / "cache") as again:
        assert all(again.get(answer(i)[0]) is not None for i in range(3))


def test_a_connection_another_thread_left_open_is_still_collected_at_the_close(
    tmp_path: Path,
) -> None:
    # A thread that looked up an entry and ended left its connection to the collector; the
    # writer's thread, started after it, may be given the same thread ident: the close
    # must still collect the one left, or the write-ahead log stays unmerged.
    with collections_seen() as collections:
        cache = ResponseCache(tmp_path / "cache")
        reader = threading.Thread(target=cache.get, args=(answer(0)[0],))
        reader.start()
        reader.join()
        writer = CacheWriter(cache)
        writer.submit(*answer(1)).result(10)
        writer.close()
        collections.clear()
        cache.close()
        assert collections == [2]
        assert merged(tmp_path / "cache")
