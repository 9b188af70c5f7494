"""Opening the response cache: a cache already set up is opened without writing to it; any
other is set up (or set right) as diskcache sets it up."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import diskcache

from harness.cache import ResponseCache, request_key
from tests.cache.conftest import build_entry, build_request


def _filled(directory: Path) -> str:
    req = build_request()
    with ResponseCache(directory) as cache:
        cache.set(request_key(req), build_entry(req))
    return request_key(req)


def _settings(directory: Path) -> dict[str, object]:
    with contextlib.closing(sqlite3.connect(directory / "cache.db")) as con:
        return dict(con.execute("SELECT key, value FROM Settings").fetchall())


def _names(directory: Path) -> set[str]:
    with contextlib.closing(sqlite3.connect(directory / "cache.db")) as con:
        return {name for (name,) in con.execute("SELECT name FROM sqlite_master")}


def test_opening_a_cache_already_set_up_leaves_cache_db_as_it_was(tmp_path: Path) -> None:
    """Each open rewrote diskcache's Settings rows and then checkpointed them into cache.db
    (~0.085 s of every run's start); now an open only reads."""
    directory = tmp_path / "cache"
    key = _filled(directory)
    settings = _settings(directory)
    before = (directory / "cache.db").read_bytes()
    with ResponseCache(directory) as cache:
        entry = cache.get(key)
        assert entry is not None and entry.text == "Paris"
        con = cache._cache._con
        assert con.execute("PRAGMA cache_size").fetchone() == (2**10,)
        assert con.execute("PRAGMA mmap_size").fetchone() == (0,)
        assert con.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert cache._cache.eviction_policy == "none" and cache._cache.tag_index == 1
        assert (
            cache._cache.disk.min_file_size == diskcache.core.DEFAULT_SETTINGS["disk_min_file_size"]
        )
    assert (directory / "cache.db").read_bytes() == before
    assert _settings(directory) == settings
    with ResponseCache(directory) as cache:  # and it still writes
        req = build_request(sample_index=1)
        cache.set(request_key(req), build_entry(req, "Lyon"))
        assert len(cache) == 2
    assert _settings(directory)["count"] == 2


def test_a_cache_another_process_is_writing_opens_without_waiting_for_it(
    tmp_path: Path,
) -> None:
    """The set-up's writes waited for the write lock (60 s, whatever the timeout) before a
    run could even read its cached answers; a read needs no lock."""
    directory = tmp_path / "cache"
    key = _filled(directory)
    holder = sqlite3.connect(directory / "cache.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # as another run's writer, mid-batch
    try:
        with ResponseCache(directory, timeout=0.2) as cache:
            entry = cache.get(key)
            assert entry is not None and entry.text == "Paris"
    finally:
        holder.rollback()
        holder.close()


def test_a_cache_diskcache_set_up_with_its_own_settings_gets_harness_settings(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "cache"
    plain = diskcache.Cache(str(directory))  # least-recently-stored, no tag index
    plain.close()
    assert "Cache_tag_rowid" not in _names(directory)
    with ResponseCache(directory) as cache:
        assert cache._cache.eviction_policy == "none"
        assert cache._cache._con.execute("PRAGMA cache_size").fetchone() == (2**10,)
    settings = _settings(directory)
    assert (settings["eviction_policy"], settings["tag_index"]) == ("none", 1)
    assert (settings["size_limit"], settings["statistics"]) == (2**62, 0)
    assert (settings["sqlite_cache_size"], settings["sqlite_mmap_size"]) == (2**10, 0)
    assert "Cache_tag_rowid" in _names(directory)


def test_a_set_up_cache_missing_an_index_or_a_setting_is_set_up_again(tmp_path: Path) -> None:
    directory = tmp_path / "cache"
    key = _filled(directory)
    with contextlib.closing(sqlite3.connect(directory / "cache.db", isolation_level=None)) as con:
        con.execute("DROP INDEX Cache_tag_rowid")
        con.execute("DELETE FROM Settings WHERE key = 'cull_limit'")
    with ResponseCache(directory) as cache:
        assert cache.get(key) is not None
    assert "Cache_tag_rowid" in _names(directory)
    assert _settings(directory)["cull_limit"] == diskcache.core.DEFAULT_SETTINGS["cull_limit"]


def test_an_empty_cache_db_is_set_up(tmp_path: Path) -> None:
    directory = tmp_path / "cache"
    directory.mkdir()
    (directory / "cache.db").touch()
    with ResponseCache(directory) as cache:
        assert len(cache) == 0
    assert _settings(directory)["eviction_policy"] == "none"
