"""log_run against a real SQLite MLflow store in tmp_path, read back through MlflowClient."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from harness.errors import TrackingError
from harness.tracking import RunRecord, log_run, tracking_uri_for
from harness.tracking.mlflow_log import MLFLOW_DIGEST_MAX
from harness.tracking.traces import build_row_traces, to_mlflow_span, write_traces_via_store
from harness.tracking.traces_sql import json_value, span_content

DIGEST = "0123456789abcdef" * 4  # sha256-sized, longer than MLflow's 36-char digest column
ROWS = [
    # id, input, expected, context, output, latency_s, error, exact_match, faithfulness
    ("r1", "What is 2+2?", "4", "Arithmetic.", "4", 0.5, None, 1.0, 5),
    ("r2", "Capital of France?", "Paris || paris", "", "Lyon", 1.25, None, 0.0, 2),
    ("r3", "Say JSON", "{}", None, '{"a": [1, 2]}', 0.1, None, 0.0, 3),
    ("r4", "Grüße auf Deutsch?", "Hallo", "Sprache", "Grüß Gott", 0.3, None, 0.0, 4),
    ("r5", "Will time out", "x", None, None, None, "ProviderTimeout: no answer", None, None),
    ("r6", "No expected answer", None, None, "anything", 0.2, None, None, 1),
]


def make_record(experiment: str = "harness", metrics: dict | None = None) -> RunRecord:
    columns = ["id", "input", "expected", "context", "output", "latency_s", "error"]
    rows = pd.DataFrame(
        [dict(zip(columns, row[:7], strict=True)) for row in ROWS],
    )
    rows["exact_match"] = [row[7] for row in ROWS]
    rows["faithfulness/score"] = [row[8] for row in ROWS]
    rows["faithfulness/rationale"] = [row[8] and f"scored {row[8]}" for row in ROWS]
    feedback = []
    for row in ROWS:
        if row[7] is not None:
            feedback.append(
                {"row_id": row[0], "name": "exact_match", "value": row[7], "rationale": None,
                 "source": "CODE", "source_id": "exact_match"}
            )  # fmt: skip
        if row[8] is not None:
            feedback.append(
                {"row_id": row[0], "name": "faithfulness", "value": row[8],
                 "rationale": f"scored {row[8]}", "source": "LLM_JUDGE",
                 "source_id": "openai:/gpt-4o-mini"}
            )  # fmt: skip
    feedback.append(
        {"row_id": "r5", "name": "faithfulness", "value": None, "rationale": None,
         "source": "LLM_JUDGE", "source_id": "openai:/gpt-4o-mini", "error": "no output to judge"}
    )  # fmt: skip
    finished = time.time()
    return RunRecord(
        run_id="a1b2c3d4",
        run_name="smoke",
        experiment=experiment,
        params={
            "model": "echo",
            "dataset": "qa@0123456789ab",
            "dataset_digest": DIGEST,
            "param.temperature": "0.0",
            "judges": "faithfulness@1",
        },
        metrics=metrics or {"exact_match/mean": 0.25, "latency/p90": 1.1, "errors": 1.0},
        dataset_name="qa",
        dataset_version="0123456789ab",
        dataset_digest=DIGEST,
        dataset_rows=len(ROWS),
        prompt_template="Answer: {input}",
        config={"model": "echo", "concurrency": 4},
        started_at=finished - 10,
        finished_at=finished,
        rows=rows,
        feedback=feedback,
    )


@contextlib.contextmanager
def global_tracking_uri(uri: str):
    """Point MLflow's fluent API (which some client methods use) at ``uri`` for a while."""
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(None)


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    """One run logged with traces into a fresh home, while the cwd is another folder."""
    home = tmp_path_factory.mktemp("home")
    cwd = tmp_path_factory.mktemp("cwd")
    uri = tracking_uri_for(home)
    record = make_record()
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(cwd)
        run_id = log_run(record, tracking_uri=uri)
    client = MlflowClient(tracking_uri=uri)
    return {"home": home, "cwd": cwd, "uri": uri, "record": record, "run_id": run_id,
            "client": client, "run": client.get_run(run_id)}  # fmt: skip


