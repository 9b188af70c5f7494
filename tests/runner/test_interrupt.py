"""SIGINT and SIGTERM stop a real `harness run` without losing anything; stale runs are found.

Each test starts `python -m harness run` against the fake LLM server (a model and a judge,
so every row costs two calls), signals it mid-run, and reads what it left: the JSON
document, the DuckDB run, the MLflow run and its traces, the server's request log.
"""

from __future__ import annotations

import dataclasses
import json
import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from processes import (
    harness,
    harness_env,
    import_rows,
    json_doc,
    last_line,
    mlflow_runs,
    mlflow_traces,
    paid,
    query,
    run_lock_free,
    start,
    wait_for,
)

from harness.testing import FakeLLMServer

ROWS = 120
RUN = (
    "run", "--data", "qa", "--model", "openai:/m", "--metric", "exact_match",
    "--judge", "correctness", "--judge-model", "openai:/j", "--concurrency", "4",
)  # fmt: skip


@pytest.fixture
def server() -> Iterator[FakeLLMServer]:
    # 40 ms a call at concurrency 4: a run of 240 calls takes ~3 s, time to signal it.
    with FakeLLMServer(latency_s=0.04, max_recorded=100_000) as running:
        yield running


@pytest.fixture
def env(home: Path, tmp_path: Path, server: FakeLLMServer) -> dict[str, str]:
    env = harness_env(home, server)
    import_rows(env, tmp_path, ROWS)
    return env


def started_rows(server: FakeLLMServer, calls: int = 40) -> bool:
    return server.stats()["requests_total"] >= calls


def run_ids(home: Path) -> list[str]:
    return [r[0] for r in query(home, "SELECT run_id FROM runs")]


@pytest.mark.parametrize("written", ["mlflow-api", "sql"])
def test_sigterm_stops_the_run_keeps_every_row_and_resume_finishes_it(
    home: Path, env: dict[str, str], server: FakeLLMServer, written: str
) -> None:
    if written == "sql":
        # A first run creates the store and registers the configuration, so the MLflow
        # run of the next one is written with SQL (harness.tracking.sql_run), no MLflow.
        code, _, err = harness(env, *RUN, "--limit", "2")
        assert code == 0, err
        from harness.tracking import tracking_uri_for
        from harness.tracking.mlflow_sqlite import verified_store

        assert verified_store(tracking_uri_for(home)) is not None
    process = start(env, *RUN, "--json")
    wait_for(lambda: started_rows(server), 120, "the first calls")
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 143, err
    assert "Traceback" not in err
    document = json_doc(out)  # the --json document, status interrupted
    run_id = document["run_id"]
    assert document["status"] == "interrupted" and document["reason"] == "interrupted by SIGTERM"
    done = query(home, "SELECT count(*) FROM outputs WHERE run_id = ?", [run_id])[0][0]
    assert 0 < document["rows_done"] == done < ROWS
    assert last_line(err) == (
        f"error: interrupted by SIGTERM with {done} of {ROWS} rows stored; "
        f"resume with `harness run --resume {run_id}`"
    )
    assert query(home, "SELECT status, reason FROM runs WHERE run_id = ?", [run_id]) == [
        ("interrupted", "interrupted by SIGTERM")
    ]
    # Rows in flight were finished, not dropped: every call was paid once, and is cached.
    assert max(paid(server).values()) == 1
    # MLflow: the run is KILLED, holding the traces of every stored row.
    wait_for(lambda: run_lock_free(home, run_id), 120, "the MLflow worker to end the run")
    [(mlflow_run_id, status, _)] = mlflow_runs(home, run_id)
    assert status == "KILLED"
    assert sorted(mlflow_traces(home, mlflow_run_id)) == sorted(
        r[0] for r in query(home, "SELECT example_id FROM outputs WHERE run_id = ?", [run_id])
    )

    code, out, err = harness(env, "run", "--resume", run_id, "--json")
    assert code == 0, err
    resumed = json_doc(out)
    assert resumed["status"] == "finished" and resumed["rows_done"] == ROWS
    assert resumed["mlflow_run_id"] == mlflow_run_id  # the same MLflow run, completed
    assert mlflow_runs(home, run_id) == [(mlflow_run_id, "FINISHED", "active")]
    traces = mlflow_traces(home, mlflow_run_id)
    assert len(traces) == len(set(traces)) == ROWS
    assert max(paid(server).values()) == 1  # the resume paid only for rows not done
    assert sum(paid(server).values()) == 2 * ROWS


