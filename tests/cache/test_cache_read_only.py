"""A cache folder harness cannot write to (restored from a CI artifact, mounted read-only
into a container): ``--cache replay``, ``cache stats``, ``verify`` and ``export`` read it and
change nothing there; the commands that write to it are refused, named, exit 74.

The folder is really read-only: bind-mounted read-only over itself in a user + mount
namespace of its own (root writes through any chmod; a read-only mount it cannot)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from processes import TESTS, harness, harness_env, import_rows, json_doc, paid, query

from harness.testing import FakeLLMServer

RUN = ("run", "--data", "qa", "--model", "openai:/m", "--metric", "exact_match", "--no-mlflow")


@pytest.fixture(scope="module")
def server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(latency_s=0.002) as running:
        yield running


def in_read_only_cache(
    home: Path, server: FakeLLMServer, *args: str
) -> subprocess.CompletedProcess[str]:
    """``harness ARGS`` with the home's cache folder mounted read-only (the rest of the
    home, where a run keeps its rows, stays writable)."""
    folder = str(home / "cache")
    script = 'mount --bind "$1" "$1" && mount -o remount,ro,bind "$1" "$1" && shift && exec "$@"'
    return subprocess.run(
        ["unshare", "-rm", "sh", "-c", script, "sh", folder, sys.executable, "-m", "harness",
         *args],
        env=harness_env(home, server), capture_output=True, text=True, timeout=300,
        cwd=str(TESTS),
    )  # fmt: skip


def snapshot(folder: Path) -> list[tuple[str, int, int]]:
    """Every file and folder under ``folder``: its path, size and mtime in nanoseconds."""
    return sorted(
        (str(path.relative_to(folder)), path.stat().st_size, path.stat().st_mtime_ns)
        for path in [folder, *folder.rglob("*")]
    )


def outputs(home: Path, run_id: str) -> list[tuple[object, ...]]:
    return query(
        home,
        "SELECT example_id, output, error, input_tokens, output_tokens, request_key"
        " FROM outputs WHERE run_id = ? ORDER BY example_id",
        [run_id],
    )


def cached_run(home: Path, tmp_path: Path, server: FakeLLMServer) -> dict[str, str]:
    """A two-row run that fills the cache, in a writable folder; the run's environment."""
    env = harness_env(home, server)
    import_rows(env, tmp_path, 2)
    code, _, err = harness(env, *RUN)
    assert code == 0, err
    return env


def test_replay_stats_verify_and_export_read_a_read_only_cache_and_change_nothing(
    home: Path, tmp_path: Path, server: FakeLLMServer
) -> None:
    env = harness_env(home, server)
    import_rows(env, tmp_path, 5)
    code, out, err = harness(env, *RUN, "--json")
    assert code == 0, err
    recorded = json_doc(out)
    assert recorded["calls"]["model"]["requests"] == 5
    before = snapshot(home / "cache")
    sent = sum(paid(server).values())

    done = in_read_only_cache(home, server, *RUN, "--cache", "replay", "--json")
    assert done.returncode == 0, done.stderr
    replayed = json_doc(done.stdout)
    assert replayed["calls"]["model"]["requests"] == 0
    assert replayed["calls"]["model"]["cache_hits"] == 5
    assert sum(paid(server).values()) == sent
    assert replayed["metrics"] == recorded["metrics"]
    assert outputs(home, replayed["run_id"]) == outputs(home, recorded["run_id"])

    done = in_read_only_cache(home, server, "cache", "stats", "--json")
    assert done.returncode == 0, done.stderr
    assert json_doc(done.stdout)["entries"] == 5
    done = in_read_only_cache(home, server, "cache", "verify", "--json")
    assert done.returncode == 0, done.stderr
    assert json_doc(done.stdout) == {"entries": 5, "problems": []}
    cassette = tmp_path / "out.jsonl"
    done = in_read_only_cache(home, server, "cache", "export", str(cassette))
    assert (done.returncode, done.stdout) == (0, f"wrote 5 entries to {cassette}\n"), done.stderr
    assert len(cassette.read_text().splitlines()) == 6  # a header and five entries

    assert snapshot(home / "cache") == before


