"""``harness.store.db``: the in-memory database a file was attached to, kept for its next open.

Making one cost 12-15 ms of CPU per open (a 10,000-row run opens its store ~26 times);
the file itself is let go of as before: detached, checkpointed, its lock released.
"""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
from pathlib import Path

import duckdb

from harness.store import db as store_db

# Another process opens the file writable, as DuckDB itself, and adds a row.
_OTHER = """
import sys, duckdb
with duckdb.connect(sys.argv[1]) as con:
    con.execute("INSERT INTO t VALUES (10)")
"""


def _store(path: Path) -> Path:
    with store_db.connect(path) as con:
        con.execute("CREATE TABLE t (x INTEGER)")
    return path


def _marked(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the in-memory database ``con`` works in holds the table ``_mark`` made."""
    found = con.execute(
        "SELECT count(*) FROM duckdb_tables() "
        "WHERE database_name = 'memory' AND table_name = 'marker'"
    ).fetchone()
    return found == (1,)


def _mark(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE TABLE memory.main.marker (x INTEGER)")


def test_the_files_next_open_uses_the_in_memory_database_of_its_last(tmp_path: Path) -> None:
    """Reused, and the file let go of in between: no write-ahead log left, another
    process writes it, and the next open sees that write."""
    path = _store(tmp_path / "h.duckdb")
    with store_db.connect(path) as con:
        con.execute("INSERT INTO t VALUES (1)")
        _mark(con)
    assert not Path(f"{path}.wal").exists() and not store_db._open_files
    other = subprocess.run(
        [sys.executable, "-c", _OTHER, str(path)], capture_output=True, text=True, timeout=120
    )
    assert other.returncode == 0, other.stderr
    with store_db.connect(path, read_only=True) as con:
        assert _marked(con)
        assert con.execute("SELECT sum(x) FROM t").fetchone() == (11,)


def test_another_file_gets_a_new_database_spilling_beside_it(tmp_path: Path) -> None:
    first = _store(tmp_path / "a" / "h.duckdb")
    second = _store(tmp_path / "b" / "h.duckdb")
    with store_db.connect(first) as con:
        _mark(con)
    with store_db.connect(second) as con:
        assert not _marked(con)
        spill = con.execute("SELECT current_setting('temp_directory')").fetchone()
        assert spill == (f"{second}.tmp",)
    with store_db.connect(first) as con:  # the one kept is the last file's only
        assert not _marked(con)


def test_a_close_without_merges_leaves_the_next_open_merging(tmp_path: Path) -> None:
    """``merge=False`` sets the database's ``max_vacuum_tasks`` as it closes: the next open
    of the file, on the same database, has DuckDB's default again."""
    with duckdb.connect() as plain:
        default = plain.execute("SELECT current_setting('max_vacuum_tasks')").fetchone()
    path = _store(tmp_path / "h.duckdb")
    with store_db.connect(path, merge=False) as con:
        con.execute("INSERT INTO t VALUES (1)")
        _mark(con)
    with store_db.connect(path) as con:
        assert _marked(con)
        assert con.execute("SELECT current_setting('max_vacuum_tasks')").fetchone() == default


def _write_in_child(path: str) -> None:
    with store_db.connect(Path(path)) as con:
        assert not _marked(con)  # not the parent's database, unusable here
        con.execute("INSERT INTO t VALUES (5)")


def test_a_forked_child_opens_the_file_on_a_database_of_its_own(tmp_path: Path) -> None:
    path = _store(tmp_path / "h.duckdb")
    with store_db.connect(path) as con:
        _mark(con)
    child = multiprocessing.get_context("fork").Process(target=_write_in_child, args=(str(path),))
    child.start()
    child.join(120)
    assert child.exitcode == 0
    with store_db.connect(path, read_only=True) as con:
        assert _marked(con)
        assert con.execute("SELECT sum(x) FROM t").fetchone() == (5,)
