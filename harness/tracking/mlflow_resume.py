"""One harness run, one MLflow run: continue a partly logged run instead of starting another.

A harness run's MLflow run carries the tag ``harness.run_id``. A run interrupted by a
signal is left ``KILLED`` with the traces it had written, one killed outright is left
``RUNNING``, one whose logging failed ``FAILED``. When the run is resumed, or logged again
from DuckDB (``harness runs log``), ``ResumingLogger`` opens that same MLflow run, writes
the traces of the rows it does not hold yet, logs what differs of the params, metrics,
inputs and artifacts (MLflow skips identical metric values and inputs), and ends it
``FINISHED``: running it twice changes nothing the second time.

In a store whose schema is verified (``mlflow_sqlite.verified_store``), a harness run that
has no MLflow run yet is written with SQL (``harness.tracking.sql_run``), and an earlier
MLflow run is continued with SQL (``harness.tracking.sql_resume``, the same steps as
below), so neither imports MLflow; any other store goes through MLflow's API.

Only one process writes a harness run's MLflow run at a time: ``run_lock`` is an OS file
lock beside the SQLite store, held from opening to the end (the OS drops it when the
process dies, even by SIGKILL). A worker left behind by a process killed outright still
writes the batches it had received; the next writer waits for it, then reads what it wrote.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import TrackingError
from harness.tracking.mlflow_log import RunLogger
from harness.tracking.mlflow_store import (
    DEFAULT_EXPERIMENT,
    artifact_root_for,
    get_or_create_experiment,
    mapped_errors,
    open_store,
)
from harness.tracking.record import HARNESS_RUN_TAG, TRACES_TAG, RunRecord
from harness.tracking.sql_resume import ResumedSqlRun, same_metric, stale_traces
from harness.tracking.sql_run import SqlRunLogger

if TYPE_CHECKING:
    from mlflow.entities import Run
    from mlflow.tracking import MlflowClient

    from harness.tracking.sql_artifacts import RenderedRows
    from harness.tracking.traces import RowTrace

__all__ = ["ResumingLogger", "find_logged_runs", "run_lock", "traced_rows"]

LOCK_DIR = ".locks"  # under <home>/mlruns
LOCK_TIMEOUT_S = 300.0  # a worker left behind finishes its batches well within this
_DELETE_CHUNK = 100  # MlflowClient.delete_traces takes at most 100 ids at a time


@contextlib.contextmanager
def run_lock(
    tracking_uri: str, harness_run_id: str, timeout_s: float = LOCK_TIMEOUT_S
) -> Iterator[None]:
    """Hold the lock on writing ``harness_run_id``'s MLflow run (SQLite stores only)."""
    root = artifact_root_for(tracking_uri)
    if root is None:  # a server or another database: MLflow itself is the referee
        yield
        return
    from filelock import FileLock, Timeout

    folder = root.parent / LOCK_DIR
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(folder / f"run-{harness_run_id}.lock")
    try:
        lock.acquire(timeout=timeout_s)
    except Timeout:
        raise TrackingError(
            f"another process has been logging run {harness_run_id} to MLflow for "
            f"{timeout_s:.0f} s (lock: {lock.lock_file}); try again when it is done"
        ) from None
    try:
        yield
    finally:
        lock.release()


def find_logged_runs(client: MlflowClient, experiment_id: str, harness_run_id: str) -> list[Run]:
    """The MLflow runs (not deleted) logged for a harness run, oldest first."""
    from mlflow.entities import ViewType

    from harness.tracking.sync_traces import pages

    where = f"tags.`{HARNESS_RUN_TAG}` = '{harness_run_id}'"
    return list(
        pages(
            lambda token: client.search_runs(
                [experiment_id],
                filter_string=where,
                run_view_type=ViewType.ACTIVE_ONLY,
                order_by=["attributes.start_time ASC"],
                page_token=token,
            )
        )
    )


