"""The run record written with sqlite3 (``harness.tracking.sql_run``) equals MLflow's own.

Each run is logged twice into one real SQLite store: through MLflow's client
(``RunLogger``) and through the SQL path (``SqlRunLogger``); both are read back through
``MlflowClient`` (runs, inputs, artifacts, traces and their assessments, the logged model
and its metrics) and compared field by field, minus the ids and times that differ between
two writes. This runs against the installed MLflow, whose version ``VERIFIED_SCHEMAS``
must list for the SQL path to be used at all.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import sqlite3
import sys
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from mlflow.tracking import MlflowClient
from test_mlflow_log import (
    ROWS,
    _normalized,
    _traces_by_row,
    global_tracking_uri,
    make_record,
)

from harness.errors import TrackingError
from harness.tracking import (
    RunRecord,
    log_run,
    mlflow_sqlite,
    sql_artifacts,
    traces_sql,
    tracking_uri_for,
)
from harness.tracking.mlflow_log import RunLogger, open_run_logger
from harness.tracking.mlflow_resume import ResumingLogger, find_logged_runs
from harness.tracking.run_updates import tag_check
from harness.tracking.sql_artifacts import _colspec_schema, table_json
from harness.tracking.sql_run import SqlRunLogger
from harness.tracking.traces import build_row_traces, previews


def _record(**changes):
    record = make_record(metrics={"exact_match/mean": 0.25, "latency/p90": 1.1, "errors": 1.0,
                                  "empty/mean": math.nan, "huge": math.inf})  # fmt: skip
    record.system_prompt = "Be brief."
    record.generation_params = {"temperature": 0.0}
    for key, value in changes.items():
        setattr(record, key, value)
    return record


def _log(logger, record) -> str:
    logger.add_rows(record)
    return logger.finish(record)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A new store (built from the bundled schema), with the prompt and model of
    ``_record`` registered through MLflow's API."""
    home = tmp_path_factory.mktemp("sqlhome")
    uri = tracking_uri_for(home)
    first = _log(RunLogger(_record(), tracking_uri=uri, register=True), _record())
    db_path = mlflow_sqlite.verified_store(uri)
    assert db_path is not None, "the installed MLflow's schema is not in VERIFIED_SCHEMAS"
    return {"uri": uri, "db": db_path, "client": MlflowClient(tracking_uri=uri), "first": first}


def _both(store, record, **options):
    api = _log(RunLogger(record, tracking_uri=store["uri"], **options), record)
    sql_logger = SqlRunLogger.open(record, db_path=store["db"], **options)
    assert sql_logger is not None
    return api, _log(sql_logger, record)


def _run_view(client, run_id) -> dict:
    run = client.get_run(run_id)
    info = run.info
    tags = dict(run.data.tags)
    assert tags.pop("harness.traces", "").endswith(("(sql-bulk)", "(sql-direct)", ""))
    datasets = [
        (d.dataset.name, d.dataset.digest, d.dataset.source_type, d.dataset.source,
         d.dataset.schema, d.dataset.profile, sorted((t.key, t.value) for t in d.tags))
        for d in run.inputs.dataset_inputs
    ]  # fmt: skip
    artifacts = {}
    folders = [None]
    while folders:
        for item in client.list_artifacts(run_id, folders.pop()):
            if item.is_dir:
                folders.append(item.path)
                continue
            local = client.download_artifacts(run_id, item.path)
            artifacts[item.path] = Path(local).read_text(encoding="utf-8")
    return {
        "status": info.status, "lifecycle": info.lifecycle_stage, "user": info.user_id,
        "name": info.run_name, "start": info.start_time, "experiment": info.experiment_id,
        "artifact_uri": info.artifact_uri.replace(run_id, "RUN"),
        "params": run.data.params, "metrics": run.data.metrics, "tags": tags,
        "datasets": datasets, "models": [m.model_id for m in run.inputs.model_inputs],
        "artifacts": artifacts,
    }  # fmt: skip


def test_a_run_written_with_sql_reads_back_as_mlflow_wrote_it(store):
    client = store["client"]
    record = _record()
    api, sql = _both(store, record, register=True)
    api_view, sql_view = _run_view(client, api), _run_view(client, sql)
    assert sql_view == api_view
    assert sql_view["status"] == "FINISHED" and sql_view["models"]
    assert client.get_run(sql).info.end_time == client.get_run(api).info.end_time
    # Traces: every row, the same content, linked to the model and the prompt version.
    api_run, sql_run = client.get_run(api), client.get_run(sql)
    reference, written = _traces_by_row(client, api_run), _traces_by_row(client, sql_run)
    assert sorted(written) == sorted(reference) == sorted(r[0] for r in ROWS)
    for row_id in reference:
        assert _normalized(written[row_id]) == _normalized(reference[row_id]), row_id
        assert written[row_id].info.assessments[0].run_id == sql
    # The configuration model holds both runs' metrics, the same ones.
    (model_id,) = sql_view["models"]
    model = client.get_logged_model(model_id)
    by_run: dict[str, dict] = {}
    for metric in model.metrics:
        by_run.setdefault(metric.run_id, {})[metric.key] = (
            metric.value,
            metric.dataset_name,
            metric.dataset_digest,
            metric.step,
        )
    assert by_run[sql] == by_run[api] and by_run[sql]
    assert model.tags["mlflow.linkedPrompts"] == json.dumps(
        [{"name": "harness-prompt", "version": "1"}]
    )
    # The same table, readable as MLflow's own table artifact.
    with global_tracking_uri(store["uri"]):
        table = client.load_table(
            sql_run.info.experiment_id, "eval_results_table.json", run_ids=[sql]
        )
    assert list(table["id"]) == [r[0] for r in ROWS]


