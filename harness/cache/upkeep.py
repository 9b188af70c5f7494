"""What works on a cache folder as a whole, for ``harness cache stats`` and ``clear``: a
folder that does not exist is an empty cache and is not created, and ``clear`` works on a
full disk (where SQLite cannot open the cache)."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path
from typing import Any

from harness.cache.faults import cache_fault
from harness.cache.readonly import nothing_cached
from harness.cache.store import ResponseCache, SafeDisk
from harness.errors import DiskFull

__all__ = ["cache_stats", "clear_cache"]


def cache_stats(directory: Path | str) -> dict[str, Any]:
    """``ResponseCache.stats()`` of the cache at ``directory``; a folder that does not exist
    is an empty cache, and is not created (``cache stats`` only looks), as is a read-only
    folder with no cache.db; a file there is refused, as opening it would be."""
    if nothing_cached(Path(directory)):
        return {
            "directory": str(directory),
            "entries": 0,
            "size_bytes": 0,
            "oldest": None,
            "newest": None,
            "unreadable": 0,
            "by_provider": {},
            "by_model": [],
        }
    cache = ResponseCache(directory, read_only=True)
    try:
        return cache.stats()
    finally:
        cache.close()


def clear_cache(directory: Path | str, *, timeout: float = 60.0) -> int:
    """Remove every entry of the cache at ``directory``; return how many there were.

    On a full disk SQLite cannot open the cache (nor delete from it, which frees no room in
    cache.db): then, if no other process has the cache open, its files are deleted instead,
    which frees their space. A folder that does not exist is an empty cache, not created.
    """
    directory = Path(directory)
    if not directory.exists():
        return 0
    try:
        with ResponseCache(directory, timeout=timeout) as cache:
            return cache.clear()
    except DiskFull:
        pass
    return _delete_cache_files(directory, timeout)


def _delete_cache_files(directory: Path, timeout: float) -> int:
    # In exclusive locking mode SQLite reads a WAL database without cache.db-shm (which a
    # full disk cannot hold), and the lock is had only when no other process has the cache
    # open (each holds a shared lock on cache.db), so nobody loses a write.
    database = directory / "cache.db"
    try:
        con = sqlite3.connect(database, timeout=timeout, isolation_level=None)
    except sqlite3.Error as exc:
        raise cache_fault(exc, directory, "opening", waited=timeout) from None
    try:
        con.execute("PRAGMA locking_mode = EXCLUSIVE")
        con.execute("BEGIN EXCLUSIVE")
        ((count,),) = con.execute("SELECT COUNT(*) FROM Cache").fetchall()
        filenames = [
            name
            for (name,) in con.execute("SELECT filename FROM Cache WHERE filename IS NOT NULL")
            if isinstance(name, str)
        ]
        disk = SafeDisk(str(directory))  # deletes only files inside the cache folder
        for name in filenames:
            disk.remove(name)  # and the folders it leaves empty, as diskcache does
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(f"{database}{suffix}")
    except (sqlite3.Error, OSError) as exc:
        raise cache_fault(exc, directory, waited=timeout) from None
    finally:
        with contextlib.suppress(sqlite3.Error):
            con.close()  # the files are gone: whatever it cannot write there is lost
    return int(count)
