"""A sweep's parent run in MLflow: opened before its children run, finished with their
comparison table and the best of their metrics.

Each child run names the parent in its ``RunRecord.parent_run_id`` (``mlflow_log``).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.tracking.mlflow_store import (
    DEFAULT_EXPERIMENT,
    epoch_ms,
    get_or_create_experiment,
    mapped_errors,
    mlflow_params,
    open_store,
    user_name,
)

if TYPE_CHECKING:
    import pandas

__all__ = [
    "SWEEP_TABLE_ARTIFACT",
    "SWEEP_TAG",
    "finish_parent_run",
    "parent_run_deleted",
    "parent_run_status",
    "start_parent_run",
]

SWEEP_TABLE_ARTIFACT = "sweep_comparison.json"
SWEEP_TAG = "harness.sweep"


def start_parent_run(
    *,
    tracking_uri: str,
    experiment: str,
    run_name: str | None,
    params: dict[str, Any],
    started_at: float | None = None,
) -> str:
    """Create the RUNNING parent run of a sweep (children name it in ``RunRecord``)."""
    import time

    from mlflow.utils.mlflow_tags import (
        MLFLOW_LOGGED_ARTIFACTS,
        MLFLOW_SOURCE_NAME,
        MLFLOW_SOURCE_TYPE,
        MLFLOW_USER,
    )

    with mapped_errors(f"cannot start a sweep run in MLflow at {tracking_uri}"):
        client, store = open_store(tracking_uri)
        experiment_entity = get_or_create_experiment(
            client, store, experiment or DEFAULT_EXPERIMENT
        )
        run = client.create_run(
            experiment_entity.experiment_id,
            start_time=epoch_ms(started_at or time.time()),
            run_name=run_name,
            tags={
                SWEEP_TAG: "parent",
                MLFLOW_USER: user_name(),
                MLFLOW_SOURCE_NAME: "harness",
                MLFLOW_SOURCE_TYPE: "LOCAL",
                MLFLOW_LOGGED_ARTIFACTS: json.dumps(
                    [{"path": SWEEP_TABLE_ARTIFACT, "type": "table"}]
                ),
            },
        )
        client.log_batch(run.info.run_id, params=mlflow_params(params))
    return run.info.run_id


def parent_run_status(run_id: str, *, tracking_uri: str) -> str | None:
    """The parent run's status (``FINISHED``, ``KILLED``, ``RUNNING``, ...); None when it
    is deleted or gone from the store."""
    from mlflow.exceptions import MlflowException

    with mapped_errors(f"cannot read sweep run {run_id} in MLflow at {tracking_uri}"):
        client, _ = open_store(tracking_uri)
        try:
            run = client.get_run(run_id)
        except MlflowException as e:
            if e.error_code == "RESOURCE_DOES_NOT_EXIST":
                return None
            raise
        return None if run.info.lifecycle_stage == "deleted" else str(run.info.status)


def parent_run_deleted(run_id: str, *, tracking_uri: str) -> bool:
    """Whether the parent run ``run_id`` is deleted (or gone from the store): by
    `harness runs delete` of the sweep's last run so far, or in MLflow, while it ran."""
    from mlflow.exceptions import MlflowException

    with mapped_errors(f"cannot read sweep run {run_id} in MLflow at {tracking_uri}"):
        client, _ = open_store(tracking_uri)
        try:
            run = client.get_run(run_id)
        except MlflowException as e:
            if e.error_code == "RESOURCE_DOES_NOT_EXIST":  # deleted for good (`mlflow gc`)
                return True
            raise
        return bool(run.info.lifecycle_stage == "deleted")


def finish_parent_run(
    run_id: str,
    *,
    tracking_uri: str,
    table: pandas.DataFrame,
    metrics: dict[str, float],
    tags: dict[str, str] | None = None,
    status: str = "FINISHED",
) -> None:
    """Log a sweep's comparison table, best metrics and tags, and end its parent run."""
    import math
    import time

    from mlflow.entities import Metric, RunTag

    with mapped_errors(f"cannot finish sweep run {run_id} in MLflow at {tracking_uri}"):
        client, _ = open_store(tracking_uri)
        now = epoch_ms(time.time())
        client.log_batch(
            run_id,
            metrics=[
                Metric(k, float(v), now, 0)
                for k, v in metrics.items()
                if v is not None and not math.isnan(float(v))
            ],
            tags=[RunTag(k, v) for k, v in (tags or {}).items()],
        )
        with tempfile.TemporaryDirectory(prefix="harness-sweep-") as tmp:
            table.to_json(
                Path(tmp) / SWEEP_TABLE_ARTIFACT, orient="split", index=False, date_format="iso"
            )
            client.log_artifacts(run_id, tmp)
        client.set_terminated(run_id, status, end_time=now)
