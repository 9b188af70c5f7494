"""The run's MLflow wiring: open the MLflow run in the worker, send it each stored batch's
traces, and finish it with the run's metrics and table.

The worker (``harness.runner.mlflow_worker``) is a child process; the records it receives
are built by ``harness.runner.mlflow_records``. A run logged into the caller's active MLflow
run is logged by an ``InlineLogger`` (``harness.runner.mlflow_inline``) instead, with the
same interface, :class:`MlflowLogger`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from harness.store import runs as run_store

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from harness.config import Home
    from harness.interrupt import StopRequest
    from harness.runner.config import RunResult
    from harness.runner.mlflow_records import Batch
    from harness.runner.plan import RunPlan
    from harness.store.datasets import Example
    from harness.store.rows import OutputRow, ScoreRow
    from harness.store.runs import RunInfo
    from harness.tracking import RunRecord
    from harness.tracking.sql_artifacts import PlainTable

__all__ = [
    "MlflowLogger",
    "find_opened_mlflow_runs",
    "log_to_mlflow",
    "mlflow_logger",
    "open_mlflow_run",
    "prepare_mlflow_end",
    "trace_sender",
]


class MlflowLogger(Protocol):
    """What logs one run to MLflow, in stages (the worker process, or inline)."""

    def begin(self, head: RunRecord, **options: Any) -> None: ...
    def add_rows(self, chunk: RunRecord) -> None: ...
    def add_batch(self, batch: Batch, judge_models: Mapping[str, str]) -> None: ...
    def prepare(
        self,
        record: RunRecord,
        reload: Callable[[], RunRecord] | None = None,
        table: Callable[[], AbstractContextManager[PlainTable]] | None = None,
        rows: int | None = None,
    ) -> RunRecord: ...
    def finish(self, record: RunRecord, stop: StopRequest | None = None) -> str: ...
    def stop(self, status: str = "KILLED", timeout_s: float = 60.0) -> None: ...
    def close(self) -> None: ...
    def opened_run_id(self) -> str | None: ...


def open_mlflow_run(
    plan: RunPlan,
    run_id: str,
    started: float,
    worker: MlflowLogger | None,
    known_run_id: str | None,
    resumed_rows: set[str] | None,
    into_run: str | None = None,
) -> RunRecord | None:
    """Open the run's MLflow run in the worker (a resumed run: the one it was logged to
    before, ``known_run_id`` or found by its tag). A resumed run's stored rows
    (``resumed_rows``, the ids) go first: the worker drops the traces of rows no longer
    stored (failed rows run again) and writes those of the rows it does not hold yet.

    ``into_run`` is the caller's active MLflow run: logged into, never created or ended
    (and no prompt or model registered in a registry that is not ours to fill).
    """
    if worker is None:
        return None
    from harness.runner.mlflow_records import head_record, rows_record

    head = head_record(plan, run_id, started)
    if into_run is not None:
        worker.begin(head, traces=plan.config.traces, into_run=into_run)
    else:
        worker.begin(
            head,
            traces=plan.config.traces,
            register=True,
            known_run_id=known_run_id,
            keep_rows=sorted(resumed_rows) if resumed_rows is not None else None,
            # A fresh run's worker gets every row (as traces): it can make the per-row
            # table itself, off this process (``prepare_mlflow_end``).
            table=resumed_rows is None and plan.config.traces,
        )
    if resumed_rows and plan.config.traces:
        home = plan.home
        outputs, scores = run_store.load_outputs_and_scores(home.db_path, run_id)
        worker.add_rows(rows_record(head, outputs, scores, plan.judge_models))
    return head


def mlflow_logger(home: Home, log: bool, into: tuple[str, str] | None) -> MlflowLogger | None:
    """Who logs the run to MLflow: nobody, the worker process, or (for the caller's active
    MLflow run, in a process that has MLflow loaded already) this process."""
    if not log:
        return None
    if into is not None:
        from harness.runner.mlflow_inline import InlineLogger

        return InlineLogger(into[0])
    from harness.runner.mlflow_worker import MlflowWorker

    # Started now so MLflow's import and store setup overlap with the rows (see the module).
    return MlflowWorker(home.tracking_uri)


def trace_sender(
    plan: RunPlan, todo: Sequence[Example], worker: MlflowLogger, head: RunRecord | None
) -> Callable[[list[OutputRow], list[ScoreRow]], None]:
    """Each stored batch's traces go to the MLflow worker while the next rows run
    (``todo``: the examples whose rows are to run)."""
    from harness.runner.mlflow_records import batch_payload

    assert head is not None
    # Each example with its place in the run's data (``todo`` is in dataset order), by
    # which the worker orders the per-row table it makes of a fresh run's batches.
    examples = {e.id: (position, e) for position, e in enumerate(todo)}
    judge_models = plan.judge_models

    def send(outputs: list[OutputRow], scores: list[ScoreRow]) -> None:
        # Each row comes here once (``BatchWriter``): its example goes with its trace, so
        # this map does not keep every example of the run alive to its end.
        batch = {o.example_id: examples.pop(o.example_id) for o in outputs}
        worker.add_batch(batch_payload(batch, outputs, scores), judge_models)

    return send


def prepare_mlflow_end(
    home: Home, head: RunRecord, result: RunResult, worker: MlflowLogger
) -> RunRecord:
    """The MLflow run's final record, its tables made now (``MlflowLogger.prepare``) from
    the run's rows and scores read back here a chunk at a time, in plain Python
    (``harness.runner.table_rows``: no pandas), so they can go before its report is built:
    the report and the tables are the two largest steps of a large run's end.

    The record returned holds no DataFrames; should MLflow's API need them (a store not
    written with SQL, a dataset schema only MLflow infers), they are read from the store
    then (``reload``)."""
    from harness.runner.mlflow_records import final_record
    from harness.runner.table_rows import open_table

    def read() -> RunRecord:
        outputs, scores = run_store.load_table_rows(home.db_path, result.run_id)
        return final_record(head, result, outputs, scores)

    # Opened by the logger that renders it: one that logs through MLflow's API in this
    # process (``InlineLogger``) reads the frames instead, and would pay the table's first
    # pass over every score for nothing.
    return worker.prepare(
        final_record(head, result),
        read,
        lambda: open_table(home.db_path, result.run_id, head.labelled),
        rows=result.rows_done,
    )


def log_to_mlflow(
    record: RunRecord,
    worker: MlflowLogger,
    stop: StopRequest | None = None,
    report_html: str | None = None,
) -> str:
    """Finish the MLflow run the worker opened with ``record`` (``prepare_mlflow_end``):
    params, metrics, the table, artifacts (the run's report among them).

    After a stop request, the worker's answer is waited for a few seconds more (then
    ``Interrupted``; the worker completes the MLflow run alone)."""
    return worker.finish(dataclasses.replace(record, report_html=report_html), stop)


def find_opened_mlflow_runs(infos: Iterable[RunInfo], home: Home) -> None:
    """Fill in ``mlflow_opened_run_id`` (so ``mlflow_partial_run_id``) of each stored run
    that did not finish, is to be logged, and stored no MLflow run: the one tagged with its
    id in the project's MLflow store, if any (read with ``sqlite3``, no MLflow import).

    A run stopped (a signal, --max-cost, a failure) before its MLflow worker has said which
    MLflow run it opened, or with the worker still busy after the stop's grace, stores
    none, yet the worker goes on: it opens the MLflow run, writes the rows' traces and ends
    it KILLED or FAILED, after the run's process is gone. A finished run is not looked up:
    its worker named the MLflow run before it answered the run's end, and the run stores it.
    """
    wanted = [
        info
        for info in infos
        if info.status != "finished" and info.mlflow_pending and info.mlflow_opened_run_id is None
    ]
    if not wanted:
        return
    from harness.tracking.mlflow_sqlite import tagged_runs

    found = tagged_runs(home.tracking_uri, [info.run_id for info in wanted])
    for info in wanted:
        info.mlflow_opened_run_id = found.get(info.run_id)
