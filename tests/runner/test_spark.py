"""Runs on Apache Spark (pyspark in local mode, real executors' Python workers).

The executors talk to the fake OpenAI-compatible server on 127.0.0.1, so every claim about
what was sent is checked against the requests the server really received. The Spark
session and the server are shared by the module (a session takes ~5 s to start); the
executors' environment is fixed when the session starts, as on a real cluster.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest

from harness.config import resolve_home
from harness.errors import ConfigError, HarnessError
from harness.runner.config import RunConfig
from harness.runner.progress import NullProgress
from harness.runner.run import run_eval
from harness.runner.spark import spark_session
from harness.testing import FakeLLMServer

KEY = "sk-spark-test"
JUDGES = ["correctness", "faithfulness"]


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple[FakeLLMServer, Any]]:
    with FakeLLMServer() as server, pytest.MonkeyPatch.context() as env:
        env.setenv("OPENAI_BASE_URL", server.openai_base_url)
        env.setenv("OPENAI_API_KEY", KEY)
        env.setenv("ANTHROPIC_BASE_URL", server.anthropic_base_url)
        env.delenv("ANTHROPIC_API_KEY", raising=False)  # the executors never get it
        spark, owned = spark_session("local[2]")
        assert owned
        try:
            yield server, spark
        finally:
            spark.stop()


@pytest.fixture
def fake(
    cluster: tuple[FakeLLMServer, Any], monkeypatch: pytest.MonkeyPatch
) -> tuple[FakeLLMServer, Any]:
    server, spark = cluster
    server.reset()
    monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    return server, spark


@pytest.fixture
def qa(home: Path, qa_file: Path) -> str:
    from harness.data import import_file

    return import_file(qa_file, name="qa", home=home).dataset.ref


def config(**changes: Any) -> RunConfig:
    base: dict[str, Any] = dict(
        data="qa",
        model="openai:/m",
        judges=list(JUDGES),
        judge_model="openai:/j",
        metrics=["token_f1", "word_count"],
        concurrency=8,
        mlflow=False,
    )
    base.update(changes)
    return RunConfig(**base)


def rows(home: Path, run_id: str) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    con = duckdb.connect(str(home / "harness.duckdb"), read_only=True)
    try:
        outputs = con.execute(
            "SELECT example_id, output, error, request_key, cached FROM outputs "
            "WHERE run_id = ? ORDER BY example_id",
            [run_id],
        ).fetchall()
        scores = con.execute(
            "SELECT example_id, metric, value, label, rationale, request_key, cached FROM scores "
            "WHERE run_id = ? ORDER BY example_id, metric",
            [run_id],
        ).fetchall()
    finally:
        con.close()
    return outputs, scores


def jobs(spark: Any) -> int:
    """Every job the session has run, in any job group (harness runs its waves in one)."""
    return int(spark.sparkContext._jsc.sc().statusStore().jobsList(None).size())


def write_settings(home: Path, text: str) -> None:
    (home / "harness.toml").write_text(text)


def test_a_spark_run_stores_what_a_local_run_stores_and_reruns_without_spark(
    fake: tuple[FakeLLMServer, Any], qa: str, home: Path, tmp_path: Path
) -> None:
    server, spark = fake
    before = jobs(spark)
    progress = NullProgress()
    on_spark = run_eval(config(spark=True), home=home, spark_session=spark, progress=progress)
    assert jobs(spark) > before  # the calls went through Spark jobs
    # counts agree with their nouns (it said "20 row(s)" and "2 task(s)")
    [sent] = [n for n in progress.notes if "cannot answer" in n]
    assert re.fullmatch(r"20 rows need calls the cache cannot answer: sending them to Spark "
                        r"\(.+\), \d+ tasks at a time", sent), sent  # fmt: skip
    assert on_spark.status == "finished" and on_spark.errors == 0 and on_spark.rows_done == 20
    assert on_spark.calls["model"]["requests"] == 20
    assert on_spark.calls["judge"]["requests"] == 40
    assert on_spark.calls["model"]["cache_hits"] == on_spark.calls["judge"]["cache_hits"] == 0
    assert server.stats()["requests_total"] == 60  # what the counters say is what was sent
    outputs, scores = rows(home, on_spark.run_id)
    assert len(outputs) == 20 and all(o[2] is None and o[4] is False for o in outputs)
    assert {s[1] for s in scores} == {"correctness", "faithfulness", "token_f1", "word_count"}
    assert all(s[6] is False for s in scores if s[1] in JUDGES)

    # The same run done locally, in another home, stores the same rows and metrics.
    other = tmp_path / "local-home"
    other.mkdir()
    from harness.data import import_file

    import_file(tmp_path / "qa.jsonl", name="qa", home=other)
    local = run_eval(config(), home=other)
    assert rows(other, local.run_id) == (outputs, scores)
    assert local.metrics == on_spark.metrics

    # The executors' answers are in the project's cache: a rerun sends nothing and
    # needs no Spark job; a replay does the same.
    server.reset()
    before = jobs(spark)
    for mode in ("use", "replay"):
        again = run_eval(config(spark=True, cache=mode), home=home, spark_session=spark)
        assert again.calls["model"]["requests"] == again.calls["judge"]["requests"] == 0
        assert again.calls["model"]["cache_hits"] == 20
        assert again.calls["judge"]["cache_hits"] == 40
        assert again.metrics == on_spark.metrics
    assert jobs(spark) == before
    assert server.stats()["requests_total"] == 0


def test_a_sampled_sliced_run_on_spark_picks_the_rows_a_local_run_picks(
    fake: tuple[FakeLLMServer, Any], qa: str, home: Path, tmp_path: Path
) -> None:
    # --sample is chosen on the driver before any wave: Spark changes where rows run,
    # never which rows. The same sample, slices and per-row scores as a local run.
    server, spark = fake
    sampled = dict(sample=9, sample_seed=7, stratify="final_decision", by=["final_decision"])
    before = jobs(spark)
    on_spark = run_eval(config(spark=True, **sampled), home=home, spark_session=spark)
    assert jobs(spark) > before
    assert on_spark.status == "finished" and on_spark.rows == on_spark.rows_done == 9
    assert server.stats()["requests_total"] == 9 * 3  # the model and two judges, sampled rows only

    other = tmp_path / "local-home"
    other.mkdir()
    from harness.data import import_file

    import_file(tmp_path / "qa.jsonl", name="qa", home=other)
    local = run_eval(config(**sampled), home=other)
    assert rows(other, local.run_id) == rows(home, on_spark.run_id)
    assert on_spark.sample == local.sample and on_spark.sample["rows"] == 9
    assert [t.as_dict() for t in on_spark.slices] == [t.as_dict() for t in local.slices]
    assert on_spark.slices and on_spark.metrics == local.metrics


def test_what_the_cache_holds_is_not_paid_for_again_on_an_executor(
    fake: tuple[FakeLLMServer, Any], qa: str, home: Path
) -> None:
    server, spark = fake
    first = run_eval(config(judges=["correctness"]), home=home)  # locally, one judge
    assert first.calls["judge"]["requests"] == 20
    server.reset()
    second = run_eval(config(spark=True), home=home, spark_session=spark)
    # Every row still goes to Spark (faithfulness is new), with its model answer and its
    # correctness verdict shipped along: only the new judge is asked.
    assert second.calls["model"]["requests"] == 0
    assert second.calls["judge"]["requests"] == 20
    assert second.calls["model"]["cache_hits"] == 20
    assert second.calls["judge"]["cache_hits"] == 20
    assert server.stats()["requests_total"] == 20
    outputs, scores = rows(home, second.run_id)
    assert all(o[4] is True for o in outputs)
    cached = {(s[1], s[6]) for s in scores if s[1] in JUDGES}
    assert cached == {("correctness", True), ("faithfulness", False)}


def test_a_local_model_runs_on_the_driver_and_its_judges_on_the_executors(
    fake: tuple[FakeLLMServer, Any], qa: str, home: Path
) -> None:
    server, spark = fake
    result = run_eval(
        config(model="python:harness_test_models:answer_expected", spark=True),
        home=home,
        spark_session=spark,
    )
    assert result.errors == 0
    assert result.calls["model"]["local_calls"] == 20  # once per row, not again on Spark
    assert result.calls["judge"]["requests"] == 40
    assert server.stats()["requests_total"] == 40
    outputs, _ = rows(home, result.run_id)
    assert all(o[1] for o in outputs)


def test_python_metrics_and_mlflow_judges_run_on_the_executors(
    fake: tuple[FakeLLMServer, Any], qa: str, home: Path
) -> None:
    server, spark = fake
    metrics = [
        "python:harness_test_metrics:where_scored",  # imported by the executors
        "cites=regex:\\[\\d+\\]",
        "python:harness_test_metrics:relevance",  # an MLflow GenAI metric: its own model
    ]
    result = run_eval(
        config(spark=True, judges=[], judge_model=None, metrics=metrics),
        home=home,
        spark_session=spark,
    )
    assert result.errors == 0 and result.metric_errors == 0
    assert result.calls["judge"]["requests"] >= 20
    assert server.stats()["requests_total"] == 20 + result.calls["judge"]["requests"]
    asked = {json.loads(r["body"])["model"] for r in server.stats()["requests"]}
    assert asked == {"m", "judge-model"}
    _, scores = rows(home, result.run_id)
    by_metric: dict[str, list[tuple[Any, ...]]] = {}
    for score in scores:
        by_metric.setdefault(score[1], []).append(score)
    assert {len(v) for v in by_metric.values()} == {20}
    scored_in = {s[4] for s in by_metric["where_scored"]}
    assert f"pid {os.getpid()}" not in scored_in  # every row was scored on an executor
    assert all(s[2] is not None for s in by_metric["answer_relevance/v1"])
    assert result.directions["where_scored"] == 1


def test_an_apps_own_calls_are_paid_once_on_the_executors_and_replayed_on_the_driver(
    fake: tuple[FakeLLMServer, Any], qa: str, home: Path
) -> None:
    # python:harness_app_models:rag calls the openai SDK itself (an embedding, a chat call).
    server, spark = fake
    app = config(model="python:harness_app_models:rag", judges=[], spark=True)
    before = jobs(spark)
    first = run_eval(app, home=home, spark_session=spark)
    assert jobs(spark) > before  # the driver could not answer them: the rows went to Spark
    assert first.errors == 0 and first.rows_done == 20
    assert first.calls["model"]["local_calls"] == 20  # on the executors; the driver's
    assert first.calls["model"]["errors"] == 0  # deferred attempts are not failures
    assert first.calls["app"]["requests"] == 40 == server.stats()["requests_total"]
    outputs, _ = rows(home, first.run_id)
    with duckdb.connect(str(home / "harness.duckdb"), read_only=True) as con:
        keys = con.execute(
            "SELECT count(*) FROM (SELECT unnest(app_request_keys) FROM outputs WHERE run_id = ?)",
            [first.run_id],
        ).fetchone()
    assert keys == (40,)  # each row came back with the keys of its calls

    server.reset()
    before = jobs(spark)
    again = run_eval(app, home=home, spark_session=spark)
    assert jobs(spark) == before  # the executors' answers are in the cache now
    assert again.calls["app"]["cache_hits"] == 40 and again.calls["app"]["requests"] == 0
    assert server.stats()["requests_total"] == 0
    assert rows(home, again.run_id)[0] == outputs


def test_failed_calls_are_error_rows_and_the_driver_does_not_retry_them(
    fake: tuple[FakeLLMServer, Any], qa: str, home: Path
) -> None:
    server, spark = fake
    write_settings(home, "[calls]\nmax_retries = 0\n")
    server.configure(error_500_rate=1.0)
    try:
        result = run_eval(config(judges=[], spark=True), home=home, spark_session=spark)
    finally:
        server.configure(error_500_rate=0.0)
    assert result.errors == 20 and result.rows_done == 20
    assert result.calls["model"]["errors"] == 20
    assert server.stats()["requests_total"] == 20  # one attempt per row, on the executors only
    outputs, _ = rows(home, result.run_id)
    assert all("500" in o[2] for o in outputs)


def test_an_executor_without_the_key_fails_the_run_in_one_line(
    fake: tuple[FakeLLMServer, Any], qa: str, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, spark = fake
    # The driver has the key; the executors (started without it) do not: as on a cluster
    # whose workers lack the secret.
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-driver-only")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake[0].anthropic_base_url)
    fake[0].reset()
    with pytest.raises(HarnessError) as caught:
        run_eval(
            config(judges=[], model="anthropic:/claude-test", spark=True),
            home=home,
            spark_session=spark,
        )
    message = str(caught.value)
    assert isinstance(caught.value, ConfigError)  # exit 2, as on the driver
    assert "ANTHROPIC_API_KEY" in message and "\n" not in message
    assert "sk-ant-driver-only" not in message
    assert fake[0].stats()["requests_total"] == 0


def test_bad_spark_settings_fail_before_the_run_exists(
    qa: str, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    write_settings(home, "[spark]\nrows_per_task = 0\n")
    with pytest.raises(ConfigError, match="rows_per_task"):
        run_eval(config(spark=True), home=home)
    write_settings(home, "[spark]\nworkers = 3\n")
    with pytest.raises(ConfigError, match=r"unknown key workers in \[spark\]"):
        run_eval(config(spark=True), home=home)
    con = duckdb.connect(str(home / "harness.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM runs").fetchone() == (0,)
    finally:
        con.close()


def test_the_cli_runs_on_spark_and_says_so_without_pyspark(
    cluster: tuple[FakeLLMServer, Any], qa: str, home: Path, tmp_path: Path
) -> None:
    server, _ = cluster
    server.reset()
    env = {
        **os.environ,
        "HARNESS_HOME": str(home),
        "OPENAI_BASE_URL": server.openai_base_url,
        "OPENAI_API_KEY": KEY,
    }
    (home / "harness.toml").write_text('[spark]\nmaster = "local[2]"\nrows_per_task = 5\n')
    command = [
        str(Path(sys.executable).parent / "harness"), "run", "--data", "qa", "--model", "openai:/m",
        "--metric", "token_f1", "--spark", "--no-mlflow", "--json",
    ]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    # Quiet: the JVM's output goes to a log file, pyspark's warnings are off.
    assert done.stderr == ""
    document = json.loads(done.stdout)
    assert document["rows"] == 20 and document["calls"]["model"]["requests"] == 20
    assert server.stats()["requests_total"] == 20

    # Without pyspark: one line, exit 2, no run row.
    shim = tmp_path / "no-pyspark"
    (shim / "pyspark").mkdir(parents=True)
    (shim / "pyspark" / "__init__.py").write_text("raise ImportError('no pyspark here')\n")
    env["PYTHONPATH"] = str(shim)
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().startswith("error:") and "pyspark" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    con = duckdb.connect(str(home / "harness.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM runs").fetchone() == (1,)
    finally:
        con.close()


def test_a_spark_dataframe_imports_as_the_same_dataset(
    cluster: tuple[FakeLLMServer, Any], home: Path, qa_rows: list[dict[str, object]]
) -> None:
    from harness.data import import_dataframe

    _, spark = cluster
    frame = pd.DataFrame(qa_rows)[["question", "answer"]]
    from_pandas = import_dataframe(frame, name="qa", home=home)
    from_spark = import_dataframe(spark.createDataFrame(frame), name="qa", home=home)
    assert from_spark.dataset.ref == from_pandas.dataset.ref
    assert from_spark.created is False
    assert resolve_home(home).db_path.exists()


def test_evaluate_takes_a_spark_session_and_a_spark_dataframe(
    fake: tuple[FakeLLMServer, Any], home: Path, qa_rows: list[dict[str, object]]
) -> None:
    import harness

    server, spark = fake
    frame = spark.createDataFrame(pd.DataFrame(qa_rows)[["id", "question", "answer", "context"]])
    result = harness.evaluate(
        model="openai:/m",
        data=frame,
        data_name="qa",
        metrics=["token_f1"],
        judges=["correctness"],
        judge_model="openai:/j",
        log_to_mlflow=False,
        spark=spark,
        home=home,
    )
    assert result.result.rows_done == 20
    assert result.result.calls["judge"]["requests"] == 20
    assert server.stats()["requests_total"] == 40
    assert len(result.tables["eval_results_table"]) == 20
    assert "correctness/mean" in result.metrics


def test_a_spark_dataframe_whose_id_column_repeats_is_numbered_as_a_pandas_one(
    cluster: tuple[FakeLLMServer, Any], home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """harness.evaluate numbers the rows of a pandas DataFrame whose `id` column repeats
    (mlflow.evaluate has no row ids); the same rows as a Spark DataFrame were refused with
    "duplicate id '1' in rows 1 and 2", which named no way out. They now give the pandas
    frame's rows, warning and dataset version; a column named with id= must be unique."""
    import harness
    from harness.errors import DataError

    _, spark = cluster
    rows = pd.DataFrame({"id": [1, 1], "inputs": ["a?", "b?"], "ground_truth": ["a", "b"]})
    results = []
    for data in (rows, spark.createDataFrame(rows)):
        caplog.clear()
        with caplog.at_level("WARNING", logger="harness"):
            results.append(
                harness.evaluate(
                    lambda row: "a", data, targets="ground_truth", log_to_mlflow=False, home=home
                )
            )
        table = results[-1].tables["eval_results_table"]
        assert list(table["id"]) == ["0", "1"]
        assert list(table["exact_match"]) == [1.0, 0.0]
        assert [r.getMessage() for r in caplog.records if "row id" in r.getMessage()] == [
            "harness: the data's column 'id' repeats ('1' in rows 1 and 2), so it is not the "
            "row id: the rows are numbered from 0 (id= names a column of unique ids)"
        ]
    assert results[0].result.dataset == results[1].result.dataset
    with pytest.raises(DataError) as raised:
        harness.evaluate(
            lambda row: "a", spark.createDataFrame(rows), id="id", log_to_mlflow=False, home=home
        )
    assert str(raised.value) == "duplicate id '1' in rows 1 and 2"


