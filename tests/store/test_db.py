"""``harness.store.db.held``: one open of the DuckDB file for a burst of short work."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from harness.errors import StoreError
from harness.store import db as store_db

# Another process asks for the file with a short wait: exit 3 if it is busy, else prints
# how many rows the test table holds.
_OTHER = """
import sys
from pathlib import Path
from harness.errors import StoreBusy
from harness.store.db import connect
try:
    with connect(Path(sys.argv[1]), read_only=True, timeout_s=0.3) as con:
        print(con.execute("SELECT count(*) FROM t").fetchone()[0])
except StoreBusy:
    sys.exit(3)
"""


def _other_process(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _OTHER, str(path)], capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def opens(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Each real open of a DuckDB file from here on (its read_only flag), in order."""
    seen: list[bool] = []
    real = store_db._open

    def counted(db_path: Path, *, read_only: bool, timeout_s: float) -> Any:
        seen.append(read_only)
        return real(db_path, read_only=read_only, timeout_s=timeout_s)

    monkeypatch.setattr(store_db, "_open", counted)
    return seen


def test_a_held_store_is_opened_once_for_reads_and_writes_from_any_thread(
    tmp_path: Path, opens: list[bool]
) -> None:
    path = tmp_path / "h.duckdb"
    with store_db.held(path):
        with store_db.connect(path) as con:
            con.execute("CREATE TABLE t (x INTEGER)")
            con.execute("INSERT INTO t VALUES (1)")
        with store_db.connect(path, read_only=True) as con:
            assert con.execute("SELECT count(*) FROM t").fetchone() == (1,)

        def write() -> None:
            with store_db.connect(path) as con:
                con.execute("INSERT INTO t VALUES (2)")

        thread = threading.Thread(target=write)
        thread.start()
        thread.join()
        with store_db.held(path), store_db.connect(path) as con:  # nested: the same open
            assert con.execute("SELECT sum(x) FROM t").fetchone() == (3,)
        # Meanwhile another process finds the file busy, as during any write.
        assert _other_process(path).returncode == 3
    assert opens == [False], "a held store was opened again"
    # Released, with everything written inside the hold stored.
    other = _other_process(path)
    assert other.returncode == 0, other.stderr
    assert other.stdout.strip() == "2"


def test_an_error_inside_a_hold_is_a_store_error_and_releases_the_file(tmp_path: Path) -> None:
    path = tmp_path / "h.duckdb"
    with store_db.connect(path) as con:
        con.execute("CREATE TABLE t (x INTEGER)")
    with pytest.raises(StoreError, match="no_such_table"), store_db.held(path):
        with store_db.connect(path) as con:
            con.execute("INSERT INTO t VALUES (1)")
        with store_db.connect(path) as con:
            con.execute("SELECT * FROM no_such_table")
    assert not store_db._held
    other = _other_process(path)
    assert other.returncode == 0, other.stderr
    assert other.stdout.strip() == "1"


# -- one open database per file in this process, whatever the thread ---------------------


def _store(path: Path) -> Path:
    with store_db.connect(path) as con:
        con.execute("CREATE TABLE t (x INTEGER)")
    return path


def _in_threads(*work: Any) -> list[BaseException]:
    """Run each callable in a thread of its own; the errors they raised."""
    errors: list[BaseException] = []

    def run(job: Any) -> None:
        try:
            job()
        except BaseException as e:  # reported by the test
            errors.append(e)

    threads = [threading.Thread(target=run, args=(job,)) for job in work]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a thread is stuck"
    return errors


def test_two_threads_write_and_read_one_store_at_once(tmp_path: Path, opens: list[bool]) -> None:
    """Two ``evaluate`` calls in two threads of one process, or a run's writer thread while
    the main thread reads: DuckDB refuses to attach the file a second time in a process, so
    the second open failed ("Unique file handle conflict"). Both are cursors on one open."""
    path = _store(tmp_path / "h.duckdb")
    opens.clear()
    both_in = threading.Barrier(2, timeout=30)  # each waits inside its open for the other

    def write(x: int) -> None:
        with store_db.connect(path) as con:
            both_in.wait()
            con.execute("INSERT INTO t VALUES (?)", [x])
            both_in.wait()
            assert con.execute("SELECT sum(x) FROM t").fetchone() == (3,)

    assert _in_threads(lambda: write(1), lambda: write(2)) == []
    assert opens == [False]  # one open, shared
    assert not store_db._open_files
    with store_db.connect(path, read_only=True) as con:
        assert con.execute("SELECT sum(x) FROM t").fetchone() == (3,)


def test_a_read_while_another_thread_writes_reads_through_its_open(
    tmp_path: Path, opens: list[bool]
) -> None:
    """A read-only open while the file is open writable in the same process was refused
    ("Can't open a connection to same database file with a different configuration")."""
    path = _store(tmp_path / "h.duckdb")
    opens.clear()
    both_in = threading.Barrier(2, timeout=30)
    seen: list[Any] = []

    def write() -> None:
        with store_db.connect(path) as con:
            con.execute("INSERT INTO t VALUES (5)")
            both_in.wait()
            both_in.wait()

    def read() -> None:
        both_in.wait()  # the writer has the file open
        try:
            with store_db.connect(path, read_only=True) as con:
                seen.append(con.execute("SELECT sum(x) FROM t").fetchone())
        finally:
            both_in.wait()

    assert _in_threads(write, read) == []
    assert seen == [(5,)] and opens == [False]


