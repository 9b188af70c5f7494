"""The run's MLflow wiring: open the MLflow run in the worker, send it each stored batch's
traces, and finish it with the run's metrics and table.

The worker (``harness.runner.mlflow_worker``) is a child process; the records it receives
are built by ``harness.runner.mlflow_records``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from harness.store import runs as run_store

if TYPE_CHECKING:
    import pandas as pd

    from harness.interrupt import StopRequest
    from harness.runner.config import RunResult
    from harness.runner.mlflow_worker import MlflowWorker
    from harness.runner.plan import RunPlan
    from harness.store.runs import OutputRow, ScoreRow
    from harness.tracking import RunRecord

__all__ = ["log_to_mlflow", "open_mlflow_run", "trace_sender"]


def open_mlflow_run(
    plan: RunPlan,
    run_id: str,
    started: float,
    worker: MlflowWorker | None,
    known_run_id: str | None,
    resumed_rows: set[str] | None,
) -> RunRecord | None:
    """Open the run's MLflow run in the worker (a resumed run: the one it was logged to
    before, ``known_run_id`` or found by its tag). A resumed run's stored rows
    (``resumed_rows``, the ids) go first: the worker drops the traces of rows no longer
    stored (failed rows run again) and writes those of the rows it does not hold yet."""
    if worker is None:
        return None
    from harness.runner.mlflow_records import head_record, rows_record

    head = head_record(plan, run_id, started)
    worker.begin(
        head,
        traces=plan.config.traces,
        register=True,
        known_run_id=known_run_id,
        keep_rows=sorted(resumed_rows) if resumed_rows is not None else None,
    )
    if resumed_rows and plan.config.traces:
        home = plan.home
        worker.add_rows(
            rows_record(
                head,
                run_store.load_outputs(home.db_path, run_id),
                run_store.load_scores(home.db_path, run_id),
                _judge_uri(plan),
            )
        )
    return head


def trace_sender(
    plan: RunPlan, worker: MlflowWorker, head: RunRecord | None
) -> Callable[[list[OutputRow], list[ScoreRow]], None]:
    """Each stored batch's traces go to the MLflow worker while the next rows run."""
    from harness.runner.mlflow_records import batch_payload

    assert head is not None
    examples = {e.id: e for e in plan.examples}
    judge_model = _judge_uri(plan)

    def send(outputs: list[OutputRow], scores: list[ScoreRow]) -> None:
        worker.add_batch(batch_payload(examples, outputs, scores), judge_model)

    return send


def _judge_uri(plan: RunPlan) -> str | None:
    return plan.judge_provider.uri if plan.judge_provider else None


def log_to_mlflow(
    head: RunRecord,
    result: RunResult,
    outputs: pd.DataFrame,
    scores: pd.DataFrame,
    worker: MlflowWorker,
    stop: StopRequest | None = None,
) -> str:
    """Finish the MLflow run the worker opened: params, metrics, the table, artifacts.

    After a stop request, the worker's answer is waited for a few seconds more (then
    ``Interrupted``; the worker completes the MLflow run alone)."""
    from harness.runner.mlflow_records import final_record

    return worker.finish(final_record(head, result, outputs, scores), stop)
