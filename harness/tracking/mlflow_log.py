"""Log a finished harness run to MLflow: params, metrics, dataset input, tables, traces.

The runner hands over a ``RunRecord`` (plain data) and calls ``log_run``. The MLflow run
then holds what ``mlflow.evaluate`` / ``mlflow.genai.evaluate`` would leave behind:

- params and aggregate metrics, and the tag ``mlflow.runType = genai_evaluate``;
- the dataset as a run input (name, digest, context ``eval``);
- ``eval_results_table.json`` in ``mlflow.log_table``'s format, registered in the run's
  ``mlflow.loggedArtifacts`` tag so the UI's evaluation table view lists it;
- ``prompt_template.txt`` and ``run_config.json``, and ``report.html``, the run's report
  (``harness.report``), which MLflow's artifact view shows as a page;
- one trace per row with feedback and expectation assessments (``harness.tracking.traces``);
- with ``register=True``: the prompt as a version in MLflow's prompt registry and the
  configuration as a ``LoggedModel`` that the run, its metrics and traces link to
  (``harness.tracking.registry``);
- with ``parent_run_id``: the tag ``mlflow.parentRunId`` (a child run of a sweep, whose
  parent run ``harness.tracking.sweep_log`` logs).

The store is opened by ``harness.tracking.mlflow_store``. ``import mlflow`` costs about a
second, so MLflow is imported inside functions only. Errors from MLflow, SQLAlchemy and
the artifact store become ``TrackingError`` here.
"""

from __future__ import annotations

import contextlib
import json
import logging
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.faults import first_line
from harness.secrets import redact
from harness.tracking.mlflow_store import (
    DEFAULT_EXPERIMENT,
    epoch_ms,
    get_or_create_experiment,
    mapped_errors,
    mlflow_params,
    open_store,
)
from harness.tracking.record import (
    CONFIG_ARTIFACT,
    HARNESS_RUN_TAG,
    MLFLOW_DIGEST_MAX,
    PROMPT_ARTIFACT,
    REPORT_ARTIFACT,
    TABLE_ARTIFACT,
    TRACES_TAG,
    RunRecord,
)
from harness.tracking.sql_run import SqlRunLogger, logged_tables_tag, run_tags
from harness.tracking.sync_target import display_uri, uri_secrets

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

    from harness.tracking.registry import RegistryLinks
    from harness.tracking.traces import RowTrace

__all__ = ["MLFLOW_DIGEST_MAX", "RunLogger", "log_run", "open_run_logger"]


def log_run(
    record: RunRecord,
    *,
    tracking_uri: str,
    traces: bool = True,
    replaces: str | None = None,
    register: bool = False,
) -> str:
    """Log ``record`` as one finished MLflow run and return the MLflow run id.

    With ``traces`` the run also gets one trace per row, with its judge and metric feedback
    and the expected answer. With ``register`` the prompt is registered (a new version only
    when its text changed) and the run is linked to its configuration's ``LoggedModel``
    (one per model + prompt + params), see ``harness.tracking.registry``. A failure marks
    the MLflow run FAILED and raises ``TrackingError``; a run that was logged completely is
    FINISHED. ``replaces`` names an MLflow run logged earlier for the same harness run
    (before a ``--resume``): it is deleted once the new one is complete, so one harness
    run is one MLflow run. This is ``RunLogger`` done in one go.
    """
    logger = open_run_logger(
        record, tracking_uri=tracking_uri, traces=traces, replaces=replaces, register=register
    )
    logger.add_rows(record)
    return logger.finish(record)


def open_run_logger(
    head: RunRecord,
    *,
    tracking_uri: str,
    traces: bool = True,
    replaces: str | None = None,
    register: bool = False,
) -> RunLogger | SqlRunLogger:
    """Open the MLflow run of ``head``: written with SQL into a verified local store
    (``harness.tracking.sql_run``, no MLflow import), else through MLflow's API.

    Both loggers take the same calls (``add_rows``, ``finish``, ``abort``) and leave the
    same run behind.
    """
    from harness.tracking.mlflow_sqlite import verified_store

    db_path = verified_store(tracking_uri)
    if db_path is not None:
        logger = SqlRunLogger.open(
            head, db_path=db_path, traces=traces, replaces=replaces, register=register
        )
        if logger is not None:
            return logger
    return RunLogger(
        head, tracking_uri=tracking_uri, traces=traces, replaces=replaces, register=register
    )