def test_a_write_while_another_thread_reads_waits_for_the_read(
    tmp_path: Path, opens: list[bool]
) -> None:
    """A writable open while the file is open read-only (another thread's read) waits until
    the read ends, then opens it writable; a read asked for meanwhile waits behind it."""
    path = _store(tmp_path / "h.duckdb")
    key = path.resolve()
    opens.clear()
    reading, writer_waits = threading.Event(), threading.Event()
    order: list[str] = []

    def read() -> None:
        with store_db.connect(path, read_only=True) as con:
            reading.set()
            assert writer_waits.wait(30)
            assert con.execute("SELECT count(*) FROM t").fetchone() == (0,)
            order.append("read")

    def write() -> None:
        assert reading.wait(30)
        with store_db.connect(path) as con:
            con.execute("INSERT INTO t VALUES (7)")
            order.append("write")

    def watch() -> None:  # lets the reader go once the writer is seen waiting for it
        deadline = time.monotonic() + 30
        while not store_db._writers_waiting[key] and time.monotonic() < deadline:
            time.sleep(0.01)
        writer_waits.set()

    assert _in_threads(read, write, watch) == []
    assert order == ["read", "write"]
    assert opens == [True, False]  # read-only for the read, then writable
    with store_db.connect(path, read_only=True) as con:
        assert con.execute("SELECT sum(x) FROM t").fetchone() == (7,)


def test_a_write_inside_a_read_of_the_same_thread_is_refused(tmp_path: Path) -> None:
    path = _store(tmp_path / "h.duckdb")
    with store_db.connect(path, read_only=True) as con:  # read-only: migrated already
        with (
            pytest.raises(StoreError, match="opened for writing while this thread reads it"),
            store_db.connect(path),
        ):
            pass
        assert con.execute("SELECT count(*) FROM t").fetchone() == (0,)
    assert not store_db._open_files


def test_threads_reading_and_writing_over_and_over_all_finish(tmp_path: Path) -> None:
    """Four threads opening the file read-only and writable in turn, 25 times each: every
    read and write is done (none refused, none left waiting) and the file is closed after."""
    path = _store(tmp_path / "h.duckdb")

    def work(n: int) -> None:
        for i in range(25):
            if (n + i) % 3:
                with store_db.connect(path, read_only=True) as con:
                    con.execute("SELECT count(*) FROM t").fetchone()
            else:
                with store_db.connect(path) as con:
                    con.execute("INSERT INTO t VALUES (1)")

    assert _in_threads(*(lambda n=n: work(n) for n in range(4))) == []
    writes = sum(1 for n in range(4) for i in range(25) if not (n + i) % 3)
    assert not store_db._open_files and not store_db._writers_waiting
    with store_db.connect(path, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM t").fetchone() == (writes,)


def test_the_last_user_closes_the_file(tmp_path: Path) -> None:
    """Checkpointed (its write-ahead log gone) once the last of its users is done, not
    before; and the process opens it again afterwards, as does DuckDB itself."""
    import duckdb

    path = _store(tmp_path / "h.duckdb")
    wal = Path(f"{path}.wal")
    with store_db.connect(path) as first:
        with store_db.connect(path) as second:
            second.execute("INSERT INTO t VALUES (1)")
        assert wal.exists()  # the other user keeps it open
        first.execute("INSERT INTO t VALUES (2)")
    assert not wal.exists() and not store_db._open_files
    with duckdb.connect(str(path)) as plain:  # closed: not attached in this process
        assert plain.execute("SELECT sum(x) FROM t").fetchone() == (3,)
    with store_db.connect(path) as again:
        again.execute("INSERT INTO t VALUES (4)")
    with store_db.connect(path, read_only=True) as con:
        assert con.execute("SELECT sum(x) FROM t").fetchone() == (7,)


def test_a_large_dataset_import_leaves_the_shared_memory_limit_as_it_was(tmp_path: Path) -> None:
    """A staged dataset's insert limits DuckDB's memory to spill (64 MB): a setting of the
    open database, which stayed on it for every other user of the file while it was open."""
    import pyarrow.parquet as pq

    from harness.store.datasets import Example, example_batch, example_schema, save_staged_dataset

    path = tmp_path / "h.duckdb"
    staged = tmp_path / "examples.parquet"
    with pq.ParquetWriter(staged, example_schema()) as writer:
        writer.write_batch(example_batch([Example("e1", "a question", ("an answer",))]))
    with store_db.held(path):  # another user of the open database meanwhile
        with store_db.connect(path, read_only=True) as con:
            (before,) = con.execute("SELECT current_setting('memory_limit')").fetchone()
        _, created = save_staged_dataset(
            path, name="qa", digest="0" * 64, n_rows=1, staged=staged, source=None, columns={}
        )
        assert created
        with store_db.connect(path, read_only=True) as con:
            assert con.execute("SELECT current_setting('memory_limit')").fetchone() == (before,)
            assert con.execute("SELECT count(*) FROM examples").fetchone() == (1,)


@pytest.mark.parametrize("read_only", [False, True])
def test_a_callers_own_open_of_the_file_is_named_with_what_to_do(
    tmp_path: Path, read_only: bool
) -> None:
    # A notebook that queries the store with duckdb.connect and keeps the connection: the
    # next harness.evaluate got DuckDB's "Unique file handle conflict" (before the store's
    # one open per process: "different configuration"), naming neither cause nor remedy.
    import duckdb

    path = tmp_path / "harness.duckdb"
    with store_db.connect(path):
        pass
    theirs = duckdb.connect(str(path), read_only=read_only)
    try:
        with (
            pytest.raises(
                StoreError, match=r"by a DuckDB connection harness did not make.*close it"
            ),
            store_db.connect(path),  # as a run writes it
        ):
            pass
    finally:
        theirs.close()
    with store_db.connect(path, read_only=True) as con:  # closed: harness opens it again
        assert con.execute("SELECT count(*) FROM schema_migrations").fetchone()[0] > 0
