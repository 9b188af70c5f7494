"""``harness.evaluate(model_id=...)``, or MLflow's active model, links the run's MLflow results
to that LoggedModel, as ``mlflow.evaluate`` does: the run's model input, its metrics logged
against the model (per dataset) and its traces. Read back through ``MlflowClient`` from real
SQLite stores: the project's own (the worker, with SQL) and the caller's active run's
(logged in the caller's process, through MLflow's API), and held against what
``mlflow.evaluate`` itself leaves for the same call."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import mlflow
import pandas as pd
import pytest
from test_active_run import answer, qa  # the same call mlflow.evaluate makes there

import harness
from harness.errors import ConfigError

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::DeprecationWarning")


def answer_frame(frame: pd.DataFrame) -> list[str]:
    """The same model as mlflow.evaluate calls it: a DataFrame of the inputs."""
    return [answer({"input": q}) for q in frame["inputs"]]


@pytest.fixture
def user_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The caller's own tracking URI (a SQLite file), set as MLflow's."""
    uri = "sqlite:///" + str(tmp_path / "team-tracking.db")
    monkeypatch.chdir(tmp_path)  # a bare SQLite URI's experiments keep artifacts in ./mlruns
    mlflow.set_tracking_uri(uri)
    try:
        yield uri
    finally:
        mlflow.set_tracking_uri(None)


def link_view(client: Any, run_id: str, model_id: str) -> dict[str, Any]:
    """How an MLflow run links to a LoggedModel: the run's model inputs, and which of the
    run's metrics the model holds, with their source run and whether they name a dataset."""
    run = client.get_run(run_id)
    model = client.get_logged_model(model_id)
    on_model = [m for m in model.metrics or [] if m.run_id == run_id]
    return {
        "model_inputs": [m.model_id for m in run.inputs.model_inputs],
        "model_has_run_metrics": {m.key for m in on_model} == set(run.data.metrics),
        "model_metrics_name_dataset": all(m.dataset_name and m.dataset_digest for m in on_model),
        "model_metric_values": all(run.data.metrics[m.key] == m.value for m in on_model),
    }


def test_model_id_in_an_active_run_links_as_mlflow_evaluate_does(user_uri: str) -> None:
    """Before: "model_id='m-...' is not supported", so a script porting mlflow.evaluate's
    link to its LoggedModel had to drop it. Now the run links to it as mlflow.evaluate's
    run does, and its traces too."""
    mlflow.set_experiment("team-qa")
    model = mlflow.create_external_model(name="my-agent")
    client = mlflow.MlflowClient(user_uri)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with mlflow.start_run() as reference:
            mlflow.evaluate(
                answer_frame, qa(), targets="ground_truth", model_type=None,
                extra_metrics=[mlflow.metrics.exact_match()], model_id=model.model_id,
            )  # fmt: skip
        with mlflow.start_run() as run:
            result = harness.evaluate(answer, qa(), targets="ground_truth", model_id=model.model_id)
    assert result.mlflow_run_id == run.info.run_id
    expected = link_view(client, reference.info.run_id, model.model_id)
    assert expected["model_inputs"] == [model.model_id]  # what mlflow.evaluate leaves
    assert link_view(client, run.info.run_id, model.model_id) == expected
    experiment = run.info.experiment_id
    traces = client.search_traces(locations=[experiment], model_id=model.model_id)
    assert (
        sorted(t.info.request_metadata["mlflow.sourceRun"] for t in traces) == [run.info.run_id] * 2
    )  # one per row, on the model's Traces tab
    assert client.get_run(run.info.run_id).data.tags["harness.model_id"] == model.model_id
    assert [m.model_id for m in client.search_logged_models([experiment])] == [model.model_id]