def test_the_budget_is_shared_by_the_tasks_and_stops_the_run(
    fake: tuple[FakeLLMServer, Any], qa: str, home: Path
) -> None:
    from harness.errors import BudgetExceeded

    server, spark = fake
    # $1,000 per million tokens in and out: each call of the fake server costs ~ $0.2-1.
    write_settings(home, '[prices]\n"openai:/m" = [1000, 1000]\n[spark]\nrows_per_task = 2\n')
    with pytest.raises(BudgetExceeded) as caught:
        run_eval(config(judges=[], spark=True, max_cost=3.0), home=home, spark_session=spark)
    result = caught.value.result
    assert result is not None and 0 < result.rows_done < 20
    assert result.calls["model"]["cost_usd"] <= 3.0
    assert server.stats()["requests_total"] == result.calls["model"]["requests"]
    assert result.calls["model"]["requests"] == result.rows_done


def test_rate_limits_are_divided_among_the_tasks_running_at_once() -> None:
    from harness.runner.spark import _divided_limits

    settings = {
        "providers": {"openai": {"requests_per_minute": 600, "base_url": "http://x"}},
        "rate_limits": {"openai:/m": {"tokens_per_minute": 90000}},
        "calls": {"max_retries": 3},
    }
    divided = _divided_limits(settings, 3)
    assert divided["providers"]["openai"] == {"requests_per_minute": 200, "base_url": "http://x"}
    assert divided["rate_limits"]["openai:/m"] == {"tokens_per_minute": 30000}
    assert divided["calls"] == {"max_retries": 3}
    assert settings["providers"]["openai"]["requests_per_minute"] == 600  # not changed


