"""``harness runs log RUN_ID``: log a stored run to the local MLflow store, again or at last.

DuckDB is the source of truth for a run's rows, so MLflow can always catch up: after a
full disk or a damaged store stopped the logging, after an interruption during it, or just
to check. The run's MLflow run is continued, never duplicated
(``harness.tracking.mlflow_resume``): traces are written for the rows it lacks, params,
metrics, inputs and artifacts completed, and it ends ``FINISHED``. Logging a run that is
logged completely changes nothing.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace
from datetime import timezone
from typing import Any

from harness.config import Home, resolve_home
from harness.errors import ConfigError, HarnessError, RunBusy, TrackingStoreCorrupt
from harness.store import runs as run_store
from harness.store.tags import find_run

__all__ = ["LoggedRun", "log_stored_run"]


@dataclass
class LoggedRun:
    """What ``log_stored_run`` did."""

    run_id: str
    mlflow_run_id: str
    resumed: bool  # an MLflow run existed already (and was completed)
    traces_written: int  # traces written now (0 when they were all there)
    traces: int  # the run's traces in MLflow now
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "mlflow_run_id": self.mlflow_run_id,
            "resumed": self.resumed,
            "traces_written": self.traces_written,
            "traces": self.traces,
            "seconds": round(self.seconds, 3),
        }


def log_stored_run(run_id: str, *, home: str | os.PathLike[str] | Home | None = None) -> LoggedRun:
    """Log the finished run ``run_id`` (an id, a unique prefix or a tag; a run name only
    when it names one run) from DuckDB to the project's MLflow store.

    Idempotent: the run's earlier MLflow run (complete, partly logged or ended KILLED) is
    completed, not duplicated, and a second call changes nothing. Raises ``ConfigError``
    for a run that has not finished (``--resume`` finishes it, and logs it) or that was
    run with ``--no-mlflow``, ``RunBusy`` for a run a live process is running, and an
    ``EnvironmentFault`` (``TrackingError``, ``DiskFull``...) when the store cannot be
    written.
    """
    started = time.monotonic()
    home = resolve_home(home)
    info, note = find_run(home.db_path, run_id)
    if note:
        raise ConfigError(f"{note}; log it by its run id")
    if info.status == "running":
        where = f" ({info.owner.describe()})" if info.owner else ""
        raise RunBusy(f"run {info.run_id} is still running{where}; it logs itself when it ends")
    if info.status != "finished":
        raise ConfigError(
            f"run {info.run_id} is {info.status}, not finished: `harness run --resume "
            f"{info.run_id}` finishes it and logs it to MLflow"
        )
    from harness.runner.config import RunConfig, RunResult
    from harness.runner.mlflow_records import final_record, head_record, rows_record
    from harness.runner.plan import plan_run
    from harness.runner.summary import run_slices
    from harness.tracking.mlflow_resume import ResumingLogger

    config = RunConfig.from_dict(info.config)
    if config.model_id is not None:
        from harness.tracking.model_link import check_resumed_link

        check_resumed_link(
            home.tracking_uri, config.model_id, info.run_id, doing="`harness runs log` would fail"
        )
    # A sampled run's stored ids, not a new draw: the rows and slices it logs are its own.
    plan = plan_run(config, home, example_ids=run_store.run_example_ids(home.db_path, info.run_id))
    outputs, scores = run_store.load_outputs_and_scores(home.db_path, info.run_id)
    result = RunResult.from_info(info)
    begun = info.created_at.replace(tzinfo=timezone.utc).timestamp()
    result = replace(
        result,
        sample=plan.sample,
        slices=run_slices(config.by, plan.examples, outputs, scores, info.config),
    )
    head = head_record(plan, info.run_id, begun)
    from harness.report import stored_run_report

    # The report a run logs when it ends, so a run logged later carries it too.
    report_html = stored_run_report(home.db_path, info.run_id)
    try:
        logger = ResumingLogger(
            head,
            tracking_uri=home.tracking_uri,
            traces=config.traces,
            register=True,
            known_run_id=info.mlflow_run_id,
            keep_rows=list(outputs["id"]),
        )
        try:
            before = len(logger.logged_rows)
            if config.traces:
                logger.add_rows(rows_record(head, outputs, scores, plan.judge_models))
            traces = len(logger.logged_rows)
            mlflow_run_id = logger.finish(final_record(head, result, outputs, scores, report_html))
        finally:
            logger.release()
    except HarnessError as e:
        raise _named(e, home) from e
    run_store.set_mlflow_run_id(home.db_path, info.run_id, mlflow_run_id)
    return LoggedRun(
        run_id=info.run_id,
        mlflow_run_id=mlflow_run_id,
        resumed=logger.resumed,
        traces_written=traces - before,
        traces=traces,
        seconds=time.monotonic() - started,
    )


def _named(error: HarnessError, home: Home) -> HarnessError:
    """A full disk or a damaged store, named with the store's path, else ``error``."""
    from harness.faults import environment_fault
    from harness.tracking.mlflow_store import DB_FILE

    fault = environment_fault(
        error, home.mlruns_dir / DB_FILE, corrupt=TrackingStoreCorrupt, what="the MLflow store"
    )
    return fault or error
