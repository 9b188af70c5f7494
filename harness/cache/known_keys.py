"""Which keys a cache on disk holds, kept in memory: a miss known without asking SQLite.

Why: while a ``python:`` model's sixteen threads run an SDK, the GIL is rarely free, and
every SQLite call gives it up and waits to get it back (a lookup: 9 us alone, 8 ms of wall
time with eight busy threads). A cold run's app thread asked once per call, for an answer
that was not there: a cold run at 100 ms was 1.03-1.10x the unintercepted one with that
lookup, 1.02-1.03x without it (bench/bench_intercept.py).

What: the first 64 bits of each key the cache held when first asked (one SQL statement,
so one wait for the GIL), and of every key stored through this process since. A key whose
prefix is not among them is a miss. One whose prefix is may be another key's: then SQLite
is asked, as always. The one thing this cannot see is an entry another process stores after
the prefixes were read: a call it made meanwhile is made again here, and stored again, as
two processes asking at the same moment always could (docs/cache.md).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable

__all__ = ["KnownKeys", "known_keys"]

_PREFIX_CHARS = 16  # hex digits: 64 bits, a 28-byte int in the set


class KnownKeys:
    """The key prefixes of one cache directory (see the module docstring)."""

    def __init__(self, read: Callable[[], str | None]) -> None:
        self._read = read  # the stored keys' prefixes, concatenated
        self._lock = threading.Lock()
        self._prefixes: set[int] | None = None
        self._usable = True
        self._added: set[int] = set()  # stored before the prefixes were read

    def absent(self, key: str) -> bool:
        """True when the cache certainly has no entry under ``key`` (as far as this process
        can know: see the module docstring); False when it may."""
        prefix = _prefix(key)
        if prefix is None:
            return False
        prefixes = self._prefixes
        if prefixes is None:
            prefixes = self._load()
            if prefixes is None:
                return False
        return prefix not in prefixes

    def add(self, key: str) -> None:
        """Note a key just stored."""
        prefix = _prefix(key)
        if prefix is None:
            return
        with self._lock:
            if self._prefixes is None:
                self._added.add(prefix)
            else:
                self._prefixes.add(prefix)

    def _load(self) -> set[int] | None:
        with self._lock:
            if self._prefixes is None and self._usable:
                text = self._read() or ""
                try:
                    loaded = {
                        int(text[i : i + _PREFIX_CHARS], 16)
                        for i in range(0, len(text), _PREFIX_CHARS)
                    }
                except ValueError:  # a key that is no hash: no shortcut for this cache
                    self._usable = False
                    return None
                self._prefixes = loaded | self._added
                self._added = set()
            return self._prefixes


def _prefix(key: str) -> int | None:
    try:
        return int(key[:_PREFIX_CHARS], 16) if len(key) >= _PREFIX_CHARS else None
    except ValueError:
        return None


_by_directory: weakref.WeakValueDictionary[str, KnownKeys] = weakref.WeakValueDictionary()
_registry_lock = threading.Lock()


def known_keys(directory: str, read: Callable[[], str | None]) -> KnownKeys:
    """The ``KnownKeys`` of a cache directory, shared by every ``ResponseCache`` open on it
    in this process, so that what one stores, the others know."""
    with _registry_lock:
        known = _by_directory.get(directory)
        if known is None:
            known = _by_directory[directory] = KnownKeys(read)
        return known