def test_traces_inserted_many_rows_a_statement_read_back_as_mlflow_wrote_them(store, monkeypatch):
    """Whole statements of several rows, then the rest in one (``traces_sql._insert_rows``)."""
    monkeypatch.setattr(traces_sql, "_ROWS_PER_STATEMENT", 4)
    client = store["client"]
    api, sql = _both(store, _record())
    reference = _traces_by_row(client, client.get_run(api))
    written = _traces_by_row(client, client.get_run(sql))
    assert sorted(written) == sorted(reference) == sorted(r[0] for r in ROWS)
    for row_id in reference:
        assert _normalized(written[row_id]) == _normalized(reference[row_id]), row_id


def test_a_run_given_the_users_model_links_to_it_both_ways(store):
    """A record naming a LoggedModel of the user's own (harness.evaluate(model_id=...)):
    both ways link the run to that model (model input, metrics, traces, tags) and neither
    finds or makes the configuration's; a model the store does not hold is left to
    MLflow's API, which fails the run saying so."""
    client = store["client"]
    experiment = client.get_run(store["first"]).info.experiment_id
    model = client.create_logged_model(experiment, name="users-agent")
    before = {m.model_id for m in client.search_logged_models([experiment])}
    record = _record(model_id=model.model_id)
    api, sql = _both(store, record, register=True)
    api_view, sql_view = _run_view(client, api), _run_view(client, sql)
    assert sql_view == api_view
    assert sql_view["models"] == [model.model_id]
    assert sql_view["tags"]["harness.model_id"] == model.model_id
    by_run: dict[str, dict] = {}
    for metric in client.get_logged_model(model.model_id).metrics:
        by_run.setdefault(metric.run_id, {})[metric.key] = (metric.value, metric.dataset_name)
    assert by_run[sql] == by_run[api] and set(by_run[sql]) == {
        k for k, v in record.metrics.items() if not math.isnan(v)
    }
    for run_id in (api, sql):
        traces = _traces_by_row(client, client.get_run(run_id))
        assert {t.info.request_metadata["mlflow.modelId"] for t in traces.values()} == {
            model.model_id
        }
    assert {m.model_id for m in client.search_logged_models([experiment])} == before
    gone = _record(model_id="m-" + "0" * 32)
    assert SqlRunLogger.open(gone, db_path=store["db"], register=True) is None
    with pytest.raises(TrackingError, match="Logged model with ID 'm-0+' not found"):
        RunLogger(gone, tracking_uri=store["uri"], register=True)


def test_params_metrics_and_nesting_without_registration(store):
    client = store["client"]
    parent = client.create_run(client.get_run(store["first"]).info.experiment_id).info.run_id
    record = _record(parent_run_id=parent, run_name=None)
    api, sql = _both(store, record)
    assert _run_view(client, sql) == _run_view(client, api)
    assert client.get_run(sql).data.tags["mlflow.parentRunId"] == parent
    assert client.get_run(sql).data.metrics["huge"] == client.get_run(api).data.metrics["huge"]


def test_a_new_experiment_is_created_as_mlflow_creates_it(store):
    client = store["client"]
    api = _log(RunLogger(_record(experiment="by-api"), tracking_uri=store["uri"]), _record())
    sql_logger = SqlRunLogger.open(_record(experiment="by-sql"), db_path=store["db"])
    assert sql_logger is not None
    sql = _log(sql_logger, _record(experiment="by-sql"))
    by_api, by_sql = (
        client.get_experiment_by_name("by-api"),
        client.get_experiment_by_name("by-sql"),
    )
    assert by_api.experiment_id == client.get_run(api).info.experiment_id
    assert by_sql.experiment_id == client.get_run(sql).info.experiment_id
    assert by_sql.artifact_location == by_api.artifact_location.replace(
        f"/{by_api.experiment_id}", f"/{by_sql.experiment_id}"
    )
    assert (by_sql.lifecycle_stage, by_sql.tags) == (by_api.lifecycle_stage, by_api.tags)


