"""A response cache held in memory: what a cassette is while a replay block or a test runs.

``MemoryCache`` answers the calls ``harness.calls.Caller`` makes of a cache (``get``,
``set``, ``batch``, ``nearest``) and the ones ``export_cassette``/``import_cassette`` make
(``keys``, ``get``, ``set``, ``batch``), with the same checks as ``ResponseCache``: an
entry is stored only under the key of its own request. A cassette is small next to a
project's cache, so ``nearest`` compares a missed request with every entry of its family
instead of keeping an index. Safe to share between threads: one lock guards the entries,
and ``batch`` holds it for the whole batch, as a transaction would.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from harness.cache.entry import CacheEntry, KnownRequest
from harness.cache.explain import distance
from harness.cache.keys import canonical_key, family_of
from harness.errors import CacheError

__all__ = ["MemoryCache"]

_OTHER_FAMILIES = 2  # entries of each other family compared when a request's own is empty


class MemoryCache:
    """Cache entries in a dict, keyed like ``ResponseCache`` (see the module docstring)."""

    def __init__(self) -> None:
        self._entries: dict[str, CacheEntry] = {}
        self._lock = threading.RLock()

    def get(
        self, key: str, *, held: bool = False, request: KnownRequest | None = None
    ) -> CacheEntry | None:
        """The entry under ``key``, or None (``held`` and ``request`` are ``ResponseCache``'s:
        a dict has no transaction to hold, nor text to parse)."""
        with self._lock:
            return self._entries.get(key)

    def release_reads(self) -> None:
        """Nothing to release (see ``get``)."""

    def close_in_thread(self) -> None:
        """Nothing to close: a dict has no connection."""

    def known_absent(self, key: str) -> bool:
        """Whether ``key`` is not here (exact: the dict is the whole cache)."""
        with self._lock:
            return key not in self._entries

    def set(self, key: str, entry: CacheEntry) -> None:
        """Store ``entry`` under ``key`` (which must be the key of its request)."""
        if entry.key != key or canonical_key(entry.request) != key:
            raise CacheError(f"entry for {entry.key[:12]} does not belong under key {key[:12]}")
        with self._lock:
            self._entries[key] = entry

    def delete(self, key: str) -> bool:
        with self._lock:
            return self._entries.pop(key, None) is not None

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        with self._lock:
            yield

    def keys(self) -> list[str]:
        """Every key, sorted."""
        with self._lock:
            return sorted(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def nearest(self, canonical: dict[str, Any], limit: int = 3) -> list[dict[str, Any]]:
        """The canonical requests of up to ``limit`` entries closest to ``canonical``: of its
        own (provider, base_url, model) family, else a few of every other family."""
        with self._lock:
            requests = [entry.request for entry in self._entries.values()]
        family = family_of(canonical)
        own = [r for r in requests if family_of(r) == family]
        if not own:
            by_family: dict[str, list[dict[str, Any]]] = {}
            for request in requests:
                by_family.setdefault(family_of(request), []).append(request)
            for members in by_family.values():
                members.sort(key=lambda cached: distance(canonical, cached))
                own += members[:_OTHER_FAMILIES]
        own.sort(key=lambda cached: distance(canonical, cached))
        return own[:limit]

    def close(self) -> None:
        """Nothing to release; here so a ``MemoryCache`` can stand where a cache is closed."""

    def __repr__(self) -> str:
        return f"MemoryCache({len(self)} entries)"
