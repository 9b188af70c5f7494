"""``harness sync`` against a real ``mlflow server`` on 127.0.0.1.

The sync target is a real MLflow tracking server (started once for this module, SQLite
backend, artifacts served over HTTP). Source runs are written with the plain MLflow client
and fluent APIs: params, metric histories with their own steps and timestamps, tags,
artifacts (a JSON table among them), a dataset input and traces with feedback and
expectations. Copies are compared with the source field by field.

Databricks cannot be reached from here: its configuration (environment variables,
``~/.databrickscfg`` profiles) and path mapping are tested without any network, and its
error path only against a stub HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.entities import AssessmentSource, ViewType

from harness.errors import ConfigError, Interrupted, TrackingError
from harness.secrets import redact
from harness.tracking.databricks_auth import resolve_databricks_credentials
from harness.tracking.sync import LOCK_FILE, SyncTarget, databricks_target, sync
from harness.tracking.sync_runs import (
    KILL_AFTER_ENV,
    KILL_SIGNAL_ENV,
    TAG_FINGERPRINT,
    TAG_SOURCE_RUN,
    Syncer,
)
from harness.tracking.sync_target import connection_lost, display_uri
from harness.tracking.sync_traces import META_SOURCE_ASSESSMENT

REPO = Path(__file__).resolve().parents[2]
SECRET = "dapi0123456789abcdefSECRET"
PYTHON = sys.executable
MLFLOW_BIN = Path(sys.executable).parent / "mlflow"
STORE_TRACE_TAGS = {
    "mlflow.artifactLocation",
    "mlflow.trace.spansLocation",
    "harness.source_trace_id",
}


# --- fixtures ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, str, Path]]:
    """Launch ``mlflow server`` on 127.0.0.1 (artifacts over HTTP); stop its group at the end."""
    root = tmp_path_factory.mktemp("target")
    port = _free_port()
    env = dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
    env.pop("MLFLOW_TRACKING_URI", None)
    command = [str(MLFLOW_BIN), "server", "--backend-store-uri", f"sqlite:///{root}/mlflow.db"]
    command += ["--artifacts-destination", str(root / "artifacts"), "--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", "1"]
    with open(root / "server.log", "wb") as log:
        proc = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        try:
            yield proc, f"http://127.0.0.1:{port}", root
        finally:
            # The server, its uvicorn workers and nothing else are in this process group;
            # a throw-away server needs no graceful shutdown.
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="module")
def server(server_process: tuple[Any, str, Path], source: tuple[str, Path]) -> str:
    """The server's URL once /health answers (it starts while ``source`` is being built)."""
    proc, url, root = server_process
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return url
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError((root / "server.log").read_text()[-2000:])
        time.sleep(0.3)


@contextmanager
def _tracking(uri: str) -> Iterator[None]:
    """Point the fluent API at ``uri``, exporting traces synchronously (no flush waits)."""
    previous = mlflow.get_tracking_uri()
    before = os.environ.get("MLFLOW_ENABLE_ASYNC_TRACE_LOGGING")
    os.environ["MLFLOW_ENABLE_ASYNC_TRACE_LOGGING"] = "false"
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("MLFLOW_ENABLE_ASYNC_TRACE_LOGGING")
        else:
            os.environ["MLFLOW_ENABLE_ASYNC_TRACE_LOGGING"] = before
        mlflow.set_tracking_uri(previous)


def _new_store(root: Path) -> str:
    (root / "mlruns" / "artifacts").mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{root}/mlruns/mlflow.db"


def _make_experiment(uri: str, root: Path, name: str, *, file_uri: bool = False) -> str:
    """An experiment whose artifacts live under ``root/mlruns/artifacts`` (path or file: URI)."""
    location = root / "mlruns" / "artifacts"
    location_text = location.as_uri() if file_uri else str(location)
    client = MlflowClient(uri)
    return client.create_experiment(name, artifact_location=location_text, tags={"team": "eval"})


def _log_eval_run(experiment: str, name: str, *, traces: int = 2, nested: bool = False) -> str:
    """One evaluation-like run, written with the fluent API like a user would.

    Call it inside ``_tracking(uri)``.
    """
    import pandas as pd

    rows = pd.DataFrame(
        {
            "input": [f"q{i}" for i in range(5)],
            "output": [f"a{i}" for i in range(5)],
            "score": [0.5, 1.0, 0.0, 1.0, 0.25],
        }
    )
    mlflow.set_experiment(experiment)
    with mlflow.start_run(run_name=name) as run:
        mlflow.log_params({"model": "echo", "temperature": "0.0", "prompt": "x" * 6000})
        client = MlflowClient(mlflow.get_tracking_uri())
        base = 1_700_000_000_000
        for step in range(4):
            client.log_metric(
                run.info.run_id, "loss", 1.0 / (step + 1), timestamp=base + 10 * step, step=step
            )
        mlflow.log_metric("accuracy", 0.75)
        mlflow.set_tags({"harness.version": "0.1.0", "purpose": "sync test"})
        mlflow.log_table(rows, "eval_results_table.json")
        mlflow.log_text("notes\n", "extra/notes.txt")
        dataset = mlflow.data.from_pandas(rows, name="qa", targets="output")
        mlflow.log_input(dataset, context="eval")
        for i in range(traces):
            _log_trace(i)
        if nested:
            with mlflow.start_run(run_name=f"{name}-child", nested=True):
                mlflow.log_param("child", "yes")
    return run.info.run_id


def _log_trace(i: int) -> str:
    with mlflow.start_span(name="row") as root:
        root.set_inputs({"question": f"q{i}"})
        with mlflow.start_span(name="llm", span_type="LLM") as child:
            child.set_inputs([{"role": "user", "content": f"q{i}"}])
            child.set_outputs(f"a{i}")
        root.set_outputs(f"a{i}")
        trace_id = root.trace_id
    mlflow.set_trace_tag(trace_id, "row", str(i))
    run = mlflow.active_run()
    mlflow.log_feedback(
        trace_id=trace_id,
        name="correct",
        value=bool(i % 2),
        rationale="why",
        source=AssessmentSource(source_type="LLM_JUDGE", source_id="judge"),
        # As harness's judges do: the run that produced the assessment.
        metadata={"mlflow.assessment.sourceRunId": run.info.run_id} if run else None,
    )
    mlflow.log_expectation(
        trace_id=trace_id,
        name="expected_response",
        value=f"a{i}",
        source=AssessmentSource(source_type="HUMAN", source_id="dataset"),
    )
    return trace_id


@pytest.fixture(scope="module")
def source(
    tmp_path_factory: pytest.TempPathFactory, server_process: tuple[Any, str, Path]
) -> tuple[str, Path]:
    """A local store with two experiments: two eval runs (one with a child) and a wide run."""
    root = tmp_path_factory.mktemp("source")
    uri = _new_store(root)
    _make_experiment(uri, root, "evals")
    _make_experiment(uri, root, "wide", file_uri=True)
    with _tracking(uri):
        _log_eval_run("evals", "first", traces=3, nested=True)
        second = _log_eval_run("evals", "second", traces=1)
        mlflow.set_experiment("evals")
        linked = _log_trace(7)  # outside any run, then linked to one (no mlflow.sourceRun)
    MlflowClient(uri).link_traces_to_run([linked], second)
    client = MlflowClient(uri)
    # Beyond one log_batch: 150 params, 120 tags, 2,500 metric values.
    wide = client.create_run(client.get_experiment_by_name("wide").experiment_id, run_name="wide")
    from mlflow.entities import Metric, Param, RunTag

    client.log_batch(wide.info.run_id, params=[Param(f"p{i}", str(i)) for i in range(100)])
    client.log_batch(
        wide.info.run_id,
        params=[Param(f"p{i}", str(i)) for i in range(100, 150)],
        tags=[RunTag(f"t{i}", str(i)) for i in range(100)],
    )
    client.log_batch(wide.info.run_id, tags=[RunTag(f"t{i}", str(i)) for i in range(100, 120)])
    for start in range(0, 2500, 1000):
        client.log_batch(
            wide.info.run_id,
            metrics=[
                Metric("curve", i * 0.5, 1_700_000_000_000 + i, i)
                for i in range(start, min(start + 1000, 2500))
            ],
        )
    client.log_text(wide.info.run_id, "a,b\n1,2\n", "data/wide.csv")  # under a file: URI
    client.set_terminated(wide.info.run_id, status="FAILED")
    return uri, root


# --- comparing a run with its copy ------------------------------------------------------


def _copies(server: str) -> dict[str, Any]:
    client = MlflowClient(server)
    found: dict[str, Any] = {}
    for exp in client.search_experiments(view_type=ViewType.ALL):
        for run in client.search_runs(
            [exp.experiment_id], run_view_type=ViewType.ALL, max_results=1000
        ):
            source_id = run.data.tags.get(TAG_SOURCE_RUN)
            if source_id:
                found.setdefault(source_id, []).append(run)
    return found


def _artifacts(client: MlflowClient, run_id: str, path: str | None = None) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for item in client.list_artifacts(run_id, path):
        if item.is_dir:
            files.update(_artifacts(client, run_id, item.path))
        else:
            local = client.download_artifacts(run_id, item.path)
            files[item.path] = Path(local).read_bytes()
    return files


def _history(client: MlflowClient, run_id: str, key: str) -> list[tuple]:
    return sorted((m.step, m.timestamp, m.value) for m in client.get_metric_history(run_id, key))


def _inputs(run: Any) -> list[tuple]:
    fields = ("name", "digest", "source_type", "source", "schema", "profile")
    return sorted(
        (*(getattr(i.dataset, f) for f in fields), tuple((t.key, t.value) for t in i.tags))
        for i in run.inputs.dataset_inputs
    )


class _Names:
    """What a copy names in place of a local prompt version or logged model: the target's
    oldest version of that prompt with the same template, and the model in the copy's
    experiment whose ``harness.source_model_id`` is the local model's id."""

    def __init__(self, src: MlflowClient, dst: MlflowClient, experiment_id: str) -> None:
        self.src, self.dst, self.experiment_id = src, dst, experiment_id

    def version(self, name: str, number: str) -> str:
        template = self.src.get_prompt_version(name, number).template
        same = [v for v in self.dst.search_prompt_versions(name) if v.template == template]
        return str(min(int(v.version) for v in same))

    def model(self, model_id: str) -> str:
        [found] = self.dst.search_logged_models(
            experiment_ids=[self.experiment_id],
            filter_string=f"tags.`harness.source_model_id` = '{model_id}'",
        )
        return found.model_id

    def param(self, key: str, value: str) -> str:
        if key != "prompt_uri":
            return value
        name, number = value.removeprefix("prompts:/").split("/")
        return f"prompts:/{name}/{self.version(name, number)}"

    def tag(self, key: str, value: str) -> str:
        if key in ("harness.model_id", "mlflow.modelId"):
            return self.model(value)
        if key == "mlflow.linkedPrompts":
            entries = json.loads(value)
            return json.dumps(
                [{**e, "version": self.version(e["name"], e["version"])} for e in entries]
            )
        return value


