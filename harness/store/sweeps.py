"""Finding a sweep's child runs in DuckDB.

A sweep has no table of its own: each child run stores ``config["sweep"]`` (the sweep's
id, the values of its point and the MLflow parent run's id), so the children are the
runs whose stored config names the sweep.
"""

from __future__ import annotations

from pathlib import Path

from harness.store.db import connect
from harness.store.runs import _RUN_COLUMNS, RunInfo, _run_info

__all__ = ["sweep_children"]


def sweep_children(db_path: Path, ref: str) -> list[RunInfo]:
    """The runs of the sweep ``ref`` names (its id, or its MLflow parent run's id), in the
    order they ran; [] when no run belongs to such a sweep."""
    sql = (
        f"SELECT {_RUN_COLUMNS} FROM runs r "
        "WHERE json_extract_string(r.config, '$.sweep.id') = ? "
        "OR json_extract_string(r.config, '$.sweep.parent_mlflow_run_id') = ? "
        "ORDER BY r.created_at, r.run_id"
    )
    with connect(db_path, read_only=True) as con:
        return [_run_info(row, db_path) for row in con.execute(sql, [ref, ref]).fetchall()]
