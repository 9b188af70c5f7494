"""``db.held``: one open of the DuckDB file for a burst of reads and writes in one thread."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from harness.errors import StoreError
from harness.store import db as store_db


@pytest.fixture
def opens(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """The read_only flag of every real open of a file, in order (the real ``_open`` runs)."""
    seen: list[bool] = []
    real = store_db._open

    def counting(db_path: Path, *, read_only: bool, timeout_s: float):  # type: ignore[no-untyped-def]
        seen.append(read_only)
        return real(db_path, read_only=read_only, timeout_s=timeout_s)

    monkeypatch.setattr(store_db, "_open", counting)
    return seen


def test_a_burst_opens_the_file_once_and_sees_its_own_writes(
    tmp_path: Path, opens: list[bool]
) -> None:
    path = tmp_path / "harness.duckdb"
    with store_db.connect(path) as con:
        con.execute("CREATE TABLE t (x INTEGER)")
    opens.clear()
    with store_db.held(path):
        for x in range(3):
            with store_db.connect(path) as con:
                con.execute("INSERT INTO t VALUES (?)", [x])
            with store_db.connect(path, read_only=True) as con:  # no clash with the writer
                assert con.execute("SELECT count(*) FROM t").fetchone() == (x + 1,)
        with store_db.held(path), store_db.connect(path) as con:  # nested: the outer serves
            assert con.execute("SELECT sum(x) FROM t").fetchone() == (3,)
    assert opens == [False]
    with store_db.connect(path, read_only=True) as con:  # committed, and the file is free
        assert con.execute("SELECT count(*) FROM t").fetchone() == (3,)
    assert opens == [False, True]


def test_the_file_is_locked_for_other_processes_only_while_held(tmp_path: Path) -> None:
    path = tmp_path / "harness.duckdb"
    probe = [
        sys.executable,
        "-c",
        "import sys; from pathlib import Path; from harness.store import db\n"
        "try:\n"
        "    with db.connect(Path(sys.argv[1]), timeout_s=0.2): print('opened')\n"
        "except db.StoreBusy: print('busy')",
        str(path),
    ]
    with store_db.held(path):
        busy = subprocess.run(probe, capture_output=True, text=True, check=True).stdout
    free = subprocess.run(probe, capture_output=True, text=True, check=True).stdout
    assert (busy.strip(), free.strip()) == ("busy", "opened")


def test_another_thread_opens_its_own_connection(tmp_path: Path, opens: list[bool]) -> None:
    path = tmp_path / "harness.duckdb"
    with store_db.connect(path) as con:
        con.execute("CREATE TABLE t (x INTEGER)")
    opens.clear()
    errors: list[BaseException] = []

    def write_then_read() -> None:
        try:
            with store_db.connect(path) as con:
                con.execute("INSERT INTO t VALUES (7)")
            # Read-only beside the held writable connection: DuckDB refuses a second
            # configuration of one file in a process, so this one opens writable too.
            with store_db.connect(path, read_only=True) as con:
                assert con.execute("SELECT count(*) FROM t").fetchone() == (1,)
        except BaseException as e:  # reported below, in the test's thread
            errors.append(e)

    with store_db.held(path):
        worker = threading.Thread(target=write_then_read)
        worker.start()
        worker.join()
        with store_db.connect(path) as con:
            assert con.execute("SELECT x FROM t").fetchall() == [(7,)]
    assert errors == []
    assert opens == [False, False, False]  # the held one, then the thread's own two


def test_an_error_inside_is_the_stores_and_leaves_the_hold_usable(tmp_path: Path) -> None:
    path = tmp_path / "harness.duckdb"
    with store_db.held(path):
        with pytest.raises(StoreError, match="no_such_table"), store_db.connect(path) as con:
            con.execute("SELECT * FROM no_such_table")
        with store_db.connect(path) as con:
            assert con.execute("SELECT 42").fetchone() == (42,)
