"""The response cache: JSON entries with checksums in a diskcache directory.

Each entry is stored as the text ``harness.cache.entry.CacheEntry.to_text`` writes (its
canonical JSON, checksum first), and read back by ``harness.cache.entry.decode_entry``.

Values are text, never pickle: ``SafeDisk`` refuses to write anything but str or bytes and
refuses to read a pickled key or value, so a cache directory copied from somebody else
cannot run code. A value that fails its checksum raises ``CacheCorrupt``; the caller
decides whether that is a miss (``use``) or an error (``replay``).

Each row's diskcache tag is ``family + "\\x1f" + prompt sort key`` (see ``_index_tag``), with
the tag index on, so ``nearest`` finds the entries sharing the longest prompt prefix
within a (provider, base_url, model) family with two indexed range queries. The tag is
written in the same row as the entry, so the index can never disagree with the entries.
diskcache is safe across threads and processes; nothing here keeps state outside it.
"""

from __future__ import annotations

import bisect
import contextlib
import gc
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import diskcache

from harness.cache.disk import SafeDisk, _ThreadedCache
from harness.cache.entry import CacheEntry, KnownRequest, decode_entry
from harness.cache.explain import distance, prompt_text
from harness.cache.faults import cache_fault, removing_what_a_failed_open_left
from harness.cache.keys import canonical_key, family_of
from harness.cache.known_keys import known_keys
from harness.cache.maintenance import STORE_PROBLEM, CacheMaintenance
from harness.cache.readonly import ImmutableCache, merged, unwritable
from harness.errors import CacheCorrupt, CacheError, DiskFull, NotWritable
from harness.wording import storable

__all__ = [
    "REPAIR_HINT",
    "STORE_PROBLEM",
    "EntryStore",
    "ResponseCache",
    "SafeDisk",
]

# What a message about a damaged entry goes on with, wherever one stops a command.
REPAIR_HINT = (
    "the cache is damaged: `harness cache verify` lists its damaged entries, "
    "`harness cache prune` removes them"
)

_SEP = "\x1f"  # between the family and the prompt sort key in a row's tag
_SORT_KEY_CHARS = 512
_NEIGHBOURS = 8  # entries read on each side of a missed request's place in the index
_TAIL_CHARS = 256  # of a prompt's end, the second order ``nearest`` looks in
# diskcache's select for ``Cache.get(key)``: a str key is stored raw, and a row with an
# expiry (harness sets none) reads as diskcache reads it.
_GET = (
    "SELECT mode, filename, value FROM Cache"
    " WHERE key = ? AND raw = 1 AND (expire_time IS NULL OR expire_time > ?)"
)

# Lookups one read transaction serves at most (``get(held=True)``): ~25 ms of a cached run.
_HELD_READS = 256

_SETTINGS: dict[str, Any] = {
    "eviction_policy": "none",  # never drop a paid response behind the user's back
    "size_limit": 2**62,
    "tag_index": True,
    "statistics": False,  # statistics turn every get into a write transaction
    # Keys are hashes, so lookups land on random pages and a page read once is rarely read
    # again: diskcache's defaults (a 32 MiB page cache and a 64 MiB memory map per
    # connection) only grew a 10,000-row rerun's RSS by ~90 MB. 4 MiB still holds every
    # interior B-tree page; the OS keeps the file itself in its page cache.
    "sqlite_cache_size": 2**10,  # pages of 4 KiB
    "sqlite_mmap_size": 0,
}


class EntryStore(Protocol):
    """What the call path and cassettes need of a cache: ``ResponseCache`` on disk, or
    ``harness.cache.memory.MemoryCache`` for a cassette in use."""

    def get(
        self, key: str, *, held: bool = False, request: KnownRequest | None = None
    ) -> CacheEntry | None: ...

    def release_reads(self) -> None: ...

    def close_in_thread(self) -> None: ...

    def known_absent(self, key: str) -> bool: ...

    def set(self, key: str, entry: CacheEntry) -> None: ...

    def keys(self) -> list[str]: ...

    def nearest(self, canonical: dict[str, Any], limit: int = 3) -> list[dict[str, Any]]: ...

    def batch(self) -> contextlib.AbstractContextManager[None]: ...

    def close(self) -> None: ...


