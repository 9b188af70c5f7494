"""Ctrl-C in a sweep stops the sweep, keeps what each run paid for, and says how to finish it.

One test signals a real `harness run` sweep mid-run against the fake LLM server; the other
sends the signal from inside a run's end (a batch metric), where a run takes no new rows.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from processes import (
    harness,
    harness_env,
    import_rows,
    json_doc,
    last_line,
    mlflow_runs,
    paid,
    query,
    run_lock_free,
    start,
    wait_for,
)

from harness.errors import Interrupted
from harness.metrics import BatchMetric, BatchResult, Columns, register_metric
from harness.metrics.registry import registered
from harness.runner.config import RunConfig
from harness.runner.sweep import run_sweep
from harness.testing import FakeLLMServer

ROWS = 40
SWEEP = (
    "run", "--data", "qa", "--model", "openai:/m", "--metric", "exact_match",
    "--param", "seed=1", "--param", "seed=2", "--param", "seed=3", "--concurrency", "2",
)  # fmt: skip


@pytest.fixture
def server() -> Iterator[FakeLLMServer]:
    # 40 ms a call at concurrency 2: each run of 40 rows takes ~1 s, time to signal it.
    with FakeLLMServer(latency_s=0.04, max_recorded=100_000) as running:
        yield running


def test_ctrl_c_stops_the_sweep_and_running_it_again_pays_only_for_the_rest(
    home: Path, tmp_path: Path, server: FakeLLMServer
) -> None:
    env = harness_env(home, server)
    import_rows(env, tmp_path, ROWS)
    process = start(env, *SWEEP, "--no-mlflow", "--json")
    # Into the second run: the first is done, the third not started.
    wait_for(lambda: server.stats()["requests_total"] >= ROWS + 10, 120, "the second run")
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "Traceback" not in err
    document = json_doc(out)  # the sweep so far: the run done and the one stopped
    assert [run["values"] for run in document["runs"]] == [{"seed": 1}, {"seed": 2}]
    assert [run["status"] for run in document["runs"]] == ["finished", "interrupted"]
    stopped = document["runs"][1]
    assert last_line(err) == (
        f"error: sweep {document['sweep_id']} stopped after 1 of 3 runs: interrupted by "
        f"SIGINT with {stopped['rows_done']} of {ROWS} rows stored; resume with `harness "
        f"run --resume {stopped['run_id']}`; or run the same command again to finish the "
        "sweep (the calls already made come from the cache)"
    )
    assert query(home, "SELECT count(*) FROM runs") == [(2,)]

    code, out, err = harness(env, *SWEEP, "--no-mlflow", "--json")
    assert code == 0, err
    assert [run["rows_done"] for run in json_doc(out)["runs"]] == [ROWS] * 3
    assert max(paid(server).values()) == 1  # nothing paid for twice
    assert sum(paid(server).values()) == 3 * ROWS


def _sweep_stopped_as_its_first_run_ends(home: Path, qa_file: Path) -> Interrupted:
    """A 3-point sweep of `echo` over qa, SIGINT sent from its first run's end (a batch
    metric, where a run takes no new rows): the error it raised."""
    from harness.data import import_file

    import_file(qa_file, name="qa")
    signalled: list[int] = []

    def signal_once(columns: Columns) -> BatchResult:
        if not signalled:  # the first run's rows are all done: it is ending
            signalled.append(len(columns.ids))
            os.kill(os.getpid(), signal.SIGINT)
        return BatchResult(aggregates={"rows": float(len(columns.ids))})

    register_metric(BatchMetric("signal_once", "sends SIGINT once", False, signal_once))
    try:
        with pytest.raises(Interrupted) as raised:
            run_sweep(
                RunConfig(data="qa", model="echo", metrics=["signal_once"], mlflow=False),
                {"seed": [1, 2, 3]},
                home=home,
            )
    finally:
        registered().pop("signal_once", None)
    assert signalled
    return raised.value


def test_a_signal_as_a_run_ends_stops_the_sweep_before_its_next_run(
    home: Path, qa_file: Path
) -> None:
    stopped = _sweep_stopped_as_its_first_run_ends(home, qa_file)
    assert stopped.exit_code == 130
    sweep = stopped.result
    assert stopped.message == (
        f"sweep {sweep.sweep_id} stopped after 1 of 3 runs: interrupted by SIGINT; run the "
        "same command again to finish the sweep (the calls already made come from the cache)"
    )
    # The run that was ending finished; no other run started.
    assert [run.result.status for run in sweep.runs] == ["finished"]
    assert query(home, "SELECT status FROM runs") == [("finished",)]


# The worker writes the store in SQL, or through MLflow's API in a mode harness does not
# write itself (harness.tracking.mlflow_sqlite).
@pytest.mark.parametrize("api", [False, True], ids=["sql", "mlflow-api"])
def test_a_sweep_killed_outright_leaves_its_mlflow_parent_run_killed(
    home: Path, tmp_path: Path, server: FakeLLMServer, api: bool
) -> None:
    """kill -9 of a sweep during its second run: that run's logging worker outlives the
    process and ends its MLflow run KILLED (docs/mlflow.md), but the sweep's parent run,
    which only the sweep's process ended, stayed RUNNING for good."""
    env = harness_env(home, server, **({"MLFLOW_SQL_TRACE_ROLLUPS_ENABLED": "1"} if api else {}))
    import_rows(env, tmp_path, ROWS)
    process = start(env, *SWEEP)
    wait_for(lambda: server.stats()["requests_total"] >= ROWS + 10, 120, "the second run")
    process.kill()  # its process only: the worker, in a session of its own, lives on
    process.communicate(timeout=60)
    second = query(home, "SELECT run_id FROM runs ORDER BY created_at")[1][0]
    wait_for(lambda: run_lock_free(home, second), 120, "the worker to end the run")
    assert [status for _, status, _ in mlflow_runs(home, second)] == ["KILLED"]
    con = sqlite3.connect(home / "mlruns" / "mlflow.db")
    try:
        parents = con.execute(
            "SELECT r.status FROM runs r JOIN tags t ON t.run_uuid = r.run_uuid "
            "WHERE t.key = 'harness.sweep'"
        ).fetchall()
    finally:
        con.close()
    assert parents == [("KILLED",)]


def test_a_stopped_sweep_shown_again_says_how_many_of_its_runs_it_holds(
    home: Path, qa_file: Path
) -> None:
    """A sweep stopped after its first point was shown again by `harness runs show` as "1
    run over seed", as if it had had one point: nothing said that two never ran."""
    from click.testing import CliRunner

    from harness.cli import cli

    stopped = _sweep_stopped_as_its_first_run_ends(home, qa_file)
    sweep_id = stopped.result.sweep_id
    assert stopped.result.as_dict()["points"] == 3

    shown = CliRunner().invoke(cli, ["runs", "show", sweep_id])
    assert shown.exit_code == 0, shown.output
    assert f"sweep {sweep_id}: 1 of 3 runs over seed" in shown.stdout
    assert shown.stderr == (
        "note: only 1 of the sweep's 3 runs is stored (it was stopped before the others "
        "ran, or they were deleted): run the same command again to run them all\n"
    )
    shown = CliRunner().invoke(cli, ["runs", "show", sweep_id, "--json"])
    assert shown.exit_code == 0, shown.output
    document = json.loads(shown.stdout)
    assert document["points"] == 3 and len(document["runs"]) == 1
