"""Opening the DuckDB file: short-lived connections, retried while another process holds it.

DuckDB lets one process at a time hold a database file open for writing, and a
read-only open is refused while a writer holds it. So harness never keeps the file
open: every read and every write batch opens it, does its work in one transaction and
closes it. Another ``harness`` process that finds the file locked waits and retries
(up to ``LOCK_TIMEOUT_S``, or ``HARNESS_LOCK_TIMEOUT_S`` seconds) instead of failing,
which is what lets ``harness runs list`` work in a second terminal while a run is writing.
``held`` keeps the file open across a burst of such pieces of work in one process (the end
of a run), each then a cursor on the one open database.

The file is attached to an in-memory database with a row group of ``ROW_GROUP_SIZE`` rows
(DuckDB's default is 122,880). Each write's close checkpoints, and a checkpoint merges the
small row groups the last batches appended with the row groups before them: with DuckDB's
default size it rewrote up to three row groups of 122,880 rows, so one batch's close in
four to eight took 0.3-0.8 s and raised the process's peak by 90-170 MB, on any store
holding more than a few runs. With 32,768 rows a merge moves a quarter as much
(``bench/bench_store_growth.py``). The size applies to rows written from now on; a store
written before keeps its row groups.

DuckDB's errors are mapped here: a full disk, a read-only home and a damaged file become
the ``EnvironmentFault`` that names them (``harness.faults``), anything else a
``StoreError`` with the first line of DuckDB's message.
"""

from __future__ import annotations

import contextlib
import os
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from harness.errors import (
    ConfigError,
    EnvironmentFault,
    NotWritable,
    StoreBusy,
    StoreCorrupt,
    StoreError,
)
from harness.faults import environment_fault, first_line
from harness.store.migrations import apply_migrations

LOCK_TIMEOUT_S = 60.0
ROW_GROUP_SIZE = 32_768  # rows; see the module's docstring
CATALOG = "store"  # the name the file is attached as
LOCK_TIMEOUT_ENV = "HARNESS_LOCK_TIMEOUT_S"

_migrated: set[Path] = set()  # files already brought up to date by this process
_held: dict[Path, duckdb.DuckDBPyConnection] = {}  # files ``held`` open by this process


def _is_lock_error(error: duckdb.Error) -> bool:
    text = str(error)
    return "Could not set lock" in text or "Conflicting lock" in text


def lock_timeout() -> float:
    """How long to wait for another process's hold on the file: the environment, else 60 s."""
    raw = os.environ.get(LOCK_TIMEOUT_ENV)
    if not raw:
        return LOCK_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value < 0:
        raise ConfigError(f"{LOCK_TIMEOUT_ENV} must be a number of seconds >= 0, got {raw!r}")
    return value


def store_fault(error: BaseException, db_path: Path, action: str = "writing") -> EnvironmentFault:
    """The error to raise for a DuckDB (or file) error met while ``action`` the store."""
    fault = environment_fault(
        error, db_path, action=action, corrupt=StoreCorrupt, what="the DuckDB store"
    )
    return fault or StoreError(f"{db_path}: {first_line(error)}", path=str(db_path))


@contextmanager
def connect(
    db_path: Path, *, read_only: bool = False, timeout_s: float | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the store, migrated to the current schema, for one short piece of work.

    A read on a file that does not exist yet yields an in-memory database with the
    current schema, so reading an empty project home never creates files.
    """
    anchor = _held.get(db_path.resolve()) if _held else None
    if anchor is not None:  # see ``held``: a cursor on the database already open
        cursor = anchor.cursor()
        try:
            cursor.execute(f"USE {CATALOG}")
            yield cursor
        except (duckdb.Error, OSError) as e:
            raise store_fault(e, db_path) from e
        finally:
            with contextlib.suppress(duckdb.Error):
                cursor.close()
        return
    if read_only and not db_path.exists():
        con = duckdb.connect(":memory:")
        apply_migrations(con)
        try:
            yield con
        finally:
            con.close()
        return
    if not read_only:
        try:
            db_path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise store_fault(e, db_path.parent) from None
    # A reader that has not migrated this file yet opens it writable once, so that a
    # store written by an older harness is upgraded before anything reads it.
    writable = not read_only or db_path.resolve() not in _migrated
    timeout = lock_timeout() if timeout_s is None else timeout_s
    try:
        con = _open(db_path, read_only=not writable, timeout_s=timeout)
    except NotWritable:
        if not read_only:
            raise
        # A read-only home (a mounted copy, a CI cache): reading needs no migration.
        con = _open(db_path, read_only=True, timeout_s=timeout)
        writable = False
    try:
        if writable and db_path.resolve() not in _migrated:
            apply_migrations(con)
            _migrated.add(db_path.resolve())
        yield con
    except (duckdb.Error, OSError) as e:
        raise store_fault(e, db_path) from e
    finally:
        with contextlib.suppress(duckdb.Error):  # after a failed write, the error is the news
            con.close()


@contextmanager
def held(db_path: Path) -> Iterator[None]:
    """Keep the store open for writing while a burst of short pieces of work runs here.

    Each ``connect`` inside it, read or write, from any thread, gets a cursor on the one
    open database instead of opening the file (~15-30 ms: the catalog is read again) and
    closing it (a checkpoint after each write). Another process waits for the file
    meanwhile, as for any write, so hold it only for work that waits on nothing else: the
    end of a run holds it while it reads its rows back and stores its end (4 opens become
    one). The open database keeps the pages its queries read until the hold ends, so a
    hold around a read of every row raises the peak memory by that much. Nested holds of
    the same file share the first.
    """
    key = db_path.resolve()
    if key in _held:
        yield
        return
    failure: BaseException | None = None
    with connect(db_path) as con:  # migrated, retried while another process holds it
        _held[key] = con
        try:
            yield
        except BaseException as e:
            # The held work's own error, raised below as it is: inside ``connect`` an
            # OSError of that work (a broken pipe to the MLflow worker) would be reported
            # as the store's. The store's own errors are StoreErrors already (the cursors
            # ``connect`` hands out inside a hold translate them).
            failure = e
        finally:
            del _held[key]
    if failure is not None:
        raise failure


def _open(db_path: Path, *, read_only: bool, timeout_s: float) -> duckdb.DuckDBPyConnection:
    deadline = time.monotonic() + timeout_s
    delay = 0.01
    while True:
        try:
            return _attach(db_path, read_only=read_only)
        except duckdb.Error as e:
            if not _is_lock_error(e):
                raise store_fault(e, db_path, "opening") from e
            if time.monotonic() >= deadline:
                raise StoreBusy(
                    f"{db_path} is held by another process (waited {timeout_s:.0f} s); "
                    "try again when it finishes"
                ) from e
            # Jitter keeps two waiting processes from retrying in lock-step.
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 0.25)


def _attach(db_path: Path, *, read_only: bool) -> duckdb.DuckDBPyConnection:
    """The file attached (``ROW_GROUP_SIZE``) as the default catalog of an in-memory database,
    spilling, as when DuckDB opens the file itself, to ``<file>.tmp``."""
    con = duckdb.connect(":memory:")
    try:
        path = str(db_path).replace("'", "''")
        mode = ", READ_ONLY" if read_only else ""
        con.execute(f"ATTACH '{path}' AS {CATALOG} (ROW_GROUP_SIZE {ROW_GROUP_SIZE}{mode})")
        con.execute(f"USE {CATALOG}")
        con.execute(f"SET temp_directory = '{path}.tmp'")
    except BaseException:
        con.close()
        raise
    return con