class RunLogger:
    """One MLflow run logged in stages, so traces can be written while rows still run.

    ``RunLogger(head)`` opens the run (and registers the prompt and model), ``add_rows``
    writes the traces of the rows in a record as they finish, and ``finish`` logs params,
    metrics, inputs and artifacts and ends the run. ``abort`` deletes a run that will not
    finish. With ``run_id``, the run logged into is that existing one instead of a new one
    (``harness.tracking.mlflow_resume`` continues a partly logged run so).

    ``into_run`` logs into an existing run instead: the caller's active MLflow run
    (``harness.evaluate`` inside ``mlflow.start_run()``, as ``mlflow.evaluate`` does). That
    run is never ended, failed or deleted here, and params it already has are kept (MLflow
    params cannot change).
    """

    def __init__(
        self,
        head: RunRecord,
        *,
        tracking_uri: str,
        traces: bool = True,
        replaces: str | None = None,
        register: bool = False,
        into_run: str | None = None,
        run_id: str | None = None,
    ) -> None:
        self.tracking_uri, self.traces, self.replaces = tracking_uri, traces, replaces
        # The caller's tracking URI may carry a password or token: never in a message.
        self._what = f"cannot log run {head.run_id} to MLflow at {display_uri(tracking_uri)}"
        self._secrets = uri_secrets(tracking_uri)
        self.trace_count = 0
        self.trace_note: str | None = None
        self.inputs_logged = False  # an existing run may hold them (MLflow re-adds a model's)
        self.owned = into_run is None
        self.existing_params: dict[str, str] = {}
        self.model_id: str | None = None  # the LoggedModel the run's results link to
        if into_run is not None:
            with mapped_errors(self._what, self._secrets):
                self._join(head, into_run)
            return
        with mapped_errors(self._what, self._secrets):
            self.client, self.store = open_store(tracking_uri)
            self.experiment = get_or_create_experiment(
                self.client, self.store, head.experiment or DEFAULT_EXPERIMENT
            )
            # A resumed sweep child stays a child: the run it replaces names the parent.
            parent = head.parent_run_id or (_parent_of(self.client, replaces) if replaces else None)
            if run_id is None:
                run = self.client.create_run(
                    self.experiment.experiment_id,
                    start_time=epoch_ms(head.started_at),
                    run_name=head.run_name or head.run_id,
                    tags=run_tags(head, parent),
                )
                run_id = run.info.run_id
            self.run_id: str = run_id
            with self._failing():
                self.links = (
                    _register(self.client, self.experiment, self.run_id, head) if register else None
                )
            self.model_id = self.links.model_id if self.links is not None else None

    def _join(self, head: RunRecord, run_id: str) -> None:
        """Log into ``run_id``, a run of the caller's own store (created nothing here)."""
        from mlflow.tracking import MlflowClient

        from harness.tracking.registry import MODEL_ID_TAG

        self.client = MlflowClient(tracking_uri=self.tracking_uri)
        self.store = self.client._tracking_client.store  # traces are written through it
        run = self.client.get_run(run_id)
        self.experiment = self.client.get_experiment(run.info.experiment_id)
        self.run_id = run_id
        self.links = None
        # No registration in the caller's store; a model named by the caller is linked, as
        # mlflow.evaluate(model_id=...) links it (metrics, model input, traces).
        self.model_id = head.model_id
        self.existing_params = dict(run.data.params)
        tags = run_tags(head)
        if head.model_id is not None:
            tags[MODEL_ID_TAG] = head.model_id
        for key, value in tags.items():  # the user's own tags stay as they are
            if key not in run.data.tags or key in (HARNESS_RUN_TAG, MODEL_ID_TAG):
                self.client.set_tag(run_id, key, value)

    @contextlib.contextmanager
    def _failing(self) -> Iterator[None]:
        try:
            yield
        except BaseException:
            if self.owned:
                _mark_failed(self.client, self.run_id, self._secrets)
            raise

    def add_rows(self, record: RunRecord) -> None:
        """Write the traces of ``record.rows`` (with ``record.feedback``) to the run."""
        if not self.traces or record.rows is None or record.rows.empty:
            return
        from harness.tracking.traces import build_row_traces

        self.add_traces(build_row_traces(record))

    def add_traces(self, row_traces: list[RowTrace]) -> None:
        """Write rows already made into traces (``harness.tracking.traces.row_traces``)."""
        if not self.traces or not row_traces:
            return
        with mapped_errors(self._what, self._secrets), self._failing():
            count, note = _log_traces(
                self.client,
                self.store,
                self.experiment,
                self.run_id,
                row_traces,
                self.links,
                model_id=self.model_id,
            )
            self.trace_count += count
            self.trace_note = note

    def finish(self, record: RunRecord) -> str:
        """Log params, metrics, inputs and artifacts, end the run, return its id."""
        with mapped_errors(self._what, self._secrets):
            with self._failing():
                _log_params_and_metrics(
                    self.client,
                    self.run_id,
                    record,
                    self.links,
                    keep=self.existing_params,
                    model_id=self.model_id,
                )
                if not self.inputs_logged:
                    _log_inputs(self.client, self.run_id, record, self.model_id)
                _log_artifacts(self.client, self.run_id, record)
                if record.tables:  # the UI lists the tables this tag names
                    self.client.set_tag(self.run_id, *logged_tables_tag(record.tables))
                if self.trace_note is not None:
                    self.client.set_tag(
                        self.run_id, TRACES_TAG, self.trace_note.format(count=self.trace_count)
                    )
                if self.owned:
                    self.client.set_terminated(
                        self.run_id, "FINISHED", end_time=epoch_ms(record.finished_at)
                    )
            if self.replaces and self.replaces != self.run_id:
                self.client.delete_run(self.replaces)
        return self.run_id

    def abort(self) -> None:
        """Best effort: delete a run that will not be finished (never the caller's own)."""
        if not self.owned:
            return
        with _best_effort(f"could not delete unfinished MLflow run {self.run_id}", self._secrets):
            self.client.delete_run(self.run_id)


