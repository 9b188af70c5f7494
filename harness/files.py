"""Writing files whole: renamed into place when complete, and gzip that is the same bytes
for the same text (cassettes, run files, JUnit reports).

A file a user commits or a CI job reads must never be half-written: ``replaced_on_success``
hands out a temporary name next to the target and renames it over the target only when
the block finishes, so a crash, a full disk or Ctrl-C leaves the old file (or none).
"""

from __future__ import annotations

import gzip
import io
import itertools
import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO

from harness.errors import ConfigError, DiskFull

__all__ = [
    "check_writable",
    "folder_problem",
    "folders_for",
    "replaced_on_success",
    "text_writer",
    "write_text_atomically",
    "write_user_file",
]


@contextmanager
def folders_for(target: Path) -> Iterator[None]:
    """Make the folders missing on the way to ``target``; if the block fails, remove them
    again (while empty), so a failed write leaves nothing behind."""
    made = list(itertools.takewhile(lambda folder: not folder.exists(), target.parents))
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        yield
    except BaseException:
        for folder in made:  # the deepest first
            with suppress(OSError):
                folder.rmdir()
        raise


@contextmanager
def replaced_on_success(target: Path) -> Iterator[Path]:
    """A temporary path to write; renamed to ``target`` if the block succeeds, else removed."""
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    _remove_abandoned(target)
    try:
        yield partial
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def _remove_abandoned(target: Path) -> None:
    """Remove the temporary files of earlier writers of ``target`` whose process is gone: a
    writer killed outright (SIGKILL, the OOM killer, a CI job's timeout) cannot remove its
    own, which stayed beside the user's file (hidden, as large as the file) for good."""
    prefix, suffix = f".{target.name}.", ".partial"
    try:
        names = os.listdir(target.parent)
    except OSError:
        return  # the write itself says what is wrong with the folder
    for name in names:
        pid = name[len(prefix) : -len(suffix)]
        if not (name.startswith(prefix) and name.endswith(suffix) and pid.isdigit()):
            continue
        if int(pid) != os.getpid() and not _process_exists(int(pid)):
            with suppress(OSError):
                (target.parent / name).unlink()


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists, but is another user's: its file is not ours to remove
        return True
    return True


@contextmanager
def text_writer(path: Path, *, gzipped: bool) -> Iterator[IO[str]]:
    """UTF-8 text with ``\\n`` line ends; gzipped without a name or time in the header, so
    writing the same text twice gives the same bytes (a committed file diffs cleanly)."""
    with open(path, "wb") as raw:
        if not gzipped:
            with io.TextIOWrapper(raw, encoding="utf-8", newline="\n") as text:
                yield text
            return
        with (
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as binary,
            io.TextIOWrapper(binary, encoding="utf-8", newline="\n") as text,
        ):
            yield text


def write_text_atomically(target: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``target`` whole or not at all."""
    with replaced_on_success(target) as partial:
        partial.write_text(text, encoding="utf-8")


def folder_problem(folder: Path) -> str | None:
    """Why a new file cannot be put in ``folder``, or None when it is a folder: "F does not
    exist", or "F is not a folder" when a file stands at ``folder`` or on its way there."""
    if folder.is_dir():
        return None
    standing = next((path for path in (folder, *folder.parents) if path.exists()), None)
    if standing is not None and not standing.is_dir():
        return f"{standing} is not a folder"
    return f"{folder} does not exist"


def check_writable(target: Path) -> None:
    """Raise ConfigError unless ``target`` can be written as a file: its folder exists and
    it is not a folder itself. For output files a command names before doing its work."""
    problem = folder_problem(target.parent)
    if problem is not None:
        raise ConfigError(f"cannot write {target}: {problem}")
    if target.is_dir():
        raise ConfigError(f"cannot write {target}: it is a folder")


def write_user_file(target: Path, text: str) -> None:
    """Write ``text`` to a file the user named, whole or not at all; a folder that is not
    there, or a file that cannot be written, is bad input (ConfigError), a full disk is
    DiskFull."""
    check_writable(target)
    try:
        write_text_atomically(target, text)
    except OSError as e:
        from harness.faults import environment_fault

        fault = environment_fault(e, target)
        if isinstance(fault, DiskFull):  # the environment, not the user's mistake: exit 74
            raise fault from None
        raise ConfigError(f"cannot write {target}: {e.strerror or e}") from None