def _prompt_sort_key(canonical: dict[str, Any]) -> str:
    # Last message first: the row-specific text usually sits in the last user message,
    # so the entry with the longest shared prefix is most often the same row's. A request
    # with no messages (an embedding) sorts by its input.
    parts = []
    for message in reversed(canonical.get("messages") or []):
        content = message.get("content", "")
        parts.append(content if isinstance(content, str) else json.dumps(content, sort_keys=True))
    if not parts:
        return storable(prompt_text(canonical)[:_SORT_KEY_CHARS])
    return storable("\x1e".join(parts)[:_SORT_KEY_CHARS])


def _tail(canonical: dict[str, Any]) -> str:
    return prompt_text(canonical)[-_TAIL_CHARS:][::-1]


def _family(canonical: dict[str, Any]) -> str:
    return storable(family_of(canonical))


def _index_tag(canonical: dict[str, Any]) -> str:
    return _family(canonical) + _SEP + _prompt_sort_key(canonical)


class ResponseCache(CacheMaintenance):
    """Model responses on disk, keyed by ``harness.cache.keys.request_key``.

    Safe to share between threads and processes. ``get`` costs one indexed SQLite read,
    one SHA-256 over the entry text and one ``json.loads``.
    """

    def __init__(
        self, directory: Path | str, *, timeout: float = 60.0, read_only: bool = False
    ) -> None:
        """``read_only``: the caller only reads, so a cache folder it cannot write, or one on
        a full disk, is opened as it is (``harness.cache.readonly``) instead of refused;
        writes then fail."""
        self.directory = Path(directory)
        self.timeout = timeout
        self.read_only = read_only and unwritable(self.directory)
        try:
            self._cache = self._open_read_only() if self.read_only else self._open(timeout)
        except DiskFull:  # SQLite needs room to open it; as immutable, it needs none
            if not (read_only and merged(self.directory)):
                raise
            self.read_only = True
            self._cache = self._open_read_only()
        except NotWritable as exc:  # not "this command writes to it": it does not
            if not read_only or (self.directory / "cache.db").exists():
                raise
            raise NotWritable(
                f"the cache at {self.directory} is read-only and has no cache.db (nothing was "
                "cached there, or it was not copied there): no entry can be read from it",
                path=exc.path,
            ) from None
        self._known = known_keys(os.path.realpath(self.directory), self._key_prefixes)
        # family -> its prompts' ends read backwards, sorted, and their keys (``nearest``)
        self._tails: dict[str, tuple[list[str], list[str]]] = {}
        self._held = threading.local()  # .holding: this thread's read transaction is get's

    def _open(self, timeout: float) -> diskcache.Cache:
        # Made before it is set up, so that a failed set-up can close the connection it
        # opened (a lock on cache.db, which ``clear_cache`` goes on to take).
        cache = _ThreadedCache.__new__(_ThreadedCache)
        cache.opener, cache.other_threads = threading.get_ident(), 0
        cache.counting = threading.Lock()
        with removing_what_a_failed_open_left(self.directory):  # closed first, below
            try:
                if not cache.open_set_up(str(self.directory), timeout, SafeDisk, _SETTINGS):
                    diskcache.Cache.__init__(
                        cache, str(self.directory), timeout=timeout, disk=SafeDisk, **_SETTINGS
                    )
            except (sqlite3.Error, OSError) as exc:
                with contextlib.suppress(sqlite3.Error, AttributeError):
                    cache.close()
                # diskcache waits 60 s for a lock while it opens, whatever ``timeout`` says
                waited = max(timeout, 60.0)
                raise cache_fault(exc, self.directory, "opening", waited=waited) from None
        return cache

    def _open_read_only(self) -> diskcache.Cache:
        try:
            return ImmutableCache(self.directory, SafeDisk, _SETTINGS)
        except sqlite3.Error as exc:  # not a folder's fault: cache.db itself (not a database)
            raise CacheError(f"cannot open the cache at {self.directory}: {exc}") from None

    # -- lookups ---------------------------------------------------------------------

    def known_absent(self, key: str) -> bool:
        """True when ``key`` is certainly not here, known without SQLite (see
        ``harness.cache.known_keys``: an entry another process stored since this one first
        asked is not seen); False when it may be, and ``get`` must ask."""
        return self._known.absent(key)

    def _key_prefixes(self) -> str | None:
        # Read once, often in an app's thread that reads SQLite no more (a cold run's misses
        # are known without it): a connection opened for it is closed at once. Left open
        # there, ``close`` collected it, 80-100 ms at the end of bench_intercept.py's cold
        # intercepted run (1.06x the run not intercepted; the call path's own threads close
        # theirs).
        cache = self._cache
        opened_here = (
            isinstance(cache, _ThreadedCache) and getattr(cache._local, "con", None) is None
        )
        try:  # one statement, one row: one wait for the GIL, however many keys
            row = cache._sql(
                "SELECT group_concat(substr(key, 1, 16), '') FROM Cache WHERE raw = 1"
            ).fetchone()
        except sqlite3.Error as exc:
            raise cache_fault(exc, self.directory) from None
        finally:
            if opened_here:
                cache.close_in_thread()
        return row[0] if row else None

    def get(
        self, key: str, *, held: bool = False, request: KnownRequest | None = None
    ) -> CacheEntry | None:
        """The entry for ``key``, or None; raise ``CacheCorrupt`` if it fails its checks.

        ``request``: the canonical request of ``key`` and its canonical JSON, which the
        entry's stored request then need not be parsed into (``decode_entry``).

        ``held``: read in a transaction this thread keeps open across lookups, until
        ``release_reads``, or a miss, or ``_HELD_READS`` lookups: each select then skips
        taking and dropping WAL's read lock (see ``_select``).
        """
        if type(key) is not str:
            raise CacheError(f"cache keys are str, not {type(key).__name__}")
        # diskcache's own ``get`` runs this select and this ``fetch`` too, after ~10 µs of
        # settings lookups per call, and this runs on every cache hit (issue 14).
        try:
            rows = self._select(key, held)
        except sqlite3.Error as exc:
            raise CacheError(f"cannot read the cache at {self.directory}: {exc}") from None
        if not rows:
            return None
        ((mode, filename, stored),) = rows
        try:  # text in the row (an entry under 32 KiB) is the value as SafeDisk.fetch gives it
            in_row = mode == diskcache.core.MODE_RAW and filename is None and type(stored) is str
            value = stored if in_row else self._cache._disk.fetch(mode, filename, stored, False)
        except CacheCorrupt as exc:  # SafeDisk refused a pickled or misplaced value
            raise CacheCorrupt(f"cache entry {key}: {exc}") from None
        except ValueError:  # a value file that is not UTF-8
            raise CacheCorrupt(f"cache entry {key} is not UTF-8 text") from None
        except FileNotFoundError:
            if self._still_names(key, filename):  # the row outlived its file: damaged
                raise CacheCorrupt(
                    f"cache entry {key}: its value file {filename} is missing"
                ) from None
            return None  # deleted (or replaced) since the select: a miss
        except OSError:  # as diskcache has it: a miss
            return None
        return decode_entry(key, value, request)

    def _select(self, key: str, held: bool) -> list[Any]:
        """The select of ``get``. Held, it reads from the snapshot a read transaction took
        up to ``_HELD_READS`` lookups ago (a few ms in a cached run): an entry stored since
        (by this process's writer thread or another process) is not in it, so a miss there
        ends the transaction and is asked again, and only a hit is ever answered from an
        older snapshot. A transaction someone else opened on this thread is left alone."""
        con = self._cache._con
        state = self._held
        holding = getattr(state, "holding", False) and con.in_transaction
        if held and not con.in_transaction:
            con.execute("BEGIN")  # deferred: the first select takes the snapshot
            state.holding, state.count, holding = True, 0, True
        rows = con.execute(_GET, (key, time.time())).fetchall()
        if holding:
            state.count += 1
            if not rows or state.count >= _HELD_READS:
                self.release_reads()
                if not rows:
                    rows = con.execute(_GET, (key, time.time())).fetchall()
        return rows

    def release_reads(self) -> None:
        """End the read transaction ``get(held=True)`` keeps open on this thread, if any:
        entries stored since are seen again, and WAL's checkpoints can pass it. Called
        before any write on this thread's connection, and by whoever holds reads once its
        burst of lookups is over (``harness.calls.Caller``: when the event loop next turns)."""
        if getattr(self._held, "holding", False):
            self._held.holding = False
            con = self._cache._con
            if con.in_transaction:
                try:
                    con.execute("COMMIT")
                except sqlite3.Error as exc:
                    raise CacheError(f"cannot read the cache at {self.directory}: {exc}") from None

    def _still_names(self, key: str, filename: str | None) -> bool:
        try:
            rows = self._cache._sql(
                "SELECT 1 FROM Cache WHERE key = ? AND raw = 1 AND filename = ?", (key, filename)
            ).fetchall()
        except sqlite3.Error as exc:
            raise CacheError(f"cannot read the cache at {self.directory}: {exc}") from None
        return bool(rows)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key in self._cache

    def __len__(self) -> int:
        return len(self._cache)

    def keys(self) -> list[str]:
        """Every key, sorted."""
        rows = self._cache._sql("SELECT key FROM Cache WHERE raw = 1 ORDER BY key").fetchall()
        return [key for (key,) in rows if isinstance(key, str)]

    def nearest(self, canonical: dict[str, Any], limit: int = 3) -> list[dict[str, Any]]:
        """The canonical requests of up to ``limit`` cached entries closest to ``canonical``.

        Looks in the request's own (provider, base_url, model) family first, around its
        place in the prompt-sorted index; only if that family is empty, a few entries of
        every other family, so a changed model or base URL can be named. Closest first,
        by ``harness.cache.explain.distance``. Corrupt entries are skipped.
        """
        family = _family(canonical)
        keys = self._neighbour_keys(family, _index_tag(canonical), _NEIGHBOURS)
        if keys:
            keys += self._tail_neighbour_keys(family, canonical, 2)  # its own is next
        else:
            for other in self._families():
                keys += self._neighbour_keys(other, other + _SEP + _prompt_sort_key(canonical), 2)
        candidates = []
        for key in dict.fromkeys(keys):
            with contextlib.suppress(CacheCorrupt):
                entry = self.get(key)
                if entry is not None:
                    candidates.append(entry.request)
        candidates.sort(key=lambda cached: distance(canonical, cached))
        return candidates[:limit]

    def _neighbour_keys(self, family: str, tag: str, count: int) -> list[str]:
        low, high = family + _SEP, family + chr(ord(_SEP) + 1)
        sql = self._cache._sql
        below = sql(
            "SELECT key FROM Cache WHERE tag >= ? AND tag < ? AND raw = 1"
            " ORDER BY tag DESC LIMIT ?",
            (low, tag, count),
        ).fetchall()
        above = sql(
            "SELECT key FROM Cache WHERE tag >= ? AND tag < ? AND raw = 1 ORDER BY tag LIMIT ?",
            (tag, high, count),
        ).fetchall()
        return [key for (key,) in above + below]

    def _tail_neighbour_keys(self, family: str, canonical: dict[str, Any], count: int) -> list[str]:
        """The keys of the family's entries whose prompts end most like ``canonical``'s.

        The index orders prompts from their start, so an edit to the text every row shares
        (a typo in the template) puts a row's own entry far from its place there, among
        other rows' prompts, which share the start up to the edit but not the row's own
        text at the end. This second order, prompts by their end read backwards, is made
        once per family from its entries when a replay first misses in it (reading each
        entry: ~1 s for 10,000 here, once; a replay writes nothing, so it stays right for
        the run; entries another process stores meanwhile are not in it).
        """
        index = self._tails.get(family)
        if index is None:
            index = self._tails[family] = self._tail_index(family)
        tails, keys = index
        at = bisect.bisect_left(tails, _tail(canonical))
        return keys[max(0, at - count) : at + count]

    def _tail_index(self, family: str) -> tuple[list[str], list[str]]:
        low, high = family + _SEP, family + chr(ord(_SEP) + 1)
        rows = self._cache._sql(
            "SELECT key FROM Cache WHERE tag >= ? AND tag < ? AND raw = 1", (low, high)
        ).fetchall()
        found = []
        for (key,) in rows:
            with contextlib.suppress(CacheCorrupt):
                entry = self.get(key)
                if entry is not None:
                    found.append((_tail(entry.request), key))
        found.sort()
        return [tail for tail, _ in found], [key for _, key in found]

    def _families(self) -> dict[str, int]:
        rows = self._cache._sql(
            "SELECT substr(tag, 1, instr(tag, char(31)) - 1) AS family, COUNT(*) FROM Cache"
            " WHERE raw = 1 AND instr(tag, char(31)) > 0 GROUP BY family"
        ).fetchall()
        return {family: count for family, count in rows}

    # -- writes ----------------------------------------------------------------------

    def set(self, key: str, entry: CacheEntry) -> None:
        """Store ``entry`` under ``key``, replacing any entry there.

        ``key`` must be the key of ``entry.request``: a cache never holds an answer
        under a key it was not asked with.
        """
        if entry.key != key or canonical_key(entry.request) != key:
            raise CacheError(f"entry for {entry.key[:12]} does not belong under key {key[:12]}")
        text = entry.to_text()
        self.release_reads()
        try:
            self._cache.set(key, text, tag=_index_tag(entry.request))
        except (sqlite3.Error, OSError, diskcache.Timeout) as exc:
            raise cache_fault(exc, self.directory, waited=self.timeout) from None
        self._known.add(key)

    def delete(self, key: str) -> bool:
        """Remove one entry; True if it was there."""
        self.release_reads()
        return bool(self._cache.delete(key))

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Group many writes in one transaction (holds the write lock until the end)."""
        self.release_reads()
        try:
            with self._cache.transact():
                yield
        except (sqlite3.Error, OSError, diskcache.Timeout) as exc:  # the commit itself
            raise cache_fault(exc, self.directory, waited=self.timeout) from None

    # -- maintenance (``stats``, ``verify`` and ``prune``: ``harness.cache.maintenance``) --

    def clear(self) -> int:
        """Remove every entry; return how many there were (``clear_cache`` also works on a
        full disk)."""
        self.release_reads()
        try:
            return int(self._cache.clear())
        except (sqlite3.Error, OSError, diskcache.Timeout) as exc:
            raise cache_fault(exc, self.directory, waited=self.timeout) from None

    def close(self) -> None:
        """Close this process's connections (the cache can be reopened any time).

        diskcache closes only the calling thread's connection. Those the lookup and writer
        threads opened (their threads done) are freed only by the cycle collector, since a
        ``sqlite3.Connection`` and its statement cache refer to each other: a run whose
        end allocated little (SQL aggregates, no pandas) exited with them never collected,
        so the last one never closed and cache.db-wal kept its entries (a read-only copy of
        the cache was then refused, and a writing command in one got SQLite's bare
        "attempt to write a readonly database": tests/cache/test_cache_read_only.py).
        Collecting here closes them, when another thread opened one (a collection takes
        time in a large process: ``harness.complete`` opens and closes the cache at each
        call); the last close merges the log into cache.db. A thread that closed its own
        (``close_in_thread``: the call path's cache writer, as it stops) needs no collection:
        one took 0.03-0.05 s at the end of a cold 1,000-row run (issue 14)."""
        self.release_reads()
        self._cache.close()
        if getattr(self._cache, "other_threads", 0):
            gc.collect()

    def close_in_thread(self) -> None:
        """Close the calling thread's connection, as a thread that will not use the cache
        again ends (see ``close``); the next use in this thread opens one again."""
        self.release_reads()
        self._cache.close_in_thread()

    def __enter__(self) -> ResponseCache:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ResponseCache({str(self.directory)!r})"