def test_a_resumed_run_replaces_the_earlier_one(store):
    client = store["client"]
    earlier = log_run(_record(), tracking_uri=store["uri"], register=True)
    logger = open_run_logger(_record(), tracking_uri=store["uri"], replaces=earlier, register=True)
    assert isinstance(logger, SqlRunLogger)
    newer = _log(logger, _record())
    assert client.get_run(earlier).info.lifecycle_stage == "deleted"
    assert client.get_run(newer).info.lifecycle_stage == "active"


def test_abort_deletes_the_run(store):
    logger = SqlRunLogger.open(_record(), db_path=store["db"], register=True)
    assert logger is not None
    logger.abort()
    assert store["client"].get_run(logger.run_id).info.lifecycle_stage == "deleted"


def test_a_new_prompt_is_registered_with_sql_and_found_by_the_next_run(store):
    record = _record(prompt_template="A brand new prompt: {input}")
    logger = SqlRunLogger.open(record, db_path=store["db"], register=True)
    assert logger is not None
    _log(logger, record)
    again = SqlRunLogger.open(record, db_path=store["db"], register=True)
    assert again is not None and again.links == logger.links  # found, not registered again
    again.abort()


def test_what_mlflow_must_register_is_left_to_it(store):
    # A registered model of the prompt's name that is no prompt: MLflow's API says so.
    store["client"].create_registered_model("not-a-prompt")
    record = _record(prompt_name="not-a-prompt")
    assert SqlRunLogger.open(record, db_path=store["db"], register=True) is None
    with sqlite3.connect(store["db"]) as conn:  # the SQL attempt wrote nothing
        assert conn.execute(
            "SELECT COUNT(*) FROM model_versions WHERE name = 'not-a-prompt'"
        ).fetchone() == (0,)
    with pytest.raises(TrackingError, match="already taken by a"):  # MLflow's own words
        open_run_logger(record, tracking_uri=store["uri"], register=True)
    with sqlite3.connect(store["db"]) as conn:
        assert conn.execute(
            "SELECT COUNT(*) FROM model_versions WHERE name = 'not-a-prompt'"
        ).fetchone() == (0,)


def test_an_unknown_schema_falls_back_to_mlflow(store, tmp_path, monkeypatch):
    copy = tmp_path / "mlruns" / "mlflow.db"
    copy.parent.mkdir()
    copy.write_bytes(store["db"].read_bytes())
    uri = tracking_uri_for(tmp_path)
    assert mlflow_sqlite.verified_store(uri) == copy
    with sqlite3.connect(copy) as conn:
        conn.execute("UPDATE alembic_version SET version_num = 'f00dfeedbeef'")
    assert mlflow_sqlite.verified_store(uri) is None
    # A revision MLflow knows but harness has not verified: MLflow's API logs the run.
    with sqlite3.connect(copy) as conn:
        conn.execute("UPDATE alembic_version SET version_num = ?", (_head(),))
    monkeypatch.setattr(mlflow_sqlite, "VERIFIED_SCHEMAS", {})
    logger = open_run_logger(_record(), tracking_uri=uri, register=True)
    assert isinstance(logger, RunLogger)
    run_id = _log(logger, _record())
    assert MlflowClient(tracking_uri=uri).get_run(run_id).info.status == "FINISHED"


def _head() -> str:
    return next(iter(mlflow_sqlite.VERIFIED_SCHEMAS))


def test_no_sql_path_for_another_mlflow_a_server_or_opt_in_modes(tmp_path, monkeypatch, store):
    assert mlflow_sqlite.verified_store("http://127.0.0.1:5000") is None
    monkeypatch.setenv("MLFLOW_SQL_TRACE_ROLLUPS_ENABLED", "true")
    assert mlflow_sqlite.verified_store(store["uri"]) is None
    monkeypatch.delenv("MLFLOW_SQL_TRACE_ROLLUPS_ENABLED")
    monkeypatch.setattr(mlflow_sqlite, "installed_mlflow", lambda: "9.9")
    assert mlflow_sqlite.verified_store(store["uri"]) is None
    fresh = tracking_uri_for(tmp_path / "fresh")  # nor a store built for another MLflow
    assert mlflow_sqlite.verified_store(fresh) is None
    assert not (tmp_path / "fresh" / "mlruns" / "mlflow.db").exists()


def test_a_new_store_is_built_for_the_sql_path(tmp_path):
    db_path = mlflow_sqlite.verified_store(tracking_uri_for(tmp_path))
    assert db_path == tmp_path / "mlruns" / "mlflow.db" and db_path.is_file()
    assert mlflow_sqlite.schema_revision(db_path) in mlflow_sqlite.VERIFIED_SCHEMAS


@pytest.mark.parametrize(
    "name",
    ["ok/name_1 -.:", "bad\nname", "a//b", "./a", "a/./b", "../up", "/root", ".", "x" * 250,
     "x" * 251, "é", "a,b", "tab\tname", "a/b/", ""],
)  # fmt: skip
def test_keys_are_checked_as_mlflow_checks_them(name):
    from mlflow.exceptions import MlflowException
    from mlflow.utils.validation import _validate_length_limit, _validate_metric_name

    from harness.tracking.mlflow_names import MAX_ENTITY_KEY_LENGTH, valid_key

    try:
        _validate_metric_name(name)
        _validate_length_limit("Metric name", MAX_ENTITY_KEY_LENGTH, name)
        mlflow_takes_it = True
    except MlflowException:
        mlflow_takes_it = False
    assert valid_key(name) is mlflow_takes_it