def _assert_same_run(src_uri: str, server: str, run_id: str, copy: Any) -> None:
    src, dst = MlflowClient(src_uri), MlflowClient(server)
    local = src.get_run(run_id)
    copy = dst.get_run(copy.info.run_id)
    names = _Names(src, dst, copy.info.experiment_id)
    assert copy.info.run_name == local.info.run_name
    assert (copy.info.start_time, copy.info.end_time, copy.info.status) == (
        local.info.start_time,
        local.info.end_time,
        local.info.status,
    )
    assert copy.data.params == {k: names.param(k, v) for k, v in local.data.params.items()}
    ours = {TAG_SOURCE_RUN, TAG_FINGERPRINT, "harness.source_store"}
    copied_tags = {k: v for k, v in copy.data.tags.items() if k not in ours}
    expected_tags = {k: names.tag(k, v) for k, v in local.data.tags.items()}
    if "mlflow.parentRunId" in expected_tags:  # points at the parent's copy
        parent = dst.search_runs(
            [copy.info.experiment_id],
            f"tags.`{TAG_SOURCE_RUN}` = '{expected_tags['mlflow.parentRunId']}'",
        )
        expected_tags["mlflow.parentRunId"] = parent[0].info.run_id
    assert copied_tags == expected_tags
    assert set(copy.data.metrics) == set(local.data.metrics)
    for key in local.data.metrics:
        assert _history(dst, copy.info.run_id, key) == _history(src, run_id, key), key
    assert _inputs(copy) == _inputs(local)
    local_models = [names.model(m.model_id) for m in local.inputs.model_inputs]
    assert [m.model_id for m in copy.inputs.model_inputs] == local_models
    assert _artifacts(dst, copy.info.run_id) == _artifacts(src, run_id)
    _assert_same_traces(src, dst, local, copy, names)


def _assert_same_traces(
    src: MlflowClient, dst: MlflowClient, local: Any, copy: Any, names: _Names
) -> None:
    mine = {
        t.info.trace_id: t
        for t in src.search_traces(
            locations=[local.info.experiment_id], run_id=local.info.run_id, max_results=500
        )
    }
    theirs = {
        t.info.trace_id: t
        for t in dst.search_traces(
            locations=[copy.info.experiment_id], run_id=copy.info.run_id, max_results=500
        )
    }
    assert set(theirs) == set(mine)
    for trace_id, trace in mine.items():
        info, other = trace.info, theirs[trace_id].info
        assert other.tags.get("harness.source_trace_id") == trace_id
        for field in (
            "request_time",
            "state",
            "request_preview",
            "response_preview",
            "client_request_id",
        ):
            assert getattr(other, field) == getattr(info, field), field
        # The server re-derives the duration from the span times at millisecond resolution
        # when it receives the spans, so it may differ by the rounding of one millisecond.
        assert abs(other.execution_duration - info.execution_duration) <= 1
        strip = lambda tags: {k: v for k, v in tags.items() if k not in STORE_TRACE_TAGS}  # noqa: E731
        assert strip(other.tags) == {k: names.tag(k, v) for k, v in strip(info.tags).items()}
        for key, value in info.trace_metadata.items():
            expected = copy.info.run_id if key == "mlflow.sourceRun" else names.tag(key, value)
            assert other.trace_metadata.get(key) == expected, key
        spans = lambda t: sorted((s.to_dict() for s in t.data.spans), key=lambda d: d["span_id"])  # noqa: E731
        assert spans(theirs[trace_id]) == spans(trace)
        copied = {a.assessment_id: a for a in other.assessments}
        assert set(copied) == {a.assessment_id for a in info.assessments}
        for assessment in info.assessments:
            twin = copied[assessment.assessment_id]
            for field in (
                "name",
                "source",
                "rationale",
                "expectation",
                "feedback",
                "span_id",
                "create_time_ms",
                "overrides",
            ):
                assert getattr(twin, field) == getattr(assessment, field), field
            if assessment.feedback is not None:  # Expectation.from_proto does not read `valid`
                assert twin.valid == assessment.valid
            assert twin.metadata[META_SOURCE_ASSESSMENT] == assessment.assessment_id
            expected = dict(assessment.metadata or {})
            if "mlflow.assessment.sourceRunId" in expected:  # points at the run's copy
                expected["mlflow.assessment.sourceRunId"] = copy.info.run_id
            assert {k: v for k, v in twin.metadata.items() if k != META_SOURCE_ASSESSMENT} == (
                expected
            )


def _assert_all_copied(src_uri: str, server: str) -> None:
    copies = _copies(server)
    src = MlflowClient(src_uri)
    local_runs = [r for e in src.search_experiments() for r in src.search_runs([e.experiment_id])]
    assert local_runs
    for run in local_runs:
        assert len(copies.get(run.info.run_id, [])) == 1, run.info.run_name
        _assert_same_run(src_uri, server, run.info.run_id, copies[run.info.run_id][0])


# --- the tests --------------------------------------------------------------------------


def test_sync_copies_every_field_then_a_second_sync_copies_nothing(server, source):
    src_uri, _ = source
    plan = sync(src_uri, SyncTarget(server), dry_run=True)
    assert [r.action for r in plan.runs] == ["create"] * 4
    assert _copies(server) == {}, "a dry run wrote to the target"
    assert plan.totals["traces"] == 5 and plan.totals["assessments"] == 10
    assert plan.totals["metrics"] == 2 * 5 + 2500
    assert plan.totals["params"] == 2 * 3 + 1 + 150
    assert plan.totals["artifacts"] == 2 * 2 + 1
    assert sorted(plan.experiments_created) == ["evals", "wide"]
    assert MlflowClient(server).get_experiment_by_name("evals") is None

    first = sync(src_uri, SyncTarget(server))
    assert [r.action for r in first.runs] == ["create"] * 4
    assert sorted(first.experiments_created) == ["evals", "wide"]
    assert first.totals == {**plan.totals}
    _assert_all_copied(src_uri, server)

    messages: list[str] = []
    second = sync(src_uri, SyncTarget(server), progress=messages.append)
    assert [r.action for r in second.runs] == ["skip"] * 4
    assert {k: v for k, v in second.totals.items() if k != "runs_skip"} == dict.fromkeys(
        [k for k in second.totals if k != "runs_skip"], 0
    )
    assert sum(len(v) for v in _copies(server).values()) == 4
    assert all(m.startswith("skip ") for m in messages)
    assert json.loads(json.dumps(second.as_dict()))["totals"]["runs_skip"] == 4


def test_a_sqlite_target_keeps_artifacts_beside_its_database(source, tmp_path, monkeypatch, capfd):
    """sync --tracking-uri sqlite:////backup/mlflow.db put the copied runs' artifacts in
    ./mlruns of the folder the sync ran in (MLflow's default for a bare SQLite URI): often
    inside the project home, so deleting the home deleted the backup's artifacts."""
    src_uri, _ = source
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    target = f"sqlite:///{tmp_path}/backup/mlflow.db"
    (tmp_path / "backup").mkdir()
    capfd.readouterr()
    said: list[str] = []
    report = sync(src_uri, SyncTarget(target), experiments=["evals"], progress=said.append)
    assert [r.action for r in report.runs] == ["create"] * 3
    # The new store's tables are made without MLflow's INFO lines on stderr ("Creating
    # initial MLflow database tables..."), and the lines agree with their counts.
    assert "INFO" not in capfd.readouterr().err
    assert any(": 1 param, " in line or " 1 input," in line for line in said), said
    experiment = MlflowClient(target).get_experiment_by_name("evals")
    location = Path(urlparse(experiment.artifact_location).path)
    assert location.parent == tmp_path / "backup" / "artifacts"
    assert location.name.startswith("evals-")
    copied = sorted(p.name for p in location.rglob("*") if p.is_file())
    assert copied and list(elsewhere.iterdir()) == []  # nothing under the sync's folder
    assert {r.action for r in sync(src_uri, SyncTarget(target), experiments=["evals"]).runs} == {
        "skip"
    }


def test_a_target_that_is_the_local_store_itself_is_refused(tmp_path, monkeypatch):
    """harness sync --tracking-uri sqlite:///HOME/mlruns/mlflow.db (the project's own
    store) copied each run into the store it came from, as a new run, exit 0."""
    uri = _new_store(tmp_path)
    _make_experiment(uri, tmp_path, "evals")
    client = MlflowClient(uri)
    client.create_run(client.get_experiment_by_name("evals").experiment_id, run_name="r")
    monkeypatch.chdir(tmp_path)  # the same file, named by a relative path
    for target in (uri, "sqlite:///mlruns/../mlruns/mlflow.db"):
        with pytest.raises(ConfigError) as refused:
            sync(uri, SyncTarget(target))
        assert str(refused.value) == (
            f"--tracking-uri {target} is this project's own MLflow store; sync copies it to "
            "another server or database"
        )
    assert len(client.search_runs([client.get_experiment_by_name("evals").experiment_id])) == 1


def test_a_dry_run_to_a_sqlite_database_not_made_yet_creates_nothing(source, tmp_path):
    """harness sync --tracking-uri sqlite:///backup/new.db --dry-run created the database
    (MLflow's full schema, ~1 MB) and its folder, though a dry run writes nothing: a typo
    in the path left a stray store behind. It now plans against an empty store of its own,
    thrown away after."""
    src_uri, _ = source
    target = f"sqlite:///{tmp_path}/backup/new.db"
    plan = sync(src_uri, SyncTarget(target), experiments=["evals"], dry_run=True)
    assert [r.action for r in plan.runs] == ["create"] * 3
    assert plan.experiments_created == ["evals"]
    assert plan.target == target
    assert not (tmp_path / "backup").exists()


def test_spans_uploaded_one_trace_at_a_time_as_to_databricks(server, tmp_path):
    """The Databricks way (no OTLP: each trace's spans as its ``traces.json`` artifact),
    run against the local MLflow server with bulk spans off: Databricks itself cannot run
    here, the path that writes to it can."""
    uri = _new_store(tmp_path)
    name = "per-trace-spans"
    _make_experiment(uri, tmp_path, name)
    with _tracking(uri):
        run_id = _log_eval_run(name, "r", traces=3)
    target = SyncTarget(server, bulk_spans=False)
    first = sync(uri, target, experiments=[name])
    assert [r.action for r in first.runs] == ["create"] and first.totals["traces"] == 3
    [copy] = _copies(server)[run_id]
    # Spans included, read back from the artifacts (MLflow's client finds an mlflow-artifacts
    # location through the global tracking URI: the reading side needs it set).
    with _tracking(server):
        _assert_same_run(uri, server, run_id, copy)
    copies = MlflowClient(server).search_traces(
        locations=[copy.info.experiment_id], run_id=copy.info.run_id, include_spans=False
    )
    assert len(copies) == 3
    assert all("mlflow.trace.spansLocation" not in t.info.tags for t in copies)  # not OTLP
    again = sync(uri, target, experiments=[name])
    assert [r.action for r in again.runs] == ["skip"]


