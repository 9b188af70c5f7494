"""`harness runs log RUN_ID`: MLflow catches up from DuckDB, idempotently, never twice."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from processes import mlflow_runs

from harness.cli import cli
from harness.config import resolve_home
from harness.runner.config import RunConfig
from harness.runner.mlflow_records import head_record, rows_record
from harness.runner.plan import plan_run
from harness.store.runs import get_run, list_runs, load_outputs, load_scores
from harness.tracking.mlflow_resume import ResumingLogger

RUN = (
    "run", "--data", "qa", "--model", "python:harness_test_models:answer_expected",
    "--metric", "exact_match", "--judge", "answer_relevance", "--judge-model",
    "python:harness_test_models:judge_messages", "--json",
)  # fmt: skip


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def qa(qa_file: Path) -> str:
    code, out, err = invoke("data", "import", str(qa_file), "--name", "qa", "--json")
    assert code == 0, err
    return str(json.loads(out)["ref"])


def store_contents(home: Path) -> dict[str, list[Any]]:
    """Every row of every table of the MLflow store, sorted: what "changes nothing" means."""
    con = sqlite3.connect(home / "mlruns" / "mlflow.db")
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {t: sorted(map(repr, con.execute(f'SELECT * FROM "{t}"'))) for t in tables}
    finally:
        con.close()


def test_logging_a_logged_run_changes_nothing(qa: str, home: Path) -> None:
    code, out, err = invoke(*RUN)
    assert code == 0, err
    run = json.loads(out)
    before = store_contents(home)
    code, out, err = invoke("runs", "log", run["run_id"], "--json")
    assert code == 0, err
    logged = json.loads(out)
    assert logged["mlflow_run_id"] == run["mlflow_run_id"] and logged["resumed"]
    assert (logged["traces"], logged["traces_written"]) == (20, 0)
    assert store_contents(home) == before
    code, out, _ = invoke("runs", "log", run["run_id"])
    assert code == 0 and out == (  # it said "completed; 0 trace(s) written, 20 in all"
        f"run {run['run_id']}: MLflow run {run['mlflow_run_id']} holds it already "
        "(20 traces, none missing)\n"
    )
    assert store_contents(home) == before


def listed_mlflow_state(run_id: str) -> str:
    """The `mlflow` column of `harness runs list` for the run."""
    code, out, _ = invoke("runs", "list")
    assert code == 0
    header, _, *rows = out.splitlines()
    [row] = [row.split("│") for row in rows if row.startswith(run_id)]
    return row[[c.strip() for c in header.split("┃")].index("mlflow")].strip()


def test_a_run_never_logged_is_logged_once(qa: str, home: Path) -> None:
    code, out, err = invoke(*RUN, "--no-mlflow")
    assert code == 0, err
    run_id = json.loads(out)["run_id"]
    assert listed_mlflow_state(run_id) == "off"
    code, out, err = invoke("runs", "log", run_id, "--json")
    assert code == 0, err
    first = json.loads(out)
    assert not first["resumed"] and first["traces_written"] == first["traces"] == 20
    after = store_contents(home)
    code, out, err = invoke("runs", "log", run_id, "--json")
    assert code == 0 and json.loads(out)["traces_written"] == 0
    assert store_contents(home) == after
    assert mlflow_runs(home, run_id) == [(first["mlflow_run_id"], "FINISHED", "active")]
    assert listed_mlflow_state(run_id) == "logged"  # was "off", from --no-mlflow


def test_a_run_is_logged_by_its_tag(qa: str, home: Path) -> None:
    code, out, err = invoke(*RUN, "--no-mlflow")
    assert code == 0, err
    run_id = json.loads(out)["run_id"]
    assert invoke("runs", "tag", run_id, "nightly")[0] == 0
    code, out, err = invoke("runs", "log", "nightly", "--json")
    assert code == 0, err
    logged = json.loads(out)
    assert logged["run_id"] == run_id and logged["traces_written"] == 20
    code, _, err = invoke("runs", "log", "no-such-run")
    assert code == 2 and err.startswith("error: no run, tag or run name 'no-such-run'")


def test_a_partly_logged_run_is_completed_not_duplicated(qa: str, home: Path) -> None:
    code, out, err = invoke(*RUN, "--no-mlflow")
    assert code == 0, err
    run_id = json.loads(out)["run_id"]
    # What a run killed mid-way leaves: an MLflow run with the traces of some rows, KILLED.
    project = resolve_home(home)
    info = get_run(project.db_path, run_id)
    plan = plan_run(RunConfig.from_dict(info.config), project)
    head = head_record(plan, run_id, info.created_at.timestamp())
    outputs, scores = load_outputs(project.db_path, run_id), load_scores(project.db_path, run_id)
    half = outputs["id"].iloc[:8]
    partial = ResumingLogger(head, tracking_uri=project.tracking_uri, register=True)
    partial.add_rows(
        rows_record(head, outputs[outputs["id"].isin(half)], scores, plan.judge_models)
    )
    partial.stop("KILLED")
    [(mlflow_run_id, status, _)] = mlflow_runs(home, run_id)
    assert status == "KILLED"

    code, out, err = invoke("runs", "log", run_id, "--json")
    assert code == 0, err
    logged = json.loads(out)
    assert logged["mlflow_run_id"] == mlflow_run_id and logged["resumed"]
    assert (logged["traces_written"], logged["traces"]) == (12, 20)
    assert mlflow_runs(home, run_id) == [(mlflow_run_id, "FINISHED", "active")]
    code, out, _ = invoke("runs", "list", "--json")
    assert json.loads(out)[0]["mlflow_run_id"] == mlflow_run_id


def test_an_unfinished_run_is_resumed_not_logged(qa: str, home: Path) -> None:
    code, _, _ = invoke(
        "run", "--data", "qa", "--model", "openai:/gpt-test", "--cache", "replay", "--no-mlflow"
    )
    assert code == 1
    code, out, _ = invoke("runs", "list", "--json")
    run_id = json.loads(out)[0]["run_id"]
    code, _, err = invoke("runs", "log", run_id)
    assert code == 2
    assert err == (
        f"error: run {run_id} is failed, not finished: `harness run --resume {run_id}` "
        "finishes it and logs it to MLflow\n"
    )


def test_a_worker_killed_before_the_runs_end_leaves_a_finished_run_to_log(
    qa: str, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The MLflow worker is SIGKILLed (as the OOM killer would) just before the run's end
    reaches it: the run is finished in DuckDB, the error names MLflow's logging, and `runs
    log` completes the MLflow run. The dead worker's broken pipe had failed the run and
    blamed harness.duckdb ("fix that, then harness run --resume")."""
    import os
    import signal

    from harness.runner.mlflow_worker import MlflowWorker

    finish = MlflowWorker.finish

    def killed_first(self: MlflowWorker, *args: Any, **kwargs: Any) -> str:
        os.kill(self._process.pid, signal.SIGKILL)
        self._process.wait()
        return finish(self, *args, **kwargs)

    monkeypatch.setattr(MlflowWorker, "finish", killed_first)
    code, out, err = invoke(*RUN)
    assert code == 74, err  # the environment failed: MLflow's, not the store's
    assert err.startswith("error: the run is stored, but logging it to MLflow failed: the "
                          "MLflow logging process died")  # fmt: skip
    assert "harness.duckdb" not in err
    (stored,) = list_runs(resolve_home(home).db_path)
    assert stored.status == "finished" and stored.mlflow_pending and stored.rows_done == 20
    assert f"harness runs log {stored.run_id}" in err
    monkeypatch.setattr(MlflowWorker, "finish", finish)
    code, out, err = invoke("runs", "log", stored.run_id, "--json")
    assert code == 0, err
    assert json.loads(out)["traces"] == 20
    assert not get_run(resolve_home(home).db_path, stored.run_id).mlflow_pending
