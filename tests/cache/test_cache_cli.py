"""``harness cache``: the commands on a real cache in the project home, through the CLI."""

from __future__ import annotations

import gzip
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from processes import harness_env

from harness.cache import ResponseCache, export_cassette, request_key
from harness.cli import cli


def harness_cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def fill(home: Path, make_request, make_entry) -> Callable[..., list[str]]:
    """Store one entry per time given in the home's cache; return their keys."""

    def store(*created: str) -> list[str]:
        keys = []
        with ResponseCache(home / "cache") as cache:
            for index, at in enumerate(created):
                req = make_request(sample_index=index)
                keys.append(request_key(req))
                cache.set(keys[-1], make_entry(req, created_at=at))
        return keys

    return store


def damage(home: Path, key: str, value: str) -> None:
    """Overwrite one entry's stored value by hand, as a crash or an editor could."""
    con = sqlite3.connect(home / "cache" / "cache.db")
    with con:
        con.execute("UPDATE Cache SET value = ? WHERE key = ?", (value, key))
    con.close()


def test_stats_says_1_entry(home: Path, fill) -> None:
    fill("2025-01-01T00:00:00.000Z")
    code, out, err = harness_cli("cache", "stats")
    assert (code, err) == (0, "")
    assert out.startswith("1 entry, ") and out.split("\n")[0].endswith(f" MB in {home / 'cache'}")


def test_stats_counts_an_entry_that_is_not_json_and_exits_0(home: Path, fill) -> None:
    keys = fill("2025-01-01T00:00:00.000Z", "2025-02-01T00:00:00.000Z")
    damage(home, keys[1], "{not json")
    code, out, err = harness_cli("cache", "stats", "--json")
    assert code == 0, err
    document = json.loads(out)
    assert document["entries"] == 2 and document["unreadable"] == 1
    # The damaged entry's time is not read; the good one's is.
    assert document["oldest"] == document["newest"] == "2025-01-01T00:00:00.000Z"
    code, out, err = harness_cli("cache", "stats")
    assert code == 0, err
    assert "1 entry cannot be read (damaged): `harness cache verify` lists them" in out
    assert "Traceback" not in out + err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no cassette at"),
        ("hello\n", "is not a harness cassette (its first line is not a header)"),
        ("", "is not a harness cassette (it is empty)"),
        ('{"harness_cassette": 9}\n', "is a version 9 cassette"),
    ],
    ids=["missing", "not-a-cassette", "empty", "other-version"],
)
def test_import_of_a_bad_file_creates_nothing(
    tmp_path: Path, content: str | None, message: str
) -> None:
    home = tmp_path / "new-home"  # not there yet: the import must not make it
    path = tmp_path / "in.jsonl"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    result = CliRunner().invoke(cli, ["--home", str(home), "cache", "import", str(path)])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert not home.exists()


def test_verify_of_an_empty_home_reports_an_empty_cache_without_making_one(home: Path) -> None:
    code, out, err = harness_cli("cache", "verify", "--json")
    assert code == 0, err
    assert json.loads(out) == {"entries": 0, "problems": []}
    assert harness_cli("cache", "verify")[1] == "0 entries checked, 0 corrupt\n"
    assert not (home / "cache").exists()


def test_export_makes_the_folders_of_its_path(home: Path, fill, tmp_path: Path) -> None:
    keys = fill("2025-01-01T00:00:00.000Z")
    path = tmp_path / "suite" / "tests" / "cassettes" / "qa.jsonl.gz"  # as docs/cache.md
    code, out, err = harness_cli("cache", "export", str(path))
    assert code == 0, err
    assert out == f"wrote 1 entry to {path}\n"
    lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    assert [json.loads(line)["key"] for line in lines[1:]] == keys
    assert [p.name for p in path.parent.iterdir()] == ["qa.jsonl.gz"]  # no partial file


