"""Opening the DuckDB file: short-lived connections, retried while another process holds it.

DuckDB lets one process at a time hold a database file open for writing, and a
read-only open is refused while a writer holds it. So harness never keeps the file
open: every read and every write batch opens it, does its work in one transaction and
closes it. Another ``harness`` process that finds the file locked waits and retries
(up to ``LOCK_TIMEOUT_S``, or ``HARNESS_LOCK_TIMEOUT_S`` seconds) instead of failing,
which is what lets ``harness runs list`` work in a second terminal while a run is writing.
``held`` keeps the file open across a burst of such pieces of work in one process (the end
of a run), each then a cursor on the one open database.

In one process the file is open once at a time, shared: the first ``connect`` of it opens
it, every other one meanwhile, from any thread, gets a cursor on that open database, and
the last to finish closes it (the checkpoint). DuckDB refuses to attach a file a second
time in one process, and to open it writable and read-only at once. So a read while the
file is open writable reads through that open. A write while it is open read-only waits
until the other threads' reads end (up to the lock timeout, then ``StoreBusy``), and reads
asked for meanwhile wait behind it; a write inside a read of the same thread, which would
wait on itself, is a ``StoreError``. DuckDB's settings (``SET``) belong to the open
database, shared by every cursor: a piece of work that sets one resets it when done.

The file is attached to an in-memory database with a row group of ``ROW_GROUP_SIZE`` rows
(DuckDB's default is 122,880). Each write's close checkpoints, and a checkpoint merges the
small row groups the last batches appended with the row groups before them: with DuckDB's
default size it rewrote up to three row groups of 122,880 rows, so one batch's close in
four to eight took 0.3-0.8 s and raised the process's peak by 90-170 MB, on any store
holding more than a few runs. With 32,768 rows a merge moves a quarter as much
(``bench/bench_store_growth.py``). The size applies to rows written from now on; a store
written before keeps its row groups. The writes on a run's way to its first row and to its
exit (``connect(..., merge=False)``: its creation, its end, its MLflow run's id) leave that
merge to the next batch of rows, written in the run's writer thread while rows run: at the
end of a 10,000-row run it was 0.13-0.35 s of the last checkpoint, rewriting ~60,000 scores.

The in-memory database is kept as the file closes (``DETACH``: the checkpoint, the lock
let go, as closing it did) for the file's next open in this process (``_spare``, one at a
time): making one cost 12-15 ms of CPU per open (DuckDB's catalog of functions), attaching
the file to the kept one 3-5 ms; a 10,000-row cached rerun opens its store ~26 times,
10 of them in the writer thread while the rows run. Closing the database also let go of
the memory its work left (40-60 MB at a 10,000-row run's end): a detach does not, so the
kept one starts its worker threads again (``SET threads``, ~0.3 ms), which does. One whose
detach failed is closed, one whose next attach fails is closed and a new one tried, and a
forked child leaves its parent's alone.

DuckDB's errors are mapped here: a full disk, a read-only home and a damaged file become
the ``EnvironmentFault`` that names them (``harness.faults``), anything else a
``StoreError`` with the first line of DuckDB's message.
"""

from __future__ import annotations

import contextlib
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
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
_held: dict[Path, int] = {}  # files ``held`` open by this process: how many holds


@dataclass(eq=False)
class _Open:
    """A file attached in this process: shared by each ``connect`` of it meanwhile."""

    anchor: duckdb.DuckDBPyConnection | None = None  # None while it is being opened
    read_only: bool = False
    users: Counter[int] = field(default_factory=Counter)  # cursors handed out, by thread
    closing: bool = False  # its last user is closing it (the checkpoint)
    merge: bool = True  # its checkpoint merges row groups: no user said otherwise


_open_files: dict[Path, _Open] = {}  # guarded by _registry, as is _writers_waiting
_writers_waiting: Counter[Path] = Counter()  # writable opens waiting for readers to end
_registry = threading.Condition()
# The in-memory database the last file closed in this process was attached to, by that
# file, kept for its next open: making one costs 12-15 ms of CPU (DuckDB's catalog of
# functions and settings), attaching the file to it 3-5 ms. At most one is kept.
_spare: dict[Path, duckdb.DuckDBPyConnection] = {}
_spare_lock = threading.Lock()
_orphans: list[duckdb.DuckDBPyConnection] = []  # a forked parent's, never used or closed