def traced_rows(store: Any, experiment_id: str, mlflow_run_id: str) -> dict[str, list[str]]:
    """Row id -> the ids of its traces in an MLflow run (a trace's ``client_request_id``)."""
    from harness.tracking.sync_traces import SEARCH_TRACES_PAGE, pages

    where = f"attribute.run_id = '{mlflow_run_id}'"
    infos = pages(
        lambda token: store.search_traces(
            locations=[experiment_id],
            filter_string=where,
            max_results=SEARCH_TRACES_PAGE,
            page_token=token,
            order_by=["timestamp_ms ASC"],
        )
    )
    found: dict[str, list[str]] = {}
    for info in infos:
        if info.client_request_id:
            found.setdefault(info.client_request_id, []).append(info.trace_id)
    return found


class ResumingLogger:
    """``RunLogger`` for a harness run that may have been logged in part before.

    Opens the run's earlier MLflow run when there is one (``known_run_id``, else found by
    its tag; any duplicate from an older harness is deleted), else a new one, and holds
    ``run_lock`` until ``finish`` or ``stop``. ``add_rows`` skips rows already traced;
    ``finish`` skips metric values already logged; ``stop(status)`` ends an unfinished
    run as ``KILLED`` or ``FAILED``, keeping what it holds.
    """

    def __init__(
        self,
        head: RunRecord,
        *,
        tracking_uri: str,
        traces: bool = True,
        register: bool = False,
        known_run_id: str | None = None,
        keep_rows: Collection[str] | None = None,
    ) -> None:
        self._lock: contextlib.AbstractContextManager[None] = run_lock(tracking_uri, head.run_id)
        self._lock.__enter__()
        try:
            self.logged_rows: set[str] = set()
            self.resumed = False
            sql = _sql_run(head, tracking_uri, traces, register, known_run_id, keep_rows)
            if sql is not None:
                self.logger: RunLogger | SqlRunLogger = sql
                if isinstance(sql, ResumedSqlRun):
                    self.resumed, self.logged_rows = True, set(sql.logged_rows)
                return
            existing = self._existing(head, tracking_uri, known_run_id)
            api = RunLogger(
                head, tracking_uri=tracking_uri, traces=traces, register=register, run_id=existing
            )
            self.logger = api
            self.resumed = existing is not None
            if existing is not None and traces:
                with mapped_errors(api._what):
                    self.logged_rows = self._tidy_traces(api, existing, keep_rows)
                api.trace_count = len(self.logged_rows)
        except BaseException:
            self._release()
            raise

    @property
    def run_id(self) -> str:
        return self.logger.run_id

    @property
    def writes_sql(self) -> bool:
        """Whether the run is written with SQL (``finish`` then takes rendered tables)."""
        return isinstance(self.logger, SqlRunLogger)

    @staticmethod
    def _tidy_traces(
        logger: RunLogger, mlflow_run_id: str, keep_rows: Collection[str] | None
    ) -> set[str]:
        """One trace per row, and none for a row that is not stored (any more): a failed
        row that ``--resume`` runs again gets a new one. Returns the rows traced."""
        experiment_id = logger.experiment.experiment_id
        found = traced_rows(logger.store, experiment_id, mlflow_run_id)
        stale, kept = stale_traces(found, keep_rows)
        for start in range(0, len(stale), _DELETE_CHUNK):
            logger.client.delete_traces(
                experiment_id, trace_ids=stale[start : start + _DELETE_CHUNK]
            )
        return kept

    def _existing(self, head: RunRecord, tracking_uri: str, known: str | None) -> str | None:
        with mapped_errors(f"cannot log run {head.run_id} to MLflow at {tracking_uri}"):
            client, store = open_store(tracking_uri)
            experiment = get_or_create_experiment(
                client, store, head.experiment or DEFAULT_EXPERIMENT
            )
            found = find_logged_runs(client, experiment.experiment_id, head.run_id)
            if not found:
                return None
            keep = next((r for r in found if r.info.run_id == known), found[0])
            for duplicate in found:  # one harness run is one MLflow run
                if duplicate.info.run_id != keep.info.run_id:
                    client.delete_run(duplicate.info.run_id)
            if keep.info.status != "RUNNING":
                client.update_run(keep.info.run_id, status="RUNNING")
            return str(keep.info.run_id)

    def add_rows(self, record: RunRecord) -> None:
        """Write the traces of the rows of ``record`` that the run does not hold yet."""
        if record.rows is None or record.rows.empty:
            return
        ids = record.rows["id"].astype(str)
        new = ~ids.isin(self.logged_rows)
        if not new.any():
            return
        fresh = set(ids[new])
        self.logger.add_rows(
            dataclasses.replace(
                record,
                rows=record.rows[new.to_numpy()].reset_index(drop=True),
                feedback=[f for f in record.feedback if str(f["row_id"]) in fresh],
            )
        )
        self.logged_rows |= fresh

    def add_traces(self, row_traces: list[RowTrace]) -> None:
        """Write the rows already made into traces that the run does not hold yet."""
        new = [t for t in row_traces if str(t.row_id) not in self.logged_rows]
        if new:
            self.logger.add_traces(new)
            self.logged_rows.update(str(t.row_id) for t in new)

    def finish(self, record: RunRecord, rendered: RenderedRows | None = None) -> str:
        """Log what the MLflow run lacks of ``record`` and end it FINISHED; its id.

        ``rendered``: ``sql_artifacts.render_rows(record)`` made elsewhere, for a run written
        with SQL (``record.rows`` and ``record.tables`` are not read then).
        """
        try:
            if isinstance(self.logger, SqlRunLogger):  # a ResumedSqlRun logs what it lacks
                return self.logger.finish(record, rendered)
            if self.resumed:
                record = self._missing(self.logger, record)
            return self.logger.finish(record)
        finally:
            self._release()

    def stop(self, status: str, parent: str | None = None) -> None:
        """End the run unfinished (``KILLED`` or ``FAILED``), keeping what it holds; and
        ``parent`` (a sweep's run, whose process is gone) ``KILLED``, if still running."""
        try:
            if isinstance(self.logger, SqlRunLogger):
                self.logger.stop(status, parent)
                return
            client = self.logger.client
            with mapped_errors(self.logger._what):
                client.set_terminated(self.run_id, status)
                if parent is not None and client.get_run(parent).info.status == "RUNNING":
                    client.set_terminated(parent, "KILLED")
        finally:
            self._release()

    def _missing(self, logger: RunLogger, record: RunRecord) -> RunRecord:
        """``record`` without the params the run has (MLflow refuses to change one) and
        the metrics whose latest logged value is the same."""
        with mapped_errors(logger._what):
            run = logger.client.get_run(self.run_id)
        logged = run.data
        logger.inputs_logged = bool(run.inputs and run.inputs.dataset_inputs)
        if logger.trace_note is None and self.logged_rows and TRACES_TAG not in logged.tags:
            logger.trace_note = "{count} traces"  # written by a run that did not finish
        return dataclasses.replace(
            record,
            params={k: v for k, v in record.params.items() if str(k) not in logged.params},
            metrics={
                k: v for k, v in record.metrics.items() if not same_metric(logged.metrics.get(k), v)
            },
        )

    def release(self) -> None:
        """Let another process write this run (``finish`` and ``stop`` do it themselves)."""
        lock, self._lock = self._lock, contextlib.nullcontext()
        lock.__exit__(None, None, None)

    _release = release


def _sql_run(
    head: RunRecord,
    tracking_uri: str,
    traces: bool,
    register: bool,
    known_run_id: str | None,
    keep_rows: Collection[str] | None,
) -> SqlRunLogger | None:
    """The run of ``head`` written with SQL, if its store is verified: a new one when no
    MLflow run holds this harness run yet, else that run continued (``ResumedSqlRun``);
    None when MLflow's API must log it."""
    from harness.tracking.mlflow_sqlite import verified_store

    db_path = verified_store(tracking_uri)
    if db_path is None:
        return None
    new = SqlRunLogger.open(head, db_path=db_path, traces=traces, register=register, new_only=True)
    if new is not None:
        return new
    return ResumedSqlRun.resume(
        head, db_path=db_path, traces=traces, register=register,
        known_run_id=known_run_id, keep_rows=keep_rows,
    )  # fmt: skip


def lock_path(tracking_uri: str, harness_run_id: str) -> Path | None:
    """Where ``run_lock`` keeps its file (for messages and tests)."""
    root = artifact_root_for(tracking_uri)
    return None if root is None else root.parent / LOCK_DIR / f"run-{harness_run_id}.lock"