def test_a_spark_job_that_fails_fails_the_run_in_one_line(
    fake: tuple[FakeLLMServer, Any], qa: str, home: Path
) -> None:
    from harness.errors import RunFailed

    _, spark = fake
    # The judge's Python worker dies on the executor; Spark does not retry in local mode.
    with pytest.raises(RunFailed) as caught:
        run_eval(
            config(judges=["correctness"], judge_model=CRASH, model="openai:/crash", spark=True),
            home=home,
            spark_session=spark,
        )
    run_id = caught.value.result.run_id  # type: ignore[attr-defined]
    assert str(caught.value) == (
        "the Spark job failed: Python worker exited unexpectedly (crashed); "
        f"run {run_id} failed; `harness run --resume {run_id}` tries again"
    )


CRASH = "python:harness_test_models:crash_on_executor"


def test_spark_errors_are_told_in_their_one_line(cluster: tuple[FakeLLMServer, Any]) -> None:
    from pyspark.errors import AnalysisException, PythonException

    from harness.runner.spark_session import SparkHandle, error_line

    _, spark = cluster

    def boom(batches: Any) -> Any:
        for _ in batches:
            raise ValueError("boom in a task")
        yield from ()

    with pytest.raises(PythonException) as failed:
        spark.range(2).mapInArrow(boom, "id long").collect()
    assert error_line(failed.value) == "ValueError: boom in a task"
    handle = SparkHandle(spark, False, "local[2]", log_path="/tmp/harness-spark-x.log")
    assert handle.failure("the Spark job failed", failed.value) == (
        "the Spark job failed: ValueError: boom in a task (Spark's log: /tmp/harness-spark-x.log)"
    )
    with pytest.raises(AnalysisException) as missing:
        spark.read.table("no_such_table").collect()
    assert error_line(missing.value).startswith(
        "[TABLE_OR_VIEW_NOT_FOUND] The table or view `no_such_table` cannot be found"
    )


