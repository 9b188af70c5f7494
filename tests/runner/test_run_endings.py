"""A run that does not finish cleanly, with MLflow on: stopped at ``--max-cost``, finished
with failed calls, failed outright, finished with its MLflow end failed. Each test runs
`python -m harness run` against the fake LLM server (a priced model and a priced judge, so
every row costs two calls), and reads what the run left: its exit code and last line,
`runs show` (text and --json), and the MLflow run it names, read back through MLflow's own
client from the project's SQLite store.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from processes import (
    harness,
    harness_env,
    import_rows,
    json_doc,
    last_line,
    query,
    run_lock_free,
    wait_for,
)

from harness.testing import FakeLLMServer

ROWS = 30
RUN = (
    "run", "--data", "qa", "--model", "openai:/gpt-4o-mini", "--judge", "correctness",
    "--judge-model", "openai:/gpt-4o-mini", "--concurrency", "2", "--json",
)  # fmt: skip
PARTLY = "(partly logged: the rows stored so far)"


@pytest.fixture
def server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(latency_s=0.01, max_recorded=10_000) as running:
        yield running


@pytest.fixture
def env(home: Path, tmp_path: Path, server: FakeLLMServer) -> dict[str, str]:
    env = harness_env(home, server)
    # No retries: a 500 fails its call at once, and each one the server sends fails a row.
    (home / "harness.toml").write_text("[calls]\nmax_retries = 0\n")
    import_rows(env, tmp_path, ROWS)
    return env


def stored_rows(home: Path, run_id: str) -> list[tuple[str, str, str | None]]:
    """(example id, "ERROR" if its model call failed else "OK", its judge call's error) of
    the run's stored rows: what MLflow should hold of each (the trace's state, the error
    of its judge's feedback)."""
    return query(
        home,
        "SELECT o.example_id, CASE WHEN o.error IS NULL THEN 'OK' ELSE 'ERROR' END, "
        "min(s.error) FROM outputs o LEFT JOIN scores s ON s.run_id = o.run_id "
        "AND s.example_id = o.example_id AND s.metric = 'correctness' "
        "WHERE o.run_id = ? GROUP BY ALL ORDER BY o.example_id",
        [run_id],
    )


def shown(env: dict[str, str], run_id: str) -> tuple[list[str], dict[str, Any]]:
    """`runs show RUN`'s lines and `runs show RUN --json`'s document."""
    code, out, err = harness(env, "runs", "show", run_id)
    assert code == 0, err
    lines = out.splitlines()
    code, out, err = harness(env, "runs", "show", run_id, "--json")
    assert code == 0, err
    return lines, json_doc(out)


def mlflow_run(home: Path, mlflow_run_id: str) -> tuple[str, list[tuple[str, str, str | None]]]:
    """The MLflow run's status and its traces, as MLflow's client reads them: (row id, the
    trace's state, the error of its judge's feedback) each."""
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{home}/mlruns/mlflow.db")
    run = client.get_run(mlflow_run_id)
    traces = client.search_traces(
        locations=[run.info.experiment_id], run_id=mlflow_run_id, max_results=1000
    )

    def judge_error(trace: Any) -> str | None:
        found = [a for a in trace.info.assessments if a.name == "correctness"]
        assert len(found) <= 1  # none for a row whose model call failed
        return found[0].error.error_message if found and found[0].error else None

    return run.info.status, sorted(
        (str(t.info.client_request_id), str(t.info.state), judge_error(t)) for t in traces
    )


def tagged_mlflow_runs(home: Path, run_id: str) -> list[str]:
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{home}/mlruns/mlflow.db")
    found = client.search_runs(
        [e.experiment_id for e in client.search_experiments()],
        filter_string=f"tags.`harness.run_id` = '{run_id}'",
    )
    return [r.info.run_id for r in found]


def partly_logged(
    env: dict[str, str], home: Path, document: dict[str, Any]
) -> tuple[str, list[str], dict[str, Any]]:
    """Once the worker is done: the one MLflow run tagged with the run of ``document`` (its
    `harness run --json`), named as partly logged by that document, by `runs show` and by
    `runs show --json`; its id, and what `runs show` printed (text, document)."""
    run_id = document["run_id"]
    wait_for(lambda: run_lock_free(home, run_id), 120, "the MLflow worker to end the run")
    [mlflow_run_id] = tagged_mlflow_runs(home, run_id)
    lines, shown_doc = shown(env, run_id)
    assert f"MLflow run {mlflow_run_id} {PARTLY}" in lines
    assert shown_doc["mlflow_run_id"] is None
    assert shown_doc["mlflow_partial_run_id"] == mlflow_run_id
    assert document["mlflow_partial_run_id"] == mlflow_run_id  # the run's own --json too
    return mlflow_run_id, lines, shown_doc


def make_store(env: dict[str, str], home: Path, written: str) -> None:
    """With ``written="sql"``, a first run creates the MLflow store, so the MLflow run of the
    next one is written with SQL (harness.tracking.sql_run), not MLflow's API."""
    if written == "sql":
        code, _, err = harness(env, *RUN, "--limit", "2")
        assert code == 0, err
        from harness.tracking import tracking_uri_for
        from harness.tracking.mlflow_sqlite import verified_store

        assert verified_store(tracking_uri_for(home)) is not None


def resumed(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    """`harness run --resume ARGS`, and whether it or its MLflow worker (whose stderr is the
    run's) imported MLflow, from Python's own report of each import (PYTHONPROFILEIMPORTTIME)."""
    code, out, err = harness({**env, "PYTHONPROFILEIMPORTTIME": "1"}, "run", "--resume", *args)
    reported = [line for line in err.splitlines() if line.startswith("import time:")]
    assert reported  # the report is there to read
    imported = any(line.rsplit("|", 1)[-1].strip() == "mlflow" for line in reported)
    said = "\n".join(line for line in err.splitlines() if not line.startswith("import time:"))
    return code, out, said + ("\n(imported mlflow)" if imported else "")


def priced_total(tmp_path: Path, server: FakeLLMServer) -> float:
    """What the whole run costs, done in one go in a home of its own."""
    home = tmp_path / "clean"
    home.mkdir()
    env = harness_env(home, server)
    import_rows(env, tmp_path, ROWS)
    code, out, err = harness(env, *RUN, "--no-mlflow")
    assert code == 0, err
    server.reset()
    calls = json_doc(out)["calls"]
    total = float(calls["model"]["cost_usd"] + calls["judge"]["cost_usd"])
    assert total > 0  # priced: a budget can stop it
    return total


@pytest.mark.parametrize("written", ["mlflow-api", "sql"])
def test_a_run_stopped_at_max_cost_names_its_killed_mlflow_run_and_resume_finishes_it(
    home: Path, tmp_path: Path, env: dict[str, str], server: FakeLLMServer, written: str
) -> None:
    max_cost = round(0.5 * priced_total(tmp_path, server), 6)
    make_store(env, home, written)
    code, out, err = harness(env, *RUN, "--max-cost", str(max_cost))
    assert code == 1, err
    document = json_doc(out)
    run_id, done = document["run_id"], document["rows_done"]
    assert document["status"] == "stopped" and 0 < done < ROWS and document["errors"] == 0
    assert document["mlflow_run_id"] is None  # its logging did not complete
    assert last_line(err) == (
        f"error: stopped at the --max-cost budget of ${max_cost:.4f} with {done} of {ROWS} "
        f"rows done; finish with `harness run --resume {run_id} --max-cost USD`, a larger "
        "budget (the calls made so far count against it)"
    )
    assert "Traceback" not in err
    mlflow_run_id, lines, shown_doc = partly_logged(env, home, document)
    assert shown_doc["status"] == "stopped" and shown_doc["rows_done"] == done
    # The way on is the run's own: a resume with the budget that stopped it stops at once.
    assert lines[-1] == (
        f"go on with `harness run --resume {run_id} --max-cost USD`, a larger budget (the "
        "calls made so far count against it)"
    )
    # The MLflow run is KILLED and holds one trace per stored row, none failed.
    status, traces = mlflow_run(home, mlflow_run_id)
    assert status == "KILLED"
    assert traces == stored_rows(home, run_id)
    assert len(traces) == done and all(t[1:] == ("OK", None) for t in traces)

    # Continued with SQL in the verified store (whoever wrote it first): no MLflow import.
    code, out, err = resumed(env, run_id, "--max-cost", "1", "--json")
    assert code == 0 and "(imported mlflow)" not in err, err
    document = json_doc(out)
    assert document["status"] == "finished" and document["rows_done"] == ROWS
    assert document["mlflow_run_id"] == mlflow_run_id  # the same MLflow run, completed
    assert document["mlflow_partial_run_id"] is None
    status, traces = mlflow_run(home, mlflow_run_id)
    assert status == "FINISHED" and len({t[0] for t in traces}) == len(traces) == ROWS
    lines, shown_doc = shown(env, run_id)
    assert f"MLflow run {mlflow_run_id}" in lines
    assert shown_doc["mlflow_run_id"] == mlflow_run_id
    assert shown_doc["mlflow_partial_run_id"] is None
    assert tagged_mlflow_runs(home, run_id) == [mlflow_run_id]


def test_a_run_with_failed_calls_exits_1_and_logs_its_finished_mlflow_run(
    home: Path, env: dict[str, str], server: FakeLLMServer
) -> None:
    """Each 500 fails one row (a failed model call sends no judge call), and the run
    finishes: exit 1, the failures counted and explained; its MLflow run is complete."""
    failing = 4
    server.configure(fault_script=["ok"] * 6 + ["error_500"] * failing)
    code, out, err = harness(env, *RUN)
    assert code == 1, err
    document = json_doc(out)
    run_id = document["run_id"]
    assert document["status"] == "finished" and document["rows_done"] == ROWS
    assert document["errors"] == failing
    failed_calls = document["calls"]["model"]["errors"] + document["calls"]["judge"]["errors"]
    assert failed_calls == failing == server.stats()["faults"]["error_500"]
    failed = {kind: entry["failed"] for kind, entry in document["failures"].items()}
    assert sum(failed.values()) == failing
    assert err.startswith(f"error: {failing} of {ROWS} rows failed (")
    assert err.endswith(f"retry them with `harness run --resume {run_id}`\n")
    assert "HTTP 500" in err and err.count("\n") == 1
    mlflow_run_id = document["mlflow_run_id"]
    assert mlflow_run_id is not None
    lines, shown_doc = shown(env, run_id)
    assert lines[0].startswith(f"run {run_id}  finished  ")
    assert lines[0].endswith(f"{ROWS}/{ROWS} rows, {failing} failed")
    assert (
        f"MLflow run {mlflow_run_id}" in lines
        and f"go on with `harness run --resume {run_id}`" in lines
    )
    assert shown_doc["mlflow_run_id"] == mlflow_run_id
    assert shown_doc["mlflow_partial_run_id"] is None
    # MLflow: FINISHED, a trace per row, the failed rows' in error.
    status, traces = mlflow_run(home, mlflow_run_id)
    assert status == "FINISHED"
    rows = stored_rows(home, run_id)
    assert traces == rows
    assert sum(state == "ERROR" or error is not None for _, state, error in rows) == failing

    code, out, err = resumed(env, run_id, "--json")  # answered now
    assert code == 0 and "(imported mlflow)" not in err, err
    document = json_doc(out)
    assert document["errors"] == 0 and document["mlflow_run_id"] == mlflow_run_id
    status, traces = mlflow_run(home, mlflow_run_id)
    assert status == "FINISHED" and traces == [(row, "OK", None) for row, _, _ in rows]
    assert tagged_mlflow_runs(home, run_id) == [mlflow_run_id]


@pytest.mark.parametrize("written", ["mlflow-api", "sql"])
def test_a_failed_run_names_its_failed_mlflow_run_and_resume_finishes_it(
    home: Path, env: dict[str, str], server: FakeLLMServer, written: str
) -> None:
    """A replay miss mid-run fails the run (exit 1, the miss explained); its MLflow run is
    FAILED, holding the traces of the rows stored (those that missed among them, failed),
    and named as partly logged."""
    make_store(env, home, written)
    code, _, err = harness(env, *RUN, "--limit", "10", "--no-mlflow")  # caches 10 rows
    assert code == 0, err
    code, out, err = harness(env, *RUN, "--cache", "replay")
    assert code == 1, err
    document = json_doc(out)
    run_id, done = document["run_id"], document["rows_done"]
    # The ten rows cached, then the rows in flight that missed: stored as failed.
    missed = done - 10
    assert document["status"] == "failed" and missed >= 1
    assert document["reason"].startswith("--cache replay: the model call for row ")
    assert document["errors"] == document["calls"]["model"]["errors"] == missed
    assert document["mlflow_run_id"] is None
    assert last_line(err).startswith("error: --cache replay: the model call for row ")
    assert last_line(err).endswith(f"; run {run_id} failed (see `harness runs show {run_id}`)")
    assert "Traceback" not in err
    mlflow_run_id, lines, _ = partly_logged(env, home, document)
    assert lines[0].startswith(f"run {run_id}  failed  ")
    status, traces = mlflow_run(home, mlflow_run_id)
    assert status == "FAILED"
    assert traces == stored_rows(home, run_id)
    assert sorted(t[1:] for t in traces) == [("ERROR", None)] * missed + [("OK", None)] * 10

    # Once the cache holds every call (another run makes them), the resume replays the rest.
    code, _, err = harness(env, *RUN, "--no-mlflow")
    assert code == 0, err
    code, out, err = resumed(env, run_id, "--json")
    assert code == 0 and "(imported mlflow)" not in err, err
    document = json_doc(out)
    assert document["status"] == "finished" and document["rows_done"] == ROWS
    assert document["mlflow_run_id"] == mlflow_run_id
    status, traces = mlflow_run(home, mlflow_run_id)
    assert status == "FINISHED" and len({t[0] for t in traces}) == len(traces) == ROWS
    lines, shown_doc = shown(env, run_id)
    assert (
        shown_doc["mlflow_run_id"] == mlflow_run_id and shown_doc["mlflow_partial_run_id"] is None
    )


def test_a_finished_run_whose_mlflow_end_failed_names_its_mlflow_run_everywhere(
    home: Path, env: dict[str, str]
) -> None:
    """Every row is stored, then the MLflow run's end fails: its experiment's artifacts
    folder is a file (root writes through any chmod). The MLflow run holds every row's
    trace, FAILED, and `runs log` completes it. `runs show --json` and `runs list --json`
    named it (mlflow_partial_run_id) while `harness run --json` said null and `runs show`
    named no MLflow run; all four name it now."""
    make_store(env, home, "sql")
    with sqlite3.connect(home / "mlruns" / "mlflow.db") as con:
        [(location,)] = con.execute(
            "SELECT artifact_location FROM experiments WHERE experiment_id IN "
            "(SELECT experiment_id FROM runs)"
        ).fetchall()
    artifacts = Path(location)
    aside = artifacts.with_name("aside")
    artifacts.rename(aside)
    artifacts.write_text("in the way")
    code, out, err = harness(env, *RUN)
    assert code == 74, err
    document = json_doc(out)
    run_id, error = document["run_id"], document["mlflow_error"]
    assert document["status"] == "finished" and document["rows_done"] == ROWS
    assert document["mlflow_run_id"] is None and "Not a directory" in error
    mlflow_run_id, lines, _ = partly_logged(env, home, document)
    assert f"MLflow logging failed: {error}; log it with `harness runs log {run_id}`" in lines
    code, out, err = harness(env, "runs", "list", "--json")
    assert code == 0, err
    listed = {r["run_id"]: r["mlflow_partial_run_id"] for r in json.loads(out)}
    assert listed[run_id] == mlflow_run_id
    status, traces = mlflow_run(home, mlflow_run_id)
    assert status == "FAILED" and traces == stored_rows(home, run_id) and len(traces) == ROWS

    artifacts.unlink()
    aside.rename(artifacts)
    code, out, err = harness(env, "runs", "log", run_id, "--json")
    assert code == 0, err
    assert json_doc(out)["mlflow_run_id"] == mlflow_run_id
    assert mlflow_run(home, mlflow_run_id)[0] == "FINISHED"
    lines, shown_doc = shown(env, run_id)
    assert f"MLflow run {mlflow_run_id}" in lines and "partly logged" not in "\n".join(lines)
    assert shown_doc["mlflow_run_id"] == mlflow_run_id
    assert shown_doc["mlflow_partial_run_id"] is None
