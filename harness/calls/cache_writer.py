"""Cache writes off the event loop: one background thread, many entries per transaction."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
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
    them off the event loop.
    """

    def __init__(self, cache: EntryStore) -> None:
        self.cache = cache
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="harness-cache")
        self._pending: list[tuple[str, dict[str, Any], ModelResponse, asyncio.Future[None]]] = []
        self._draining: asyncio.Task[None] | None = None

    async def write(self, key: str, canonical: dict[str, Any], response: ModelResponse) -> None:
        """Store the answer to a canonical request; return once it is committed (raise
        CacheError if it is not)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((key, canonical, response, done))
        if self._draining is None or self._draining.done():
            self._draining = asyncio.get_running_loop().create_task(self._drain())
        await done

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                errors = await loop.run_in_executor(self._thread, self._store, batch)
            except BaseException as e:  # cancelled: nobody may wait forever
                errors = [CacheError(f"cache write interrupted ({type(e).__name__})")] * len(batch)
                raise
            finally:
                for (*_, done), error in zip(batch, errors, strict=True):
                    if not done.done():
                        if error is None:
                            done.set_result(None)
                        else:
                            done.set_exception(error)

    def _store(self, batch: list[Any]) -> list[BaseException | None]:
        from harness.cache.store import CacheEntry

        entries = [
            (key, CacheEntry.from_response(canonical, response, key=key))
            for key, canonical, response, _ in batch
        ]
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
        self._thread.shutdown(wait=True)