def test_ctrl_c_prints_the_summary_and_the_resume_command(
    home: Path, env: dict[str, str], server: FakeLLMServer
) -> None:
    process = start(env, *RUN)
    wait_for(lambda: started_rows(server), 120, "the first calls")
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "Traceback" not in err and "Aborted" not in err
    [run_id] = run_ids(home)
    done = query(home, "SELECT count(*) FROM outputs")[0][0]
    shown = " ".join(out.split())  # the summary table's title wraps
    assert (
        f"run {run_id}: openai:/m on qa@" in shown and f"({done} of {ROWS} rows, 0 failed," in shown
    )
    assert f"judge calls: {done} sent" in shown
    assert last_line(err) == (
        f"error: interrupted by SIGINT with {done} of {ROWS} rows stored; "
        f"resume with `harness run --resume {run_id}`"
    )
    code, out, _ = harness(env, "runs", "show", run_id)
    assert code == 0 and "interrupted" in out and "reason: interrupted by SIGINT" in out


def test_deleting_an_interrupted_run_deletes_its_partly_logged_mlflow_run(
    home: Path, env: dict[str, str], server: FakeLLMServer
) -> None:
    """An interrupted run's MLflow run (KILLED, with the traces of its rows) is not
    recorded in DuckDB until the run finishes: a delete left it in the MLflow UI."""
    process = start(env, *RUN)
    wait_for(lambda: started_rows(server), 120, "the first calls")
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=120)
    assert process.returncode == 130
    [run_id] = run_ids(home)
    wait_for(lambda: run_lock_free(home, run_id), 120, "the MLflow worker to end the run")
    [(mlflow_run_id, status, _)] = mlflow_runs(home, run_id)
    assert status == "KILLED" and mlflow_traces(home, mlflow_run_id)
    code, out, err = harness(env, "runs", "delete", run_id)
    assert code == 0, err
    assert out.endswith(f"MLflow run {mlflow_run_id} marked deleted\n")
    assert mlflow_runs(home, run_id) == [(mlflow_run_id, "KILLED", "deleted")]


@pytest.mark.parametrize("written", ["mlflow-api", "sql"])
def test_runs_show_names_the_partly_logged_mlflow_run_of_an_interrupted_run(
    home: Path, env: dict[str, str], server: FakeLLMServer, written: str
) -> None:
    """`runs show` said 'interrupted ... reason: interrupted by SIGINT' and named no MLflow
    run, while a KILLED one held the traces of the rows done: its id was stored only once
    logging completed. It is named now, as partly logged, until a resume completes it."""
    if written == "sql":  # a first run makes the store one the worker writes with SQL
        code, _, err = harness(env, *RUN, "--limit", "2")
        assert code == 0, err
        server.reset()
    process = start(env, *RUN)
    wait_for(lambda: started_rows(server), 120, "the first calls")
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    run_id = query(home, "SELECT run_id FROM runs WHERE status = 'interrupted'")[0][0]
    wait_for(lambda: run_lock_free(home, run_id), 120, "the MLflow worker to end the run")
    [(mlflow_run_id, status, _)] = mlflow_runs(home, run_id)
    assert status == "KILLED" and mlflow_traces(home, mlflow_run_id)
    code, out, err = harness(env, "runs", "show", run_id)
    assert code == 0, err
    assert f"MLflow run {mlflow_run_id} (partly logged: the rows stored so far)" in out.splitlines()
    code, out, err = harness(env, "runs", "show", run_id, "--json")
    assert code == 0, err
    document = json_doc(out)
    assert document["mlflow_run_id"] is None  # not logged completely
    assert document["mlflow_partial_run_id"] == mlflow_run_id

    code, _, err = harness(env, "run", "--resume", run_id)
    assert code == 0, err
    assert mlflow_runs(home, run_id) == [(mlflow_run_id, "FINISHED", "active")]
    code, out, err = harness(env, "runs", "show", run_id)
    assert code == 0 and f"MLflow run {mlflow_run_id}" in out.splitlines(), err
    assert "partly logged" not in out
    code, out, err = harness(env, "runs", "show", run_id, "--json")
    document = json_doc(out)
    assert document["mlflow_run_id"] == mlflow_run_id
    assert document["mlflow_partial_run_id"] is None


