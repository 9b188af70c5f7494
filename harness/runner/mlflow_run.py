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
    replaces: str | None,
    resumed_rows: bool,
) -> RunRecord | None:
    """Open the run's MLflow run in the worker; a resumed run's stored rows go first."""
    if worker is None:
        return None
    from harness.runner.mlflow_records import head_record, rows_record

    head = head_record(plan, run_id, started)
    worker.begin(head, traces=plan.config.traces, replaces=replaces, register=True)
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
    report_html: str | None = None,
) -> str:
    """Finish the MLflow run the worker opened: params, metrics, the table, artifacts
    (the run's report among them)."""
    from harness.runner.mlflow_records import final_record

    return worker.finish(final_record(head, result, outputs, scores, report_html))
