"""A fresh run's per-row table made in the MLflow worker, from the batches of rows it
receives for their traces (``harness.runner.table_rows.SpooledTable``), while the run's
process builds its report: the table is off the run's process (0.45 s at 10,000 rows).

The run's process asks for it as the MLflow run opens (only a fresh run sends the worker
every row; only a run the worker writes with SQL makes it), and at its end sends the
count of rows it stored. A table that cannot be made (a row missing, a disk full, a value
it cannot write, a run logged with MLflow's API) is dropped: the worker's answer to
``finish`` asks the run's process for it, which renders it from the store, as it does
for every other run (``MlflowWorker.finish``).
"""

from __future__ import annotations

import contextlib
import pickle
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Collection

    from harness.runner.mlflow_records import Batch
    from harness.runner.table_rows import SpooledTable
    from harness.tracking import RunRecord
    from harness.tracking.sql_artifacts import RenderedRows

# What a table that cannot be made raises: then it is dropped, never written wrong.
_FAILURES = (OSError, ValueError, TypeError, pickle.PickleError)


class WorkerTable:
    """The per-row table the worker makes of the batches it receives, then renders."""

    def __init__(self, tracking_uri: str, labelled: Collection[str]) -> None:
        from harness.runner.table_rows import SpooledTable
        from harness.tracking.mlflow_store import artifact_root_for

        root = artifact_root_for(tracking_uri)
        self._folder = root.parent if root is not None else None  # the artifacts' disk
        self._made: RenderedRows | None = None
        self._table: SpooledTable | None = None
        with contextlib.suppress(OSError):  # no temporary file: the run's process renders it
            self._table = SpooledTable(self._folder, labelled)

    def add(self, batch: Batch) -> None:
        if self._table is not None:
            try:
                self._table.add(*batch)
            except _FAILURES:
                self._drop()

    def make(self, record: RunRecord | None, rows: int | None) -> None:
        """Render the table of ``record`` now (the run stored ``rows`` rows); None: the
        run's process renders it."""
        table, self._table = self._table, None
        if table is None:
            return
        from harness.tracking.sql_artifacts import render_rows

        try:
            if record is not None and table.rows == rows:
                table.finish()
                self._made = render_rows(record, self._folder, table)
        except _FAILURES:
            self._made = None
        finally:
            table.close()

    def take(self) -> RenderedRows | None:
        """The rendered table (``make``), if it was made; the caller owns its file."""
        made, self._made = self._made, None
        return made

    def discard(self) -> None:
        """Delete what was not taken (the run stopped, or rendered the table itself)."""
        self._drop()
        made = self.take()
        if made is not None:
            made.discard()

    def _drop(self) -> None:
        table, self._table = self._table, None
        if table is not None:
            table.close()


def table_request(options: dict[str, Any]) -> bool:
    """Whether the run asked for the table (``begin``'s options, from which it is taken)."""
    return bool(options.pop("table", False))
