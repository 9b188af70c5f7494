"""The maintenance of a ``harness.cache.store.ResponseCache``: its stats, ``verify`` of
every entry and ``prune`` of the damaged or old ones, for ``harness cache stats``,
``verify`` and ``prune``.

Apart from the store's lookups and writes because none of it is on a run's path: each
reads every entry. ``CacheMaintenance`` is a base class of ``ResponseCache``, so these
stay its methods (``cache.verify()``), as they were.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sqlite3
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import diskcache

from harness.cache.entry import decode_entry, parse_time, stored_created_at
from harness.cache.faults import cache_fault
from harness.cache.keys import canonical_key
from harness.errors import CacheCorrupt, ConfigError

if TYPE_CHECKING:
    from harness.cache.entry import CacheEntry, KnownRequest

__all__ = ["STORE_PROBLEM", "CacheMaintenance"]

# The key ``verify`` gives a problem that is no one entry's (SQLite's, a value file's).
STORE_PROBLEM = "(store)"


class _Store(Protocol):
    """What of ``ResponseCache`` the maintenance uses (the type of ``self`` below)."""

    directory: Path
    timeout: float
    _cache: diskcache.Cache

    def __len__(self) -> int: ...

    def get(
        self, key: str, *, held: bool = False, request: KnownRequest | None = None
    ) -> CacheEntry | None: ...

    def keys(self) -> list[str]: ...

    def release_reads(self) -> None: ...

    def _families(self) -> dict[str, int]: ...

    def _created_at(self, key: str) -> str | None: ...

    def _problem(self, key: str) -> str | None: ...


class CacheMaintenance:
    """The maintenance of ``ResponseCache`` (a base class of it)."""

    def stats(self: _Store) -> dict[str, Any]:
        """Entries, size on disk, oldest and newest call, entries per model, and how many
        entries are damaged so badly that their time cannot be read (``unreadable``; only
        ``verify`` checks every checksum)."""
        times = []
        unreadable = 0
        for key in self.keys():
            created = self._created_at(key)
            if created is None:  # not JSON, or not an entry at all
                unreadable += 1
                continue
            try:
                times.append((parse_time(created), created))
            except ValueError:  # a time no harness writes
                unreadable += 1
        oldest = min(times)[1] if times else None
        newest = max(times)[1] if times else None
        by_model = []
        by_provider: Counter[str] = Counter()
        for family, count in sorted(self._families().items()):
            provider, base_url, model = json.loads(family)
            by_model.append(
                {"provider": provider, "base_url": base_url, "model": model, "entries": count}
            )
            by_provider[provider] += count
        return {
            "directory": str(self.directory),
            "entries": len(self),
            "size_bytes": _size_on_disk(self.directory),
            "oldest": oldest,
            "newest": newest,
            "unreadable": unreadable,
            "by_provider": dict(sorted(by_provider.items())),
            "by_model": by_model,
        }

    def _created_at(self: _Store, key: str) -> str | None:
        """The entry's ``created_at``, or None when the entry cannot be read."""
        try:
            value = self._cache.get(key)
            if isinstance(value, str):
                created = stored_created_at(value)
                if created is not None:
                    return created
            return decode_entry(key, value).created_at
        except (CacheCorrupt, ValueError):  # not an entry, refused by SafeDisk, not UTF-8
            return None

    def verify(self: _Store) -> list[tuple[str, str]]:
        """Check every entry: checksum, format, and that its key is its request's key.

        Returns (key, problem) pairs, empty when all is well. Problems that belong to no
        one entry (SQLite integrity, missing or stray value files) have key ``STORE_PROBLEM``.
        """
        problems = []
        self.release_reads()  # ``check`` below opens a transaction on this connection
        for key in self.keys():
            problem = self._problem(key)
            if problem:
                problems.append((key, problem))
        ((foreign,),) = self._cache._sql(
            "SELECT COUNT(*) FROM Cache WHERE raw = 0 OR typeof(key) != 'text'"
        ).fetchall()
        if foreign:
            problems.append(
                (STORE_PROBLEM, f"{foreign} rows have keys harness never writes (pickled?)")
            )
        try:
            warnings = self._cache.check(fix=False)
        except (sqlite3.Error, diskcache.Timeout) as exc:
            warnings = [exc]
        problems += [(STORE_PROBLEM, str(getattr(w, "message", w))) for w in warnings]
        return problems

    def _problem(self: _Store, key: str) -> str | None:
        try:
            entry = self.get(key)
        except CacheCorrupt as exc:
            return (
                str(exc)
                .replace(f"cache entry {key}: ", "", 1)
                .replace(f"cache entry {key} ", "", 1)
            )
        if entry is None:
            return None  # deleted since the key was listed
        if canonical_key(entry.request) != key:
            return "stored under a key that is not its request's key"
        return None

    def prune(self: _Store, older_than_days: float | None = None) -> int:
        """Remove entries that fail ``verify`` and, if given, those older than N days.

        Age is the time of the original call (``created_at``), so an imported cassette
        keeps its age. Returns the number of entries removed.
        """
        cutoff = None
        if older_than_days is not None:
            if not 0 <= older_than_days < math.inf:  # nan was a ValueError traceback
                raise ConfigError(
                    f"--older-than must be a number of days >= 0, got {older_than_days}"
                )
            try:
                cutoff = datetime.now(timezone.utc) - timedelta(days=older_than_days)
            except OverflowError:  # before year 1: no entry is that old
                cutoff = datetime.min.replace(tzinfo=timezone.utc)
        doomed = []
        for key in self.keys():
            if self._problem(key):
                doomed.append(key)
            elif cutoff is not None:
                created = self._created_at(key)
                if created is not None and parse_time(created) < cutoff:
                    doomed.append(key)
        removed = 0
        self.release_reads()
        try:
            for start in range(0, len(doomed), 500):
                with self._cache.transact():
                    removed += sum(bool(self._cache.delete(k)) for k in doomed[start : start + 500])
        except (sqlite3.Error, OSError, diskcache.Timeout) as exc:
            raise cache_fault(exc, self.directory, waited=self.timeout) from None
        return removed


def _size_on_disk(directory: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(directory):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.path.getsize(os.path.join(root, name))
    return total