@pytest.mark.parametrize(
    "args",
    [RUN, [*RUN, "--cache", "refresh"], ["cache", "prune"], ["cache", "clear", "--yes"]],
    ids=["run-use", "run-refresh", "prune", "clear"],
)
def test_a_command_that_writes_to_a_read_only_cache_is_refused_named_exit_74(
    home: Path, tmp_path: Path, server: FakeLLMServer, args: list[str]
) -> None:
    cached_run(home, tmp_path, server)
    before = snapshot(home / "cache")
    done = in_read_only_cache(home, server, *args)
    assert done.returncode == 74, done.stderr
    assert done.stderr == (
        f"error: the cache at {home / 'cache'} is read-only, and this command writes to it "
        "(`--cache replay`, `cache stats`, `verify` and `export` only read): make the folder "
        "writable, or copy the project home somewhere writable and point --home at the copy\n"
    )
    assert snapshot(home / "cache") == before


# A process that stores an entry and dies without closing the cache: the entry stays in
# cache.db-wal, which a read-only folder's reader cannot merge (immutable SQLite ignores it).
_DIE_UNMERGED = """
import os, sys
sys.path.insert(0, sys.argv[2])
from conftest import build_entry, build_request
from harness.cache import ResponseCache, request_key
cache = ResponseCache(sys.argv[1])
cache._cache._sql("PRAGMA wal_autocheckpoint = 0")
request = build_request(sample_index=1)
cache.set(request_key(request), build_entry(request))
os._exit(0)
"""


@pytest.mark.parametrize(
    "args",
    [[*RUN, "--cache", "replay"], ["cache", "stats"], ["cache", "verify"]],
    ids=["replay", "stats", "verify"],
)
def test_a_read_only_cache_with_an_unmerged_write_ahead_log_is_refused_named_exit_74(
    home: Path, tmp_path: Path, server: FakeLLMServer, args: list[str]
) -> None:
    env = cached_run(home, tmp_path, server)
    folder = home / "cache"
    subprocess.run(
        [sys.executable, "-c", _DIE_UNMERGED, str(folder), str(Path(__file__).parent)],
        env=env, check=True, timeout=120,
    )  # fmt: skip
    wal = folder / "cache.db-wal"
    assert wal.stat().st_size > 0
    done = in_read_only_cache(home, server, *args)
    assert (done.returncode, done.stdout) == (74, ""), done.stderr
    assert done.stderr == (
        f"error: the cache at {folder} is read-only and its write-ahead log {wal} holds "
        "entries not yet merged into cache.db (a process did not close the cache); open the "
        "cache once where it is writable (`harness cache stats` merges them), or copy the "
        "project home somewhere writable and point --home at the copy\n"
    )


def test_a_read_only_cache_folder_with_no_cache_db_is_named_as_such_by_replay(
    home: Path, tmp_path: Path, server: FakeLLMServer
) -> None:
    """Not "this command writes to it", which replay does not."""
    import_rows(harness_env(home, server), tmp_path, 2)
    (home / "cache").mkdir()
    done = in_read_only_cache(home, server, *RUN, "--cache", "replay")
    assert (done.returncode, done.stdout) == (74, ""), done.stderr
    assert done.stderr == (
        f"error: the cache at {home / 'cache'} is read-only and has no cache.db (nothing was "
        "cached there, or it was not copied there): no entry can be read from it\n"
    )
    assert list((home / "cache").iterdir()) == []


def test_stats_verify_and_export_read_a_read_only_cache_folder_with_no_cache_db_as_empty(
    home: Path, tmp_path: Path, server: FakeLLMServer
) -> None:
    """As they read a cache folder that does not exist: nothing is cached there."""
    (home / "cache").mkdir()
    done = in_read_only_cache(home, server, "cache", "stats", "--json")
    assert done.returncode == 0, done.stderr
    assert json_doc(done.stdout)["entries"] == 0
    done = in_read_only_cache(home, server, "cache", "stats")
    assert (done.returncode, done.stdout) == (0, f"0 entries, 0.0 MB in {home / 'cache'}\n")
    done = in_read_only_cache(home, server, "cache", "verify", "--json")
    assert done.returncode == 0, done.stderr
    assert json_doc(done.stdout) == {"entries": 0, "problems": []}
    cassette = tmp_path / "out.jsonl"
    done = in_read_only_cache(home, server, "cache", "export", str(cassette))
    assert (done.returncode, done.stdout) == (0, f"wrote 0 entries to {cassette}\n"), done.stderr
    assert len(cassette.read_text().splitlines()) == 1  # the header alone
    assert list((home / "cache").iterdir()) == []