def test_a_run_killed_outright_names_the_mlflow_run_its_batches_went_to(
    home: Path, env: dict[str, str], server: FakeLLMServer
) -> None:
    """The MLflow run's id is stored with the rows, as soon as it is known: a run killed
    with SIGKILL (no stop, no end) names it too."""
    server.configure(latency_s=0.2)  # ~12 s: still running when it is killed
    process = start(env, *RUN)

    def opened() -> str | None:
        try:
            found = query(home, "SELECT mlflow_opened_run_id FROM runs")
        except duckdb.Error:  # the run holds the store while it writes a batch
            return None
        return found[0][0] if found else None

    stored = wait_for(opened, 120, "a batch to store the MLflow run's id")
    process.kill()
    process.communicate(timeout=120)
    [run_id] = run_ids(home)
    wait_for(lambda: run_lock_free(home, run_id), 120, "the MLflow worker to end the run")
    [(mlflow_run_id, status, _)] = mlflow_runs(home, run_id)
    assert stored == mlflow_run_id and status == "KILLED"
    code, out, err = harness(env, "runs", "show", run_id)
    assert code == 0 and out.startswith(f"run {run_id}  interrupted  "), err
    assert f"MLflow run {mlflow_run_id} (partly logged: the rows stored so far)" in out.splitlines()


def stopped_with_the_store_locked(
    home: Path,
    env: dict[str, str],
    server: FakeLLMServer,
    calls: int,
    *,
    settle_s: float = 0.0,
    status: str | None = "interrupted",
) -> tuple[str, str, str]:
    """Run ``RUN --json`` while another process holds the MLflow store's write lock (the
    worker waits up to 20 s for it), SIGINT it once the server has answered ``calls``
    calls and ``settle_s`` seconds more, and let the lock go only after the run has
    exited; return the run's id (found by ``status`` while the lock is held, when given,
    checking MLflow has no run of it yet; else from the --json document), stdout and
    stderr. The store is made first by a run of 2 rows, so the MLflow run is written with
    SQL. The stop's grace is 1 s (``[calls] stop_grace_s``), not 5: these tests wait it out."""
    (home / "harness.toml").write_text("[calls]\nstop_grace_s = 1\n")
    code, _, err = harness(env, *RUN, "--limit", "2")
    assert code == 0, err
    server.reset()
    holder = sqlite3.connect(home / "mlruns" / "mlflow.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    run_id = None
    try:
        process = start(env, *RUN, "--json")
        wait_for(lambda: started_rows(server, calls), 120, f"{calls} calls")
        time.sleep(settle_s)
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)  # not communicate(): the waiting worker holds stderr open
        if status is not None:
            [(run_id,)] = query(home, "SELECT run_id FROM runs WHERE status = ?", [status])
            assert not mlflow_runs(home, run_id)  # the worker still waits for the lock
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    return run_id or json_doc(out)["run_id"], out, err


def killed_mlflow_run(home: Path, run_id: str) -> str:
    """The MLflow run a worker left to finish alone ends KILLED, once it has; its id."""

    def killed() -> str | None:
        found = mlflow_runs(home, run_id)
        return found[0][0] if found and found[0][1] == "KILLED" else None

    mlflow_run_id = wait_for(killed, 120, "the worker to end the MLflow run KILLED")
    wait_for(lambda: run_lock_free(home, run_id), 120, "the worker to let the run go")
    return str(mlflow_run_id)


