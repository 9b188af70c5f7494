"""The caller's own LoggedModel, which a run's MLflow results link to, checked before the run.

``mlflow.evaluate(model_id=...)``, or an active model (``mlflow.set_active_model``), links the
evaluation's metrics, its model input and its traces to that LoggedModel; ``harness.evaluate``
does the same (``RunRecord.model_id``), in the store the run logs to: the caller's active
MLflow run's, else the project's own. A model of another store is not found there, so the
run is refused before it starts, saying where it looked and what to do.
"""

from __future__ import annotations

import contextlib
import sqlite3

from harness.errors import ConfigError, TrackingError
from harness.tracking.mlflow_store import DB_FILE, artifact_root_for
from harness.tracking.sync_target import display_uri, uri_secrets

__all__ = ["check_logged_model", "check_resumed_link"]


_EVALUATE_ADVICE = (
    "harness.evaluate logs outside an active MLflow run: call it inside `with "
    "mlflow.start_run():` on the tracking URI that holds the model (as mlflow.evaluate "
    "logs there)"
)


def check_logged_model(
    tracking_uri: str, model_id: str, *, named: str, own_store: bool, advice: str | None = None
) -> None:
    """Raise ``ConfigError`` unless ``model_id`` is a live LoggedModel at ``tracking_uri``.

    ``named`` says how the caller named it (``model_id='m-...'``, the active model,
    ``--model-id``); ``own_store``: ``tracking_uri`` is the project's store (read with
    ``sqlite3``, no MLflow import), not the caller's active run's (read with the MLflow the
    caller has loaded). ``advice`` ends the refusal for the project's store: who logs there
    and what to do (default: harness.evaluate's).
    """
    shown = display_uri(tracking_uri)
    if own_store:
        if _in_project_store(tracking_uri, model_id):
            return
        raise ConfigError(
            f"{named} is not a LoggedModel in harness's MLflow store ({shown}), where "
            f"{advice or _EVALUATE_ADVICE}"
        )
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from harness.tracking.mlflow_store import mapped_errors

    with mapped_errors(f"cannot read LoggedModel {model_id} at {shown}", uri_secrets(tracking_uri)):
        try:
            MlflowClient(tracking_uri).get_logged_model(model_id)
        except MlflowException as e:
            if e.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
            raise ConfigError(
                f"{named} is not a LoggedModel in the active MLflow run's tracking store "
                f"({shown}): create it there (mlflow.create_external_model), or pass the id "
                "of one it holds"
            ) from None


def check_resumed_link(tracking_uri: str, model_id: str, run_id: str, *, doing: str) -> None:
    """Raise ``ConfigError`` unless the project's store still holds ``model_id``, the model
    the stored run ``run_id`` links to, before ``doing`` (a resume, ``runs log``) stores or
    logs anything: the model may have been deleted since, or the run logged into an active
    MLflow run of another store, and logging would fail once the rows are stored."""
    if _in_project_store(tracking_uri, model_id):
        return
    raise ConfigError(
        f"run {run_id} links its MLflow results to LoggedModel {model_id} (model_id=), "
        f"which harness's MLflow store ({display_uri(tracking_uri)}) does not hold: it was "
        "deleted, or the run was logged into an active MLflow run of another store; "
        f"{doing}: start a new run instead, with harness.evaluate(..., model_id=...) where "
        "the model is (its calls come from the cache)"
    )


def _in_project_store(tracking_uri: str, model_id: str) -> bool:
    """Whether the project's SQLite store holds ``model_id``, not deleted."""
    root = artifact_root_for(tracking_uri)
    if root is None or not (root.parent / DB_FILE).is_file():
        return False
    db_path = root.parent / DB_FILE
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)) as conn:
            row = conn.execute(
                "SELECT 1 FROM logged_models WHERE model_id = ? AND lifecycle_stage != 'deleted'",
                (model_id,),
            ).fetchone()
    except sqlite3.Error as e:
        raise TrackingError(f"cannot read the MLflow store {db_path}: {e}") from e
    return row is not None
