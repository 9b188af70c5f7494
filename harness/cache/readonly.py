"""A cache folder harness cannot write to, opened to read: ``--cache replay`` and the
``cache stats``, ``verify`` and ``export`` commands on a cache restored from a CI artifact
or mounted read-only into a container.

SQLite reads a write-ahead-log database only by writing beside it (``cache.db-shm``), which
a read-only folder forbids. Opened ``immutable``, SQLite reads cache.db alone and writes
nothing: right when nobody can change the file, as in a folder nobody can write, and when
every entry is in cache.db, not in a write-ahead log (``cache.db-wal``) it would ignore.
A non-empty log, left by a process that did not close the cache, is refused, named.
The same serves a cache on a full disk, where SQLite has no room to open it (for
``cache.db-shm``): there no log holding entries means nobody is writing, as a write would
have to grow the log first.
diskcache's own set-up writes its settings, so ``ImmutableCache`` reads them instead.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import quote

import diskcache

from harness.cache.disk import adopt_settings, prepare_open
from harness.errors import NotWritable

__all__ = ["ImmutableCache", "merged", "nothing_cached", "unwritable"]


def unwritable(directory: Path) -> bool:
    """True when ``directory`` is a folder holding a cache.db that this process cannot write
    (the folder or cache.db itself read-only)."""
    database = directory / "cache.db"
    return database.is_file() and not (
        os.access(directory, os.W_OK) and os.access(database, os.W_OK)
    )


def nothing_cached(directory: Path) -> bool:
    """True when ``directory`` holds no cache for a command that only reads (``cache stats``,
    ``verify``, ``export``) to open: it does not exist, or it is a folder with no cache.db
    that this process cannot write, where none was ever made. Either is an empty cache."""
    return not directory.exists() or (
        directory.is_dir()
        and not (directory / "cache.db").exists()
        and not os.access(directory, os.W_OK)
    )


def merged(directory: Path) -> bool:
    """True when ``directory`` holds a cache.db and no write-ahead log with entries in it:
    then cache.db alone holds every entry."""
    wal = directory / "cache.db-wal"
    return (directory / "cache.db").is_file() and not (wal.exists() and wal.stat().st_size > 0)


class ImmutableCache(diskcache.Cache):
    """A ``diskcache.Cache`` reading cache.db as immutable: every read works as it does on
    a writable cache; any write raises ``sqlite3.OperationalError`` (a readonly database)."""

    def __init__(
        self, directory: Path, disk: type[diskcache.Disk], settings: dict[str, Any]
    ) -> None:
        wal = directory / "cache.db-wal"
        if wal.exists() and wal.stat().st_size > 0:
            raise NotWritable(
                f"the cache at {directory} is read-only and its write-ahead log {wal} holds "
                "entries not yet merged into cache.db (a process did not close the cache); "
                "open the cache once where it is writable (`harness cache stats` merges "
                "them), or copy the project home somewhere writable and point --home at the copy",
                path=str(wal),
            )
        prepare_open(self, str(directory), 0)
        # per connection, as diskcache sets them (its journal_mode would try to write)
        self._pragmas = {p: settings[f"sqlite_{p}"] for p in ("cache_size", "mmap_size")}
        try:
            stored = dict(self._sql("SELECT key, value FROM Settings").fetchall())
            ((self._page_size,),) = self._sql("PRAGMA page_size").fetchall()
        except sqlite3.Error:
            self.close()
            raise
        adopt_settings(self, stored, disk)

    @property
    def _con(self) -> sqlite3.Connection:
        pid = os.getpid()
        if getattr(self._local, "pid", None) != pid:  # as diskcache: a forked child reopens
            self.close()
            self._local.pid = pid
        con: sqlite3.Connection | None = getattr(self._local, "con", None)
        if con is None:
            path = quote(os.path.join(self._directory, "cache.db"))
            con = self._local.con = sqlite3.connect(
                f"file:{path}?immutable=1", uri=True, isolation_level=None
            )
            for pragma, value in self._pragmas.items():
                con.execute(f"PRAGMA {pragma} = {int(value)}")
        return con