def test_a_run_changed_locally_is_updated_in_place(server, source):
    src_uri, root = source
    sync(src_uri, SyncTarget(server))
    client = MlflowClient(src_uri)
    run = client.search_runs(
        [client.get_experiment_by_name("evals").experiment_id], "attributes.run_name = 'second'"
    )[0]
    run_id = run.info.run_id
    client.log_metric(run_id, "loss", 0.01, timestamp=1_800_000_000_000, step=9)
    client.set_tag(run_id, "reviewed", "yes")
    extra = root / "later.txt"
    extra.write_text("added after the first sync\n")
    client.log_artifact(run_id, str(extra), "extra")
    trace = client.search_traces(locations=[run.info.experiment_id], run_id=run_id)[0]
    feedback = next(a for a in trace.info.assessments if a.name == "correct")
    with _tracking(src_uri):
        mlflow.override_feedback(
            trace_id=trace.info.trace_id,
            assessment_id=feedback.assessment_id,
            value=True,
            rationale="a human said so",
        )

    before = sum(len(v) for v in _copies(server).values())
    report = sync(src_uri, SyncTarget(server))
    changed = [r for r in report.runs if r.action != "skip"]
    assert [(r.run_id, r.action) for r in changed] == [(run_id, "update")]
    assert (changed[0].metrics, changed[0].tags, changed[0].artifacts) == (1, 1, 1)
    assert (changed[0].traces, changed[0].assessments, changed[0].params) == (1, 1, 0)
    assert sum(len(v) for v in _copies(server).values()) == before
    _assert_all_copied(src_uri, server)
    assert [r.action for r in sync(src_uri, SyncTarget(server)).runs] == ["skip"] * 4


def _run_killed_sync(src_uri: str, server: str, kill_after: int) -> subprocess.CompletedProcess:
    code = (
        "import sys; from harness.tracking.sync import sync, SyncTarget; "
        "sync(sys.argv[1], SyncTarget(sys.argv[2]))"
    )
    env = dict(os.environ, **{KILL_AFTER_ENV: str(kill_after)}, PYTHONPATH=str(REPO))
    return subprocess.run(
        [PYTHON, "-c", code, src_uri, server], env=env, capture_output=True, timeout=120
    )


def test_a_sync_killed_half_way_resumes_without_duplicates(server, tmp_path):
    # 8 writes: the experiment, the first run, its batch, input, two artifacts and two trace
    # infos; the process dies before the spans of those traces and the run's fingerprint.
    kill_after = 8
    uri = _new_store(tmp_path)
    name = "resume"
    _make_experiment(uri, tmp_path, name)
    with _tracking(uri):
        run_ids = [_log_eval_run(name, f"r{i}", traces=2) for i in range(3)]

    killed = _run_killed_sync(uri, server, kill_after)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    partial = _copies(server)
    started = [rid for rid in run_ids if rid in partial]
    assert started, "the kill came before any run was created"
    assert all(len(partial[rid]) == 1 for rid in started)
    # The first run was cut off before its fingerprint (so it is known to be incomplete)
    # and before the spans of its two traces.
    cut = partial[started[-1]][0]
    assert TAG_FINGERPRINT not in cut.data.tags
    cut_traces = MlflowClient(server).search_traces(
        locations=[cut.info.experiment_id], run_id=cut.info.run_id, include_spans=False
    )
    assert len(cut_traces) == 2
    assert all("mlflow.trace.spansLocation" not in t.info.tags for t in cut_traces)

    resumed = sync(uri, SyncTarget(server), experiments=[name])
    actions = {r.run_id: r.action for r in resumed.runs}
    assert actions[started[-1]] == "update"
    assert all(actions[rid] == "create" for rid in run_ids if rid not in started)
    copies = _copies(server)
    for rid in run_ids:
        assert len(copies[rid]) == 1
        _assert_same_run(uri, server, rid, copies[rid][0])
    assert {r.action for r in sync(uri, SyncTarget(server), experiments=[name]).runs} == {"skip"}