def test_tracking_uri_for_points_into_the_home(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert tracking_uri_for(tmp_path) == f"sqlite:///{tmp_path.resolve()}/mlruns/mlflow.db"
    assert tracking_uri_for(Path("proj")) == f"sqlite:///{tmp_path.resolve()}/proj/mlruns/mlflow.db"


def test_importing_harness_tracking_does_not_import_mlflow():
    code = "import sys, harness.tracking; print('mlflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_run_holds_params_metrics_and_tags(logged):
    run, record = logged["run"], logged["record"]
    assert run.data.params == record.params
    assert run.data.metrics == record.metrics
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "smoke"
    assert run.info.start_time == int(record.started_at * 1000)
    assert run.info.end_time == int(record.finished_at * 1000)
    tags = run.data.tags
    assert tags["harness.run_id"] == "a1b2c3d4"
    assert tags["mlflow.runType"] == "genai_evaluate"
    assert {"path": "eval_results_table.json", "type": "table"} in json.loads(
        tags["mlflow.loggedArtifacts"]
    )
    experiment = logged["client"].get_experiment(run.info.experiment_id)
    assert experiment.name == "harness"


def test_dataset_is_a_run_input_with_its_digest(logged):
    inputs = logged["run"].inputs.dataset_inputs
    assert len(inputs) == 1
    dataset = inputs[0].dataset
    assert dataset.name == "qa"
    assert dataset.digest == DIGEST[:MLFLOW_DIGEST_MAX]
    assert json.loads(dataset.profile)["num_rows"] == len(ROWS)
    assert {t.key: t.value for t in inputs[0].tags}["mlflow.data.context"] == "eval"
    assert json.loads(dataset.source)["tags"]["harness.dataset_digest"] == DIGEST


def test_eval_results_table_is_loadable_as_an_mlflow_table(logged):
    client, run = logged["client"], logged["run"]
    path = Path(client.download_artifacts(run.info.run_id, "eval_results_table.json"))
    table = json.loads(path.read_text())
    expected_columns = list(logged["record"].rows.columns)
    assert table["columns"] == expected_columns
    assert len(table["data"]) == len(ROWS)
    assert table["data"][2][expected_columns.index("output")] == '{"a": [1, 2]}'
    # load_table finds tables through the mlflow.loggedArtifacts tag, as the UI does.
    with global_tracking_uri(logged["uri"]):
        loaded = client.load_table(
            run.info.experiment_id, "eval_results_table.json", run_ids=[run.info.run_id]
        )
    assert list(loaded["id"]) == [row[0] for row in ROWS]


def test_prompt_and_config_artifacts_land_in_the_home(logged):
    run, home = logged["run"], logged["home"]
    artifact_dir = Path(run.info.artifact_uri.removeprefix("file://"))
    assert artifact_dir.is_relative_to(home / "mlruns" / "artifacts")
    assert (artifact_dir / "prompt_template.txt").read_text() == "Answer: {input}"
    assert json.loads((artifact_dir / "run_config.json").read_text()) == {
        "model": "echo",
        "concurrency": 4,
    }
    assert (artifact_dir / "eval_results_table.json").is_file()
    assert not (logged["cwd"] / "mlruns").exists()
    default = logged["client"].get_experiment("0")
    assert Path(default.artifact_location.removeprefix("file://")).is_relative_to(home)


def _traces_by_row(client, run):
    traces = client.search_traces(
        locations=[run.info.experiment_id], run_id=run.info.run_id, max_results=100
    )
    return {t.info.client_request_id: t for t in traces}


def test_one_trace_per_row_with_inputs_outputs_and_state(logged):
    traces = _traces_by_row(logged["client"], logged["run"])
    assert sorted(traces) == [row[0] for row in ROWS]
    for row_id, question, _, context, output, _, error, _, _ in ROWS:
        trace = traces[row_id]
        span = trace.data.spans[0]
        expected_inputs = {"input": question, **({"context": context} if context else {})}
        assert span.inputs == expected_inputs
        assert trace.info.state.value == ("ERROR" if error else "OK")
        assert trace.info.trace_metadata["mlflow.sourceRun"] == logged["run_id"]
        if output is not None and not output.startswith("{"):
            assert span.outputs == output
            assert trace.info.response_preview == json.dumps(output, ensure_ascii=False)
    # MLflow's span store decodes a string output that is itself JSON (the table keeps it raw).
    assert traces["r3"].data.spans[0].outputs == {"a": [1, 2]}
    assert traces["r5"].info.response_preview is None
    assert traces["r1"].info.execution_duration == 500
    assert (
        traces["r5"]
        .data.spans[0]
        .events[0]
        .attributes["exception.message"]
        .startswith("ProviderTimeout")
    )


def test_traces_carry_feedback_and_the_expectation(logged):
    traces = _traces_by_row(logged["client"], logged["run"])
    for row_id, _, expected, _, _, _, _, exact, judge in ROWS:
        trace = traces[row_id]
        by_name = {a.name: a for a in trace.info.assessments}
        span_id = trace.data.spans[0].span_id
        assert all(a.span_id == span_id for a in by_name.values())
        if expected is None:
            assert "expected_response" not in by_name
        else:
            expectation = by_name["expected_response"]
            assert expectation.expectation.value == expected
            assert expectation.source.source_type == "HUMAN"
        if exact is not None:
            feedback = by_name["exact_match"]
            assert feedback.feedback.value == exact
            assert (feedback.source.source_type, feedback.source.source_id) == (
                "CODE",
                "exact_match",
            )
        if judge is not None:
            feedback = by_name["faithfulness"]
            assert feedback.feedback.value == judge
            assert feedback.rationale == f"scored {judge}"
            assert feedback.source.source_type == "LLM_JUDGE"
            assert feedback.source.source_id == "openai:/gpt-4o-mini"
            assert feedback.run_id == logged["run_id"]
    failed = {a.name: a for a in traces["r5"].info.assessments}["faithfulness"]
    assert failed.feedback.value is None
    assert failed.feedback.error.error_message == "no output to judge"


def test_fluent_search_traces_by_run_finds_every_row(logged):
    with global_tracking_uri(logged["uri"]):
        frame = mlflow.search_traces(
            run_id=logged["run_id"], locations=[logged["run"].info.experiment_id]
        )
    assert len(frame) == len(ROWS)


def _normalized(trace) -> dict:
    """A trace as a dict without the parts that differ between two writes of it."""
    info = trace.info
    assessments = sorted(
        (a.name, a.source.source_type, a.source.source_id, a.rationale, a.valid,
         sorted(a.metadata), json.dumps(a.feedback.to_dictionary() if a.feedback
                                        else a.expectation.to_dictionary()))
        for a in info.assessments
    )  # fmt: skip
    span = trace.data.spans[0].to_dict()
    for key in ("trace_id", "span_id", "start_time_unix_nano", "end_time_unix_nano"):
        span.pop(key)
    span["attributes"].pop("mlflow.traceRequestId")
    metadata = {k: v for k, v in info.trace_metadata.items() if k != "mlflow.sourceRun"}
    tags = {k: v for k, v in info.tags.items() if k != "mlflow.artifactLocation"}
    return {
        "state": info.state, "request_preview": info.request_preview,
        "response_preview": info.response_preview, "duration": info.execution_duration,
        "client_request_id": info.client_request_id, "metadata": metadata, "tags": tags,
        "assessments": assessments, "span": span, "spans": len(trace.data.spans),
    }  # fmt: skip


def test_bulk_sql_traces_read_back_like_traces_written_through_the_store_api(logged):
    client = logged["client"]
    record = logged["record"]
    run = client.create_run(logged["run"].info.experiment_id, run_name="reference")
    rows = build_row_traces(record)
    store = client._tracking_client.store
    write_traces_via_store(
        store, rows, experiment_id=run.info.experiment_id, mlflow_run_id=run.info.run_id
    )
    reference = _traces_by_row(client, run)
    bulk = _traces_by_row(client, logged["run"])
    assert sorted(reference) == sorted(bulk)
    for row_id in reference:
        assert _normalized(bulk[row_id]) == _normalized(reference[row_id]), row_id


def test_span_content_equals_mlflow_translation_of_the_span():
    from mlflow.tracing.otel.translation import translate_span_when_storing

    for row in build_row_traces(make_record()):
        assert span_content(row) == translate_span_when_storing(to_mlflow_span(row))


def test_span_content_unquotes_json_looking_outputs_as_mlflow_does():
    from dataclasses import replace

    from mlflow.tracing.otel.translation import translate_span_when_storing

    row = build_row_traces(make_record())[0]
    tricky = [
        '{"answer": 4}', '"quoted"', "[1, 2]", '  {"x": "y"} ', "1", "true", "null",
        "{not json", '"unterminated', "plain text", "", "\u3000{}", '{"a": NaN}',
    ]  # fmt: skip
    for text in tricky:
        for changed in (replace(row, outputs=text), replace(row, row_id=text)):
            expected = translate_span_when_storing(to_mlflow_span(changed))
            assert span_content(changed) == expected, text


def test_assessment_values_are_written_as_json_dumps_writes_them():
    """The bulk path's own encoder for assessment values (``json_value``) matches json.dumps."""
    values = [
        0.1, 1 / 3, -0.0, 1e300, 5e-324, float("nan"), float("inf"), -float("inf"), 0, -7,
        10**30, True, False, None, "", "yes", 'Grüß "Gott"\n\u2028\x00\\', "\ud800",
        ["doc-1", "doc-2"], {"a": 1}, np.float64(0.25),
    ]  # fmt: skip
    for value in values:
        assert json_value(value) == json.dumps(value), value


def test_trace_ids_carry_their_creation_millisecond_first():
    """Time-ordered ids (as UUIDv7) keep a batch's traces together in MLflow's indexes."""
    before_ms = time.time_ns() // 1_000_000
    rows = build_row_traces(make_record())
    after_ms = time.time_ns() // 1_000_000
    prefixes = [row.otel_trace_id >> 80 for row in rows]
    assert all(before_ms <= p <= after_ms for p in prefixes), (before_ms, prefixes, after_ms)
    assert len({row.trace_id for row in rows}) == len(rows)


def test_without_traces_the_run_has_table_but_no_traces(tmp_path):
    uri = tracking_uri_for(tmp_path)
    run_id = log_run(make_record(experiment="no-traces"), tracking_uri=uri, traces=False)
    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(run_id)
    assert client.search_traces(locations=[run.info.experiment_id], run_id=run_id) == []
    assert [f.path for f in client.list_artifacts(run_id)] == [
        "eval_results_table.json",
        "prompt_template.txt",
        "run_config.json",
    ]


def test_mlflow_errors_become_tracking_error_and_fail_the_run(tmp_path):
    uri = tracking_uri_for(tmp_path)
    record = make_record(experiment="bad", metrics={"bad\nname": 1.0})
    with pytest.raises(TrackingError, match="cannot log run a1b2c3d4"):
        log_run(record, tracking_uri=uri)
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("bad")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FAILED"


def test_an_unusable_store_path_is_a_tracking_error(tmp_path):
    blocker = tmp_path / "mlruns"
    blocker.write_text("not a folder")
    with pytest.raises(TrackingError):
        log_run(make_record(), tracking_uri=tracking_uri_for(tmp_path))


def test_a_file_store_gets_the_run_and_skips_traces(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    uri = (tmp_path / "mlruns").as_uri()
    run_id = log_run(make_record(experiment="files"), tracking_uri=uri)
    run = MlflowClient(tracking_uri=uri).get_run(run_id)
    assert run.data.metrics == make_record().metrics
    assert run.data.tags["harness.traces"] == "skipped: FileStore cannot store traces"


def test_a_run_without_rows_is_logged(tmp_path):
    record = make_record(experiment="empty")
    record.rows = record.rows.iloc[0:0]
    record.feedback = []
    uri = tracking_uri_for(tmp_path)
    run_id = log_run(record, tracking_uri=uri)
    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert client.search_traces(locations=[run.info.experiment_id], run_id=run_id) == []
    table_path = Path(client.download_artifacts(run_id, "eval_results_table.json"))
    table = json.loads(table_path.read_text())
    assert table == {"columns": list(record.rows.columns), "data": []}
