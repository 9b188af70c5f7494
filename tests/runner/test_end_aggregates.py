"""A run's aggregates at its end, from its scores' values alone (``stored_aggregates``):
no pandas, and the same numbers as the DataFrame path (``aggregate_scores``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner
from processes import harness_env

from harness.cli import cli

# The judge fails on the rows whose text holds one of these (two of the twenty PubMedQA
# rows): its errors are counted.
FAIL_ON = "Syncope during bathing|Chile's traffic law"

# In a fresh process: the stored run's end, as ``_Run._record`` computes it, then the
# same aggregates through pandas.
END = """
import json, sys
from harness.config import resolve_home
from harness.runner.batch_scores import end_scores
from harness.runner.config import RunConfig
from harness.runner.plan import plan_run

home = resolve_home()
config = RunConfig(
    data="qa", model="python:harness_test_models:answer_some",
    metrics=["exact_match", "token_f1"], judges=["answer_relevance"],
    judge_model="python:harness_test_models:judge_fails_on_text", mlflow=False,
)
plan = plan_run(config, home)
ended = end_scores(plan, home.db_path, sys.argv[1], complete=True)
imported = "pandas" in sys.modules
from harness.runner.summary import aggregate_scores
from harness.store.runs import load_score_values

through_pandas = aggregate_scores(load_score_values(home.db_path, sys.argv[1]))
print(json.dumps([imported, ended.metrics, through_pandas, ended.errors, ended.problems]))
"""


def test_a_plain_runs_end_computes_its_aggregates_without_pandas_and_the_same(
    qa_file: Path, tmp_path: Path
) -> None:
    env = harness_env(tmp_path / "home", HARNESS_TEST_JUDGE_FAIL_TEXT=FAIL_ON)
    runner = CliRunner(env=env)
    done = runner.invoke(cli, ["data", "import", str(qa_file), "--name", "qa"])
    assert done.exit_code == 0, done.stderr
    done = runner.invoke(
        cli,
        [
            "run", "--data", "qa", "--model", "python:harness_test_models:answer_some",
            "--metric", "exact_match", "--metric", "token_f1", "--judge", "answer_relevance",
            "--judge-model", "python:harness_test_models:judge_fails_on_text",
            "--no-mlflow", "--json",
        ],
    )  # fmt: skip
    document = json.loads(done.stdout)
    assert document["metrics"]["answer_relevance"]["errors"] >= 1  # the judge's failures
    child = subprocess.run(
        [sys.executable, "-c", END, document["run_id"]],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    imported, metrics, through_pandas, errors, problems = json.loads(child.stdout)
    assert imported is False
    assert metrics == through_pandas == document["metrics"]
    assert set(metrics) == {"answer_relevance", "exact_match", "token_f1"}
    assert 0 < metrics["token_f1"]["mean"] < 1  # scores that differ from row to row
    assert (errors, problems) == (0, [])  # no metric raised