def _interrupt_once_executors_call(server: FakeLLMServer) -> None:
    """SIGINT to this process (run_eval handles it in the main thread) once the executors'
    first calls reach the server."""
    import signal
    import threading
    import time

    def interrupt() -> None:
        deadline = time.monotonic() + 120
        while server.stats()["requests_total"] < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt, daemon=True).start()


def _interrupted_on_spark(server: FakeLLMServer, spark: Any, home: Path, **changes: Any) -> Any:
    """Run on Spark, SIGINT at the executors' first calls; the interrupted run's result
    (its message says how to resume), the server's latency back to none."""
    from harness.errors import Interrupted

    _interrupt_once_executors_call(server)
    try:
        with pytest.raises(Interrupted) as stopped:
            run_eval(config(spark=True, **changes), home=home, spark_session=spark)
    finally:
        server.configure(latency_s=0.0)
    result = stopped.value.result
    assert stopped.value.exit_code == 130 and result.status == "interrupted"
    assert str(stopped.value).endswith(f"resume with `harness run --resume {result.run_id}`")
    return result


def test_ctrl_c_keeps_the_waves_in_flight_and_pays_for_no_call_twice(
    fake: tuple[FakeLLMServer, Any], qa: str, home: Path
) -> None:
    """A real SIGINT during the first waves: no more waves; the waves in flight come back
    within the stop's grace and are kept. Their jobs were cancelled at once: the calls
    their tasks had paid for were lost (0 rows kept) and sent again on --resume."""
    server, spark = fake
    before = jobs(spark)
    # Waves of 2 rows, one task each: the 2 in flight run at once on the 2 cores, and each
    # takes ~2 s (the model's answer, then the judges'), well within the grace.
    write_settings(home, "[spark]\ntasks = 1\nrows_per_task = 2\n")
    server.configure(latency_s=1.0)
    result = _interrupted_on_spark(server, spark, home)
    assert jobs(spark) > before  # the rows went through Spark
    assert 2 <= result.rows_done < 20  # at least the wave the stop came in
    assert spark.sparkContext.statusTracker().getActiveJobsIds() == []

    resumed = run_eval(config(spark=True), home=home, spark_session=spark, resume=result.run_id)
    assert resumed.status == "finished" and resumed.rows_done == 20 and resumed.errors == 0
    stats = server.stats()
    assert stats["requests_total"] == stats["unique_bodies"] == 20 * (1 + len(JUDGES))


