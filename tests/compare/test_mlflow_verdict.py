"""The verdict on the candidate's MLflow run, and `runs delete` in MLflow (a real local store)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from harness.cli import cli
from harness.config import resolve_home


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_check_tags_the_candidates_mlflow_run_and_delete_marks_it_deleted(
    qa_file: Path, home: Path
) -> None:
    from mlflow.tracking import MlflowClient

    assert invoke("data", "import", str(qa_file), "--name", "qa")[0] == 0
    model = ("--model", "python:harness.baselines:context_overlap", "--metric", "token_f1")
    code, out, err = invoke("run", "--data", "qa", *model, "--no-mlflow", "--json")
    assert code == 0, err
    invoke("runs", "tag", json.loads(out)["run_id"], "baseline")
    code, out, err = invoke(
        "run", "--data", "qa", *model, "--no-traces", "--json",
        "--check", "--baseline", "baseline", "--max-drop", "token_f1=0.01",
    )  # fmt: skip
    assert code == 0, err
    doc = json.loads(out)
    mlflow_run_id = doc["run"]["mlflow_run_id"]
    client = MlflowClient(resolve_home(home).tracking_uri)
    run = client.get_run(mlflow_run_id)
    assert run.data.tags["harness.check"] == "pass"
    assert run.data.tags["harness.check.summary"] == "the 1 gate passed"
    artifact = client.download_artifacts(mlflow_run_id, "harness/check.json", str(home))
    assert json.loads(Path(artifact).read_text(encoding="utf-8")) == doc["check"]

    # A later check of the same run replaces the verdict; --no-mlflow leaves it alone.
    gate = ("--baseline", "baseline", "--max-drop", "token_f1=0")
    code, _, err = invoke("check", doc["run"]["run_id"], *gate)
    assert code == 3 and f"verdict tagged on MLflow run {mlflow_run_id}" in err
    assert client.get_run(mlflow_run_id).data.tags["harness.check"] == "undecided"
    code, _, err = invoke("check", doc["run"]["run_id"], "--min", "token_f1=0.9", "--no-mlflow")
    assert code == 1 and "verdict tagged" not in err
    assert client.get_run(mlflow_run_id).data.tags["harness.check"] == "undecided"

    code, out, _ = invoke("runs", "delete", doc["run"]["run_id"])
    assert code == 0 and f"MLflow run {mlflow_run_id} marked deleted" in out
    assert client.get_run(mlflow_run_id).info.lifecycle_stage == "deleted"
