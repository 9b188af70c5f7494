"""Schema migrations: a store written at any earlier version opens and is upgraded."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from harness.store import db as store_db
from harness.store.migrations import MIGRATIONS, apply_migrations, schema_version


def test_fresh_store_gets_every_migration(tmp_path: Path) -> None:
    path = tmp_path / "fresh.duckdb"
    with store_db.connect(path) as con:
        assert schema_version(con) == len(MIGRATIONS)
        tables = {
            r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
        }
    expected = {"datasets", "examples", "runs", "outputs", "scores", "run_tags"}
    assert expected | {"schema_migrations"} <= tables


def _store_at(path: Path, version: int) -> duckdb.DuckDBPyConnection:
    """A connection to a new store at ``path`` written at schema ``version``."""
    con = duckdb.connect(str(path))
    con.execute(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR, "
        "applied_at TIMESTAMP DEFAULT now())"
    )
    for number, fn in enumerate(MIGRATIONS[:version], start=1):
        fn(con)
        con.execute(
            "INSERT INTO schema_migrations (version, name) VALUES (?, ?)", [number, fn.__name__]
        )
    return con


@pytest.mark.parametrize("version", range(len(MIGRATIONS)))
def test_store_from_an_earlier_version_is_upgraded(tmp_path: Path, version: int) -> None:
    path = tmp_path / f"v{version}.duckdb"
    _store_at(path, version).close()
    store_db._migrated.discard(path.resolve())
    with store_db.connect(path) as con:
        assert schema_version(con) == len(MIGRATIONS)
        assert apply_migrations(con) == 0  # idempotent


def test_a_version_1_store_with_runs_gets_run_tags(tmp_path: Path) -> None:
    """A store written before tags existed keeps its runs and can tag them."""
    from harness.store.tags import find_run, tag_run

    path = tmp_path / "v1.duckdb"
    con = duckdb.connect(str(path))
    con.execute(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR, "
        "applied_at TIMESTAMP DEFAULT now())"
    )
    MIGRATIONS[0](con)
    con.execute("INSERT INTO schema_migrations (version, name) VALUES (1, 'm001_initial')")
    con.execute(
        "INSERT INTO runs (run_id, dataset, dataset_version, model, status, config, rows_total, "
        "created_at) VALUES ('abc123', 'qa', 'v1', 'echo', 'finished', '{}', 0, now())"
    )
    con.close()
    store_db._migrated.discard(path.resolve())
    tag_run(path, "abc123", "baseline")
    info, note = find_run(path, "baseline")
    assert info.run_id == "abc123" and note is None


def test_reading_a_missing_store_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "absent.duckdb"
    with store_db.connect(path, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM runs").fetchone() == (0,)
    assert not path.exists()


def test_a_locked_store_is_waited_for_then_reported(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "locked.duckdb"
    with store_db.connect(path):
        pass
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
            "print('held', flush=True); time.sleep(30)",
            str(path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        from harness.errors import StoreBusy

        with (
            pytest.raises(StoreBusy, match="held by another process"),
            store_db.connect(path, timeout_s=0.5),
        ):
            pass
    finally:
        holder.kill()
        holder.wait()


def test_a_run_stored_before_migration_2_reads_back_and_resumes(tmp_path: Path) -> None:
    """Version 1 had no reason, failures, owner or mlflow_error: a run written then (also
    one left running by a crash) reads back, and a stale one shows as interrupted."""
    from harness.store.runs import claim_resume, get_run

    path = tmp_path / "v1.duckdb"
    con = duckdb.connect(str(path))
    con.execute(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR, "
        "applied_at TIMESTAMP DEFAULT now())"
    )
    MIGRATIONS[0](con)
    con.execute("INSERT INTO schema_migrations (version, name) VALUES (1, 'm001_initial')")
    for run_id, status in (("old-finished", "finished"), ("old-running", "running")):
        con.execute(
            "INSERT INTO runs (run_id, dataset, dataset_version, model, status, config, "
            "rows_total, errors, created_at) VALUES (?, 'qa', 'v1', 'echo', ?, '{}', 3, 0, "
            "now())",
            [run_id, status],
        )
    con.close()
    store_db._migrated.discard(path.resolve())
    finished = get_run(path, "old-finished")
    assert (finished.status, finished.reason, finished.failures, finished.owner) == (
        "finished",
        None,
        {},
        None,
    )
    assert not finished.stale
    crashed = get_run(path, "old-running")  # no process recorded: it cannot be running
    assert crashed.stale and crashed.status == "interrupted"
    assert crashed.reason == (
        "it was left running by a process that did not record itself; "
        "resume it with `harness run --resume old-running`"
    )
    assert claim_resume(path, "old-running") == set()
    claimed = get_run(path, "old-running")
    assert claimed.status == "running" and not claimed.stale and claimed.owner is not None


def test_a_version_8_store_keeps_its_token_counts_and_takes_larger_ones(tmp_path: Path) -> None:
    from harness.store import runs
    from harness.store.rows import OutputRow

    path = tmp_path / "v8.duckdb"
    con = _store_at(path, 8)
    con.execute(
        "INSERT INTO runs (run_id, dataset, dataset_version, model, status, config, rows_total, "
        "created_at) VALUES ('r1', 'qa', 'v1', 'echo', 'running', '{}', 2, now())"
    )
    con.execute(
        "INSERT INTO outputs (run_id, example_id, output, input_tokens, output_tokens, "
        "created_at) VALUES ('r1', 'e0', 'a', 2147483647, 7, now())"
    )
    con.close()
    store_db._migrated.discard(path.resolve())
    runs.write_batch(path, "r1", [OutputRow("e1", "b", None, 0.1, 2**31, 8, None, None, False)], [])
    with duckdb.connect(str(path), read_only=True) as con:
        stored = con.execute(
            "SELECT example_id, input_tokens, output_tokens FROM outputs ORDER BY example_id"
        ).fetchall()
        kinds = con.execute(
            "SELECT data_type FROM information_schema.columns "
            "WHERE table_name = 'outputs' AND column_name LIKE '%_tokens'"
        ).fetchall()
    assert stored == [("e0", 2**31 - 1, 7), ("e1", 2**31, 8)]
    assert kinds == [("BIGINT",), ("BIGINT",)]
