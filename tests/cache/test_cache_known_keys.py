"""A miss known without SQLite (``ResponseCache.known_absent``): never for a key the cache
holds, whichever way it got there; and a lookup that knows it costs no SQLite call."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from harness.cache import ResponseCache, request_key
from harness.cache.known_keys import KnownKeys
from tests.cache.conftest import build_entry, build_request


def test_a_key_the_cache_holds_is_never_known_absent(tmp_path: Path) -> None:
    before, after, elsewhere, never = (
        build_request(messages=({"role": "user", "content": f"Question {name}?"},))
        for name in ("before", "after", "elsewhere", "never")
    )
    with ResponseCache(tmp_path / "cache") as first:
        first.set(request_key(before), build_entry(before))
    with ResponseCache(tmp_path / "cache") as cache, ResponseCache(tmp_path / "cache") as other:
        assert not cache.known_absent(request_key(before))  # there when first asked
        assert cache.known_absent(request_key(after))
        cache.set(request_key(after), build_entry(after))
        assert not cache.known_absent(request_key(after))  # stored here since
        other.set(request_key(elsewhere), build_entry(elsewhere))
        assert not cache.known_absent(request_key(elsewhere))  # stored by another instance
        assert cache.known_absent(request_key(never))
        assert cache.get(request_key(never)) is None


def test_reading_the_keys_in_another_thread_leaves_no_connection_open_there(
    tmp_path: Path,
) -> None:
    with ResponseCache(tmp_path / "cache") as cache:
        req = build_request()
        cache.set(request_key(req), build_entry(req))
        answers: list[bool] = []
        thread = threading.Thread(target=lambda: answers.append(cache.known_absent("0" * 64)))
        thread.start()
        thread.join(10)

        assert answers == [True]
        # none for ``close`` to collect (the app's thread of a cold run reads SQLite no more)
        assert cache._cache.other_threads == 0
        assert not cache.known_absent(request_key(req))


def test_a_known_miss_asks_sqlite_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with ResponseCache(tmp_path / "cache") as cache:
        for n in range(50):
            req = build_request(messages=({"role": "user", "content": f"Q{n}"},))
            cache.set(request_key(req), build_entry(req))
        cache.known_absent("0" * 64)  # the prefixes are read once, here
        statements: list[str] = []
        real_sql = cache._cache._sql

        def counted(statement: str, *args: object) -> sqlite3.Cursor:
            statements.append(statement)
            return real_sql(statement, *args)

        monkeypatch.setattr(type(cache._cache), "_sql", property(lambda self: counted))
        misses = [
            request_key(build_request(messages=({"role": "user", "content": f"New {n}"},)))
            for n in range(200)
        ]
        assert all(cache.known_absent(key) for key in misses)
        assert statements == []


def test_prefixes_stored_while_they_are_read_are_kept() -> None:
    known = KnownKeys(lambda: "a" * 16)
    known.add("b" * 64)  # stored before the first lookup read the prefixes
    assert not known.absent("a" * 64) and not known.absent("b" * 64)
    assert known.absent("c" * 64)


def test_a_cache_with_keys_that_are_no_hash_gets_no_shortcut() -> None:
    known = KnownKeys(lambda: "not-hex-at-all!!")
    assert not known.absent("c" * 64)  # "may be there": SQLite is asked
    assert not known.absent("short")