def _parent_of(client: MlflowClient, run_id: str) -> str | None:
    """The ``mlflow.parentRunId`` of an earlier run, None when it has none or is gone."""
    from mlflow.exceptions import MlflowException
    from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

    try:
        return client.get_run(run_id).data.tags.get(MLFLOW_PARENT_RUN_ID)
    except MlflowException:
        return None


def _register(
    client: MlflowClient, experiment: Any, run_id: str, record: RunRecord
) -> RegistryLinks:
    from harness.prompts import prompt_digest
    from harness.tracking.registry import (
        ConfigIdentity,
        default_prompt_name,
        register_configuration,
    )

    model_uri = str(record.params.get("model") or record.config.get("model") or "")
    digest = prompt_digest(record.prompt_template, record.system_prompt)
    identity = ConfigIdentity(model_uri, digest, dict(record.generation_params))
    model_params = {"model": model_uri, "prompt_digest": digest}
    model_params.update({f"param.{k}": str(v) for k, v in sorted(identity.params.items())})
    return register_configuration(
        client,
        experiment_id=experiment.experiment_id,
        run_id=run_id,
        prompt_name=record.prompt_name or default_prompt_name(experiment.name),
        template=record.prompt_template,
        system=record.system_prompt,
        identity=identity,
        model_params=model_params,
        model_id=record.model_id,
    )


def _log_params_and_metrics(
    client: MlflowClient,
    run_id: str,
    record: RunRecord,
    links: RegistryLinks | None = None,
    *,
    keep: Mapping[str, str] | None = None,
    model_id: str | None = None,
) -> None:
    """``keep``: params the run has already (a caller's run); MLflow params cannot change.
    ``model_id``: the LoggedModel the metrics are also logged against."""
    import math

    from mlflow.entities import Metric

    values = {str(k): str(v) for k, v in record.params.items() if str(k) not in (keep or {})}
    if links is not None:
        values["prompt_uri"] = links.prompt_uri
    params = mlflow_params(values)
    timestamp = epoch_ms(record.finished_at)
    # Metrics with a model id are also the model's metrics, per dataset, as
    # mlflow.genai.evaluate logs them for an active model.
    linked: dict[str, Any] = {}
    if model_id is not None:
        linked = {
            "model_id": model_id,
            "dataset_name": record.dataset_name,
            "dataset_digest": record.dataset_digest[:MLFLOW_DIGEST_MAX],
        }
    metrics = []
    for key, value in record.metrics.items():
        if value is None:
            continue
        number = float(value)
        if math.isnan(number):
            continue  # an aggregate over no scored rows; MLflow charts cannot use it
        metrics.append(Metric(str(key), number, timestamp, 0, **linked))
    # log_batch splits into MLflow's per-request limits itself.
    client.log_batch(run_id, metrics=metrics, params=params)


