"""The diskcache pieces under ``harness.cache.store.ResponseCache``: a ``Disk`` that stores
only text and never unpickles, and a ``Cache`` that notes which threads opened a
connection of their own."""

from __future__ import annotations

import contextlib
import os
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
    """diskcache's Cache, noting whether a thread other than the one that opened it made a
    connection of its own (``ResponseCache.close``)."""

    opener: int
    other_threads: bool

    @property
    def _con(self) -> sqlite3.Connection:
        if getattr(self._local, "con", None) is None and threading.get_ident() != self.opener:
            self.other_threads = True
        con: sqlite3.Connection = diskcache.Cache._con.fget(self)
        return con