def test_an_export_killed_outright_leaves_no_file_past_the_next_export(
    home: Path, fill, tmp_path: Path
) -> None:
    """`harness cache export` killed with SIGKILL as it wrote (a CI job's timeout, the OOM
    killer) left its hidden temporary file (`.qa.jsonl.gz.PID.partial`, as large as the
    cassette) beside it for good, one more for each kill: the next write of the same file
    removes those whose process is gone, not one of a writer still running."""
    fill("2025-01-01T00:00:00.000Z")
    path = tmp_path / "cassettes" / "qa.jsonl.gz"
    path.parent.mkdir()
    killed = subprocess.run(
        [sys.executable, "-c",
         "import contextlib, os, signal, sys\n"
         "import harness.cache.cassette as cassette\n"
         "original = cassette.text_writer\n"
         "@contextlib.contextmanager\n"
         "def killed_as_it_writes(partial, **kwargs):\n"
         "    with original(partial, **kwargs) as out:\n"
         "        out.write('half a cassette')\n"
         "        out.flush()\n"
         "        os.kill(os.getpid(), signal.SIGKILL)\n"
         "        yield out\n"
         "cassette.text_writer = killed_as_it_writes\n"
         f"sys.argv = ['harness', 'cache', 'export', {str(path)!r}]\n"
         "from harness.cli import main\n"
         "main()\n"],
        capture_output=True, text=True, env=dict(os.environ),
    )  # fmt: skip
    assert killed.returncode == -9, killed.stderr
    left = [p.name for p in path.parent.iterdir()]
    assert len(left) == 1 and left[0].startswith(".qa.jsonl.gz.") and left[0].endswith(".partial")
    running = path.parent / f".qa.jsonl.gz.{os.getppid()}.partial"  # a live writer's
    running.write_text("")
    code, out, err = harness_cli("cache", "export", str(path))
    assert code == 0, err
    assert sorted(p.name for p in path.parent.iterdir()) == [running.name, "qa.jsonl.gz"]


def entries(home: Path) -> int:
    with ResponseCache(home / "cache") as cache:
        return len(cache)


@pytest.mark.parametrize("flags", [[], ["--json"]], ids=["plain", "json"])
def test_clear_without_a_terminal_needs_yes(home: Path, fill, flags: list[str]) -> None:
    fill("2025-01-01T00:00:00.000Z", "2025-02-01T00:00:00.000Z")
    code, out, err = harness_cli("cache", "clear", *flags)  # CliRunner's stdin is no terminal
    assert code == 2 and out == ""
    assert err == (
        "error: cache clear removes every cached response; with no terminal to ask, "
        "add --yes to confirm\n"
    )
    assert entries(home) == 2
    code, out, err = harness_cli("cache", "clear", "--yes", *flags)
    assert code == 0, err
    assert (json.loads(out) == {"removed": 2}) if flags else (out == "removed 2 entries\n")
    assert entries(home) == 0


