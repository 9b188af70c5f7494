"""Cache writes off the event loop: one background thread, many entries per transaction."""

from __future__ import annotations

import asyncio
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
        self._pending: list[tuple[str, dict[str, Any], ModelResponse, Future[None]]] = []
        self._draining = False

    def submit(self, key: str, canonical: dict[str, Any], response: ModelResponse) -> Future[None]:
        """Queue the answer to a canonical request; the future is done once it is committed
        (with CacheError if it is not). Raise RuntimeError once ``close``d."""
        done: Future[None] = Future()
        with self._lock:
            if not self._draining:
                self._thread.submit(self._drain)  # raises once closed: nothing is queued
                self._draining = True
            self._pending.append((key, canonical, response, done))
        return done

    async def write(self, key: str, canonical: dict[str, Any], response: ModelResponse) -> None:
        """Store the answer to a canonical request; return once it is committed (raise
        CacheError if it is not). Cancelled, the write goes on: the answer was paid for."""
        written = asyncio.wrap_future(self.submit(key, canonical, response))
        try:
            await asyncio.shield(written)
        except asyncio.CancelledError:  # its outcome is nobody's news now (nor an error's)
            written.add_done_callback(_retrieve)
            raise

    def _drain(self) -> None:
        while True:
            with self._lock:
                batch, self._pending = self._pending, []
                if not batch:
                    self._draining = False
                    return
            errors = self._store(batch)
            for (*_, done), error in zip(batch, errors, strict=True):
                if done.cancelled():  # nobody cancels them (``write`` shields); if one did
                    continue
                if error is None:
                    done.set_result(None)
                else:
                    done.set_exception(error)

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
        """Wait for the writes queued so far, then stop the thread."""
        self._thread.shutdown(wait=True)


def _retrieve(written: asyncio.Future[None]) -> None:
    if not written.cancelled():
        written.exception()
