"""A new MLflow store built from the bundled schema is the store MLflow builds: the same
statements, the same rows, and MLflow opens it, logs to it and reads it back as its own."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from harness.tracking.mlflow_schema import create_store, dump_store, schema
from harness.tracking.mlflow_sqlite import VERIFIED_SCHEMAS, installed_mlflow, verified_store
from harness.tracking.mlflow_store import _create_sqlite_store, tracking_uri_for


def built_both_ways(tmp_path: Path) -> tuple[Path, Path]:
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    for home in (ours, theirs):
        (home / "artifacts").mkdir(parents=True)
    create_store(ours / "mlflow.db", ours / "artifacts")
    _create_sqlite_store(theirs / "mlflow.db", theirs / "artifacts")  # MLflow's migrations
    return ours / "mlflow.db", theirs / "mlflow.db"


def master(db_path: Path) -> list[tuple]:
    with sqlite3.connect(db_path) as conn:
        rows = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall()
    return sorted((kind, name, table, clauses(sql)) for kind, name, table, sql in rows)


def clauses(sql: str | None) -> tuple[str, ...] | None:
    """A CREATE TABLE as its head and its top-level clauses, sorted: MLflow's own
    migrations order a table's CHECK constraints differently from one build to the next
    (they come from a set), so two stores MLflow builds differ in that order only."""
    if sql is None or not sql.startswith("CREATE TABLE"):
        return None if sql is None else (sql,)  # an index's columns keep their order
    head, _, body = sql.partition("(")
    parts, depth, current = [], 0, ""
    for char in body.rstrip().removesuffix(")"):
        depth += (char == "(") - (char == ")")
        if char == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    parts.append(current.strip())
    return (head.strip(), *sorted(parts))


def pragmas(db_path: Path) -> list[tuple]:
    with sqlite3.connect(db_path) as conn:
        names = ("user_version", "page_size", "auto_vacuum", "journal_mode", "encoding")
        return [conn.execute(f"PRAGMA {name}").fetchone() for name in names]


def test_the_bundled_schema_is_the_one_the_installed_mlflow_builds(tmp_path: Path) -> None:
    assert installed_mlflow() in VERIFIED_SCHEMAS[schema()["revision"]]
    ours, theirs = built_both_ways(tmp_path)
    assert master(ours) == master(theirs)  # every table, index (automatic ones too), trigger
    assert len(master(ours)) > 200
    assert pragmas(ours) == pragmas(theirs)
    mine, mlflows = dump_store(ours), dump_store(theirs)
    assert mine["revision"] == mlflows["revision"] == schema()["revision"]
    # (in an order of their own: MLflow's builds differ in the order of indexes, too)
    assert sorted(map(clauses, mine["statements"])) == sorted(map(clauses, mlflows["statements"]))
    for dumped, home in ((mine, ours.parent), (mlflows, theirs.parent)):
        (default,) = dumped["rows"]["experiments"]
        assert default["artifact_location"] == (home / "artifacts" / "0").as_posix()
        assert default["creation_time"] == default["last_update_time"] > 1_700_000_000_000
        default.update(artifact_location=None, creation_time=None, last_update_time=None)
    assert mine["rows"] == mlflows["rows"]


def test_mlflow_opens_logs_to_and_reads_a_store_built_from_the_schema(tmp_path: Path) -> None:
    # In a process of its own: what MLflow does when a user opens the store later.
    home = tmp_path / "home"
    uri = tracking_uri_for(home)
    db_path = verified_store(uri)  # builds the store: it did not exist
    assert db_path is not None and db_path.is_file()
    code = f"""
import mlflow
from mlflow.tracking import MlflowClient
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
store = SqlAlchemyStore({uri!r}, {(db_path.parent / "artifacts").as_posix()!r})
client = MlflowClient({uri!r})
default = client.get_experiment("0")
experiment = client.create_experiment("checked")
run = client.create_run(experiment, tags={{"t": "v"}})
client.log_metric(run.info.run_id, "m", 0.5)
client.set_terminated(run.info.run_id)
back = client.get_run(run.info.run_id)
print(default.name, default.artifact_location.endswith("/artifacts/0"), back.data.metrics,
      back.data.tags["t"], back.info.status, len(client.search_experiments()))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split("\n")[-2] == "Default True {'m': 0.5} v FINISHED 2"


def test_a_store_another_process_linked_first_is_kept(tmp_path: Path) -> None:
    (tmp_path / "artifacts").mkdir()
    db_path = tmp_path / "mlflow.db"
    create_store(db_path, tmp_path / "artifacts")
    with sqlite3.connect(db_path) as conn:
        conn.execute("UPDATE experiments SET name = 'first' WHERE experiment_id = 0")
    create_store(db_path, tmp_path / "artifacts")  # loses the race: the first store stays
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT name FROM experiments").fetchall() == [("first",)]
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.parametrize("mode", ["MLFLOW_SQL_TRACE_ROLLUPS_ENABLED", "MLFLOW_ENABLE_WORKSPACES"])
def test_no_store_is_built_in_modes_the_sql_path_does_not_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    monkeypatch.setenv(mode, "true")
    uri = tracking_uri_for(tmp_path / "home")
    assert verified_store(uri) is None
    assert not (tmp_path / "home" / "mlruns" / "mlflow.db").exists()
