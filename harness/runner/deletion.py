"""Deleting a run everywhere harness keeps it: its MLflow run, then its DuckDB rows.

The MLflow run is soft-deleted first (reversible: ``mlflow runs restore``), then the rows,
outputs, scores and tags go in one DuckDB transaction (then the counters file a killed
run left: ``harness.store.usage_file``); if the second step fails, running the command
again finishes it. The last run of a sweep takes the sweep's MLflow parent run with it.
The cache keeps every response: a deleted run can be run again for free.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.config import Home
from harness.errors import ConfigError
from harness.store.runs import RunInfo
from harness.store.runs import delete_run as delete_rows
from harness.store.sweeps import sweep_children
from harness.store.tags import find_run
from harness.store.usage_file import UsageFile
from harness.tracking.mlflow_store import DEFAULT_EXPERIMENT
from harness.tracking.run_updates import mark_deleted

__all__ = ["Deleted", "delete_run"]


@dataclass
class Deleted:
    info: RunInfo  # the run as it was
    tags: list[str]  # the tags it had
    mlflow: str  # "deleted", "not logged" (no MLflow run) or "not found" (already gone)
    mlflow_run_ids: list[str]  # the MLflow runs marked deleted
    sweep_parent: str | None = None  # the sweep's MLflow parent, marked deleted with its last run


def delete_run(home: Home, ref: str, *, force: bool = False) -> Deleted:
    """Delete the run ``ref`` (an id, a unique prefix or a tag; a run name only when it
    names one run). A run still ``running`` needs ``force``."""
    info, note = find_run(home.db_path, ref)
    if note:
        raise ConfigError(f"{note}; delete it by its run id")
    if info.status == "running" and not force:
        raise ConfigError(
            f"run {info.run_id} is still running"
            + (f" ({info.owner.describe()})" if info.owner else "")
            + "; use --force to delete it anyway"
        )
    found: list[str] = []
    # A run not (yet) logged may still have an MLflow run: one interrupted, killed, or
    # whose logging failed is found by its tag. A --no-mlflow run never logged has none.
    if info.mlflow_run_id or info.config.get("mlflow", True):
        found = mark_deleted(
            home.tracking_uri,
            info.mlflow_run_id,
            harness_run_id=info.run_id,
            experiment=info.config.get("experiment") or DEFAULT_EXPERIMENT,
        )
    mlflow = "deleted" if found else "not found" if info.mlflow_run_id else "not logged"
    # Before the rows go, so that a failure here leaves the run to delete again.
    parent = _delete_sweep_parent(home, info)
    deleted, tags = delete_rows(home.db_path, info.run_id)
    UsageFile(home.db_path, info.run_id).remove()  # a run killed has left its counters
    return Deleted(deleted, tags, mlflow, found, parent)


def _delete_sweep_parent(home: Home, info: RunInfo) -> str | None:
    """Mark the MLflow parent run of ``info``'s sweep deleted when ``info`` is the last run
    of it left, so no parent stays showing runs that are gone; its id, else None."""
    sweep = info.config.get("sweep") or {}
    parent = sweep.get("parent_mlflow_run_id")
    if not parent or [c.run_id for c in sweep_children(home.db_path, sweep["id"])] != [info.run_id]:
        return None
    found = mark_deleted(
        home.tracking_uri,
        parent,
        harness_run_id=sweep["id"],
        experiment=info.config.get("experiment") or DEFAULT_EXPERIMENT,
    )
    return parent if parent in found else None