@pytest.mark.parametrize(
    ("flags", "answer", "left"),
    [([], "n", 2), (["--json"], "n", 2), (["--json"], "y", 0)],
    ids=["plain-no", "json-no", "json-yes"],
)
def test_clear_on_a_terminal_asks_first(
    home: Path, fill, flags: list[str], answer: str, left: int
) -> None:
    fill("2025-01-01T00:00:00.000Z", "2025-02-01T00:00:00.000Z")
    # A real terminal on stdin: a pseudo-terminal the test answers through.
    controller, terminal = os.openpty()
    try:
        os.write(controller, f"{answer}\n".encode())
        done = subprocess.run(
            [sys.executable, "-m", "harness", "cache", "clear", *flags],
            env=harness_env(home),
            stdin=terminal,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        os.close(terminal)
        os.close(controller)
    asked = done.stderr if flags else done.stdout
    assert "Remove every cached response? [y/N]" in asked
    assert done.returncode == (0 if left == 0 else 1), done.stderr
    if left == 0:
        assert json.loads(done.stdout) == {"removed": 2}  # the question kept out of the JSON
    else:  # one line saying so, not click's "Aborted!"
        assert done.stderr.endswith("cache clear cancelled: nothing removed\n")
        assert "Aborted" not in done.stderr + done.stdout
    assert entries(home) == left


def cassette_of(tmp_path: Path, make_request, make_entry, count: int, name: str) -> Path:
    """A cassette of ``count`` entries, exported from a cache of its own."""
    with ResponseCache(tmp_path / f"{name}-cache") as cache, cache.batch():
        for index in range(count):
            req = make_request(sample_index=index)
            cache.set(request_key(req), make_entry(req, text=f"answer {index}"))
    path = tmp_path / name
    with ResponseCache(tmp_path / f"{name}-cache") as cache:
        export_cassette(cache, path)
    return path


def test_a_cassette_with_a_bad_line_imports_nothing(
    tmp_path: Path, make_request, make_entry
) -> None:
    path = cassette_of(tmp_path, make_request, make_entry, 5, "qa.jsonl")
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[2] = lines[2].replace('"text":"answer', '"text":"edited answer')  # a hand edit
    lines[4] = lines[4][:40] + "\n"  # and a line cut short
    path.write_text("".join(lines), encoding="utf-8")
    home = tmp_path / "new-home"
    result = CliRunner().invoke(cli, ["--home", str(home), "cache", "import", str(path)])
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr == (
        f"error: {path} line 3: failed its checksum (and 1 more line); nothing imported\n"
    )
    assert not home.exists()


def test_a_gzip_cassette_cut_short_imports_nothing(
    tmp_path: Path, make_request, make_entry
) -> None:
    # more entries than one import batch (500): the first batch was written before the cut
    path = cassette_of(tmp_path, make_request, make_entry, 1200, "qa.jsonl.gz")
    path.write_bytes(path.read_bytes()[: path.stat().st_size * 3 // 4])  # a download cut short
    home = tmp_path / "new-home"
    home.mkdir()
    result = CliRunner().invoke(cli, ["--home", str(home), "cache", "import", str(path)])
    assert result.exit_code == 2 and result.stdout == ""
    assert not (home / "cache").exists()  # not the first 500 entries either
    assert result.stderr.startswith(f"error: cannot read cassette {path}: ")
    assert result.stderr.endswith("; nothing imported\n")
    assert result.stderr.count("\n") == 1


def test_verify_counts_a_damaged_entry_apart_from_the_store_problems_it_leaves(
    home: Path, make_request
) -> None:
    from harness.cache.entry import CacheEntry
    from harness.cache.keys import canonical_request
    from harness.model_io import ModelResponse

    with ResponseCache(home / "cache") as cache:
        for index, size in enumerate((10, 100_000)):  # the second lives in a value file
            request = make_request(sample_index=index)
            entry = CacheEntry.from_response(
                canonical_request(request), ModelResponse(text="x" * size)
            )
            cache.set(entry.key, entry)
        [value_file] = cache.directory.rglob("*.val")
    value_file.unlink()
    code, out, _ = harness_cli("cache", "verify")
    assert code == 1
    lines = out.strip().splitlines()
    assert sum(not line.startswith("(store)") for line in lines[:-1]) == 1  # the entry
    store = sum(line.startswith("(store)") for line in lines[:-1])
    assert store >= 1  # diskcache's own: the file not found, the folder it left empty
    assert (
        lines[-1]
        == f"2 entries checked, 1 corrupt; {store} problem"
        + ("s" if store > 1 else "")
        + " in the store itself"
    )


def test_import_lists_ten_conflicts_and_says_how_many_more(
    home: Path, fill, make_request, make_entry, tmp_path: Path
) -> None:
    keys = fill(*["2025-01-01T00:00:00.000Z"] * 12)
    path = tmp_path / "theirs.jsonl"
    assert harness_cli("cache", "export", str(path))[0] == 0
    harness_cli("cache", "clear", "--yes")
    with ResponseCache(home / "cache") as cache:  # the same requests, other answers here
        for index, key in enumerate(keys):
            cache.set(key, make_entry(make_request(sample_index=index), text="Lyon"))
    code, out, err = harness_cli("cache", "import", str(path))
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0] == "added 0, unchanged 0, conflicts 12, invalid 0"
    assert sum(line.startswith("conflict: ") for line in lines) == 10
    assert lines[-1] == "... and 2 more conflicts (--json lists all)"


@pytest.mark.parametrize("args", [["cache", "stats"], ["cache", "verify"]])
def test_a_file_where_the_cache_folder_goes_is_named_not_an_empty_cache(
    home: Path, args: list[str]
) -> None:
    (home / "cache").write_text("not a cache")
    code, out, err = harness_cli(*args)
    assert (code, out) == (2, "")
    assert err == (
        f"error: cannot open the cache at {home / 'cache'}: it is a file, not a folder; "
        "move it aside (harness makes a new cache there)\n"
    )


def test_export_to_a_read_only_folder_is_an_environment_fault(
    home: Path, fill, tmp_path: Path
) -> None:
    fill("2025-01-01T00:00:00.000Z")
    out = tmp_path / "out"
    out.mkdir()
    script = 'mount --bind "$1" "$1" && mount -o remount,ro,bind "$1" "$1" && shift && exec "$@"'
    done = subprocess.run(
        ["unshare", "-rm", "sh", "-c", script, "sh", str(out), sys.executable, "-m", "harness",
         "cache", "export", str(out / "qa.jsonl")],
        env=harness_env(home), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 74, done.stderr
    assert done.stderr == f"error: {out / 'qa.jsonl'} is on a read-only file system\n"
    assert list(out.iterdir()) == []


def on_a_full_disk(
    home: Path, small: Path, commands: str, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run ``commands`` (sh; ``"$@"`` is harness with ``--home $H``) on a copy of ``home``'s
    cache in ``small``, a real 1 MiB tmpfs filled up, in a user + mount namespace."""
    small.mkdir()
    script = (
        'mount -t tmpfs -o size=1m tmpfs "$1" && cp -r "$2/cache" "$1/cache" '
        '&& { dd if=/dev/zero of="$1/filler" bs=4k 2>/dev/null; true; } && shift 2 && ' + commands
    )
    return subprocess.run(
        ["unshare", "-rm", "sh", "-c", script, "sh", str(small), str(home), sys.executable,
         "-m", "harness", "--home", str(small)],
        env={**harness_env(home), "H": str(small), **env},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_clear_works_on_a_full_disk_and_the_others_say_how_to_free_space(
    home: Path, fill, tmp_path: Path
) -> None:
    """On a full disk (a real 1 MiB tmpfs, in a user + mount namespace) SQLite cannot open
    the cache: `clear` deletes its files instead, and the others name the way out."""
    fill("2025-01-01T00:00:00.000Z", "2025-02-01T00:00:00.000Z")
    small = tmp_path / "small"
    done = on_a_full_disk(
        home, small,
        'ls -A "$H/cache" && { "$@" cache prune; echo "rc=$?"; } && ls -A "$H/cache" '
        '&& { "$@" cache stats >/dev/null; echo "rc=$?"; } && ls -A "$H/cache" '
        '&& "$@" cache clear --yes; echo "rc=$?"; ls "$H/cache"',
    )  # fmt: skip
    assert done.stderr == (
        f"error: no space left on device while opening {small / 'cache'}; free space on that "
        "disk, or run `harness cache clear --yes` (it works on a full disk; every cached "
        "response is removed)\n"
    )
    # The failed opens leave the folder as it was (they left an empty cache.db-shm and
    # cache.db-wal behind); then clear empties it.
    listed = "cache.db\n"  # prune, then stats (which reads it as immutable)
    assert done.stdout == f"{listed}rc=74\n{listed}rc=0\n{listed}removed 2 entries\nrc=0\n"


def test_clear_on_a_full_disk_deletes_nothing_another_process_has_open(home: Path, fill) -> None:
    from harness.cache.upkeep import _delete_cache_files
    from harness.errors import CacheBusy

    fill("2025-01-01T00:00:00.000Z")
    with ResponseCache(home / "cache") as held:
        with pytest.raises(CacheBusy):
            _delete_cache_files(home / "cache", timeout=0.2)
        assert len(held) == 1
    assert (home / "cache" / "cache.db").exists()


def test_export_from_a_home_with_no_cache_writes_an_empty_cassette_and_creates_no_cache(
    tmp_path: Path,
) -> None:
    home = tmp_path / "new-home"  # not there yet: as stats and verify, export must not make it
    path = tmp_path / "e.jsonl"
    code, out, err = harness_cli("--home", str(home), "cache", "export", str(path))
    assert (code, out, err) == (0, f"wrote 0 entries to {path}\n", "")
    assert not home.exists()
    assert harness_cli("cache", "import", str(path))[0] == 0  # a cassette, if an empty one


@pytest.mark.parametrize(
    ("days", "said"),
    [
        ("nan", "error: --older-than must be a number of days >= 0, got nan\n"),
        ("inf", "error: --older-than must be a number of days >= 0, got inf\n"),
        ("1e12", None),  # more days than the calendar has: nothing is that old
    ],
)
def test_prune_older_than_a_number_of_no_date_is_one_line_or_removes_nothing(
    fill, days: str, said: str | None
) -> None:
    # Each was a traceback: nan a ValueError, inf and 1e12 an OverflowError (exit 1).
    fill("2020-01-01T00:00:00+00:00")
    code, out, err = harness_cli("cache", "prune", "--older-than", days)
    if said is None:
        assert (code, out, err) == (0, "removed 0 entries\n", "")
    else:
        assert (code, out, err) == (2, "", said)
    code, out, _ = harness_cli("cache", "stats", "--json")
    assert json.loads(out)["entries"] == 1


def test_prune_on_a_home_with_no_cache_creates_no_cache(tmp_path: Path) -> None:
    """`cache prune` on a home that did not exist made it, and <home>/cache, to remove 0
    entries, where stats, verify, export and clear create nothing."""
    home = tmp_path / "new-home"
    for args in (("prune",), ("prune", "--older-than", "1"), ("prune", "--json")):
        code, out, err = harness_cli("--home", str(home), "cache", *args)
        assert (code, err) == (0, "")
        assert out == ('{\n  "removed": 0\n}\n' if "--json" in args else "removed 0 entries\n")
    assert not home.exists()


def test_stats_verify_and_export_read_a_cache_on_a_full_disk(
    home: Path, fill, tmp_path: Path
) -> None:
    """On a full disk (a real 1 MiB tmpfs, in a user + mount namespace) SQLite has no room
    to open the cache; the commands that only read open it as immutable, and need none."""
    fill("2025-01-01T00:00:00.000Z", "2025-02-01T00:00:00.000Z")
    small = tmp_path / "small"
    cassette = tmp_path / "out.jsonl"
    done = on_a_full_disk(
        home, small,
        '"$@" cache stats --json && "$@" cache verify --json && "$@" cache export "$O"'
        ' && ls -A "$H/cache"',
        O=str(cassette),
    )  # fmt: skip
    assert (done.returncode, done.stderr) == (0, "")
    decoder = json.JSONDecoder()
    stats, end = decoder.raw_decode(done.stdout)
    verified, end2 = decoder.raw_decode(done.stdout, end + 1)
    assert stats["entries"] == 2
    assert stats["oldest"] == "2025-01-01T00:00:00.000Z"
    assert verified == {"entries": 2, "problems": []}
    # Not the empty cache.db-shm and cache.db-wal SQLite made trying to open it to write
    listed = "cache.db\n"
    assert done.stdout[end2:] == f"\nwrote 2 entries to {cassette}\n{listed}"
    assert len(cassette.read_text().splitlines()) == 3  # a header and two entries


def test_import_writes_its_counts_with_thousands_separators(
    home: Path, fill, tmp_path: Path
) -> None:
    # Before: "added 1000, unchanged 0, ..." where export said "wrote 1,000 entries".
    fill(*["2025-01-01T00:00:00.000Z"] * 1000)
    path = tmp_path / "big.jsonl"
    assert harness_cli("cache", "export", str(path))[1] == f"wrote 1,000 entries to {path}\n"
    harness_cli("cache", "clear", "--yes")
    code, out, err = harness_cli("cache", "import", str(path))
    assert (code, err, out) == (0, "", "added 1,000, unchanged 0, conflicts 0, invalid 0\n")
    code, out, err = harness_cli("cache", "import", str(path))
    assert (code, err, out) == (0, "", "added 0, unchanged 1,000, conflicts 0, invalid 0\n")
