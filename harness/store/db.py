"""Opening the DuckDB file: short-lived connections, retried while another process holds it.

DuckDB lets one process at a time hold a database file open for writing, and a
read-only open is refused while a writer holds it. So harness never keeps the file
open: every read and every write batch opens it, does its work in one transaction and
closes it. Another ``harness`` process that finds the file locked waits and retries
(up to ``LOCK_TIMEOUT_S``) instead of failing, which is what lets ``harness runs list``
work in a second terminal while a run is writing.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from harness.errors import StoreBusy, StoreError
from harness.store.migrations import apply_migrations

LOCK_TIMEOUT_S = 60.0

_migrated: set[Path] = set()  # files already brought up to date by this process


def _is_lock_error(error: duckdb.Error) -> bool:
    text = str(error)
    return "Could not set lock" in text or "Conflicting lock" in text


@contextmanager
def connect(
    db_path: Path, *, read_only: bool = False, timeout_s: float = LOCK_TIMEOUT_S
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the store, migrated to the current schema, for one short piece of work.

    A read on a file that does not exist yet yields an in-memory database with the
    current schema, so reading an empty project home never creates files.
    """
    if read_only and not db_path.exists():
        con = duckdb.connect(":memory:")
        apply_migrations(con)
        try:
            yield con
        finally:
            con.close()
        return
    if not read_only:
        db_path.parent.mkdir(parents=True, exist_ok=True)
    # A reader that has not migrated this file yet opens it writable once, so that a
    # store written by an older harness is upgraded before anything reads it.
    writable = not read_only or db_path.resolve() not in _migrated
    con = _open(db_path, read_only=not writable, timeout_s=timeout_s)
    try:
        if writable and db_path.resolve() not in _migrated:
            apply_migrations(con)
            _migrated.add(db_path.resolve())
        yield con
    except duckdb.Error as e:
        raise StoreError(f"{db_path}: {str(e).splitlines()[0]}") from e
    finally:
        con.close()


def _open(db_path: Path, *, read_only: bool, timeout_s: float) -> duckdb.DuckDBPyConnection:
    deadline = time.monotonic() + timeout_s
    delay = 0.01
    while True:
        try:
            return duckdb.connect(str(db_path), read_only=read_only)
        except duckdb.Error as e:
            if not _is_lock_error(e):
                raise StoreError(f"cannot open {db_path}: {str(e).splitlines()[0]}") from e
            if time.monotonic() >= deadline:
                raise StoreBusy(
                    f"{db_path} is held by another process (waited {timeout_s:.0f} s); "
                    "try again when it finishes"
                ) from e
            # Jitter keeps two waiting processes from retrying in lock-step.
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 0.25)