def _log_inputs(
    client: MlflowClient, run_id: str, record: RunRecord, model_id: str | None = None
) -> None:
    """The dataset (and the run's LoggedModel, ``model_id``) as the run's inputs, in one call."""
    from mlflow.data.code_dataset_source import CodeDatasetSource
    from mlflow.data.pandas_dataset import from_pandas
    from mlflow.entities import DatasetInput, InputTag, LoggedModelInput
    from mlflow.exceptions import MlflowException
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    assert record.rows is not None, "a finished run's record holds its rows"
    columns = [c for c in ("id", "input", "expected", "context") if c in record.rows.columns]
    # An explicit source: the default (the calling code) runs git to describe it.
    source = CodeDatasetSource(
        tags={
            "harness.dataset": f"{record.dataset_name}@{record.dataset_version}",
            "harness.dataset_digest": record.dataset_digest,
        }
    )
    dataset = from_pandas(
        record.rows[columns],
        source=source,
        targets="expected" if "expected" in columns else None,
        name=record.dataset_name,
        digest=record.dataset_digest[:MLFLOW_DIGEST_MAX],
    )
    dataset_input = DatasetInput(
        dataset=dataset._to_mlflow_entity(),
        tags=[InputTag(key=MLFLOW_DATASET_CONTEXT, value="eval")],
    )
    models = [LoggedModelInput(model_id)] if model_id is not None else None
    try:
        client.log_inputs(run_id, datasets=[dataset_input], models=models)
    except MlflowException as e:
        # MLflow looks the dataset up, then inserts it: two runs of one dataset started
        # together can both miss it, and the later insert breaks the unique key. Its
        # transaction was rolled back; the dataset exists now, so a second try links it.
        if "IntegrityError" not in str(e) or "datasets" not in str(e):
            raise
        client.log_inputs(run_id, datasets=[dataset_input], models=models)


def _log_artifacts(client: MlflowClient, run_id: str, record: RunRecord) -> None:
    """Write the per-row table, prompt and config to a temp dir and log it in one call."""
    with tempfile.TemporaryDirectory(prefix="harness-mlflow-") as tmp:
        folder = Path(tmp)
        # The same call mlflow.log_table makes, so the UI reads the file as it reads its own.
        assert record.rows is not None, "a finished run's record holds its rows"
        record.rows.to_json(folder / TABLE_ARTIFACT, orient="split", index=False, date_format="iso")
        for name, table in record.tables.items():
            table.to_json(folder / name, orient="split", index=False, date_format="iso")
        (folder / PROMPT_ARTIFACT).write_text(record.prompt_template, encoding="utf-8")
        (folder / CONFIG_ARTIFACT).write_text(
            json.dumps(record.config, indent=2, sort_keys=True, default=str), encoding="utf-8"
        )
        if record.report_html is not None:  # MLflow's artifact view renders one HTML file
            (folder / REPORT_ARTIFACT).write_text(record.report_html, encoding="utf-8")
        client.log_artifacts(run_id, tmp)


def _log_traces(
    client: MlflowClient,
    store: Any,
    experiment: Any,
    run_id: str,
    row_traces: list[RowTrace],
    links: RegistryLinks | None = None,
    *,
    model_id: str | None = None,
) -> tuple[int, str]:
    """Write ``row_traces``; return how many and a note for the run's tag. ``model_id``:
    the LoggedModel the traces link to."""
    from harness.tracking.registry import LINKED_PROMPTS_TAG
    from harness.tracking.traces import supports_trace_api, write_traces_via_store
    from harness.tracking.traces_sql import is_sql_store, write_traces_sql

    if not is_sql_store(store) and not supports_trace_api(store):
        # e.g. the legacy file store: the run is still complete without its traces.
        return 0, f"skipped: {type(store).__name__} cannot store traces"
    # The model id puts the traces on the model's page; the prompt tag makes the trace
    # table filterable by prompt version.
    tags = {LINKED_PROMPTS_TAG: links.linked_prompts} if links is not None else None
    if is_sql_store(store):
        write_traces_sql(
            store, row_traces, experiment=experiment, mlflow_run_id=run_id,
            model_id=model_id, tags=tags,
        )  # fmt: skip
        written = "sql-bulk"
    else:
        write_traces_via_store(
            store, row_traces, experiment_id=experiment.experiment_id, mlflow_run_id=run_id,
            model_id=model_id, tags=tags,
        )  # fmt: skip
        written = "store-api"
    return len(row_traces), "{count} traces (" + written + ")"


def _mark_failed(client: MlflowClient, run_id: str, secrets: tuple[str, ...]) -> None:
    """Best effort: the original error is the one worth reporting."""
    # Never mask the error that got us here.
    with _best_effort(f"could not mark MLflow run {run_id} failed", secrets):
        client.set_terminated(run_id, "FAILED")


@contextlib.contextmanager
def _best_effort(what: str, secrets: tuple[str, ...]) -> Iterator[None]:
    """A clean-up on a path that is already failing: its own failure (the store the error
    came from, most likely) is logged, and the error that brought us here is raised."""
    from mlflow.exceptions import MlflowException
    from sqlalchemy.exc import SQLAlchemyError

    try:
        yield
    except (MlflowException, SQLAlchemyError, OSError, ValueError) as e:
        said = redact(first_line(e), secrets)
        logging.getLogger("harness").warning("harness: %s: %s", what, said)
