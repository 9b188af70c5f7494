"""What stops a cache command that is the environment's doing, not the user's: a full
disk, a read-only folder, a file where the folder goes, a cache another process holds."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import diskcache

from harness.errors import CacheBusy, CacheError, DiskFull, HarnessError, NotWritable
from harness.faults import environment_fault, first_line

__all__ = ["FULL_DISK_HINT", "cache_fault", "removing_what_a_failed_open_left"]

# What a full disk met while opening the cache goes on with: SQLite needs room to open the
# cache to write (and to delete from it, which frees no room in cache.db anyway), so only
# ``clear``, which deletes the files, works then (a reader opens it as immutable).
FULL_DISK_HINT = (
    "free space on that disk, or run `harness cache clear --yes` (it works on a full disk; "
    "every cached response is removed)"
)


def cache_fault(
    error: BaseException, directory: Path, action: str = "writing", *, waited: float = 60.0
) -> HarnessError:
    """A full disk, a read-only cache folder or a cache another process holds (after
    ``waited`` seconds) named as such; else a ``CacheError``."""
    fault = environment_fault(error, directory, action=action)
    if fault is None and action == "opening" and "disk i/o error" in str(error).lower():
        # SQLite cannot make its shared-memory file (cache.db-shm) on a full disk
        with contextlib.suppress(OSError):
            if os.statvfs(directory).f_bavail == 0:
                fault = DiskFull(
                    f"no space left on device while opening {directory}", path=str(directory)
                )
    if isinstance(fault, DiskFull) and action == "opening":
        return DiskFull(f"{fault}; {FULL_DISK_HINT}", path=fault.path)
    if fault is not None:
        return fault
    if action == "opening":  # SQLite says only "unable to open database file"
        if directory.exists() and not directory.is_dir():
            return CacheError(
                f"cannot open the cache at {directory}: it is a file, not a folder; "
                "move it aside (harness makes a new cache there)"
            )
        if directory.is_dir() and not os.access(directory, os.W_OK):
            return NotWritable(
                f"the cache at {directory} is read-only, and this command writes to it "
                "(`--cache replay`, `cache stats`, `verify` and `export` only read): make the "
                "folder writable, or copy the project home somewhere writable and point --home "
                "at the copy",
                path=str(directory),
            )
    if isinstance(error, diskcache.Timeout) or "database is locked" in str(error):
        return CacheBusy(
            f"the cache at {directory} is held by another process (waited {waited:g} s); "
            "try again when it finishes",
            path=str(directory),
        )
    verb = "open" if action == "opening" else "write"
    return CacheError(f"cannot {verb} the cache at {directory}: {first_line(error)}")


@contextlib.contextmanager
def removing_what_a_failed_open_left(directory: Path) -> Iterator[None]:
    """On a full disk SQLite makes cache.db-wal and cache.db-shm before it finds it cannot
    write them, and a failed open left both behind, empty (the -shm three bytes long, no
    room for more: zeros). Removes the ones the open made (not there before it, and holding
    nothing) when it fails for want of room; on a full disk no other process can have opened
    the cache to write either, so none of them is anybody's."""
    made = [directory / f"cache.db{suffix}" for suffix in ("-wal", "-shm")]
    made = [path for path in made if not os.path.lexists(path)]
    try:
        yield
    except DiskFull:
        for path in made:
            with contextlib.suppress(OSError):
                if _empty(path):
                    path.unlink()
        raise


def _empty(path: Path) -> bool:
    """``path`` is a file of at most a few zero bytes."""
    if path.is_symlink() or not path.is_file() or path.stat().st_size > 16:
        return False
    return not path.read_bytes().strip(b"\0")