def _is_lock_error(error: duckdb.Error) -> bool:
    text = str(error)
    return "Could not set lock" in text or "Conflicting lock" in text


def _is_foreign_open(error: duckdb.Error) -> bool:
    """The file is attached or open elsewhere in this process: harness's own opens share
    one (``_use``), so by a connection of the caller's (a notebook querying the store)."""
    text = str(error)
    return "Unique file handle conflict" in text or "different configuration" in text


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
    db_path: Path,
    *,
    read_only: bool = False,
    timeout_s: float | None = None,
    merge: bool = True,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the store, migrated to the current schema, for one short piece of work.

    A read on a file that does not exist yet yields an in-memory database with the
    current schema, so reading an empty project home never creates files. Every
    ``connect`` of a file already open in this process, from any thread, is a cursor on
    that open database (see the module's docstring for which). ``merge=False``: the
    checkpoint as the open database closes does not merge row groups (see the module's
    docstring), whoever else used it.
    """
    key = db_path.resolve()
    if read_only and not _in_use(key) and not db_path.exists():
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
    timeout = lock_timeout() if timeout_s is None else timeout_s
    me = threading.get_ident()
    try:
        cursor = _use(db_path, key, me, read_only=read_only, timeout_s=timeout, merge=merge)
    except duckdb.Error as e:  # a cursor refused: the open database failed earlier
        raise store_fault(e, db_path, "opening") from e
    try:
        yield cursor
    except (duckdb.Error, OSError) as e:
        raise store_fault(e, db_path) from e
    finally:
        _let_go(key, me, cursor)


@contextmanager
def held(db_path: Path, *, merge: bool = True) -> Iterator[None]:
    """Keep the store open for writing while a burst of short pieces of work runs here.

    Each ``connect`` inside it, read or write, from any thread, gets a cursor on the one
    open database instead of opening the file (the catalog is read again: 5-15 ms on the
    in-memory database kept, ``_spare``, 15-30 ms on a new one) and closing it (a
    checkpoint after each write). Another process waits for the file
    meanwhile, as for any write, so hold it only for work that waits on nothing else: the
    end of a run holds it while it reads its rows back and stores its end (4 opens become
    one). The open database keeps the pages its queries read until the hold ends, so a
    hold around a read of every row raises the peak memory by that much. Nested holds of
    the same file share the first. ``merge`` as for ``connect``.
    """
    key = db_path.resolve()
    failure: BaseException | None = None
    with connect(db_path, merge=merge):  # migrated, retried while another process holds it
        _held[key] = _held.get(key, 0) + 1
        try:
            yield
        except BaseException as e:
            # The held work's own error, raised below as it is: inside ``connect`` an
            # OSError of that work (a broken pipe to the MLflow worker) would be reported
            # as the store's. The store's own errors are StoreErrors already (the cursors
            # ``connect`` hands out inside a hold translate them).
            failure = e
        finally:
            _held[key] -= 1
            if not _held[key]:
                del _held[key]
    if failure is not None:
        raise failure


def _in_use(key: Path) -> bool:
    with _registry:
        return key in _open_files


def _use(
    db_path: Path, key: Path, me: int, *, read_only: bool, timeout_s: float, merge: bool = True
) -> duckdb.DuckDBPyConnection:
    """A cursor on the file's one open database in this process, opened if it is not: see
    the module's docstring. ``me`` is the calling thread's id, given back to ``_let_go``."""
    deadline = time.monotonic() + timeout_s
    mine: _Open | None = None  # the entry this thread opens, until it is open
    try:
        with _registry:
            cursor = _join(db_path, key, me, read_only, deadline, timeout_s)
            if cursor is not None:
                _open_files[key].merge &= merge
                return cursor
            mine = _open_files[key] = _Open(merge=merge)
        anchor, anchor_read_only = _first_open(db_path, key, read_only, timeout_s)
        try:
            cursor = _cursor(anchor)
        except BaseException:
            anchor.close()
            raise
        with _registry:
            mine.anchor, mine.read_only = anchor, anchor_read_only
            mine.users[me] += 1
            mine = None
            _registry.notify_all()
        return cursor
    finally:
        if mine is not None:  # its open failed: the next waiting thread tries
            with _registry:
                del _open_files[key]
                _registry.notify_all()


def _join(
    db_path: Path, key: Path, me: int, read_only: bool, deadline: float, timeout_s: float
) -> duckdb.DuckDBPyConnection | None:
    """Under ``_registry``: a cursor on the file's open database once this thread may have
    one, or None when the file is not open and this thread is to open it."""
    waiting = False  # counted in _writers_waiting
    try:
        while True:
            entry = _open_files.get(key)
            if entry is None:
                if read_only and _writers_waiting[key]:
                    _registry.wait()  # a writable open waits: it goes first
                    continue
                return None
            if entry.anchor is None or entry.closing:
                _registry.wait()  # being opened or closed, which ends by itself
                continue
            if not entry.read_only or (
                read_only and (me in entry.users or not _writers_waiting[key])
            ):
                cursor = _cursor(entry.anchor)
                entry.users[me] += 1
                return cursor
            if read_only:
                _registry.wait()  # a writable open waits for this one's readers
                continue
            if me in entry.users:
                raise StoreError(
                    f"{db_path}: opened for writing while this thread reads it",
                    path=str(db_path),
                )
            if not waiting:
                waiting = True
                _writers_waiting[key] += 1
            left = deadline - time.monotonic()
            if left <= 0:
                raise StoreBusy(
                    f"{db_path} is being read by another thread of this process (waited "
                    f"{timeout_s:.0f} s); try again when it finishes"
                )
            _registry.wait(left)
    finally:
        if waiting:
            _writers_waiting[key] -= 1
            if not _writers_waiting[key]:
                del _writers_waiting[key]
            _registry.notify_all()


def _cursor(anchor: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    cursor = anchor.cursor()
    try:
        cursor.execute(f"USE {CATALOG}")  # the catalog in use is each connection's own
    except BaseException:
        cursor.close()
        raise
    return cursor


def _let_go(key: Path, me: int, cursor: duckdb.DuckDBPyConnection) -> None:
    """``_use``'s cursor is done with; the last user of the file closes it."""
    closing: _Open | None = None
    try:
        with contextlib.suppress(duckdb.Error):  # after a failed write, the error is the news
            cursor.close()
        with _registry:
            entry = _open_files[key]
            entry.users[me] -= 1
            if entry.users[me] <= 0:
                del entry.users[me]
            if entry.users:
                return
            entry.closing, closing = True, entry
        assert entry.anchor is not None
        _detach(key, entry.anchor, merge=entry.merge or entry.read_only)
    finally:
        if closing is not None:
            with _registry:
                del _open_files[key]
                _registry.notify_all()


def _first_open(
    db_path: Path, key: Path, read_only: bool, timeout_s: float
) -> tuple[duckdb.DuckDBPyConnection, bool]:
    """The file opened, migrated if this process has not yet; and whether read-only."""
    # A reader that has not migrated this file yet opens it writable once, so that a
    # store written by an older harness is upgraded before anything reads it.
    writable = not read_only or key not in _migrated
    try:
        con = _open(db_path, read_only=not writable, timeout_s=timeout_s)
    except NotWritable:
        if not read_only:
            raise
        # A read-only home (a mounted copy, a CI cache): reading needs no migration.
        con = _open(db_path, read_only=True, timeout_s=timeout_s)
        writable = False
    try:
        if writable and key not in _migrated:
            apply_migrations(con)
            _migrated.add(key)
    except BaseException as e:
        con.close()
        if isinstance(e, (duckdb.Error, OSError)):
            raise store_fault(e, db_path) from e
        raise
    return con, not writable


def _open(db_path: Path, *, read_only: bool, timeout_s: float) -> duckdb.DuckDBPyConnection:
    deadline = time.monotonic() + timeout_s
    delay = 0.01
    while True:
        try:
            return _attach(db_path, read_only=read_only)
        except duckdb.Error as e:
            if _is_foreign_open(e):
                raise StoreError(
                    f"{db_path} is open in this Python process by a DuckDB connection "
                    "harness did not make (duckdb.connect): close it (con.close()) before "
                    "harness uses the store",
                    path=str(db_path),
                ) from e
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
    """The file attached (``ROW_GROUP_SIZE``) as the default catalog of an in-memory database
    (the one its last close in this process kept, see ``_spare``, else a new one), spilling,
    as when DuckDB opens the file itself, to ``<file>.tmp``."""
    with _spare_lock:
        spare = _spare.pop(db_path.resolve(), None)
    if spare is not None:
        try:
            return _attach_to(spare, db_path, read_only=read_only)
        except duckdb.Error:
            # Whatever failed (a lock, or a fatal error of its last work, which invalidates
            # a DuckDB database for good), it is closed: tried again on a new one, whose
            # error, if any, is the news.
            pass
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"SET temp_directory = '{_quoted(db_path)}.tmp'")
    except BaseException:
        con.close()
        raise
    return _attach_to(con, db_path, read_only=read_only)


