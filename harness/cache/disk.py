"""The diskcache pieces under ``harness.cache.store.ResponseCache``: a ``Disk`` that stores
only text and never unpickles, and a ``Cache`` that notes which threads opened a
connection of their own and opens a cache already set up without writing to it."""

from __future__ import annotations

import contextlib
import os
import os.path as op
import sqlite3
import threading
from typing import Any

import diskcache

from harness.errors import CacheCorrupt, CacheError

__all__ = ["SafeDisk"]


class SafeDisk(diskcache.Disk):
    """A diskcache Disk that stores only text and bytes and never unpickles."""

    def put(self, key: Any) -> tuple[Any, bool]:
        if type(key) is not str:
            raise CacheError(f"cache keys are str, not {type(key).__name__}")
        return key, True

    def get(self, key: Any, raw: bool) -> Any:
        if not raw:
            raise CacheCorrupt("the cache holds a pickled key; refusing to unpickle it")
        return bytes(key) if type(key) is sqlite3.Binary else key

    def store(self, value: Any, read: bool, key: Any = diskcache.core.UNKNOWN) -> Any:
        if type(value) not in (str, bytes) or read:
            raise CacheError(f"cache values are JSON text, not {type(value).__name__}")
        return super().store(value, read, key=key)

    def fetch(self, mode: int, filename: str | None, value: Any, read: bool) -> Any:
        if mode == diskcache.core.MODE_PICKLE:
            raise CacheCorrupt("the cache holds a pickled value; refusing to unpickle it")
        if filename is not None:
            self._inside(filename)
        return super().fetch(mode, filename, value, read)

    def remove(self, file_path: str) -> None:
        # A tampered cache.db could name any file; only ever delete our own.
        with contextlib.suppress(CacheCorrupt):
            self._inside(file_path)
            super().remove(file_path)

    def _inside(self, filename: str) -> None:
        root = os.path.realpath(self._directory)
        full = os.path.realpath(os.path.join(root, filename))
        if os.path.commonpath([root, full]) != root:
            raise CacheCorrupt(f"cache row points outside the cache directory: {filename!r}")


class _ThreadedCache(diskcache.Cache):
    """diskcache's Cache, noting which threads other than the one that opened it have a
    connection of their own open (``ResponseCache.close``)."""

    opener: int
    # How many threads other than the opener have a connection open: counted, not named by
    # ident, as an ended thread's ident may be a new thread's.
    other_threads: int
    counting: threading.Lock

    @property
    def _con(self) -> sqlite3.Connection:
        local = self._local
        con: sqlite3.Connection | None = getattr(local, "con", None)
        # This thread's connection, opened in this process: what diskcache's ``_con`` gives
        # then, without its two property calls (~0.7 us of every cache hit's select).
        if con is not None and getattr(local, "pid", None) == os.getpid():
            return con
        if con is None and threading.get_ident() != self.opener:
            with self.counting:
                self.other_threads += 1
        opened: sqlite3.Connection = diskcache.Cache._con.fget(self)
        return opened

    def close_in_thread(self) -> None:
        """Close the calling thread's connection (diskcache's ``close`` closes only that)."""
        if getattr(self._local, "con", None) is None:
            return
        self.close()
        if threading.get_ident() != self.opener:
            with self.counting:
                self.other_threads -= 1

    def open_set_up(
        self, directory: str, timeout: float, disk: type[diskcache.Disk], settings: dict[str, Any]
    ) -> bool:
        """Open the cache at ``directory`` as ``diskcache.Cache.__init__`` would, when its
        cache.db already holds ``settings`` and every table, index and trigger that set-up
        makes; False (nothing left open) when it does not, for ``__init__`` to set it up.

        diskcache's set-up rewrites every Settings row and its tag-index flag on each open,
        then closes its connection, and closing the last connection of a write-ahead-log
        database checkpoints it into cache.db, whose fsync also waits for every page of
        cache.db not yet on disk: 3 ms of a run's start, 0.08 s when the 200 MB cache of a
        10,000-row rerun had just been written (issue 14). Those writes also waited for any
        other process's write to end. Here an open only reads.
        """
        directory = op.expandvars(op.expanduser(directory))  # as diskcache has it
        database = op.join(directory, diskcache.core.DBNAME)
        if not op.isfile(database) or op.getsize(database) == 0:
            return False
        prepare_open(self, directory, timeout)
        try:
            # diskcache's connection, its per-connection pragmas set from Settings
            names = {name for (name,) in self._sql("SELECT name FROM sqlite_master")}
            stored = (
                dict(self._sql("SELECT key, value FROM Settings").fetchall())
                if "Settings" in names
                else {}
            )
            ready = names >= _SCHEMA and _as_wanted(stored, settings)
            if ready:
                ((self._page_size,),) = self._sql("PRAGMA page_size").fetchall()
        except BaseException:
            self.close()
            raise
        if not ready:
            self.close()
            return False
        adopt_settings(self, stored, disk)
        return True


def prepare_open(cache: diskcache.Cache, directory: str, timeout: float) -> None:
    """What ``diskcache.Cache.__init__`` sets before its first statement, for a cache
    opened without its set-up (``open_set_up``, ``harness.cache.readonly``)."""
    cache._directory = directory
    cache._timeout = timeout
    cache._local = threading.local()
    cache._txn_id = None


def adopt_settings(
    cache: diskcache.Cache, stored: dict[str, Any], disk: type[diskcache.Disk]
) -> None:
    """``stored`` (the cache's Settings table) as the cache's attributes, as diskcache's
    ``reset(key)`` sets them, and its Disk made with the ``disk_`` ones."""
    for key, value in stored.items():
        setattr(cache, key, value)
    cache._disk = disk(
        cache._directory, **{k[5:]: v for k, v in stored.items() if k.startswith("disk_")}
    )


# What diskcache's set-up makes (with the tag index, and no eviction's own index).
_SCHEMA = {
    "Settings",
    "Cache",
    "Cache_key_raw",
    "Cache_expire_time",
    "Cache_tag_rowid",
    "Settings_count_insert",
    "Settings_count_delete",
    "Settings_size_insert",
    "Settings_size_update",
    "Settings_size_delete",
}


def _as_wanted(stored: dict[str, Any], settings: dict[str, Any]) -> bool:
    """``stored`` holds every setting and count diskcache's set-up would write, each
    of ``settings`` as given (a stored default stays as it is there too)."""
    if settings.get("tag_index") is not True or settings.get("eviction_policy") != "none":
        return False  # what ``_SCHEMA`` is for
    wanted = {**diskcache.core.DEFAULT_SETTINGS, **diskcache.core.METADATA}
    return wanted.keys() <= stored.keys() and all(
        stored.get(key) == value and type(stored.get(key)) is _stored_type(value)
        for key, value in settings.items()
    )


def _stored_type(value: Any) -> type:
    # SQLite gives a bool back as an int
    return int if isinstance(value, bool) else type(value)