def test_a_key_mlflow_refuses_fails_the_sql_written_run_as_mlflow_would(store):
    record = _record()
    logger = SqlRunLogger.open(record, db_path=store["db"])
    assert logger is not None
    record.metrics = {**record.metrics, "bad\nname": 1.0}  # known only at the end
    with pytest.raises(TrackingError, match=r"MLflow takes no key 'bad\\nname'"):
        logger.finish(record)
    assert store["client"].get_run(logger.run_id).info.status == "FAILED"


def test_the_verified_revision_is_the_installed_mlflow_head(store):
    from alembic.script import ScriptDirectory
    from mlflow.store.db.utils import _get_alembic_config

    head = ScriptDirectory.from_config(_get_alembic_config("sqlite://")).get_current_head()
    assert mlflow_sqlite.schema_revision(store["db"]) == head
    assert mlflow_sqlite.installed_mlflow() in mlflow_sqlite.VERIFIED_SCHEMAS[head]


def test_every_mlflow_version_pyproject_allows_is_verified():
    """pyproject's MLflow range is exactly the versions ``make test-mlflow-versions`` ran
    this file under: MLflow's API path writes traces into the tables of the schema it was
    built against too (``traces_sql``), so an unverified version is not installable."""
    from packaging.requirements import Requirement

    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    (spec,) = [
        Requirement(r).specifier
        for r in pyproject["project"]["dependencies"]
        if Requirement(r).name == "mlflow"
    ]
    allowed = {
        f"{major}.{minor}"
        for major in range(2, 6)
        for minor in range(100)
        if any(spec.contains(f"{major}.{minor}.{patch}") for patch in range(20))
    }
    verified = {v for versions in mlflow_sqlite.VERIFIED_SCHEMAS.values() for v in versions}
    assert allowed == verified


def test_names_are_mlflows_constants():
    from mlflow.entities import LoggedModelStatus
    from mlflow.prompt import constants as pc
    from mlflow.prompt.constants import IS_PROMPT_TAG_KEY
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
    from mlflow.tracing import constant as tc
    from mlflow.utils import mlflow_tags as mt
    from mlflow.utils.validation import (
        MAX_ENTITY_KEY_LENGTH,
        MAX_MODEL_REGISTRY_TAG_VALUE_LENGTH,
        MAX_PARAM_VAL_LENGTH,
    )

    from harness.tracking import mlflow_names as n

    Tag = n.Tag
    assert (n.ARTIFACTS_FOLDER, n.TRACES_FOLDER, n.MODELS_FOLDER) == (
        SqlAlchemyStore.ARTIFACTS_FOLDER_NAME,
        SqlAlchemyStore.TRACE_FOLDER_NAME,
        SqlAlchemyStore.MODELS_FOLDER_NAME,
    )
    assert n.MAX_PARAM_VAL_LENGTH == MAX_PARAM_VAL_LENGTH
    assert n.MAX_ENTITY_KEY_LENGTH == MAX_ENTITY_KEY_LENGTH
    assert n.MAX_REGISTRY_TAG_VALUE_LENGTH == MAX_MODEL_REGISTRY_TAG_VALUE_LENGTH
    assert n.PROMPT_SOURCE == pc._STORE_PROMPT_SOURCE_PLACEHOLDER
    assert n.PREVIEW_MAX_LENGTH == tc.TRACE_REQUEST_RESPONSE_PREVIEW_MAX_LENGTH_OSS
    assert LoggedModelStatus.READY.to_int() == n.LOGGED_MODEL_READY
    pairs = {
        Tag.USER: mt.MLFLOW_USER, Tag.SOURCE_NAME: mt.MLFLOW_SOURCE_NAME,
        Tag.SOURCE_TYPE: mt.MLFLOW_SOURCE_TYPE, Tag.RUN_NAME: mt.MLFLOW_RUN_NAME,
        Tag.RUN_TYPE: mt.MLFLOW_RUN_TYPE, Tag.LOGGED_ARTIFACTS: mt.MLFLOW_LOGGED_ARTIFACTS,
        Tag.RUN_TYPE_GENAI_EVALUATE: mt.MLFLOW_RUN_TYPE_GENAI_EVALUATE,
        Tag.PARENT_RUN_ID: mt.MLFLOW_PARENT_RUN_ID, Tag.DATASET_CONTEXT: mt.MLFLOW_DATASET_CONTEXT,
        Tag.MODEL_IS_EXTERNAL: mt.MLFLOW_MODEL_IS_EXTERNAL,
        Tag.ARTIFACT_LOCATION: mt.MLFLOW_ARTIFACT_LOCATION,
        Tag.SPANS_LOCATION: tc.TraceTagKey.SPANS_LOCATION,
        Tag.SPANS_IN_TRACKING_STORE: tc.SpansLocation.TRACKING_STORE.value,
        Tag.TRACE_NAME: tc.TraceTagKey.TRACE_NAME, Tag.SOURCE_RUN: tc.TraceMetadataKey.SOURCE_RUN,
        Tag.MODEL_ID: tc.TraceMetadataKey.MODEL_ID, Tag.TRACE_INPUTS: tc.TraceMetadataKey.INPUTS,
        Tag.TRACE_OUTPUTS: tc.TraceMetadataKey.OUTPUTS,
        Tag.TRACE_INFO_FINALIZED: tc.TraceMetadataKey.TRACE_INFO_FINALIZED,
        Tag.TRACE_SCHEMA_VERSION_KEY: tc.TRACE_SCHEMA_VERSION_KEY,
        Tag.TRACE_SCHEMA_VERSION: str(tc.TRACE_SCHEMA_VERSION),
        Tag.MAX_CHARS_IN_TRACE_METADATA: tc.MAX_CHARS_IN_TRACE_INFO_METADATA,
        Tag.TRUNCATION_SUFFIX: tc.TRUNCATION_SUFFIX,
        Tag.ASSESSMENT_SOURCE_RUN_ID: tc.AssessmentMetadataKey.SOURCE_RUN_ID,
        Tag.SPAN_REQUEST_ID: tc.SpanAttributeKey.REQUEST_ID,
        Tag.SPAN_TYPE: tc.SpanAttributeKey.SPAN_TYPE, Tag.SPAN_INPUTS: tc.SpanAttributeKey.INPUTS,
        Tag.SPAN_OUTPUTS: tc.SpanAttributeKey.OUTPUTS, Tag.IS_PROMPT: IS_PROMPT_TAG_KEY,
        Tag.PROMPT_TEXT: pc.PROMPT_TEXT_TAG_KEY, Tag.PROMPT_TYPE: pc.PROMPT_TYPE_TAG_KEY,
        Tag.PROMPT_TYPE_TEXT: pc.PROMPT_TYPE_TEXT, Tag.PROMPT_TYPE_CHAT: pc.PROMPT_TYPE_CHAT,
    }  # fmt: skip
    assert {k: k for k in pairs} == {k: v for k, v in pairs.items()}