def _attach_to(
    con: duckdb.DuckDBPyConnection, db_path: Path, *, read_only: bool
) -> duckdb.DuckDBPyConnection:
    """``con`` with the file attached to it as the catalog in use; closed if that fails."""
    try:
        mode = ", READ_ONLY" if read_only else ""
        con.execute(
            f"ATTACH '{_quoted(db_path)}' AS {CATALOG} (ROW_GROUP_SIZE {ROW_GROUP_SIZE}{mode})"
        )
        con.execute(f"USE {CATALOG}")
    except BaseException:
        con.close()
        raise
    return con


def _quoted(db_path: Path) -> str:
    return str(db_path).replace("'", "''")


def _detach(key: Path, anchor: duckdb.DuckDBPyConnection, *, merge: bool) -> None:
    """Close the file the last user of ``anchor`` is done with (the checkpoint; without
    ``merge``, no row groups merged) and keep the in-memory database it was attached to
    for the file's next open (``_spare``); one whose detach failed is closed instead."""
    try:
        if not merge:  # the open database's own setting: reset below, once detached
            with contextlib.suppress(duckdb.Error):  # a DuckDB without it: the merge is done
                anchor.execute("SET max_vacuum_tasks = 0")
        anchor.execute("USE memory")
        anchor.execute(f"DETACH {CATALOG}")  # the checkpoint; the file's lock let go
        if not merge:
            with contextlib.suppress(duckdb.Error):
                anchor.execute("RESET max_vacuum_tasks")
        _trim(anchor)
    except duckdb.Error:
        with contextlib.suppress(duckdb.Error):  # after a failed write, the error is the news
            anchor.close()
        return
    with _spare_lock:
        old = _spare.popitem()[1] if _spare else None
        _spare[key] = anchor
    if old is not None:
        old.close()


def _trim(con: duckdb.DuckDBPyConnection) -> None:
    """Let go of the memory the work on a file left in the in-memory database ``con`` it
    was attached to, as closing the database did: the file's detach keeps it (a 10,000-row
    run's end kept 40-60 MB more), DuckDB lets go of it as its worker threads are started
    again (``SET threads``, ~0.3 ms)."""
    (threads,) = con.execute("SELECT current_setting('threads')").fetchone() or (1,)
    con.execute(f"SET threads = {1 if threads > 1 else 2}")
    con.execute(f"SET threads = {threads}")


def _forget_spare() -> None:
    """In a forked child: the parent's in-memory database is not usable here (its threads
    stayed in the parent), nor safely closed; it is left alone and a new one made."""
    global _spare_lock
    _spare_lock = threading.Lock()  # a thread of the parent may have held it
    _orphans.extend(_spare.values())
    _spare.clear()


os.register_at_fork(after_in_child=_forget_spare)
