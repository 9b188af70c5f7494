"""MLflow logging in the run's own process, for a run logged into the caller's active run.

``harness.evaluate`` inside ``mlflow.start_run()`` is called from a process that has
imported MLflow and opened its tracking store already, so the worker process
(:mod:`harness.runner.mlflow_worker`), which exists to keep that import and that store off
the run's critical path, would only pay for them a second time. :class:`InlineLogger` has
the worker's interface and does the same work here, with the same
:class:`~harness.tracking.RunLogger`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from harness.errors import HarnessError, TrackingError

if TYPE_CHECKING:
    from harness.interrupt import StopRequest
    from harness.runner.mlflow_records import Batch
    from harness.tracking import RunRecord
    from harness.tracking.mlflow_log import RunLogger

__all__ = ["InlineLogger"]


class InlineLogger:
    """The MlflowWorker interface, logging in this process (see the module)."""

    def __init__(self, tracking_uri: str) -> None:
        self.tracking_uri = tracking_uri
        self._logger: RunLogger | None = None
        self._head: RunRecord | None = None
        self._error: str | None = None

    def begin(self, head: RunRecord, **options: Any) -> None:
        from harness.tracking.mlflow_log import RunLogger

        self._head = head

        def open_run() -> None:
            self._logger = RunLogger(head, tracking_uri=self.tracking_uri, **options)

        self._guard(open_run)

    def add_rows(self, chunk: RunRecord) -> None:
        if self._logger is not None:
            logger = self._logger
            self._guard(lambda: logger.add_rows(chunk))

    def add_batch(self, batch: Batch, judge_models: Mapping[str, str]) -> None:
        from harness.runner.mlflow_records import batch_traces

        if self._logger is not None and self._head is not None:
            logger, head = self._logger, self._head
            self._guard(lambda: logger.add_traces(batch_traces(head, batch, judge_models)))

    def prepare(
        self, record: RunRecord, reload: Any = None, table: Any = None, rows: int | None = None
    ) -> RunRecord:
        """``record`` with its DataFrames (``reload``'s when it has none): MLflow's API, in
        this process, logs them."""
        del table, rows
        return reload() if record.rows is None and reload is not None else record

    def finish(self, record: RunRecord, stop: StopRequest | None = None) -> str:
        del stop  # in-process: nothing to wait for
        if self._error is not None:
            raise TrackingError(self._error)
        if self._logger is None:
            raise TrackingError("the MLflow run was never opened")
        return self._logger.finish(record)

    def stop(self, status: str = "KILLED", timeout_s: float = 60.0) -> None:
        """Nothing to end: the caller's run is theirs to end (or fail), whatever stopped ours."""
        del status, timeout_s

    def close(self) -> None:
        """Nothing to stop: the caller's run is theirs to end."""

    def opened_run_id(self) -> str | None:
        """The MLflow run logged into (the caller's), once opened."""
        return self._logger.run_id if self._logger is not None else None

    def _guard(self, work: Any) -> None:
        # As in the worker: the first failure is kept for finish, and the rows go on.
        if self._error is not None:
            return
        try:
            work()
        except HarnessError as e:
            self._error = str(e)
        except Exception as e:  # noqa: BLE001 - an MLflow failure nobody mapped: one line
            self._error = f"MLflow logging failed: {type(e).__name__}: {e}"