def test_ctrl_c_cancels_a_wave_longer_than_the_grace_and_the_run_resumes(
    fake: tuple[FakeLLMServer, Any], qa: str, home: Path
) -> None:
    """A wave still out when the grace ends is cancelled and its tasks stop calling; the
    run is interrupted with the rows back so far, and resumes. (This test ran without
    spark=True until now: it tested a local run's Ctrl-C, and with it on, the cancelled
    tasks went on calling for Spark's 2 s kill timeout.)"""
    import time

    from harness.interrupt import DEFAULT_GRACE_S

    server, spark = fake
    before = jobs(spark)
    write_settings(home, "[spark]\nrows_per_task = 5\n")
    server.configure(latency_s=DEFAULT_GRACE_S + 1)  # no wave comes back within the grace
    result = _interrupted_on_spark(server, spark, home)
    assert result.rows_done == 0
    assert jobs(spark) > before  # the rows went through Spark
    sent = server.stats()["requests_total"]
    time.sleep(3)  # a task left running would go on calling
    assert server.stats()["requests_total"] == sent
    assert spark.sparkContext.statusTracker().getActiveJobsIds() == []

    resumed = run_eval(config(spark=True), home=home, spark_session=spark, resume=result.run_id)
    assert resumed.status == "finished" and resumed.rows_done == 20 and resumed.errors == 0