def test_runs_show_finds_the_mlflow_run_a_busy_worker_opened_after_the_run_stopped(
    home: Path, env: dict[str, str], server: FakeLLMServer
) -> None:
    """Another process holds the MLflow store's write lock (another run's worker, `mlflow`)
    while the run is interrupted: its worker, waiting for the lock to open the MLflow run,
    has not said which run it opened when the stop's grace is over, so the run stores
    none. Once the lock is let go the worker opens it, writes the rows' traces and ends it
    KILLED. `runs show` (text and --json) and `runs list --json` named no MLflow run; they
    find it by its `harness.run_id` tag now, and the resume completes that same run."""
    from mlflow import MlflowClient

    run_id, out, _ = stopped_with_the_store_locked(home, env, server, 8)
    document = json_doc(out)
    assert document["run_id"] == run_id and document["mlflow_run_id"] is None
    assert document["mlflow_partial_run_id"] is None  # not opened yet when the run stopped
    wait_for(lambda: run_lock_free(home, run_id), 120, "the MLflow worker to end the run")
    client = MlflowClient(f"sqlite:///{home}/mlruns/mlflow.db")
    [found] = client.search_runs(
        [e.experiment_id for e in client.search_experiments()],
        filter_string=f"tags.`harness.run_id` = '{run_id}'",
    )
    mlflow_run_id = found.info.run_id
    assert found.info.status == "KILLED"
    traced = client.search_traces(
        locations=[found.info.experiment_id], run_id=mlflow_run_id, max_results=1000
    )
    stored = query(home, "SELECT example_id FROM outputs WHERE run_id = ?", [run_id])
    assert sorted(t.info.client_request_id for t in traced) == sorted(r[0] for r in stored)
    assert query(home, "SELECT mlflow_opened_run_id FROM runs WHERE run_id = ?", [run_id]) == [
        (None,)
    ]
    code, out, err = harness(env, "runs", "show", run_id)
    assert code == 0, err
    assert f"MLflow run {mlflow_run_id} (partly logged: the rows stored so far)" in out.splitlines()
    code, out, err = harness(env, "runs", "show", run_id, "--json")
    assert code == 0, err
    assert json_doc(out)["mlflow_partial_run_id"] == mlflow_run_id
    code, out, err = harness(env, "runs", "list", "--json")
    assert code == 0, err
    listed = {r["run_id"]: r["mlflow_partial_run_id"] for r in json.loads(out)}
    assert listed[run_id] == mlflow_run_id

    code, out, err = harness(env, "run", "--resume", run_id, "--json")
    assert code == 0, err
    assert json_doc(out)["mlflow_run_id"] == mlflow_run_id
    assert mlflow_runs(home, run_id) == [(mlflow_run_id, "FINISHED", "active")]


def test_a_run_stopped_while_its_worker_reads_nothing_exits_after_the_grace(
    home: Path, env: dict[str, str], server: FakeLLMServer
) -> None:
    """Another process holds the MLflow store's write lock through the whole run, so the
    worker, waiting to open the MLflow run, reads none of the rows' batches, and the pipe
    to it fills. The run stopped by SIGINT waited for the pipe to drain before its
    grace began: it could only exit once the worker gave up at its own 20 s busy timeout,
    so MLflow got no run at all. Now it exits while the lock is still held, and the worker,
    left to finish alone, opens the MLflow run once the lock is let go, writes the traces
    it got whole (a batch cut short by the run's exit reads as the pipe's end) and ends it
    KILLED; the resume writes the rest into that same run."""
    # ~80 rows stored in batches: far more than a pipe holds (64 KiB), with PubMedQA's
    # contexts in every prompt.
    run_id, _, _ = stopped_with_the_store_locked(home, env, server, 160)
    stored = sorted(r[0] for r in query(home, "SELECT example_id FROM outputs"))
    assert 2 < len(stored) < ROWS + 2, stored
    mlflow_run_id = killed_mlflow_run(home, run_id)
    traced = mlflow_traces(home, mlflow_run_id)
    # Those whose batches were in the pipe whole when the run's process exited, if any.
    assert len(set(traced)) == len(traced)
    ours = sorted(
        r[0] for r in query(home, "SELECT example_id FROM outputs WHERE run_id = ?", [run_id])
    )
    assert set(traced) <= set(ours)

    code, out, err = harness(env, "run", "--resume", run_id, "--json")
    assert code == 0, err
    assert json_doc(out)["mlflow_run_id"] == mlflow_run_id
    assert mlflow_runs(home, run_id) == [(mlflow_run_id, "FINISHED", "active")]
    assert sorted(mlflow_traces(home, mlflow_run_id)) == sorted(
        r[0] for r in query(home, "SELECT example_id FROM outputs WHERE run_id = ?", [run_id])
    )