def test_ctrl_c_stops_a_sync_between_writes_and_the_next_sync_goes_on(server, home):
    """A real SIGINT (the process sends it itself after 8 writes, so it lands mid-run):
    the write under way finishes, none starts after it, exit 130, and a second sync
    completes what the first began."""
    uri = _new_store(home)
    name = "interrupted"
    _make_experiment(uri, home, name)
    with _tracking(uri):
        run_ids = [_log_eval_run(name, f"r{i}", traces=2) for i in range(3)]
    env = dict(
        os.environ,
        **{KILL_AFTER_ENV: "8", KILL_SIGNAL_ENV: "INT"},
        HARNESS_HOME=str(home),
        PYTHONPATH=str(REPO),
    )
    done = subprocess.run(
        [PYTHON, "-m", "harness", "sync", "--tracking-uri", server, "--experiment", name],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 130, done.stderr
    assert "Traceback" not in done.stderr
    # Not "after 0 runs" alone: the first run is half on the target.
    assert done.stderr.splitlines()[-1] == (
        "error: sync interrupted by SIGINT after 0 runs and part of run interrupted/r0; "
        "what was copied stays, and the same `harness sync` again completes that run and "
        "goes on from there"
    )
    partial = _copies(server)
    assert [rid for rid in run_ids if rid in partial] == run_ids[:1]  # cut off in the first

    resumed = sync(uri, SyncTarget(server), experiments=[name])
    assert [r.action for r in resumed.runs] == ["update", "create", "create"]
    copies = _copies(server)
    for rid in run_ids:
        assert len(copies[rid]) == 1
        _assert_same_run(uri, server, rid, copies[rid][0])


def test_an_interrupted_json_sync_says_so_in_its_document(server, tmp_path):
    """`harness sync --json` stopped by SIGTERM (exit 143) printed an ordinary report of
    the runs done so far (`"runs": []`, every total 0), with nothing saying it was cut off
    nor that part of a run was on the target. It now says `"status": "interrupted"` and
    the reason, which names that run, as `harness run --json` does."""
    home = tmp_path / "json-home"
    uri = _new_store(home)
    name = "interrupted-json"
    _make_experiment(uri, home, name)
    with _tracking(uri):
        _log_eval_run(name, "r0", traces=2)
    env = dict(
        os.environ,
        **{KILL_AFTER_ENV: "8", KILL_SIGNAL_ENV: "TERM"},
        HARNESS_HOME=str(home),
        PYTHONPATH=str(REPO),
    )
    done = subprocess.run(
        [PYTHON, "-m", "harness", "sync", "--tracking-uri", server, "--experiment", name,
         "--json"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 143, done.stderr
    line = done.stderr.splitlines()[-1]
    assert line.startswith("error: sync interrupted by SIGTERM after 0 runs and part of run ")
    document = json.loads(done.stdout)
    assert (document["status"], "error: " + document["reason"]) == ("interrupted", line)
    assert document["runs"] == []


@pytest.mark.parametrize("dry_run", [True, False], ids=["dry-run", "nothing-to-copy"])
def test_ctrl_c_stops_a_sync_that_writes_nothing(server, source, dry_run):
    """Ctrl-C during a dry run, or a sync whose runs are all copied already (20 s for 200
    runs), was noticed only before a write: there was none, so the sync went on to the
    end and exited 0. It now stops before the next run."""
    src_uri, _ = source
    if not dry_run:
        sync(src_uri, SyncTarget(server))  # every run copied: the next sync only skips

    lines: list[str] = []

    def ctrl_c_after_the_first_run(line: str) -> None:
        lines.append(line)
        if len(lines) == 1:  # once: a second Ctrl-C ends the process at once
            os.kill(os.getpid(), signal.SIGINT)  # a real signal, to sync's own handler

    with pytest.raises(Interrupted) as stopped:
        sync(src_uri, SyncTarget(server), dry_run=dry_run, progress=ctrl_c_after_the_first_run)
    assert stopped.value.signum == signal.SIGINT
    assert stopped.value.message.startswith("sync interrupted by SIGINT after 1 run")
    assert len(stopped.value.result.runs) == 1


def _cli_sync(*args: str) -> Any:
    from click.testing import CliRunner

    from harness.cli import cli

    return CliRunner().invoke(cli, ["sync", *args])


def test_no_traces_then_a_sync_with_traces_copies_them_once(server, home):
    # The store of the project home, so the CLI syncs it too.
    uri = _new_store(home)
    name = "no-traces"
    _make_experiment(uri, home, name)
    with _tracking(uri):
        run_id = _log_eval_run(name, "r", traces=2)

    shown = _cli_sync("--tracking-uri", server, "--experiment", name, "--no-traces")
    assert shown.exit_code == 0, shown.stderr
    assert "without traces (--no-traces)" in shown.stdout
    [row] = [line.split("│") for line in shown.stdout.splitlines() if run_id in line]
    # action, params, metric values, tags, artifacts, traces
    dst, src = MlflowClient(server), MlflowClient(uri)
    local = src.get_run(run_id)
    tags = str(len(local.data.tags))
    assert [cell.strip() for cell in row[2:]] == ["create", "3", "5", tags, "2", "skipped"]
    assert shown.stderr.rstrip().endswith("(traces skipped)")
    [copy] = _copies(server)[run_id]
    assert dst.search_traces(locations=[copy.info.experiment_id], include_spans=False) == []
    assert copy.data.params == local.data.params
    for key in local.data.metrics:
        assert _history(dst, copy.info.run_id, key) == _history(src, run_id, key), key
    assert _artifacts(dst, copy.info.run_id) == _artifacts(src, run_id)
    assert (copy.info.status, copy.info.end_time) == (local.info.status, local.info.end_time)

    light = sync(uri, SyncTarget(server), experiments=[name], traces=False)
    assert [r.action for r in light.runs] == ["skip"] and light.as_dict()["traces_skipped"]

    full = sync(uri, SyncTarget(server), experiments=[name])
    assert not full.traces_skipped
    [result] = full.runs
    assert (result.action, result.traces, result.assessments) == ("update", 2, 4)
    assert (result.params, result.metrics, result.tags, result.artifacts) == (0, 0, 0, 0)
    copies = _copies(server)
    assert len(copies[run_id]) == 1
    _assert_same_run(uri, server, run_id, copies[run_id][0])  # traces, spans, assessments

    again = sync(uri, SyncTarget(server), experiments=[name])
    assert [r.action for r in again.runs] == ["skip"]
    assert again.totals["traces"] == again.totals["assessments"] == 0
    assert len(_copies(server)[run_id]) == 1


def test_a_second_sync_from_the_same_home_fails_at_once(server, home):
    uri = _new_store(home)
    name = "locked"
    _make_experiment(uri, home, name)
    with _tracking(uri):
        run_id = _log_eval_run(name, "r", traces=1)
    lock = home / "mlruns" / LOCK_FILE
    # Another process holds the lock, as a running sync would.
    code = (
        "import sys; from filelock import FileLock; lock = FileLock(sys.argv[1]); "
        "lock.acquire(); print('held', flush=True); sys.stdin.read()"
    )
    holder = subprocess.Popen(
        [PYTHON, "-c", code, str(lock)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        busy = _cli_sync("--tracking-uri", server, "--experiment", name)
        assert busy.exit_code == TrackingError.exit_code == 74  # not the user's mistake
        assert busy.stderr == (
            f"error: another harness sync from {home.resolve() / 'mlruns'} is running; "
            f"wait for it to finish (lock: {lock.resolve()})\n"
        )
        assert run_id not in _copies(server)
        with pytest.raises(TrackingError, match="another harness sync"):
            sync(uri, SyncTarget(server), experiments=[name])
        # A dry run writes nothing, so it needs no lock.
        assert _cli_sync("--tracking-uri", server, "--experiment", name, "--dry-run").exit_code == 0
    finally:
        holder.communicate("", timeout=30)  # stdin closed: the holder exits, the OS unlocks
    done = _cli_sync("--tracking-uri", server, "--experiment", name, "--json")
    assert done.exit_code == 0, done.stderr
    assert [r["action"] for r in json.loads(done.stdout)["runs"]] == ["create"]


def test_experiment_mapping_and_a_copy_deleted_on_the_target(server, source):
    src_uri, _ = source
    target = SyncTarget(server, experiment_path=lambda name: f"mirror/{name}")
    report = sync(src_uri, target, experiments=["wide"])
    assert [(r.action, r.target_experiment) for r in report.runs] == [("create", "mirror/wide")]
    dst = MlflowClient(server)
    mirror = dst.get_experiment_by_name("mirror/wide")
    [copy] = dst.search_runs([mirror.experiment_id])
    assert copy.info.run_id == report.runs[0].target_run_id
    assert dst.get_experiment_by_name("mirror/evals") is None
    assert dst.get_experiment(mirror.experiment_id).tags["team"] == "eval"

    dst.delete_run(copy.info.run_id)
    again = sync(src_uri, target, experiments=["wide"])
    assert [r.action for r in again.runs] == ["skip"]
    assert "deleted on the target" in again.runs[0].warnings[0]
    assert len(dst.search_runs([mirror.experiment_id], run_view_type=ViewType.ALL)) == 1


def test_an_experiment_deleted_on_the_target_says_how_to_restore_it(server, source):
    """The message said "restore it, or sync into another experiment", which a
    --tracking-uri sync has no way to do; it now names the command that restores it."""
    dst = MlflowClient(server)
    found = dst.get_experiment_by_name("wide")
    experiment_id = found.experiment_id if found else dst.create_experiment("wide")
    dst.delete_experiment(experiment_id)
    try:
        with pytest.raises(TrackingError) as caught:
            sync(source[0], SyncTarget(server), experiments=["wide"])
    finally:
        dst.restore_experiment(experiment_id)
    assert str(caught.value) == (
        f"experiment 'wide' is deleted on the tracking server {server}: restore it there "
        f"(`mlflow experiments restore -x {experiment_id}` with MLFLOW_TRACKING_URI set to "
        "it), then sync again"
    )


def test_unknown_local_experiment_is_a_config_error_naming_the_local_ones(server, source):
    with pytest.raises(ConfigError) as caught:
        sync(source[0], SyncTarget(server), experiments=["nope"])
    # what --experiment takes: a newcomer does not know harness logs to 'harness'
    assert (
        str(caught.value)
        == "no local experiment named 'nope'; the local ones: Default, evals, wide"
    )
    # Said first, with the target down too: it was "cannot reach the tracking server"
    # (exit 74), and the typo came up only once the server was back.
    port = _free_port()  # nothing listens there
    with pytest.raises(ConfigError) as caught:
        sync(source[0], SyncTarget(f"http://127.0.0.1:{port}"), experiments=["nope"])
    assert str(caught.value).startswith("no local experiment named 'nope'")


def test_unreachable_target_is_one_line_tracking_error(source):
    port = _free_port()  # nothing listens there
    with pytest.raises(TrackingError) as caught:
        sync(source[0], SyncTarget(f"http://127.0.0.1:{port}"))
    assert str(caught.value) == (
        f"cannot reach the tracking server http://127.0.0.1:{port}: Connection refused"
    )
    assert "\n" not in str(caught.value)
    # A token in the query was printed as it was given; its name stays, its value not.
    with pytest.raises(TrackingError) as caught:
        sync(source[0], SyncTarget(f"http://ana:pw@127.0.0.1:{port}/?token={SECRET}&v=2"))
    assert str(caught.value) == (
        f"cannot reach the tracking server http://127.0.0.1:{port}/?token=***&v=***: "
        "Connection refused"
    )


def test_a_password_in_the_target_is_scrubbed_from_mlflows_own_errors(source, monkeypatch):
    """A server that takes the connection and drops it: MLflow's error quotes the URL whole
    ("API request to http://ana:PASSWORD@... failed"), which sync printed as it was."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def drop() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:  # closed: the test is over
                return
            connection.close()

    threading.Thread(target=drop, daemon=True).start()
    try:
        with pytest.raises(TrackingError) as caught:
            sync(source[0], SyncTarget(f"http://ana:{SECRET}@127.0.0.1:{port}"))
    finally:
        listener.close()
    message = str(caught.value)
    assert message.startswith(f"cannot reach the tracking server http://127.0.0.1:{port}: ")
    assert f"ana:***@127.0.0.1:{port}" in message  # MLflow's own text, scrubbed
    assert SECRET not in message


def test_display_uri_masks_credentials_and_query_values():
    assert display_uri(f"https://ana:{SECRET}@mlflow.example:5000/x?token={SECRET}&flag") == (
        "https://mlflow.example:5000/x?token=***&flag"
    )
    assert display_uri(f"http://h/#access_token={SECRET}") == "http://h/#access_token=***"
    assert display_uri("sqlite:////abs/mlflow.db") == "sqlite:////abs/mlflow.db"  # as given
    assert display_uri("http://127.0.0.1:5000") == "http://127.0.0.1:5000"


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("notaurl", "--tracking-uri takes an MLflow server (http://HOST:PORT or https://...) "
         "or an MLflow database (sqlite:///PATH, postgresql://, mysql://, mssql://), not "
         "'notaurl'; for Databricks use --databricks"),
        ("ftp://x/y", "or an MLflow database (sqlite:///PATH, postgresql://, mysql://, "
         "mssql://), not 'ftp://x/y'; for Databricks use --databricks"),
        ("/some/folder", "not '/some/folder'"),
        ("http://", "not 'http://'"),
        (f"ftp://ana:{SECRET}@x/?token={SECRET}", "not 'ftp://x/?token=***'"),
        ("databricks", "--tracking-uri databricks: to sync to Databricks use --databricks "
         "[--profile NAME]"),
        ("file:///tmp/mlruns", "--tracking-uri file:///tmp/mlruns: MLflow 3 refuses its file "
         "store unless MLFLOW_ALLOW_FILE_STORE=true; give a database such as sqlite:///"),
    ],
)  # fmt: skip
def test_a_target_sync_cannot_write_to_is_refused_before_anything_runs(uri, message, home):
    """MLflow's own text came out with exit 74 (a paragraph on its file store, or
    UnsupportedModelRegistryStoreURIException): now one line naming the forms, exit 2."""
    refused = _cli_sync("--tracking-uri", uri)
    assert refused.exit_code == 2 and refused.stdout == ""
    assert refused.stderr.startswith("error: ") and refused.stderr.count("\n") == 1
    assert message in refused.stderr and SECRET not in refused.stderr
    assert not (home / "mlruns").exists()


@pytest.mark.parametrize(
    "uri", ["http://mlflow:5000", "https://h/p", "sqlite:////x/m.db", "postgresql+psycopg2://h/db"]
)
def test_the_targets_sync_writes_to_pass_the_check(uri, home, monkeypatch):
    refused = _cli_sync("--tracking-uri", uri)  # the next check: the home has no store
    assert refused.exit_code == 2 and "no local MLflow store" in refused.stderr
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow's own opt-in
    refused = _cli_sync("--tracking-uri", "file:///tmp/mlruns")
    assert refused.exit_code == 2 and "no local MLflow store" in refused.stderr


class _Refuse(http.server.BaseHTTPRequestHandler):
    def _refuse(self) -> None:
        body = b'{"error_code": "UNAUTHENTICATED", "message": "bad token"}'
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _refuse

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def refusing_server() -> Iterator[str]:
    """A stub on 127.0.0.1 that answers 401 to everything (a wrong token)."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Refuse)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_refused_credentials_name_the_problem_but_not_the_token(
    source, refusing_server, monkeypatch
):
    """An MLflow server (--tracking-uri) has no profile: the hint said 'check the token or
    profile'; it names the variables MLflow sends credentials from."""
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", SECRET)
    with pytest.raises(TrackingError) as caught:
        sync(source[0], SyncTarget(refusing_server, secrets=(SECRET,)))
    assert str(caught.value) == (
        f"the tracking server {refusing_server} refused the credentials (HTTP 401); "
        "set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, or "
        "MLFLOW_TRACKING_TOKEN, to credentials it accepts"
    )


# --- Databricks: configuration and paths, no network ------------------------------------


def _cfg(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "databrickscfg"
    path.write_text(text)
    return path


def test_databricks_experiment_name_picks_one_local_experiment():
    """--databricks --experiment qa merged every local experiment into .../harness/qa, while
    its help said 'only this local experiment'; an absolute path still takes them all."""
    from harness.tracking.databricks_auth import databricks_local_experiments

    assert databricks_local_experiments("qa") == ["qa"]
    assert databricks_local_experiments("/Users/ana@example.com/harness/qa") is None
    assert databricks_local_experiments(None) is None


def test_databricks_from_environment_maps_experiments_under_the_user(tmp_path):
    env = {"DATABRICKS_HOST": "adb-1.azuredatabricks.net", "DATABRICKS_TOKEN": SECRET}
    target = databricks_target(
        user="ana@example.com", environ=env, config_file=tmp_path / "missing"
    )
    assert target.tracking_uri == "databricks"
    assert target.experiment_path("evals") == "/Users/ana@example.com/harness/evals"
    assert SECRET not in repr(target) and target.secrets == (SECRET,)
    assert redact(f"HTTP 401 for token {SECRET}", target.secrets) == "HTTP 401 for token ***"
    creds = resolve_databricks_credentials(environ=env, config_file=tmp_path / "missing")
    assert creds.host == "https://adb-1.azuredatabricks.net" and SECRET not in repr(creds)
    shared = databricks_target(
        experiment="/Shared/evals", environ=env, config_file=tmp_path / "missing"
    )
    assert shared.experiment_path("anything") == "/Shared/evals"  # no user lookup needed
    named = databricks_target(
        experiment="nightly",
        environ={**env, "DATABRICKS_USER": "bo"},
        config_file=tmp_path / "missing",
    )
    assert named.experiment_path("evals") == "/Users/bo/harness/nightly"


def test_databricks_profiles_from_a_config_file(tmp_path, monkeypatch):
    cfg = _cfg(
        tmp_path,
        f"""[DEFAULT]
host = https://default.cloud.databricks.com
token = {SECRET}-default

[staging]
host = https://staging.cloud.databricks.com/
token = {SECRET}

[sso]
host = https://sso.cloud.databricks.com
auth_type = databricks-cli

[empty]
host = https://empty.cloud.databricks.com
""",
    )
    staging = resolve_databricks_credentials("staging", environ={}, config_file=cfg)
    assert (staging.host, staging.tracking_uri) == (
        "https://staging.cloud.databricks.com",
        "databricks://staging",
    )
    assert staging.token == SECRET and staging.source.endswith("[staging]")
    default = resolve_databricks_credentials(None, environ={}, config_file=cfg)
    assert (default.host, default.tracking_uri) == (
        "https://default.cloud.databricks.com",
        "databricks",
    )
    sso = resolve_databricks_credentials(
        None, environ={"DATABRICKS_CONFIG_PROFILE": "sso"}, config_file=cfg
    )
    assert (sso.auth_type, sso.token, sso.tracking_uri) == (
        "databricks-cli",
        None,
        "databricks://sso",
    )
    # The environment wins over the profile, as in the Databricks SDK.
    moved = resolve_databricks_credentials(
        "staging", environ={"DATABRICKS_HOST": "https://other.example"}, config_file=cfg
    )
    assert moved.host == "https://other.example" and moved.token == SECRET
    # ~/.databrickscfg is found through HOME, like the SDK does.
    (tmp_path / ".databrickscfg").write_text(cfg.read_text())
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_databricks_credentials("staging", environ={}).host.startswith("https://staging")

    with pytest.raises(ConfigError) as missing:
        resolve_databricks_credentials("prod", environ={}, config_file=cfg)
    assert "profile 'prod' not found" in str(missing.value) and SECRET not in str(missing.value)
    with pytest.raises(ConfigError, match="no Databricks credential"):
        resolve_databricks_credentials("empty", environ={}, config_file=cfg)
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_databricks_credentials("staging", environ={}, config_file=tmp_path / "nope")
    with pytest.raises(ConfigError, match="no Databricks credentials"):
        resolve_databricks_credentials(None, environ={}, config_file=tmp_path / "nope")


def test_databricks_refusal_never_shows_the_token(source, refusing_server, tmp_path, monkeypatch):
    """The stub on 127.0.0.1 plays a workspace that rejects the token (no real network)."""
    monkeypatch.setenv("DATABRICKS_HOST", refusing_server)
    monkeypatch.setenv("DATABRICKS_TOKEN", SECRET)
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(tmp_path / "none"))
    target = databricks_target(user="ana@example.com")
    with pytest.raises(TrackingError) as caught:
        sync(source[0], target, dry_run=True)
    assert str(caught.value) == (
        f"Databricks workspace {refusing_server} (environment) refused the credentials "
        "(HTTP 401); check the token or profile"
    )


def _cli_project(home: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A CliRunner on a new project ``home`` holding a two-row dataset ``qa``."""
    from click.testing import CliRunner

    from harness.cli import cli

    home.mkdir()
    monkeypatch.setenv("HARNESS_HOME", str(home))
    data = home.parent / f"{home.name}-qa.csv"
    data.write_text("id,question,answer\n1,What is 2+2?,4\n2,Capital of France?,Paris\n")
    runner = CliRunner()
    assert runner.invoke(cli, ["data", "import", str(data), "--name", "qa"]).exit_code == 0
    return runner


def test_cli_syncs_a_harness_run_once(server, tmp_path, monkeypatch):
    """`harness sync` end to end: a real harness run in a project home, a real server."""
    import json as json_module

    from harness.cli import cli

    home = tmp_path / "cli-home"
    runner = _cli_project(home, monkeypatch)
    args = ["run", "--data", "qa", "--model", "echo", "--metric", "word_count"]
    local_runs = []
    for _ in range(2):
        ran = runner.invoke(cli, [*args, "--experiment", "cli-sync", "--json"])
        assert ran.exit_code == 0, ran.stderr
        local_runs.append(json_module.loads(ran.stdout)["mlflow_run_id"])
    local_uri = f"sqlite:///{home}/mlruns/mlflow.db"
    # Both written with SQL (harness.tracking.sql_run): the first built the store and
    # registered the prompt and model, the second found them (runs MLflow's own API wrote
    # are the ``source`` fixture's; test_mlflow_sql compares the two kinds field by field).
    traces_tags = [
        MlflowClient(local_uri).get_run(r).data.tags["harness.traces"] for r in local_runs
    ]
    assert traces_tags == ["2 traces (sql-direct)", "2 traces (sql-direct)"]

    def sync_json(*extra):
        result = runner.invoke(
            cli, ["sync", "--tracking-uri", server, "--experiment", "cli-sync", "--json", *extra]
        )
        assert result.exit_code == 0, result.stderr
        return json_module.loads(result.stdout)

    planned = sync_json("--dry-run")
    assert sorted((r["run_id"], r["action"]) for r in planned["runs"]) == sorted(
        (r, "create") for r in local_runs
    )
    assert not set(local_runs) & set(_copies(server))  # a dry run copies nothing
    # `--experiment "$EXP"` with EXP unset synced every local experiment, exit 0.
    empty = runner.invoke(cli, ["sync", "--tracking-uri", server, "--experiment", ""])
    assert (empty.exit_code, empty.stdout) == (2, "")
    assert empty.stderr == (
        "error: --experiment is empty: give an experiment's name, or leave the option out "
        "to sync every local experiment\n"
    )
    assert not set(local_runs) & set(_copies(server))
    copied = sync_json()
    assert sorted(r["run_id"] for r in copied["runs"]) == sorted(local_runs)
    assert [r["traces"] for r in copied["runs"]] == [2, 2]
    copies = _copies(server)
    for run_id in local_runs:
        assert len(copies[run_id]) == 1
        _assert_same_run(local_uri, server, run_id, copies[run_id][0])
    again = sync_json()
    assert [r["action"] for r in again["runs"]] == ["skip", "skip"]
    assert all(len(_copies(server)[r]) == 1 for r in local_runs)

    both = runner.invoke(cli, ["sync", "--tracking-uri", server, "--databricks"])
    assert both.exit_code == 2 and "one target" in both.stderr
    neither = runner.invoke(cli, ["sync"])
    assert neither.exit_code == 2 and "one target" in neither.stderr


def test_runs_log_of_a_logged_run_leaves_the_next_sync_nothing_to_copy(
    server, tmp_path, monkeypatch
):
    """`harness runs log` of a logged run said it held it already, but wrote its four
    artifact files again (new mtimes), so the next `harness sync` uploaded them all again
    ("update ... 4 artifacts"). Files with the same bytes are now kept as they are."""

    from harness.cli import cli

    home = tmp_path / "relog-home"
    runner = _cli_project(home, monkeypatch)
    ran = runner.invoke(cli, ["run", "--data", "qa", "--model", "echo", "--metric",
                              "word_count", "--experiment", "relogged", "--json"])  # fmt: skip
    assert ran.exit_code == 0, ran.stderr
    local_uri = f"sqlite:///{home}/mlruns/mlflow.db"
    target = SyncTarget(server)
    [created] = sync(local_uri, target, experiments=["relogged"]).runs
    assert (created.action, created.artifacts) == ("create", 4)

    relogged = runner.invoke(cli, ["runs", "log", json.loads(ran.stdout)["run_id"]])
    assert relogged.exit_code == 0, relogged.stderr
    assert "holds it already" in relogged.stdout
    [again] = sync(local_uri, target, experiments=["relogged"]).runs
    assert (again.action, again.artifacts) == ("skip", 0)


def test_a_sync_of_a_thousand_traces_writes_its_counts_with_separators(tmp_path):
    """`harness sync` said `  traces 200/1000` as it went and `1000` in its table's traces
    column, where its own line above them said `1,000 traces`."""
    from click.testing import CliRunner

    from harness.cli import cli

    data = tmp_path / "many.jsonl"
    data.write_text("".join(json.dumps({"id": i, "input": f"q {i}"}) + "\n" for i in range(1000)))
    runner = CliRunner()
    assert runner.invoke(cli, ["data", "import", str(data), "--name", "many"]).exit_code == 0
    ran = runner.invoke(cli, ["run", "--data", "many", "--model", "echo", "--metric",
                              "word_count", "--experiment", "many", "--json"])  # fmt: skip
    assert ran.exit_code == 0, ran.stderr
    mlflow_run_id = json.loads(ran.stdout)["mlflow_run_id"]
    target = f"sqlite:///{tmp_path}/backup/mlflow.db"
    synced = runner.invoke(cli, ["sync", "--tracking-uri", target, "--experiment", "many"])
    assert synced.exit_code == 0, synced.stderr
    progress = [line for line in synced.stderr.splitlines() if line.startswith("  traces ")]
    assert progress == [f"  traces {n:,}/1,000" for n in range(200, 1001, 200)]
    [row] = [line.split("│") for line in synced.stdout.splitlines() if mlflow_run_id in line]
    assert row[-1].strip() == "1,000"


def test_a_row_run_again_by_resume_keeps_one_trace_on_the_target(server, tmp_path, monkeypatch):
    """A resume replaces the ERROR trace of a failed row with the new one; the sync after it
    kept the copied ERROR trace too, so the copy showed that row twice (21 traces for 20
    rows). The copy of a local trace that is gone is now deleted from the target."""
    import json as json_module

    from click.testing import CliRunner

    from harness.cli import cli

    home = tmp_path / "resume-home"
    home.mkdir()
    monkeypatch.setenv("HARNESS_HOME", str(home))
    down = tmp_path / "down"
    down.write_text("")
    (tmp_path / "flaky_app.py").write_text(
        "import pathlib\n"
        f"DOWN = pathlib.Path({str(down)!r})\n"
        "def predict(row):\n"
        "    if DOWN.exists() and row['input'].startswith('Capital'):\n"
        "        raise RuntimeError('service down')\n"
        "    return row['input']\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    data = tmp_path / "qa.csv"
    data.write_text("id,question,answer\n1,What is 2+2?,4\n2,Capital of France?,Paris\n")
    runner = CliRunner()
    assert runner.invoke(cli, ["data", "import", str(data), "--name", "qa"]).exit_code == 0
    args = ["run", "--data", "qa", "--model", "python:flaky_app:predict", "--metric", "word_count"]
    ran = runner.invoke(cli, [*args, "--experiment", "resumed", "--json"])
    assert ran.exit_code == 1, ran.stderr
    first = json_module.loads(ran.stdout)
    assert first["errors"] == 1
    local_uri = f"sqlite:///{home}/mlruns/mlflow.db"
    target = SyncTarget(server)
    [created] = sync(local_uri, target, experiments=["resumed"]).runs
    assert (created.action, created.traces, created.traces_removed) == ("create", 2, 0)

    down.unlink()
    resumed = runner.invoke(cli, ["run", "--resume", first["run_id"], "--json"])
    assert resumed.exit_code == 0, resumed.stderr
    run_id = first["mlflow_run_id"]
    src = MlflowClient(local_uri)
    experiment_id = src.get_run(run_id).info.experiment_id
    assert len(src.search_traces(locations=[experiment_id], run_id=run_id)) == 2

    [updated] = sync(local_uri, target, experiments=["resumed"]).runs
    assert (updated.action, updated.traces, updated.traces_removed) == ("update", 1, 1)
    [copy] = _copies(server)[run_id]
    _assert_same_run(local_uri, server, run_id, copy)  # the same two traces, no third
    again = sync(local_uri, target, experiments=["resumed"])
    assert [(r.action, r.traces_removed) for r in again.runs] == [("skip", 0)]


def test_a_sweeps_best_run_tag_names_the_best_childs_copy(server, tmp_path, monkeypatch):
    """The parent of a sweep names its best child in the tag harness.sweep.best_run; its
    copy on the server named the local child's MLflow run id, which no run there has. It
    now names the child's copy, as mlflow.parentRunId does."""
    import json as json_module

    from click.testing import CliRunner

    from harness.cli import cli

    home = tmp_path / "sweep-home"
    home.mkdir()
    monkeypatch.setenv("HARNESS_HOME", str(home))
    data = tmp_path / "qa.csv"
    data.write_text("id,question,answer\n1,What is 2+2?,4\n2,Capital of France?,Paris\n")
    runner = CliRunner()
    assert runner.invoke(cli, ["data", "import", str(data), "--name", "qa"]).exit_code == 0
    args = ["run", "--data", "qa", "--model", "echo", "--metric", "exact_match"]
    args += ["--prompt", "{input}", "--prompt", "Q: {input}", "--experiment", "swept", "--json"]
    ran = runner.invoke(cli, args)
    assert ran.exit_code == 0, ran.stderr
    swept = json_module.loads(ran.stdout)
    local_uri = f"sqlite:///{home}/mlruns/mlflow.db"
    parent_id = swept["parent_mlflow_run_id"]
    local_best = MlflowClient(local_uri).get_run(parent_id).data.tags["harness.sweep.best_run"]
    assert local_best in {r["mlflow_run_id"] for r in swept["runs"]}

    planned = sync(local_uri, SyncTarget(server), experiments=["swept"], dry_run=True)
    report = sync(local_uri, SyncTarget(server), experiments=["swept"])
    assert [r.action for r in report.runs] == ["create"] * 3
    assert [r.tags for r in report.runs] == [r.tags for r in planned.runs]
    copies = _copies(server)
    [parent_copy] = copies[parent_id]
    [best_copy] = copies[local_best]
    parent_copy = MlflowClient(server).get_run(parent_copy.info.run_id)
    assert parent_copy.data.tags["harness.sweep.best_run"] == best_copy.info.run_id
    for child in swept["runs"]:
        [child_copy] = copies[child["mlflow_run_id"]]
        assert child_copy.data.tags["mlflow.parentRunId"] == parent_copy.info.run_id
    again = sync(local_uri, SyncTarget(server), experiments=["swept"])
    assert [r.action for r in again.runs] == ["skip"] * 3
    assert all(len(_copies(server)[r.run_id]) == 1 for r in again.runs)


def _harness_runs(home: Path, experiment: str, prompts: list[str]) -> list[str]:
    """One echo run per prompt in ``experiment`` of the project home (set as HARNESS_HOME);
    their MLflow run ids."""
    from click.testing import CliRunner

    from harness.cli import cli

    data = home / "qa.csv"
    data.write_text("id,question,answer\n1,What is 2+2?,4\n2,Capital of France?,Paris\n")
    runner = CliRunner()
    assert runner.invoke(cli, ["data", "import", str(data), "--name", "qa"]).exit_code == 0
    run_ids = []
    for prompt in prompts:
        args = ["run", "--data", "qa", "--model", "echo", "--metric", "word_count"]
        ran = runner.invoke(cli, [*args, "--prompt", prompt, "--experiment", experiment, "--json"])
        assert ran.exit_code == 0, ran.stderr
        run_ids.append(json.loads(ran.stdout)["mlflow_run_id"])
    return run_ids


def _prompt_versions(client: MlflowClient, name: str) -> dict[str, Any]:
    return {v.version: v.template for v in client.search_prompt_versions(name)}


def _target_models(client: MlflowClient, experiment_id: str) -> list[Any]:
    return client.search_logged_models(experiment_ids=[experiment_id])


def test_prompt_versions_and_logged_models_a_run_links_to_are_copied(server, tmp_path, monkeypatch):
    """The copy of a harness run named a prompt version (prompt_uri, mlflow.linkedPrompts)
    and a logged model (harness.model_id, its traces' mlflow.modelId) that the target did
    not have: its Prompts tab was empty. Both are now copied, found again by content (a
    prompt version) or by the local id (a model), and the copy names the target's ones."""
    home = tmp_path / "linked-home"
    home.mkdir()
    monkeypatch.setenv("HARNESS_HOME", str(home))
    local_uri = f"sqlite:///{home}/mlruns/mlflow.db"
    first_id, second_id = _harness_runs(home, "linked", ["Q: {input}", "Answer: {input}"])
    src, dst = MlflowClient(local_uri), MlflowClient(server)
    assert _prompt_versions(src, "linked-prompt") == {1: "Q: {{input}}", 2: "Answer: {{input}}"}
    # On the target the prompt is there already: version 1 another text, version 2 the
    # second run's, so the first run's version becomes 3 there and the second's is reused.
    dst.create_prompt("linked-prompt")
    dst.create_prompt_version("linked-prompt", "Unrelated: {{input}}")
    dst.create_prompt_version("linked-prompt", "Answer: {{input}}")

    planned = sync(local_uri, SyncTarget(server), experiments=["linked"], dry_run=True)
    assert (planned.totals["prompts"], planned.totals["models"]) == (1, 2)
    assert len(_prompt_versions(dst, "linked-prompt")) == 2  # a dry run creates nothing
    report = sync(local_uri, SyncTarget(server), experiments=["linked"])
    assert [r.action for r in report.runs] == ["create", "create"]
    assert [(r.prompts, r.models) for r in report.runs] == [(1, 1), (0, 1)]
    assert _prompt_versions(dst, "linked-prompt") == {
        1: "Unrelated: {{input}}",
        2: "Answer: {{input}}",
        3: "Q: {{input}}",
    }
    copies = _copies(server)
    for run_id, version in ((first_id, "3"), (second_id, "2")):
        [copy] = copies[run_id]
        _assert_same_run(local_uri, server, run_id, copy)  # every reference renamed
        local, copy = src.get_run(run_id), dst.get_run(copy.info.run_id)
        # prompt_uri resolves on the target, to the local template.
        prompt_uri = copy.data.params["prompt_uri"]
        assert prompt_uri == f"prompts:/linked-prompt/{version}"
        local_version = src.load_prompt(local.data.params["prompt_uri"])
        target_version = dst.load_prompt(prompt_uri)
        assert target_version.template == local_version.template
        if version == "3":  # created by the sync: with the local tags (a reused one keeps its)
            assert target_version.tags == local_version.tags  # harness.prompt_digest
            assert target_version.commit_message == local_version.commit_message
        assert json.loads(copy.data.tags["mlflow.linkedPrompts"]) == [
            {"name": "linked-prompt", "version": version}
        ]
        # The logged model: in the copy's experiment, linked to the copy as it is locally.
        local_model = src.get_logged_model(local.data.tags["harness.model_id"])
        model = dst.get_logged_model(copy.data.tags["harness.model_id"])
        assert model.experiment_id == copy.info.experiment_id
        assert (model.name, model.model_type, str(model.status)) == (
            local_model.name,
            local_model.model_type,
            "READY",
        )
        assert model.params == {**local_model.params, "prompt_uri": prompt_uri}
        assert model.tags == {
            **local_model.tags,
            "mlflow.linkedPrompts": copy.data.tags["mlflow.linkedPrompts"],
            "harness.source_model_id": local_model.model_id,
        }
        assert model.source_run_id == copy.info.run_id
        assert [m.model_id for m in copy.inputs.model_inputs] == [model.model_id]
        metric_key = lambda m: (m.key, m.value, m.step, m.dataset_name, m.dataset_digest)  # noqa: E731
        assert sorted(map(metric_key, model.metrics)) == sorted(
            map(metric_key, local_model.metrics)
        )
        assert {m.run_id for m in model.metrics} == {copy.info.run_id}
        traces = dst.search_traces(locations=[copy.info.experiment_id], run_id=copy.info.run_id)
        assert len(traces) == 2
        assert {t.info.trace_metadata["mlflow.modelId"] for t in traces} == {model.model_id}
    # Listed on the experiment's Prompts tab.
    experiment_id = dst.get_experiment_by_name("linked").experiment_id
    listed = dst.search_prompts(filter_string=f"experiment_id = '{experiment_id}'")
    assert [p.name for p in listed] == ["linked-prompt"]

    again = sync(local_uri, SyncTarget(server), experiments=["linked"])
    assert [r.action for r in again.runs] == ["skip", "skip"]
    assert (again.totals["prompts"], again.totals["models"]) == (0, 0)
    assert len(_prompt_versions(dst, "linked-prompt")) == 3
    assert len(_target_models(dst, experiment_id)) == 2

    # A copy made before links were copied: no "links" in its fingerprint, and it names the
    # local model. The next sync names the model's copy.
    [copy] = _copies(server)[first_id]
    stamp = json.loads(copy.data.tags[TAG_FINGERPRINT])
    del stamp["sections"]["links"]
    dst.set_tag(copy.info.run_id, TAG_FINGERPRINT, json.dumps(stamp))
    local_model_id = src.get_run(first_id).data.tags["harness.model_id"]
    dst.set_tag(copy.info.run_id, "harness.model_id", local_model_id)
    upgraded = sync(local_uri, SyncTarget(server), experiments=["linked"])
    assert [(r.action, r.tags, r.models) for r in upgraded.runs] == [
        ("update", 1, 0),
        ("skip", 0, 0),
    ]
    _assert_same_run(local_uri, server, first_id, copy)


def test_a_sync_killed_between_a_models_creation_and_its_status_resumes(
    server, tmp_path, monkeypatch
):
    """Killed after creating the prompt and the model (before the model is READY): the
    next sync finds both, finishes them, and creates nothing twice."""
    home = tmp_path / "killed-links-home"
    home.mkdir()
    monkeypatch.setenv("HARNESS_HOME", str(home))
    [run_id] = _harness_runs(home, "killed-links", ["Q: {input}"])
    local_uri = f"sqlite:///{home}/mlruns/mlflow.db"
    # Writes: the experiment, the run, the prompt, its version, its listing on the
    # experiment, the model; the process dies before the model's status is set.
    killed = _run_killed_sync(local_uri, server, 6)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    dst = MlflowClient(server)
    experiment_id = dst.get_experiment_by_name("killed-links").experiment_id
    [pending] = _target_models(dst, experiment_id)
    assert str(pending.status) == "PENDING"
    assert _prompt_versions(dst, "killed-links-prompt") == {1: "Q: {{input}}"}

    resumed = sync(local_uri, SyncTarget(server), experiments=["killed-links"])
    assert [(r.action, r.prompts, r.models) for r in resumed.runs] == [("update", 0, 0)]
    [model] = _target_models(dst, experiment_id)
    assert (model.model_id, str(model.status)) == (pending.model_id, "READY")
    assert _prompt_versions(dst, "killed-links-prompt") == {1: "Q: {{input}}"}
    [copy] = _copies(server)[run_id]
    _assert_same_run(local_uri, server, run_id, copy)
    again = sync(local_uri, SyncTarget(server), experiments=["killed-links"])
    assert [r.action for r in again.runs] == ["skip"]


def test_tags_set_on_a_logged_model_after_its_copy_reach_the_target(server, tmp_path, monkeypatch):
    """A tag set or changed on a local logged model after the first sync never reached the
    target: the run's fingerprint did not see it, and the model's copy got tags only when
    it was created. The next sync now sets them; a tag deleted locally stays there, as a
    run's does."""
    home = tmp_path / "model-tags-home"
    home.mkdir()
    monkeypatch.setenv("HARNESS_HOME", str(home))
    [run_id] = _harness_runs(home, "model-tags", ["Q: {input}"])
    local_uri = f"sqlite:///{home}/mlruns/mlflow.db"
    src, dst = MlflowClient(local_uri), MlflowClient(server)
    model_id = src.get_run(run_id).data.tags["harness.model_id"]
    src.set_logged_model_tags(model_id, {"stage": "candidate", "owner": "me"})
    sync(local_uri, SyncTarget(server), experiments=["model-tags"])
    [copy] = _copies(server)[run_id]
    target_id = dst.get_run(copy.info.run_id).data.tags["harness.model_id"]
    assert dst.get_logged_model(target_id).tags["stage"] == "candidate"

    src.set_logged_model_tags(model_id, {"stage": "production", "reviewed": "yes"})
    src.delete_logged_model_tag(model_id, "owner")
    planned = sync(local_uri, SyncTarget(server), experiments=["model-tags"], dry_run=True)
    assert [r.action for r in planned.runs] == ["update"]
    assert planned.totals["model_tags"] == 2
    assert dst.get_logged_model(target_id).tags["stage"] == "candidate"  # nothing written
    report = sync(local_uri, SyncTarget(server), experiments=["model-tags"])
    assert [(r.action, r.tags, r.models, r.model_tags) for r in report.runs] == [
        ("update", 0, 0, 2)
    ]
    assert report.totals["model_tags"] == 2
    local_tags = src.get_logged_model(model_id).tags
    assert dst.get_logged_model(target_id).tags == {
        **local_tags,
        "mlflow.linkedPrompts": copy.data.tags["mlflow.linkedPrompts"],
        "harness.source_model_id": model_id,
        "owner": "me",  # deleted locally: kept on the target, as a run's tag is
    }
    again = sync(local_uri, SyncTarget(server), experiments=["model-tags"])
    assert [(r.action, r.model_tags) for r in again.runs] == [("skip", 0)]


class _Forward(http.server.BaseHTTPRequestHandler):
    """Forwards to ``upstream`` until ``budget`` requests are spent, then stops listening."""

    upstream = ""
    budget = 0
    stop: Any = None

    def _forward(self) -> None:
        type(self).budget -= 1
        if type(self).budget < 0:
            self.stop()
            self.close_connection = True
            return
        length = int(self.headers.get("Content-Length") or 0)
        headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
        request = urllib.request.Request(
            self.upstream + self.path,
            data=self.rfile.read(length) if length else None,
            method=self.command,
            headers=headers,
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                status, body = response.status, response.read()
                content_type = response.headers.get("Content-Type", "application/json")
        except urllib.error.HTTPError as refused:
            status, body = refused.code, refused.read()
            content_type = refused.headers.get("Content-Type", "application/json")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _forward

    def log_message(self, *args: Any) -> None:
        pass


def test_a_target_that_goes_away_half_way_says_so_and_the_next_sync_finishes(
    server, tmp_path, monkeypatch
):
    """The server went away during a sync: the line was MLflow's paragraph cut at 300
    characters ("... Caused by NewConnectionError(\\"HTTPConnection(host=..., port=...):
    Failed to establish "), without the reason or what to do. It now says the target
    stopped answering and why, and that the same sync goes on from there; it does."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    uri = _new_store(tmp_path)
    name = "goes-away"
    _make_experiment(uri, tmp_path, name)
    with _tracking(uri):
        run_ids = [_log_eval_run(name, f"r{i}", traces=2) for i in range(2)]

    class Forward(_Forward):
        upstream, budget = server, 14

    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Forward)
    port = proxy.server_address[1]

    def stop() -> None:
        proxy.socket.close()  # new connections are refused from now on

    Forward.stop = staticmethod(stop)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        with pytest.raises(TrackingError) as caught:
            sync(uri, SyncTarget(f"http://127.0.0.1:{port}"), experiments=[name])
    finally:
        proxy.shutdown()
    # The request that found it going: the connection dropped (aborted or reset, as the
    # close finds it); those after it: refused.
    assert re.fullmatch(
        rf"sync to http://127\.0\.0\.1:{port} stopped after (0 runs|1 run)"
        r"( and part of run goes-away/r[01])?: the target "
        r"stopped answering \(Connection (aborted|refused|reset by peer)\); what was copied "
        r"stays, and the same `harness sync` again (completes that run and )?goes on from there",
        str(caught.value),
    ), str(caught.value)
    # Cut off in a run: named, and only then said to be completed by the next sync.
    said = str(caught.value)
    assert ("and part of run" in said) == ("completes that run" in said)
    assert run_ids[0] in _copies(server)  # cut off half-way, not before the first write

    finished = sync(uri, SyncTarget(server), experiments=[name])
    assert {r.action for r in finished.runs} != {"skip"}
    copies = _copies(server)
    for run_id in run_ids:
        assert len(copies[run_id]) == 1
        _assert_same_run(uri, server, run_id, copies[run_id][0])


class _ReadOnly(http.server.BaseHTTPRequestHandler):
    """A server that lets the token read (the search a sync starts with) and not write."""

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path.startswith("/api/2.0/mlflow/experiments/search"):
            self._answer(200, b'{"experiments": []}')
        else:
            self._answer(404, b'{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "none"}')

    def do_POST(self) -> None:
        self._answer(403, b'{"error_code": "PERMISSION_DENIED", "message": "read only"}')

    def log_message(self, *args: Any) -> None:
        pass


def test_a_target_that_refuses_writes_or_tls_says_what_to_change(source, server, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ReadOnly)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        with pytest.raises(TrackingError) as caught:
            sync(source[0], SyncTarget(url))
    finally:
        httpd.shutdown()
        httpd.server_close()
    message = str(caught.value)
    assert message.startswith(f"sync to {url} failed: RestException: PERMISSION_DENIED")
    assert "PERMISSION_DENIED" in message and "\n" not in message
    assert message.endswith("; the credentials may read but not write there")
    # https:// to the (plain HTTP) MLflow server: the TLS handshake's reason, not a paragraph
    tls = server.replace("http://", "https://")
    with pytest.raises(TrackingError) as caught:
        sync(source[0], SyncTarget(tls))
    assert str(caught.value) == (
        f"cannot reach the tracking server {tls}: the TLS handshake failed "
        "(WRONG_VERSION_NUMBER): is it http://, not https://?"
    )


def test_a_tracking_uri_with_a_query_string_is_refused_before_anything_is_sent(source, server):
    """A token in the URI's query (?token=...): MLflow puts its API paths after the query, so
    the real server answered its UI page with 200, the probe passed, and the first call
    failed as "MlflowException: API request to endpoint was successful but the response
    body was not in a valid JSON format. Response body: '<!doctype html>...'"."""
    uri = f"{server}/?token={SECRET}"
    with pytest.raises(TrackingError) as caught:
        sync(source[0], SyncTarget(uri, secrets=(SECRET,)))
    assert str(caught.value) == (
        f"the tracking server {server}/?token=*** answered a test request with a page, not "
        "MLflow's JSON; MLflow adds its API paths after the URI, so a query string "
        "(?token=...) is not sent as one: give a token in MLFLOW_TRACKING_TOKEN"
    )


def test_an_experiment_renamed_locally_after_a_sync_is_renamed_on_the_target(server, tmp_path):
    """A local experiment renamed after a sync was copied again, whole, as a second
    experiment with a duplicate of every run; the sync now finds its copy by the source tag
    it wrote and renames that copy, and a new run there joins it."""
    uri = _new_store(tmp_path)
    experiment_id = _make_experiment(uri, tmp_path, "before-rename")
    with _tracking(uri):
        first_run = _log_eval_run("before-rename", "r1", traces=1)
    first = sync(uri, SyncTarget(server))
    assert [r.action for r in first.runs] == ["create"]
    dst = MlflowClient(server)
    target = dst.get_experiment_by_name("before-rename")
    # A second mapping of the same local experiment (its copy keeps the old name).
    mirror = SyncTarget(server, experiment_path=lambda name: f"mirror/{name}")
    assert [r.action for r in sync(uri, mirror).runs] == ["create"]

    MlflowClient(uri).rename_experiment(experiment_id, "after-rename")
    lines: list[str] = []
    again = sync(uri, SyncTarget(server), progress=lines.append)
    assert [(r.action, r.target_experiment) for r in again.runs] == [("skip", "after-rename")]
    assert again.experiments_renamed == [["before-rename", "after-rename"]]
    assert again.experiments_created == []
    assert lines[0] == (
        "renamed experiment 'before-rename' to 'after-rename' on the tracking server "
        f"{server} (renamed locally since the last sync)"
    )
    assert dst.get_experiment_by_name("before-rename") is None
    renamed = dst.get_experiment_by_name("after-rename")
    assert renamed.experiment_id == target.experiment_id
    assert len(_copies(server)[first_run]) == 2  # this copy and the mirror's, no third

    with _tracking(uri):
        second_run = _log_eval_run("after-rename", "r2", traces=1)
    latest = sync(uri, SyncTarget(server))
    assert [(r.run_id, r.action) for r in latest.runs] == [
        (first_run, "skip"),
        (second_run, "create"),
    ]
    assert latest.experiments_renamed == []
    [copy] = _copies(server)[second_run]
    assert copy.info.experiment_id == target.experiment_id
    # The mirror's copy follows too, under its own mapping.
    mirrored = sync(uri, mirror)
    assert mirrored.experiments_renamed == [["mirror/before-rename", "mirror/after-rename"]]
    assert [r.action for r in mirrored.runs] == ["skip", "create"]
    assert len(_copies(server)[first_run]) == 2


def test_a_new_experiment_under_a_renamed_ones_old_name_gets_its_own_copy(server, tmp_path):
    """After `harness run` made a new local experiment under the name the renamed one had,
    the sync renames the old copy and creates a new one, and its dry run plans the same
    (it planned the new runs into the old copy, which the sync renames away)."""
    uri = _new_store(tmp_path)
    old_id = _make_experiment(uri, tmp_path, "reused-name")
    with _tracking(uri):
        first_run = _log_eval_run("reused-name", "r1", traces=1)
    assert [r.action for r in sync(uri, SyncTarget(server)).runs] == ["create"]
    MlflowClient(uri).rename_experiment(old_id, "reused-name-old")
    _make_experiment(uri, tmp_path, "reused-name")
    with _tracking(uri):
        new_run = _log_eval_run("reused-name", "r2", traces=1)

    for report in (sync(uri, SyncTarget(server), dry_run=True), sync(uri, SyncTarget(server))):
        assert report.experiments_renamed == [["reused-name", "reused-name-old"]]
        assert report.experiments_created == ["reused-name"]
        assert [(r.run_id, r.action, r.target_experiment) for r in report.runs] == [
            (first_run, "skip", "reused-name-old"),
            (new_run, "create", "reused-name"),
        ]
    dst = MlflowClient(server)
    copies = _copies(server)
    assert [c.info.experiment_id for c in copies[first_run]] == [
        dst.get_experiment_by_name("reused-name-old").experiment_id
    ]
    assert [c.info.experiment_id for c in copies[new_run]] == [
        dst.get_experiment_by_name("reused-name").experiment_id
    ]


def test_a_second_cli_sync_says_it_had_nothing_to_copy(server, home):
    """A second `harness sync` printed "synced to ..." over a table of `skip` rows (one per
    run, however many) and nothing more; its last line now says nothing was copied."""
    uri = _new_store(home)
    name = "nothing-to-copy"
    _make_experiment(uri, home, name)
    with _tracking(uri):
        _log_eval_run(name, "r1", traces=1)
        _log_eval_run(name, "r2", traces=1)
    first = _cli_sync("--tracking-uri", server, "--experiment", name)
    assert first.exit_code == 0, first.stderr
    assert "nothing to copy" not in first.stdout
    for extra in ((), ("--dry-run",)):
        again = _cli_sync("--tracking-uri", server, "--experiment", name, *extra)
        assert again.exit_code == 0, again.stderr
        assert again.stdout.splitlines()[-1] == (
            f"nothing to copy: {server} holds all 2 runs as they are here"
        )


def _shared_then_renamed_in_mine(
    server: str, tmp_path: Path, shared: str = "shared", mine_only: str = "mine-only"
) -> tuple[str, str]:
    """Two homes synced their `shared` experiment into one target experiment, then the
    first one (whose sync made the copy) renamed its own `mine_only`: (its URI, its run)."""
    mine, theirs = _new_store(tmp_path / "mine"), _new_store(tmp_path / "theirs")
    my_id = _make_experiment(mine, tmp_path / "mine", shared)
    _make_experiment(theirs, tmp_path / "theirs", shared)
    with _tracking(mine):
        my_run = _log_eval_run(shared, "mine", traces=1)
    with _tracking(theirs):
        _log_eval_run(shared, "theirs", traces=1)
    sync(mine, SyncTarget(server))
    sync(theirs, SyncTarget(server))
    MlflowClient(mine).rename_experiment(my_id, mine_only)
    return mine, my_run


def test_a_shared_experiment_keeps_its_name_when_one_store_renames_its_own(server, tmp_path):
    """Two homes sync their `shared` experiment into one target experiment; one home renames
    its own: the shared copy keeps its name (the other home's runs are in it) and that
    home's runs are still found there, none copied again."""
    mine, my_run = _shared_then_renamed_in_mine(server, tmp_path)

    lines: list[str] = []
    again = sync(mine, SyncTarget(server), progress=lines.append)
    assert [(r.action, r.target_experiment) for r in again.runs] == [("skip", "shared")]
    assert again.experiments_renamed == again.experiments_created == []
    assert lines[0] == (
        f"kept experiment 'shared' on the tracking server {server}: renamed locally to "
        "'mine-only' since the last sync, but it holds runs synced from elsewhere"
    )
    dst = MlflowClient(server)
    assert dst.get_experiment_by_name("mine-only") is None
    assert len(_copies(server)[my_run]) == 1


def test_a_kept_shared_experiment_is_said_once(server, tmp_path):
    """The sync that kept a shared copy's name (renamed locally) said so again on every sync
    after it; it says it once, and later syncs go on into the copy without a word."""
    mine, my_run = _shared_then_renamed_in_mine(server, tmp_path, "shared-once", "mine-once")
    first: list[str] = []
    sync(mine, SyncTarget(server), progress=first.append)
    assert first[0].startswith("kept experiment 'shared-once' on ")
    with _tracking(mine):
        new_run = _log_eval_run("mine-once", "later", traces=1)

    for dry_run in (True, False):
        lines: list[str] = []
        again = sync(mine, SyncTarget(server), dry_run=dry_run, progress=lines.append)
        assert [(r.run_id, r.action, r.target_experiment) for r in again.runs] == [
            (my_run, "skip", "shared-once"),
            (new_run, "create", "shared-once"),
        ]
        assert again.experiments_renamed == again.experiments_created == []
        assert [line for line in lines if "experiment '" in line] == []
    dst = MlflowClient(server)
    assert dst.get_experiment_by_name("mine-once") is None
    shared = dst.get_experiment_by_name("shared-once").experiment_id
    assert [c.info.experiment_id for c in _copies(server)[new_run]] == [shared]
    assert len(_copies(server)[my_run]) == 1


def test_a_copy_renamed_on_the_target_keeps_its_name_and_gets_the_runs(server, tmp_path):
    """The team renamed the copy on the server (team-qa -> team-qa-server): the next sync
    (and its dry run) copied every run again into a new `team-qa`. It now finds the copy by
    its source tag, syncs into it under the server's name and says so once; a second
    mapping (mirror/NAME) keeps its own copy, and a new one makes its own."""
    uri = _new_store(tmp_path)
    _make_experiment(uri, tmp_path, "team-qa")
    with _tracking(uri):
        first_run = _log_eval_run("team-qa", "r1", traces=1)
    mirror = SyncTarget(server, experiment_path=lambda name: f"mirror/{name}")
    for target in (SyncTarget(server), mirror):
        assert [r.action for r in sync(uri, target).runs] == ["create"]
    dst = MlflowClient(server)
    copy = dst.get_experiment_by_name("team-qa")
    dst.rename_experiment(copy.experiment_id, "team-qa-server")

    said = (
        f"syncing into experiment 'team-qa-server' on the tracking server {server}, the copy "
        "of 'team-qa' renamed there since the last sync (it keeps that name)"
    )
    for dry_run in (True, False):
        lines: list[str] = []
        again = sync(uri, SyncTarget(server), dry_run=dry_run, progress=lines.append)
        assert [(r.action, r.target_experiment) for r in again.runs] == [("skip", "team-qa-server")]
        assert again.experiments_created == again.experiments_renamed == []
        assert lines[0] == said
    assert dst.get_experiment_by_name("team-qa") is None
    assert len(_copies(server)[first_run]) == 2  # this copy and the mirror's, no third

    with _tracking(uri):
        second_run = _log_eval_run("team-qa", "r2", traces=1)
    lines = []
    latest = sync(uri, SyncTarget(server), progress=lines.append)
    assert [(r.action, r.target_experiment) for r in latest.runs] == [
        ("skip", "team-qa-server"),
        ("create", "team-qa-server"),
    ]
    assert said not in lines
    [second_copy] = _copies(server)[second_run]
    assert second_copy.info.experiment_id == copy.experiment_id
    # The mirror's copy is its own, and a new mapping makes one of its own.
    mirrored = sync(uri, mirror)
    assert [(r.action, r.target_experiment) for r in mirrored.runs] == [
        ("skip", "mirror/team-qa"),
        ("create", "mirror/team-qa"),
    ]
    other = sync(uri, SyncTarget(server, experiment_path=lambda name: f"other/{name}"))
    assert other.experiments_created == ["other/team-qa"]
    assert [r.action for r in other.runs] == ["create", "create"]


def test_once_a_write_finds_the_target_gone_no_other_write_waits_for_it(tmp_path, monkeypatch):
    """A write that found the target gone after MLflow's retries (~4 minutes by default)
    ends the sync, but the trace copier's other threads each began a write of their own and
    waited as long again: a sync to a server killed half-way took 492 s to stop (helper
    177's probe). Every write after the first such failure raises it without a request."""
    from mlflow.exceptions import MlflowException

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # the budget, spent at once
    gone = SyncTarget(tracking_uri=f"http://127.0.0.1:{_free_port()}")  # nothing listens
    syncer = Syncer(_new_store(tmp_path), gone, False, lambda _m: None, traces=True)
    sent: list[str] = []

    def create(name: str) -> str:
        sent.append(name)
        return syncer.dst.create_experiment(name)

    with pytest.raises(MlflowException) as first:
        syncer._write(create, "first")
    assert connection_lost(first.value) == "Connection refused"
    with pytest.raises(MlflowException) as then:
        syncer._write(create, "queued")
    assert then.value is first.value and sent == ["first"]