def test_ctrl_c_keeps_what_a_wave_longer_than_the_grace_paid_for_on_a_local_session(
    fake: tuple[FakeLLMServer, Any], qa: str, home: Path
) -> None:
    """Before: a wave longer than the grace was cancelled whole at its end, and every call
    its tasks had paid for was lost and paid again by --resume (a by-hand run: 15 calls
    paid, 0 kept, 75 requests for 60 calls). Executors on this machine now see the stop
    (the driver's stop file): their tasks send no new call, finish those in flight and come
    back within the grace with what they paid for, so the resume pays for no call twice."""
    server, spark = fake
    # One wave of 20 rows in 1 task, 2 rows at a time: ~10 s of calls (0.5 s each, the
    # model's then the judges'), against the grace's 5 s (the task's 3 s), so the calls in
    # flight at the stop end well within it. (Two tasks of 10 rows, 4 at a time, with 1 s
    # calls failed one run in two on a slow day: the fake server, in this busy process,
    # answered the calls in flight after the task's grace.)
    write_settings(home, "[spark]\ntasks = 1\nrows_per_task = 20\n")
    server.configure(latency_s=0.5)
    result = _interrupted_on_spark(server, spark, home, concurrency=2)
    assert result.rows_done < 20
    assert spark.sparkContext.statusTracker().getActiveJobsIds() == []
    paid = server.stats()["requests_total"]

    resumed = run_eval(config(spark=True), home=home, spark_session=spark, resume=result.run_id)
    assert resumed.status == "finished" and resumed.rows_done == 20 and resumed.errors == 0
    stats = server.stats()
    assert stats["requests_total"] == stats["unique_bodies"] == 20 * (1 + len(JUDGES)), paid


