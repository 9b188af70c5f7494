"""`local-cluster[2,1,1024]`: separate executor JVMs, each with its own Python workers, as
on a real cluster (Spark's own way to test that). One CLI run, with `--verbose`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from spark_helpers import cli_env, harness

from harness.data import import_file
from harness.runner.config import RunConfig
from harness.runner.run import run_eval
from harness.store.runs import load_outputs, load_scores
from harness.testing import FakeLLMServer

pytestmark = pytest.mark.timeout(900)  # three JVMs on a loaded 2-core machine


def test_a_run_on_a_local_cluster_equals_a_local_run(
    fake: FakeLLMServer, home: Path, qa_file: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    (home / "harness.toml").write_text(
        '[spark]\nmaster = "local-cluster[2,1,1024]"\nrows_per_task = 5\n'
    )
    env = cli_env(home, fake)
    assert harness("data", "import", str(qa_file), "--name", "qa", env=env).returncode == 0
    done = harness(
        "run", "--data", "qa", "--model", "openai:/m", "--judge", "faithfulness",
        "--judge-model", "openai:/j", "--metric", "token_f1", "--no-mlflow", "--json",
        "--spark", "--verbose", env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "log4j" in done.stderr  # --verbose: Spark's own lines reach the terminal
    run = json.loads(done.stdout)  # and stdout is still one JSON document
    assert run["calls"]["model"]["requests"] == run["calls"]["judge"]["requests"] == 20
    assert fake.stats()["requests_total"] == 40

    monkeypatch.setenv("OPENAI_BASE_URL", fake.openai_base_url)
    monkeypatch.setenv("OPENAI_API_KEY", env["OPENAI_API_KEY"])
    other = tmp_path / "local"
    other.mkdir()
    import_file(qa_file, name="qa", home=other)
    local = run_eval(
        RunConfig(data="qa", model="openai:/m", judges=["faithfulness"], judge_model="openai:/j",
                  metrics=["token_f1"], mlflow=False),
        home=other,
    )  # fmt: skip
    assert local.metrics == run["metrics"]
    for load in (load_outputs, load_scores):
        here = load(home / "harness.duckdb", run["run_id"]).drop(
            columns=["latency_s"], errors="ignore"
        )
        there = load(other / "harness.duckdb", local.run_id).drop(
            columns=["latency_s"], errors="ignore"
        )
        assert here.astype(str).values.tolist() == there.astype(str).values.tolist()