def test_the_active_model_by_name_links_a_run_in_the_project_store(
    home: Path, tmp_path: Path
) -> None:
    """mlflow.set_active_model(name=...) on the project's store, then harness.evaluate
    outside a run: the worker writes the run (with SQL) linked to that model, and makes no
    model of its own for the configuration; sync copies the link."""
    uri = "sqlite:///" + str((home / "mlruns" / "mlflow.db").resolve())
    harness.evaluate(answer, qa(), targets="ground_truth", run_name="first")  # the store
    mlflow.set_tracking_uri(uri)
    try:
        mlflow.set_experiment("harness")
        with mlflow.set_active_model(name="my-agent") as active:
            result = harness.evaluate(answer, qa(), targets="ground_truth")
    finally:
        mlflow.set_tracking_uri(None)
    client = mlflow.MlflowClient(uri)
    run_id = str(result.mlflow_run_id)
    run = client.get_run(run_id)
    assert "(sql-direct)" in run.data.tags["harness.traces"]
    assert link_view(client, run_id, active.model_id) == {
        "model_inputs": [active.model_id],
        "model_has_run_metrics": True,
        "model_metrics_name_dataset": True,
        "model_metric_values": True,
    }
    assert run.data.tags["harness.model_id"] == active.model_id
    traces = client.search_traces(locations=[run.info.experiment_id], model_id=active.model_id)
    assert len(traces) == 2
    models = client.search_logged_models([run.info.experiment_id])
    assert active.model_id in {m.model_id for m in models}
    # The first run's configuration model stays the first run's only.
    [own] = [m for m in models if m.model_id != active.model_id]
    assert [m.run_id for m in own.metrics or []] and run_id not in {
        m.run_id for m in own.metrics or []
    }
    # Sync copies the model the run links to, and the copy links to the model's copy.
    from harness.tracking.sync import SyncTarget, sync

    target_uri = "sqlite:///" + str(tmp_path / "target.db")
    sync(uri, SyncTarget(target_uri), experiments=["harness"])
    target = mlflow.MlflowClient(target_uri)
    [copy] = target.search_runs(
        [target.get_experiment_by_name("harness").experiment_id],
        filter_string=f"tags.`harness.run_id` = '{result.run_id}'",
    )
    [model_copy] = [m.model_id for m in target.get_run(copy.info.run_id).inputs.model_inputs]
    assert target.get_logged_model(model_copy).tags["harness.source_model_id"] == active.model_id
    assert copy.data.tags["harness.model_id"] == model_copy
    assert {m.run_id for m in target.get_logged_model(model_copy).metrics or []} == {
        copy.info.run_id
    }
    copied_traces = target.search_traces(locations=[copy.info.experiment_id], model_id=model_copy)
    assert len(copied_traces) == 2


def _stored(home: Path) -> tuple[int, int]:
    db = home / "harness.duckdb"
    if not db.exists():
        return 0, 0
    with duckdb.connect(str(db), read_only=True) as con:
        found = con.execute(
            "SELECT (SELECT count(*) FROM datasets), (SELECT count(*) FROM runs)"
        ).fetchone()
    assert found is not None
    return found[0], found[1]


def test_a_model_the_target_store_does_not_hold_is_refused_before_the_run(
    home: Path, user_uri: str
) -> None:
    """A model from another store is not in the one the run logs to: one line saying
    where harness looked and what to do, and nothing stored."""
    model = mlflow.create_external_model(name="my-agent")  # in the caller's store
    harness_db = (home / "mlruns" / "mlflow.db").resolve()
    before = _stored(home)
    with pytest.raises(ConfigError) as raised:
        harness.evaluate(answer, qa(), targets="ground_truth", model_id=model.model_id)
    assert str(raised.value) == (
        f"model_id={model.model_id!r} is not a LoggedModel in harness's MLflow store "
        f"(sqlite:///{harness_db}), where harness.evaluate logs outside an active MLflow "
        "run: call it inside `with mlflow.start_run():` on the tracking URI that holds the "
        "model (as mlflow.evaluate logs there)"
    )
    with mlflow.set_active_model(model_id=model.model_id), pytest.raises(ConfigError) as raised:
        harness.evaluate(answer, qa(), targets="ground_truth")
    assert str(raised.value).startswith(
        f"the active model {model.model_id!r} (mlflow.set_active_model) is not a LoggedModel "
        "in harness's MLflow store"
    )
    with mlflow.start_run(), pytest.raises(ConfigError) as raised:
        harness.evaluate(answer, qa(), targets="ground_truth", model_id="m-0123abcd")
    assert str(raised.value) == (
        f"model_id='m-0123abcd' is not a LoggedModel in the active MLflow run's tracking "
        f"store ({user_uri}): create it there (mlflow.create_external_model), or pass the id "
        "of one it holds"
    )
    with pytest.raises(ConfigError) as raised:
        harness.evaluate(
            answer, qa(), targets="ground_truth", model_id=model.model_id, log_to_mlflow=False
        )
    assert str(raised.value) == (
        f"model_id={model.model_id!r} links the MLflow results to a LoggedModel, and "
        "log_to_mlflow=False logs none: drop one of them"
    )
    assert _stored(home) == before