def test_previews_are_mlflows():
    from mlflow.tracing.utils.truncation import _get_truncated_preview

    record = make_record()
    rows = record.rows.copy()
    rows.loc[0, "input"] = "x" * 1500
    rows.loc[1, "output"] = json.dumps({"messages": [{"role": "assistant", "content": "hi"}]})
    rows.loc[2, "output"] = "é" * 2000
    record.rows = rows
    for row in build_row_traces(record):
        expected = (
            _get_truncated_preview(row.inputs_json, role="user"),
            None if row.outputs_json is None else _get_truncated_preview(
                row.outputs_json, role="assistant"
            ),
        )  # fmt: skip
        assert previews(row) == expected


@pytest.mark.parametrize(
    "frame",
    [
        pd.DataFrame({"id": ["a", "b"], "input": ["x", "y"], "expected": ["1", None]}),
        pd.DataFrame({"id": ["a"], "input": [""], "context": [None]}),
        pd.DataFrame({"id": ["a", "b"], "input": ["x", "y"], "expected": [None, float("nan")]}),
        pd.DataFrame({"id": pd.Series([], dtype=object), "input": pd.Series([], dtype=object)}),
    ],
)
def test_dataset_schema_is_mlflows(frame):
    from mlflow.data.code_dataset_source import CodeDatasetSource
    from mlflow.data.pandas_dataset import from_pandas

    dataset = from_pandas(frame, source=CodeDatasetSource(tags={}), name="n", digest="d")
    assert _colspec_schema(frame) == dataset._to_mlflow_entity().schema


@pytest.mark.parametrize("chunk", [1, 2, 1000])
def test_the_table_is_rendered_as_log_table_renders_it(monkeypatch, chunk):
    monkeypatch.setattr(sql_artifacts, "_RENDER_CHUNK_ROWS", chunk)
    frame = pd.DataFrame(
        {
            "id": ["a/1", "b", "c", "d", "e"],
            "input": ['é \u2028 "q"', "", None, "x" * 3000, "<tag>"],
            "score": [0.1, math.nan, 1 / 3, 1e-12, 2.0],
            "n": [1, 2, 3, 4, 5],
            "ok": [True, False, True, None, False],
            "when": pd.to_datetime(["2026-01-01T00:00:01Z"] * 5),
        }
    )
    for rows in (frame, frame.iloc[:1], frame.iloc[:0], frame.astype({"input": "string"})):
        assert table_json(rows) == rows.to_json(orient="split", index=False, date_format="iso")


