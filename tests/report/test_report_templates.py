"""The report's templates are compiled once per machine, not once per report, and a cache
that cannot be used never stops a report."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import jinja2
import pytest

from harness.report.page import environment

PACKAGES = [("harness.report", "report.html.j2"), ("harness.compare.render", "comparison.html.j2")]


@pytest.fixture
def temp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A temporary directory of the test's own, and no environment made before it."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    environment.cache_clear()
    yield tmp_path
    environment.cache_clear()


def cache_files(temp_dir: Path) -> list[Path]:
    return sorted(temp_dir.glob("_jinja2-cache-*/*.cache"))


@pytest.mark.parametrize(("package", "name"), PACKAGES)
def test_a_template_compiled_once_is_loaded_compiled_after(
    temp_dir: Path, monkeypatch: pytest.MonkeyPatch, package: str, name: str
) -> None:
    first = environment(package).get_template(name)
    assert len(cache_files(temp_dir)) >= 1
    environment.cache_clear()

    def no_compiling(*args: object, **kwargs: object) -> None:
        raise AssertionError("compiled again")

    monkeypatch.setattr(jinja2.Environment, "compile", no_compiling)
    second = environment(package).get_template(name)
    # The same compiled template: the same blocks, the same code.
    assert second.blocks.keys() == first.blocks.keys()
    assert second.root_render_func.__code__.co_code == first.root_render_func.__code__.co_code


def test_a_changed_template_is_compiled_again(temp_dir: Path) -> None:
    env = environment("harness.report")
    env.get_template("report.html.j2")
    bucket_env = jinja2.Environment(bytecode_cache=env.bytecode_cache)
    assert env.bytecode_cache is not None
    bucket = env.bytecode_cache.get_bucket(bucket_env, "report.html.j2", None, "changed {{ x }}")
    assert bucket.code is None  # the source's checksum differs: nothing is loaded


@pytest.mark.parametrize("damage", ["truncated", "garbage", "directory"])
def test_a_damaged_cache_file_means_compiling_again(temp_dir: Path, damage: str) -> None:
    first = environment("harness.report").get_template("report.html.j2")
    (cached,) = cache_files(temp_dir)
    data = cached.read_bytes()
    if damage == "truncated":
        cached.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        cached.write_bytes(data[:40] + b"\x00" * 100)
    else:
        cached.unlink()
        cached.mkdir()
    environment.cache_clear()
    template = environment("harness.report").get_template("report.html.j2")
    code = template.root_render_func.__code__.co_code
    assert code == first.root_render_func.__code__.co_code
    if damage != "directory":  # compiled again, and written again whole
        assert cached.read_bytes() == data


def test_a_cache_folder_that_cannot_be_used_means_no_cache(
    temp_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A folder that is not the user's own (jinja2 refuses it), then a temporary directory
    # that is a file: no cache, and the template compiles all the same.
    uid = os.getuid()
    monkeypatch.setattr(os, "getuid", lambda: uid + 1)  # the folder it makes is not "ours"
    environment.cache_clear()
    env = environment("harness.report")
    assert env.bytecode_cache is None
    env.get_template("report.html.j2")
    monkeypatch.undo()
    monkeypatch.setattr(tempfile, "tempdir", str(temp_dir / "a-file"))
    (temp_dir / "a-file").write_text("not a folder")
    environment.cache_clear()
    env = environment("harness.report")
    assert env.bytecode_cache is None
    env.get_template("report.html.j2")


def test_a_cache_that_cannot_be_written_still_renders(temp_dir: Path) -> None:
    env = environment("harness.report")
    assert env.bytecode_cache is not None
    (folder,) = temp_dir.glob("_jinja2-cache-*")
    folder.chmod(0o500)  # read-only: every write fails
    try:
        if os.access(folder, os.W_OK):  # root writes anyway: make the write itself fail
            folder.chmod(0o700)
            folder.rmdir()
            folder.write_text("")  # the cache's folder is now a file
        env.get_template("report.html.j2")
        assert cache_files(temp_dir) == []
    finally:
        if folder.is_dir():
            folder.chmod(0o700)