def test_a_resumed_run_keeps_its_link(home: Path, tmp_path: Path) -> None:
    """`harness run --resume` of a run linked to the caller's model completes the same
    MLflow run, still linked to that model (its rows run again, their traces too)."""
    from click.testing import CliRunner

    from harness.cli import cli

    uri = "sqlite:///" + str((home / "mlruns" / "mlflow.db").resolve())
    harness.evaluate(answer, qa(), targets="ground_truth", run_name="first")  # the store
    client = mlflow.MlflowClient(uri)
    experiment = client.get_experiment_by_name("harness").experiment_id
    model = client.create_logged_model(experiment, name="my-agent")
    flag = tmp_path / "flag"
    flag.touch()
    data = pd.DataFrame({"id": ["1", "2", "3", "4"], "input": ["a", "b", "c", "d"],
                         "expected": ["a", "b", "c", "d"]})  # fmt: skip
    os.environ["HARNESS_TEST_FLAG"] = str(flag)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            first = harness.evaluate(
                "python:harness_test_models:fail_while_flagged", data, model_id=model.model_id,
                metrics=["exact_match"],
            )  # fmt: skip
    finally:
        del os.environ["HARNESS_TEST_FLAG"]
    assert first.result.errors == 2
    result = CliRunner().invoke(cli, ["run", "--resume", first.run_id, "--json"])
    assert result.exit_code == 0, result.output
    run_id = str(first.mlflow_run_id)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.metrics["exact_match/mean"] == 1.0
    assert [m.model_id for m in run.inputs.model_inputs] == [model.model_id]
    linked = client.get_logged_model(model.model_id).metrics or []
    counts = {m.value for m in linked if m.key == "exact_match/count" and m.run_id == run_id}
    assert counts == {2.0, 4.0}  # the rows scored at the first end, then at the resume's
    traces = client.search_traces(locations=[experiment], model_id=model.model_id)
    assert len(traces) == 4


@pytest.mark.parametrize("gone", ["deleted", "another store"])
def test_a_resume_whose_model_the_store_lacks_is_refused_before_it_runs(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gone: str
) -> None:
    """Before: `harness run --resume` of a run linked to a model harness's store does not
    hold (deleted since, or the run logged into an active run of another store) ran and
    stored the remaining rows, then failed to log them (exit 74, "Logged model with ID
    ... not found"). Now it is refused before anything runs: one line, exit 2."""
    from click.testing import CliRunner

    from harness.cli import cli

    uri = "sqlite:///" + str((home / "mlruns" / "mlflow.db").resolve())
    harness.evaluate(answer, qa(), targets="ground_truth", run_name="first")  # the store
    client = mlflow.MlflowClient(uri)
    flag = tmp_path / "flag"
    flag.touch()
    monkeypatch.setenv("HARNESS_TEST_FLAG", str(flag))
    data = pd.DataFrame({"id": ["1", "2", "3", "4"], "input": ["a", "b", "c", "d"],
                         "expected": ["a", "b", "c", "d"]})  # fmt: skip
    model = "python:harness_test_models:fail_while_flagged"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if gone == "deleted":
            experiment = client.get_experiment_by_name("harness").experiment_id
            model_id = client.create_logged_model(experiment, name="my-agent").model_id
            first = harness.evaluate(model, data, model_id=model_id, metrics=["exact_match"])
            client.delete_logged_model(model_id)
        else:
            mlflow.set_tracking_uri("sqlite:///" + str(tmp_path / "team-tracking.db"))
            monkeypatch.chdir(tmp_path)
            try:
                model_id = mlflow.create_external_model(name="my-agent").model_id
                with mlflow.start_run():
                    first = harness.evaluate(
                        model, data, model_id=model_id, metrics=["exact_match"]
                    )
            finally:
                mlflow.set_tracking_uri(None)
    monkeypatch.delenv("HARNESS_TEST_FLAG")
    assert first.result.errors == 2
    from harness.store.runs import get_run

    def state() -> tuple[Any, ...]:
        run = get_run(home / "harness.duckdb", first.run_id)
        return run.status, run.rows_done, run.errors, run.mlflow_run_id, run.mlflow_pending

    before = state()
    experiments = [e.experiment_id for e in client.search_experiments()]
    mlflow_runs = len(client.search_runs(experiments))
    result = CliRunner().invoke(cli, ["run", "--resume", first.run_id])
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"error: run {first.run_id} links its MLflow results to LoggedModel {model_id} "
        f"(model_id=), which harness's MLflow store ({uri}) does not hold: it was deleted, "
        "or the run was logged into an active MLflow run of another store; `harness run "
        "--resume` would store its rows, then fail to log them: start a new run instead, "
        "with harness.evaluate(..., model_id=...) where the model is (its calls come from "
        "the cache)"
    ]
    # `harness runs log` of it failed alike (exit 74); it is refused the same way.
    logged = CliRunner().invoke(cli, ["runs", "log", first.run_id])
    assert logged.exit_code == 2, logged.output
    assert logged.stderr.splitlines() == [
        result.stderr.splitlines()[0].replace(
            "`harness run --resume` would store its rows, then fail to log them",
            "`harness runs log` would fail",
        )
    ]
    assert state() == before  # nothing ran, nothing was stored or logged
    assert len(client.search_runs(experiments)) == mlflow_runs