def test_a_spooled_table_is_moved_into_the_runs_artifacts_and_nothing_is_left(store, tmp_path):
    # The MLflow worker's way: the run's process writes the per-row table to a file in the
    # store's folder (render_rows with a spool), and finish moves it into the artifacts.
    record = _record()
    spool = Path(store["db"]).parent
    rendered = sql_artifacts.render_rows(record, spool)
    assert rendered.table_json is None and rendered.table_file is not None
    assert rendered.table_file.parent == spool
    assert rendered.table_file.read_text(encoding="utf-8") == table_json(record.rows)
    logger = SqlRunLogger.open(record, db_path=store["db"])
    assert logger is not None
    run_id = logger.finish(record, rendered)
    assert not rendered.table_file.exists()
    assert list(spool.glob(".harness-table-*")) == []
    folder = Path(f"{logger.artifact_location}/{run_id}/artifacts")
    table = folder / "eval_results_table.json"
    assert table.read_text(encoding="utf-8") == table_json(record.rows)
    # It reads like the artifacts written beside it (not a private temporary file).
    assert table.stat().st_mode == (folder / "prompt_template.txt").stat().st_mode
    # One nobody used (MLflow's API logged the run) is deleted, and deleting is idempotent.
    unused = sql_artifacts.render_rows(record, spool)
    assert unused.table_file is not None and unused.table_file.exists()
    unused.discard()
    unused.discard()
    assert list(spool.glob(".harness-table-*")) == []
    # A folder that cannot take the file leaves the table as text.
    kept = sql_artifacts.render_rows(record, tmp_path / "no-such-folder")
    assert kept.table_file is None and kept.table_json == table_json(record.rows)


def test_a_spooled_table_on_another_file_system_is_copied_then_deleted(tmp_path, monkeypatch):
    import errno

    source, target = tmp_path / "spooled.json", tmp_path / "artifacts" / "table.json"
    source.write_text('{"columns":[],"data":[]}', encoding="utf-8")
    target.parent.mkdir()

    def across_devices(self: Path, other: Path) -> Path:  # what rename(2) says then
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(Path, "replace", across_devices)
    sql_artifacts._move(source, target)
    assert target.read_text(encoding="utf-8") == '{"columns":[],"data":[]}'
    assert not source.exists()


SLICES = pd.DataFrame(
    {
        "by": ["final_decision", "final_decision"],
        "value": ["yes", "no"],
        "metric": ["exact_match", "exact_match"],
        "mean": [0.5, 0.0],
        "ci_low": [0.1, 0.0],
        "ci_high": [0.9, 0.6],
        "rows": [2, 3],
    }
)


def test_slice_metrics_tables_and_the_report(store):
    """What a run with ``--by`` and a report logs (issues 13, 20) is written the same."""
    client = store["client"]
    metrics = {
        "exact_match/mean": 0.2,
        "exact_match/mean/by/final_decision/yes": 0.5,
        "exact_match/mean/by/final_decision/no": 0.0,
    }
    record = _record(
        metrics=metrics,
        tables={"slices_table.json": SLICES},
        report_html="<!doctype html><title>run</title><p>é</p>",
    )
    api, sql = _both(store, record, register=True)
    api_view, sql_view = _run_view(client, api), _run_view(client, sql)
    assert sql_view == api_view
    assert sql_view["metrics"] == metrics
    assert {"slices_table.json", "report.html"} <= set(sql_view["artifacts"])
    assert json.loads(sql_view["tags"]["mlflow.loggedArtifacts"]) == [
        {"path": "eval_results_table.json", "type": "table"},
        {"path": "slices_table.json", "type": "table"},
    ]
    with global_tracking_uri(store["uri"]):
        experiment = client.get_run(sql).info.experiment_id
        table = client.load_table(experiment, "slices_table.json", run_ids=[sql])
    assert list(table["value"]) == ["yes", "no"]


def test_a_checks_verdict_on_a_run_written_with_sql(store):
    """``harness check`` tags and documents a run written with SQL as one MLflow wrote."""
    client = store["client"]
    api, sql = _both(store, _record(), register=True)
    document = {"outcome": "fail", "gates": [{"name": "exact_match", "finding": "worse"}]}
    for run_id in (api, sql):
        tag_check(
            store["uri"], run_id, outcome="fail", summary="1 gate failed: exact_match",
            document=document, markdown="### harness check: fail\n",
        )  # fmt: skip
    api_view, sql_view = _run_view(client, api), _run_view(client, sql)
    assert sql_view == api_view
    assert sql_view["tags"]["harness.check"] == "fail"
    assert json.loads(sql_view["artifacts"]["harness/check.json"]) == document
    runs = client.search_runs(
        [client.get_run(sql).info.experiment_id], filter_string="tags.`harness.check` = 'fail'"
    )
    assert {api, sql} <= {r.info.run_id for r in runs}


