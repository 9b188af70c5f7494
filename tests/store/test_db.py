"""``harness.store.db.held``: one open of the DuckDB file for a burst of short work."""

from __future__ import annotations

import subprocess
import sys
import threading
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