def test_harness_run_model_id_links_the_run_as_model_id_does(home: Path, tmp_path: Path) -> None:
    """`harness run` had no --model-id ("No such option"), so a CLI run could not link to
    the LoggedModel harness.evaluate(model_id=...) links to. It takes the same path: the
    link read back through MlflowClient, and an id the project's store does not hold
    refused in one line, exit 2, with nothing stored."""
    import json

    from click.testing import CliRunner

    from harness.cli import cli
    from harness.store.runs import list_runs

    data = tmp_path / "qa.jsonl"
    data.write_text('{"input": "a", "expected": "a"}\n{"input": "b", "expected": "c"}\n')
    cli_runner = CliRunner()
    imported = cli_runner.invoke(cli, ["data", "import", str(data), "--name", "qa"])
    assert imported.exit_code == 0, imported.stderr
    run = ["run", "--data", "qa", "--model", "echo", "--prompt", "{input}", "--metric",
           "exact_match", "--json"]  # fmt: skip
    first = cli_runner.invoke(cli, run)  # makes the project's store
    assert first.exit_code == 0, first.stderr
    uri = "sqlite:///" + str((home / "mlruns" / "mlflow.db").resolve())
    client = mlflow.MlflowClient(uri)
    experiment = client.get_experiment_by_name("harness").experiment_id
    model = client.create_logged_model(experiment, name="my-agent")
    linked = cli_runner.invoke(cli, [*run, "--model-id", model.model_id])
    assert linked.exit_code == 0, linked.stderr
    run_id = json.loads(linked.stdout)["mlflow_run_id"]
    assert link_view(client, run_id, model.model_id) == {
        "model_inputs": [model.model_id],
        "model_has_run_metrics": True,
        "model_metrics_name_dataset": True,
        "model_metric_values": True,
    }
    assert client.get_run(run_id).data.tags["harness.model_id"] == model.model_id
    assert len(client.search_traces(locations=[experiment], model_id=model.model_id)) == 2
    runs_before = len(list_runs(home / "harness.duckdb"))
    mlflow_runs_before = len(client.search_runs([experiment]))
    refused = cli_runner.invoke(cli, [*run, "--model-id", "m-nosuchmodel"])
    assert refused.exit_code == 2
    assert refused.stdout == ""
    assert refused.stderr.startswith("error: --model-id 'm-nosuchmodel' is not a LoggedModel")
    assert refused.stderr.count("\n") == 1 and "harness run logs" in refused.stderr
    assert len(list_runs(home / "harness.duckdb")) == runs_before
    assert len(client.search_runs([experiment])) == mlflow_runs_before