def test_ctrl_c_stops_a_cli_run_on_a_local_session_harness_starts(
    cluster: tuple[FakeLLMServer, Any], qa: str, home: Path
) -> None:
    """The session `harness run --spark` starts itself must not take Ctrl-C over: pyspark's
    SparkContext installs its own SIGINT handler (cancel every job, raise KeyboardInterrupt),
    which made the run `failed` ('KeyboardInterrupt: KeyboardInterrupt') with a bare
    `error: interrupted` and no way on."""
    import signal
    import time

    server, _ = cluster
    server.reset()
    server.configure(latency_s=0.5)  # a wave takes seconds: time to interrupt it
    env = {
        **os.environ,
        "HARNESS_HOME": str(home),
        "OPENAI_BASE_URL": server.openai_base_url,
        "OPENAI_API_KEY": KEY,
    }
    write_settings(home, '[spark]\nmaster = "local[2]"\nrows_per_task = 5\n')
    command = [
        str(Path(sys.executable).parent / "harness"), "run", "--data", "qa", "--model", "openai:/m",
        "--metric", "token_f1", "--spark", "--no-mlflow",
    ]  # fmt: skip
    try:
        process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 240
        while server.stats()["requests_total"] < 2 and time.monotonic() < deadline:
            assert process.poll() is None
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    finally:
        server.configure(latency_s=0.0)
    con = duckdb.connect(str(home / "harness.duckdb"), read_only=True)
    try:
        stored = con.execute("SELECT run_id, status, reason FROM runs").fetchall()
    finally:
        con.close()
    [(run_id, status, reason)] = stored
    assert (status, reason) == ("interrupted", "interrupted by SIGINT")
    assert process.returncode == 130
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("error: interrupted by SIGINT with ")
    assert last.endswith(f"resume with `harness run --resume {run_id}`")


