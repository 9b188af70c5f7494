"""`harness run --spark-remote` against a real Spark Connect server (see conftest.py).

Every run is a `harness` process, as a user starts it; the executors are the server's and
call the fake LLM server on 127.0.0.1, so what was sent is what the server received.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest
from spark_helpers import KEY, cli_env, harness

from harness.testing import FakeLLMServer, SparkConnectServer

pytestmark = pytest.mark.timeout(900)  # the first test also waits for the server to start

RUN = ["--model", "openai:/m", "--judge", "correctness", "--judge-model", "openai:/j",
       "--metric", "token_f1", "--no-mlflow", "--json"]  # fmt: skip


def stored(home: Path, run_id: str) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    con = duckdb.connect(str(home / "harness.duckdb"), read_only=True)
    try:
        outputs = con.execute(
            "SELECT example_id, output, error, request_key, cached FROM outputs "
            "WHERE run_id = ? ORDER BY example_id",
            [run_id],
        ).fetchall()
        scores = con.execute(
            "SELECT example_id, metric, value, label, rationale, request_key FROM scores "
            "WHERE run_id = ? ORDER BY example_id, metric",
            [run_id],
        ).fetchall()
    finally:
        con.close()
    return outputs, scores


def import_qa(home: Path, qa_file: Path, env: dict[str, str]) -> None:
    done = harness("data", "import", str(qa_file), "--name", "qa", env=env)
    assert done.returncode == 0, done.stderr


def test_a_run_on_spark_connect_equals_a_local_run_and_its_rerun_needs_no_spark(
    connect_server: SparkConnectServer,
    fake: FakeLLMServer,
    home: Path,
    qa_file: Path,
    tmp_path: Path,
) -> None:
    env = cli_env(home, fake)
    import_qa(home, qa_file, env)
    cold = harness("run", "--data", "qa", *RUN, "--spark-remote", connect_server.url, env=env)
    assert cold.returncode == 0, cold.stderr
    # Quiet: no pyspark warning, JVM or log line reaches the terminal (stderr is not a tty,
    # so there is no progress bar either).
    assert cold.stderr == ""
    run = json.loads(cold.stdout)
    assert run["rows_done"] == 20 and run["errors"] == 0
    assert run["calls"]["model"]["requests"] == run["calls"]["judge"]["requests"] == 20
    assert fake.stats()["requests_total"] == 40

    # The same run without Spark, in another home, stores the same rows and metrics.
    other = tmp_path / "local-home"
    other.mkdir()
    local_env = cli_env(other, fake)
    import_qa(other, qa_file, local_env)
    local = harness("run", "--data", "qa", *RUN, env=local_env)
    assert local.returncode == 0, local.stderr
    assert json.loads(local.stdout)["metrics"] == run["metrics"]
    assert stored(other, json.loads(local.stdout)["run_id"]) == stored(home, run["run_id"])

    # The executors' answers are in the project's cache: the rerun sends nothing and opens
    # no Spark session at all (the URL below is a closed port).
    fake.reset()
    closed = f"sc://127.0.0.1:{_closed_port()}"
    again = harness("run", "--data", "qa", *RUN, "--spark-remote", closed, env=env)
    assert again.returncode == 0, again.stderr
    rerun = json.loads(again.stdout)
    assert rerun["calls"]["model"]["requests"] == rerun["calls"]["judge"]["requests"] == 0
    assert rerun["calls"]["judge"]["cache_hits"] == 20
    assert rerun["metrics"] == run["metrics"]
    assert fake.stats()["requests_total"] == 0
    outputs, _ = stored(home, rerun["run_id"])
    assert [o[:2] for o in outputs] == [o[:2] for o in stored(home, run["run_id"])[0]]

    # A Spark run that does need the closed port says so in one line, exit 74 (the
    # environment's fault), and how to resume (the run exists: its driver pass came first).
    fresh = harness("run", "--data", "qa", *RUN[:-4], "--model", "openai:/other",
                    "--spark-remote", closed, env=env)  # fmt: skip
    assert fresh.returncode == 74
    [line] = fresh.stderr.strip().splitlines()
    failed_id = line.rsplit("--resume ", 1)[-1].split("`")[0]
    assert line == (
        f"error: cannot reach the Spark Connect server at {closed}: Connection refused; "
        f"fix that, then `harness run --resume {failed_id}`"
    )
    assert failed_id not in (run["run_id"], rerun["run_id"])


def test_the_probe_stops_a_run_whose_executors_lack_the_key_before_any_request(
    connect_server: SparkConnectServer, fake: FakeLLMServer, home: Path, qa_file: Path
) -> None:
    # The driver has the key; the server's executors do not, as on a cluster whose
    # environment was never given the secret.
    env = cli_env(
        home,
        fake,
        ANTHROPIC_API_KEY="sk-ant-driver-only",
        ANTHROPIC_BASE_URL=fake.anthropic_base_url,
    )
    import_qa(home, qa_file, env)
    done = harness(
        "run", "--data", "qa", "--model", "anthropic:/claude-test", "--no-mlflow",
        "--spark-remote", connect_server.url, env=env,
    )  # fmt: skip
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: the Spark executors cannot see")
    assert "ANTHROPIC_API_KEY" in lines[0] and "probe" in lines[0]
    assert "sk-ant-driver-only" not in done.stderr + done.stdout
    assert fake.stats()["requests_total"] == 0  # nothing was paid for


def test_a_spark_failure_is_one_line_with_the_spark_ui(
    connect_server: SparkConnectServer, fake: FakeLLMServer, home: Path, qa_file: Path
) -> None:
    env = cli_env(home, fake)
    import_qa(home, qa_file, env)
    # The judge's Python worker dies on the executor: Spark fails the job.
    done = harness(
        "run", "--data", "qa", "--model", "openai:/crash", "--judge", "correctness",
        "--judge-model", "python:harness_test_models:crash_on_executor", "--no-mlflow",
        "--spark-remote", connect_server.url, env=env,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    # What failed, where to look, then how to go on (the run exists: its driver pass came first).
    failed_id = lines[0].rsplit("--resume ", 1)[-1].split("`")[0]
    assert lines[0].startswith("error: the Spark job failed: ")
    assert lines[0].endswith(
        f"(Spark UI: {connect_server.ui_url}); run {failed_id} failed; "
        f"`harness run --resume {failed_id}` tries again"
    )
    assert httpx.get(connect_server.ui_url, follow_redirects=True).status_code == 200


def test_evaluate_runs_a_table_on_the_connect_session_it_is_given_or_the_active_one(
    connect_server: SparkConnectServer,
    spark: Any,
    fake: FakeLLMServer,
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import harness

    monkeypatch.setenv("OPENAI_BASE_URL", fake.openai_base_url)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    rows = [(f"s{i}", f"What is {i} plus {i}?", str(2 * i)) for i in range(12)]
    spark.createDataFrame(rows, "id string, question string, answer string").write.mode(
        "overwrite"
    ).saveAsTable("sums")
    # As in a notebook: the Connect session handed in, a Spark table as the eval set.
    given = harness.evaluate(
        model="openai:/m", data=spark.read.table("sums"), data_name="sums",
        judges=["correctness"], judge_model="openai:/j", spark=spark, log_to_mlflow=False,
    )  # fmt: skip
    assert given.result.rows_done == 12 and given.result.errors == 0
    assert given.result.calls["model"]["requests"] == given.result.calls["judge"]["requests"] == 12
    assert fake.stats()["requests_total"] == 24
    assert sorted(given.tables["eval_results_table"]["id"]) == sorted(r[0] for r in rows)

    # The active session wins over a remote named in the call: the closed port below is
    # never dialled, and a model the cache has not seen runs on the active session.
    fake.reset()
    closed = f"sc://127.0.0.1:{_closed_port()}"
    active = harness.evaluate(
        model="openai:/m2", data="sums", spark=True, spark_remote=closed, log_to_mlflow=False
    )
    assert active.result.rows_done == 12 and active.result.errors == 0
    assert active.result.calls["model"]["requests"] == 12 == fake.stats()["requests_total"]


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # closed again: nothing listens there