def test_a_run_stopped_in_its_mlflow_end_while_its_worker_reads_nothing_exits_after_the_grace(
    home: Path, env: dict[str, str], server: FakeLLMServer
) -> None:
    """As above, with the signal after the last row: the run waits in its MLflow end for
    every batch to reach the worker, which reads none while another process holds the
    store's write lock. It exits after the grace, the lock still held, printing its
    `--json` document (it printed none) and saying that `runs log` completes the MLflow
    run, which the worker ends KILLED once the lock is let go."""
    # Every call (2 rows are cached), then the rows' end (~0.5 s): the run then waits on
    # the pipe to the worker.
    run_id, out, err = stopped_with_the_store_locked(
        home, env, server, 2 * (ROWS - 2), settle_s=2.0, status=None
    )
    document = json_doc(out)  # the run, as after any other stop
    assert document["status"] == "finished" and document["rows_done"] == ROWS
    assert document["mlflow_run_id"] is None
    [(status,)] = query(home, "SELECT status FROM runs WHERE run_id = ?", [run_id])
    assert "interrupted while logging to MLflow" in last_line(err), err
    assert f"`harness runs log {run_id}` completes its MLflow run" in last_line(err), err
    assert status == "finished"

    mlflow_run_id = killed_mlflow_run(home, run_id)
    code, out, err = harness(env, "runs", "log", run_id, "--json")
    assert code == 0, err
    assert mlflow_runs(home, run_id) == [(mlflow_run_id, "FINISHED", "active")]
    ours = query(home, "SELECT example_id FROM outputs WHERE run_id = ?", [run_id])
    assert len(ours) == ROWS
    assert sorted(mlflow_traces(home, mlflow_run_id)) == sorted(r[0] for r in ours)


