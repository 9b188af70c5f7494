"""A new MLflow SQLite store built from the schema MLflow itself builds, without MLflow.

MLflow creates a store by importing itself (~4 s of CPU for MLflow 3.17) and running its
alembic migrations (~1.5 s more): the slowest part of a project's first run, and of every
test that starts in a fresh home. For the schema revisions in
``harness.tracking.mlflow_sqlite.VERIFIED_SCHEMAS``, ``mlflow_schema.json`` holds what a
new store contains once MLflow has built it: every ``CREATE`` statement of its
``sqlite_master`` (tables, indexes, triggers, in MLflow's order) and the three rows MLflow
writes (the alembic revision, the default workspace, the "Default" experiment).
``create_store`` replays them into a new file with ``sqlite3``.

tests/tracking/test_mlflow_schema.py builds a store both ways and compares them statement
by statement and row by row, then has MLflow open and use the one built here. For a new
MLflow version: ``python -m harness.tracking.mlflow_schema`` writes the file from a store
the installed MLflow builds (see ``harness.tracking.mlflow_sqlite`` for the rest).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import tempfile
import time
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = ["SCHEMA_FILE", "create_store", "dump_store", "schema"]

SCHEMA_FILE = "mlflow_schema.json"
DEFAULT_EXPERIMENT = "0"  # MLflow's "Default" experiment, created with every store


def schema() -> dict[str, Any]:
    """The bundled schema: ``revision``, ``statements`` and ``rows`` (table -> rows)."""
    text = resources.files("harness.tracking").joinpath(SCHEMA_FILE).read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def create_store(db_path: Path, artifact_root: Path) -> None:
    """Build a new store at ``db_path`` as MLflow would, its "Default" experiment keeping
    artifacts under ``artifact_root``. Atomic: built in a temporary file and linked into
    place, so a crash leaves no half-built store and a store another process linked first
    is kept (as ``harness.tracking.mlflow_store._create_sqlite_store`` does)."""
    bundled = schema()
    db_path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{db_path.name}.", suffix=".tmp", dir=db_path.parent)
    os.close(handle)
    temporary = Path(name)
    try:
        conn = sqlite3.connect(temporary, isolation_level=None)
        try:
            conn.execute("PRAGMA synchronous = OFF")  # durable once linked: closed first
            conn.execute("BEGIN")
            for statement in bundled["statements"]:
                conn.execute(statement)
            now = int(time.time() * 1000)
            for table, rows in bundled["rows"].items():
                for row in rows:
                    values = dict(row)
                    if table == "experiments":  # where and when this store was made
                        values.update(
                            artifact_location=(artifact_root / DEFAULT_EXPERIMENT).as_posix(),
                            creation_time=now,
                            last_update_time=now,
                        )
                    columns = ", ".join(values)
                    marks = ", ".join("?" for _ in values)
                    conn.execute(
                        f"INSERT INTO {table} ({columns}) VALUES ({marks})", list(values.values())
                    )
            conn.execute("COMMIT")
        finally:
            conn.close()
        with contextlib.suppress(FileExistsError):  # another process's store won: use it
            os.link(temporary, db_path)
    finally:
        temporary.unlink(missing_ok=True)


def dump_store(db_path: Path) -> dict[str, Any]:
    """What a new store built by MLflow holds, in the form of the bundled file."""
    with contextlib.closing(sqlite3.connect(db_path)) as conn:
        conn.row_factory = sqlite3.Row
        revision = conn.execute("SELECT version_num FROM alembic_version").fetchone()[0]
        statements = [
            row["sql"]
            for row in conn.execute("SELECT sql FROM sqlite_master ORDER BY rowid")
            if row["sql"] is not None and not row["sql"].startswith("CREATE TABLE sqlite_")
        ]
        rows: dict[str, list[dict[str, Any]]] = {}
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            if table.startswith("sqlite_"):
                continue
            found = [dict(row) for row in conn.execute(f"SELECT * FROM '{table}'")]
            if found:
                rows[table] = found
    return {"revision": revision, "statements": statements, "rows": rows}


def _write_from_installed_mlflow(target: Path) -> None:
    """Write ``target`` from a store the installed MLflow builds (for a new version)."""
    from harness.tracking.mlflow_store import _create_sqlite_store

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "artifacts"
        root.mkdir()
        _create_sqlite_store(Path(folder) / "mlflow.db", root)
        dumped = dump_store(Path(folder) / "mlflow.db")
    for row in dumped["rows"].get("experiments", []):  # filled in by create_store
        row.update(artifact_location=None, creation_time=None, last_update_time=None)
    target.write_text(json.dumps(dumped, indent=1, sort_keys=True) + "\n", encoding="utf-8")


if __name__ == "__main__":
    _write_from_installed_mlflow(Path(__file__).with_name(SCHEMA_FILE))
    print(f"wrote {Path(__file__).with_name(SCHEMA_FILE)}")