def test_a_sweep_on_spark_starts_its_local_session_once(
    cluster: tuple[FakeLLMServer, Any], qa: str, home: Path
) -> None:
    """Each child of a `--spark` sweep started and stopped a Spark context of its own
    (seconds each); the first one now stays open for the others and is stopped at the end."""
    server, _ = cluster
    server.reset()
    write_settings(home, '[spark]\nmaster = "local[1]"\n')
    script = (
        "import json, sys\n"
        "from pyspark import SparkContext\n"
        "started = []\n"
        "init = SparkContext.__init__\n"
        "def counted(self, *a, **k):\n"
        "    started.append(1)\n"
        "    init(self, *a, **k)\n"
        "SparkContext.__init__ = counted\n"
        "from harness.cli import cli\n"
        "try:\n"
        "    cli(sys.argv[1:], standalone_mode=False)\n"
        "finally:\n"
        "    left = SparkContext._active_spark_context is not None\n"
        "    print(json.dumps({'started': len(started), 'left': left}), file=sys.stderr)\n"
    )
    env = {**os.environ, "HARNESS_HOME": str(home), "OPENAI_BASE_URL": server.openai_base_url,
           "OPENAI_API_KEY": KEY}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", script, "run", "--data", "qa", "--model", "openai:/m",
         "--metric", "token_f1", "--param", "temperature=0", "--param", "temperature=1",
         "--limit", "4", "--spark", "--no-mlflow", "--json"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stderr.strip().splitlines()[-1]) == {"started": 1, "left": False}
    runs = json.loads(done.stdout)["runs"]
    assert [run["rows"] for run in runs] == [4, 4]
    assert server.stats()["requests_total"] == 8  # every call of both points was a miss


def test_a_table_exported_on_a_local_session_is_read_and_appended_to_by_the_next_command(
    cluster: tuple[FakeLLMServer, Any], qa: str, home: Path, tmp_path: Path
) -> None:
    """A local session harness starts has an in-memory catalog, new with each command: a
    table `runs export --spark-table` wrote (its files in ./spark-warehouse) was unknown to
    the next command, so `data import --spark-table` of it failed (TABLE_OR_VIEW_NOT_FOUND)
    and a second export, documented to append, failed (LOCATION_ALREADY_EXISTS)."""
    first = run_eval(config(model="echo", judges=[], judge_model=None), home=home)
    second = run_eval(config(model="echo", judges=[], judge_model=None), home=home)
    env = {**os.environ, "HARNESS_HOME": str(home)}
    (home / "harness.toml").write_text('[spark]\nmaster = "local[1]"\n')
    harness = str(Path(sys.executable).parent / "harness")

    def cli(*arguments: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [harness, *arguments], env=env, cwd=tmp_path, capture_output=True, text=True,
            timeout=300,
        )  # fmt: skip

    done = cli("runs", "export", first.run_id, "--spark-table", "results")
    assert done.returncode == 0, done.stderr
    done = cli("data", "import", "--spark-table", "results", "--name", "back", "--input", "input")
    assert done.returncode == 0, done.stderr
    done = cli("runs", "export", second.run_id, "--spark-table", "results")  # appends
    assert done.returncode == 0, done.stderr
    con = duckdb.connect(str(home / "harness.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM examples WHERE dataset = 'back'").fetchone() == (
            20,
        )
    finally:
        con.close()
    import pyarrow.parquet as pq

    table = pq.read_table(tmp_path / "spark-warehouse" / "results", columns=["run_id"])
    assert sorted(set(table.column("run_id").to_pylist())) == sorted([first.run_id, second.run_id])
    assert table.num_rows == 40