def _stopped_and_resumed(store, base: RunRecord, harness_run_id: str, *, sql: bool) -> dict:
    """A run's MLflow life: stopped by a signal after 5 rows' traces (row r2 traced twice,
    as an older harness could), with a duplicate MLflow run an older harness left; resumed
    and failed; resumed with row r5 (failed) to run again, and finished; resumed again
    with a metric changed and a param added, and finished. Each state read back, by step;
    ``sql``: whether each resume is written with SQL (else through MLflow's API)."""
    client = store["client"]
    record = dataclasses.replace(base, run_id=harness_run_id)
    head = dataclasses.replace(record, metrics={}, rows=pd.DataFrame(), feedback=[])
    rows = build_row_traces(record)
    first = ResumingLogger(head, tracking_uri=store["uri"], register=True)
    first.add_traces(rows[:5])
    first.logger.add_traces(_anew(rows[1:2], 1))  # r2 again, as a trace of its own
    first.stop("KILLED")
    duplicate = RunLogger(head, tracking_uri=store["uri"], register=True)
    duplicate.add_traces(_anew(rows[:2], 2))
    client.set_terminated(duplicate.run_id, "KILLED")
    states = {"killed": _state(client, first.run_id)}
    all_rows = [r[0] for r in ROWS]
    refreshed = dataclasses.replace(
        record,
        params={**record.params, "extra": "1"},
        metrics={**record.metrics, "exact_match/mean": 0.5},
        finished_at=record.finished_at + 5,
    )
    steps = (
        ("failed", [r for r in all_rows if r != "r5"], None),
        ("finished", [r for r in all_rows if r != "r5"], record),
        ("refreshed", all_rows, refreshed),
    )
    for step, keep_rows, finished in steps:
        resumed = ResumingLogger(
            head,
            tracking_uri=store["uri"],
            register=True,
            known_run_id=first.run_id,
            keep_rows=keep_rows,
        )
        assert resumed.resumed and resumed.run_id == first.run_id
        assert resumed.writes_sql == sql, step
        if finished is None:
            resumed.add_traces(rows[:3])  # held already: nothing written
            resumed.stop("FAILED")
        else:
            resumed.add_rows(finished)
            assert resumed.finish(finished) == first.run_id
        states[step] = _state(client, first.run_id)
    assert [r.info.run_id for r in find_logged_runs(client, _experiment_id(client, first.run_id),
                                                    harness_run_id)] == [first.run_id]  # fmt: skip
    assert client.get_run(duplicate.run_id).info.lifecycle_stage == "deleted"
    return states


def _anew(traces: list, offset: int) -> list:
    """The same rows' traces under other trace ids."""
    return [dataclasses.replace(t, otel_trace_id=t.otel_trace_id + offset) for t in traces]


def _experiment_id(client, run_id) -> str:
    return str(client.get_run(run_id).info.experiment_id)


def _state(client, run_id) -> dict:
    view = _run_view(client, run_id)
    assert view["tags"].pop("harness.run_id")
    run = client.get_run(run_id)
    view["history"] = {
        key: [(m.value, m.step) for m in client.get_metric_history(run_id, key)]
        for key in sorted(run.data.metrics)
    }
    traces = client.search_traces(
        locations=[run.info.experiment_id], run_id=run_id, max_results=100
    )
    view["traces_per_row"] = dict(Counter(t.info.client_request_id for t in traces))
    view["traces"] = {t.info.client_request_id: _normalized(t) for t in traces}
    return view


def test_a_stopped_failed_and_resumed_run_is_continued_with_sql_as_mlflow_continues_it(
    store, monkeypatch
):
    """Issue 15's lifecycle: a run stopped by a signal is KILLED with the traces it had;
    each --resume continues that same MLflow run (duplicates deleted, a row's second trace
    and the traces of rows to run again deleted), a failure ends it FAILED, a finish
    FINISHED, logging only what it lacks. In a verified store each resume is written with
    SQL; read back through MlflowClient, each state equals MLflow's API doing it all."""
    base = _record()
    with monkeypatch.context() as patched:  # the reference: MLflow's API throughout
        patched.setattr(mlflow_sqlite, "VERIFIED_SCHEMAS", {})
        api = _stopped_and_resumed(store, base, "resume-api", sql=False)
    written = _stopped_and_resumed(store, base, "resume-sql", sql=True)
    for step in ("killed", "failed", "finished", "refreshed"):
        assert written[step] == api[step], step
    killed, failed, finished, refreshed = (
        written[s] for s in ("killed", "failed", "finished", "refreshed")
    )
    assert killed["status"] == "KILLED" and killed["traces_per_row"] == {
        "r1": 1, "r2": 2, "r3": 1, "r4": 1, "r5": 1,
    }  # fmt: skip
    assert not killed["params"] and not killed["metrics"]
    assert failed["status"] == "FAILED"
    assert failed["traces_per_row"] == {"r1": 1, "r2": 1, "r3": 1, "r4": 1}
    assert finished["status"] == "FINISHED" and finished["datasets"] and finished["models"]
    assert finished["traces_per_row"] == dict.fromkeys((r[0] for r in ROWS), 1)
    assert finished["traces"]["r5"]["state"] == "ERROR"
    assert refreshed["params"]["extra"] == "1"
    assert refreshed["history"]["exact_match/mean"] == [(0.25, 0), (0.5, 0)]
    assert refreshed["history"]["errors"] == [(1.0, 0)]  # the same value: not logged again
    assert refreshed["datasets"] == finished["datasets"]  # one dataset input
    # A deleted trace takes its assessments, spans, tags and metadata along.
    with contextlib.closing(sqlite3.connect(store["db"])) as conn:
        for table, column in (("assessments", "trace_id"), ("spans", "trace_id"),
                              ("trace_tags", "request_id"),
                              ("trace_request_metadata", "request_id")):  # fmt: skip
            orphans = conn.execute(
                f"SELECT count(*) FROM {table} WHERE {column} NOT IN "
                "(SELECT request_id FROM trace_info)"
            ).fetchone()
            assert orphans == (0,), table


