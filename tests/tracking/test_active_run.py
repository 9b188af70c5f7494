"""``harness.evaluate`` inside ``with mlflow.start_run():`` logs into that run, on the user's
tracking URI (a real SQLite store set up here); outside one, into the project's own store."""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd
import pytest

import harness

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::DeprecationWarning")


def qa() -> pd.DataFrame:
    return pd.DataFrame(
        {"inputs": ["What is 2+2?", "Capital of France?"], "ground_truth": ["4", "Paris"]}
    )


def answer(row: dict) -> str:
    return {"What is 2+2?": "4"}.get(row["input"], "Lyon")


def test_evaluate_logs_into_the_active_run_on_the_users_tracking_uri(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow

    from harness.runner.mlflow_inline import InlineLogger
    from harness.store import db as store_db

    # The user's run may be on a server: the project's store is not held while it is
    # written (a small run holds it through its end otherwise, harness.runner.run_end).
    held_at_finish: list[bool] = []
    finish = InlineLogger.finish

    def watched(self: InlineLogger, *args: object, **kwargs: object) -> str:
        held_at_finish.append(bool(store_db._held))
        return finish(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(InlineLogger, "finish", watched)
    # MLflow's API logs the table's DataFrame here: the plain table, which only the SQL
    # path writes, is never opened (its first pass reads every score).
    from harness.runner import table_rows

    opened: list[str] = []
    real_open = table_rows.open_table
    monkeypatch.setattr(
        table_rows, "open_table", lambda *a, **k: opened.append("open_table") or real_open(*a, **k)
    )
    user_uri = "sqlite:///" + str(tmp_path / "team-tracking.db")
    # An experiment made on a bare SQLite URI keeps its artifacts in ./mlruns, MLflow's
    # default: under the test's own folder, not the checkout's.
    monkeypatch.chdir(tmp_path)
    mlflow.set_tracking_uri(user_uri)
    try:
        mlflow.set_experiment("team-qa")
        with mlflow.start_run(run_name="nightly") as run:
            mlflow.log_param("model", "my own value")  # the user's param stays as it is
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = harness.evaluate(answer, qa(), targets="ground_truth")
            client = mlflow.MlflowClient(user_uri)
            logged = client.get_run(run.info.run_id)
            assert result.mlflow_run_id == run.info.run_id
            assert logged.info.status == "RUNNING"  # still the user's, to end
            mlflow.log_metric("after_harness", 1.0)  # and still usable
        logged = client.get_run(run.info.run_id)
    finally:
        mlflow.set_tracking_uri(None)
    assert logged.info.status == "FINISHED" and logged.info.run_name == "nightly"
    assert logged.data.metrics["exact_match/mean"] == 0.5
    assert logged.data.metrics["after_harness"] == 1.0
    assert logged.data.params["model"] == "my own value"
    assert logged.data.params["dataset"].startswith("dataframe@")
    assert logged.data.tags["harness.run_id"] == result.run_id
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert "eval_results_table.json" in artifacts
    traces = client.search_traces(locations=[logged.info.experiment_id], run_id=run.info.run_id)
    assert len(traces) == 2  # one per row
    # Nothing went to the project's own store; the rows are in DuckDB with the run's id.
    assert not (home / "mlruns" / "mlflow.db").exists()
    assert held_at_finish == [False]
    assert opened == []
    from harness.store.runs import get_run

    assert get_run(home / "harness.duckdb", result.run_id).mlflow_run_id == run.info.run_id


def test_outside_an_active_run_evaluate_logs_to_the_project_store(home: Path) -> None:
    import mlflow

    assert mlflow.active_run() is None
    result = harness.evaluate(answer, qa(), targets="ground_truth")
    local = mlflow.MlflowClient("sqlite:///" + str(home / "mlruns" / "mlflow.db"))
    assert local.get_run(str(result.mlflow_run_id)).info.status == "FINISHED"


def test_a_password_in_the_users_tracking_uri_is_in_no_message(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The caller's active run is on a server whose URI carries a password, and the server
    is gone: the run is stored, and its MLflow error (printed, stored in DuckDB) names the
    server without the password, in harness's words and in MLflow's own."""
    import socket

    from harness.data import import_dataframe
    from harness.runner.config import RunConfig
    from harness.runner.run import run_eval
    from harness.store.runs import get_run

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    secret = "PW-S3CRET-9f2b7c"
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    import_dataframe(qa().rename(columns={"inputs": "input", "ground_truth": "expected"}),
                     name="qa", home=home)  # fmt: skip
    result = run_eval(RunConfig(data="qa", model="echo", metrics=["exact_match"]), home=home,
                      mlflow_run=(f"http://alice:{secret}@127.0.0.1:{port}", "0" * 32))  # fmt: skip
    assert result.status == "finished"
    [warning] = [w for w in result.warnings if "MLflow logging failed" in w]
    assert f"to MLflow at http://127.0.0.1:{port}: " in warning
    stored = get_run(home / "harness.duckdb", result.run_id).mlflow_error
    assert stored and secret not in stored and secret not in warning
