"""Cache writes off the event loop: one background thread, many entries per transaction."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from harness.errors import CacheError

if TYPE_CHECKING:
    from harness.cache.store import EntryStore
    from harness.model_io import ModelResponse

__all__ = ["CacheWriter"]


class CacheWriter:
    """Stores answers in the cache from one background thread, many per transaction.

    A SQLite commit costs more than the rest of a write; batching the entries that arrive
    while the previous batch is being written makes commits rare, and the thread keeps
    them off the event loop. ``submit`` may be called from any thread and involves no event
    loop: a miss sent from the app's own thread (``harness.calls.in_thread``) is stored
    without a trip through one (each such trip was several loop callbacks and a wake-up).
    """

    def __init__(self, cache: EntryStore, before_commit: Callable[[], None] | None = None) -> None:
        self.cache = cache
        # Called in the thread before each commit: a run saves its call counters there
        # (``harness.store.usage_file``). An answer is counted before it is queued
        # (``Caller._answered``), so every entry committed is counted in what it saved.
        self.before_commit = before_commit
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="harness-cache")
        self._lock = threading.Lock()
        # Each entry's future: a thread's (``submit``) or an event loop's (``write``).
        self._pending: list[tuple[str, dict[str, Any], ModelResponse, _Done]] = []
        self._draining = False
        self._started = False  # whether the thread ever ran: it has a connection to close

    def submit(self, key: str, canonical: dict[str, Any], response: ModelResponse) -> Future[None]:
        """Queue the answer to a canonical request; the future is done once it is committed
        (with CacheError if it is not). Raise RuntimeError once ``close``d."""
        done: Future[None] = Future()
        self._queue((key, canonical, response, done))
        return done

    async def write(self, key: str, canonical: dict[str, Any], response: ModelResponse) -> None:
        """Store the answer to a canonical request; return once it is committed (raise
        CacheError if it is not). Cancelled, the write goes on: the answer was paid for.

        The loop's own future, settled with the rest of its batch in one callback: one
        wake-up of the loop per batch, not one per entry (``asyncio.wrap_future``'s)."""
        written: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue((key, canonical, response, written))
        await written  # cancelled, it is done: the batch's callback passes it by

    def _queue(self, item: tuple[str, dict[str, Any], ModelResponse, _Done]) -> None:
        with self._lock:
            if not self._draining:
                self._thread.submit(self._drain)  # raises once closed: nothing is queued
                self._draining = self._started = True
            self._pending.append(item)

    def _drain(self) -> None:
        while True:
            with self._lock:
                batch, self._pending = self._pending, []
                if not batch:
                    self._draining = False
                    return
            errors = self._store(batch)
            on_loops: dict[asyncio.AbstractEventLoop, list[tuple[Any, Any]]] = {}
            for (*_, done), error in zip(batch, errors, strict=True):
                if isinstance(done, asyncio.Future):
                    on_loops.setdefault(done.get_loop(), []).append((done, error))
                else:
                    _settle(((done, error),))
            for loop, settled in on_loops.items():
                with contextlib.suppress(RuntimeError):  # its loop is closed: nobody waits
                    loop.call_soon_threadsafe(_settle, settled)

    def _store(self, batch: list[Any]) -> list[BaseException | None]:
        from harness.cache.entry import CacheEntry

        try:
            entries = [
                (key, CacheEntry.from_response(canonical, response, key=key))
                for key, canonical, response, _ in batch
            ]
        except Exception as e:  # noqa: BLE001 - an entry that cannot be made fails its callers
            return [CacheError(f"cache write failed: {e}")] * len(batch)
        if self.before_commit is not None:
            self.before_commit()
        try:
            with self.cache.batch():
                for key, entry in entries:
                    self.cache.set(key, entry)
            return [None] * len(entries)
        except Exception:  # noqa: BLE001 - one bad entry must not fail the others: one by one
            errors: list[BaseException | None] = []
            for key, entry in entries:
                try:
                    self.cache.set(key, entry)
                    errors.append(None)
                except Exception as e:  # noqa: BLE001 - handed to that entry's caller
                    errors.append(e)
            return errors

    def close(self) -> None:
        """Wait for the writes queued so far, then stop the thread, its cache connection
        closed in it (left to the thread's end, the connection is freed only by a cycle
        collection: ``ResponseCache.close``)."""
        with self._lock:
            started = self._started
        if started:
            with contextlib.suppress(RuntimeError):  # closed already
                self._thread.submit(self.cache.close_in_thread)
        self._thread.shutdown(wait=True)


_Done = Future[None] | asyncio.Future[None]


def _settle(settled: Any) -> None:
    """Settle each (future, error) pair; a future already done (cancelled) is passed by."""
    for done, error in settled:
        if done.done():
            continue
        if error is None:
            done.set_result(None)
        else:
            done.set_exception(error)