_REGISTRY_TABLES = (
    "registered_models", "registered_model_tags", "model_versions", "model_version_tags",
    "logged_models", "logged_model_params", "logged_model_tags",
)  # fmt: skip


def _registry_rows(db_path: Path, home: Path) -> dict[str, list[tuple]]:
    """Every registry row, with what differs between two stores by nature (ids, times,
    paths) replaced by placeholders."""
    import re

    ids: dict[str, str] = {}

    def same(value):
        if isinstance(value, int) and value > 1_600_000_000_000:
            return "<time>"
        if not isinstance(value, str):
            return value
        value = value.replace(home.as_posix(), "<home>")
        for found in re.findall(r"m-[0-9a-f]{32}|(?<![0-9a-f])[0-9a-f]{32}(?![0-9a-f])", value):
            value = value.replace(found, ids.setdefault(found, f"<id{len(ids)}>"))
        return value

    with sqlite3.connect(db_path) as conn:
        return {
            table: sorted(
                tuple(same(v) for v in row) for row in conn.execute(f"SELECT * FROM {table}")
            )
            for table in _REGISTRY_TABLES
        }


def test_a_configuration_registered_with_sql_equals_one_mlflow_registered(tmp_path):
    """A fresh store, then a second prompt, then a second experiment: registered through
    MLflow's client in one home and with SQL in another, row for row the same, and MLflow
    reads the SQL-registered prompt and model as its own."""
    stores = {}
    for way in ("api", "sql"):
        home = tmp_path / way
        uri = tracking_uri_for(home)
        db_path = mlflow_sqlite.verified_store(uri)  # a new store, built from the schema
        assert db_path is not None
        stores[way] = (home, uri, db_path)
    steps = [
        _record(experiment="first"),
        _record(experiment="first", prompt_template="Reply: {input}"),  # version 2
        _record(experiment="second"),  # listed on a second experiment, a second model
        _record(experiment="first"),  # all found: nothing new
    ]
    for record in steps:
        home, uri, db_path = stores["api"]
        _log(RunLogger(record, tracking_uri=uri, register=True), record)
        home, uri, db_path = stores["sql"]
        logger = SqlRunLogger.open(record, db_path=db_path, register=True)
        assert logger is not None  # registered with SQL, not left to MLflow
        _log(logger, record)
    api_rows = _registry_rows(stores["api"][2], stores["api"][0])
    sql_rows = _registry_rows(stores["sql"][2], stores["sql"][0])
    # two prompts (one per experiment), three versions, three models
    assert [len(api_rows[t]) for t in _REGISTRY_TABLES] == [2, 4, 3, 12, 3, 12, 9]
    for table in _REGISTRY_TABLES:
        assert sql_rows[table] == api_rows[table], table

    client = MlflowClient(tracking_uri=stores["sql"][1])
    prompt = client.load_prompt("prompts:/first-prompt/2")
    assert prompt.tags["harness.prompt_digest"] and prompt.template[1]["content"].startswith(
        "Reply: {{input}}"
    )
    (experiment,) = [e for e in client.search_experiments() if e.name == "second"]
    (model,) = client.search_logged_models(experiment_ids=[experiment.experiment_id])
    assert model.status.to_int() == 2 and model.params["prompt_uri"] == "prompts:/second-prompt/1"


def test_a_failing_clean_up_warns_and_lets_the_first_error_be_seen(caplog):
    """Marking a run failed (or deleting an unfinished one) happens on a path that is
    already failing: a store error there is a warning, with the URI's password scrubbed;
    anything else is no store error and is raised, not swallowed."""
    from mlflow.exceptions import MlflowException

    from harness.tracking.mlflow_log import _best_effort

    secrets = ("s3cret-password",)
    with caplog.at_level("WARNING", logger="harness"), _best_effort("could not mark", secrets):
        raise MlflowException("API request to http://ana:s3cret-password@h failed")
    assert [r.getMessage() for r in caplog.records] == [
        "harness: could not mark: API request to http://ana:***@h failed"
    ]
    with pytest.raises(ZeroDivisionError), _best_effort("could not mark", ()):
        1 / 0  # noqa: B018 - a bug, not the store's error