def test_a_finish_larger_than_the_pipe_to_a_worker_reading_nothing_gives_up_after_the_grace(
    home: Path, env: dict[str, str]
) -> None:
    """The run's end sent its own finish message (its metrics, by slice too, can pass the
    pipe's 64 KiB) straight into the pipe, with no limit: with a worker reading nothing
    (another process holds the store's write lock) the run stopped by a signal waited
    until the worker gave up at its 20 s busy timeout and failed as `database is locked`,
    and MLflow got no run. Now the finish gives up after the grace, the lock still held,
    and the worker reads the message cut short as the pipe's end: once the lock is let go
    it opens the MLflow run and ends it KILLED, and no spooled table is left behind."""
    import pandas as pd

    from harness.config import resolve_home
    from harness.errors import Interrupted
    from harness.interrupt import StopRequest
    from harness.runner.mlflow_worker import MlflowWorker
    from harness.tracking import RunRecord

    code, _, err = harness(env, *RUN, "--limit", "2")  # the store, verified: written with SQL
    assert code == 0, err
    now = time.time()
    head = RunRecord(
        run_id="a-run-of-many-slices", run_name=None, experiment="harness", params={},
        metrics={}, dataset_name="qa", dataset_version="v1", dataset_digest="d" * 64,
        dataset_rows=4, prompt_template="{input}", config={}, started_at=now - 5,
        finished_at=now, rows=None,
    )  # fmt: skip
    # ~160 KB of metrics, as 2,000 slice values of two metrics give
    metrics = {f"{m}/mean/by/id/{i:08d}": i / 2000 for m in ("a", "b") for i in range(2000)}
    holder = sqlite3.connect(home / "mlruns" / "mlflow.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    worker = MlflowWorker(resolve_home().tracking_uri)
    try:
        worker.begin(head, traces=True, register=True, known_run_id=None, keep_rows=None)
        stop = StopRequest(grace_s=1.0)
        stop.request(signal.SIGINT)
        rows = pd.DataFrame({"example_id": ["1"], "output": ["yes"]})
        record = dataclasses.replace(head, metrics=metrics, rows=rows)
        with pytest.raises(Interrupted, match="interrupted while logging to MLflow"):
            worker.finish(record, stop)
        assert not mlflow_runs(home, head.run_id)  # the worker still waits for the lock
        worker.close()
        assert worker._process.poll() is None  # left to finish alone
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert worker._process.wait(timeout=120) == 0
    [(_, status, _)] = mlflow_runs(home, head.run_id)
    assert status == "KILLED"
    assert list((home / "mlruns").rglob(".harness-*")) == []


def test_a_run_deleted_with_force_while_it_runs_stops_and_stores_nothing_more(
    home: Path, env: dict[str, str], server: FakeLLMServer
) -> None:
    """It went on calling the model for every row, wrote them into DuckDB under a run
    that no longer existed, and ended `error: no run 'ID'`."""
    process = start(env, *RUN, "--no-mlflow")
    wait_for(lambda: started_rows(server), 120, "the first calls")
    server.configure(latency_s=0.2)  # ~12 s more: still running when the delete comes
    [run_id] = run_ids(home)
    code, out, err = harness(env, "runs", "delete", run_id, "--force")
    assert code == 0 and out.startswith(f"deleted run {run_id} "), err
    _, err = process.communicate(timeout=120)
    assert process.returncode == 2
    assert last_line(err) == (
        f"error: run {run_id} was deleted while it ran (`harness runs delete --force`); "
        "it stopped, and the rows it had done are not kept"
    )
    assert server.stats()["requests_total"] < 2 * ROWS  # it did not go on to the end
    for table in ("runs", "outputs", "scores"):
        assert query(home, f"SELECT count(*) FROM {table}") == [(0,)], table


def test_after_a_stop_a_row_that_has_sent_nothing_sends_nothing(
    home: Path, env: dict[str, str], server: FakeLLMServer
) -> None:
    """Twice --concurrency rows are in flight, half of them waiting for a connection. After
    SIGTERM those went on to send their model calls (paying after the stop, and taking the
    grace from the rows that had paid); now only the rows that had sent finish."""
    server.configure(latency_s=1.0)  # the first 4 model calls are answered after the stop
    process = start(env, *RUN, "--json")
    wait_for(lambda: started_rows(server, 4), 120, "the first calls")
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 143, err
    requests = [r for r in server.stats()["requests"] if not r["path"].startswith("/_")]
    models = [r for r in requests if "impartial judge" not in r["body"]]
    assert len(models) == 4  # none sent after the stop
    assert json_doc(out)["rows_done"] == 4  # the 4 that had sent, finished with their judge
    assert len(requests) == 8 and max(paid(server).values()) == 1


def _app_rows_stopped(
    home: Path, env: dict[str, str], server: FakeLLMServer, app: str, *flags: str
) -> int:
    """Run python:harness_app_models:APP (1 s a call, concurrency 2), SIGTERM it at its
    first calls; check it stopped with no failed row, and return the rows it stored."""
    server.configure(latency_s=1.0)
    process = start(env, "run", "--data", "qa", "--model", f"python:harness_app_models:{app}",
                    "--metric", "word_count", *flags, "--concurrency", "2", "--json")  # fmt: skip
    wait_for(lambda: started_rows(server, 2), 120, "the first calls")
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 143, err
    document = json_doc(out)
    stored = query(home, "SELECT error FROM outputs WHERE run_id = ?", [document["run_id"]])
    assert document["errors"] == 0 and stored and all(e is None for (e,) in stored), err
    return len(stored)


def test_a_stop_drops_an_apps_row_that_has_sent_nothing_rather_than_failing_it(
    home: Path, env: dict[str, str], server: FakeLLMServer
) -> None:
    """A python: app's own calls (async, on the loop) go through the same gate: the row of
    an app whose first call is halted is not stored as a failure (it is the stop's, and
    --resume runs it), and nothing is paid after the stop for such a row."""
    stored = _app_rows_stopped(home, env, server, "rag_async")
    assert server.stats()["requests_total"] == 2 * stored  # an embedding and a chat a row


def test_a_stop_finishes_a_sync_apps_rows_that_paid_and_their_judges(
    home: Path, env: dict[str, str], server: FakeLLMServer
) -> None:
    """A python: app with the sync SDK sends from its own thread: those sends did not count
    as the row's, so after the stop the row's judge was halted and the row, paid for, was
    dropped (0 rows stored of the 4 that had paid)."""
    judged = ("--judge", "correctness", "--judge-model", "openai:/j")
    stored = _app_rows_stopped(home, env, server, "rag", *judged)
    # An embedding, a chat and a judge a row: nothing paid for a row that was not stored.
    assert server.stats()["requests_total"] == 3 * stored


def test_a_second_ctrl_c_exits_at_once_and_leaves_a_resumable_run(
    home: Path, env: dict[str, str], server: FakeLLMServer
) -> None:
    process = start(env, *RUN, "--json")
    wait_for(lambda: started_rows(server), 120, "the first calls")
    server.configure(latency_s=3.0)  # the calls in flight now keep the first stop waiting
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    time.sleep(0.5)  # signals of one kind do not queue: the second must come after the first
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130
    assert out == ""  # exited at once: no document
    [run_id] = run_ids(home)
    assert last_line(err) == (
        f"error: interrupted again: exiting now; `harness run --resume {run_id}` goes on "
        "from the rows stored"
    )
    # Left `running` in DuckDB by a process that is gone: shown as interrupted.
    assert query(home, "SELECT status FROM runs") == [("running",)]
    code, out, _ = harness(env, "runs", "list", "--json")
    [listed] = json_doc(out)  # type: ignore[misc]
    assert listed["status"] == "interrupted"
    assert listed["reason"].startswith(f"the process that ran it (pid {process.pid} on ")
    assert listed["reason"].endswith(f"is gone; resume it with `harness run --resume {run_id}`")

    wait_for(lambda: run_lock_free(home, run_id), 120, "the MLflow worker to end the run")
    server.configure(latency_s=0.04)  # the resume need not wait 3 s a call
    code, out, err = harness(env, "run", "--resume", run_id, "--json")
    assert code == 0, err
    assert json_doc(out)["rows_done"] == ROWS
    [(mlflow_run_id, status, _)] = mlflow_runs(home, run_id)
    assert status == "FINISHED" and len(mlflow_traces(home, mlflow_run_id)) == ROWS


def test_a_run_still_running_elsewhere_is_not_resumed_twice_and_a_killed_one_is(
    home: Path, env: dict[str, str], server: FakeLLMServer
) -> None:
    process = start(env, *RUN, "--no-mlflow")
    wait_for(lambda: started_rows(server), 120, "the first calls")
    server.configure(latency_s=0.5)  # still running while the second process tries
    [run_id] = run_ids(home)
    code, _, err = harness(env, "run", "--resume", run_id)
    assert code == 2
    assert err == (
        f"error: run {run_id} is running in another process (pid {process.pid} on "
        f"{err.split(' on ', 1)[1].split(')')[0]}); let it finish, or stop it (Ctrl-C) "
        "and resume then\n"
    )
    # An export now would be a file that says "running" for ever, with some of its rows.
    code, _, err = harness(env, "runs", "export", run_id, str(home / "now.jsonl"))
    assert code == 2 and err.startswith(f"error: run {run_id} is running in another process")
    assert not (home / "now.jsonl").exists()
    process.kill()  # SIGKILL: nothing runs its cleanup
    process.communicate()
    server.configure(latency_s=0.04)
    code, out, _ = harness(env, "runs", "list")
    assert code == 0 and "interrupted" in out
    code, out, err = harness(env, "run", "--resume", run_id, "--json")
    assert code == 0, err
    assert json_doc(out)["rows_done"] == ROWS
    assert query(home, "SELECT status, reason FROM runs") == [("finished", None)]


def test_ctrl_c_says_the_report_asked_for_was_not_written(
    home: Path, env: dict[str, str], server: FakeLLMServer, tmp_path: Path
) -> None:
    """`harness run --report FILE` stopped by Ctrl-C wrote no FILE and said nothing of it
    (docs/report.md: "written when the run ends"); it now says how to write it."""
    written = tmp_path / "run.html"
    process = start(env, *RUN, "--report", str(written))
    wait_for(lambda: started_rows(server), 120, "the first calls")
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    [run_id] = run_ids(home)
    assert not written.exists()
    assert (
        f"warning: the report was not written (the run did not finish); write it with "
        f"`harness report {run_id} -o {written}`"
    ) in err
    code, _, err = harness(env, "report", run_id, "-o", str(written))
    assert code == 0 and written.exists(), err
