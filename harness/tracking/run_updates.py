"""Changes to a run already in MLflow: a check's verdict, and deletion.

- ``tag_check``: the tag ``harness.check`` (``pass``, ``fail`` or ``undecided``) with a
  one-line summary in ``harness.check.summary``, and the check as artifacts
  ``harness/check.json`` (what ``harness check --json`` prints) and ``harness/check.md``, so
  the run shows its verdict in the MLflow UI and a search (``tags.harness.check = 'fail'``)
  finds the runs that failed.
- ``mark_deleted``: MLflow's soft delete (the run's ``lifecycle_stage`` becomes ``deleted``;
  ``mlflow gc`` removes it for good, ``mlflow runs restore`` brings it back), of the MLflow
  run DuckDB recorded and of any other tagged with the harness run's id (an interrupted
  run's, which DuckDB learns only when the run finishes).

Both act on the project's own store and never create one: without a store there is no run
to change. ``import mlflow`` costs about a second, so it happens inside the functions.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from harness.errors import TrackingError
from harness.tracking.mlflow_store import (
    DB_FILE,
    artifact_root_for,
    mapped_errors,
    open_store,
)

__all__ = ["CHECK_ARTIFACT", "CHECK_TAG", "mark_deleted", "tag_check"]

CHECK_TAG = "harness.check"
CHECK_ARTIFACT = "harness/check.json"
CHECK_MARKDOWN = "harness/check.md"


def _existing_store(tracking_uri: str) -> bool:
    root = artifact_root_for(tracking_uri)
    return root is None or (root.parent / DB_FILE).exists()


def tag_check(
    tracking_uri: str,
    mlflow_run_id: str,
    *,
    outcome: str,
    summary: str,
    document: dict[str, Any],
    markdown: str,
) -> None:
    """Record a check's verdict on the MLflow run ``mlflow_run_id``.

    Raises TrackingError when the store or the run is not there, or MLflow fails.
    """
    if not _existing_store(tracking_uri):
        raise TrackingError(f"no MLflow store at {tracking_uri}, so no run to tag")
    from mlflow.utils.validation import MAX_TAG_VAL_LENGTH

    client, _ = open_store(tracking_uri)
    with mapped_errors(f"recording the check on MLflow run {mlflow_run_id}"):
        client.set_tag(mlflow_run_id, CHECK_TAG, outcome)
        client.set_tag(mlflow_run_id, f"{CHECK_TAG}.summary", summary[:MAX_TAG_VAL_LENGTH])
        with tempfile.TemporaryDirectory(prefix="harness-check-") as tmp:
            folder = Path(tmp)
            (folder / Path(CHECK_ARTIFACT).name).write_text(
                json.dumps(document, indent=2, ensure_ascii=False, default=str), encoding="utf-8"
            )
            (folder / Path(CHECK_MARKDOWN).name).write_text(markdown, encoding="utf-8")
            client.log_artifacts(mlflow_run_id, tmp, artifact_path=str(Path(CHECK_ARTIFACT).parent))


def mark_deleted(
    tracking_uri: str, mlflow_run_id: str | None, *, harness_run_id: str, experiment: str
) -> list[str]:
    """Soft-delete a harness run's MLflow runs; return their ids ([] when there are none).

    Those are ``mlflow_run_id`` (the run DuckDB recorded) and every run in ``experiment``
    tagged with ``harness_run_id``: a run interrupted, killed or whose logging failed has an
    MLflow run (with the traces of its rows) that DuckDB does not know yet.
    """
    if not _existing_store(tracking_uri):
        return []
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode

    from harness.tracking.mlflow_resume import find_logged_runs

    client, _ = open_store(tracking_uri)
    deleted = []
    with mapped_errors(f"deleting the MLflow run of run {harness_run_id}"):
        found = client.get_experiment_by_name(experiment)
        tagged = find_logged_runs(client, found.experiment_id, harness_run_id) if found else []
        ids = [mlflow_run_id] if mlflow_run_id else []
        ids += [run.info.run_id for run in tagged if run.info.run_id not in ids]
        for run_id in ids:
            try:
                client.delete_run(run_id)
            except MlflowException as e:
                if e.error_code != ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
                    raise
            else:
                deleted.append(run_id)
    return deleted
